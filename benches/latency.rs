//! Ingest-to-display latency of Low-Latency HLS with the software ladder, as hls.js in
//! low-latency mode shows it in Debian's headless Chromium.
//!
//! `cargo bench -p ferrocast --bench latency` (see benches/README.md for the knobs).
//!
//! 1. Ferrocast (the release binary) on loopback ports with `transcode.preset` (`BENCH_PRESET`,
//!    default `ultrafast`), the default ladder, 2 s segments and 334 ms parts (the defaults).
//! 2. A publisher: ffmpeg with a `BENCH_SIZE` (default 640x360) test pattern over RTMP, `-re`,
//!    or `BENCH_SOURCE=demo` for `ferrocast serve --demo`'s internal 720p test pattern.
//! 3. `tests/browser/llhls.mjs` plays `/watch/NAME?engine=hlsjs` for `BENCH_SECONDS` (default 60)
//!    and samples every 500 ms `Date.now() - hls.playingDate`: the wall clock against the
//!    EXT-X-PROGRAM-DATE-TIME of the frame at the playhead. The server dates media from the
//!    arrival of the first ingested frame, so this is ingest-to-display (the publisher's own
//!    encoder is not counted).
//! 4. Meanwhile this process polls the rung's media playlist every 20 ms and notes when each part
//!    first appears, against the wall time its last frame was ingested (PDT + offset + duration):
//!    the server-side delay (decode, scale, encode, mux, packaging). The rest is the player's
//!    hold-back and buffer.
//!
//! Prints per-phase figures and one summary line; target: median under 1.5 s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::hls::parse_attributes;
use support::{ffmpeg_publish, http_get, player_assets_arg, wait_until, Server};

use support::env_or;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("latency: bench");
        return;
    }
    let seconds: u32 = env_or("BENCH_SECONDS", 60);
    let preset: String = env_or("BENCH_PRESET", "ultrafast".to_owned());
    let size: String = env_or("BENCH_SIZE", "640x360".to_owned());
    let source: String = env_or("BENCH_SOURCE", "ffmpeg".to_owned());
    let demo = source == "demo";
    let stream = if demo { "demo" } else { "bench" };
    let key = "bench-latency-key";

    let assets = player_assets_arg();
    let preset_arg = format!("transcode.preset={preset}");
    let stream_arg = format!("{stream}={key}");
    let mut args = vec![
        "--log-level",
        "warn",
        "--set",
        &preset_arg,
        "--set",
        &assets,
        "--stream",
        &stream_arg,
    ];
    if demo {
        args.push("--demo");
    }
    let server = Server::start(&args);
    let _publisher = (!demo).then(|| {
        ffmpeg_publish(
            &server.dir,
            "latency",
            &server.rtmp_url(key),
            &size,
            seconds + 120,
        )
    });

    let master = format!("/live/{stream}/index.m3u8");
    let text = wait_until(Duration::from_secs(60), "the master playlist", || {
        let r = http_get(server.http, &master);
        (r.status == 200).then_some(r.body)
    });
    let rungs: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim_end_matches("/index.m3u8").to_owned())
        .collect();
    println!(
        "latency: source {} ({}), rungs {rungs:?}, preset {preset}, {seconds} s of playback",
        if demo { "--demo" } else { "ffmpeg" },
        if demo { "1280x720" } else { &size }
    );

    // Server-side delay, polled on the lowest rung (hls.js starts there) while the page plays.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let addr = server.http;
        let path = format!("/live/{stream}/{}/index.m3u8", rungs[0]);
        thread::spawn(move || part_delays(addr, &path, &stop))
    };

    let url = format!("http://{}/watch/{stream}?engine=hlsjs", server.http);
    let report = play(&server, &url, seconds);
    stop.store(true, Ordering::SeqCst);
    let (mut delays, part_target, phb) = poller.join().expect("poller");

    let samples = report["samples"].as_array().cloned().unwrap_or_default();
    let mut latency: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["latency"].as_f64())
        .collect();
    let mut hls_latency: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["hlsLatency"].as_f64())
        .collect();
    let mut buffer: Vec<f64> = samples
        .iter()
        .filter_map(|s| s["bufferAhead"].as_f64())
        .collect();
    let target = samples.last().and_then(|s| s["targetLatency"].as_f64());
    let stalls = report["stalls"].as_array().map_or(0, Vec::len);
    let wall = report["wallSeconds"].as_f64().unwrap_or(0.0);
    let advanced = report["advanced"].as_f64().unwrap_or(0.0);
    assert!(!latency.is_empty(), "no latency samples: {}", report["end"]);

    // The latency over time, every 5 s, to show drift.
    println!("  t(s)  latency(s)  hls.latency(s)  buffer(s)  rung");
    for s in samples.iter().step_by(10) {
        println!(
            "  {:>4.0}  {:>10.3}  {:>14.3}  {:>9.2}  {}",
            s["t"].as_f64().unwrap_or(0.0) / 1000.0,
            s["latency"].as_f64().unwrap_or(f64::NAN),
            s["hlsLatency"].as_f64().unwrap_or(f64::NAN),
            s["bufferAhead"].as_f64().unwrap_or(f64::NAN),
            s["level"]
        );
    }
    let (lat_med, lat_p95) = (pct(&mut latency, 0.5), pct(&mut latency, 0.95));
    let lat_min = latency.first().copied().unwrap_or(f64::NAN);
    println!(
        "  playback: started in {} ms, {stalls} stalls, currentTime advanced {advanced:.2} s in {wall:.2} s (rate {:.3}), playlist requests {}",
        report["startMs"],
        advanced / wall.max(1e-9),
        report["playlistRequests"]
    );
    println!(
        "  ingest-to-display latency: median {lat_med:.3} s, p95 {lat_p95:.3} s, min {lat_min:.3} s ({} samples)",
        latency.len()
    );
    println!(
        "  hls.js: latency (to its live edge) median {:.3} s, target {} s; buffer ahead median {:.2} s",
        pct(&mut hls_latency, 0.5),
        target.map_or("?".to_owned(), |t| format!("{t:.3}")),
        pct(&mut buffer, 0.5)
    );
    println!(
        "  server: part target {part_target:.3} s, PART-HOLD-BACK {phb:.3} s; part published after its last frame was ingested: median {:.3} s, p95 {:.3} s ({} parts)",
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.95),
        delays.len()
    );
    let server_side = part_target + pct(&mut delays, 0.5);
    println!(
        "  breakdown of the median: part duration ~{part_target:.3} s + pipeline/packaging ~{:.3} s + player behind the newest part ~{:.3} s",
        pct(&mut delays, 0.5),
        lat_med - server_side
    );
    println!(
        "latency: median {lat_med:.3} s, p95 {lat_p95:.3} s (target < 1.5 s: {}), stalls {stalls}",
        if lat_med < 1.5 { "met" } else { "missed" }
    );
}

