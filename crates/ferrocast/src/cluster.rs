//! Cluster mode, wired: ingest's admission ([`ingest::Ownership`]) answered by the cluster's
//! stream leases, and the lease keeper watching the publish through ingest's
//! [`ingest::PublishWatch`]. Neither ingest nor the cluster crate knows the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster::{ClusterMetrics, ContinuityHashes, Holder, Leases, Proxy, Refusal, Store};
use futures::future::BoxFuture;
use hls::{Answer, Budget, Reply, Request, Source};
use ingest::{Disowned, EndReason, Ownership, OwnershipClaim, PublishWatch};
use media::StreamName;
use prometheus_client::registry::Registry;
use transcode::{Continuity, ContinuityStore, Outputs};

/// This pod in the cluster.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// The stream leases (and, through them, the store).
    pub leases: Arc<Leases>,
    /// The other pods' streams, as a playback source.
    pub proxy: cluster::Proxy,
    /// Each stream's playlist continuity, for the next pod that takes it.
    pub continuity: Arc<ContinuityHashes>,
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
        let leases = Leases::new(config, advertise, store, metrics.clone());
        Ok(ClusterNode {
            proxy: cluster::Proxy::new(leases.clone(), config.edge_cache_bytes, metrics),
            continuity: Arc::new(ContinuityHashes::new(leases.store().clone())),
            leases,
        })
    }

    /// Starts the store's connection (on the current tokio runtime).
    pub fn start(&self) {
        self.leases.store().start();
    }

    /// The transcoder's [`ContinuityStore`]: each stream's continuity, continued within
    /// `window` (the reconnect window) of its publish's end. A dead owner's lease must expire
    /// first (`lease_ttl`), so its last state, never closed, is kept that much longer. Written
    /// and read on `runtime`.
    pub fn continuity_store(
        &self,
        window: Duration,
        lease_ttl: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Arc<dyn ContinuityStore> {
        Arc::new(RedisContinuity {
            hashes: self.continuity.clone(),
            window,
            lease_ttl,
            runtime,
        })
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

/// Playlist continuity in Redis, for the transcoder.
#[derive(Debug)]
struct RedisContinuity {
    hashes: Arc<ContinuityHashes>,
    window: Duration,
    lease_ttl: Duration,
    runtime: tokio::runtime::Handle,
}

impl ContinuityStore for RedisContinuity {
    fn save(&self, stream: &str, state: Continuity) {
        let (hashes, stream) = (self.hashes.clone(), stream.to_owned());
        let window = self.window + self.lease_ttl;
        self.runtime.spawn(async move {
            let saved = hashes
                .save(&stream, &state.to_fields(), &state.growing(), window)
                .await;
            if let Err(e) = saved {
                tracing::debug!(stream, error = %e, "cannot record the playlists' continuity");
            }
        });
    }

    fn load(&self, stream: &str) -> Option<Continuity> {
        // Waiting on a store that is down only delays the publish.
        if !self.hashes.is_up() {
            tracing::warn!(
                stream,
                "the cluster store is unreachable; starting new playlists"
            );
            return None;
        }
        // Called on a feeder thread, never on the runtime (whose thread it would block).
        if tokio::runtime::Handle::try_current().is_ok() {
            tracing::warn!(
                stream,
                "continuity asked on the runtime; starting new playlists"
            );
            return None;
        }
        match self.runtime.block_on(self.hashes.load(stream)) {
            Ok(fields) if fields.is_empty() => None,
            Ok(fields) => {
                let Some(state) = Continuity::from_fields(&fields) else {
                    tracing::warn!(stream, "the playlists' continuity in the store is malformed; starting new playlists");
                    return None;
                };
                // A publish that ended cleanly is continued within the window; one whose owner
                // died, within the window after its lease expired.
                let age = std::time::SystemTime::now()
                    .duration_since(state.written)
                    .unwrap_or_default();
                let within = if state.closed {
                    self.window
                } else {
                    self.window + self.lease_ttl
                };
                (age <= within).then_some(state)
            }
            Err(e) => {
                tracing::warn!(stream, error = %e, "cannot read the playlists' continuity; starting new playlists");
                None
            }
        }
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

/// Playback's source in cluster mode: a stream live on this pod is answered here; any other
/// goes to the pod that holds its lease; and only when no pod has it live does this pod's
/// ended (or paused) output answer, so that a stream that moved to another pod is served
/// from there, not from what is left of it here.
#[derive(Debug)]
pub struct ClusterSource {
    local: Arc<Outputs>,
    proxy: Proxy,
}

impl ClusterSource {
    /// This pod's `local` outputs, then `proxy`.
    pub fn new(local: Arc<Outputs>, proxy: Proxy) -> ClusterSource {
        ClusterSource { local, proxy }
    }
}

/// Whether `stream` is live on this pod (not ended, not paused).
fn is_live(local: &Outputs, stream: &str) -> bool {
    local
        .get(stream)
        .is_some_and(|o| !o.is_over() && !o.is_paused())
}

/// How often a request for a stream that moved to this pod looks whether its output is live.
const HERE_POLL: Duration = Duration::from_millis(50);

/// `request` answered by this pod's own output, within `deadline`. While this pod holds the
/// stream's lease but its output is not live yet (the lease is taken as the publisher is
/// admitted, a moment before), it waits for it; if another pod takes the stream meanwhile, the
/// player is told to try again (its next request goes there).
async fn answer_here(
    local: Arc<Outputs>,
    proxy: Proxy,
    stream: String,
    request: Request,
    deadline: tokio::time::Instant,
) -> Answer {
    while !is_live(&local, &stream) && tokio::time::Instant::now() < deadline {
        // Looked up in the store at most once a second, however many requests wait.
        if proxy.remote_owner(&stream).await.is_some() {
            return Answer::Unreachable;
        }
        if !proxy.is_here(&stream) {
            break;
        }
        tokio::time::sleep(HERE_POLL).await;
    }
    // What is left of the request's hold.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let budget = Budget {
        start: left,
        blocking: left,
    };
    match local.answer(&stream, request, budget) {
        Reply::Now(answer) => answer,
        Reply::Held(held) => held.await,
    }
}

impl Source for ClusterSource {
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply {
        if is_live(&self.local, stream) {
            if request.is_playlist() {
                return self.local.answer(stream, request, budget);
            }
            // An object only the pod the stream moved here from had (a drained owner's last
            // parts, for a player behind the live edge) comes from there.
            let reply = self.local.answer(stream, request.clone(), budget);
            if let Reply::Now(Answer::Gone) = reply {
                if let Some(held) = self.proxy.from_last_owner(stream, &request, budget) {
                    return Reply::Held(held);
                }
            }
            return reply;
        }
        let deadline = tokio::time::Instant::now() + budget.of(&request);
        let (local, proxy) = (self.local.clone(), self.proxy.clone());
        match self.proxy.answer(stream, request.clone(), budget) {
            Reply::Now(Answer::NotLive) if self.proxy.is_here(stream) => Reply::Held(Box::pin(
                answer_here(local, proxy, stream.to_owned(), request, deadline),
            )),
            Reply::Now(Answer::NotLive) => self.local.answer(stream, request, budget),
            Reply::Now(answer) => Reply::Now(answer),
            Reply::Held(elsewhere) => {
                let stream = stream.to_owned();
                Reply::Held(Box::pin(async move {
                    match elsewhere.await {
                        // Not live elsewhere: this pod's output answers (waited for when the
                        // stream moved here while the request was held).
                        Answer::NotLive => {
                            answer_here(local, proxy, stream, request, deadline).await
                        }
                        // An object the pod that has the stream now never had, which this pod
                        // made before the stream moved (its paused or ended output keeps it).
                        Answer::Gone if !request.is_playlist() => {
                            match local.answer(&stream, request, budget) {
                                Reply::Now(body @ Answer::Body { .. }) => body,
                                _ => Answer::Gone,
                            }
                        }
                        answer => answer,
                    }
                }))
            }
        }
    }

    fn live_streams(&self) -> Vec<String> {
        let mut names = self.local.live_streams();
        names.extend(self.proxy.live_streams());
        names.sort();
        names.dedup();
        names
    }
}
