//! What the ingest reports: the protocol, how a connection ended, why an attempt was refused.
//! Each has the `label` the metrics use.

use serde::Serialize;

/// An ingest protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RTMP over TCP.
    Rtmp,
    /// RTMP over TLS (`listen.rtmps`).
    Rtmps,
    /// SRT over UDP.
    Srt,
}

impl Protocol {
    /// Every protocol, in label order.
    pub const ALL: [Protocol; 3] = [Protocol::Rtmp, Protocol::Rtmps, Protocol::Srt];

    /// `rtmp`, `rtmps` or `srt`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtmps => "rtmps",
            Protocol::Srt => "srt",
        }
    }
}

/// How an ingest connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionOutcome {
    /// It published (whatever ended the publish afterwards).
    Published,
    /// The peer went away before publishing.
    Closed,
    /// Its publish was refused.
    Rejected,
    /// It broke the protocol, or the transport failed.
    Error,
    /// It stayed silent too long.
    Timeout,
    /// Refused at accept: too many connections.
    OverLimit,
}

impl ConnectionOutcome {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            ConnectionOutcome::Published => "published",
            ConnectionOutcome::Closed => "closed",
            ConnectionOutcome::Rejected => "rejected",
            ConnectionOutcome::Error => "error",
            ConnectionOutcome::Timeout => "timeout",
            ConnectionOutcome::OverLimit => "over_limit",
        }
    }
}

/// Why an ingest attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// No configured stream has the key.
    BadKey,
    /// The stream has a publisher that is still sending.
    AlreadyLive,
    /// The server is shutting down.
    Draining,
    /// The stream's codec is not accepted.
    UnsupportedCodec,
    /// The peer broke the protocol.
    ProtocolError,
    /// Too many connections.
    OverLimit,
    /// The handshake or the publish took too long, or the publisher went silent.
    Timeout,
    /// The SRT streamid names no key.
    MissingKey,
    /// The SRT streamid asks for a mode other than publish.
    BadMode,
    /// The SRT streamid cannot be parsed.
    BadStreamid,
    /// An SRT caller encrypts towards a stream without a passphrase.
    UnexpectedPassphrase,
    /// An SRT caller's passphrase differs from the stream's (or it has none).
    BadPassphrase,
    /// The SRT handshake failed for another reason.
    HandshakeFailed,
    /// The RTMPS caller's TLS handshake failed (no common version or cipher, not TLS at all).
    TlsHandshake,
    /// Cluster mode: the stream is live on another server.
    LiveElsewhere,
    /// Cluster mode: the cluster store is unreachable and new publishes wait for it.
    StoreDown,
    /// The publish webhook said no.
    WebhookDenied,
    /// The publish webhook could not be asked, and publishes fail closed.
    WebhookUnavailable,
}

impl Rejection {
    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::BadKey => "bad_key",
            Rejection::AlreadyLive => "already_live",
            Rejection::Draining => "draining",
            Rejection::UnsupportedCodec => "unsupported_codec",
            Rejection::ProtocolError => "protocol_error",
            Rejection::OverLimit => "over_limit",
            Rejection::Timeout => "timeout",
            Rejection::MissingKey => "missing_key",
            Rejection::BadMode => "bad_mode",
            Rejection::BadStreamid => "bad_streamid",
            Rejection::UnexpectedPassphrase => "unexpected_passphrase",
            Rejection::BadPassphrase => "bad_passphrase",
            Rejection::HandshakeFailed => "handshake_failed",
            Rejection::TlsHandshake => "tls_handshake",
            Rejection::LiveElsewhere => "live_elsewhere",
            Rejection::StoreDown => "store_down",
            Rejection::WebhookDenied => "webhook_denied",
            Rejection::WebhookUnavailable => "webhook_unavailable",
        }
    }
}
