//! The RTMP ingest driver: a thin tokio loop around [`rtmp::ServerSession`].
//!
//! Each connection reads into a fixed buffer, feeds the sans-IO session, writes what it returns
//! and acts on its events: a `publish` is authorised by the [`StreamRegistry`], media goes through
//! the `flv` demuxer into typed frames. Every limit is enforced here or in the session: the
//! connection count, the time to an accepted publish, the idle time, and the write time.
//!
//! RTMPS is the same session over TLS ([`crate::tls`]): the TLS handshake counts against the
//! handshake timeout, then the connection runs exactly as over TCP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtmp::{Event, ServerConfig, ServerSession};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::auth::PublishAttempt;
use crate::config;
use crate::end::EndReason;
use crate::error::PublishError;
use crate::metrics::IngestMetrics;
use crate::outcome::{ConnectionOutcome, Protocol, Rejection};
use crate::registry::{PublishHandle, StreamRegistry};
use crate::tls::ServerTls;

const READ_BUFFER: usize = 64 * 1024;

/// What every RTMP connection shares.
#[derive(Debug)]
pub struct RtmpIngest {
    config: config::Rtmp,
    registry: Arc<StreamRegistry>,
    metrics: Arc<IngestMetrics>,
    connections: AtomicUsize,
    /// RTMPS: the certificate every connection shakes hands with first.
    tls: Option<Arc<ServerTls>>,
    protocol: Protocol,
}

impl RtmpIngest {
    /// Ingest with these limits, publishing into `registry`.
    pub fn new(
        config: config::Rtmp,
        registry: Arc<StreamRegistry>,
        metrics: Arc<IngestMetrics>,
    ) -> Arc<Self> {
        Self::build(config, None, registry, metrics)
    }

    /// RTMPS ingest: every connection is TLS with `tls`'s certificate, then RTMP as usual.
    pub fn with_tls(
        config: config::Rtmp,
        tls: Arc<ServerTls>,
        registry: Arc<StreamRegistry>,
        metrics: Arc<IngestMetrics>,
    ) -> Arc<Self> {
        Self::build(config, Some(tls), registry, metrics)
    }

    fn build(
        config: config::Rtmp,
        tls: Option<Arc<ServerTls>>,
        registry: Arc<StreamRegistry>,
        metrics: Arc<IngestMetrics>,
    ) -> Arc<Self> {
        let protocol = match tls {
            Some(_) => Protocol::Rtmps,
            None => Protocol::Rtmp,
        };
        Arc::new(RtmpIngest {
            config,
            registry,
            metrics,
            connections: AtomicUsize::new(0),
            tls,
            protocol,
        })
    }

