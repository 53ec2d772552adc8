//! The live SRT links' gauges: each publisher's loop keeps its link's state here, and the
//! metrics read it at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use media::StreamName;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use telemetry::{names, StreamLabel};

/// The live SRT links' gauges, read by the metrics collector at scrape time.
#[derive(Debug, Default)]
pub struct SrtLinks {
    links: Mutex<BTreeMap<StreamName, LinkState>>,
}

#[derive(Debug, Clone)]
pub(crate) struct LinkState {
    pub(crate) connection: u64,
    pub(crate) rtt: Duration,
    pub(crate) receive_bps: f64,
}

/// One live link, as the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSnapshot {
    /// The stream it publishes.
    pub stream: StreamName,
    /// Round-trip time.
    pub rtt: Duration,
    /// SRT payload bits per second over the last statistics interval.
    pub receive_bps: f64,
}

impl SrtLinks {
    /// Every live link, by stream name.
    pub fn snapshot(&self) -> Vec<LinkSnapshot> {
        self.links
            .lock()
            .expect("links lock")
            .iter()
            .map(|(stream, l)| LinkSnapshot {
                stream: stream.clone(),
                rtt: l.rtt,
                receive_bps: l.receive_bps,
            })
            .collect()
    }

    pub(crate) fn set(&self, stream: &StreamName, state: LinkState) {
        self.links
            .lock()
            .expect("links lock")
            .insert(stream.clone(), state);
    }

    /// Forgets `stream`'s link unless a newer connection took the stream over.
    pub(crate) fn remove(&self, stream: &StreamName, connection: u64) {
        let mut links = self.links.lock().expect("links lock");
        if links.get(stream).map(|l| l.connection) == Some(connection) {
            links.remove(stream);
        }
    }
}

/// A gauge of every live link: its name, its help, and its value for a link.
type LinkGauge = (&'static str, &'static str, fn(&LinkSnapshot) -> f64);

/// The SRT link gauges (RTT, receive bitrate), read from the live links at scrape time. Register
/// it with the service's metrics registry.
#[derive(Debug)]
pub struct SrtLinkGauges(Weak<SrtLinks>);

impl SrtLinkGauges {
    /// Gauges of `links` (held weakly: once they are gone, so are the gauges).
    pub fn new(links: &Arc<SrtLinks>) -> SrtLinkGauges {
        SrtLinkGauges(Arc::downgrade(links))
    }
}

impl Collector for SrtLinkGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(links) = self.0.upgrade() else {
            return Ok(());
        };
        let links = links.snapshot();
        let gauges: [LinkGauge; 2] = [
            (
                names::SRT_RTT,
                "Round-trip time of each live SRT publisher's link",
                |l| l.rtt.as_secs_f64(),
            ),
            (
                names::SRT_RECEIVE_BITRATE,
                "Bits per second received on each live SRT publisher's link",
                |l| l.receive_bps,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                ConstGauge::new(0.0f64).metric_type(),
            )?;
            for l in &links {
                let label = StreamLabel {
                    stream: l.stream.to_string(),
                };
                ConstGauge::new(value(l)).encode(family.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> StreamName {
        s.parse().unwrap()
    }

    #[test]
    fn links_are_removed_only_by_their_own_connection() {
        let links = SrtLinks::default();
        let state = |connection| LinkState {
            connection,
            rtt: Duration::from_millis(3),
            receive_bps: 1e6,
        };
        links.set(&name("a"), state(1));
        links.set(&name("a"), state(2)); // taken over
        links.remove(&name("a"), 1);
        assert_eq!(links.snapshot().len(), 1);
        links.remove(&name("a"), 2);
        assert!(links.snapshot().is_empty());
    }
}
