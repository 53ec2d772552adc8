//! Ferrocast's cluster mode: several replicas behind one Service, one publisher per stream
//! across all of them.
//!
//! - [`Cluster`] is the `[cluster]` section. Cluster mode is on when `redis_url` is set; a
//!   single node needs no Redis.
//! - [`Store`] is this pod's connection to Redis (redis-rs's tokio `ConnectionManager`): it
//!   connects in the background with backoff, pings once a second (the `store_up` gauge and
//!   the round-trip histogram), and bounds every command by a timeout, so that a Redis outage
//!   never holds a publish or a request for long.
//! - [`Leases`] takes, renews and releases stream leases: `ferrocast:lease:<stream>` holds the
//!   owner's advertise address, its process instance and the publish id, with a TTL. Every
//!   write is one Lua script, so a pod never renews or releases a lease another pod holds.
//!
//! - [`ContinuityHashes`] keep each stream's playlist continuity (a small hash, written at
//!   each segment cut, with the reconnect window as its TTL), so that a publish that comes back
//!   on another pod continues the playlists.
//! - [`Proxy`] is the cluster as a playback `hls::Source`, after the local streams in the
//!   chain: a stream live on another pod is asked of that pod (its admin listener), media
//!   through a bounded edge cache where concurrent misses share one fetch.
//!
//! This crate knows nothing of ingest or playback: the wiring adapts ingest's admission
//! (`ingest::Ownership`) to [`Leases`], through the [`Holder`] a claim watches.

mod config;
mod continuity;
mod edge;
mod lease;
mod metrics;
mod proxy;
mod store;

pub use config::{Cluster, OnStoreDown};
pub use continuity::ContinuityHashes;
pub use lease::{Claim, Holder, Lease, Leases, Refusal};
pub use metrics::ClusterMetrics;
pub use proxy::Proxy;
pub use store::{Store, StoreDown};
