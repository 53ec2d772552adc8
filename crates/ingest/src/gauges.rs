//! The registry's gauges, read from its snapshot at scrape time.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use telemetry::{names, StreamLabel};

use crate::outcome::Protocol;
use crate::registry::StreamRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

/// Live publishers per protocol, each configured stream's live state and each live stream's
/// ingest bitrate. Register it with the service's metrics registry.
#[derive(Debug)]
pub struct PublisherGauges(Weak<StreamRegistry>);

impl PublisherGauges {
    /// Gauges of `registry` (held weakly: once it is gone, they are too).
    pub fn new(registry: &Arc<StreamRegistry>) -> PublisherGauges {
        PublisherGauges(Arc::downgrade(registry))
    }
}

impl Collector for PublisherGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(registry) = self.0.upgrade() else {
            return Ok(());
        };
        let snapshot = registry.snapshot();
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            names::ACTIVE_PUBLISHERS,
            "Live publishers by ingest protocol",
            None,
            gauge.metric_type(),
        )?;
        for protocol in Protocol::ALL {
            let n = snapshot
                .iter()
                .filter(|s| s.publisher.as_ref().is_some_and(|p| p.protocol == protocol))
                .count();
            ConstGauge::new(n as i64).encode(family.encode_family(&ProtocolLabel {
                protocol: protocol.label(),
            })?)?;
        }
        let mut family = encoder.encode_descriptor(
            names::STREAM_LIVE,
            "1 while the configured stream has a live publisher, else 0",
            None,
            gauge.metric_type(),
        )?;
        for s in &snapshot {
            let label = StreamLabel {
                stream: s.name.to_string(),
            };
            ConstGauge::new(i64::from(s.publisher.is_some()))
                .encode(family.encode_family(&label)?)?;
        }
        let mut family = encoder.encode_descriptor(
            names::INGEST_BITRATE,
            "Ingest media bitrate of live streams, over about the last second",
            None,
            ConstGauge::new(0.0f64).metric_type(),
        )?;
        for s in &snapshot {
            if let Some(p) = &s.publisher {
                let label = StreamLabel {
                    stream: s.name.to_string(),
                };
                ConstGauge::new(p.bitrate_bps as f64).encode(family.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}
