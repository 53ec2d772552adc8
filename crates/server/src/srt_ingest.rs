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
//! An accepted caller becomes a registry publish ([`StreamRegistry::publish`]); its payload, an
//! MPEG-TS byte stream in messages not aligned to packets, goes through the sans-IO demuxer into
//! typed media frames. Link statistics (RTT, packets received, lost, retransmitted, dropped,
//! receive bitrate) and transport-stream damage are recorded per stream.
//!
//! `srt-tokio` 0.4.4's listener runs in a task of its own, which some handshakes bring down: it
//! panics on extensions it does not implement (callers with `transtype=file` or a packet
//! filter), and on key material from a caller towards a stream without a passphrase when the
//! caller announced no key length (libsrt's default), which the connection request does not
//! show. [`SrtIngest::serve`] notices and binds the port again; the live SRT publishes of that
//! listener are lost and must reconnect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use media::StreamName;
use srt::{reject, StreamId};
use srt_tokio::access::{AcceptParameters, RejectReason, ServerRejectReason};
use srt_tokio::options::{ByteCount, SocketOptions};
use srt_tokio::{ConnectionRequest, SocketStatistics, SrtIncoming, SrtListener, SrtSocket};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{self, StreamConfig};
use crate::metrics::Metrics;
use crate::registry::{PublishError, PublishHandle, StreamRegistry};

const PROTOCOL: &str = "srt";

/// `SRT_REJ_UNSECURE` (1011 on the wire): one side wants encryption and the other does not.
const REJ_UNSECURE: i32 = 1011;

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

/// What is refused at the handshake, and how the refusal is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rejection sent to the caller.
    pub reason: RejectReason,
    /// The `reason` label of the rejections metric.
    pub metric: &'static str,
    /// For the log: what was wrong and what to do. Never contains the key or a passphrase.
    pub message: String,
}

/// A caller that may be accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct Admission {
    /// The stream key (a secret).
    pub key: String,
    /// The stream it publishes.
    pub name: StreamName,
    /// The AES passphrase the handshake must match, if the stream has one.
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("name", &self.name)
            .field("encrypted", &self.passphrase.is_some())
            .finish_non_exhaustive()
    }
}

/// The SRT rejection for an access-control code of [`srt::reject`].
///
/// On the wire a rejection is `1000 + code`; srt-tokio names the predefined ones. Codes are
/// matched by meaning, so a caller sees the reason libsrt documents (`SRT_REJX_CONFLICT` is
/// 1409 in libsrt).
pub fn reject_reason(code: u16) -> RejectReason {
    use ServerRejectReason as S;
    let reason = match code {
        reject::BAD_REQUEST => S::BadRequest,
        reject::UNAUTHORIZED => S::Unauthorized,
        reject::OVERLOAD => S::Overload,
        reject::FORBIDDEN => S::Forbidden,
        reject::NOT_FOUND => S::Notfound,
        reject::BAD_MODE => S::BadMode,
        reject::UNACCEPTABLE => S::Unacceptable,
        reject::CONFLICT => S::Conflict,
        reject::NOTSUP_MEDIA => S::NotSupMedia,
        reject::INTERNAL_SERVER_ERROR => S::InternalServerError,
        reject::UNAVAILABLE => S::Down,
        other => {
            return RejectReason::try_from(i32::from(other) + 1000)
                .unwrap_or(RejectReason::Server(S::Fallback))
        }
    };
    RejectReason::Server(reason)
}

/// The metric label for a streamid that cannot be served.
fn streamid_metric(e: &srt::StreamIdError) -> &'static str {
    match e.reject_code() {
        reject::UNAUTHORIZED => "missing_key",
        reject::BAD_MODE => "bad_mode",
        _ => "bad_streamid",
    }
}

