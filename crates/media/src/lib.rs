//! Ferrocast's shared media vocabulary.
//!
//! Everything that crosses the ingest → registry → pipeline seams is defined here: media time,
//! codec configurations, typed frames and validated stream names. This crate knows nothing of
//! sockets, tokio or GStreamer, so protocol crates (RTMP/FLV, SRT/MPEG-TS) and the pipeline can all
//! depend on it without depending on each other.
//!
//! ```
//! use media::{MediaFrame, MediaTime, StreamName, VideoFrame};
//! use bytes::Bytes;
//!
//! let name: StreamName = "main".parse().unwrap();
//! let frame = MediaFrame::Video(VideoFrame {
//!     dts: MediaTime::from_millis(40),
//!     pts: MediaTime::from_millis(80),
//!     keyframe: true,
//!     data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
//! });
//! assert_eq!(frame.dts(), Some(MediaTime::from_millis(40)));
//! assert_eq!(name.as_str(), "main");
//! ```

mod bits;
mod name;
mod time;

pub mod aac;
pub mod cmaf;
pub mod h264;

pub use name::{StreamName, StreamNameError};
pub use time::MediaTime;

use bytes::Bytes;

/// Video codecs Ferrocast recognises at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC (recognised, not yet transcoded).
    Hevc,
    /// AV1 (recognised, not yet transcoded).
    Av1,
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

/// One coded video access unit.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    /// Decode timestamp.
    pub dts: MediaTime,
    /// Presentation timestamp (`dts` + composition offset).
    pub pts: MediaTime,
    /// True when the access unit is a random access point (IDR for H.264).
    pub keyframe: bool,
    /// NAL units, each prefixed by its length (`VideoConfig::nal_length_size` bytes, big endian).
    pub data: Bytes,
}

/// One coded audio frame.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    /// Presentation timestamp.
    pub pts: MediaTime,
    /// Raw codec payload (raw AAC access unit: no ADTS header).
    pub data: Bytes,
}

/// What ingest hands to the registry: codec configurations and access units, with timestamps.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaFrame {
    /// A (new) video decoder configuration; frames after it use it.
    VideoConfig(VideoConfig),
    /// A (new) audio decoder configuration; frames after it use it.
    AudioConfig(AudioConfig),
    /// A video access unit.
    Video(VideoFrame),
    /// An audio frame.
    Audio(AudioFrame),
}

impl MediaFrame {
    /// Decode timestamp of an access unit; `None` for configurations.
    pub fn dts(&self) -> Option<MediaTime> {
        match self {
            MediaFrame::Video(v) => Some(v.dts),
            MediaFrame::Audio(a) => Some(a.pts),
            _ => None,
        }
    }

    /// Payload size in bytes.
    pub fn len(&self) -> usize {
        match self {
            MediaFrame::Video(v) => v.data.len(),
            MediaFrame::Audio(a) => a.data.len(),
            MediaFrame::VideoConfig(c) => c.record.len(),
            MediaFrame::AudioConfig(c) => c.record.len(),
        }
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
