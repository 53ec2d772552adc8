//! Requests held waiting for media (blocking playlist reloads, parts not produced yet), counted
//! while they wait.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// What a held request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldKind {
    /// A playlist: a blocking reload, or a first playlist waiting for the ladder.
    Playlist,
    /// A part or segment not produced yet.
    Part,
}

impl HeldKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HeldKind::Playlist => "playlist",
            HeldKind::Part => "part",
        }
    }
}

/// Counts of requests held waiting for media, read at scrape time.
#[derive(Debug, Default)]
pub struct HeldRequests {
    playlist: AtomicI64,
    part: AtomicI64,
}

impl HeldRequests {
    fn counter(&self, kind: HeldKind) -> &AtomicI64 {
        match kind {
            HeldKind::Playlist => &self.playlist,
            HeldKind::Part => &self.part,
        }
    }

    /// Counts one held request until the guard drops.
    pub fn hold(self: &Arc<Self>, kind: HeldKind) -> HeldGuard {
        self.counter(kind).fetch_add(1, Ordering::Relaxed);
        HeldGuard {
            held: self.clone(),
            kind,
        }
    }

    /// Requests of `kind` held now.
    pub fn get(&self, kind: HeldKind) -> i64 {
        self.counter(kind).load(Ordering::Relaxed)
    }
}

/// One held request; dropping it (answered, timed out or cancelled) uncounts it.
#[derive(Debug)]
pub struct HeldGuard {
    held: Arc<HeldRequests>,
    kind: HeldKind,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.held.counter(self.kind).fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_requests_are_counted_until_answered() {
        let held = Arc::new(HeldRequests::default());
        let a = held.hold(HeldKind::Playlist);
        let b = held.hold(HeldKind::Part);
        let c = held.hold(HeldKind::Part);
        assert_eq!(
            (held.get(HeldKind::Playlist), held.get(HeldKind::Part)),
            (1, 2)
        );
        drop((a, b));
        assert_eq!(
            (held.get(HeldKind::Playlist), held.get(HeldKind::Part)),
            (0, 1)
        );
        drop(c);
        assert_eq!(held.get(HeldKind::Part), 0);
    }
}
