//! The metric catalogue: every name is defined once, here.
//!
//! Counters and histograms are recorded where the event happens (the `Metrics` fields). Gauges
//! (live publishers, ingest bitrate, process CPU and memory) are read from snapshots at scrape time
//! by collectors, so they can never drift from the state they describe.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::registry::StreamRegistry;
use crate::transcode::Outputs;

/// Metric names (without the `_total` suffix that counters get on encoding).
pub mod names {
    /// Info: version and build details.
    pub const BUILD: &str = "ferrocast_build";
    /// Counter: HTTP requests by route template, method and status.
    pub const HTTP_REQUESTS: &str = "ferrocast_http_requests";
    /// Histogram: HTTP request duration in seconds by route template and method.
    pub const HTTP_REQUEST_DURATION: &str = "ferrocast_http_request_duration";
    /// Counter: ingest connections by protocol and result.
    pub const INGEST_CONNECTIONS: &str = "ferrocast_ingest_connections";
    /// Counter: refused ingest attempts by protocol and reason.
    pub const INGEST_REJECTIONS: &str = "ferrocast_ingest_rejections";
    /// Counter: media payload bytes received by stream and track kind.
    pub const INGEST_BYTES: &str = "ferrocast_ingest_bytes";
    /// Counter: media frames received by stream and track kind.
    pub const INGEST_FRAMES: &str = "ferrocast_ingest_frames";
    /// Gauge: live publishers by protocol.
    pub const ACTIVE_PUBLISHERS: &str = "ferrocast_active_publishers";
    /// Gauge: ingest bitrate by stream, bits per second over the last second or so.
    pub const INGEST_BITRATE: &str = "ferrocast_ingest_bitrate_bits_per_second";
    /// Gauge: 1 for each configured stream, with `live` 0 or 1.
    pub const STREAM_LIVE: &str = "ferrocast_stream_live";
    /// Counter: pipeline failures by stream.
    pub const PIPELINE_ERRORS: &str = "ferrocast_pipeline_errors";
    /// Counter: video frames out of each rung's encoder (or repackaged, for passthrough).
    pub const PIPELINE_FRAMES_ENCODED: &str = "ferrocast_pipeline_frames_encoded";
    /// Counter: frames dropped at the pipeline input because it fell behind, by stream and kind.
    pub const PIPELINE_FRAMES_DROPPED: &str = "ferrocast_pipeline_frames_dropped";
    /// Gauge: media seconds produced per wall second over the last 5 s, by stream and rung.
    pub const PIPELINE_REALTIME_FACTOR: &str = "ferrocast_pipeline_realtime_factor";
    /// Gauge: 1 when some element of `kind` (nvidia, vaapi, software) is usable for `stage`
    /// (decode, scale, encode), from the start-up probe.
    pub const ACCELERATOR_AVAILABLE: &str = "ferrocast_accelerator_available";
    /// Gauge: hardware encoder sessions in use (one per hardware-encoded rung).
    pub const ENCODER_SESSIONS: &str = "ferrocast_encoder_sessions";
    /// Gauge: the hardware encoder session limit (`nvidia.max_encode_sessions`; 0 = none).
    pub const ENCODER_SESSIONS_LIMIT: &str = "ferrocast_encoder_sessions_limit";
    /// Gauge: 1 per stream, rung and stage for the backend doing the work now.
    pub const STREAM_BACKEND: &str = "ferrocast_stream_backend";
    /// Counter: falls back to software by reason (`unavailable`, `session_limit`,
    /// `runtime_error`).
    pub const ACCELERATOR_FALLBACKS: &str = "ferrocast_accelerator_fallbacks";
    /// Counter: publishes refused or streams ended for want of promised hardware, by reason.
    pub const ACCELERATOR_REFUSALS: &str = "ferrocast_accelerator_refusals";
    /// Counter: HLS segments completed, by stream and rung.
    pub const HLS_SEGMENTS: &str = "ferrocast_hls_segments";
    /// Counter: bytes packaged (init, segments), by stream and rung.
    pub const HLS_BYTES: &str = "ferrocast_hls_bytes";
    /// Histogram: completed segment durations, by stream and rung.
    pub const HLS_SEGMENT_DURATION: &str = "ferrocast_hls_segment_duration";
    /// Counter: SRT data packets received (retransmissions included), by stream.
    pub const SRT_PACKETS_RECEIVED: &str = "ferrocast_srt_packets_received";
    /// Counter: SRT data packets lost on the link (recovered by retransmission or given up), by
    /// stream.
    pub const SRT_PACKETS_LOST: &str = "ferrocast_srt_packets_lost";
    /// Counter: retransmitted SRT data packets received, by stream.
    pub const SRT_PACKETS_RETRANSMITTED: &str = "ferrocast_srt_packets_retransmitted";
    /// Counter: SRT data packets dropped by the receiver (too late to play, or never recovered),
    /// by stream.
    pub const SRT_PACKETS_DROPPED: &str = "ferrocast_srt_packets_dropped";
    /// Gauge: round-trip time of each live SRT publisher's link, by stream (the handshake's while
    /// srt-tokio does not report its smoothed RTT).
    pub const SRT_RTT: &str = "ferrocast_srt_rtt_seconds";
    /// Gauge: bits per second received on each live SRT publisher's link (SRT payload), by
    /// stream.
    pub const SRT_RECEIVE_BITRATE: &str = "ferrocast_srt_receive_bitrate_bits_per_second";
    /// Counter: MPEG-TS continuity-counter errors (lost transport packets), by stream.
    pub const INGEST_TS_CC_ERRORS: &str = "ferrocast_ingest_ts_continuity_errors";
    /// Counter: MPEG-TS PES packets (frames) dropped as damaged, by stream.
    pub const INGEST_TS_PES_DROPPED: &str = "ferrocast_ingest_ts_pes_dropped";
    /// Counter: frames accepted into the pipeline input, by stream and kind.
    pub const PIPELINE_FRAMES_IN: &str = "ferrocast_pipeline_frames_in";
    /// Gauge: frames waiting in the pipeline's input queue, by stream and kind.
    pub const PIPELINE_QUEUE_DEPTH: &str = "ferrocast_pipeline_queue_depth";
    /// Counter: pipelines rebuilt mid-publish, by stream and reason (`config_change`,
    /// `hardware_fallback`).
    pub const PIPELINE_RESTARTS: &str = "ferrocast_pipeline_restarts";
    /// Counter: LL-HLS parts (CMAF chunks) listed, by stream and rung.
    pub const HLS_PARTS: &str = "ferrocast_hls_parts";
    /// Histogram: per video frame, seconds from its arrival to the listing of the part (or
    /// segment, without LL-HLS) that holds it, by stream and rung.
    pub const INGEST_TO_PUBLISH_LATENCY: &str = "ferrocast_ingest_to_publish_latency";
    /// Counter: HTTP response body bytes by route template.
    pub const HTTP_RESPONSE_BYTES: &str = "ferrocast_http_response_bytes";
    /// Gauge: requests held waiting for media now, by kind (`playlist`, `part`).
    pub const HTTP_HELD_REQUESTS: &str = "ferrocast_http_held_requests";
    /// Gauge: distinct playback sessions seen in the last 30 s, by stream.
    pub const STREAM_VIEWERS: &str = "ferrocast_stream_viewers";
    /// Counter: process CPU time.
    pub const PROCESS_CPU: &str = "process_cpu_seconds";
    /// Gauge: resident memory.
    pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
    /// Gauge: open file descriptors.
    pub const PROCESS_FDS: &str = "process_open_fds";
    /// Gauge: start time, seconds since the epoch.
    pub const PROCESS_START: &str = "process_start_time_seconds";
}

