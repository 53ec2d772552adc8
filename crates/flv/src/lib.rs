//! FLV tag bodies, as carried in RTMP audio (type 8) and video (type 9) messages, turned into
//! typed [`media::MediaFrame`]s.
//!
//! The crate is sans-IO. A [`Demuxer`] per connection takes each message's timestamp and body
//! and returns an [`Outcome`]: a frame or configuration to hand on, or the reason there is none
//! (a media tag before its sequence header, an unsupported codec, a tag that carries nothing).
//! Errors are per tag: after an [`Error`] the demuxer is still usable.
//!
//! H.264 (legacy FLV codec id 7, or FourCC `avc1` in Enhanced RTMP), HEVC (FourCC `hvc1`, its
//! `hvcC` read by `media::hevc`), AV1 (FourCC `av01`, its `av1C` read by `media::av1`), AAC (sound format 10,
//! or FourCC `mp4a`) and MP3 (sound formats 2 and 14) become frames. MP3 has no sequence
//! header: the first MP3 tag, and any whose frame header changes the sample rate or channel
//! count, gives an [`media::AudioConfig`] (codec [`media::AudioCodec::Mp3`], empty record)
//! in place of its frame; the tags after it give frames. Other codecs, VP9 and MP3
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
mod error;
mod fourcc;
mod metadata;
mod outcome;
mod tag;
mod track;
mod unsupported;

#[doc(hidden)]
pub mod cases;
pub mod fuzz;

pub use demux::{Demuxer, TimestampExtender, MAX_SERVED_TRACKS};
pub use error::Error;
pub use fourcc::FourCc;
pub use metadata::MetadataHints;
pub use outcome::{Ignored, Outcome};
pub use track::Track;
pub use unsupported::Unsupported;

#[cfg(test)]
mod tests;
