//! The settings and shared state every publish's feeder works with.

use std::sync::{Arc, OnceLock};

use pipeline::LadderConfig;

use crate::config::{Hls, Overload, Transcode};
use crate::continuity::ContinuityStore;
use crate::hardware::Hardware;
use crate::metrics::TranscodeMetrics;
use crate::outputs::Outputs;

/// The transcoder: the ladder, the packaging, the hardware, and every stream's output. The
/// registry reaches it through [`Transcoder::consumer_factory`].
#[derive(Debug)]
pub struct Transcoder {
    pub(crate) ladder: Arc<LadderConfig>,
    pub(crate) packager: hls::PackagerConfig,
    pub(crate) outputs: Arc<Outputs>,
    pub(crate) metrics: Arc<TranscodeMetrics>,
    pub(crate) hardware: Arc<Hardware>,
    pub(crate) overload: Overload,
    /// Each rendition's `shed_priority`, by name.
    pub(crate) shed_priorities: Vec<(String, u32)>,
    /// Where playlists' continuity is kept beyond this process (cluster mode), once set.
    pub(crate) continuity: OnceLock<Arc<dyn ContinuityStore>>,
    /// `transcode.direct_passthrough`: passthrough-only streams are repackaged without
    /// GStreamer.
    pub(crate) direct_passthrough: bool,
}

impl Transcoder {
    /// A transcoder for this configuration, on the probed `hardware`, writing into `outputs`.
    pub fn new(
        transcode: &Transcode,
        hls: &Hls,
        hardware: Arc<Hardware>,
        outputs: Arc<Outputs>,
        metrics: Arc<TranscodeMetrics>,
    ) -> Arc<Transcoder> {
        Arc::new(Transcoder {
            ladder: Arc::new(transcode.ladder(hls)),
            packager: hls.packager(),
            outputs,
            metrics,
            hardware,
            overload: transcode.overload.clone(),
            shed_priorities: transcode
                .renditions
                .iter()
                .map(|r| (r.name.to_string(), r.shed_priority))
                .collect(),
            continuity: OnceLock::new(),
            direct_passthrough: transcode.direct_passthrough,
        })
    }

    /// Keeps every stream's playlist continuity in `store` too, so that a publish of the
    /// stream on another server continues the playlists (cluster mode). Set once, before
    /// publishes start; a second call is ignored.
    pub fn set_continuity(&self, store: Arc<dyn ContinuityStore>) {
        let _ = self.continuity.set(store);
    }

    /// Every stream's output.
    pub fn outputs(&self) -> &Arc<Outputs> {
        &self.outputs
    }

    /// The accelerator state.
    pub fn hardware(&self) -> &Arc<Hardware> {
        &self.hardware
    }
}
