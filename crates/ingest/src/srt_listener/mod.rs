//! The SRT ingest driver: an `srt-tokio` listener that decides every caller at the handshake,
//! and a thin loop per publisher around [`mpegts::Demuxer`].
//!
//! One UDP port serves every caller. For each connection request the listener hands over the
//! caller's streamid before anything is accepted, so every refusal (an unparsable streamid, a
//! mode other than publish, an unknown key, a stream someone else is sending, too many callers,
//! a server shutting down) is an SRT rejection with a reason the caller's log shows; nobody is
//! accepted and then dropped. The AES passphrase (the stream's own, else the listener-wide one)
//! is handed to the handshake, which rejects a caller whose passphrase differs.
//!
//! An accepted caller becomes a registry publish ([`StreamRegistry::publish`]): its payload, an
//! MPEG-TS byte stream in messages not aligned to packets, goes through the sans-IO demuxer into
//! typed media frames. Link statistics (RTT, packets received, lost, retransmitted, dropped,
//! receive bitrate) and transport-stream damage are recorded per stream.
//!
//! `srt-tokio`'s listener runs in one task of its own for every caller of the port, so a panic
//! in it would drop them all. The workspace builds it on a patched `srt-protocol`
//! (`vendor/srt-protocol/PATCHES.md`) in which no datagram and no handshake panics: extensions
//! it does not implement are rejected as libsrt does (`transtype=file`: `SRT_REJ_CONGESTION`, a
//! packet filter: `SRT_REJ_FILTER`), key material towards a stream without a passphrase is
//! `SRT_REJ_UNSECURE` (a caller that announced no key length, libsrt's default, cannot be told
//! apart in the connection request, so the handshake refuses it after we accept), malformed
//! packets are ignored. The `srt_handshake` fuzz target ([`crate::fuzz::srt_handshake`]) drives
//! that state machine. Should the listener task still end, [`SrtIngest::serve`] notices and
//! binds the port again (the live SRT publishes of that listener are then lost), as a last line
//! of defence.

mod admission;
mod links;
mod publisher;

pub use admission::{decide, reject_reason, Admission, Refusal};
pub use links::{LinkSnapshot, SrtLinkGauges, SrtLinks};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use media::StreamName;
use srt::reject;
use srt_tokio::access::AcceptParameters;
use srt_tokio::options::{ByteCount, SocketOptions};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Srt, StreamConfig};
use crate::error::PublishError;
use crate::health::ListenerHealth;
use crate::metrics::IngestMetrics;
use crate::outcome::{ConnectionOutcome, Protocol, Rejection};
use crate::registry::StreamRegistry;
use publisher::{close, Publisher};

const PROTOCOL: Protocol = Protocol::Srt;

/// UDP receive buffer asked of the kernel for the shared port (the kernel caps it at
/// `net.core.rmem_max`); srt-tokio's 64 KiB default loses packets with a few callers.
const UDP_BUFFER: u64 = 8 << 20;

/// How long a drain waits for connections to close before the listener goes.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Binds the UDP socket the listener will serve, so the bound port is known before start-up
/// is announced.
pub async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    srt_tokio::bind_socket(&socket_options(addr, Duration::ZERO)).await
}

fn socket_options(addr: SocketAddr, latency: Duration) -> SocketOptions {
    let mut options = SocketOptions::default();
    options.connect.local = addr;
    options.connect.udp_recv_buffer_size = ByteCount(UDP_BUFFER);
    options.connect.udp_send_buffer_size = ByteCount(UDP_BUFFER);
    options.receiver.latency = latency;
    options.sender.peer_latency = latency;
    options
}

/// What every SRT caller shares.
#[derive(Debug)]
pub struct SrtIngest {
    config: Srt,
    registry: Arc<StreamRegistry>,
    metrics: Arc<IngestMetrics>,
    /// Per-stream passphrases; streams not listed use the listener-wide one.
    passphrases: BTreeMap<StreamName, String>,
    connections: AtomicUsize,
    /// Notified whenever a connection ends, for the drain.
    closed: Notify,
    next_id: AtomicU64,
    links: Arc<SrtLinks>,
}

impl SrtIngest {
    /// Ingest with these limits, publishing into `registry`; `streams` gives the per-stream
    /// passphrases, and each live link's state goes to `links`.
    pub fn new(
        config: Srt,
        streams: &[StreamConfig],
        registry: Arc<StreamRegistry>,
        metrics: Arc<IngestMetrics>,
        links: Arc<SrtLinks>,
    ) -> Arc<Self> {
        let passphrases = streams
            .iter()
            .filter(|s| !s.passphrase.is_empty())
            .map(|s| (s.name.clone(), s.passphrase.clone()))
            .collect();
        Arc::new(SrtIngest {
            config,
            registry,
            metrics,
            passphrases,
            connections: AtomicUsize::new(0),
            closed: Notify::new(),
            next_id: AtomicU64::new(1),
            links,
        })
    }

