//! The crate's one error type.

use crate::track::Track;

/// Why a tag body could not be demuxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body ended before a field could be read in full.
    #[error("FLV {track} tag is truncated: it ended while reading the {what}")]
    Truncated {
        /// The tag's track.
        track: Track,
        /// The field being read.
        what: &'static str,
    },
    /// The packet type byte holds a value the format does not define.
    #[error("FLV {track} tag has unknown packet type {value}")]
    UnknownPacketType {
        /// The tag's track.
        track: Track,
        /// The packet type found.
        value: u8,
    },
    /// The multitrack type (`AvMultitrackType`) holds a value the format does not define.
    #[error("FLV {track} tag has unknown multitrack type {value}")]
    UnknownMultitrackType {
        /// The tag's track.
        track: Track,
        /// The type found.
        value: u8,
    },
    /// The AVC sequence header (AVCDecoderConfigurationRecord, or its SPS) is invalid.
    #[error("invalid H.264 sequence header, check the encoder's H.264 settings: {0}")]
    AvcSequenceHeader(media::h264::H264Error),
    /// The HEVC sequence header (HEVCDecoderConfigurationRecord, or its SPS) is invalid.
    #[error("invalid HEVC sequence header, check the encoder's HEVC settings: {0}")]
    HevcSequenceHeader(media::hevc::HevcError),
    /// The AV1 sequence header (AV1CodecConfigurationRecord, or its sequence header OBU) is
    /// invalid.
    #[error("invalid AV1 sequence header, check the encoder's AV1 settings: {0}")]
    Av1SequenceHeader(media::av1::Av1Error),
    /// The VP9 sequence header (VPCodecConfigurationRecord) is invalid.
    #[error("invalid VP9 sequence header, check the encoder's VP9 settings: {0}")]
    Vp9SequenceHeader(media::vp9::Vp9Error),
    /// The NAL units of an AVC or HEVC frame do not fit their length prefixes.
    #[error("invalid H.264 or HEVC frame: {0}")]
    AvcFrame(media::h264::H264Error),
    /// The AAC sequence header (AudioSpecificConfig) is invalid.
    #[error("invalid AAC sequence header, check the encoder's audio settings: {0}")]
    AacSequenceHeader(media::aac::AacError),
}