/// Labels of HTTP request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Matched route template (`/live/{name}/index.m3u8`), never the raw path.
    pub route: &'static str,
    /// Request method (a fixed set; anything else is `OTHER`).
    pub method: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Labels of HTTP duration histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Matched route template.
    pub route: &'static str,
    /// Request method.
    pub method: &'static str,
}

/// Labels of ingest connection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `rtmp` or `srt`.
    pub protocol: &'static str,
    /// How the connection ended: `published`, `closed`, `rejected`, `error`, `timeout`,
    /// `over_limit`.
    pub result: &'static str,
}

/// Labels of ingest rejection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// `rtmp` or `srt`.
    pub protocol: &'static str,
    /// Why: `bad_key`, `already_live`, `draining`, `unsupported_codec`, `protocol_error`, `over_limit`, ...
    pub reason: &'static str,
}

/// Labels of per-track ingest counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrackLabels {
    /// Public stream name (bounded: names come from configuration).
    pub stream: String,
    /// `video` or `audio`.
    pub kind: &'static str,
}

/// Labels of per-rung metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RungLabels {
    /// Public stream name.
    pub stream: String,
    /// Rung name.
    pub rung: String,
}

/// All event-recorded metrics, plus the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// HTTP requests.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP durations.
    pub http_duration: Family<RouteLabels, Histogram>,
    /// Ingest connections by result.
    pub ingest_connections: Family<ConnectionLabels, Counter>,
    /// Ingest rejections by reason.
    pub ingest_rejections: Family<RejectionLabels, Counter>,
    /// Ingest bytes by stream and kind.
    pub ingest_bytes: Family<TrackLabels, Counter>,
    /// Ingest frames by stream and kind.
    pub ingest_frames: Family<TrackLabels, Counter>,
    /// Pipeline failures by stream.
    pub pipeline_errors: Family<StreamLabel, Counter>,
    /// SRT data packets received, by stream.
    pub srt_packets_received: Family<StreamLabel, Counter>,
    /// SRT data packets lost, by stream.
    pub srt_packets_lost: Family<StreamLabel, Counter>,
    /// SRT data packets retransmitted, by stream.
    pub srt_packets_retransmitted: Family<StreamLabel, Counter>,
    /// SRT data packets dropped, by stream.
    pub srt_packets_dropped: Family<StreamLabel, Counter>,
    /// MPEG-TS continuity errors, by stream.
    pub ts_cc_errors: Family<StreamLabel, Counter>,
    /// MPEG-TS PES packets dropped, by stream.
    pub ts_pes_dropped: Family<StreamLabel, Counter>,
    /// Segment durations by stream and rung.
    pub segment_durations: Family<RungLabels, Histogram>,
    /// Completed segments by stream and rung (counted as they complete, so they survive
    /// republishing).
    pub hls_segments: Family<RungLabels, Counter>,
    /// Packaged bytes by stream and rung.
    pub hls_bytes: Family<RungLabels, Counter>,
    /// Parts (chunks) listed by stream and rung.
    pub hls_parts: Family<RungLabels, Counter>,
    /// Ingest-to-publish latency per video frame, by stream and rung.
    pub publish_latency: Family<RungLabels, Histogram>,
    /// Pipelines rebuilt mid-publish, by stream and reason.
    pub pipeline_restarts: Family<RestartLabels, Counter>,
    /// HTTP response body bytes by route.
    pub http_response_bytes: Family<RouteLabel, Counter>,
    /// Requests held waiting for media now.
    pub held: Arc<HeldRequests>,
    /// Playback sessions seen per stream.
    pub viewers: Arc<Viewers>,
}

