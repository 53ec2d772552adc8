//! Playback's gauges: requests held now, and each configured stream's viewers.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use telemetry::{names, StreamLabel};

use crate::held::{HeldKind, HeldRequests};
use crate::viewers::Viewers;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The held-requests and viewers gauges, read at scrape time. Register it with the service's
/// metrics registry.
#[derive(Debug)]
pub struct PlaybackGauges {
    held: Arc<HeldRequests>,
    viewers: Arc<Viewers>,
}

impl PlaybackGauges {
    /// Gauges of these counts.
    pub fn new(held: Arc<HeldRequests>, viewers: Arc<Viewers>) -> PlaybackGauges {
        PlaybackGauges { held, viewers }
    }
}

impl Collector for PlaybackGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            names::HTTP_HELD_REQUESTS,
            "Requests held waiting for media now (blocking playlist reloads, parts not produced yet)",
            None,
            gauge.metric_type(),
        )?;
        for kind in [HeldKind::Playlist, HeldKind::Part] {
            ConstGauge::new(self.held.get(kind)).encode(family.encode_family(&KindLabel {
                kind: kind.as_str(),
            })?)?;
        }
        let mut family = encoder.encode_descriptor(
            names::STREAM_VIEWERS,
            "Distinct playback sessions seen in the last 30 s",
            None,
            gauge.metric_type(),
        )?;
        let now = std::time::Instant::now();
        for stream in self.viewers.tracked() {
            let n = self.viewers.count(&stream, now);
            ConstGauge::new(n as i64).encode(family.encode_family(&StreamLabel { stream })?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn configured_streams_start_with_zero_viewers() {
        let viewers = Arc::new(Viewers::default());
        viewers.track(["main", "second"]);
        let held = Arc::new(HeldRequests::default());
        let _waiting = held.hold(HeldKind::Part);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PlaybackGauges::new(held.clone(), viewers)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"ferrocast_stream_viewers{stream="main"} 0"#,
            r#"ferrocast_stream_viewers{stream="second"} 0"#,
            r#"ferrocast_http_held_requests{kind="part"} 1"#,
            r#"ferrocast_http_held_requests{kind="playlist"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
