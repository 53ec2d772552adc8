//! Any pod serves any stream: the cluster as a playback [`Source`] after the local one in the
//! chain. A request for a stream that is not live here goes to the pod that holds its lease,
//! on that pod's admin listener (`/cluster/v1/live/...`, answered by its local streams only),
//! over pooled HTTP/1.1 keep-alive connections. The owner's answer comes back typed
//! ([`hls::ANSWER_HEADER`]), so this pod's playback maps it to the same response. Blocking
//! requests are held by the owner; the proxy waits a little longer than the longest hold.
//! Media (immutable) goes through the edge cache; playlists are never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hls::{Answer, Budget, Reply, Request, Source};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::edge::EdgeCache;
use crate::lease::{Lease, Leases};
use crate::metrics::{ClusterMetrics, ProxyOutcome};

/// How long an owner looked up in the store is trusted.
const OWNER_FRESH: Duration = Duration::from_secs(1);
/// What a proxied request may take beyond the owner's longest hold.
const PROXY_MARGIN: Duration = Duration::from_secs(2);
/// How often a held request looks whether its stream moved to another pod.
const MOVE_POLL: Duration = Duration::from_millis(250);
/// How long an owner looked up and not asked for since is kept (the maps are pruned of older
/// entries when they grow past 10,000 streams).
const STALE_OWNERS: Duration = Duration::from_secs(60);
/// A stream's owner seen last, and its previous one, each with when.
type OwnerHistory = ((Lease, Instant), Option<(Lease, Instant)>);
/// Largest body taken from an owner (a segment is far smaller).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// How long, beyond its lease's TTL, a stream that lost its owner (unreachable, or no longer
/// live there) is waited for by playlist requests: a dead owner's lease must expire, and the
/// publisher reconnect to another pod.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

/// The cluster as a playback source.
#[derive(Clone)]
pub struct Proxy(Arc<Inner>);

struct Inner {
    leases: Arc<Leases>,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Stream → its owner, this pod included (none: nobody holds it), and when that was read.
    owners: Mutex<HashMap<String, (Option<Lease>, Instant)>>,
    /// Stream → when a held request last asked the store whether it moved.
    looked_up: Mutex<HashMap<String, Instant>>,
    /// Stream → its owner seen last in the store (and when), and the pod that had it before
    /// (and when it moved).
    seen: Mutex<HashMap<String, OwnerHistory>>,
    /// Stream → when its owner was last found unreachable, or said the stream is not live
    /// there (it died, or let the stream go: its publisher may come back on another pod).
    /// With it, the pod last found unreachable for the stream, if any (never asked as its last
    /// owner again, until a pod serves the stream).
    orphaned: Mutex<HashMap<String, (Instant, Option<String>)>>,
    edge: EdgeCache,
    metrics: Arc<ClusterMetrics>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy to the owners of `leases`' streams, with an edge cache of `edge_cache_bytes`.
    pub fn new(leases: Arc<Leases>, edge_cache_bytes: u64, metrics: Arc<ClusterMetrics>) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Proxy(Arc::new(Inner {
            leases,
            client,
            owners: Mutex::new(HashMap::new()),
            looked_up: Mutex::new(HashMap::new()),
            orphaned: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            edge: EdgeCache::new(edge_cache_bytes),
            metrics,
        }))
    }

    /// The owner of `stream` other than this pod, if another pod holds it (looked up at most a
    /// second ago; a known owner stays known while the store is unreachable).
    pub async fn remote_owner(&self, stream: &str) -> Option<Lease> {
        self.0.owner(stream).await
    }

    /// Whether this pod held `stream`'s lease when the store was last asked: the stream moved
    /// here (a held request is then answered by this pod's own output, once it exists).
    pub fn is_here(&self, stream: &str) -> bool {
        self.0.is_here(stream)
    }

    /// An object of `stream` that this pod does not have (`request`), asked of the pod that had
    /// the stream last, when it moved here from one lately (a drained or paused owner serves on
    /// what it has): its bytes, or `Gone`. `None` when there is no such pod.
    pub fn from_last_owner(
        &self,
        stream: &str,
        request: &Request,
        budget: Budget,
    ) -> Option<hls::Held> {
        let last = self.0.last_owner(stream)?;
        let inner = self.0.clone();
        let stream = stream.to_owned();
        let path = request.to_path_and_query();
        let timeout = budget.of(request) + PROXY_MARGIN;
        Some(Box::pin(async move {
            match inner.media(&last, &stream, &path, timeout).await {
                body @ Answer::Body { .. } => body,
                _ => Answer::Gone,
            }
        }))
    }
}

