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
mod codec;
mod frame;
mod name;
mod time;

pub mod aac;
pub mod av1;
pub mod cmaf;
pub mod fmp4;
pub mod fuzz;
pub mod h264;
pub mod hevc;
pub mod vp9;

pub use codec::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};
pub use frame::{AudioFrame, MediaFrame, VideoFrame};
pub use name::{StreamName, StreamNameError};
pub use time::MediaTime;
