//! Which track, audio or video, a tag belongs to.

use std::fmt;

/// Which track a tag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// Audio (RTMP message type 8).
    Audio,
    /// Video (RTMP message type 9).
    Video,
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Track::Audio => "audio",
            Track::Video => "video",
        })
    }
}
