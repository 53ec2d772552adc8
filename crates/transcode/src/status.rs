//! A stream's status as the gauges, the API and the health report read it: one snapshot of the
//! packaged state, the running pipeline's element chain and counters, and the input's drops.

use std::sync::Mutex;

use ingest::frames::Dropped;
use pipeline::{PipelineStats, StatsReader, StreamBackends};

use crate::packaged::RungStatus;

/// One look at a stream ([`crate::StreamOutput::status`]).
#[derive(Debug, Clone)]
pub struct Status {
    /// The stream has ended or failed.
    pub over: bool,
    /// The playlists wait for the publisher to come back.
    pub paused: bool,
    /// Every rung in ladder order; empty before packaging.
    pub rungs: Vec<RungStatus>,
    /// The element chain of the stream's newest pipeline (kept after it ends).
    pub backends: Option<StreamBackends>,
    /// The running pipeline's counters; none once it has finished.
    pub pipeline: Option<PipelineStats>,
    /// Frames the publish's queue dropped before they reached the pipeline (it fell behind, or
    /// was starting).
    pub input_dropped: Dropped,
}

/// The feeder's pipeline as the status sees it. The feeder owns the pipeline; it says here
/// when one starts (its chain and a reader of its counters) and when it finishes.
#[derive(Debug, Default)]
pub(crate) struct PipelineView(Mutex<View>);

#[derive(Debug, Default)]
struct View {
    backends: Option<StreamBackends>,
    stats: Option<StatsReader>,
}

impl PipelineView {
    /// A pipeline with this chain started.
    pub(crate) fn started(&self, backends: StreamBackends, stats: StatsReader) {
        *self.0.lock().expect("pipeline view lock") = View {
            backends: Some(backends),
            stats: Some(stats),
        };
    }

    /// The pipeline finished: its counters go; its chain stays, for the API.
    pub(crate) fn finished(&self) {
        self.0.lock().expect("pipeline view lock").stats = None;
    }

    /// The chain and the counters now.
    pub(crate) fn read(&self) -> (Option<StreamBackends>, Option<PipelineStats>) {
        let view = self.0.lock().expect("pipeline view lock");
        (view.backends.clone(), view.stats.as_ref().map(|s| s.read()))
    }
}