/// The streamid with `%XX` escapes decoded, as some publishers send it URL-encoded (a key
/// never holds `%`); unchanged when it is not a valid escape sequence.
fn percent_decoded(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return s.into(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_or(s.into(), Into::into)
}

/// Decides a caller from what its handshake carries, before anything is accepted.
///
/// `check` answers what a publish would (the registry's [`StreamRegistry::check_publish`]);
/// `passphrase_for` gives the passphrase a stream requires. `caller_key_len` is the AES key
/// length the caller announced (0 when it announced none, which a caller that encrypts may
/// also do).
pub fn decide(
    streamid: Option<&str>,
    caller_key_len: u8,
    check: impl FnOnce(&str) -> Result<StreamName, PublishError>,
    passphrase_for: impl FnOnce(&StreamName) -> Option<String>,
) -> Result<Admission, Refusal> {
    let streamid = percent_decoded(streamid.unwrap_or(""));
    let id = StreamId::parse(&streamid).map_err(|e| Refusal {
        reason: reject_reason(e.reject_code()),
        metric: streamid_metric(&e),
        message: e.to_string(),
    })?;
    let name = check(&id.key).map_err(|e| {
        let code = match e {
            PublishError::BadKey => reject::FORBIDDEN,
            PublishError::AlreadyLive(_) => reject::CONFLICT,
            PublishError::Draining => reject::UNAVAILABLE,
        };
        Refusal {
            reason: reject_reason(code),
            metric: e.reason(),
            message: e.to_string(),
        }
    })?;
    let passphrase = passphrase_for(&name);
    if passphrase.is_none() && caller_key_len != 0 {
        // srt-tokio cannot take an encrypting caller without a passphrase (it panics), and
        // libsrt listeners refuse them too. A caller that encrypts without announcing a key
        // length cannot be told apart here (see the module docs).
        return Err(Refusal {
            reason: RejectReason::try_from(REJ_UNSECURE)
                .unwrap_or(RejectReason::Server(ServerRejectReason::Unacceptable)),
            metric: "unexpected_passphrase",
            message: format!(
                "the caller encrypts, but stream {name} has no SRT passphrase; remove the \
                 passphrase from the publisher or configure one for the stream"
            ),
        });
    }
    Ok(Admission {
        key: id.key,
        name,
        passphrase,
    })
}

/// The live SRT links' gauges, read by the metrics collector at scrape time.
#[derive(Debug, Default)]
pub struct SrtLinks {
    links: Mutex<BTreeMap<StreamName, LinkState>>,
}

#[derive(Debug, Clone)]
struct LinkState {
    connection: u64,
    rtt: Duration,
    receive_bps: f64,
}

/// One live link, as the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSnapshot {
    /// The stream it publishes.
    pub stream: StreamName,
    /// Round-trip time.
    pub rtt: Duration,
    /// SRT payload bits per second over the last statistics interval.
    pub receive_bps: f64,
}

impl SrtLinks {
    /// Every live link, by stream name.
    pub fn snapshot(&self) -> Vec<LinkSnapshot> {
        self.links
            .lock()
            .expect("links lock")
            .iter()
            .map(|(stream, l)| LinkSnapshot {
                stream: stream.clone(),
                rtt: l.rtt,
                receive_bps: l.receive_bps,
            })
            .collect()
    }

    fn set(&self, stream: &StreamName, state: LinkState) {
        self.links
            .lock()
            .expect("links lock")
            .insert(stream.clone(), state);
    }

    /// Forgets `stream`'s link unless a newer connection took the stream over.
    fn remove(&self, stream: &StreamName, connection: u64) {
        let mut links = self.links.lock().expect("links lock");
        if links.get(stream).map(|l| l.connection) == Some(connection) {
            links.remove(stream);
        }
    }
}

/// What every SRT caller shares.
#[derive(Debug)]
pub struct SrtIngest {
    config: config::Srt,
    registry: Arc<StreamRegistry>,
    metrics: Arc<Metrics>,
    /// Per-stream passphrases; streams not listed use the listener-wide one.
    passphrases: BTreeMap<StreamName, String>,
    connections: AtomicUsize,
    next_id: AtomicU64,
    links: Arc<SrtLinks>,
}

impl SrtIngest {
    /// Ingest with these limits, publishing into `registry`; `streams` gives the per-stream
    /// passphrases.
    pub fn new(
        config: config::Srt,
        streams: &[StreamConfig],
        registry: Arc<StreamRegistry>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let passphrases = streams
            .iter()
            .filter(|s| !s.passphrase.is_empty())
            .map(|s| (s.name.clone(), s.passphrase.clone()))
            .collect();
        let links = Arc::new(SrtLinks::default());
        metrics.watch_srt_links(&links);
        Arc::new(SrtIngest {
            config,
            registry,
            metrics,
            passphrases,
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            links,
        })
    }

