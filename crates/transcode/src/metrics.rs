//! The transcoder's counters and histograms, registered at construction and recorded where each
//! event happens: a pipeline failing or being rebuilt, a chunk packaged, a segment completed, a
//! part listed.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use telemetry::{names, stream_counter, StreamCounter};

/// Labels of per-rung metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RungLabels {
    pub(crate) stream: String,
    pub(crate) rung: String,
}

/// Labels of pipeline restart counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabels {
    stream: String,
    reason: &'static str,
}

/// Why a pipeline was rebuilt mid-publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// The publisher changed resolution or profile.
    ConfigChange,
    /// A hardware element failed and the stream goes on in software.
    HardwareFallback,
    /// The publisher's timestamps jumped (back, or far ahead: an encoder restart).
    TimestampJump,
}

impl RestartReason {
    const ALL: [RestartReason; 3] = [
        RestartReason::ConfigChange,
        RestartReason::HardwareFallback,
        RestartReason::TimestampJump,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            RestartReason::ConfigChange => "config_change",
            RestartReason::HardwareFallback => "hardware_fallback",
            RestartReason::TimestampJump => "timestamp_jump",
        }
    }
}

/// Labels of shedding counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    stream: String,
    reason: &'static str,
}

type RungHistograms = Family<RungLabels, Histogram, fn() -> Histogram>;

/// The transcoder's counters and histograms.
#[derive(Debug)]
pub struct TranscodeMetrics {
    pipeline_errors: StreamCounter,
    pipeline_restarts: Family<RestartLabels, Counter>,
    rung_sheds: Family<ShedLabels, Counter>,
    segment_durations: RungHistograms,
    hls_segments: Family<RungLabels, Counter>,
    hls_bytes: Family<RungLabels, Counter>,
    hls_parts: Family<RungLabels, Counter>,
    publish_latency: RungHistograms,
}

