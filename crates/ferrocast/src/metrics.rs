//! The service's metrics registry, and what the wiring records itself: HTTP requests, build
//! information and the process's CPU, memory and descriptors.
//!
//! Every part registers its own metrics into the registry at construction and hands over
//! collectors for its gauges; this module only owns the registry and encodes it for `/metrics`.

use std::fmt::Write as _;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use telemetry::names;

/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry every part registered into, frozen once the service is wired.
#[derive(Debug)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    /// Freezes `registry` for scraping.
    pub fn new(registry: Registry) -> Metrics {
        Metrics(Mutex::new(registry))
    }

    /// Encodes everything as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let registry = self.0.lock().expect("metrics registry lock");
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// Registers the build information and the process gauges.
pub fn register_process(registry: &mut Registry) {
    registry.register(
        names::BUILD,
        "Ferrocast build information",
        Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION")),
            ("rustc_edition", "2021"),
        ]),
    );
    registry.register_collector(Box::new(ProcessCollector::new()));
}

/// Labels of HTTP request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of HTTP duration histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// Labels of HTTP byte counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// HTTP request counters, labelled with the matched route template (never the raw path), so a
/// scan of random paths cannot grow the label set.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    response_bytes: Family<RouteLabel, Counter>,
}

impl HttpMetrics {
    /// Creates the HTTP metrics, registered into `registry`.
    pub fn new(registry: &mut Registry) -> HttpMetrics {
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            names::HTTP_REQUESTS,
            "HTTP requests by matched route template, method and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            names::HTTP_REQUEST_DURATION,
            "HTTP request duration until the response head is ready",
            Unit::Seconds,
            duration.clone(),
        );
        let response_bytes = Family::<RouteLabel, Counter>::default();
        registry.register(
            names::HTTP_RESPONSE_BYTES,
            "HTTP response body bytes by matched route template",
            response_bytes.clone(),
        );
        HttpMetrics {
            requests,
            duration,
            response_bytes,
        }
    }

    /// Records one answered request: its count by status, its duration and its body bytes.
    pub fn request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        seconds: f64,
        bytes: u64,
    ) {
        self.response_bytes
            .get_or_create(&RouteLabel { route })
            .inc_by(bytes);
        self.duration
            .get_or_create(&RouteLabels { route, method })
            .observe(seconds);
        self.counted(route, method, status);
    }

    /// Counts a request without timing it (an unmatched path).
    pub fn counted(&self, route: &'static str, method: &'static str, status: u16) {
        self.requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
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
struct ProcessStats {
    /// User + system CPU seconds.
    cpu_seconds: Option<f64>,
    /// Resident set size in bytes.
    rss_bytes: Option<u64>,
    /// Open file descriptors.
    open_fds: Option<u64>,
}

/// Reads the current process's CPU time, RSS and descriptor count.
fn process_stats() -> ProcessStats {
    let mut stats = ProcessStats {
        cpu_seconds: telemetry::process::cpu_seconds(),
        ..ProcessStats::default()
    };
    const PAGE: u64 = 4096;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name, which may itself contain spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): rss is field 24.
            stats.rss_bytes = f
                .get(24 - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .map(|p| p * PAGE);
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