    /// Serves callers on `socket` until `stop` fires, then rejects newcomers while the open
    /// connections close (briefly), and closes the listener. Connection tasks are spawned on
    /// `tracker`. If srt-tokio's listener task dies, the port is bound again; `health` is down
    /// meanwhile.
    pub async fn serve(
        self: Arc<Self>,
        socket: UdpSocket,
        stop: CancellationToken,
        tracker: TaskTracker,
        health: Arc<ListenerHealth>,
    ) {
        let local = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "srt socket has no address; SRT ingest is off");
                return;
            }
        };
        let mut socket = Some(socket);
        loop {
            let udp = match socket.take() {
                Some(s) => s,
                None => match bind(local).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%local, error = %e, "cannot bind the SRT port again yet; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            let bound = SrtListener::builder()
                .set(|o| *o = socket_options(local, self.config.latency))
                .socket(udp)
                .bind(local)
                .await;
            let (mut listener, mut incoming) = match bound {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%local, error = %e, "cannot start the SRT listener; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            health.up();
            if !self.accept(&mut incoming, &stop, &tracker).await {
                health.down();
                tracing::error!(
                    "the SRT listener task ended unexpectedly (srt-tokio failed on a caller's \
                     handshake); binding the port again"
                );
                continue;
            }
            self.drain(&mut incoming, &tracker).await;
            listener.close().await;
            break;
        }
        tracing::debug!("srt listener closed");
    }

    /// Hands each request to a task of its own until `stop` fires (true) or the listener's
    /// task ends (false).
    async fn accept(
        self: &Arc<Self>,
        incoming: &mut SrtIncoming,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> bool {
        loop {
            let request = tokio::select! {
                _ = stop.cancelled() => return true,
                r = incoming.incoming().next() => match r {
                    Some(r) => r,
                    None => return false,
                },
            };
            self.spawn_caller(request, tracker);
        }
    }

    /// While the registry drains, newcomers are rejected (it answers `Draining`); wait a little
    /// for the open connections to send their shutdown.
    async fn drain(self: &Arc<Self>, incoming: &mut SrtIncoming, tracker: &TaskTracker) {
        let deadline = Instant::now() + DRAIN_WAIT;
        while self.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::select! {
                r = incoming.incoming().next() => match r {
                    Some(r) => self.spawn_caller(r, tracker),
                    None => return,
                },
                _ = self.closed.notified() => {}
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    fn spawn_caller(self: &Arc<Self>, request: ConnectionRequest, tracker: &TaskTracker) {
        let remote = request.remote();
        let open = self.connections.fetch_add(1, Ordering::SeqCst);
        if open >= self.config.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%remote, limit = self.config.max_connections, "srt caller rejected: too many connections");
            self.metrics.reject(PROTOCOL, Rejection::OverLimit);
            self.metrics
                .connection(PROTOCOL, ConnectionOutcome::OverLimit);
            tracker.spawn(async move {
                let _ = request.reject(reject_reason(reject::OVERLOAD)).await;
            });
            return;
        }
        let this = self.clone();
        let span = tracing::info_span!("srt", %remote, stream = tracing::field::Empty);
        tracker.spawn(
            async move {
                let result = this.caller(request, remote).await;
                this.connections.fetch_sub(1, Ordering::SeqCst);
                this.closed.notify_one();
                this.metrics.connection(PROTOCOL, result);
            }
            .instrument(span),
        );
    }

    /// One caller, from its connection request to its close; returns how it ended, for the
    /// connections metric.
    async fn caller(&self, request: ConnectionRequest, remote: SocketAddr) -> ConnectionOutcome {
        let handshake_deadline = Instant::now() + self.config.handshake_timeout;
        let key_size = request.key_size();
        let streamid = request.stream_id().map(|s| s.as_str());
        // Which stream, before the handshake is accepted (the passphrase depends on it): a
        // configured key's, or the webhook's answer (bounded by auth.webhook_timeout).
        let authorization = match admission::attempt(streamid, remote) {
            Some(attempt) => Some(
                tokio::time::timeout_at(handshake_deadline, self.registry.authorize(&attempt))
                    .await
                    .unwrap_or(Err(PublishError::AuthUnavailable)),
            ),
            None => None,
        };
        let decision = decide(
            streamid,
            key_size.as_raw(),
            |_| match &authorization {
                Some(Ok(a)) => self.registry.check_authorized(a).map(|()| a.name.clone()),
                Some(Err(e)) => Err(e.clone()),
                // The streamid did not parse: decide refuses it before asking.
                None => Err(PublishError::BadKey),
            },
            |name| self.passphrase_for(name),
        );
        // Cluster mode: refused at the handshake too while another server has the stream live.
        let decision = match decision {
            Ok(a) => match self.registry.check_owned(&a.name).await {
                Ok(()) => Ok(a),
                Err(e) => Err(admission::refusal(e)),
            },
            Err(refusal) => Err(refusal),
        };
        let admission = match decision {
            Ok(a) => a,
            Err(refusal) => {
                tracing::warn!(
                    reason = refusal.metric.label(),
                    "srt caller rejected: {}",
                    refusal.message
                );
                self.metrics.reject(PROTOCOL, refusal.metric);
                let _ = request.reject(refusal.reason).await;
                return ConnectionOutcome::Rejected;
            }
        };
        tracing::Span::current().record("stream", admission.name.as_str());
        let encrypted = admission.passphrase.is_some();
        let key_settings = admission.passphrase.as_ref().and_then(|p| {
            AcceptParameters::new()
                .set_key_settings(p.as_str(), u16::from(key_size.as_raw()))
                .take_key_settings()
        });
        let socket =
            match tokio::time::timeout_at(handshake_deadline, request.accept(key_settings)).await {
                Ok(Ok(socket)) => socket,
                Ok(Err(_)) => {
                    // The handshake refused the caller: with a passphrase, the caller's differs
                    // (SRT_REJ_BADSECRET) or it has none (SRT_REJ_UNSECURE); without, it
                    // encrypts (SRT_REJ_UNSECURE), or it asked for a congestion controller, a
                    // packet filter or a group this stack does not serve.
                    let metric = if encrypted {
                        Rejection::BadPassphrase
                    } else {
                        Rejection::HandshakeFailed
                    };
                    tracing::warn!(
                        reason = metric.label(),
                        "srt caller rejected by the handshake (a passphrase mismatch, or \
                         transtype=file, a packet filter or a group)"
                    );
                    self.metrics.reject(PROTOCOL, metric);
                    return ConnectionOutcome::Rejected;
                }
                Err(_) => {
                    tracing::warn!(phase = "handshake", "srt caller timed out");
                    self.metrics.reject(PROTOCOL, Rejection::Timeout);
                    return ConnectionOutcome::Timeout;
                }
            };
        // The registry has the last word: a publisher may have appeared since the check.
        let Some(Ok(authorization)) = authorization else {
            // Not reached: decide admits only an authorized caller.
            close(socket).await;
            return ConnectionOutcome::Rejected;
        };
        let handle = match self
            .registry
            .publish_authorized(authorization, PROTOCOL, remote)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(
                    reason = e.rejection().label(),
                    "publish refused after the handshake: {e}"
                );
                close(socket).await;
                return ConnectionOutcome::Rejected;
            }
        };
        tracing::info!(encrypted, "publish started");
        let connection = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut publisher =
            Publisher::new(&self.config, &self.metrics, &self.links, handle, connection);
        publisher.start_metrics(&socket);
        let result = publisher.run(socket, handshake_deadline).await;
        self.links.remove(publisher.handle().name(), connection);
        tracing::info!(result = result.label(), "unpublished");
        result
    }

    fn passphrase_for(&self, name: &StreamName) -> Option<String> {
        let p = self
            .passphrases
            .get(name)
            .unwrap_or(&self.config.passphrase);
        (!p.is_empty()).then(|| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn name(s: &str) -> StreamName {
        s.parse().unwrap()
    }

    #[test]
    fn per_stream_passphrase_beats_the_listener_one() {
        let streams = vec![
            StreamConfig {
                name: name("own"),
                key: "k1".into(),
                passphrase: "stream-passphrase".into(),
            },
            StreamConfig {
                name: name("shared"),
                key: "k2".into(),
                passphrase: String::new(),
            },
        ];
        let metrics = Arc::new(IngestMetrics::new(&mut Registry::default()));
        let registry =
            StreamRegistry::new(streams.clone(), Duration::from_secs(5), metrics.clone());
        let links = Arc::new(SrtLinks::default());
        let with_listener = Srt {
            passphrase: "listener-passphrase".into(),
            ..Srt::default()
        };
        let ingest = SrtIngest::new(
            with_listener,
            &streams,
            registry.clone(),
            metrics.clone(),
            links.clone(),
        );
        assert_eq!(
            ingest.passphrase_for(&name("own")).as_deref(),
            Some("stream-passphrase")
        );
        assert_eq!(
            ingest.passphrase_for(&name("shared")).as_deref(),
            Some("listener-passphrase")
        );
        let ingest = SrtIngest::new(Srt::default(), &streams, registry, metrics, links);
        assert_eq!(ingest.passphrase_for(&name("shared")), None);
    }
}
