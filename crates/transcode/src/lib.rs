//! Ferrocast's transcoder: from a publish's media frames to HLS.
//!
//! The registry (in `ingest`) hands every publish's frames to [`Transcoder::consumer_factory`]
//! through a bounded queue (seam 2 in ARCHITECTURE.md). Each publish gets a feeder thread that
//! waits for the codec configurations and a keyframe, starts a [`pipeline::StreamPipeline`] for
//! the ladder, and packages its CMAF chunks with an [`hls::Packager`] in the stream's
//! [`StreamOutput`]. [`Outputs`] holds every stream's output and is the playback
//! [`hls::Source`] of the live streams (seam 4): a request that has to wait is held on its
//! output's `watch` cursor. [`Hardware`] is the accelerator probe and policy: it
//! refuses publishes, counts fallbacks, and rebuilds a stream in software when a hardware element
//! fails.
//!
//! Counters are recorded through [`TranscodeMetrics`]; gauges ([`OutputGauges`],
//! [`HardwareGauges`]) read the outputs and the hardware state at scrape time.
//!
//! The wiring, in short:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use transcode::{Hardware, Hls, Outputs, Transcode, TranscodeMetrics, Transcoder};
//!
//! # fn wire(registry: &ingest::StreamRegistry) -> Result<(), pipeline::Error> {
//! pipeline::init()?;
//! let (config, hls) = (Transcode::default(), Hls::default());
//! let hardware = Arc::new(Hardware::probe(&config, &Default::default()));
//! let mut metrics = prometheus_client::registry::Registry::default();
//! let metrics = Arc::new(TranscodeMetrics::new(&mut metrics, ["main"]));
//! let outputs = Outputs::new(hls.keep_ended);
//! let transcoder = Transcoder::new(&config, &hls, hardware, outputs.clone(), metrics);
//! registry.set_consumer_factory(transcoder.consumer_factory());
//! // ... publishes come and go; playback reads `outputs` as an `hls::Source` ...
//! # let _ = Duration::ZERO;
//! # Ok(())
//! # }
//! ```

mod api;
pub mod config;
mod continuity;
mod control;
mod feeder;
mod gauges;
mod hardware;
mod metrics;
mod output;
mod outputs;
mod overload;
mod packaged;
mod rate;
mod running;
mod sink;
mod source;
mod status;
mod transcoder;

pub use api::{capabilities_json, rungs_json};
pub use config::{
    Accelerator, Hls, Nvidia, OnAcceleratorFailure, Overload, RenditionConfig, Transcode,
};
pub use continuity::{Continuity, ContinuityStore};
pub use gauges::{HardwareGauges, OutputGauges};
pub use hardware::{Hardware, HardwareIssue, IssueCounts, ENV_TEST_FAULTS};
pub use metrics::{RestartReason, TranscodeMetrics};
pub use output::{ShedRefusal, StreamOutput};
pub use outputs::Outputs;
pub use overload::ShedReason;
pub use packaged::{RungStatus, Shed};
pub use status::Status;
pub use transcoder::Transcoder;
