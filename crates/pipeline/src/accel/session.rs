//! Hardware encoder sessions: how many rungs may encode on the GPU at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Hardware encoder sessions admitted at once (`nvidia.max_encode_sessions`), per rung: each
/// hardware-encoded rung holds one [`SessionLease`] for the life of its pipeline.
#[derive(Debug)]
pub struct SessionBudget {
    limit: Option<usize>,
    in_use: AtomicUsize,
}

impl SessionBudget {
    /// `limit` of `None` admits every rung.
    pub fn new(limit: Option<usize>) -> Arc<SessionBudget> {
        Arc::new(SessionBudget {
            limit,
            in_use: AtomicUsize::new(0),
        })
    }

    /// Takes one session, or `None` when all are in use.
    pub fn try_acquire(self: &Arc<Self>) -> Option<SessionLease> {
        let mut current = self.in_use.load(Ordering::SeqCst);
        loop {
            if self.limit.is_some_and(|l| current >= l) {
                return None;
            }
            match self.in_use.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Some(SessionLease {
                        budget: Arc::clone(self),
                    })
                }
                Err(now) => current = now,
            }
        }
    }

    /// Sessions held now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    /// The configured limit, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }
}

/// One admitted hardware encoder session; released on drop.
#[derive(Debug)]
pub struct SessionLease {
    budget: Arc<SessionBudget>,
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        self.budget.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}
