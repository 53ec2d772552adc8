//! Which elementary stream, video or audio, an outcome concerns.

use std::fmt;

/// Which elementary stream an outcome concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The H.264 stream.
    Video,
    /// The AAC stream.
    Audio,
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Track::Video => "video",
            Track::Audio => "audio",
        })
    }
}
