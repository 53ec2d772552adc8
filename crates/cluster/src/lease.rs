//! Stream leases: one publisher per stream across the cluster.
//!
//! `ferrocast:lease:<stream>` holds a JSON [`Lease`] (the owner's advertise address, its process
//! instance and the publish id) with a TTL of `lease_ttl`. A publish takes it (set if absent, or
//! replace one of this same process: a takeover on this pod, which ingest has already allowed),
//! renews it every third of the TTL while the value is still its own, and deletes it when it
//! ends, again only while the value is its own. Each of these is one Lua script, so the read
//! and the write are atomic: a pod never renews or releases a lease another pod holds.
//!
//! The takeover rule holds cluster-wide: a publisher silent for the takeover timeout lets its
//! lease go (its publish stays up until taken over), so that a new publisher on any pod may take
//! the stream; if it speaks again first, it takes the lease back.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::{Cluster, OnStoreDown};
use crate::metrics::{ClusterMetrics, RenewFailure};
use crate::store::{Store, StoreDown};

/// Set the lease if it is absent or held by this same process; else answer the holder's value.
const ACQUIRE: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, held = pcall(cjson.decode, current)
  if not ok or type(held) ~= 'table' or held.instance ~= ARGV[3] then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"#;

/// Extend the lease if it still holds our value: `ok`, `missing`, or the holder's value.
const RENEW: &str = r#"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'ok'
end
if not current then
  return 'missing'
end
return current
"#;

/// Delete the lease if it still holds our value: 1 when deleted.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The value of a stream's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owner pod's advertise address (where the other pods reach it).
    pub owner: String,
    /// The owner's process instance (random per start), so that a restarted pod with the same
    /// address is a new owner.
    pub instance: String,
    /// The publish, as the owner's registry numbers it.
    pub publish: u64,
}

/// Why a publish may not go live here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Another pod holds the stream's lease.
    #[error("the stream is live on another server ({owner})")]
    LiveElsewhere {
        /// The holder's advertise address.
        owner: String,
    },
    /// Redis cannot be reached and `cluster.on_store_down = "refuse"`.
    #[error("the cluster store is unreachable, and new publishes wait for it")]
    StoreDown,
}

/// The publish a claim keeps its lease for, as the keeper sees it.
pub trait Holder: Send + Sync + 'static {
    /// The publish has ended: the keeper stops.
    fn is_over(&self) -> bool;
    /// Its publisher has been silent for the takeover timeout: another publisher may take the
    /// stream over, here or on another pod.
    fn is_silent(&self) -> bool;
    /// Another pod took the lease: end the publish.
    fn lost(&self, owner: &str);
}

/// This pod's leases.
pub struct Leases {
    store: Arc<Store>,
    metrics: Arc<ClusterMetrics>,
    advertise: String,
    instance: String,
    ttl: Duration,
    on_store_down: OnStoreDown,
    acquire: redis::Script,
    renew: redis::Script,
    release: redis::Script,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("advertise", &self.advertise)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// What taking a lease found.
enum Acquired {
    Yes,
    HeldBy(Lease),
}

/// What renewing a lease found.
enum Renewed {
    Yes,
    Missing,
    HeldBy(Lease),
}

impl Leases {
    /// Leases in `store` for a pod reached at `advertise`.
    pub fn new(
        config: &Cluster,
        advertise: String,
        store: Arc<Store>,
        metrics: Arc<ClusterMetrics>,
    ) -> Arc<Leases> {
        Arc::new(Leases {
            store,
            metrics,
            advertise,
            instance: format!("{:016x}", rand::random::<u64>()),
            ttl: config.lease_ttl,
            on_store_down: config.on_store_down,
            acquire: redis::Script::new(ACQUIRE),
            renew: redis::Script::new(RENEW),
            release: redis::Script::new(RELEASE),
        })
    }

    /// The store the leases live in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// How long a lease lasts unless renewed (a dead owner's stream is free after it).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// This pod's advertise address.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    fn key(stream: &str) -> String {
        format!("ferrocast:lease:{stream}")
    }

    fn lease(&self, publish: u64) -> Lease {
        Lease {
            owner: self.advertise.clone(),
            instance: self.instance.clone(),
            publish,
        }
    }

    /// Whether `lease` is this process's.
    pub fn is_mine(&self, lease: &Lease) -> bool {
        lease.instance == self.instance
    }

    /// Who holds `stream`'s lease now; `None` when nobody does.
    pub async fn owner(&self, stream: &str) -> Result<Option<Lease>, StoreDown> {
        let value: Option<String> = self
            .store
            .query(redis::cmd("GET").arg(Self::key(stream)).to_owned())
            .await?;
        Ok(value.map(|v| parse(&v)))
    }

    /// Whether a publish of `stream` may go live here now (a check before a handshake is
    /// accepted; [`Leases::claim`] has the last word).
    pub async fn check(&self, stream: &str) -> Result<(), Refusal> {
        match self.owner(stream).await {
            Ok(Some(lease)) if !self.is_mine(&lease) => {
                Err(Refusal::LiveElsewhere { owner: lease.owner })
            }
            Ok(_) => Ok(()),
            Err(_) if self.on_store_down == OnStoreDown::Local => Ok(()),
            Err(_) => Err(Refusal::StoreDown),
        }
    }