    /// Serves callers on `socket` until `stop` fires, then rejects newcomers while the open
    /// connections close (briefly), and closes the listener. Connection tasks are spawned on
    /// `tracker`. If srt-tokio's listener task dies, the port is bound again.
    pub async fn serve(
        self: Arc<Self>,
        socket: UdpSocket,
        stop: CancellationToken,
        tracker: TaskTracker,
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
            if !self.accept(&mut incoming, &stop, &tracker).await {
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
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }

    fn spawn_caller(self: &Arc<Self>, request: ConnectionRequest, tracker: &TaskTracker) {
        let remote = request.remote();
        let open = self.connections.fetch_add(1, Ordering::SeqCst);
        if open >= self.config.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%remote, limit = self.config.max_connections, "srt caller rejected: too many connections");
            self.metrics.reject(PROTOCOL, "over_limit");
            self.metrics.connection(PROTOCOL, "over_limit");
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
                this.metrics.connection(PROTOCOL, result);
            }
            .instrument(span),
        );
    }

    /// One caller, from its connection request to its close; returns how it ended, for the
    /// connections metric.
    async fn caller(&self, request: ConnectionRequest, remote: SocketAddr) -> &'static str {
        let handshake_deadline = Instant::now() + self.config.handshake_timeout;
        let key_size = request.key_size();
        let decision = decide(
            request.stream_id().map(|s| s.as_str()),
            key_size.as_raw(),
            |key| self.registry.check_publish(key),
            |name| self.passphrase_for(name),
        );
        let admission = match decision {
            Ok(a) => a,
            Err(refusal) => {
                tracing::warn!(
                    reason = refusal.metric,
                    "srt caller rejected: {}",
                    refusal.message
                );
                self.metrics.reject(PROTOCOL, refusal.metric);
                let _ = request.reject(refusal.reason).await;
                return "rejected";
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
                    // (SRT_REJ_BADSECRET) or it has none (SRT_REJ_UNSECURE).
                    let metric = if encrypted {
                        "bad_passphrase"
                    } else {
                        "handshake_failed"
                    };
                    tracing::warn!(
                        reason = metric,
                        "srt caller rejected by the handshake (wrong or missing passphrase?)"
                    );
                    self.metrics.reject(PROTOCOL, metric);
                    return "rejected";
                }
                Err(_) => {
                    tracing::warn!(phase = "handshake", "srt caller timed out");
                    self.metrics.reject(PROTOCOL, "timeout");
                    return "timeout";
                }
            };
        // The registry has the last word: a publisher may have appeared since the check.
        let handle = match self.registry.publish(&admission.key, PROTOCOL, remote) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(
                    reason = e.reason(),
                    "publish refused after the handshake: {e}"
                );
                close(socket).await;
                return "rejected";
            }
        };
        tracing::info!(encrypted, "publish started");
        let connection = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut publisher = Publisher {
            ingest: self,
            handle,
            connection,
            demuxer: mpegts::Demuxer::new(),
            ts: mpegts::Stats::default(),
            link: SocketStatistics::default(),
            got_frame: false,
            rtt: Duration::ZERO,
            link_at: Instant::now(),
        };
        publisher.start_metrics(&socket);
        let result = publisher.run(socket, handshake_deadline).await;
        self.links.remove(publisher.handle.name(), connection);
        tracing::info!(result, "unpublished");
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

/// Closes a connection, telling the caller, without waiting long for it.
async fn close(mut socket: SrtSocket) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

/// Packets lost on the link. srt-tokio 0.4 does not count detected losses (`rx_loss_data`
/// stays 0), so count what became of them: recovered by retransmission, or given up.
fn lost(s: &SocketStatistics) -> u64 {
    s.rx_loss_data
        .max(s.rx_retransmit_data.saturating_add(s.rx_dropped_data))
}

/// What woke a publisher's loop.
enum Event {
    Bytes(bytes::Bytes),
    Statistics(Box<SocketStatistics>),
    Closed,
    TimedOut,
}

