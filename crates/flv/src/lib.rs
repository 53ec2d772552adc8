//! FLV tag bodies, as carried in RTMP audio (type 8) and video (type 9) messages, turned into
//! typed [`media::MediaFrame`]s.
//!
//! The crate is sans-IO. A [`Demuxer`] per connection takes each message's timestamp and body
//! and returns an [`Outcome`]: a frame or configuration to hand on, or the reason there is none
//! (a media tag before its sequence header, an unsupported codec, a tag that carries nothing).
//! Errors are per tag: after an [`Error`] the demuxer is still usable.
//!
//! H.264 (legacy FLV codec id 7, or FourCC `avc1` in Enhanced RTMP), AAC (sound format 10,
//! or FourCC `mp4a`) and MP3 (sound formats 2 and 14) become frames. MP3 has no sequence
//! header: the first MP3 tag, and any whose frame header changes the sample rate or channel
//! count, gives an [`media::AudioConfig`] (codec [`media::AudioCodec::Mp3`], empty record)
//! in place of its frame; the tags after it give frames. Other codecs, HEVC/AV1/VP9 and MP3
//! over Enhanced RTMP included, are reported as [`Outcome::Unsupported`] so the caller can
//! refuse the stream with a clear reason.
//!
//! The drive loop, as an RTMP session hands messages over:
//!
//! ```
//! use bytes::Bytes;
//! use flv::{Demuxer, Outcome, Track};
//! use media::MediaFrame;
//!
//! let mut demuxer = Demuxer::new();
//!
//! // A frame before the sequence header is held back, not an error.
//! let frame = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
//! assert_eq!(demuxer.push_video(0, frame.clone())?, Outcome::WaitingForConfig(Track::Video));
//!
//! // AVC sequence header (an x264 640x360 Main profile avcC), then the frame again.
//! let mut header = vec![0x17, 0, 0, 0, 0];
//! header.extend_from_slice(&[
//!     0x01, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0,
//!     0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x19,
//!     0x07, 0x8b, 0x16, 0xcb, 0x01, 0x00, 0x05, 0x68, 0xeb, 0xe3, 0xcb, 0x20,
//! ]);
//! match demuxer.push_video(0, Bytes::from(header))? {
//!     Outcome::Frame(MediaFrame::VideoConfig(config)) => {
//!         assert_eq!((config.width, config.height), (640, 360));
//!         assert_eq!(config.codec_string, "avc1.4d401e");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! match demuxer.push_video(40, frame)? {
//!     Outcome::Frame(MediaFrame::Video(v)) => {
//!         assert!(v.keyframe);
//!         assert_eq!(v.dts.as_millis(), 40);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Audio works the same way. MP3 has no sequence header: its first tag gives the
//! // configuration, read from the MPEG audio frame header, and the next ones give frames.
//! let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x64, 0, 0]);
//! match demuxer.push_audio(40, mp3.clone())? {
//!     Outcome::Frame(MediaFrame::AudioConfig(config)) => {
//!         assert_eq!((config.sample_rate, config.channels), (44_100, 2));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert!(matches!(demuxer.push_audio(66, mp3)?, Outcome::Frame(MediaFrame::Audio(_))));
//!
//! // A codec Ferrocast does not ingest is refused, saying which.
//! let speex = Bytes::from_static(&[0xb6, 0]);
//! match demuxer.push_audio(92, speex)? {
//!     Outcome::Unsupported(what) => assert_eq!(what.to_string(), "audio format 11 (Speex)"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), flv::Error>(())
//! ```

mod demux;
mod metadata;
mod tag;

#[doc(hidden)]
pub mod cases;

pub use demux::{Demuxer, TimestampExtender};
pub use metadata::MetadataHints;

use std::fmt;

use media::MediaFrame;

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

/// A four-character code naming a codec in Enhanced RTMP.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// H.264 / AVC.
    pub const AVC1: FourCc = FourCc(*b"avc1");
    /// H.265 / HEVC.
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    /// AV1.
    pub const AV01: FourCc = FourCc(*b"av01");
    /// VP9.
    pub const VP09: FourCc = FourCc(*b"vp09");
    /// VP8.
    pub const VP08: FourCc = FourCc(*b"vp08");
    /// AAC (MPEG-4 audio).
    pub const MP4A: FourCc = FourCc(*b"mp4a");
    /// Opus.
    pub const OPUS: FourCc = FourCc(*b"Opus");
    /// FLAC.
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    /// AC-3.
    pub const AC3: FourCc = FourCc(*b"ac-3");
    /// E-AC-3.
    pub const EC3: FourCc = FourCc(*b"ec-3");
    /// MP3.
    pub const MP3: FourCc = FourCc(*b".mp3");

    /// A human name for the codecs Enhanced RTMP defines.
    fn codec_name(self) -> Option<&'static str> {
        Some(match &self.0 {
            b"avc1" => "H.264",
            b"hvc1" => "HEVC",
            b"av01" => "AV1",
            b"vp09" => "VP9",
            b"vp08" => "VP8",
            b"mp4a" => "AAC",
            b"Opus" => "Opus",
            b"fLaC" => "FLAC",
            b"ac-3" => "AC-3",
            b"ec-3" => "E-AC-3",
            b".mp3" => "MP3",
            _ => return None,
        })
    }
}

