//! A sans-IO MPEG-TS demuxer: the transport stream an SRT publisher sends, turned into typed
//! [`media::MediaFrame`]s.
//!
//! SRT carries MPEG-TS as a byte stream whose messages are not aligned to 188-byte packets
//! (`srt-live-transmit` sends 1456-byte messages; 1316 = 7 × 188 is common but not promised).
//! The [`Demuxer`] therefore takes bytes in any chunking, finds packet alignment itself (three
//! sync bytes 188 apart) and finds it again after garbage.
//!
//! It follows the first program of the PAT and, of that program's PMT, the first H.264
//! (stream type 0x1B) and AAC ADTS (0x0F) elementary streams. Other codecs it knows (HEVC,
//! MPEG-1/2 video, MP3, LATM AAC, AC-3, ...) are reported as [`Outcome::Unsupported`] so the
//! caller can refuse the stream with a clear reason.
//!
//! - Video: one PES is one access unit. SPS and PPS become a [`MediaFrame::VideoConfig`] (an
//!   `avcC` record, 4-byte NAL lengths) when they first arrive and whenever they change; they,
//!   access unit delimiters and filler data are left out of the frames, whose NAL units are
//!   length-prefixed. Frames before the first configuration are dropped and reported
//!   ([`Outcome::WaitingForConfig`]).
//! - Audio: each ADTS frame becomes a [`MediaFrame::Audio`] (raw AAC, header stripped), the
//!   i-th frame of a PES timed i × 1024 samples after the PES timestamp. The first ADTS header,
//!   and any that changes, gives a [`MediaFrame::AudioConfig`].
//! - Order: a video PES whose PES_packet_length is 0 (the usual case) ends only when the next
//!   one starts, so each video frame comes out one frame late and audio may run that far
//!   ahead of it in the outcome order; a bounded PES comes out as soon as it is complete.
//! - Time: 90 kHz PTS/DTS, extended past the 33-bit wrap on one timeline shared by both
//!   tracks, in nanoseconds ([`media::MediaTime::from_90khz`]); not rebased to zero.
//! - Damage: continuity-counter gaps, transport-error packets, duplicates, lost sync, bad PSI
//!   and oversized PES (over [`MAX_VIDEO_PES`] / [`MAX_AUDIO_PES`]) are counted in [`Stats`];
//!   a PES that lost bytes is dropped ([`Outcome::Dropped`]) and the demuxer resumes at the
//!   next PES. Nothing panics, whatever the bytes.
//!
//! [`MediaFrame::VideoConfig`]: media::MediaFrame::VideoConfig
//! [`MediaFrame::Audio`]: media::MediaFrame::Audio
//! [`MediaFrame::AudioConfig`]: media::MediaFrame::AudioConfig
//!
//! The drive loop, as the SRT driver runs it for each message it receives:
//!
//! ```
//! use media::MediaFrame;
//! use mpegts::{Demuxer, Outcome};
//!
//! // Three seconds of 30 fps H.264 and 48 kHz AAC, as a publisher would send them.
//! let stream = mpegts::testing::synthetic_stream(90_000, 90);
//!
//! let mut demuxer = Demuxer::new();
//! let (mut configs, mut video, mut audio) = (0, 0, 0);
//! for message in stream.chunks(1456) {
//!     demuxer.push(message);
//!     while let Some(outcome) = demuxer.poll() {
//!         match outcome {
//!             Ok(Outcome::Frame(MediaFrame::VideoConfig(c))) => {
//!                 assert_eq!((c.width, c.height, c.nal_length_size), (640, 360, 4));
//!                 configs += 1;
//!             }
//!             Ok(Outcome::Frame(MediaFrame::AudioConfig(c))) => {
//!                 assert_eq!((c.sample_rate, c.channels), (48_000, 2));
//!                 configs += 1;
//!             }
//!             Ok(Outcome::Frame(MediaFrame::Video(_))) => video += 1,
//!             Ok(Outcome::Frame(MediaFrame::Audio(_))) => audio += 1,
//!             Ok(Outcome::Program { .. }) => {}
//!             Ok(other) => panic!("a clean stream gives no {other:?}"),
//!             // Errors are per PES: log, count, carry on.
//!             Err(e) => panic!("{e}"),
//!         }
//!     }
//! }
//! // At the end of the stream, the last video PES (whose end is only known when the next
//! // begins) comes out.
//! demuxer.flush();
//! while let Some(outcome) = demuxer.poll() {
//!     if let Ok(Outcome::Frame(MediaFrame::Video(_))) = outcome {
//!         video += 1;
//!     }
//! }
//! assert_eq!((configs, video), (2, 90));
//! assert!(audio >= 2 * 70);
//! assert_eq!(demuxer.stats().cc_errors, 0);
//! ```

mod demux;
mod error;
mod outcome;
mod packet;
mod stats;
mod track;
mod unsupported;

pub mod fuzz;
#[doc(hidden)]
pub mod testing;

pub use demux::{Demuxer, MAX_AUDIO_PES, MAX_VIDEO_PES};
pub use error::Error;
pub use outcome::{DropReason, Outcome};
pub use stats::Stats;
pub use track::Track;
pub use unsupported::Unsupported;

#[cfg(test)]
mod tests;
