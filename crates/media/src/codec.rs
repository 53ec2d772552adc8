//! The codecs Ferrocast recognises at ingest, and the decoder configuration of each track.

use bytes::Bytes;

/// Video codecs Ferrocast recognises at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC (over Enhanced RTMP).
    Hevc,
    /// AV1 (over Enhanced RTMP).
    Av1,
    /// VP9 (over Enhanced RTMP).
    Vp9,
}

/// Audio codecs Ferrocast recognises at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AudioCodec {
    /// AAC (any object type; LC is the common case).
    Aac,
    /// MPEG-1/2 Layer III.
    Mp3,
}

/// Decoder configuration for a video track.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    /// The codec.
    pub codec: VideoCodec,
    /// The codec's configuration record as carried in MP4 (`avcC` for H.264).
    pub record: Bytes,
    /// Coded picture width in pixels, after cropping, when known.
    pub width: u32,
    /// Coded picture height in pixels, after cropping, when known.
    pub height: u32,
    /// Frame rate signalled in the bitstream (VUI timing) or by the container, when known.
    pub frame_rate: Option<f64>,
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec_string: String,
    /// Size in bytes of the NAL unit length prefix in `VideoFrame::data` (1, 2 or 4).
    pub nal_length_size: u8,
}

/// Decoder configuration for an audio track.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioConfig {
    /// The codec.
    pub codec: AudioCodec,
    /// AudioSpecificConfig for AAC; empty for codecs that need none.
    pub record: Bytes,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u8,
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub codec_string: String,
}
