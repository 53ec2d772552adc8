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
        ClusterMetrics {
            store_up,
            store_rtt,
            leases,
            renew_failures,
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
}
