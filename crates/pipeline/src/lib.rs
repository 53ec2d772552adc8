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
//!                                                              │   → [videorate] → I420 caps → x264enc
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
//! The drive loop: start, push frames as they arrive (never blocks), finish.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pipeline::{ChunkSink, LadderConfig, RungInfo, StreamPipeline};
//! use media::cmaf::CmafChunk;
//!
//! struct Print;
//! impl ChunkSink for Print {
//!     fn on_rung_ready(&self, info: RungInfo) { println!("{} {}", info.name, info.video_codec) }
//!     fn on_chunk(&self, rung: usize, chunk: CmafChunk, _arrivals: &[std::time::Instant]) {
//!         println!("{rung} {:?}", chunk.kind)
//!     }
//!     fn on_error(&self, message: String) { eprintln!("{message}") }
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
mod chunk;
mod config;
#[doc(hidden)]
pub mod demo;
mod stream;
#[doc(hidden)]
pub mod testing;

use std::sync::OnceLock;

pub use config::{default_ladder, plan, LadderConfig, Rendition, RungPlan, X264_PRESETS};
pub use stream::{
    PipelineStats, PushResult, RungBackend, RungStats, StartOptions, StreamBackends, StreamPipeline,
};

/// Why a pipeline could not be built or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// GStreamer could not be initialised, or the fMP4 plugin could not be registered.
    #[error("GStreamer could not be initialised: {0}; check the GStreamer installation")]
    Init(String),
    /// A GStreamer element the pipeline needs is not installed.
    #[error("GStreamer element {0:?} is missing; install the plugin that provides it")]
    MissingElement(String),
    /// The input uses a codec the pipeline cannot handle.
    #[error("unsupported input codec: {0}")]
    UnsupportedCodec(String),
    /// The input's codec configuration is unusable.
    #[error("invalid codec configuration: {0}")]
    InvalidCodecConfig(String),
    /// The ladder configuration is invalid.
    #[error("invalid ladder configuration: {0}")]
    InvalidConfig(String),
    /// No rung is left after planning the ladder against the source.
    #[error(
        "no rung of the ladder fits a {0}x{1} source; add a passthrough rung or a smaller one"
    )]
    EmptyLadder(u32, u32),
    /// Building or starting the pipeline failed.
    #[error("GStreamer pipeline failed: {0}")]
    Pipeline(String),
    /// Hardware the accelerator policy promised is not available (no device, no free encoder
    /// session) and `on_accelerator_failure = "fail"` forbids going on in software.
    #[error("accelerator unavailable: {0}")]
    Accelerator(String),
}

impl From<gst::glib::BoolError> for Error {
    fn from(e: gst::glib::BoolError) -> Self {
        Error::Pipeline(e.to_string())
    }
}

impl From<gst::StateChangeError> for Error {
    fn from(e: gst::StateChangeError) -> Self {
        Error::Pipeline(e.to_string())
    }
}

/// Initialises GStreamer and registers the fMP4 muxers. Idempotent and thread-safe.
pub fn init() -> Result<(), Error> {
    static INIT: OnceLock<Result<(), Error>> = OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| Error::Init(e.to_string()))?;
        gstfmp4::plugin_register_static().map_err(|e| Error::Init(e.to_string()))?;
        Ok(())
    })
    .clone()
}

/// What a rung turned out to be, reported once its output format is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RungInfo {
    /// Position of the rung (the `rung` argument of [`ChunkSink::on_chunk`]).
    pub index: usize,
    /// The rendition's name.
    pub name: String,
    /// Output width in pixels, from the output's SPS.
    pub width: u32,
    /// Output height in pixels, from the output's SPS.
    pub height: u32,
    /// Output frame rate, when known.
    pub frame_rate: Option<f64>,
    /// Target video bitrate in kbit/s; `None` for passthrough (the source's bitrate applies).
    pub video_kbps: Option<u32>,
    /// RFC 6381 codec string of the output video, from its real SPS (e.g. `avc1.64001f`).
    pub video_codec: String,
    /// RFC 6381 codec string of the audio muxed into the rung, if any.
    pub audio_codec: Option<String>,
    /// True for the passthrough rung.
    pub passthrough: bool,
}

/// Where a pipeline's output goes. Called from GStreamer streaming threads: keep it short, and
/// know that blocking here stalls that rung (and, through back-pressure, makes `push` drop).
pub trait ChunkSink: Send + Sync + 'static {
    /// A rung's output format is known; called before its first init chunk.
    fn on_rung_ready(&self, info: RungInfo);
    /// One complete muxer output of rung `rung`. `arrivals` holds when each video frame that the
    /// chunk presents was handed to [`StreamPipeline::push`] (empty for init chunks): the start
    /// of its ingest-to-publish latency.
    fn on_chunk(&self, rung: usize, chunk: media::cmaf::CmafChunk, arrivals: &[std::time::Instant]);
    /// The pipeline failed; the stream should end. Called at most once (by the default
    /// [`ChunkSink::on_failure`]).
    fn on_error(&self, message: String);
    /// The pipeline failed. `failure.accelerator` says whether a hardware element failed (the
    /// owner may then rebuild the stream in software: [`StreamPipeline::input_offset`] continues
    /// the timeline). Called at most once; the default hands the message to `on_error`.
    fn on_failure(&self, failure: Failure) {
        self.on_error(failure.message);
    }
    /// Every rung has flushed its last chunk after [`StreamPipeline::finish`].
    fn on_eos(&self) {}
}

/// Why a running pipeline stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// GStreamer's error, with the element path and debug text.
    pub message: String,
    /// Set when the failing element is a hardware one (or inside one).
    pub accelerator: Option<AcceleratorFault>,
}

/// The hardware element that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceleratorFault {
    /// The stage it served.
    pub stage: accel::Stage,
    /// Its backend.
    pub backend: accel::Backend,
    /// Its element name in the pipeline (e.g. `r1-enc`, `decoder`).
    pub element: String,
}
