//! Counters kept per stream: the label and the two calls every part makes on them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A stream label: the public stream name (bounded: names come from configuration).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    /// Public stream name.
    pub stream: String,
}

/// A counter family labelled by stream, registered as `name`.
pub fn stream_counter(registry: &mut Registry, name: &str, help: &str) -> StreamCounter {
    let family = StreamCounter::default();
    registry.register(name, help, family.clone());
    family
}

/// A counter family labelled by stream.
pub type StreamCounter = Family<StreamLabel, Counter>;

/// Adds `n` to `stream`'s counter (0 makes the series exist).
pub fn add(family: &StreamCounter, stream: &str, n: u64) {
    family
        .get_or_create(&StreamLabel {
            stream: stream.to_owned(),
        })
        .inc_by(n);
}
