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
mod packet;

#[doc(hidden)]
pub mod testing;

pub use demux::{Demuxer, MAX_AUDIO_PES, MAX_VIDEO_PES};

use std::fmt;

use media::MediaFrame;

/// Which elementary stream an outcome concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The H.264 stream.
    Video,
    /// The AAC stream.
    Audio,
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Track::Video => "video",
            Track::Audio => "audio",
        })
    }
}

/// An elementary stream the PMT lists whose codec Ferrocast recognises but does not ingest;
/// reported when the program has no supported stream of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unsupported {
    /// The kind of stream.
    pub track: Track,
    /// Its PMT stream type.
    pub stream_type: u8,
}

impl Unsupported {
    /// The codec name of a recognised stream type.
    fn codec_name(stream_type: u8) -> Option<&'static str> {
        Some(match stream_type {
            0x01 => "MPEG-1 video",
            0x02 => "MPEG-2 video",
            0x10 => "MPEG-4 Part 2 video",
            0x1b => "H.264",
            0x24 => "HEVC",
            0x33 => "VVC",
            0x03 => "MPEG-1 audio (MP3)",
            0x04 => "MPEG-2 audio (MP3)",
            0x0f => "AAC (ADTS)",
            0x11 => "AAC (LATM)",
            0x81 => "AC-3",
            0x87 => "E-AC-3",
            _ => return None,
        })
    }

    /// The track of a recognised stream type; `None` for types this crate does not know.
    fn track_of(stream_type: u8) -> Option<Track> {
        match stream_type {
            0x01 | 0x02 | 0x10 | 0x1b | 0x24 | 0x33 => Some(Track::Video),
            0x03 | 0x04 | 0x0f | 0x11 | 0x81 | 0x87 => Some(Track::Audio),
            _ => None,
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::codec_name(self.stream_type).unwrap_or("unknown codec");
        let wanted = match self.track {
            Track::Video => "H.264",
            Track::Audio => "AAC (ADTS)",
        };
        write!(
            f,
            "{} stream type 0x{:02x} ({name}); set the encoder to {wanted}",
            self.track, self.stream_type
        )
    }
}

/// Why a PES was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Packets of it were lost (a continuity counter gap).
    ContinuityError,
    /// It declared a length, but the next PES started before it was all there.
    Truncated,
    /// It grew past [`MAX_VIDEO_PES`] or [`MAX_AUDIO_PES`].
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
    /// [`Stats`] too.
    Dropped {
        /// The track it belonged to.
        track: Track,
        /// Why.
        reason: DropReason,
    },
}

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

/// Damage seen in the transport stream and survived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transport packets read.
    pub packets: u64,
    /// Bytes skipped while looking for packet alignment (garbage, or a partial first packet).
    pub skipped_bytes: u64,
    /// Times alignment was lost (a packet did not start with 0x47).
    pub sync_losses: u64,
    /// Packets with an impossible header (adaptation field too long, reserved control value).
    pub invalid_packets: u64,
    /// Packets flagged with `transport_error_indicator`, discarded.
    pub transport_errors: u64,
    /// Continuity counter gaps on the PSI and selected PIDs: packets were lost.
    pub cc_errors: u64,
    /// Duplicate packets, discarded.
    pub duplicate_packets: u64,
    /// PAT/PMT sections with a bad CRC or layout, ignored.
    pub psi_errors: u64,
    /// PES packets dropped (each also reported as [`Outcome::Dropped`]).
    pub pes_dropped: u64,
    /// Of those, the ones over the size limit.
    pub pes_oversized: u64,
    /// PES packets with a malformed header (each also reported as an [`Error`]).
    pub pes_errors: u64,
}

/// Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
/// code.
pub mod fuzz {
    use crate::{testing, Demuxer, Error, Outcome};

    fn drain(demuxer: &mut Demuxer, out: &mut Vec<Result<Outcome, Error>>) {
        while let Some(outcome) = demuxer.poll() {
            out.push(outcome);
        }
    }

    /// Runs `data` through a [`Demuxer`] whole and in chunks, and checks that both give the
    /// same outcomes and statistics. Never panics otherwise.
    ///
    /// Byte 0 selects: bits 0-3 the chunk size (`(n + 1) * 97` bytes); bit 4 puts a valid PAT
    /// and PMT (H.264 on PID 0x100, AAC on 0x101) before the data, so PES paths are reached
    /// quickly. The rest is the transport stream.
    pub fn demux(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else {
            return;
        };
        let mut input = Vec::new();
        if selector & 0x10 != 0 {
            let mut w = testing::TsWriter::new();
            input.extend(w.pat(testing::PMT_PID));
            input.extend(w.pmt(
                testing::PMT_PID,
                &[(0x1b, testing::VIDEO_PID), (0x0f, testing::AUDIO_PID)],
            ));
        }
        input.extend_from_slice(body);
        let chunk = (usize::from(selector & 0x0f) + 1) * 97;

        let mut whole = Demuxer::new();
        let mut a = Vec::new();
        whole.push(&input);
        drain(&mut whole, &mut a);
        whole.flush();
        drain(&mut whole, &mut a);

        let mut split = Demuxer::new();
        let mut b = Vec::new();
        for piece in input.chunks(chunk) {
            split.push(piece);
            drain(&mut split, &mut b);
        }
        split.flush();
        drain(&mut split, &mut b);

        assert_eq!(a, b, "outcomes depend on how the bytes were split");
        assert_eq!(whole.stats(), split.stats(), "stats depend on the split");
    }
}

#[cfg(test)]
mod tests;
