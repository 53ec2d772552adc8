//! Ferrocast's transcoding pipeline: the only crate that links GStreamer.
//!
//! One [`StreamPipeline`] per live stream takes typed [`media::MediaFrame`]s (H.264 access units
//! and raw AAC frames with timestamps), transcodes the video into the configured ladder with
//! x264, passes the source video and the AAC audio through, and hands each rung's fragmented MP4
//! output to a [`ChunkSink`] as [`media::cmaf::CmafChunk`]s. Every rung is muxed audio + video by
//! `isofmp4mux` (from gst-plugin-fmp4; `cmafmux` takes one stream only), and every rung starts
//! its segments at the same presentation time, so players can switch rungs at any segment.
//!
//! ```text
//! appsrc(h264) → h264parse → tee ─┬─ queue → isofmp4mux(source) → appsink
//!                                 └─ queue → avdec_h264 → tee ─┬─ queue → videoscale → videoconvert
//!                                                              │   → [fps cap] → I420 caps → x264enc
//!                                                              │   → h264parse → isofmp4mux(rung) → appsink
//!                                                              └─ ... one branch per rung
//! appsrc(aac) → aacparse → tee → queue → every muxer
//! ```
//!
//! Segment cadence: a source keyframe at or after `previous cut + segment_duration` becomes the
//! next cut. For that frame the pipeline sends a force-key-unit event into every encoder (so each
//! makes an IDR on exactly that frame) and asks every muxer to split there
//! (`split-at-running-time`). The passthrough rung cuts on the same source keyframe.
//!
//! Hardware: [`accel`] probes which elements exist and open, and selects per stage (NVDEC,
//! CUDA scale, NVENC, VA-API, or software); [`StreamPipeline::start_with`] builds that chain,
//! admits hardware-encoded rungs against a session budget, and reports a failing hardware
//! element through [`ChunkSink::on_failure`] so the owner can rebuild the stream in software.
//!
//! Inside, each file does one thing, and no two import each other: [`StreamPipeline`]
//! (`stream`) asks `input` what to do with each frame (pure: timestamps, drops, keyframe gate,
//! segment cuts) and does the GStreamer part; `graph` builds the elements (with `elements` and
//! `caps`), `probes` count frames, force key units at cuts and cap frame rates, `output` turns
//! a rung's appsink samples into chunks (with `chunk`), and `bus` watches for the end and for
//! errors. `chain` admits encoders against the session budget, `shared` holds what the
//! streaming threads share, `config` plans the ladder, and `sink`, `stats` and `error` are the
//! types the owner sees.
//!
//! The drive loop: start, push frames as they arrive (never blocks), finish.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pipeline::{ChunkSink, Failure, LadderConfig, RungInfo, StreamPipeline};
//! use media::cmaf::CmafChunk;
//!
//! struct Print;
//! impl ChunkSink for Print {
//!     fn on_rung_ready(&self, info: RungInfo) { println!("{} {}", info.name, info.video_codec) }
//!     fn on_chunk(&self, rung: usize, chunk: CmafChunk, _arrivals: &[std::time::Instant]) {
//!         println!("{rung} {:?}", chunk.kind)
//!     }
//!     fn on_failure(&self, failure: Failure) { eprintln!("{}", failure.message) }
//! }
//!
//! # fn main() -> Result<(), pipeline::Error> {
//! pipeline::init()?;
//! let input = pipeline::testing::generate(&pipeline::testing::Source::default())?;
//! let ladder = LadderConfig::default();
//! let p = StreamPipeline::start("main", &input.video, input.audio.as_ref(), &ladder, Arc::new(Print))?;
//! for frame in &input.frames {
//!     p.push(frame);
//! }
//! p.finish();
//! # Ok(())
//! # }
//! ```

// The gstreamer-rs crates under the short names their own documentation uses.
extern crate gstreamer as gst;
extern crate gstreamer_app as gst_app;
extern crate gstreamer_video as gst_video;

pub mod accel;
mod bus;
mod caps;
mod chain;
mod chunk;
mod config;
#[doc(hidden)]
pub mod demo;
mod direct;
mod elements;
mod engine;
mod error;
mod graph;
mod init;
mod input;
mod output;
mod probes;
mod shared;
mod silence;
mod sink;
mod stats;
mod stream;
#[doc(hidden)]
pub mod testing;

pub use chain::{RungBackend, StartOptions, StreamBackends};
pub use config::{
    audio_only_plan, default_ladder, plan, with_tracks, LadderConfig, Rendition, RungPlan,
    X264_PRESETS,
};
pub use engine::StreamPipeline;
pub use error::Error;
pub use init::init;
pub use sink::{AcceleratorFault, ChunkSink, Failure, RungInfo};
pub use stats::{PipelineStats, RungStats};
pub use stream::{check_track, PushResult, StatsReader};
