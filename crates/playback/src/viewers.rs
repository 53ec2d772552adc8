//! Distinct playback sessions per stream, for the viewer count.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Distinct playback sessions per stream over the last [`Viewers::WINDOW`].
///
/// Sessions are opaque identifiers chosen by the player (the `session` query parameter or the
/// `ferrocast_session` cookie). Only a keyed hash of each is kept, with the time it was last
/// seen; no address is stored. Only configured streams are tracked ([`Viewers::track`]), each
/// behind its own lock, with at most [`Viewers::MAX_SESSIONS`] sessions.
#[derive(Debug, Default)]
pub struct Viewers {
    hasher: std::collections::hash_map::RandomState,
    /// Filled once at start-up; read-only afterwards.
    streams: RwLock<HashMap<String, Arc<Mutex<Sessions>>>>,
    /// The tracked streams, in the order given.
    order: RwLock<Vec<String>>,
}

/// One stream's sessions.
#[derive(Debug, Default)]
struct Sessions {
    last_seen: HashMap<u64, Instant>,
    /// When expired sessions were last dropped to make room.
    last_purge: Option<Instant>,
}

impl Sessions {
    fn purge(&mut self, now: Instant) {
        self.last_seen
            .retain(|_, t| now.saturating_duration_since(*t) < Viewers::WINDOW);
        self.last_purge = Some(now);
    }
}

impl Viewers {
    /// How long a session counts after its last request.
    pub const WINDOW: Duration = Duration::from_secs(30);
    /// Sessions remembered per stream; beyond it new ones are not counted until old ones expire.
    pub const MAX_SESSIONS: usize = 100_000;
    /// A full stream drops its expired sessions at most this often (a flood of new identifiers
    /// must not turn every request into a scan).
    const PURGE_EVERY: Duration = Duration::from_secs(1);

    /// A usable session identifier: 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn valid(session: &str) -> bool {
        (1..=64).contains(&session.len())
            && session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Tracks these (configured) streams; requests for others are not counted.
    pub fn track<'a>(&self, streams: impl IntoIterator<Item = &'a str>) {
        let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        let mut order = self.order.write().unwrap_or_else(PoisonError::into_inner);
        for s in streams {
            if !map.contains_key(s) {
                map.insert(s.to_owned(), Arc::default());
                order.push(s.to_owned());
            }
        }
    }

    /// The tracked streams, in the order they were given to [`Viewers::track`].
    pub fn tracked(&self) -> Vec<String> {
        self.order
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn sessions(&self, stream: &str) -> Option<Arc<Mutex<Sessions>>> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// Notes a request of `session` for `stream` at `now`. Invalid identifiers and streams not
    /// tracked are ignored.
    pub fn seen(&self, stream: &str, session: &str, now: Instant) {
        if !Self::valid(session) {
            return;
        }
        let Some(sessions) = self.sessions(stream) else {
            return;
        };
        let key = self.hasher.hash_one(session);
        let mut s = sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if s.last_seen.len() >= Self::MAX_SESSIONS && !s.last_seen.contains_key(&key) {
            let due = s
                .last_purge
                .is_none_or(|t| now.saturating_duration_since(t) >= Self::PURGE_EVERY);
            if due {
                s.purge(now);
            }
            if s.last_seen.len() >= Self::MAX_SESSIONS {
                return;
            }
        }
        s.last_seen.insert(key, now);
    }

    /// Sessions of `stream` seen within the window before `now`; forgets older ones.
    pub fn count(&self, stream: &str, now: Instant) -> usize {
        let Some(sessions) = self.sessions(stream) else {
            return 0;
        };
        let mut s = sessions.lock().unwrap_or_else(PoisonError::into_inner);
        s.purge(now);
        s.last_seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_count_distinct_sessions_within_the_window() {
        let v = Viewers::default();
        v.track(["main", "other"]);
        let t0 = Instant::now();
        v.seen("main", "tab-1", t0);
        v.seen("main", "tab-1", t0 + Duration::from_secs(1));
        v.seen("main", "tab-2", t0 + Duration::from_secs(2));
        v.seen("other", "tab-1", t0);
        // Not identifiers: too long, or characters a cookie or URL would mangle.
        v.seen("main", &"x".repeat(65), t0);
        v.seen("main", "a b", t0);
        v.seen("main", "", t0);
        assert_eq!(v.count("main", t0 + Duration::from_secs(3)), 2);
        assert_eq!(v.count("other", t0 + Duration::from_secs(3)), 1);
        // Streams that are not configured are not tracked.
        v.seen("nobody", "tab-1", t0);
        assert_eq!(v.count("nobody", t0), 0);
        // tab-1 was last seen at 1 s, tab-2 at 2 s.
        assert_eq!(v.count("main", t0 + Duration::from_millis(31_500)), 1);
        assert_eq!(v.count("main", t0 + Duration::from_secs(33)), 0);
    }

    #[test]
    fn viewers_stay_bounded() {
        let v = Viewers::default();
        v.track(["main"]);
        let t0 = Instant::now();
        for i in 0..Viewers::MAX_SESSIONS + 10 {
            v.seen("main", &format!("s{i}"), t0);
        }
        assert_eq!(v.count("main", t0), Viewers::MAX_SESSIONS);
        // Once the old ones expire, new sessions count again.
        let later = t0 + Viewers::WINDOW + Duration::from_secs(1);
        v.seen("main", "fresh", later);
        assert_eq!(v.count("main", later), 1);
    }
}