    /// Takes `stream`'s lease for publish `publish`, and keeps it while `holder` lives (see the
    /// module's doc); dropping the claim releases it.
    pub async fn claim(
        self: &Arc<Self>,
        stream: &str,
        publish: u64,
        holder: Arc<dyn Holder>,
    ) -> Result<Claim, Refusal> {
        let lease = self.lease(publish);
        let asserted = match self.try_acquire(stream, &lease).await {
            Ok(Acquired::Yes) => true,
            Ok(Acquired::HeldBy(other)) => {
                return Err(Refusal::LiveElsewhere { owner: other.owner })
            }
            Err(_) if self.on_store_down == OnStoreDown::Local => {
                tracing::warn!(stream, "cluster store unreachable: publishing here without a lease (cluster.on_store_down = \"local\"); the lease is taken once the store is back");
                false
            }
            Err(_) => return Err(Refusal::StoreDown),
        };
        self.metrics.lease_taken();
        let stop = CancellationToken::new();
        let value = to_json(&lease);
        let keeper = Keeper {
            leases: self.clone(),
            stream: stream.to_owned(),
            value: value.clone(),
            lease,
            holder,
            held: asserted,
        };
        tokio::spawn(keeper.run(stop.clone()));
        Ok(Claim {
            leases: self.clone(),
            stream: stream.to_owned(),
            value,
            stop,
        })
    }

    async fn try_acquire(&self, stream: &str, lease: &Lease) -> Result<Acquired, StoreDown> {
        let ttl = self.ttl.as_millis().to_string();
        let held: Option<String> = self
            .store
            .eval(
                &self.acquire,
                &[&Self::key(stream)],
                &[&to_json(lease), &ttl, &self.instance],
            )
            .await?;
        Ok(match held {
            None => Acquired::Yes,
            Some(v) => Acquired::HeldBy(parse(&v)),
        })
    }

    async fn try_renew(&self, stream: &str, value: &str) -> Result<Renewed, StoreDown> {
        let ttl = self.ttl.as_millis().to_string();
        let answer: String = self
            .store
            .eval(&self.renew, &[&Self::key(stream)], &[value, &ttl])
            .await?;
        Ok(match answer.as_str() {
            "ok" => Renewed::Yes,
            "missing" => Renewed::Missing,
            other => Renewed::HeldBy(parse(other)),
        })
    }

    async fn try_release(&self, stream: &str, value: &str) -> Result<bool, StoreDown> {
        let deleted: i64 = self
            .store
            .eval(&self.release, &[&Self::key(stream)], &[value])
            .await?;
        Ok(deleted == 1)
    }
}

/// A held lease: dropping it stops its keeper and releases the lease (if it is still ours).
pub struct Claim {
    leases: Arc<Leases>,
    stream: String,
    value: String,
    stop: CancellationToken,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.cancel();
        self.leases.metrics.lease_dropped();
        let (leases, stream, value) = (
            self.leases.clone(),
            std::mem::take(&mut self.stream),
            std::mem::take(&mut self.value),
        );
        // Released at once, so that the stream can go live elsewhere without waiting for the
        // TTL; without a runtime (the process is ending), the TTL frees it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = leases.try_release(&stream, &value).await {
                    tracing::warn!(stream, error = %e, "cannot release the stream's lease; it expires by itself");
                }
            });
        }
    }
}

/// Keeps one lease while its publish lives.
struct Keeper {
    leases: Arc<Leases>,
    stream: String,
    lease: Lease,
    value: String,
    holder: Arc<dyn Holder>,
    /// Whether the store holds our lease now (not while it was unreachable at the claim, nor
    /// while the publisher is silent).
    held: bool,
}

impl Keeper {
    async fn run(mut self, stop: CancellationToken) {
        let period = self.leases.ttl / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.cancelled() => return,
            }
            if self.holder.is_over() {
                return;
            }
            if !self.step().await {
                return;
            }
        }
    }

    /// One renewal round; false once the lease is lost (the publish was ended).
    async fn step(&mut self) -> bool {
        let leases = self.leases.clone();
        let stream = self.stream.clone();
        if self.holder.is_silent() {
            if self.held && leases.try_release(&stream, &self.value).await.is_ok() {
                self.held = false;
                tracing::info!(stream, "publisher silent: the lease is let go, so that a new publisher may take the stream over on any server");
            }
            return true;
        }
        let renewed = if self.held {
            leases.try_renew(&stream, &self.value).await
        } else {
            Ok(Renewed::Missing)
        };
        let outcome = match renewed {
            Ok(Renewed::Yes) => return true,
            Ok(Renewed::Missing) => {
                match leases.try_acquire(&stream, &self.lease).await {
                    Ok(Acquired::Yes) => {
                        if self.held {
                            tracing::info!(stream, "the stream's lease was gone (the store restarted?); asserted again");
                        }
                        self.held = true;
                        return true;
                    }
                    Ok(Acquired::HeldBy(other)) => Ok(other),
                    Err(e) => Err(e),
                }
            }
            Ok(Renewed::HeldBy(other)) => Ok(other),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(other) => {
                leases.metrics.renew_failed(RenewFailure::Lost);
                tracing::warn!(stream, owner = %other.owner, "the stream's lease is held by another server; ending this publish");
                self.holder.lost(&other.owner);
                false
            }
            Err(e) => {
                leases.metrics.renew_failed(RenewFailure::StoreDown);
                tracing::debug!(stream, error = %e, "lease renewal failed; the publish goes on");
                true
            }
        }
    }
}

fn to_json(lease: &Lease) -> String {
    serde_json::to_string(lease).expect("a lease serialises")
}

/// A lease value; one that is not ours to read names its raw text as the owner.
fn parse(value: &str) -> Lease {
    serde_json::from_str(value).unwrap_or_else(|_| Lease {
        owner: value.to_owned(),
        instance: String::new(),
        publish: 0,
    })
}
