//! What a pipeline hands its owner: rung announcements, CMAF chunks, failures (seam 3 in
//! ARCHITECTURE.md). The owner implements [`ChunkSink`]; nothing here knows GStreamer.

use crate::accel::{Backend, Stage};

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

/// Where a pipeline's output goes. Called from GStreamer streaming threads, or, for a stream on
/// the direct path, from the thread that calls `push` and `finish`: keep it short, and know
/// that blocking here stalls that rung (through back-pressure, `push` drops), or the caller
/// itself.
pub trait ChunkSink: Send + Sync + 'static {
    /// A rung's output format is known; called before its first init chunk.
    fn on_rung_ready(&self, info: RungInfo);
    /// One complete muxer output of rung `rung`. `arrivals` holds when each video frame that the
    /// chunk presents was handed to [`crate::StreamPipeline::push`] (empty for init chunks): the
    /// start of its ingest-to-publish latency.
    fn on_chunk(&self, rung: usize, chunk: media::cmaf::CmafChunk, arrivals: &[std::time::Instant]);
    /// Rung `rung` was shed for the segment from `start` (media time) lasting `duration`
    /// ([`crate::StreamPipeline::shed`]): it has no media there, and every other rung has a
    /// segment of exactly that time. Called in segment order, after the rung's last chunk before
    /// it. The default ignores it.
    fn on_gap(&self, rung: usize, start: media::MediaTime, duration: media::MediaTime) {
        let _ = (rung, start, duration);
    }
    /// Rung `rung` is shed from the cut at `at` (media time): its segment before it ends there.
    /// Called once its last chunk before `at` has been handed on, before the first
    /// [`ChunkSink::on_gap`] of that shed. The default ignores it.
    fn on_shed(&self, rung: usize, at: media::MediaTime) {
        let _ = (rung, at);
    }
    /// The pipeline failed: the stream ends, unless `failure.accelerator` says a hardware
    /// element failed and the owner rebuilds the stream in software
    /// ([`crate::StreamPipeline::input_offset`] continues the timeline). Called at most once.
    fn on_failure(&self, failure: Failure);
    /// Every rung has flushed its last chunk after [`crate::StreamPipeline::finish`].
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
    pub stage: Stage,
    /// Its backend.
    pub backend: Backend,
    /// Its element name in the pipeline (e.g. `r1-enc`, `decoder`).
    pub element: String,
}