/// Labels of pipeline restart counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabels {
    /// Public stream name.
    pub stream: String,
    /// `config_change` or `hardware_fallback`.
    pub reason: &'static str,
}

/// Why a pipeline was rebuilt mid-publish.
pub const RESTART_REASONS: [&str; 2] = ["config_change", "hardware_fallback"];

/// Labels of HTTP byte counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// Matched route template.
    pub route: &'static str,
}

/// What a held request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldKind {
    /// A playlist: a blocking reload, or a first playlist waiting for the ladder.
    Playlist,
    /// A part or segment not produced yet.
    Part,
}

impl HeldKind {
    fn as_str(self) -> &'static str {
        match self {
            HeldKind::Playlist => "playlist",
            HeldKind::Part => "part",
        }
    }
}

/// Counts of requests held waiting for media, read at scrape time.
#[derive(Debug, Default)]
pub struct HeldRequests {
    playlist: std::sync::atomic::AtomicI64,
    part: std::sync::atomic::AtomicI64,
}

impl HeldRequests {
    fn counter(&self, kind: HeldKind) -> &std::sync::atomic::AtomicI64 {
        match kind {
            HeldKind::Playlist => &self.playlist,
            HeldKind::Part => &self.part,
        }
    }

    /// Counts one held request until the guard drops.
    pub fn hold(self: &Arc<Self>, kind: HeldKind) -> HeldGuard {
        self.counter(kind)
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeldGuard {
            held: self.clone(),
            kind,
        }
    }