impl TranscodeMetrics {
    /// Creates the transcoder's metrics, registered into `registry`. The error and restart
    /// counters of every configured stream in `streams` start at 0, so that an alert on their
    /// rate sees the first failure.
    pub fn new<'a>(
        registry: &mut Registry,
        streams: impl IntoIterator<Item = &'a str>,
    ) -> TranscodeMetrics {
        let pipeline_errors = stream_counter(
            registry,
            names::PIPELINE_ERRORS,
            "Pipeline failures (the stream was ended), by stream",
        );
        let segment_durations = RungHistograms::new_with_constructor(|| {
            Histogram::new([0.5, 1.0, 1.5, 1.9, 2.1, 2.5, 3.0, 4.0, 6.0, 10.0])
        });
        registry.register_with_unit(
            names::HLS_SEGMENT_DURATION,
            "Durations of completed HLS segments, by stream and rung",
            Unit::Seconds,
            segment_durations.clone(),
        );
        let hls_segments = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_SEGMENTS,
            "HLS segments completed",
            hls_segments.clone(),
        );
        let hls_bytes = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_BYTES,
            "Bytes packaged into HLS (init segments, segments)",
            hls_bytes.clone(),
        );
        let hls_parts = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_PARTS,
            "LL-HLS parts (CMAF chunks) listed",
            hls_parts.clone(),
        );
        let publish_latency = RungHistograms::new_with_constructor(|| {
            Histogram::new([
                0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0,
            ])
        });
        registry.register_with_unit(
            names::INGEST_TO_PUBLISH_LATENCY,
            "Per video frame: from its arrival to the listing of the part (or segment) holding it",
            Unit::Seconds,
            publish_latency.clone(),
        );
        let pipeline_restarts = Family::<RestartLabels, Counter>::default();
        registry.register(
            names::PIPELINE_RESTARTS,
            "Pipelines rebuilt mid-publish, by stream and reason",
            pipeline_restarts.clone(),
        );
        let rung_sheds = Family::<ShedLabels, Counter>::default();
        registry.register(
            names::RUNG_SHEDS,
            "Rungs shed under overload, by stream and reason",
            rung_sheds.clone(),
        );
        let metrics = TranscodeMetrics {
            pipeline_errors,
            pipeline_restarts,
            rung_sheds,
            segment_durations,
            hls_segments,
            hls_bytes,
            hls_parts,
            publish_latency,
        };
        for stream in streams {
            telemetry::add(&metrics.pipeline_errors, stream, 0);
            for reason in RestartReason::ALL {
                // inc_by(0) makes the series exist.
                metrics.restart_counter(stream, reason).inc_by(0);
            }
            for reason in crate::overload::ShedReason::ALL {
                metrics.shed_counter(stream, reason).inc_by(0);
            }
        }
        metrics
    }

    fn restart_counter(&self, stream: &str, reason: RestartReason) -> Counter {
        self.pipeline_restarts
            .get_or_create(&RestartLabels {
                stream: stream.to_owned(),
                reason: reason.label(),
            })
            .clone()
    }

    fn shed_counter(&self, stream: &str, reason: crate::overload::ShedReason) -> Counter {
        self.rung_sheds
            .get_or_create(&ShedLabels {
                stream: stream.to_owned(),
                reason: reason.label(),
            })
            .clone()
    }

    /// Counts a rung shed under overload.
    pub(crate) fn rung_shed(&self, stream: &str, reason: crate::overload::ShedReason) {
        self.shed_counter(stream, reason).inc();
    }

    /// Counts a pipeline rebuilt mid-publish.
    pub fn pipeline_restart(&self, stream: &str, reason: RestartReason) {
        self.restart_counter(stream, reason).inc();
    }

    /// Counts a pipeline failure.
    pub fn pipeline_error(&self, stream: &str) {
        telemetry::add(&self.pipeline_errors, stream, 1);
    }

    /// Counts a listed part and observes the ingest-to-publish latency of the frames that
    /// became visible to players with it.
    pub(crate) fn listed(
        &self,
        labels: &RungLabels,
        part: bool,
        arrivals: &[Instant],
        now: Instant,
    ) {
        if part {
            self.hls_parts.get_or_create(labels).inc();
        }
        if !arrivals.is_empty() {
            let h = self.publish_latency.get_or_create(labels);
            for a in arrivals {
                h.observe(now.saturating_duration_since(*a).as_secs_f64());
            }
        }
    }

    /// Records a completed segment: counts it and observes its duration.
    pub(crate) fn segment_completed(&self, labels: &RungLabels, seconds: f64) {
        self.hls_segments.get_or_create(labels).inc();
        self.segment_durations
            .get_or_create(labels)
            .observe(seconds);
    }

    /// Counts bytes handed to the packager.
    pub(crate) fn packaged(&self, labels: &RungLabels, bytes: u64) {
        self.hls_bytes.get_or_create(labels).inc_by(bytes);
    }
}

impl RungLabels {
    pub(crate) fn new(stream: &str, rung: &str) -> RungLabels {
        RungLabels {
            stream: stream.to_owned(),
            rung: rung.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn configured_streams_start_with_zeroed_error_and_restart_counters() {
        let mut registry = Registry::default();
        let m = TranscodeMetrics::new(&mut registry, ["main"]);
        let text = encode(&registry);
        for zero in [
            r#"ferrocast_pipeline_errors_total{stream="main"} 0"#,
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="config_change"} 0"#,
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="hardware_fallback"} 0"#,
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="timestamp_jump"} 0"#,
            r#"ferrocast_rung_sheds_total{stream="main",reason="behind_realtime"} 0"#,
            r#"ferrocast_rung_sheds_total{stream="main",reason="input_dropping"} 0"#,
        ] {
            assert!(text.contains(zero), "{zero} missing:\n{text}");
        }
        m.pipeline_restart("main", RestartReason::ConfigChange);
        assert!(encode(&registry).contains(
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="config_change"} 1"#
        ));
    }
}
