//! Typed frames: what ingest hands to the registry.

use bytes::Bytes;

use crate::codec::{AudioConfig, VideoConfig};
use crate::time::MediaTime;

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
    /// A (new) configuration of another video track of a multitrack publish (its E-RTMP v2
    /// track id, 1 or more): another encode of the same source, served as it is.
    TrackConfig(u8, VideoConfig),
    /// An access unit of another video track of a multitrack publish.
    TrackVideo(u8, VideoFrame),
}

impl MediaFrame {
    /// Decode timestamp of an access unit; `None` for configurations.
    pub fn dts(&self) -> Option<MediaTime> {
        match self {
            MediaFrame::Video(v) | MediaFrame::TrackVideo(_, v) => Some(v.dts),
            MediaFrame::Audio(a) => Some(a.pts),
            _ => None,
        }
    }

    /// Payload size in bytes.
    pub fn len(&self) -> usize {
        match self {
            MediaFrame::Video(v) | MediaFrame::TrackVideo(_, v) => v.data.len(),
            MediaFrame::Audio(a) => a.data.len(),
            MediaFrame::VideoConfig(c) | MediaFrame::TrackConfig(_, c) => c.record.len(),
            MediaFrame::AudioConfig(c) => c.record.len(),
        }
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
