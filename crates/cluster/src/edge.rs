//! The edge cache: immutable objects fetched from owner pods (init segments, segments, parts),
//! kept in a least-recently-used store bounded in bytes, with concurrent misses of one object
//! waiting on a single fetch. Keys name the owner's process instance, so an owner that restarts
//! (and numbers its objects again) never hits an older object.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};
use hls::Answer;

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// From the cache.
    Hit,
    /// Fetched by this request.
    Miss,
    /// Waited on another request's fetch.
    Coalesced,
}

impl Lookup {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Coalesced => "coalesced",
        }
    }
}

type Fetch = Shared<BoxFuture<'static, Answer>>;

/// The cache.
pub(crate) struct EdgeCache {
    capacity: u64,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Answer, u64)>,
    /// Use order: tick → key, oldest first.
    order: BTreeMap<u64, String>,
    bytes: u64,
    tick: u64,
    inflight: HashMap<String, Fetch>,
}

impl EdgeCache {
    /// A cache of at most `capacity` bytes of bodies.
    pub(crate) fn new(capacity: u64) -> EdgeCache {
        EdgeCache {
            capacity,
            inner: Arc::default(),
        }
    }

    /// The object under `key`: from the cache, from a fetch already under way, or from `fetch`
    /// (run as a task of its own, so that a viewer who goes away does not cancel it for the
    /// others). Only media bodies are kept.
    pub(crate) async fn get(
        &self,
        key: String,
        fetch: impl Future<Output = Answer> + Send + 'static,
    ) -> (Answer, Lookup) {
        let (shared, lookup) = {
            let mut inner = self.inner.lock().expect("edge cache lock");
            if let Some((answer, tick)) = inner.entries.get(&key).cloned() {
                inner.order.remove(&tick);
                inner.tick += 1;
                let now = inner.tick;
                inner.order.insert(now, key.clone());
                if let Some(entry) = inner.entries.get_mut(&key) {
                    entry.1 = now;
                }
                return (answer, Lookup::Hit);
            }
            match inner.inflight.get(&key) {
                Some(f) => (f.clone(), Lookup::Coalesced),
                None => {
                    let cache = self.inner.clone();
                    let capacity = self.capacity;
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        let answer = fetch.await;
                        let mut inner = cache.lock().expect("edge cache lock");
                        inner.inflight.remove(&k);
                        if matches!(answer, Answer::Body { .. }) {
                            inner.insert(k, answer.clone(), capacity);
                        }
                        answer
                    });
                    let f: Fetch = async move { task.await.unwrap_or(Answer::Unreachable) }
                        .boxed()
                        .shared();
                    inner.inflight.insert(key, f.clone());
                    (f, Lookup::Miss)
                }
            }
        };
        (shared.await, lookup)
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.inner.lock().expect("edge cache lock").bytes
    }
}

impl Inner {
    fn insert(&mut self, key: String, answer: Answer, capacity: u64) {
        let size = body_len(&answer);
        if size > capacity || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + size > capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = self.entries.remove(&oldest) {
                self.bytes -= body_len(&evicted);
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (answer, self.tick));
        self.bytes += size;
    }
}

fn body_len(answer: &Answer) -> u64 {
    match answer {
        Answer::Body { bytes, .. } => bytes.len() as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn body(n: usize) -> Answer {
        Answer::Body {
            bytes: Bytes::from(vec![7u8; n]),
            init: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_fetch_and_later_ones_hit() {
        let cache = Arc::new(EdgeCache::new(1 << 20));
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = |n: Arc<AtomicUsize>| async move {
            n.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            body(100)
        };
        let mut waiters = Vec::new();
        for _ in 0..30 {
            let (cache, f) = (cache.clone(), fetch(fetches.clone()));
            waiters.push(tokio::spawn(async move { cache.get("a".into(), f).await }));
        }
        let mut lookups = Vec::new();
        for w in waiters {
            let (answer, lookup) = w.await.unwrap();
            assert_eq!(answer, body(100));
            lookups.push(lookup);
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch for 30 viewers"
        );
        assert_eq!(lookups.iter().filter(|l| **l == Lookup::Miss).count(), 1);
        assert_eq!(
            lookups.iter().filter(|l| **l == Lookup::Coalesced).count(),
            29
        );
        let (_, later) = cache.get("a".into(), fetch(fetches.clone())).await;
        assert_eq!(later, Lookup::Hit);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_goes_first_and_failures_are_not_kept() {
        let cache = EdgeCache::new(250);
        for key in ["a", "b"] {
            cache.get(key.into(), async { body(100) }).await;
        }
        // `a` is used again, so `b` is the one to go for `c`.
        assert_eq!(
            cache.get("a".into(), async { body(1) }).await.1,
            Lookup::Hit
        );
        cache.get("c".into(), async { body(100) }).await;
        assert_eq!(cache.bytes(), 200);
        assert_eq!(
            cache.get("a".into(), async { body(1) }).await.1,
            Lookup::Hit
        );
        assert_eq!(
            cache.get("c".into(), async { body(1) }).await.1,
            Lookup::Hit
        );
        let (again, lookup) = cache.get("b".into(), async { body(100) }).await;
        assert_eq!((again, lookup), (body(100), Lookup::Miss));
        // An answer that is not media is passed on, never kept.
        let (gone, _) = cache.get("d".into(), async { Answer::Unreachable }).await;
        assert_eq!(gone, Answer::Unreachable);
        assert_eq!(
            cache.get("d".into(), async { body(10) }).await.1,
            Lookup::Miss
        );
        // An object larger than the whole cache is served, not kept.
        cache.get("huge".into(), async { body(1000) }).await;
        assert!(cache.bytes() <= 250);
    }
}
