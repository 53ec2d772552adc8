//! What the pipeline calls (from GStreamer's streaming threads, or from the feeder's own on the
//! direct path): chunks into the output, failures into the publish's end signal (or a rebuild
//! in software).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ingest::{EndReason, EndSignal};
use media::cmaf::CmafChunk;
use pipeline::accel::FailurePolicy;
use pipeline::{ChunkSink, Failure, RungInfo};

use crate::continuity::ContinuityStore;
use crate::control::{Control, Fallback};
use crate::hardware::{Hardware, HardwareIssue};
use crate::metrics::{RungLabels, TranscodeMetrics};
use crate::output::StreamOutput;

/// What the pipeline calls.
pub(crate) struct Sink {
    pub(crate) output: Arc<StreamOutput>,
    pub(crate) metrics: Arc<TranscodeMetrics>,
    /// Wall clock of media time zero: the arrival of the first frame fed to the pipeline.
    pub(crate) epoch: SystemTime,
    pub(crate) ended: EndSignal,
    pub(crate) hardware: Arc<Hardware>,
    /// Where the playlists' continuity is kept beyond this process, if anywhere.
    pub(crate) continuity: Option<Arc<dyn ContinuityStore>>,
}

impl ChunkSink for Sink {
    fn on_rung_ready(&self, info: RungInfo) {
        tracing::debug!(stream = %self.output.name(), rung = %info.name, width = info.width, height = info.height, codec = %info.video_codec, "rung ready");
        self.output.packaged.on_rung_ready(info);
    }

    fn on_chunk(&self, rung: usize, chunk: CmafChunk, arrivals: &[Instant]) {
        let pts = u64::try_from(chunk.pts.as_nanos()).unwrap_or(0);
        let pdt = self.epoch + Duration::from_nanos(pts);
        let bytes = chunk.data.len() as u64;
        if let Some(listed) = self.output.packaged.on_chunk(rung, chunk, pdt, arrivals) {
            let now = Instant::now();
            let labels = RungLabels::new(self.output.name().as_str(), &listed.rung);
            self.metrics.packaged(&labels, bytes);
            if let Some(d) = listed.completed {
                self.metrics.segment_completed(&labels, d.as_secs_f64());
            }
            self.metrics
                .listed(&labels, listed.part, &listed.arrivals, now);
            if let (Some(store), Some(state)) = (&self.continuity, listed.continuity) {
                store.save(self.output.name().as_str(), state);
            }
        }
    }

    fn on_shed(&self, rung: usize, at: media::MediaTime) {
        self.output.packaged.end_segment(rung, at);
    }

    fn on_gap(&self, rung: usize, start: media::MediaTime, duration: media::MediaTime) {
        let pts = u64::try_from(start.as_nanos()).unwrap_or(0);
        let pdt = self.epoch + Duration::from_nanos(pts);
        self.output.packaged.on_gap(rung, start, duration, pdt);
    }

    fn on_failure(&self, failure: Failure) {
        let Some(fault) = &failure.accelerator else {
            return self.fail(failure.message);
        };
        if self.hardware.on_failure == FailurePolicy::Fallback {
            tracing::warn!(
                stream = %self.output.name(),
                stage = fault.stage.as_str(),
                element = %fault.element,
                error = %failure.message,
                "hardware {} failed; rebuilding the stream in software",
                fault.stage.as_str()
            );
            self.hardware.fallback(HardwareIssue::RuntimeError);
            self.output.control.send(Control::Fallback(Fallback {
                element: fault.element.clone(),
                backend: fault.backend.to_string(),
                message: failure.message,
            }));
            return;
        }
        tracing::error!(
            stream = %self.output.name(),
            stage = fault.stage.as_str(),
            element = %fault.element,
            error = %failure.message,
            "hardware {} failed and transcode.on_accelerator_failure = \"fail\"; ending the stream",
            fault.stage.as_str()
        );
        self.hardware.refuse(HardwareIssue::RuntimeError);
        self.fail(failure.message);
    }
}

impl Sink {
    /// Ends the publish: the ingest connection closes, and unpublish tidies up.
    fn fail(&self, message: String) {
        tracing::error!(stream = %self.output.name(), error = %message, "pipeline failed; ending the stream");
        self.metrics.pipeline_error(self.output.name().as_str());
        self.ended.end(EndReason::Failed(message));
    }
}
