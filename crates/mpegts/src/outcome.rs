//! What the demuxer gives, one item at a time: a frame, a program change, or why a PES gave
//! nothing.

use media::MediaFrame;

use crate::track::Track;
use crate::unsupported::Unsupported;

/// Why a PES was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Packets of it were lost (a continuity counter gap).
    ContinuityError,
    /// It declared a length, but the next PES started before it was all there.
    Truncated,
    /// It grew past [`MAX_VIDEO_PES`](crate::MAX_VIDEO_PES) or
    /// [`MAX_AUDIO_PES`](crate::MAX_AUDIO_PES).
    TooLarge,
    /// It carries no PTS, and none can be inferred.
    MissingTimestamp,
}

/// What the bytes pushed gave, one item at a time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// A frame, or a new decoder configuration, to hand on.
    Frame(MediaFrame),
    /// The PMT (re)selected the elementary streams to demux. `None` for a track the program
    /// does not carry in a supported codec.
    Program {
        /// PID of the H.264 stream.
        video_pid: Option<u16>,
        /// PID of the AAC stream.
        audio_pid: Option<u16>,
    },
    /// A video access unit arrived before any SPS/PPS and was dropped.
    WaitingForConfig(Track),
    /// The program carries a codec Ferrocast does not ingest; the caller should refuse the
    /// stream, saying which (the `Display` form names it).
    Unsupported(Unsupported),
    /// A PES was dropped, for the reason given; the stream resumes at the next one. Counted in
    /// [`Stats`](crate::Stats) too.
    Dropped {
        /// The track it belonged to.
        track: Track,
        /// Why.
        reason: DropReason,
    },
}