    /// Accepts connections until `stop` fires. Connection tasks are spawned on `tracker` so the
    /// caller can wait for them to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let (stream, remote) = tokio::select! {
                _ = stop.cancelled() => break,
                res = listener.accept() => match res {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, protocol = self.protocol.label(), "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let open = self.connections.fetch_add(1, Ordering::SeqCst);
            if open >= self.config.max_connections {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(%remote, limit = self.config.max_connections, protocol = self.protocol.label(), "connection refused: too many connections");
                self.metrics.reject(self.protocol, Rejection::OverLimit);
                self.metrics
                    .connection(self.protocol, ConnectionOutcome::OverLimit);
                drop(stream);
                continue;
            }
            let this = self.clone();
            let stop = stop.clone();
            let span = match self.protocol {
                Protocol::Rtmps => {
                    tracing::info_span!("rtmps", %remote, stream = tracing::field::Empty)
                }
                _ => tracing::info_span!("rtmp", %remote, stream = tracing::field::Empty),
            };
            tracker.spawn(
                async move {
                    let result = this.accepted(stream, remote, stop).await;
                    this.connections.fetch_sub(1, Ordering::SeqCst);
                    this.metrics.connection(this.protocol, result);
                }
                .instrument(span),
            );
        }
        tracing::debug!(protocol = self.protocol.label(), "listener closed");
    }

    /// Runs one accepted connection (after its TLS handshake, for RTMPS).
    async fn accepted(
        &self,
        socket: TcpStream,
        remote: SocketAddr,
        stop: CancellationToken,
    ) -> ConnectionOutcome {
        let _ = socket.set_nodelay(true);
        // Until a publish is accepted, the whole exchange must fit in the handshake timeout,
        // the TLS handshake included.
        let handshake_deadline = Instant::now() + self.config.handshake_timeout;
        let Some(tls) = &self.tls else {
            return self
                .connection(socket, remote, stop, handshake_deadline)
                .await;
        };
        let handshake = tls.acceptor().accept(socket);
        let socket = tokio::select! {
            res = tokio::time::timeout_at(handshake_deadline, handshake) => match res {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rtmps TLS handshake failed");
                    self.metrics.reject(self.protocol, Rejection::TlsHandshake);
                    return ConnectionOutcome::Error;
                }
                Err(_) => {
                    tracing::warn!(phase = "tls", "rtmps connection timed out");
                    self.metrics.reject(self.protocol, Rejection::Timeout);
                    return ConnectionOutcome::Timeout;
                }
            },
            _ = stop.cancelled() => return ConnectionOutcome::Closed,
        };
        self.connection(socket, remote, stop, handshake_deadline)
            .await
    }

    /// Runs one connection's RTMP session; returns how it ended, for the connections metric.
    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut socket: S,
        remote: SocketAddr,
        stop: CancellationToken,
        handshake_deadline: Instant,
    ) -> ConnectionOutcome {
        let session_config = ServerConfig {
            max_chunk_size: self.config.max_chunk_size,
            max_message_size: self.config.max_message_size,
            ..ServerConfig::default()
        };
        let mut demuxer = flv::Demuxer::new();
        demuxer.serve_tracks(self.config.multitrack_passthrough);
        let mut conn = Connection {
            session: ServerSession::new(session_config, rand::random()),
            demuxer,
            publish: None,
            result: ConnectionOutcome::Closed,
            attempts: 0,
        };
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let deadline = match conn.publish {
                Some(_) => Instant::now() + self.config.idle_timeout,
                None => handshake_deadline.min(Instant::now() + self.config.idle_timeout),
            };
            let cancelled = async {
                match &conn.publish {
                    Some(p) => p.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            let n = tokio::select! {
                res = tokio::time::timeout_at(deadline, socket.read(&mut buf)) => match res {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "rtmp read failed");
                        break;
                    }
                    Err(_) => {
                        let phase = if conn.publish.is_some() { "idle" } else { "handshake" };
                        tracing::warn!(phase, "rtmp connection timed out");
                        self.metrics.reject(self.protocol, Rejection::Timeout);
                        conn.result = ConnectionOutcome::Timeout;
                        break;
                    }
                },
                _ = cancelled => {
                    let reason = conn.publish.as_ref().and_then(|p| p.end_reason());
                    let (code, text) = reason.as_ref().map_or(
                        ("NetStream.Publish.Idle", "Stream ended by the server.".to_owned()),
                        EndReason::rtmp_status,
                    );
                    match &reason {
                        Some(r @ (EndReason::Failed(_) | EndReason::Refused(_))) => {
                            tracing::warn!(reason = %r, "publish ended by the server");
                        }
                        Some(r) => tracing::info!(reason = %r, "publish ended by the server"),
                        None => tracing::info!("publish ended by the server"),
                    }
                    conn.session.send_status_error(code, &text);
                    let _ = self.flush(&mut socket, &mut conn.session).await;
                    break;
                }
                _ = stop.cancelled(), if conn.publish.is_none() => break,
            };
            if let Err(e) = conn.session.handle_input(&buf[..n]) {
                tracing::warn!(error = %e, "rtmp protocol error; closing connection");
                self.metrics.reject(self.protocol, Rejection::ProtocolError);
                conn.result = ConnectionOutcome::Error;
                let _ = self.flush(&mut socket, &mut conn.session).await;
                break;
            }
            while let Some(event) = conn.session.poll_event() {
                self.on_event(&mut conn, event, remote).await;
            }
            if self.flush(&mut socket, &mut conn.session).await.is_err() {
                break;
            }
            if conn.session.is_closed() {
                break;
            }
        }
        if conn.publish.take().is_some() {
            tracing::info!("unpublished");
        }
        // A close the peer sees as one (TLS close_notify, TCP FIN) after the last status, not a
        // reset that could discard it.
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
        conn.result
    }

    async fn on_event(&self, conn: &mut Connection, event: Event, remote: SocketAddr) {
        match event {
            Event::Connect {
                app,
                flash_ver,
                fourccs,
                ..
            } => {
                tracing::debug!(%app, flash_ver = flash_ver.as_deref().unwrap_or(""), fourccs = ?fourccs, "rtmp connect");
            }
            Event::Publish {
                name, query, app, ..
            } => {
                if conn.publish.is_some() {
                    return;
                }
                conn.attempts += 1;
                if conn.attempts > MAX_PUBLISH_ATTEMPTS {
                    tracing::warn!(
                        attempts = conn.attempts,
                        "rtmp connection closed: too many publish attempts"
                    );
                    self.metrics.reject(self.protocol, Rejection::ProtocolError);
                    conn.session
                        .reject_publish("NetStream.Publish.Failed", "Too many publish attempts.");
                    // Refusing closes the session.
                    conn.result = ConnectionOutcome::Rejected;
                    return;
                }
                let attempt = PublishAttempt::rtmp(self.protocol, &name, &query, &app, remote);
                // A key that names no configured stream is asked of the webhook (bounded by
                // auth.webhook_timeout); in cluster mode the stream is claimed cluster-wide too
                // (a round trip to the store, bounded by its command timeout).
                match self.registry.publish_attempt(&attempt).await {
                    // Refused by the transcoder at once (e.g. promised hardware missing): answer
                    // with the reason instead of accepting and then dropping the publish.
                    Ok(handle) if handle.is_cancelled() => {
                        let reason = handle.end_reason().map_or_else(
                            || "Stream refused by the server.".to_owned(),
                            |r| r.rtmp_status().1,
                        );
                        tracing::Span::current().record("stream", handle.name().as_str());
                        tracing::warn!(%reason, "publish refused");
                        conn.session
                            .reject_publish("NetStream.Publish.Failed", &reason);
                        conn.result = ConnectionOutcome::Rejected;
                    }
                    Ok(handle) => {
                        tracing::Span::current().record("stream", handle.name().as_str());
                        tracing::info!(%app, "publish started");
                        conn.session.accept_publish();
                        conn.publish = Some(handle);
                        conn.result = ConnectionOutcome::Published;
                    }
                    Err(e) => {
                        // The key is a secret: the log says why, never what was sent.
                        tracing::warn!(reason = e.rejection().label(), "publish refused: {e}");
                        let code = match e {
                            PublishError::BadKey
                            | PublishError::Denied(_)
                            | PublishError::AlreadyLive(_)
                            | PublishError::LiveElsewhere(_) => "NetStream.Publish.BadName",
                            _ => "NetStream.Publish.Failed",
                        };
                        conn.session.reject_publish(code, &e.to_string());
                        conn.result = ConnectionOutcome::Rejected;
                    }
                }
            }
            Event::Metadata { values, .. } => {
                let pairs = values
                    .as_properties()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| v.as_number().map(|n| (k.as_str(), n)));
                conn.demuxer
                    .set_metadata(flv::MetadataHints::from_pairs(pairs));
            }
            Event::Video { timestamp, data } => {
                let outcome = conn.demuxer.push_video(timestamp, data);
                self.on_media(conn, outcome);
            }
            Event::Audio { timestamp, data } => {
                let outcome = conn.demuxer.push_audio(timestamp, data);
                self.on_media(conn, outcome);
            }
            Event::Unpublish { .. } if conn.publish.take().is_some() => {
                tracing::info!("unpublished by the client");
            }
            _ => {}
        }
    }

    fn on_media(&self, conn: &mut Connection, outcome: Result<flv::Outcome, flv::Error>) {
        let Some(handle) = &mut conn.publish else {
            return;
        };
        match outcome {
            Ok(flv::Outcome::Frame(frame)) => handle.push(frame),
            Ok(flv::Outcome::Frames(frames)) => frames.into_iter().for_each(|f| handle.push(f)),
            Ok(flv::Outcome::Unsupported(what)) => {
                tracing::warn!("refusing stream: {what} is not supported yet; publish H.264 or HEVC video with AAC or MP3 audio");
                self.metrics
                    .reject(self.protocol, Rejection::UnsupportedCodec);
                conn.session.reject_publish(
                    "NetStream.Publish.Failed",
                    &format!(
                        "Unsupported codec: {what}. Ferrocast accepts H.264 or HEVC video with AAC or MP3 audio."
                    ),
                );
                conn.publish = None;
                conn.result = ConnectionOutcome::Rejected;
            }
            Ok(_) => {}
            // One bad tag is dropped; the demuxer keeps its state for the next one.
            Err(e) => tracing::debug!(error = %e, "dropping malformed media tag"),
        }
    }

    /// Writes everything the session has queued and flushes it, bounded by the idle timeout.
    async fn flush<S: AsyncWrite + Unpin>(
        &self,
        socket: &mut S,
        session: &mut ServerSession,
    ) -> std::io::Result<()> {
        let mut wrote = false;
        while let Some(bytes) = session.poll_transmit() {
            match tokio::time::timeout(self.config.idle_timeout, socket.write_all(&bytes)).await {
                Ok(res) => res?,
                Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
            }
            wrote = true;
        }
        // TLS holds records back until flushed; over TCP this does nothing.
        if wrote {
            match tokio::time::timeout(self.config.idle_timeout, socket.flush()).await {
                Ok(res) => res?,
                Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
        Ok(())
    }
}

struct Connection {
    session: ServerSession,
    demuxer: flv::Demuxer,
    publish: Option<PublishHandle>,
    result: ConnectionOutcome,
    /// Publish attempts on this connection (each may ask the webhook).
    attempts: u32,
}

/// The most publish attempts one connection may make: a client that retries after a refusal
/// (or unpublishes and publishes again) is served, one that loops is closed.
const MAX_PUBLISH_ATTEMPTS: u32 = 4;