/// One accepted publisher.
struct Publisher<'a> {
    ingest: &'a SrtIngest,
    handle: PublishHandle,
    connection: u64,
    demuxer: mpegts::Demuxer,
    /// Demuxer damage already counted.
    ts: mpegts::Stats,
    /// Link statistics already counted.
    link: SocketStatistics,
    got_frame: bool,
    /// When `link` was received.
    link_at: Instant,
    /// srt-tokio 0.4 keeps its smoothed RTT to itself; the handshake's is what it exposes.
    rtt: Duration,
}

impl Publisher<'_> {
    /// Makes this stream's series exist from the start, at zero, and shows the link.
    fn start_metrics(&mut self, socket: &SrtSocket) {
        let m = &self.ingest.metrics;
        for family in [
            &m.srt_packets_received,
            &m.srt_packets_lost,
            &m.srt_packets_retransmitted,
            &m.srt_packets_dropped,
            &m.ts_cc_errors,
            &m.ts_pes_dropped,
        ] {
            Metrics::add(family, self.handle.name().as_str(), 0);
        }
        self.rtt = socket.settings().rtt;
        self.ingest.links.set(
            self.handle.name(),
            LinkState {
                connection: self.connection,
                rtt: self.rtt,
                receive_bps: 0.0,
            },
        );
    }

    async fn run(&mut self, mut socket: SrtSocket, handshake_deadline: Instant) -> &'static str {
        let config = &self.ingest.config;
        let mut statistics = socket.statistics().clone();
        let result = loop {
            // Until the first frame the handshake deadline applies; then the idle timeout.
            let now = Instant::now();
            let deadline = if self.got_frame {
                now + config.idle_timeout
            } else {
                handshake_deadline.min(now + config.idle_timeout)
            };
            let event = tokio::select! {
                message = tokio::time::timeout_at(deadline, socket.next()) => match message {
                    Ok(Some(Ok((_, bytes)))) => Event::Bytes(bytes),
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "srt receive failed");
                        break "error";
                    }
                    Ok(None) => Event::Closed,
                    Err(_) => Event::TimedOut,
                },
                Some(stats) = statistics.next() => Event::Statistics(Box::new(stats)),
                _ = self.handle.cancelled() => {
                    tracing::info!("publish ended by the server (taken over or shutting down)");
                    break "published";
                }
            };
            match event {
                Event::Bytes(bytes) => {
                    if let Err(why) = self.on_bytes(&bytes) {
                        break why;
                    }
                }
                Event::Statistics(stats) => self.on_statistics(&stats),
                Event::Closed => {
                    // The caller closed (or the link timed out): the last video frame only
                    // ends when the stream does.
                    self.demuxer.flush();
                    let _ = self.drain_demuxer();
                    break if self.got_frame {
                        "published"
                    } else {
                        "closed"
                    };
                }
                Event::TimedOut => {
                    let phase = if self.got_frame { "idle" } else { "handshake" };
                    tracing::warn!(phase, "srt publisher timed out");
                    self.ingest.metrics.reject(PROTOCOL, "timeout");
                    break "timeout";
                }
            }
        };
        close(socket).await;
        result
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        self.demuxer.push(bytes);
        let result = self.drain_demuxer();
        self.count_damage();
        result
    }

    /// Hands every frame the demuxer has to the registry; an unsupported codec ends the
    /// publish.
    fn drain_demuxer(&mut self) -> Result<(), &'static str> {
        while let Some(outcome) = self.demuxer.poll() {
            match outcome {
                Ok(mpegts::Outcome::Frame(frame)) => {
                    self.got_frame = true;
                    self.handle.push(&frame);
                }
                Ok(mpegts::Outcome::Unsupported(what)) => {
                    tracing::warn!("refusing stream: {what}; publish H.264 video and AAC audio");
                    self.ingest.metrics.reject(PROTOCOL, "unsupported_codec");
                    return Err("rejected");
                }
                Ok(mpegts::Outcome::Program {
                    video_pid,
                    audio_pid,
                }) => {
                    tracing::debug!(?video_pid, ?audio_pid, "transport stream program");
                }
                Ok(_) => {}
                // One bad PES is dropped; the demuxer resumes at the next.
                Err(e) => tracing::debug!(error = %e, "dropping malformed PES"),
            }
        }
        Ok(())
    }

    fn count_damage(&mut self) {
        let now = self.demuxer.stats();
        let m = &self.ingest.metrics;
        let name = self.handle.name().as_str();
        Metrics::add(
            &m.ts_cc_errors,
            name,
            now.cc_errors.saturating_sub(self.ts.cc_errors),
        );
        Metrics::add(
            &m.ts_pes_dropped,
            name,
            now.pes_dropped.saturating_sub(self.ts.pes_dropped),
        );
        self.ts = now;
    }

    fn on_statistics(&mut self, now: &SocketStatistics) {
        let m = &self.ingest.metrics;
        let name = self.handle.name();
        let last = &self.link;
        for (family, now, last) in [
            (&m.srt_packets_received, now.rx_data, last.rx_data),
            (&m.srt_packets_lost, lost(now), lost(last)),
            (
                &m.srt_packets_retransmitted,
                now.rx_retransmit_data,
                last.rx_retransmit_data,
            ),
            (
                &m.srt_packets_dropped,
                now.rx_dropped_data,
                last.rx_dropped_data,
            ),
        ] {
            Metrics::add(family, name.as_str(), now.saturating_sub(last));
        }
        // srt-tokio does not always refresh `elapsed_time` in what it sends: use our clock.
        let at = Instant::now();
        let elapsed = at.saturating_duration_since(self.link_at);
        self.link_at = at;
        let receive_bps = if elapsed.is_zero() {
            0.0
        } else {
            now.rx_bytes.saturating_sub(last.rx_bytes) as f64 * 8.0 / elapsed.as_secs_f64()
        };
        self.ingest.links.set(
            name,
            LinkState {
                connection: self.connection,
                rtt: if now.rx_average_rtt.is_zero() {
                    self.rtt
                } else {
                    now.rx_average_rtt
                },
                receive_bps,
            },
        );
        self.link = now.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> StreamName {
        s.parse().unwrap()
    }

    /// The code a libsrt caller reads from `srt_getrejectreason` (the wire value less 1000).
    fn caller_code(reason: RejectReason) -> i32 {
        i32::from(reason) - 1000
    }

    fn known(key: &str) -> Result<StreamName, PublishError> {
        match key {
            "good" => Ok(name("main")),
            "busy" => Err(PublishError::AlreadyLive(name("busy"))),
            "late" => Err(PublishError::Draining),
            _ => Err(PublishError::BadKey),
        }
    }

    fn no_passphrase(_: &StreamName) -> Option<String> {
        None
    }

    #[test]
    fn reject_reasons_are_the_codes_libsrt_documents() {
        for (code, expected) in [
            (reject::BAD_REQUEST, 1400),
            (reject::UNAUTHORIZED, 1401),
            (reject::OVERLOAD, 1402),
            (reject::FORBIDDEN, 1403),
            (reject::NOT_FOUND, 1404),
            (reject::BAD_MODE, 1405),
            (reject::UNACCEPTABLE, 1406),
            // SRT_REJX_CONFLICT is 1409 in libsrt's access_control.h.
            (reject::CONFLICT, 1409),
            (reject::NOTSUP_MEDIA, 1415),
            (reject::INTERNAL_SERVER_ERROR, 1500),
            (reject::UNAVAILABLE, 1503),
            (1499, 1499),
        ] {
            assert_eq!(caller_code(reject_reason(code)), expected, "code {code}");
        }
    }

    /// Every streamid dialect and every refusal, as the handshake sees them.
    #[test]
    fn decisions() {
        type Case = (
            &'static str,
            Option<&'static str>,
            Result<&'static str, (i32, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "access control",
                Some("#!::r=live/good,m=publish"),
                Ok("main"),
            ),
            (
                "access control with user",
                Some("#!::r=live/good,m=publish,u=alice,t=stream"),
                Ok("main"),
            ),
            ("access control, key in s", Some("#!::s=good"), Ok("main")),
            ("mediamtx", Some("publish:live/good"), Ok("main")),
            (
                "mediamtx with credentials",
                Some("publish:live/good:alice:pw"),
                Ok("main"),
            ),
            ("path", Some("live/good"), Ok("main")),
            ("bare key", Some("good"), Ok("main")),
            (
                "url-encoded access control",
                Some("%23%21%3A%3Ar%3Dlive%2Fgood%2Cm%3Dpublish"),
                Ok("main"),
            ),
            (
                "url-encoded mediamtx",
                Some("publish%3Alive%2Fgood"),
                Ok("main"),
            ),
            ("no streamid", None, Err((1401, "missing_key"))),
            ("empty streamid", Some(""), Err((1401, "missing_key"))),
            ("wrong key", Some("live/nope"), Err((1403, "bad_key"))),
            (
                "play mode",
                Some("#!::r=live/good,m=request"),
                Err((1405, "bad_mode")),
            ),
            (
                "mediamtx read",
                Some("read:live/good"),
                Err((1405, "bad_mode")),
            ),
            (
                "unknown mode",
                Some("#!::r=live/good,m=fly"),
                Err((1405, "bad_mode")),
            ),
            (
                "file type",
                Some("#!::r=live/good,t=file"),
                Err((1406, "bad_streamid")),
            ),
            (
                "bad syntax",
                Some("#!:r=live/good"),
                Err((1400, "bad_streamid")),
            ),
            (
                "bad key characters",
                Some("live/go od"),
                Err((1400, "bad_streamid")),
            ),
            (
                "stray percent",
                Some("live/go%zz"),
                Err((1400, "bad_streamid")),
            ),
            (
                "stream busy",
                Some("live/busy"),
                Err((1409, "already_live")),
            ),
            (
                "server draining",
                Some("live/late"),
                Err((1503, "draining")),
            ),
        ];
        for (what, streamid, expected) in cases {
            let got = decide(streamid, 0, known, no_passphrase);
            match (got, expected) {
                (Ok(a), Ok(stream)) => {
                    assert_eq!(a.name.as_str(), stream, "{what}");
                    assert_eq!(a.key, "good", "{what}");
                    assert_eq!(a.passphrase, None, "{what}");
                }
                (Err(r), Err((code, metric))) => {
                    assert_eq!(
                        (caller_code(r.reason), r.metric),
                        (code, metric),
                        "{what}: {r:?}"
                    );
                    assert!(
                        !r.message.contains("good"),
                        "{what}: the key leaks: {}",
                        r.message
                    );
                }
                (got, expected) => panic!("{what}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn passphrases() {
        let secret = |_: &StreamName| Some("0123456789".to_owned());
        // A stream with a passphrase hands it to the handshake, which checks it; whatever the
        // key length the caller announced.
        for len in [0, 16, 24, 32] {
            let a = decide(Some("live/good"), len, known, secret).unwrap();
            assert_eq!(a.passphrase.as_deref(), Some("0123456789"));
        }
        // A caller that encrypts towards a stream without a passphrase is refused as
        // SRT_REJ_UNSECURE (1011 on the wire), like libsrt listeners do.
        let r = decide(Some("live/good"), 16, known, no_passphrase).unwrap_err();
        assert_eq!(i32::from(r.reason), REJ_UNSECURE);
        assert_eq!(r.metric, "unexpected_passphrase");
        // The passphrase never shows in Debug.
        let a = decide(Some("live/good"), 16, known, secret).unwrap();
        assert!(!format!("{a:?}").contains("0123456789"));
        assert!(!format!("{a:?}").contains("good"));
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
        let metrics = Metrics::new();
        let registry =
            StreamRegistry::new(streams.clone(), Duration::from_secs(5), metrics.clone());
        let with_listener = config::Srt {
            passphrase: "listener-passphrase".into(),
            ..config::Srt::default()
        };
        let ingest = SrtIngest::new(with_listener, &streams, registry.clone(), metrics.clone());
        assert_eq!(
            ingest.passphrase_for(&name("own")).as_deref(),
            Some("stream-passphrase")
        );
        assert_eq!(
            ingest.passphrase_for(&name("shared")).as_deref(),
            Some("listener-passphrase")
        );
        let ingest = SrtIngest::new(config::Srt::default(), &streams, registry, metrics);
        assert_eq!(ingest.passphrase_for(&name("shared")), None);
    }

    #[test]
    fn links_are_removed_only_by_their_own_connection() {
        let links = SrtLinks::default();
        let state = |connection| LinkState {
            connection,
            rtt: Duration::from_millis(3),
            receive_bps: 1e6,
        };
        links.set(&name("a"), state(1));
        links.set(&name("a"), state(2)); // taken over
        links.remove(&name("a"), 1);
        assert_eq!(links.snapshot().len(), 1);
        links.remove(&name("a"), 2);
        assert!(links.snapshot().is_empty());
    }
}
