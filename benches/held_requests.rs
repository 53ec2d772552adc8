//! How many blocked LL-HLS playlist requests one Ferrocast instance holds, and what each costs.
//!
//! `cargo bench -p ferrocast --bench held_requests` (see benches/README.md for the knobs).
//!
//! 1. Ferrocast (the release binary) with a small ladder (passthrough source + 240p, x264
//!    ultrafast), `http.max_connections=20000`, and `hls.segment_duration` = `BENCH_SEGMENT`
//!    (default 6 s, so that a request two segments ahead is held long enough to open every
//!    connection and measure); ffmpeg publishes a 640x360 test pattern over RTMP.
//! 2. Baseline VmRSS of the server once the stream is live (after a warm-up of plain reloads).
//! 3. `BENCH_REQUESTS` (default 10000) keep-alive connections to 127.0.0.1, each sending
//!    `GET /live/bench/240p/index.m3u8?_HLS_msn=NEWEST+2&_HLS_part=0`: the first part of the
//!    segment after next, still within the two segments the server accepts, so every request
//!    blocks until it appears. Connections are opened 256 at a time (tokio, nonblocking).
//! 4. VmRSS while all of them are held, then every answer: status, and how long after the first
//!    answer the last one came (the fan-out when the part appears).
//!
//! The server's and this process's open-file limits are raised with `prlimit` when needed.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{ffmpeg_publish, http_get, proc_status, wait_until, Server, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Two rungs: the source repackaged, and one cheap x264 encode.
const LADDER: &str = support::TWO_RUNG_LADDER;

use support::env_or;

/// Raises this process's open-file limit (children inherit it).
fn raise_nofile(n: usize) {
    let pid = std::process::id().to_string();
    let ok = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:{n}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "held_requests: could not raise the open-file limit to {n} with prlimit; raise `ulimit -n` before running"
        );
    }
}

