//! The transcoder's gauges (and the counters kept by the pipeline), read from the outputs and
//! the hardware state at scrape time.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use telemetry::names;

use crate::hardware::{Hardware, HardwareIssue};
use crate::metrics::RungLabels;
use crate::outputs::Outputs;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamKindLabel {
    stream: String,
    kind: &'static str,
}

/// Per-rung counters and gauges from the outputs' snapshots: frames in, encoded and dropped,
/// the input queue, and the realtime factor. Register it with the service's metrics registry.
#[derive(Debug)]
pub struct OutputGauges(Weak<Outputs>);

impl OutputGauges {
    /// Gauges of `outputs` (held weakly).
    pub fn new(outputs: &Arc<Outputs>) -> OutputGauges {
        OutputGauges(Arc::downgrade(outputs))
    }
}

impl Collector for OutputGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(outputs) = self.0.upgrade() else {
            return Ok(());
        };
        let mut outputs = outputs.all();
        outputs.sort_by(|a, b| a.name().cmp(b.name()));
        let counter = ConstCounter::new(0u64);
        let gauge = ConstGauge::new(0.0f64);

        let mut frames = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_ENCODED,
            "Video frames out of each rung's encoder (repackaged, for passthrough)",
            None,
            counter.metric_type(),
        )?;
        // One look at each stream, for every family.
        let statuses: Vec<_> = outputs.iter().map(|o| (o, o.status())).collect();
        for (o, st) in &statuses {
            for r in st.pipeline.iter().flat_map(|s| &s.rungs) {
                let l = RungLabels {
                    stream: o.name().to_string(),
                    rung: r.name.clone(),
                };
                ConstCounter::new(r.frames).encode(frames.encode_family(&l)?)?;
            }
        }
        let mut dropped = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_DROPPED,
            "Frames dropped at the pipeline input because it fell behind",
            None,
            counter.metric_type(),
        )?;
        for (o, st) in &statuses {
            if let Some(s) = &st.pipeline {
                // At the pipeline's input, and before it, in the publish's queue.
                let queue = st.input_dropped;
                for (kind, n) in [
                    ("video", s.video_dropped + queue.video),
                    ("audio", s.audio_dropped + queue.audio),
                ] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstCounter::new(n).encode(dropped.encode_family(&l)?)?;
                }
            }
        }
        let mut silence = encoder.encode_descriptor(
            names::PIPELINE_AUDIO_SILENCE,
            "Silent audio frames pushed where the publisher's audio was missing",
            None,
            counter.metric_type(),
        )?;
        for (o, st) in &statuses {
            if let Some(s) = &st.pipeline {
                let l = StreamLabel {
                    stream: o.name().to_string(),
                };
                ConstCounter::new(s.audio_silence_frames).encode(silence.encode_family(&l)?)?;
            }
        }
        let mut frames_in = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_IN,
            "Frames accepted into the pipeline input",
            None,
            counter.metric_type(),
        )?;
        for (o, st) in &statuses {
            if let Some(s) = &st.pipeline {
                for (kind, n) in [("video", s.video_frames_in), ("audio", s.audio_frames_in)] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstCounter::new(n).encode(frames_in.encode_family(&l)?)?;
                }
            }
        }
        let mut queued = encoder.encode_descriptor(
            names::PIPELINE_QUEUE_DEPTH,
            "Frames waiting in the pipeline's input queue",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (o, st) in statuses.iter().filter(|(_, st)| !st.over) {
            if let Some(s) = &st.pipeline {
                for (kind, n) in [("video", s.video_queued), ("audio", s.audio_queued)] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstGauge::new(n as i64).encode(queued.encode_family(&l)?)?;
                }
            }
        }
        let mut shed = encoder.encode_descriptor(
            names::RUNG_SHED,
            "1 while the rung is shed under overload (left out of the master playlist, listed as gaps)",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (o, st) in statuses.iter().filter(|(_, st)| !st.over) {
            for r in &st.rungs {
                let l = RungLabels {
                    stream: o.name().to_string(),
                    rung: r.name.clone(),
                };
                ConstGauge::new(i64::from(r.shed.is_some())).encode(shed.encode_family(&l)?)?;
            }
        }
        let mut rtf = encoder.encode_descriptor(
            names::PIPELINE_REALTIME_FACTOR,
            "Media seconds produced per wall second over the last 5 s; below 1 means falling behind",
            None,
            gauge.metric_type(),
        )?;
        for (o, st) in statuses.iter().filter(|(_, st)| !st.over) {
            for r in &st.rungs {
                let Some(f) = r.realtime_factor else { continue };
                let l = RungLabels {
                    stream: o.name().to_string(),
                    rung: r.name.clone(),
                };
                ConstGauge::new(f).encode(rtf.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}

/// Accelerator state from the transcoder's probe, session budget and outputs: what is
/// available, encoder sessions, each live rung's backends, fallbacks and refusals. Register it
/// with the service's metrics registry.
#[derive(Debug)]
pub struct HardwareGauges {
    hardware: Weak<Hardware>,
    outputs: Weak<Outputs>,
}

impl HardwareGauges {
    /// Gauges of `hardware` and of the streams in `outputs` (both held weakly).
    pub fn new(hardware: &Arc<Hardware>, outputs: &Arc<Outputs>) -> HardwareGauges {
        HardwareGauges {
            hardware: Arc::downgrade(hardware),
            outputs: Arc::downgrade(outputs),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageKindLabels {
    stage: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    stream: String,
    rung: String,
    stage: &'static str,
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

impl Collector for HardwareGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use pipeline::accel::{Backend, Stage};
        let (Some(acc), Some(outputs)) = (self.hardware.upgrade(), self.outputs.upgrade()) else {
            return Ok(());
        };
        let gauge = ConstGauge::new(0i64);
        let counter = ConstCounter::new(0u64);
        let mut available = encoder.encode_descriptor(
            names::ACCELERATOR_AVAILABLE,
            "1 when an element of this kind is usable for this stage (start-up probe)",
            None,
            gauge.metric_type(),
        )?;
        for stage in Stage::ALL {
            for kind in Backend::ALL {
                let l = StageKindLabels {
                    stage: stage.as_str(),
                    kind: kind.as_str(),
                };
                ConstGauge::new(i64::from(acc.capabilities.available(stage, kind)))
                    .encode(available.encode_family(&l)?)?;
            }
        }
        ConstGauge::new(acc.sessions.in_use() as i64).encode(encoder.encode_descriptor(
            names::ENCODER_SESSIONS,
            "Hardware encoder sessions in use (one per hardware-encoded rung)",
            None,
            gauge.metric_type(),
        )?)?;
        ConstGauge::new(acc.sessions.limit().unwrap_or(0) as i64).encode(
            encoder.encode_descriptor(
                names::ENCODER_SESSIONS_LIMIT,
                "Hardware encoder session limit (nvidia.max_encode_sessions; 0 = none)",
                None,
                gauge.metric_type(),
            )?,
        )?;
        let mut backend = encoder.encode_descriptor(
            names::STREAM_BACKEND,
            "1 for the backend doing each stage of each live stream's rungs",
            None,
            gauge.metric_type(),
        )?;
        let mut live = outputs.all();
        live.sort_by(|a, b| a.name().cmp(b.name()));
        for o in &live {
            let status = o.status();
            let Some(b) = status.backends.filter(|_| !status.over) else {
                continue;
            };
            for r in b.rungs.iter().filter(|r| r.encoder.is_some()) {
                for (stage, kind) in [
                    (Stage::Decode, b.decoder.backend),
                    (Stage::Scale, b.scale),
                    (Stage::Encode, r.backend),
                ] {
                    let l = BackendLabels {
                        stream: o.name().to_string(),
                        rung: r.name.clone(),
                        stage: stage.as_str(),
                        backend: kind.as_str(),
                    };
                    ConstGauge::new(1i64).encode(backend.encode_family(&l)?)?;
                }
            }
        }
        for (name, help, counts) in [
            (
                names::ACCELERATOR_FALLBACKS,
                "Falls back to software, by reason",
                &acc.fallbacks,
            ),
            (
                names::ACCELERATOR_REFUSALS,
                "Publishes refused or streams ended for want of promised hardware, by reason",
                &acc.refusals,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for issue in HardwareIssue::ALL {
                ConstCounter::new(counts.get(issue)).encode(family.encode_family(
                    &ReasonLabel {
                        reason: issue.label(),
                    },
                )?)?;
            }
        }
        Ok(())
    }
}