impl fmt::Display for FourCc {
    /// Printable ASCII as is, other bytes as `\xNN`, so a hostile FourCC cannot forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// A codec or layout this crate recognises but does not turn into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsupported {
    /// A legacy FLV video codec id other than 7 (AVC).
    VideoCodecId(u8),
    /// An Enhanced RTMP video FourCC other than `avc1`.
    VideoFourCc(FourCc),
    /// A legacy FLV sound format other than 10 (AAC), 2 and 14 (MP3).
    AudioFormat(u8),
    /// An Enhanced RTMP audio FourCC other than `mp4a`.
    AudioFourCc(FourCc),
    /// Enhanced RTMP multitrack, whatever the codec.
    Multitrack {
        /// The track the multitrack tag was sent on.
        track: Track,
        /// The FourCC of the first track.
        fourcc: FourCc,
    },
}

impl Unsupported {
    /// The track the refused tag was sent on.
    pub fn track(&self) -> Track {
        match self {
            Unsupported::VideoCodecId(_) | Unsupported::VideoFourCc(_) => Track::Video,
            Unsupported::AudioFormat(_) | Unsupported::AudioFourCc(_) => Track::Audio,
            Unsupported::Multitrack { track, .. } => *track,
        }
    }
}

fn video_codec_id_name(id: u8) -> &'static str {
    match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen Video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen Video 2",
        7 => "H.264",
        12 => "HEVC, non-standard FLV extension",
        13 => "AV1, non-standard FLV extension",
        _ => "unknown",
    }
}

fn sound_format_name(format: u8) -> &'static str {
    match format {
        0 => "linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM, little endian",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        10 => "AAC",
        11 => "Speex",
        13 => "Opus, non-standard FLV extension",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "reserved",
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::VideoCodecId(id) => {
                write!(f, "video codec id {id} ({})", video_codec_id_name(*id))
            }
            Unsupported::AudioFormat(format) => {
                write!(f, "audio format {format} ({})", sound_format_name(*format))
            }
            Unsupported::VideoFourCc(cc) | Unsupported::AudioFourCc(cc) => {
                let track = self.track();
                match cc.codec_name() {
                    Some(name) => write!(f, "{track} codec {name} ({cc}) over Enhanced RTMP"),
                    None => write!(f, "unknown {track} codec FourCC {cc:?} over Enhanced RTMP"),
                }
            }
            Unsupported::Multitrack { track, fourcc } => {
                write!(f, "Enhanced RTMP multitrack {track} ({fourcc})")
            }
        }
    }
}

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
    /// Nothing to hand on, for the reason given.
    Ignored(Ignored),
    /// A media tag arrived before the track's sequence header and was dropped.
    WaitingForConfig(Track),
    /// The tag uses a codec or layout Ferrocast does not ingest; the caller should refuse the
    /// stream, saying which (the `Display` form names it).
    Unsupported(Unsupported),
}

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
    /// The AVC sequence header (AVCDecoderConfigurationRecord, or its SPS) is invalid.
    #[error("invalid H.264 sequence header, check the encoder's H.264 settings: {0}")]
    AvcSequenceHeader(media::h264::H264Error),
    /// The NAL units of an AVC frame do not fit their length prefixes.
    #[error("invalid H.264 frame: {0}")]
    AvcFrame(media::h264::H264Error),
    /// The AAC sequence header (AudioSpecificConfig) is invalid.
    #[error("invalid AAC sequence header, check the encoder's audio settings: {0}")]
    AacSequenceHeader(media::aac::AacError),
}

/// Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
/// code.
pub mod fuzz {
    use bytes::Bytes;

    use crate::{cases, Demuxer};

    /// Feeds one tag body through a [`Demuxer`]. Never panics, whatever `data` holds.
    ///
    /// Byte 0 selects: bit 0 video (1) or audio (0); bit 1 first loads valid H.264 and AAC
    /// sequence headers, so that coded-frame paths are reached. The rest is the tag body.
    pub fn parse_tag(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else {
            return;
        };
        let mut demuxer = Demuxer::new();
        if selector & 2 != 0 {
            let _ = demuxer.push_video(0, Bytes::from_static(cases::AVC_SEQUENCE_HEADER));
            let _ = demuxer.push_audio(0, Bytes::from_static(cases::AAC_SEQUENCE_HEADER));
        }
        let body = Bytes::copy_from_slice(body);
        let _ = if selector & 1 != 0 {
            demuxer.push_video(1000, body)
        } else {
            demuxer.push_audio(1000, body)
        };
    }
}

#[cfg(test)]
mod tests;
