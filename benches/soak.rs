//! Soak: three streams for a long time while viewers poll; fails if the server's resources grow.
//!
//! `cargo bench -p ferrocast --bench soak` (`BENCH_SECONDS`, default 600; see benches/README.md).
//!
//! 1. Ferrocast with the two-rung ladder (passthrough source + 240p x264 ultrafast) and 2 s
//!    segments. Two ffmpeg publishers over RTMP and one over SRT (libsrt), each a 320x240 test
//!    pattern with AAC, for the whole run plus a margin.
//! 2. A viewer per stream and rung, like a player: the media playlist every 500 ms and each new
//!    segment it lists once, counting errors.
//! 3. Every 10 s: the server's VmRSS, open file descriptors (`/proc/PID/fd`), threads, and each
//!    stream's `ferrocast_hls_segments_total`.
//! 4. After a warm-up (a fifth of the run, at most 60 s), the first three samples are the start
//!    and the last three the end. The run fails when, from start to end:
//!    - RSS grows by more than `BENCH_RSS_SLOPE_KIB` (default 1024) KiB per minute;
//!    - file descriptors or threads grow by more than 8 (any real leak over minutes of streams
//!      and viewers grows without bound; a handful is GStreamer's thread pools settling);
//!    - any stream's segment cadence in the last minute is off its 30 per minute by more than
//!      10%, or a publisher died, or a viewer saw an error.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::hls::parse_media;
use support::{
    env_or, ffmpeg_publish, ffmpeg_srt, http_get, http_get_bytes, proc_status, srt_addr, srt_url,
    Server, TempDir,
};

const SEGMENT_S: f64 = 2.0;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const STREAMS: [(&str, &str, &str); 3] = [
    ("soak-a", "soak-key-a", "rtmp"),
    ("soak-b", "soak-key-b", "rtmp"),
    ("soak-c", "soak-key-c", "srt"),
];
const RUNGS: [&str; 2] = ["source", "240p"];

#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    segments: Vec<f64>,
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

fn sample(server: &Server, started: Instant) -> Sample {
    let pid = server.process.pid();
    let m = server.metrics();
    Sample {
        at: started.elapsed(),
        rss_kib: proc_status(pid, "VmRSS"),
        fds: fd_count(pid),
        threads: proc_status(pid, "Threads"),
        segments: STREAMS
            .iter()
            .map(|(name, ..)| {
                m.value(
                    "ferrocast_hls_segments_total",
                    &[("stream", name), ("rung", "source")],
                )
            })
            .collect(),
    }
}

fn mean(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(&f).sum::<f64>() / samples.len() as f64
}

