//! What one tag gives: a frame to hand on, or why there is none.

use media::MediaFrame;

use crate::track::Track;
use crate::unsupported::Unsupported;

/// Why a tag produced nothing to hand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ignored {
    /// An end-of-sequence marker.
    EndOfSequence,
    /// A video info or command frame (frame type 5).
    VideoCommand,
    /// A sequence header identical to the one in use.
    UnchangedConfig,
    /// A frame with no payload (some encoders send them as keep-alives).
    EmptyFrame,
    /// Enhanced RTMP video metadata (e.g. HDR colour information).
    Metadata,
    /// A VP9 configuration, handed on with the first keyframe (which has its picture size).
    PendingConfig,
    /// An Enhanced RTMP multitrack message without the video track being demuxed (another
    /// encode of a multitrack publish).
    OtherTrack,
    /// Enhanced RTMP audio multichannel configuration (the AudioSpecificConfig already says
    /// how many channels there are).
    MultichannelConfig,
}

/// What one tag gave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// A frame, or a new decoder configuration, to hand on.
    Frame(MediaFrame),
    /// Several, in order: a VP9 configuration, known in full only with its first keyframe
    /// (the record has no picture size), and that keyframe.
    Frames(Vec<MediaFrame>),
    /// Nothing to hand on, for the reason given.
    Ignored(Ignored),
    /// A media tag arrived before the track's sequence header and was dropped.
    WaitingForConfig(Track),
    /// The tag uses a codec or layout Ferrocast does not ingest; the caller should refuse the
    /// stream, saying which (the `Display` form names it).
    Unsupported(Unsupported),
}
