//! An edge pod serving a stream another pod owns, against the owner serving it locally.
//!
//! `cargo bench -p ferrocast --bench edge_fanout` (see benches/README.md for the knobs).
//!
//! 1. A real `redis-server` and two Ferrocast pods in cluster mode (the small two-rung ladder):
//!    ffmpeg publishes a 640x360 test pattern to the owner, A; B is the edge.
//! 2. For each viewer count in `BENCH_VIEWERS` (default 10, 100, 1000), for `BENCH_SECONDS`
//!    (default 10) each: A's CPU with no viewers (the transcoding, subtracted below); then the
//!    viewers on B; then the same viewers on A. A viewer plays LL-HLS as hls.js does: a
//!    blocking reload for the part after the newest it has (`_HLS_msn`/`_HLS_part`, held by the
//!    server until the part exists), then that part; again and again.
//! 3. Per run: answered requests per second; CPU per 1,000 viewers (the serving pods' CPU
//!    seconds per second, less A's transcoding); on B, the owner's fetches per object (media
//!    requests B proxied to A, over the distinct parts its viewers fetched). Ratios are the
//!    edge's over the owner's.

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cpu_seconds;
use support::redis::Redis;
use support::{env_or, ffmpeg_publish, http_get, wait_until, Server, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PLAYLIST: &str = "/live/bench/240p/index.m3u8";

/// The newest part a media playlist lists, as (MSN, index).
fn newest_part(text: &str) -> Option<(u64, u32)> {
    let line = text.lines().rfind(|l| l.starts_with("#EXT-X-PART:"))?;
    let name = line.split("URI=\"part-").nth(1)?.split(".m4s").next()?;
    let (msn, part) = name.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// `GET path` with `Connection: close`: the status and body, or why not (bounded: 15 s).
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>), String> {
    let fetch = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no header")?;
        let status = String::from_utf8_lossy(&buf[..end])
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok::<_, String>((status, buf[end + 4..].to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(15), fetch)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// What the viewers of one run did.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    failed: AtomicU64,
    objects: Mutex<BTreeSet<String>>,
}

/// `viewers` LL-HLS viewers of `addr` until `until`.
async fn watch(addr: SocketAddr, viewers: usize, until: Instant, tally: Arc<Tally>) {
    let mut tasks = Vec::with_capacity(viewers);
    for _ in 0..viewers {
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut next: Option<(u64, u32)> = None;
            while Instant::now() < until {
                let path = match next {
                    Some((m, p)) => format!("{PLAYLIST}?_HLS_msn={m}&_HLS_part={p}"),
                    None => PLAYLIST.to_owned(),
                };
                let newest = match get(addr, &path).await {
                    Ok((200, body)) => {
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                        newest_part(&String::from_utf8_lossy(&body))
                    }
                    _ => None,
                };
                let Some((m, p)) = newest else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    next = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let uri = format!("part-{m}.{p}.m4s");
                match get(addr, &format!("/live/bench/240p/{uri}")).await {
                    Ok((200, _)) => {
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                        tally.objects.lock().unwrap().insert(uri);
                    }
                    _ => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next = Some((m, p + 1));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// One run's figures.
struct Run {
    requests_per_s: f64,
    /// CPU seconds per second per 1,000 viewers.
    cpu_per_1000: f64,
    failed: u64,
    objects: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("edge_fanout: bench");
        return;
    }
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let counts: Vec<usize> = std::env::var("BENCH_VIEWERS")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let redis = Redis::start();
    let config = TempDir::new("edge-fanout");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, support::TWO_RUNG_LADDER).expect("write config");
    let path = path.display().to_string();
    let redis_url = format!("cluster.redis_url={}", redis.url());
    let pod = || {
        Server::start(&[
            "--config",
            &path,
            "--log-level",
            "warn",
            "--stream",
            "bench=bench-edge-key",
            "--set",
            &redis_url,
            "--set",
            "http.max_connections=20000",
        ])
    };
    let (a, b) = (pod(), pod());
    let _ffmpeg = ffmpeg_publish(
        &a.dir,
        "edge",
        &a.rtmp_url("bench-edge-key"),
        "640x360",
        3600,
    );
    a.wait_live("bench", Duration::from_secs(30), |_| true);
    for (server, what) in [(&a, "the owner"), (&b, "the edge")] {
        wait_until(Duration::from_secs(60), what, || {
            (http_get(server.http, PLAYLIST).status == 200).then_some(())
        });
    }
    let (pa, pb) = (a.process.pid(), b.process.pid());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let span = Duration::from_secs(seconds);
    // A's CPU per second with no viewers (its transcoding).
    let idle = |_: ()| {
        let before = cpu_seconds(pa);
        std::thread::sleep(span);
        (cpu_seconds(pa) - before) / span.as_secs_f64()
    };
    let proxied = |b: &Server| {
        b.metrics().value(
            "ferrocast_cluster_proxy_requests_total",
            &[("kind", "media")],
        )
    };
    let run = |addr: SocketAddr, viewers: usize, transcoding: f64, edge: bool| -> Run {
        let tally = Arc::new(Tally::default());
        let (a0, b0) = (cpu_seconds(pa), cpu_seconds(pb));
        let started = Instant::now();
        rt.block_on(watch(addr, viewers, started + span, tally.clone()));
        let secs = started.elapsed().as_secs_f64();
        let a_cpu = (cpu_seconds(pa) - a0) / secs - transcoding;
        let b_cpu = if edge {
            (cpu_seconds(pb) - b0) / secs
        } else {
            0.0
        };
        let objects = tally.objects.lock().map_or(0, |o| o.len());
        Run {
            requests_per_s: tally.answered.load(Ordering::Relaxed) as f64 / secs,
            cpu_per_1000: (a_cpu.max(0.0) + b_cpu) * 1000.0 / viewers as f64,
            failed: tally.failed.load(Ordering::Relaxed),
            objects,
        }
    };
    println!("edge_fanout: {seconds} s per run; viewers {counts:?}; LL-HLS blocking reload + part");
    let mut req_ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut fetches = Vec::new();
    for &n in &counts {
        let transcoding = idle(());
        let before = proxied(&b);
        let edge = run(b.http, n, transcoding, true);
        let per_object = (proxied(&b) - before) / edge.objects.max(1) as f64;
        let owner = run(a.http, n, transcoding, false);
        let req_ratio = edge.requests_per_s / owner.requests_per_s.max(f64::MIN_POSITIVE);
        let cpu_ratio = edge.cpu_per_1000 / owner.cpu_per_1000.max(f64::MIN_POSITIVE);
        println!(
            "  {n:>5} viewers: edge {:.0} req/s, {:.3} CPU s/s per 1000 viewers, {per_object:.2} owner fetches per object ({} objects, {} failed); owner {:.0} req/s, {:.3} CPU s/s per 1000 ({} failed); ratios req/s {req_ratio:.2}, CPU {cpu_ratio:.2}",
            edge.requests_per_s,
            edge.cpu_per_1000,
            edge.objects,
            edge.failed,
            owner.requests_per_s,
            owner.cpu_per_1000,
            owner.failed,
        );
        req_ratios.push(req_ratio);
        cpu_ratios.push(cpu_ratio);
        fetches.push(per_object);
    }
    println!(
        "edge_fanout: median over {} viewer counts: edge/owner req/s {:.2}, CPU per viewer {:.2}, owner fetches per object {:.2}",
        counts.len(),
        median(req_ratios),
        median(cpu_ratios),
        median(fetches)
    );
    drop((a, b, redis));
}
