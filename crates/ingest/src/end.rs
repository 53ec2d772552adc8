//! How the server ends a publish, and why.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Ends a publish, optionally with a reason the ingest can pass on to the publisher.
#[derive(Debug, Clone, Default)]
pub struct EndSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl EndSignal {
    /// Ends the publish without a reason (takeover, drain).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Ends the publish; the first reason given is the one the publisher hears.
    pub fn end(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock().expect("end reason lock");
        if r.is_none() && !self.token.is_cancelled() {
            *r = Some(reason.into());
        }
        drop(r);
        self.token.cancel();
    }

    /// True once ended.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it ended, when a reason was given.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("end reason lock").clone()
    }

    /// Completes once ended.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}
