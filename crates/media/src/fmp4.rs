//! A fragmented MP4 (CMAF) writer for tracks passed through as they came: the init segment
//! (`ftyp` + `moov`) of a video and an audio track, and fragments (`moof` + `mdat`) of their
//! samples. Sans-IO: configurations and samples in, bytes out.
//!
//! Issue 17: a passthrough path without GStreamer. Nothing uses it yet. [`Chunker`] cuts frames
//! into CMAF chunks as cmafmux does for a passed-through rung.
//! `crates/flv/tests/fmp4_writer.rs` writes what ffmpeg published and reads it back with
//! ffprobe.
//!
//! Layout (ISO/IEC 14496-12, the CMAF profile of it):
//! - init: `ftyp`, `moov` { `mvhd`, `trak` per track { `tkhd`, `mdia` { `mdhd`, `hdlr`,
//!   `minf` { `vmhd`|`smhd`, `dinf`/`dref`, `stbl` with one sample entry and empty tables } } },
//!   `mvex` { `trex` per track } };
//! - fragment: `moof` { `mfhd`, `traf` per track { `tfhd` (default-base-is-moof), `tfdt`
//!   (64-bit), `trun` (version 1: data offset, and per sample its duration, size, flags and
//!   signed composition offset) } }, then one `mdat` with each track's samples in turn.

mod chunker;
mod write;

pub use chunker::Chunker;
pub use write::{fragment, init_segment, Error, Run, Sample, Track, VIDEO_TIMESCALE};
