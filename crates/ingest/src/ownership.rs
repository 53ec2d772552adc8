//! Ownership across replicas: in cluster mode every publish also claims its stream cluster-wide
//! before it goes live, so that one stream has one publisher on all pods together. The wiring
//! plugs the cluster in as an [`Ownership`]; ingest knows nothing of how it decides.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use media::StreamName;

use crate::end::{EndReason, EndSignal};
use crate::error::PublishError;

/// Claims streams cluster-wide.
pub trait Ownership: Send + Sync {
    /// Whether `name` may go live here now: the check before a handshake is accepted (SRT
    /// decides at the handshake). [`Ownership::claim`] has the last word.
    fn check<'a>(&'a self, name: &'a StreamName) -> BoxFuture<'a, Result<(), Disowned>>;

    /// Claims `publish`'s stream; the claim is held until the returned guard drops (with the
    /// publish), and losing it ends the publish through [`PublishWatch::end`].
    fn claim(&self, publish: PublishWatch) -> BoxFuture<'_, Result<OwnershipClaim, Disowned>>;
}

/// Held while a publish owns its stream cluster-wide; dropping it lets the stream go.
pub type OwnershipClaim = Box<dyn std::any::Any + Send + Sync>;

/// Why the cluster refused a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disowned {
    /// The stream is live on another server (named by its address).
    LiveElsewhere(String),
    /// The cluster cannot be asked now, and new publishes wait for it.
    StoreDown,
}

impl Disowned {
    /// The publish error it is, for `name`.
    pub(crate) fn error(self, name: &StreamName) -> PublishError {
        match self {
            Disowned::LiveElsewhere(_) => PublishError::LiveElsewhere(name.clone()),
            Disowned::StoreDown => PublishError::StoreDown,
        }
    }
}

/// A live publish as its claim's keeper sees it.
#[derive(Clone)]
pub struct PublishWatch {
    pub(crate) name: StreamName,
    pub(crate) id: u64,
    pub(crate) end: EndSignal,
    /// How long the publisher has sent nothing.
    pub(crate) idle: Arc<dyn Fn() -> Duration + Send + Sync>,
    pub(crate) takeover_after: Duration,
}

impl std::fmt::Debug for PublishWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishWatch")
            .field("stream", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PublishWatch {
    /// The stream.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// The publish's number on this server.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The publish has ended.
    pub fn is_over(&self) -> bool {
        self.end.is_cancelled()
    }

    /// Its publisher has sent nothing for the takeover timeout (`ingest.publisher_timeout`):
    /// a new publisher may take the stream over.
    pub fn is_silent(&self) -> bool {
        (self.idle)() >= self.takeover_after
    }

    /// Ends the publish, saying why.
    pub fn end(&self, reason: EndReason) {
        self.end.end(reason);
    }
}