/// A viewer: the playlist every 500 ms, every new segment once.
fn viewer(
    server_http: std::net::SocketAddr,
    stream: &'static str,
    rung: &'static str,
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
    fetched: Arc<AtomicU64>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let base = format!("/live/{stream}/{rung}");
        let mut seen = BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            let r = http_get(server_http, &format!("{base}/index.m3u8"));
            if r.status == 200 {
                let pl = parse_media(&r.body);
                for s in pl.segments.iter().filter(|s| seen.insert(s.msn)) {
                    let seg = http_get_bytes(server_http, &format!("{base}/{}", s.uri));
                    if seg.status == 200 && !seg.body.is_empty() {
                        fetched.fetch_add(1, Ordering::SeqCst);
                    } else {
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // Keep the set small: only what a live playlist can still list.
                if seen.len() > 64 {
                    let keep: BTreeSet<u64> = seen.iter().rev().take(32).copied().collect();
                    seen = keep;
                }
            } else {
                errors.fetch_add(1, Ordering::SeqCst);
            }
            thread::sleep(Duration::from_millis(500));
        }
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("soak: bench");
        return;
    }
    let seconds: u64 = env_or("BENCH_SECONDS", 600);
    let rss_slope_kib: f64 = env_or("BENCH_RSS_SLOPE_KIB", 1024.0);
    let warmup = Duration::from_secs((seconds / 5).min(60));
    println!("soak: 3 streams (2 RTMP, 1 SRT), 2 rungs, {seconds} s, viewers polling every 500 ms");

    let config = TempDir::new("soak");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, support::TWO_RUNG_LADDER).expect("write config");
    let path = path.display().to_string();
    let mut args = vec![
        "--config".to_owned(),
        path,
        "--log-level".to_owned(),
        "warn".to_owned(),
        "--set".to_owned(),
        format!("hls.segment_duration={SEGMENT_S}s"),
    ];
    for (name, key, _) in STREAMS {
        args.push("--stream".to_owned());
        args.push(format!("{name}={key}"));
    }
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let srt = srt_addr(&server);
    let publish_for = (seconds + 120) as u32;
    let mut publishers: Vec<_> = STREAMS
        .iter()
        .map(|(name, key, protocol)| match *protocol {
            "rtmp" => ffmpeg_publish(
                &server.dir,
                name,
                &server.rtmp_url(key),
                "320x240",
                publish_for,
            ),
            _ => ffmpeg_srt(
                &server.dir,
                name,
                &srt_url(srt, key, ""),
                "320x240",
                publish_for,
            ),
        })
        .collect();
    for (name, ..) in STREAMS {
        server.wait_live(name, Duration::from_secs(30), |_| true);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let fetched = Arc::new(AtomicU64::new(0));
    // Viewers start once every playlist exists, so start-up 404s are not counted as errors.
    support::wait_until(Duration::from_secs(30), "every playlist", || {
        STREAMS
            .iter()
            .all(|(name, ..)| {
                RUNGS.iter().all(|rung| {
                    http_get(server.http, &format!("/live/{name}/{rung}/index.m3u8")).status == 200
                })
            })
            .then_some(())
    });
    let viewers: Vec<_> = STREAMS
        .iter()
        .flat_map(|(name, ..)| RUNGS.iter().map(move |r| (*name, *r)))
        .map(|(name, rung)| {
            viewer(
                server.http,
                name,
                rung,
                stop.clone(),
                errors.clone(),
                fetched.clone(),
            )
        })
        .collect();

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = started;
    while started.elapsed() < Duration::from_secs(seconds) {
        let s = sample(&server, started);
        println!(
            "soak: t={:>4}s rss={} KiB fds={} threads={} segments={:?} fetched={} errors={}",
            s.at.as_secs(),
            s.rss_kib,
            s.fds,
            s.threads,
            s.segments,
            fetched.load(Ordering::SeqCst),
            errors.load(Ordering::SeqCst)
        );
        samples.push(s);
        next += SAMPLE_EVERY;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    stop.store(true, Ordering::SeqCst);
    for v in viewers {
        let _ = v.join();
    }

    let steady: Vec<Sample> = samples.iter().filter(|s| s.at >= warmup).cloned().collect();
    assert!(
        steady.len() >= 6,
        "soak: too short to compare a start and an end ({} samples after a {warmup:?} warm-up); \
         raise BENCH_SECONDS",
        steady.len()
    );
    let (start, end) = (&steady[..3], &steady[steady.len() - 3..]);
    let minutes = (mean(end, |s| s.at.as_secs_f64()) - mean(start, |s| s.at.as_secs_f64())) / 60.0;
    let grow = |f: fn(&Sample) -> f64| mean(end, f) - mean(start, f);
    let rss = grow(|s| s.rss_kib as f64);
    let fds = grow(|s| s.fds as f64);
    let threads = grow(|s| s.threads as f64);
    let rss_slope = rss / minutes;
    println!(
        "soak: start rss={:.0} KiB fds={:.0} threads={:.0}; end rss={:.0} KiB fds={:.0} threads={:.0}",
        mean(start, |s| s.rss_kib as f64),
        mean(start, |s| s.fds as f64),
        mean(start, |s| s.threads as f64),
        mean(end, |s| s.rss_kib as f64),
        mean(end, |s| s.fds as f64),
        mean(end, |s| s.threads as f64),
    );

    let mut failures = Vec::new();
    if rss_slope > rss_slope_kib {
        failures.push(format!(
            "RSS grew {rss_slope:.0} KiB/min (limit {rss_slope_kib:.0})"
        ));
    }
    if fds > 8.0 {
        failures.push(format!("open files grew by {fds:.0}"));
    }
    if threads > 8.0 {
        failures.push(format!("threads grew by {threads:.0}"));
    }
    // Cadence over the last minute (or what there is of it), and over the first minute after the
    // warm-up, per stream.
    let expected = 60.0 / SEGMENT_S;
    let window = |from: &[Sample]| -> Vec<f64> {
        let (a, b) = (&from[0], &from[from.len() - 1]);
        let min = (b.at - a.at).as_secs_f64() / 60.0;
        a.segments
            .iter()
            .zip(&b.segments)
            .map(|(x, y)| (y - x) / min)
            .collect()
    };
    let per_min = (60 / SAMPLE_EVERY.as_secs()) as usize + 1;
    let first = window(&steady[..per_min.min(steady.len())]);
    let last = window(&steady[steady.len().saturating_sub(per_min)..]);
    for (i, (name, ..)) in STREAMS.iter().enumerate() {
        if (last[i] - expected).abs() > expected * 0.1 {
            failures.push(format!(
                "{name}: {:.1} segments/min in the last minute (expected {expected:.0})",
                last[i]
            ));
        }
    }
    for (p, (name, ..)) in publishers.iter_mut().zip(STREAMS) {
        if p.try_wait().is_some() {
            failures.push(format!("the {name} publisher ended early: {}", p.stderr()));
        }
    }
    let errors = errors.load(Ordering::SeqCst);
    if errors > 0 {
        failures.push(format!("viewers saw {errors} failed requests"));
    }
    println!(
        "soak: {seconds} s; rss {:+.0} KiB ({rss_slope:+.0} KiB/min), fds {fds:+.0}, threads \
         {threads:+.0}; segments/min first {first:.1?} last {last:.1?} (expected {expected:.0}); \
         {} segments fetched, {errors} errors; {}",
        rss,
        fetched.load(Ordering::SeqCst),
        if failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL: {}", failures.join("; "))
        }
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