fn nofile_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("held_requests: bench");
        return;
    }
    let n: usize = env_or("BENCH_REQUESTS", 10_000);
    let segment: u64 = env_or("BENCH_SEGMENT", 6);
    if nofile_limit() < n + 2048 {
        raise_nofile(n + 4096);
    }
    println!(
        "held_requests: {n} blocked playlist requests, {segment} s segments, open-file limit {}",
        nofile_limit()
    );

    let config = TempDir::new("held-requests");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, LADDER).expect("write config");
    let path = path.display().to_string();
    let seg = format!("hls.segment_duration={segment}s");
    let server = Server::start(&[
        "--config",
        &path,
        "--log-level",
        "warn",
        "--stream",
        "bench=bench-held-key",
        "--set",
        "http.max_connections=20000",
        "--set",
        &seg,
    ]);
    let _ffmpeg = ffmpeg_publish(
        &server.dir,
        "held",
        &server.rtmp_url("bench-held-key"),
        "640x360",
        600,
    );
    let playlist = "/live/bench/240p/index.m3u8";
    // A first reload waits for the first segment, longer than the HTTP helper's 10 s with long
    // segments: wait for the publish, then for about one segment.
    server.wait_live("bench", Duration::from_secs(30), |_| true);
    std::thread::sleep(Duration::from_secs(segment + 3));
    wait_until(Duration::from_secs(60), "the 240p playlist", || {
        (http_get(server.http, playlist).status == 200).then_some(())
    });
    // Warm up: allocator arenas and buffers that any request touches.
    for _ in 0..200 {
        let _ = http_get(server.http, playlist);
    }
    let pid = server.process.pid();
    let rss_before = proc_status(pid, "VmRSS");
    let threads = proc_status(pid, "Threads");

    // The segment after next, right after a segment has begun: held for about two segment
    // durations, the longest the server allows.
    let newest = wait_until(
        Duration::from_secs(segment * 2 + 10),
        "a segment to begin",
        || newest_part(&http_get(server.http, playlist).body).filter(|(_, i)| *i == 0),
    )
    .0;
    let target = newest + 2;
    let path = format!("{playlist}?_HLS_msn={target}&_HLS_part=0");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results = rt.block_on(async {
        let gate = Arc::new(Semaphore::new(256));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let gate = gate.clone();
            let sent = sent.clone();
            let answered = answered.clone();
            let path = path.clone();
            let addr = server.http;
            tasks.push(tokio::spawn(async move {
                let r = blocked_request(addr, &path, &gate, &sent).await;
                answered.fetch_add(1, Ordering::SeqCst);
                r
            }));
        }
        // Held: everything sent, and give the server a moment to read the last requests.
        let deadline = Instant::now() + Duration::from_secs(segment * 3);
        while sent.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let open_time = started.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_held = proc_status(pid, "VmRSS");
        let held_threads = proc_status(pid, "Threads");
        let held_now = sent.load(Ordering::SeqCst) - answered.load(Ordering::SeqCst);
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        (open_time, rss_held, held_threads, held_now, out)
    });
    let (open_time, rss_held, held_threads, held_now, results) = results;
    let sent_all = sent.load(Ordering::SeqCst);

    let ok: Vec<&Answer> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|a| a.status == 200 && a.lists_target)
        .collect();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for r in &results {
        let key = match r {
            Ok(a) if a.status == 200 && a.lists_target => continue,
            Ok(a) => format!("HTTP {}", a.status),
            Err(e) => e.clone(),
        };
        *errors.entry(key).or_default() += 1;
    }
    let first = ok.iter().map(|a| a.at).min();
    let last = ok.iter().map(|a| a.at).max();
    let fan_out = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => Duration::ZERO,
    };
    let per_request = (rss_held as f64 - rss_before as f64) / held_now.max(1) as f64;
    println!(
        "  opened and sent {sent_all}/{n} requests in {:.2} s (blocking on part-{target}.0.m4s)",
        open_time.as_secs_f64()
    );
    println!(
        "  server VmRSS: {} MiB before, {} MiB with {held_now} held (+{:.1} MiB, {per_request:.1} KiB per held request); threads {threads} → {held_threads}",
        rss_before / 1024,
        rss_held / 1024,
        (rss_held as f64 - rss_before as f64) / 1024.0
    );
    println!(
        "  answers: {} × 200 listing the part, fan-out first→last answer {:.0} ms; other: {errors:?}",
        ok.len(),
        fan_out.as_secs_f64() * 1000.0
    );
    let verdict = if ok.len() == n {
        "all answered"
    } else {
        "NOT all answered"
    };
    println!(
        "held_requests: {held_now}/{n} held at once, {per_request:.1} KiB RSS per held request, {} / {n} answered 200 ({verdict}), fan-out {:.0} ms",
        ok.len(),
        fan_out.as_secs_f64() * 1000.0
    );
    drop(server);
}

/// The newest part listed, as (MSN, index).
fn newest_part(text: &str) -> Option<(u64, u32)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| {
            let uri = l.split("URI=\"").nth(1)?.split('"').next()?;
            let (msn, i) = uri
                .strip_prefix("part-")?
                .strip_suffix(".m4s")?
                .split_once('.')?;
            Some((msn.parse().ok()?, i.parse().ok()?))
        })
        .next_back()
}

struct Answer {
    status: u16,
    lists_target: bool,
    at: Instant,
}

async fn blocked_request(
    addr: SocketAddr,
    path: &str,
    gate: &Semaphore,
    sent: &AtomicUsize,
) -> Result<Answer, String> {
    let mut s = {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: held-requests\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {}", e.kind()))?;
        s
    };
    sent.fetch_add(1, Ordering::SeqCst);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let k = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {}", e.kind()))?;
            if k == 0 {
                return Err::<(), String>("closed before a full answer".into());
            }
            buf.extend_from_slice(&chunk[..k]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .map_err(|_| "no answer in 60 s".to_owned())??;
    let at = Instant::now();
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let target = path
        .split("_HLS_msn=")
        .nth(1)
        .and_then(|v| v.split('&').next())
        .unwrap_or("");
    Ok(Answer {
        status,
        lists_target: text.contains(&format!("part-{target}.0.m4s")),
        at,
    })
}
