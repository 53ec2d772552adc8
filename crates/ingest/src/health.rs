//! Whether a listener is serving: set by the task that runs it (and by whoever restarts that
//! task), read by the service's `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One listener's state. Starts down: nothing serves until a task says so.
#[derive(Debug, Default)]
pub struct ListenerHealth {
    up: AtomicBool,
    restarts: AtomicU64,
}

impl ListenerHealth {
    /// The listener accepts callers.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// The listener stopped accepting callers without being asked to (its task died, or its
    /// socket is being bound again); counts a restart.
    pub fn down(&self) {
        if self.up.swap(false, Ordering::SeqCst) {
            self.restarts.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether callers are accepted now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// How often the listener went down and was started again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_down_and_counts_each_fall_once() {
        let h = ListenerHealth::default();
        assert!(!h.is_up());
        h.down();
        assert_eq!(h.restarts(), 0, "never up: nothing to restart");
        h.up();
        assert!(h.is_up());
        h.down();
        h.down();
        assert!(!h.is_up());
        assert_eq!(h.restarts(), 1);
    }
}
