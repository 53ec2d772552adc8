//! The crate's one error type.

use crate::track::Track;

/// Why a PES could not be demuxed. The demuxer carries on with the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PES header is malformed.
    #[error("invalid {track} PES in the transport stream: {reason}")]
    InvalidPes {
        /// The track.
        track: Track,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The SPS/PPS do not make a usable H.264 configuration.
    #[error("invalid H.264 parameter sets (SPS/PPS) in the transport stream, check the encoder's H.264 settings: {0}")]
    VideoConfig(media::h264::H264Error),
    /// An access unit's NAL units cannot be length-prefixed.
    #[error("invalid H.264 access unit in the transport stream: {0}")]
    VideoFrame(media::h264::H264Error),
    /// The audio PES does not hold valid ADTS frames.
    #[error(
        "invalid AAC (ADTS) audio in the transport stream, check the encoder's audio settings: {0}"
    )]
    Adts(media::aac::AacError),
}
