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
    pub route: String,
    /// Request method (a fixed set; anything else is `OTHER`).
    pub method: &'static str,
    /// Response status code.
    pub status: u16,
}

/// Labels of HTTP duration histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Matched route template.
    pub route: String,
    /// Request method.
    pub method: &'static str,
}

/// Labels of ingest connection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `rtmp` or `srt`.
    pub protocol: &'static str,
    /// How the connection ended: `published`, `rejected`, `error`, `timeout`, `over_limit`.
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
        registry.register_collector(Box::new(ProcessCollector::new()));
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            ingest_connections,
            ingest_rejections,
            ingest_bytes,
            ingest_frames,
        })
    }

    /// Adds the gauges read from the stream registry at scrape time.
    pub fn watch_streams(&self, streams: &Arc<StreamRegistry>) {
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register_collector(Box::new(StreamCollector(Arc::downgrade(streams))));
    }

    /// Counts a refused ingest attempt.
    pub fn reject(&self, protocol: &'static str, reason: &'static str) {
        self.ingest_rejections
            .get_or_create(&RejectionLabels { protocol, reason })
            .inc();
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

/// Gauges from the stream registry's snapshot.
#[derive(Debug)]
struct StreamCollector(Weak<StreamRegistry>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

impl Collector for StreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(streams) = self.0.upgrade() else {
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