/// The `p` quantile (nearest rank) of `v`, sorting it.
fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
    v[i]
}

fn play(server: &Server, url: &str, seconds: u32) -> Value {
    let config = std::env::var("BENCH_HLS_CONFIG").unwrap_or_default();
    support::browser_report(
        &server.dir,
        "llhls",
        "llhls.mjs",
        &[url, &seconds.to_string()],
        &[("LLHLS_HLS_CONFIG", config)],
        Duration::from_secs(u64::from(seconds) + 120),
    )
}

/// Polls `path` every 20 ms until `stop`; for each part seen for the first time, how long after
/// the wall time of its end (segment PDT + earlier parts + its duration) it appeared. Also returns
/// PART-TARGET and PART-HOLD-BACK.
fn part_delays(addr: std::net::SocketAddr, path: &str, stop: &AtomicBool) -> (Vec<f64>, f64, f64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut delays = Vec::new();
    let (mut part_target, mut phb) = (f64::NAN, f64::NAN);
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let r = http_get(addr, path);
        let now = SystemTime::now();
        if r.status == 200 {
            let mut pdt: Option<f64> = None;
            for line in r.body.lines() {
                if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                    part_target = parse_attributes(v)
                        .get("PART-TARGET")
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(f64::NAN);
                } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                    phb = parse_attributes(v)
                        .get("PART-HOLD-BACK")
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(f64::NAN);
                } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                    pdt = epoch_secs(v);
                } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                    let a = parse_attributes(v);
                    let d: f64 = a
                        .get("DURATION")
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0.0);
                    let uri = a.get("URI").cloned().unwrap_or_default();
                    if let Some(start) = pdt {
                        let end = start + d;
                        // Parts already there at the first poll appeared at an unknown time.
                        if seen.insert(uri) && !first {
                            delays.push(unix(now) - end);
                        }
                        pdt = Some(end);
                    }
                }
            }
            first = false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    (delays, part_target, phb)
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `2026-11-28T17:13:03.419Z` → seconds since the Unix epoch.
fn epoch_secs(s: &str) -> Option<f64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let ss: f64 = t.next()?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}
