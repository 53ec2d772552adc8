//! Why a publish was refused.

use media::StreamName;

use crate::outcome::Rejection;

/// Why a publish was refused. The `Display` text is safe to send to the publisher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// No configured stream has this key.
    #[error("unknown stream key")]
    BadKey,
    /// The stream already has a publisher that is still sending.
    #[error("stream {0} is already being published; retry after the current publisher stops")]
    AlreadyLive(StreamName),
    /// The server is shutting down.
    #[error("server is shutting down")]
    Draining,
    /// Cluster mode: the stream is live on another server.
    #[error("stream {0} is being published to another server; retry after that publisher stops")]
    LiveElsewhere(StreamName),
    /// Cluster mode: the cluster store cannot be reached, and new publishes wait for it
    /// (`cluster.on_store_down = "refuse"`).
    #[error("the server cannot reach its cluster store; retry shortly")]
    StoreDown,
    /// The publish webhook refused it, with this reason.
    #[error("{0}")]
    Denied(String),
    /// The publish webhook cannot be asked now, and publishes fail closed.
    #[error("the server cannot check this publish now; retry shortly")]
    AuthUnavailable,
}

impl PublishError {
    /// The rejection it is counted as.
    pub fn rejection(&self) -> Rejection {
        match self {
            PublishError::BadKey => Rejection::BadKey,
            PublishError::AlreadyLive(_) => Rejection::AlreadyLive,
            PublishError::Draining => Rejection::Draining,
            PublishError::LiveElsewhere(_) => Rejection::LiveElsewhere,
            PublishError::StoreDown => Rejection::StoreDown,
            PublishError::Denied(_) => Rejection::WebhookDenied,
            PublishError::AuthUnavailable => Rejection::WebhookUnavailable,
        }
    }
}