    /// Requests of `kind` held now.
    pub fn get(&self, kind: HeldKind) -> i64 {
        self.counter(kind)
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One held request; dropping it (answered, timed out or cancelled) uncounts it.
#[derive(Debug)]
pub struct HeldGuard {
    held: Arc<HeldRequests>,
    kind: HeldKind,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.held
            .counter(self.kind)
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Distinct playback sessions per stream over the last [`Viewers::WINDOW`].
///
/// Sessions are opaque identifiers chosen by the player (the `session` query parameter or the
/// `ferrocast_session` cookie). Only a keyed hash of each is kept, with the time it was last
/// seen; no address is stored. Only configured streams are tracked ([`Viewers::track`]), each
/// behind its own lock, with at most [`Viewers::MAX_SESSIONS`] sessions.
#[derive(Debug, Default)]
pub struct Viewers {
    hasher: std::collections::hash_map::RandomState,
    /// Filled once at start-up; read-only afterwards.
    streams: std::sync::RwLock<std::collections::HashMap<String, Arc<Mutex<Sessions>>>>,
}

/// One stream's sessions.
#[derive(Debug, Default)]
struct Sessions {
    last_seen: std::collections::HashMap<u64, std::time::Instant>,
    /// When expired sessions were last dropped to make room.
    last_purge: Option<std::time::Instant>,
}

impl Sessions {
    fn purge(&mut self, now: std::time::Instant) {
        self.last_seen
            .retain(|_, t| now.saturating_duration_since(*t) < Viewers::WINDOW);
        self.last_purge = Some(now);
    }
}

impl Viewers {
    /// How long a session counts after its last request.
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(30);
    /// Sessions remembered per stream; beyond it new ones are not counted until old ones expire.
    pub const MAX_SESSIONS: usize = 100_000;
    /// A full stream drops its expired sessions at most this often (a flood of new identifiers
    /// must not turn every request into a scan).
    const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// A usable session identifier: 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn valid(session: &str) -> bool {
        (1..=64).contains(&session.len())
            && session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Tracks these (configured) streams; requests for others are not counted.
    pub fn track<'a>(&self, streams: impl IntoIterator<Item = &'a str>) {
        let mut map = self
            .streams
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in streams {
            map.entry(s.to_owned()).or_default();
        }
    }

    fn sessions(&self, stream: &str) -> Option<Arc<Mutex<Sessions>>> {
        self.streams
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// Notes a request of `session` for `stream` at `now`. Invalid identifiers and streams not
    /// tracked are ignored.
    pub fn seen(&self, stream: &str, session: &str, now: std::time::Instant) {
        use std::hash::BuildHasher as _;
        if !Self::valid(session) {
            return;
        }
        let Some(sessions) = self.sessions(stream) else {
            return;
        };
        let key = self.hasher.hash_one(session);
        let mut s = sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.last_seen.len() >= Self::MAX_SESSIONS && !s.last_seen.contains_key(&key) {
            let due = s
                .last_purge
                .is_none_or(|t| now.saturating_duration_since(t) >= Self::PURGE_EVERY);
            if due {
                s.purge(now);
            }
            if s.last_seen.len() >= Self::MAX_SESSIONS {
                return;
            }
        }
        s.last_seen.insert(key, now);
    }

    /// Sessions of `stream` seen within the window before `now`; forgets older ones.
    pub fn count(&self, stream: &str, now: std::time::Instant) -> usize {
        let Some(sessions) = self.sessions(stream) else {
            return 0;
        };
        let mut s = sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.purge(now);
        s.last_seen.len()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        registry.register(
            names::BUILD,
            "Ferrocast build information",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("rustc_edition", "2021"),
            ]),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            names::HTTP_REQUESTS,
            "HTTP requests by matched route template, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            names::HTTP_REQUEST_DURATION,
            "HTTP request duration until the response head is ready",
            Unit::Seconds,
            http_duration.clone(),
        );
        let ingest_connections = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            names::INGEST_CONNECTIONS,
            "Ingest connections by protocol and how they ended",
            ingest_connections.clone(),
        );
        let ingest_rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            names::INGEST_REJECTIONS,
            "Refused ingest attempts by protocol and reason",
            ingest_rejections.clone(),
        );
        let ingest_bytes = Family::<TrackLabels, Counter>::default();
        registry.register(
            names::INGEST_BYTES,
            "Media payload bytes received, by stream and track kind",
            ingest_bytes.clone(),
        );
        let ingest_frames = Family::<TrackLabels, Counter>::default();
        registry.register(
            names::INGEST_FRAMES,
            "Media frames received, by stream and track kind",
            ingest_frames.clone(),
        );
        let pipeline_errors = Family::<StreamLabel, Counter>::default();
        registry.register(
            names::PIPELINE_ERRORS,
            "Pipeline failures (the stream was ended), by stream",
            pipeline_errors.clone(),
        );
        let segment_durations = Family::<RungLabels, Histogram>::new_with_constructor(
            (|| Histogram::new([0.5, 1.0, 1.5, 1.9, 2.1, 2.5, 3.0, 4.0, 6.0, 10.0]))
                as fn() -> Histogram,
        );
        registry.register_with_unit(
            names::HLS_SEGMENT_DURATION,
            "Durations of completed HLS segments, by stream and rung",
            Unit::Seconds,
            segment_durations.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<StreamLabel, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let srt_packets_received = counter(
            &mut registry,
            names::SRT_PACKETS_RECEIVED,
            "SRT data packets received (retransmissions included), by stream",
        );
        let srt_packets_lost = counter(
            &mut registry,
            names::SRT_PACKETS_LOST,
            "SRT data packets lost on the link (recovered by retransmission or given up), by stream",
        );
        let srt_packets_retransmitted = counter(
            &mut registry,
            names::SRT_PACKETS_RETRANSMITTED,
            "Retransmitted SRT data packets received, by stream",
        );
        let srt_packets_dropped = counter(
            &mut registry,
            names::SRT_PACKETS_DROPPED,
            "SRT data packets dropped by the receiver (too late or never recovered), by stream",
        );
        let ts_cc_errors = counter(
            &mut registry,
            names::INGEST_TS_CC_ERRORS,
            "MPEG-TS continuity-counter errors (lost transport packets), by stream",
        );
        let ts_pes_dropped = counter(
            &mut registry,
            names::INGEST_TS_PES_DROPPED,
            "MPEG-TS PES packets dropped as damaged, by stream",
        );
        let hls_segments = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_SEGMENTS,
            "HLS segments completed",
            hls_segments.clone(),
        );
        let hls_bytes = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_BYTES,
            "Bytes packaged into HLS (init segments, segments)",
            hls_bytes.clone(),
        );
        let hls_parts = Family::<RungLabels, Counter>::default();
        registry.register(
            names::HLS_PARTS,
            "LL-HLS parts (CMAF chunks) listed",
            hls_parts.clone(),
        );
        let publish_latency = Family::<RungLabels, Histogram>::new_with_constructor(
            (|| {
                Histogram::new([
                    0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0,
                ])
            }) as fn() -> Histogram,
        );
        registry.register_with_unit(
            names::INGEST_TO_PUBLISH_LATENCY,
            "Per video frame: from its arrival to the listing of the part (or segment) holding it",
            Unit::Seconds,
            publish_latency.clone(),
        );
        let pipeline_restarts = Family::<RestartLabels, Counter>::default();
        registry.register(
            names::PIPELINE_RESTARTS,
            "Pipelines rebuilt mid-publish, by stream and reason",
            pipeline_restarts.clone(),
        );
        let http_response_bytes = Family::<RouteLabel, Counter>::default();
        registry.register(
            names::HTTP_RESPONSE_BYTES,
            "HTTP response body bytes by matched route template",
            http_response_bytes.clone(),
        );
        let held = Arc::new(HeldRequests::default());
        registry.register_collector(Box::new(HeldCollector(held.clone())));
        registry.register_collector(Box::new(ProcessCollector::new()));
        Arc::new(Metrics {
            hls_parts,
            publish_latency,
            pipeline_restarts,
            http_response_bytes,
            held,
            viewers: Arc::new(Viewers::default()),
            srt_packets_received,
            srt_packets_lost,
            srt_packets_retransmitted,
            srt_packets_dropped,
            ts_cc_errors,
            ts_pes_dropped,
            pipeline_errors,
            segment_durations,
            hls_segments,
            hls_bytes,
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            ingest_connections,
            ingest_rejections,
            ingest_bytes,
            ingest_frames,
        })
    }

    /// Adds the gauges read from the stream registry at scrape time, and starts every configured
    /// stream's error and restart counters at 0.
    pub fn watch_streams(&self, streams: &Arc<StreamRegistry>) {
        let snapshot = streams.snapshot();
        self.viewers.track(snapshot.iter().map(|s| s.name.as_str()));
        for s in snapshot {
            let stream = s.name.to_string();
            // inc_by(0) makes the series exist; each guard is dropped in its own statement.
            self.pipeline_errors
                .get_or_create(&StreamLabel {
                    stream: stream.clone(),
                })
                .inc_by(0);
            for reason in RESTART_REASONS {
                self.pipeline_restarts
                    .get_or_create(&RestartLabels {
                        stream: stream.clone(),
                        reason,
                    })
                    .inc_by(0);
            }
        }
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register_collector(Box::new(StreamCollector {
                streams: Arc::downgrade(streams),
                viewers: self.viewers.clone(),
            }));
    }

    /// Counts a pipeline rebuilt mid-publish.
    pub fn pipeline_restart(&self, stream: &str, reason: &'static str) {
        self.pipeline_restarts
            .get_or_create(&RestartLabels {
                stream: stream.to_owned(),
                reason,
            })
            .inc();
    }

    /// Counts a listed part and observes the ingest-to-publish latency of the frames that
    /// became visible to players with it.
    pub fn listed(
        &self,
        stream: &str,
        rung: &str,
        part: bool,
        arrivals: &[std::time::Instant],
        now: std::time::Instant,
    ) {
        let labels = RungLabels {
            stream: stream.to_owned(),
            rung: rung.to_owned(),
        };
        if part {
            self.hls_parts.get_or_create(&labels).inc();
        }
        if !arrivals.is_empty() {
            let h = self.publish_latency.get_or_create(&labels);
            for a in arrivals {
                h.observe(now.saturating_duration_since(*a).as_secs_f64());
            }
        }
    }

    /// Counts a refused ingest attempt.
    pub fn reject(&self, protocol: &'static str, reason: &'static str) {
        self.ingest_rejections
            .get_or_create(&RejectionLabels { protocol, reason })
            .inc();
    }

    /// Counts a pipeline failure.
    pub fn pipeline_error(&self, stream: &str) {
        self.pipeline_errors
            .get_or_create(&StreamLabel {
                stream: stream.to_owned(),
            })
            .inc();
    }

    /// Records a completed segment: counts it and observes its duration.
    pub fn segment_completed(&self, stream: &str, rung: &str, seconds: f64) {
        let labels = RungLabels {
            stream: stream.to_owned(),
            rung: rung.to_owned(),
        };
        self.hls_segments.get_or_create(&labels).inc();
        self.segment_durations
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Counts bytes handed to the packager.
    pub fn packaged(&self, stream: &str, rung: &str, bytes: u64) {
        self.hls_bytes
            .get_or_create(&RungLabels {
                stream: stream.to_owned(),
                rung: rung.to_owned(),
            })
            .inc_by(bytes);
    }

    /// Adds the gauges and counters read from the HLS outputs at scrape time.
    pub fn watch_outputs(&self, outputs: &Arc<Outputs>) {
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register_collector(Box::new(OutputCollector(Arc::downgrade(outputs))));
    }

    /// Adds the accelerator gauges and counters (probe, sessions, backends, fallbacks) read
    /// from the transcoder's state at scrape time.
    pub fn watch_accelerator(&self, outputs: &Arc<Outputs>) {
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register_collector(Box::new(AcceleratorCollector(Arc::downgrade(outputs))));
    }

    /// Adds the SRT link gauges (RTT, receive bitrate) read from the live links at scrape time.
    pub fn watch_srt_links(&self, links: &Arc<crate::srt_ingest::SrtLinks>) {
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register_collector(Box::new(SrtLinkCollector(Arc::downgrade(links))));
    }

    /// Adds `n` to a per-stream counter (0 makes the series exist).
    pub fn add(family: &Family<StreamLabel, Counter>, stream: &str, n: u64) {
        family
            .get_or_create(&StreamLabel {
                stream: stream.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts an ended ingest connection.
    pub fn connection(&self, protocol: &'static str, result: &'static str) {
        self.ingest_connections
            .get_or_create(&ConnectionLabels { protocol, result })
            .inc();
    }

    /// Encodes everything as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let registry = self.registry.lock().expect("metrics registry lock");
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// Gauges from the stream registry's snapshot, and each configured stream's viewers.
#[derive(Debug)]
struct StreamCollector {
    streams: Weak<StreamRegistry>,
    viewers: Arc<Viewers>,
}

/// The held-requests gauge.
#[derive(Debug)]
struct HeldCollector(Arc<HeldRequests>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

impl Collector for HeldCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            names::HTTP_HELD_REQUESTS,
            "Requests held waiting for media now (blocking playlist reloads, parts not produced yet)",
            None,
            gauge.metric_type(),
        )?;
        for kind in [HeldKind::Playlist, HeldKind::Part] {
            ConstGauge::new(self.0.get(kind)).encode(family.encode_family(&KindLabel {
                kind: kind.as_str(),
            })?)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

/// A stream label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    /// Public stream name.
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamKindLabel {
    stream: String,
    kind: &'static str,
}

/// Per-rung counters and gauges from the outputs' snapshots.
#[derive(Debug)]
struct OutputCollector(Weak<Outputs>);

impl Collector for OutputCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(outputs) = self.0.upgrade() else {
            return Ok(());
        };
        let mut outputs = outputs.all();
        outputs.sort_by(|a, b| a.name().cmp(b.name()));
        let counter = ConstCounter::new(0u64);
        let gauge = ConstGauge::new(0.0f64);

        let mut frames = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_ENCODED,
            "Video frames out of each rung's encoder (repackaged, for passthrough)",
            None,
            counter.metric_type(),
        )?;
        let stats: Vec<_> = outputs.iter().map(|o| (o, o.pipeline_stats())).collect();
        for (o, s) in &stats {
            for r in s.iter().flat_map(|s| &s.rungs) {
                let l = RungLabels {
                    stream: o.name().to_string(),
                    rung: r.name.clone(),
                };
                ConstCounter::new(r.frames).encode(frames.encode_family(&l)?)?;
            }
        }
        let mut dropped = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_DROPPED,
            "Frames dropped at the pipeline input because it fell behind",
            None,
            counter.metric_type(),
        )?;
        for (o, s) in &stats {
            if let Some(s) = s {
                for (kind, n) in [("video", s.video_dropped), ("audio", s.audio_dropped)] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstCounter::new(n).encode(dropped.encode_family(&l)?)?;
                }
            }
        }
        let mut frames_in = encoder.encode_descriptor(
            names::PIPELINE_FRAMES_IN,
            "Frames accepted into the pipeline input",
            None,
            counter.metric_type(),
        )?;
        for (o, s) in &stats {
            if let Some(s) = s {
                for (kind, n) in [("video", s.video_frames_in), ("audio", s.audio_frames_in)] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstCounter::new(n).encode(frames_in.encode_family(&l)?)?;
                }
            }
        }
        let mut queued = encoder.encode_descriptor(
            names::PIPELINE_QUEUE_DEPTH,
            "Frames waiting in the pipeline's input queue",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (o, s) in stats.iter().filter(|(o, _)| !o.is_over()) {
            if let Some(s) = s {
                for (kind, n) in [("video", s.video_queued), ("audio", s.audio_queued)] {
                    let l = StreamKindLabel {
                        stream: o.name().to_string(),
                        kind,
                    };
                    ConstGauge::new(n as i64).encode(queued.encode_family(&l)?)?;
                }
            }
        }
        let mut rtf = encoder.encode_descriptor(
            names::PIPELINE_REALTIME_FACTOR,
            "Media seconds produced per wall second over the last 5 s; below 1 means falling behind",
            None,
            gauge.metric_type(),
        )?;
        for o in outputs.iter().filter(|o| !o.is_over()) {
            for (rung, f) in o.realtime_factors() {
                let l = RungLabels {
                    stream: o.name().to_string(),
                    rung,
                };
                ConstGauge::new(f).encode(rtf.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}

impl Collector for StreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(streams) = self.streams.upgrade() else {
            return Ok(());
        };
        let snapshot = streams.snapshot();
        let mut per_protocol = [("rtmp", 0i64), ("srt", 0i64)];
        for s in &snapshot {
            if let Some(p) = &s.publisher {
                for (name, n) in per_protocol.iter_mut() {
                    if *name == p.protocol {
                        *n += 1;
                    }
                }
            }
        }
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            names::ACTIVE_PUBLISHERS,
            "Live publishers by ingest protocol",
            None,
            gauge.metric_type(),
        )?;
        for (protocol, n) in per_protocol {
            ConstGauge::new(n).encode(family.encode_family(&ProtocolLabel { protocol })?)?;
        }
        let mut family = encoder.encode_descriptor(
            names::STREAM_LIVE,
            "1 while the configured stream has a live publisher, else 0",
            None,
            gauge.metric_type(),
        )?;
        for s in &snapshot {
            let label = StreamLabel {
                stream: s.name.to_string(),
            };
            ConstGauge::new(i64::from(s.publisher.is_some()))
                .encode(family.encode_family(&label)?)?;
        }
        let mut family = encoder.encode_descriptor(
            names::INGEST_BITRATE,
            "Ingest media bitrate of live streams, over about the last second",
            None,
            ConstGauge::new(0.0f64).metric_type(),
        )?;
        for s in &snapshot {
            if let Some(p) = &s.publisher {
                let label = StreamLabel {
                    stream: s.name.to_string(),
                };
                ConstGauge::new(p.bitrate_bps as f64).encode(family.encode_family(&label)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            names::STREAM_VIEWERS,
            "Distinct playback sessions seen in the last 30 s",
            None,
            gauge.metric_type(),
        )?;
        let now = std::time::Instant::now();
        for s in &snapshot {
            let label = StreamLabel {
                stream: s.name.to_string(),
            };
            let n = self.viewers.count(s.name.as_str(), now);
            ConstGauge::new(n as i64).encode(family.encode_family(&label)?)?;
        }
        Ok(())
    }
}

/// Gauges of the live SRT links.
#[derive(Debug)]
struct SrtLinkCollector(Weak<crate::srt_ingest::SrtLinks>);

impl Collector for SrtLinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(links) = self.0.upgrade() else {
            return Ok(());
        };
        let links = links.snapshot();
        let gauge = ConstGauge::new(0.0f64);
        let mut rtt = encoder.encode_descriptor(
            names::SRT_RTT,
            "Round-trip time of each live SRT publisher's link",
            None,
            gauge.metric_type(),
        )?;
        for l in &links {
            let label = StreamLabel {
                stream: l.stream.to_string(),
            };
            ConstGauge::new(l.rtt.as_secs_f64()).encode(rtt.encode_family(&label)?)?;
        }
        let mut bitrate = encoder.encode_descriptor(
            names::SRT_RECEIVE_BITRATE,
            "Bits per second received on each live SRT publisher's link",
            None,
            gauge.metric_type(),
        )?;
        for l in &links {
            let label = StreamLabel {
                stream: l.stream.to_string(),
            };
            ConstGauge::new(l.receive_bps).encode(bitrate.encode_family(&label)?)?;
        }
        Ok(())
    }
}

/// Process CPU, memory and file descriptors, read from `/proc/self` at scrape time.
#[derive(Debug)]
struct ProcessCollector {
    start_time: f64,
}

impl ProcessCollector {
    fn new() -> Self {
        let start_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        ProcessCollector { start_time }
    }
}

/// What `/proc/self` says; `None` fields where the platform has no procfs.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
}