impl Source for Proxy {
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply {
        // Known a moment ago to be nowhere else: not live, at once, unless the pod that had it
        // last may still answer for it (its publisher left, and may come back), or its owner
        // died lately (its publisher may come back on another pod). Here: this pod answers.
        if let Some(None) = self.0.cached(stream) {
            let elsewhere = self.0.last_owner(stream).is_some()
                || (request.is_playlist() && self.0.is_orphaned(stream));
            if self.0.is_here(stream) || !elsewhere {
                return Reply::Now(Answer::NotLive);
            }
        }
        let inner = self.0.clone();
        let stream = stream.to_owned();
        Reply::Held(Box::pin(async move {
            inner.answer(&stream, request, budget).await
        }))
    }

    fn live_streams(&self) -> Vec<String> {
        let owners = self.0.owners.lock().expect("owners lock");
        owners
            .iter()
            .filter(|(_, (owner, at))| {
                owner.as_ref().is_some_and(|l| !self.0.leases.is_mine(l))
                    && at.elapsed() < OWNER_FRESH
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

impl Inner {
    /// The cached holder of `stream`'s lease (this pod included), if fresh: `Some(None)` when
    /// nobody holds it.
    fn cached_holder(&self, stream: &str) -> Option<Option<Lease>> {
        let owners = self.owners.lock().expect("owners lock");
        owners
            .get(stream)
            .filter(|(_, at)| at.elapsed() < OWNER_FRESH)
            .map(|(owner, _)| owner.clone())
    }

    /// The cached owner of `stream`, if fresh: `Some(None)` when nobody else holds it.
    fn cached(&self, stream: &str) -> Option<Option<Lease>> {
        self.cached_holder(stream)
            .map(|owner| owner.filter(|l| !self.leases.is_mine(l)))
    }

    /// Whether this pod held `stream`'s lease when the store was last asked.
    fn is_here(&self, stream: &str) -> bool {
        let owners = self.owners.lock().expect("owners lock");
        owners
            .get(stream)
            .and_then(|(owner, _)| owner.as_ref())
            .is_some_and(|l| self.leases.is_mine(l))
    }

    /// The pod other than this one that holds `stream`'s lease, if any.
    async fn owner(&self, stream: &str) -> Option<Lease> {
        self.lookup(stream)
            .await
            .filter(|l| !self.leases.is_mine(l))
    }

    /// The pod that holds `stream`'s lease, this one included.
    async fn lookup(&self, stream: &str) -> Option<Lease> {
        if let Some(known) = self.cached_holder(stream) {
            return known;
        }
        // The store is asked at most once a second per stream, however many requests come;
        // meanwhile the owner known last answers.
        if !self.may_look_up(stream) {
            if let Some((known, _)) = self.owners.lock().expect("owners lock").get(stream) {
                return known.clone();
            }
        }
        match self.leases.owner(stream).await {
            Ok(lease) => {
                let mut owners = self.owners.lock().expect("owners lock");
                if owners.len() > 10_000 {
                    owners.retain(|_, (_, at)| at.elapsed() < STALE_OWNERS);
                }
                owners.insert(stream.to_owned(), (lease.clone(), Instant::now()));
                drop(owners);
                if let Some(lease) = lease.as_ref().filter(|l| !self.leases.is_mine(l)) {
                    self.seen(stream, lease);
                }
                lease
            }
            // The store is unreachable: the owner known last goes on serving.
            Err(_) => self
                .owners
                .lock()
                .expect("owners lock")
                .get(stream)
                .and_then(|(owner, _)| owner.clone()),
        }
    }

    /// Marks `stream`'s cached owner stale when it is `asked` (which failed, or said the
    /// stream is not live there): the next request looks the owner up again (at most once a
    /// second per stream). An answer from another pod (the previous owner) leaves it be.
    fn forget(&self, stream: &str, asked: &Lease) {
        let mut owners = self.owners.lock().expect("owners lock");
        if let Some((Some(cached), at)) = owners.get_mut(stream) {
            if cached.instance == asked.instance {
                *at = Instant::now()
                    .checked_sub(OWNER_FRESH)
                    .unwrap_or_else(Instant::now);
            }
        }
    }

    /// Notes that `lease` holds `stream` now; when another pod held it before, that pod is
    /// remembered as its previous owner.
    fn seen(&self, stream: &str, lease: &Lease) {
        let within = self.leases.ttl() + ORPHAN_GRACE;
        let mut seen = self.seen.lock().expect("seen lock");
        if seen.len() > 10_000 {
            seen.retain(|_, (current, previous)| {
                current.1.elapsed() < STALE_OWNERS
                    || previous
                        .as_ref()
                        .is_some_and(|(_, at)| at.elapsed() < within)
            });
        }
        let entry = seen
            .entry(stream.to_owned())
            .or_insert_with(|| ((lease.clone(), Instant::now()), None));
        if entry.0 .0.instance != lease.instance {
            let old = std::mem::replace(&mut entry.0, (lease.clone(), Instant::now()));
            entry.1 = Some((old.0, Instant::now()));
        } else {
            entry.0 .1 = Instant::now();
        }
    }

    /// The pod seen last holding `stream` (not this one), within [`STALE_OWNERS`], while the
    /// stream is not orphaned, unless it was found unreachable or said it no longer has the
    /// stream: after its publisher left, it keeps the stream paused for the reconnect window
    /// and answers for it.
    fn last_owner(&self, stream: &str) -> Option<Lease> {
        if self.is_orphaned(stream) {
            return None;
        }
        let last = {
            let seen = self.seen.lock().expect("seen lock");
            seen.get(stream)
                .map(|(current, _)| current)
                .filter(|(l, at)| at.elapsed() < STALE_OWNERS && !self.leases.is_mine(l))
                .map(|(l, _)| l.clone())
        }?;
        (!self.found_dead(stream, &last)).then_some(last)
    }

    /// Notes that `last` still answers for `stream`, if it is still the pod seen last with it
    /// (a pod that took the stream meanwhile stays the current one, and `last` its previous).
    fn still_seen(&self, stream: &str, last: &Lease) {
        let mut seen = self.seen.lock().expect("seen lock");
        if let Some(((current, at), _)) = seen.get_mut(stream) {
            if current.instance == last.instance {
                *at = Instant::now();
            }
        }
    }

    /// Forgets `last` as the pod that had `stream` last ([`Inner::last_owner`]): it died, or
    /// let the stream go for good.
    fn forget_last(&self, stream: &str, last: &Lease) {
        let mut seen = self.seen.lock().expect("seen lock");
        if seen
            .get(stream)
            .is_some_and(|((current, _), _)| current.instance == last.instance)
        {
            seen.remove(stream);
        }
    }

    /// The pod that had `stream` before `current`, lately (within its lease's TTL and
    /// [`ORPHAN_GRACE`]): a drained one goes on serving what it has until it exits.
    fn previous(&self, stream: &str, current: &Lease) -> Option<Lease> {
        let within = self.leases.ttl() + ORPHAN_GRACE;
        let seen = self.seen.lock().expect("seen lock");
        seen.get(stream)
            .and_then(|(_, previous)| previous.as_ref())
            .filter(|(old, at)| at.elapsed() < within && old.instance != current.instance)
            .map(|(old, _)| old.clone())
    }

    async fn answer(self: &Arc<Self>, stream: &str, request: Request, budget: Budget) -> Answer {
        let path = request.to_path_and_query();
        let hold = budget.of(&request);
        let deadline = Instant::now() + hold;
        let Some(owner) = self.owner(stream).await else {
            if self.is_here(stream) {
                return Answer::NotLive;
            }
            // Nobody holds it, but the pod that had it last may have it paused (its publisher
            // left, and may come back within the reconnect window, there or on another pod):
            // that pod answers, as it answers its own viewers, so a viewer here sees what it
            // would see there. A blocking reload waits there, or goes where the stream goes on.
            if let Some(last) = self.last_owner(stream) {
                let answer = if is_blocking(&request) {
                    self.held(last.clone(), stream, &path, deadline).await
                } else if request.is_playlist() {
                    self.fetch(&last, stream, &path, hold + PROXY_MARGIN, true)
                        .await
                } else {
                    // A part the last owner hinted may be made by the next one.
                    match self.media_or_moved(&last, stream, &path, deadline).await {
                        Some(answer) => return answer,
                        None => Answer::NotLive,
                    }
                };
                if !matches!(answer, Answer::NotLive | Answer::Unreachable) {
                    self.still_seen(stream, &last);
                    return answer;
                }
                if self.is_here(stream) {
                    return Answer::NotLive;
                }
                // It died, or let the stream go for good: not asked again.
                self.forget_last(stream, &last);
                self.orphan(stream, None);
            }
            // Its owner died a moment ago, and its lease has expired: a playlist request waits
            // (within its hold) for the publisher to come back on another pod, as a paused
            // stream's viewers do on one server, rather than being told it is not live.
            if request.is_playlist() && !self.is_here(stream) && self.is_orphaned(stream) {
                return match self.moved(stream, None, deadline).await {
                    Some(next) => self.follow(next, stream, &path, deadline, None).await,
                    None => self.between_owners(stream),
                };
            }
            return Answer::NotLive;
        };
        if is_blocking(&request) {
            return self.held(owner, stream, &path, deadline).await;
        }
        if request.is_playlist() {
            return self.follow(owner, stream, &path, deadline, None).await;
        }
        let timeout = hold + PROXY_MARGIN;
        let answer = self.media(&owner, stream, &path, timeout).await;
        if !matches!(answer, Answer::NotLive | Answer::Gone | Answer::Starting) {
            return answer;
        }
        // Not at the stream's owner: an object of the pod that had the stream before it (a
        // drained one serves on until it exits; the new owner never had its objects).
        if let Some(previous) = self.previous(stream, &owner) {
            let left = deadline.saturating_duration_since(Instant::now()) + PROXY_MARGIN;
            match self.media(&previous, stream, &path, left).await {
                earlier @ Answer::Body { .. } => return earlier,
                // It died with the object: lost, and a player should move on at once rather
                // than retry.
                Answer::Unreachable => return Answer::Gone,
                _ => {}
            }
        }
        // The owner holds the lease but has no output yet (it took the lease as it admitted the
        // publisher): not an end, so a player tries again.
        if answer == Answer::NotLive {
            Answer::Unreachable
        } else {
            answer
        }
    }

    /// `path`, a media object of `stream`, from `last` (the pod that had the stream last), or
    /// from the pod that takes the stream meanwhile: `None` when `last` no longer has the
    /// stream or cannot be reached, and nobody took it.
    async fn media_or_moved(
        self: &Arc<Self>,
        last: &Lease,
        stream: &str,
        path: &str,
        deadline: Instant,
    ) -> Option<Answer> {
        let hold = deadline.saturating_duration_since(Instant::now());
        let first = self.media(last, stream, path, hold + PROXY_MARGIN);
        let moved = self.moved(stream, Some(last), deadline);
        tokio::pin!(first, moved);
        let next = tokio::select! {
            answer = &mut first => {
                if !matches!(answer, Answer::NotLive | Answer::Unreachable) {
                    return Some(answer);
                }
                // Gone from there: the pod that takes the stream within the hold may have it.
                (&mut moved).await?
            }
            Some(next) = &mut moved => next,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        Some(
            match self.media(&next, stream, path, left + PROXY_MARGIN).await {
                // It holds the lease but has no output yet: a player tries again.
                Answer::NotLive => Answer::Unreachable,
                answer => answer,
            },
        )
    }

    /// `path`, a media object of `stream`, from `owner` through the edge cache.
    async fn media(
        self: &Arc<Self>,
        owner: &Lease,
        stream: &str,
        path: &str,
        timeout: Duration,
    ) -> Answer {
        let key = format!("{}/{stream}/{path}", owner.instance);
        let (this, owner, stream, path) = (
            self.clone(),
            owner.clone(),
            stream.to_owned(),
            path.to_owned(),
        );
        let fetch = async move { this.fetch(&owner, &stream, &path, timeout, false).await };
        let (answer, lookup) = self.edge.get(key, fetch).await;
        self.metrics.edge_lookup(lookup.label());
        answer
    }

    /// A blocking playlist request (`_HLS_msn`), held by `owner` until `deadline`. When the
    /// stream moves meanwhile (its owner dies, or drains and hands it over, and another pod
    /// takes its lease), or the owner answers without a playlist, the request
    /// [follows](Self::follow) the stream within what is left of its hold: the viewer's reload
    /// is answered by where the stream went on, not by an error.
    async fn held(&self, owner: Lease, stream: &str, path: &str, deadline: Instant) -> Answer {
        let hold = deadline.saturating_duration_since(Instant::now());
        let first = self.fetch(&owner, stream, path, hold + PROXY_MARGIN, true);
        let moved = self.moved(stream, Some(&owner), deadline);
        tokio::pin!(first, moved);
        tokio::select! {
            answer = &mut first => {
                if !follows(&answer) {
                    return answer;
                }
                self.follow(owner.clone(), stream, path, deadline, Some(answer)).await
            }
            Some(next) = &mut moved => {
                tracing::info!(stream, from = %owner.owner, to = %next.owner, "the stream moved while a request was held; asking its new owner");
                self.follow(next, stream, path, deadline, None).await
            }
        }
    }

    /// A playlist request held until `deadline`, asked of `owner` (`answer`: what it answered
    /// already, if it was asked), and asked again every [`MOVE_POLL`] while no pod answers it
    /// with a playlist, of whichever pod holds the stream by then: an owner takes the lease as
    /// it admits the publisher, a moment before its playlists exist; a dead one's stream may be
    /// taken by another pod. The store is asked at most once a second per stream.
    async fn follow(
        &self,
        mut owner: Lease,
        stream: &str,
        path: &str,
        deadline: Instant,
        mut answer: Option<Answer>,
    ) -> Answer {
        loop {
            let current = match answer.take() {
                Some(a) => a,
                None => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.fetch(&owner, stream, path, left + PROXY_MARGIN, true)
                        .await
                }
            };
            if !follows(&current) || Instant::now() + MOVE_POLL >= deadline {
                return current;
            }
            tokio::time::sleep(MOVE_POLL).await;
            let known = self.owner(stream).await;
            let next = match known {
                // A dead owner still holding its lease: wait for another pod to take it, not
                // knocking on the dead one.
                Some(same) if current == Answer::Unreachable && same.instance == owner.instance => {
                    self.moved(stream, Some(&owner), deadline).await
                }
                Some(next) => Some(next),
                // Nobody holds it: it ended, unless its owner died lately (its publisher may
                // come back on another pod).
                None if self.is_orphaned(stream) && !self.is_here(stream) => {
                    match self.moved(stream, None, deadline).await {
                        Some(next) => Some(next),
                        None => return self.between_owners(stream),
                    }
                }
                None => None,
            };
            let Some(next) = next else {
                // Moved here: this pod's own output answers (`NotLive` sends it there).
                return if self.is_here(stream) {
                    Answer::NotLive
                } else {
                    current
                };
            };
            if next.instance != owner.instance {
                tracing::info!(stream, from = %owner.owner, to = %next.owner, "the stream moved while a request was held; asking its new owner");
            }
            owner = next;
        }
    }

    /// What a held playlist request is answered when no other pod took `stream` in time: 503
    /// (a player should try again, not give up), or `NotLive` when it moved here (this pod's
    /// own output answers).
    fn between_owners(&self, stream: &str) -> Answer {
        if self.is_here(stream) {
            Answer::NotLive
        } else {
            Answer::Unreachable
        }
    }

    /// Whether `stream` lost its owner lately (found unreachable, or not live there): within
    /// its lease's TTL and [`ORPHAN_GRACE`], a new owner may yet take it.
    fn is_orphaned(&self, stream: &str) -> bool {
        let within = self.leases.ttl() + ORPHAN_GRACE;
        let orphaned = self.orphaned.lock().expect("orphans lock");
        orphaned
            .get(stream)
            .is_some_and(|(at, _)| at.elapsed() < within)
    }

    /// Whether `lease`'s pod was found unreachable for `stream` since a pod last served it.
    fn found_dead(&self, stream: &str, lease: &Lease) -> bool {
        let orphaned = self.orphaned.lock().expect("orphans lock");
        orphaned
            .get(stream)
            .and_then(|(_, dead)| dead.as_deref())
            .is_some_and(|dead| dead == lease.instance)
    }

    /// Notes that a pod serves `stream` again: it is no longer orphaned.
    fn adopted(&self, stream: &str) {
        let mut orphaned = self.orphaned.lock().expect("orphans lock");
        if !orphaned.is_empty() {
            orphaned.remove(stream);
        }
    }

    /// Notes that `stream`'s owner no longer has it, or could not be reached (`dead`).
    fn orphan(&self, stream: &str, dead: Option<&Lease>) {
        let within = self.leases.ttl() + ORPHAN_GRACE;
        let mut orphaned = self.orphaned.lock().expect("orphans lock");
        if orphaned.len() > 10_000 {
            orphaned.retain(|_, (at, _)| at.elapsed() < within);
        }
        let dead = dead.map(|l| l.instance.clone());
        let entry = orphaned
            .entry(stream.to_owned())
            .or_insert((Instant::now(), None));
        entry.0 = Instant::now();
        if dead.is_some() {
            entry.1 = dead;
        }
    }

    /// The stream's owner once another pod than `owner` (and than this one) holds its lease,
    /// looked up in the store every [`MOVE_POLL`] until `deadline`; `None` if it does not move
    /// there (or moves to this pod: [`Inner::is_here`]).
    async fn moved(&self, stream: &str, owner: Option<&Lease>, deadline: Instant) -> Option<Lease> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep(MOVE_POLL.min(deadline - now)).await;
            // The owner known a moment ago; the store is asked at most once a second per
            // stream, however many requests are held.
            let known = self.owner(stream).await;
            if let Some(lease) = known.filter(|l| owner.is_none_or(|o| l.instance != o.instance)) {
                return Some(lease);
            }
            // It moved here.
            if self.is_here(stream) {
                return None;
            }
        }
    }

    /// Whether `stream`'s owner may be looked up in the store now: once a second per stream at
    /// most.
    fn may_look_up(&self, stream: &str) -> bool {
        let mut looked = self.looked_up.lock().expect("lookups lock");
        if looked.len() > 10_000 {
            looked.retain(|_, at| at.elapsed() < OWNER_FRESH);
        }
        match looked.get(stream) {
            Some(at) if at.elapsed() < OWNER_FRESH => false,
            _ => {
                looked.insert(stream.to_owned(), Instant::now());
                true
            }
        }
    }

    /// Asks `owner` for `path` of `stream`.
    async fn fetch(
        &self,
        owner: &Lease,
        stream: &str,
        path: &str,
        timeout: Duration,
        playlist: bool,
    ) -> Answer {
        let kind = if playlist { "playlist" } else { "media" };
        let uri = format!("http://{}/cluster/v1/live/{stream}/{path}", owner.owner);
        let request = match hyper::Request::get(&uri).body(Empty::<Bytes>::new()) {
            Ok(r) => r,
            Err(_) => return Answer::Gone,
        };
        let response = tokio::time::timeout(timeout, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let answer_kind = response
                .headers()
                .get(hls::ANSWER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((answer_kind, body))
        })
        .await;
        let answer = match response {
            Ok(Ok((Some(answer_kind), body))) => Answer::from_wire(&answer_kind, body),
            Ok(Ok((None, _))) => None,
            Ok(Err(e)) => {
                tracing::warn!(stream, owner = %owner.owner, error = %e, "the stream's owner cannot be reached");
                None
            }
            Err(_) => {
                tracing::warn!(stream, owner = %owner.owner, "the stream's owner did not answer in time");
                None
            }
        };
        let Some(answer) = answer else {
            self.forget(stream, owner);
            self.orphan(stream, Some(owner));
            self.metrics.proxied(kind, ProxyOutcome::Unavailable, 0);
            return Answer::Unreachable;
        };
        if answer == Answer::NotLive {
            // It moved, or ended: look it up again next time. A drained owner's publisher may
            // be taken by another pod a moment later.
            self.forget(stream, owner);
            self.orphan(stream, None);
        } else if matches!(answer, Answer::Playlist { .. } | Answer::Body { .. }) {
            // Served: whatever was found of it before (an owner not live yet as it started,
            // one that died and came back) is over.
            self.adopted(stream);
        }
        let outcome = match &answer {
            Answer::Playlist { .. } | Answer::Body { .. } => ProxyOutcome::Ok,
            Answer::NotLive | Answer::Gone | Answer::NoSuchRendition => ProxyOutcome::NotFound,
            Answer::Unreachable | Answer::Starting | Answer::NotInTime(_) => {
                ProxyOutcome::Unavailable
            }
            Answer::TooFarAhead(_) | Answer::BadRequest => ProxyOutcome::Error,
        };
        self.metrics
            .proxied(kind, outcome, answer.wire_body().len() as u64);
        answer
    }
}

/// Whether a playlist request answered so follows the stream (its owner has no playlists yet,
/// or went away) rather than being answered.
fn follows(answer: &Answer) -> bool {
    matches!(
        answer,
        Answer::NotLive | Answer::Starting | Answer::Unreachable | Answer::NotInTime(_)
    )
}

/// A blocking playlist request (`_HLS_msn`): the owner holds it until the part exists.
fn is_blocking(request: &Request) -> bool {
    matches!(
        request,
        Request::Playlist {
            block: hls::Block::At { .. },
            ..
        }
    )
}
