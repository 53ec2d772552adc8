//! Cluster mode, wired: ingest's admission ([`ingest::Ownership`]) answered by the cluster's
//! stream leases, and the lease keeper watching the publish through ingest's
//! [`ingest::PublishWatch`]. Neither ingest nor the cluster crate knows the other.

use std::net::SocketAddr;
use std::sync::Arc;

use cluster::{ClusterMetrics, Holder, Leases, Refusal, Store};
use futures::future::BoxFuture;
use ingest::{Disowned, EndReason, Ownership, OwnershipClaim, PublishWatch};
use media::StreamName;
use prometheus_client::registry::Registry;

/// This pod in the cluster.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// The stream leases (and, through them, the store).
    pub leases: Arc<Leases>,
}

impl ClusterNode {
    /// Cluster mode for `config`, reached by the other pods at `advertise` (or, when that is
    /// empty, at the admin listener's bound address `admin`). Registers the cluster's metrics.
    /// The store connects once [`ClusterNode::start`] is called.
    pub fn new(
        config: &cluster::Cluster,
        admin: SocketAddr,
        registry: &mut Registry,
    ) -> Result<ClusterNode, String> {
        let advertise = if config.advertise.is_empty() {
            if admin.ip().is_unspecified() {
                return Err(format!(
                    "cluster.advertise is empty and listen.admin ({admin}) is a wildcard \
                     address: set cluster.advertise to this pod's address as the other pods \
                     reach it (host:port of its admin listener)"
                ));
            }
            admin.to_string()
        } else {
            config.advertise.clone()
        };
        let metrics = Arc::new(ClusterMetrics::new(registry));
        let store = Store::new(&config.redis_url, metrics.clone()).map_err(|e| e.to_string())?;
        tracing::info!(
            redis = %config.redis_url_redacted(),
            %advertise,
            lease_ttl_ms = config.lease_ttl.as_millis() as u64,
            on_store_down = ?config.on_store_down,
            "cluster mode: one publisher per stream across the pods sharing this Redis"
        );
        Ok(ClusterNode {
            leases: Leases::new(config, advertise, store, metrics),
        })
    }

    /// Starts the store's connection (on the current tokio runtime).
    pub fn start(&self) {
        self.leases.store().start();
    }

    /// Ingest's admission, answered by this node's leases.
    pub fn ownership(&self) -> Arc<dyn Ownership> {
        Arc::new(Gate(self.leases.clone()))
    }
}

struct Gate(Arc<Leases>);

impl Ownership for Gate {
    fn check<'a>(&'a self, name: &'a StreamName) -> BoxFuture<'a, Result<(), Disowned>> {
        Box::pin(async move { self.0.check(name.as_str()).await.map_err(disowned) })
    }

    fn claim(&self, publish: PublishWatch) -> BoxFuture<'_, Result<OwnershipClaim, Disowned>> {
        Box::pin(async move {
            let name = publish.name().to_string();
            let id = publish.id();
            let claim = self
                .0
                .claim(&name, id, Arc::new(Watched(publish)))
                .await
                .map_err(disowned)?;
            Ok(Box::new(claim) as OwnershipClaim)
        })
    }
}

fn disowned(r: Refusal) -> Disowned {
    match r {
        Refusal::LiveElsewhere { owner } => Disowned::LiveElsewhere(owner),
        Refusal::StoreDown => Disowned::StoreDown,
    }
}

struct Watched(PublishWatch);

impl Holder for Watched {
    fn is_over(&self) -> bool {
        self.0.is_over()
    }

    fn is_silent(&self) -> bool {
        self.0.is_silent()
    }

    fn lost(&self, owner: &str) {
        self.0.end(EndReason::TakenOverElsewhere(owner.to_owned()));
    }
}
