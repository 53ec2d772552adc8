//! One accepted SRT publisher: its payload through the MPEG-TS demuxer into the registry, its
//! link statistics into the metrics.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use srt_tokio::{SocketStatistics, SrtSocket};
use tokio::time::Instant;

use crate::config::Srt;
use crate::end::EndReason;
use crate::metrics::IngestMetrics;
use crate::outcome::{ConnectionOutcome, Protocol, Rejection};
use crate::registry::PublishHandle;
use crate::srt_listener::links::{LinkState, SrtLinks};

const PROTOCOL: Protocol = Protocol::Srt;

/// Closes a connection, telling the caller, without waiting long for it.
pub(crate) async fn close(mut socket: SrtSocket) {
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
pub(crate) struct Publisher<'a> {
    config: &'a Srt,
    metrics: &'a IngestMetrics,
    links: &'a SrtLinks,
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

impl<'a> Publisher<'a> {
    /// The publisher of `handle` on connection number `connection`.
    pub(crate) fn new(
        config: &'a Srt,
        metrics: &'a IngestMetrics,
        links: &'a SrtLinks,
        handle: PublishHandle,
        connection: u64,
    ) -> Publisher<'a> {
        Publisher {
            config,
            metrics,
            links,
            handle,
            connection,
            demuxer: mpegts::Demuxer::new(),
            ts: mpegts::Stats::default(),
            link: SocketStatistics::default(),
            got_frame: false,
            rtt: Duration::ZERO,
            link_at: Instant::now(),
        }
    }

    /// The publish.
    pub(crate) fn handle(&self) -> &PublishHandle {
        &self.handle
    }

    /// Makes this stream's series exist from the start, at zero, and shows the link.
    pub(crate) fn start_metrics(&mut self, socket: &SrtSocket) {
        let m = &self.metrics;
        for family in [
            &m.srt_packets_received,
            &m.srt_packets_lost,
            &m.srt_packets_retransmitted,
            &m.srt_packets_dropped,
            &m.ts_cc_errors,
            &m.ts_pes_dropped,
        ] {
            telemetry::add(family, self.handle.name().as_str(), 0);
        }
        self.rtt = socket.settings().rtt;
        self.links.set(
            self.handle.name(),
            LinkState {
                connection: self.connection,
                rtt: self.rtt,
                receive_bps: 0.0,
            },
        );
    }

    pub(crate) async fn run(
        &mut self,
        mut socket: SrtSocket,
        handshake_deadline: Instant,
    ) -> ConnectionOutcome {
        let config = self.config;
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
                        break ConnectionOutcome::Error;
                    }
                    Ok(None) => Event::Closed,
                    Err(_) => Event::TimedOut,
                },
                Some(stats) = statistics.next() => Event::Statistics(Box::new(stats)),
                _ = self.handle.cancelled() => {
                    match self.handle.end_reason() {
                        Some(r @ (EndReason::Failed(_) | EndReason::Refused(_))) => {
                            tracing::warn!(reason = %r, "publish ended by the server");
                        }
                        Some(r) => tracing::info!(reason = %r, "publish ended by the server"),
                        None => tracing::info!("publish ended by the server"),
                    }
                    break ConnectionOutcome::Published;
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
                        ConnectionOutcome::Published
                    } else {
                        ConnectionOutcome::Closed
                    };
                }
                Event::TimedOut => {
                    let phase = if self.got_frame { "idle" } else { "handshake" };
                    tracing::warn!(phase, "srt publisher timed out");
                    self.metrics.reject(PROTOCOL, Rejection::Timeout);
                    break ConnectionOutcome::Timeout;
                }
            }
        };
        close(socket).await;
        result
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnectionOutcome> {
        self.demuxer.push(bytes);
        let result = self.drain_demuxer();
        self.count_damage();
        result
    }

    /// Hands every frame the demuxer has to the registry; an unsupported codec ends the
    /// publish.
    fn drain_demuxer(&mut self) -> Result<(), ConnectionOutcome> {
        while let Some(outcome) = self.demuxer.poll() {
            match outcome {
                Ok(mpegts::Outcome::Frame(frame)) => {
                    self.got_frame = true;
                    self.handle.push(frame);
                }
                Ok(mpegts::Outcome::Unsupported(what)) => {
                    tracing::warn!("refusing stream: {what}; publish H.264 video and AAC audio");
                    self.metrics.reject(PROTOCOL, Rejection::UnsupportedCodec);
                    return Err(ConnectionOutcome::Rejected);
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
        let m = &self.metrics;
        let name = self.handle.name().as_str();
        telemetry::add(
            &m.ts_cc_errors,
            name,
            now.cc_errors.saturating_sub(self.ts.cc_errors),
        );
        telemetry::add(
            &m.ts_pes_dropped,
            name,
            now.pes_dropped.saturating_sub(self.ts.pes_dropped),
        );
        self.ts = now;
    }

    fn on_statistics(&mut self, now: &SocketStatistics) {
        let m = &self.metrics;
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
            telemetry::add(family, name.as_str(), now.saturating_sub(last));
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
        self.links.set(
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