/// Reads the current process's CPU time, RSS and descriptor count.
pub fn process_stats() -> ProcessStats {
    let mut stats = ProcessStats::default();
    // SAFETY-free: sysconf is not available without libc; the kernel's USER_HZ is 100 on every
    // Linux architecture we ship for.
    const TICKS_PER_SEC: f64 = 100.0;
    const PAGE: u64 = 4096;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name, which may itself contain spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): utime is field 14, stime 15, rss 24.
            let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (get(14), get(15)) {
                stats.cpu_seconds = Some((u + s) as f64 / TICKS_PER_SEC);
            }
            stats.rss_bytes = get(24).map(|p| p * PAGE);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        stats.open_fds = Some(dir.count() as u64);
    }
    stats
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = process_stats();
        if let Some(cpu) = stats.cpu_seconds {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                names::PROCESS_CPU,
                "Total user and system CPU time spent",
                None,
                c.metric_type(),
            )?)?;
        }
        for (name, help, value) in [
            (names::PROCESS_RSS, "Resident memory size", stats.rss_bytes),
            (names::PROCESS_FDS, "Open file descriptors", stats.open_fds),
        ] {
            if let Some(v) = value {
                let g = ConstGauge::new(v as i64);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        let g = ConstGauge::new(self.start_time);
        g.encode(encoder.encode_descriptor(
            names::PROCESS_START,
            "Start time of the process since the Unix epoch",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Accelerator state from the transcoder's probe, session budget and outputs.
#[derive(Debug)]
struct AcceleratorCollector(Weak<Outputs>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageKindLabels {
    stage: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    stream: String,
    rung: String,
    stage: &'static str,
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

impl Collector for AcceleratorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use pipeline::accel::{Backend, Stage};
        let Some(outputs) = self.0.upgrade() else {
            return Ok(());
        };
        let Some(acc) = outputs.accelerator() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(0i64);
        let counter = ConstCounter::new(0u64);
        let mut available = encoder.encode_descriptor(
            names::ACCELERATOR_AVAILABLE,
            "1 when an element of this kind is usable for this stage (start-up probe)",
            None,
            gauge.metric_type(),
        )?;
        for stage in Stage::ALL {
            for kind in Backend::ALL {
                let l = StageKindLabels {
                    stage: stage.as_str(),
                    kind: kind.as_str(),
                };
                ConstGauge::new(i64::from(acc.capabilities.available(stage, kind)))
                    .encode(available.encode_family(&l)?)?;
            }
        }
        ConstGauge::new(acc.sessions.in_use() as i64).encode(encoder.encode_descriptor(
            names::ENCODER_SESSIONS,
            "Hardware encoder sessions in use (one per hardware-encoded rung)",
            None,
            gauge.metric_type(),
        )?)?;
        ConstGauge::new(acc.sessions.limit().unwrap_or(0) as i64).encode(
            encoder.encode_descriptor(
                names::ENCODER_SESSIONS_LIMIT,
                "Hardware encoder session limit (nvidia.max_encode_sessions; 0 = none)",
                None,
                gauge.metric_type(),
            )?,
        )?;
        let mut backend = encoder.encode_descriptor(
            names::STREAM_BACKEND,
            "1 for the backend doing each stage of each live stream's rungs",
            None,
            gauge.metric_type(),
        )?;
        let mut live = outputs.all();
        live.sort_by(|a, b| a.name().cmp(b.name()));
        for o in live.iter().filter(|o| !o.is_over()) {
            let Some(b) = o.backends() else { continue };
            for r in b.rungs.iter().filter(|r| r.encoder.is_some()) {
                for (stage, kind) in [
                    (Stage::Decode, b.decoder.backend),
                    (Stage::Scale, b.scale),
                    (Stage::Encode, r.backend),
                ] {
                    let l = BackendLabels {
                        stream: o.name().to_string(),
                        rung: r.name.clone(),
                        stage: stage.as_str(),
                        backend: kind.as_str(),
                    };
                    ConstGauge::new(1i64).encode(backend.encode_family(&l)?)?;
                }
            }
        }
        for (name, help, map) in [
            (
                names::ACCELERATOR_FALLBACKS,
                "Falls back to software, by reason",
                &acc.fallbacks,
            ),
            (
                names::ACCELERATOR_REFUSALS,
                "Publishes refused or streams ended for want of promised hardware, by reason",
                &acc.refusals,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            let counts = map.lock().map(|m| m.clone()).unwrap_or_default();
            for reason in ["unavailable", "session_limit", "runtime_error"] {
                let n = counts.get(reason).copied().unwrap_or(0);
                ConstCounter::new(n).encode(family.encode_family(&ReasonLabel { reason })?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn viewers_count_distinct_sessions_within_the_window() {
        let v = Viewers::default();
        v.track(["main", "other"]);
        let t0 = Instant::now();
        v.seen("main", "tab-1", t0);
        v.seen("main", "tab-1", t0 + Duration::from_secs(1));
        v.seen("main", "tab-2", t0 + Duration::from_secs(2));
        v.seen("other", "tab-1", t0);
        // Not identifiers: too long, or characters a cookie or URL would mangle.
        v.seen("main", &"x".repeat(65), t0);
        v.seen("main", "a b", t0);
        v.seen("main", "", t0);
        assert_eq!(v.count("main", t0 + Duration::from_secs(3)), 2);
        assert_eq!(v.count("other", t0 + Duration::from_secs(3)), 1);
        // Streams that are not configured are not tracked.
        v.seen("nobody", "tab-1", t0);
        assert_eq!(v.count("nobody", t0), 0);
        // tab-1 was last seen at 1 s, tab-2 at 2 s.
        assert_eq!(v.count("main", t0 + Duration::from_millis(31_500)), 1);
        assert_eq!(v.count("main", t0 + Duration::from_secs(33)), 0);
    }

    #[test]
    fn viewers_stay_bounded() {
        let v = Viewers::default();
        v.track(["main"]);
        let t0 = Instant::now();
        for i in 0..Viewers::MAX_SESSIONS + 10 {
            v.seen("main", &format!("s{i}"), t0);
        }
        assert_eq!(v.count("main", t0), Viewers::MAX_SESSIONS);
        // Once the old ones expire, new sessions count again.
        let later = t0 + Viewers::WINDOW + Duration::from_secs(1);
        v.seen("main", "fresh", later);
        assert_eq!(v.count("main", later), 1);
    }

    #[test]
    fn held_requests_are_counted_until_answered() {
        let held = Arc::new(HeldRequests::default());
        let a = held.hold(HeldKind::Playlist);
        let b = held.hold(HeldKind::Part);
        let c = held.hold(HeldKind::Part);
        assert_eq!(
            (held.get(HeldKind::Playlist), held.get(HeldKind::Part)),
            (1, 2)
        );
        drop((a, b));
        assert_eq!(
            (held.get(HeldKind::Playlist), held.get(HeldKind::Part)),
            (0, 1)
        );
        drop(c);
        assert_eq!(held.get(HeldKind::Part), 0);
    }

    #[test]
    fn configured_streams_start_with_zeroed_error_and_restart_counters() {
        let m = Metrics::new();
        let _registry = crate::registry::StreamRegistry::new(
            vec![crate::config::StreamConfig {
                name: "main".parse().expect("name"),
                key: "k".into(),
                passphrase: String::new(),
            }],
            Duration::from_secs(5),
            m.clone(),
        );
        let text = m.encode();
        for zero in [
            r#"ferrocast_pipeline_errors_total{stream="main"} 0"#,
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="config_change"} 0"#,
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="hardware_fallback"} 0"#,
            r#"ferrocast_stream_viewers{stream="main"} 0"#,
        ] {
            assert!(text.contains(zero), "{zero} missing:\n{text}");
        }
        m.pipeline_restart("main", "config_change");
        assert!(m.encode().contains(
            r#"ferrocast_pipeline_restarts_total{stream="main",reason="config_change"} 1"#
        ));
    }
}
