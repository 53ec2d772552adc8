//! The cluster's metrics, registered only in cluster mode.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use telemetry::names;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyOutcome {
    /// A playlist or media.
    Ok,
    /// The owner has no such stream or object (any more).
    NotFound,
    /// The owner could not be reached, or what was asked for did not come in time.
    Unavailable,
    /// The owner refused the request.
    Error,
}

impl ProxyOutcome {
    const ALL: [ProxyOutcome; 4] = [
        ProxyOutcome::Ok,
        ProxyOutcome::NotFound,
        ProxyOutcome::Unavailable,
        ProxyOutcome::Error,
    ];

    fn label(self) -> &'static str {
        match self {
            ProxyOutcome::Ok => "ok",
            ProxyOutcome::NotFound => "not_found",
            ProxyOutcome::Unavailable => "unavailable",
            ProxyOutcome::Error => "error",
        }
    }
}

/// Why a lease renewal failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenewFailure {
    /// Redis could not be reached: the publish goes on.
    StoreDown,
    /// Another pod holds the lease: the publish ends.
    Lost,
}

impl RenewFailure {
    fn label(self) -> &'static str {
        match self {
            RenewFailure::StoreDown => "store_down",
            RenewFailure::Lost => "lost",
        }
    }
}

/// The cluster's counters, gauges and the store's round-trip histogram.
#[derive(Debug)]
pub struct ClusterMetrics {
    store_up: Gauge,
    store_rtt: Histogram,
    leases: Gauge,
    renew_failures: Family<ReasonLabel, Counter>,
    proxy_requests: Family<ProxyLabels, Counter>,
    proxy_bytes: Family<ProxyLabels, Counter>,
    edge_cache: Family<ResultLabel, Counter>,
}

impl ClusterMetrics {
    /// Registers the cluster's metrics into `registry`.
    pub fn new(registry: &mut Registry) -> ClusterMetrics {
        let store_up = Gauge::default();
        registry.register(
            names::CLUSTER_STORE_UP,
            "1 while this pod reaches the cluster store (Redis), 0 while it does not",
            store_up.clone(),
        );
        let store_rtt = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register_with_unit(
            names::CLUSTER_STORE_RTT,
            "Round-trip time of cluster store (Redis) commands",
            Unit::Seconds,
            store_rtt.clone(),
        );
        let leases = Gauge::default();
        registry.register(
            names::CLUSTER_LEASES,
            "Stream leases this pod holds (streams it publishes cluster-wide)",
            leases.clone(),
        );
        let renew_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            names::CLUSTER_LEASE_RENEW_FAILURES,
            "Lease renewals that failed: store_down (the publish goes on), lost (it ends)",
            renew_failures.clone(),
        );
        for r in [RenewFailure::StoreDown, RenewFailure::Lost] {
            let _ = renew_failures.get_or_create(&ReasonLabel { reason: r.label() });
        }
        let proxy_requests = Family::<ProxyLabels, Counter>::default();
        registry.register(
            names::CLUSTER_PROXY_REQUESTS,
            "Playback requests proxied to the stream's owner pod, by kind and outcome",
            proxy_requests.clone(),
        );
        let proxy_bytes = Family::<ProxyLabels, Counter>::default();
        registry.register(
            names::CLUSTER_PROXY_BYTES,
            "Body bytes fetched from owner pods, by kind and outcome",
            proxy_bytes.clone(),
        );
        for kind in ["playlist", "media"] {
            for outcome in ProxyOutcome::ALL {
                let l = ProxyLabels {
                    kind,
                    outcome: outcome.label(),
                };
                let _ = proxy_requests.get_or_create(&l);
                let _ = proxy_bytes.get_or_create(&l);
            }
        }
        let edge_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            names::CLUSTER_EDGE_CACHE,
            "Edge cache lookups of immutable objects: hit, miss, coalesced (waited on another request's fetch)",
            edge_cache.clone(),
        );
        for result in ["hit", "miss", "coalesced"] {
            let _ = edge_cache.get_or_create(&ResultLabel { result });
        }
        ClusterMetrics {
            store_up,
            store_rtt,
            leases,
            renew_failures,
            proxy_requests,
            proxy_bytes,
            edge_cache,
        }
    }

    pub(crate) fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    pub(crate) fn round_trip(&self, seconds: f64) {
        self.store_rtt.observe(seconds);
    }

    pub(crate) fn lease_taken(&self) {
        self.leases.inc();
    }

    pub(crate) fn lease_dropped(&self) {
        self.leases.dec();
    }

    pub(crate) fn renew_failed(&self, why: RenewFailure) {
        self.renew_failures
            .get_or_create(&ReasonLabel {
                reason: why.label(),
            })
            .inc();
    }

    pub(crate) fn proxied(&self, kind: &'static str, outcome: ProxyOutcome, bytes: u64) {
        let l = ProxyLabels {
            kind,
            outcome: outcome.label(),
        };
        self.proxy_requests.get_or_create(&l).inc();
        self.proxy_bytes.get_or_create(&l).inc_by(bytes);
    }

    pub(crate) fn edge_lookup(&self, result: &'static str) {
        self.edge_cache.get_or_create(&ResultLabel { result }).inc();
    }
}
