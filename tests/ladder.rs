//! End-to-end transcoding ladder: a real ffmpeg publish over RTMP, transcoded by the real binary
//! into every rung and served as CMAF HLS, checked the way a player and an operator see it:
//! the master playlist's attributes, each rung's media probed by ffprobe, rungs aligned segment
//! by segment, `#EXT-X-ENDLIST` after the publisher leaves, the metrics, and no thread or memory
//! growth over repeated publishes.
//!
//! The tests in this file run one at a time (see [`serial`]): each one transcodes a 720p stream
//! into four rungs, and two of them at once on a 2-core machine fall behind real time, which makes
//! segment timing, and so the assertions, depend on the machine's load rather than on the server.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hls::{parse_master, parse_media, MediaPlaylist};
use support::{ffmpeg_publish, ffprobe, require_tool, wait_until, Server};

/// The publish: 1280x720 at 30 fps, keyframes every 2 s (`-g 60` in `ffmpeg_publish`). The issue
/// asks for 1080p30, but a debug build decoding 1080p and encoding three rungs next to ffmpeg's
/// own 1080p encode did not keep real time on the 2-core machine (the realtime factor measured
/// 0.88 to 0.95 with `transcode.preset=ultrafast`), so segments came late and the test would
/// measure the machine. 720p still exercises every default rung: none is taller than the source.
const SOURCE: (u32, u32) = (1280, 720);

/// The default ladder for a 720p source: name, width, height.
const RUNGS: [(&str, u32, u32); 4] = [
    ("source", 1280, 720),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
];

const SEGMENT: f64 = 2.0;

/// One heavy test at a time in this binary; a failed test must not block the others.
fn serial() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server with the default ladder (ultrafast, 2 s segments) and `env`.
fn start_server(stream: &str, key: &str, env: &[(&str, &str)]) -> Server {
    Server::start_with_env(
        &[
            "--stream",
            &format!("{stream}={key}"),
            "--set",
            "transcode.preset=ultrafast",
            "--set",
            "hls.segment_duration=2s",
            // The playlists end 2 s after the publisher leaves (the default waits 30 s for it to
            // come back; tests/reconnect.rs covers that).
            "--set",
            "ingest.reconnect_window=2s",
            // Every rung is checked here, on a machine near its limit with this ladder: a rung
            // shed under load would be missing (tests/overload.rs covers shedding).
            "--set",
            "transcode.overload.shed=false",
        ],
        env,
    )
}

/// Waits for the master playlist (503 while the ladder starts, 404 until the publish arrives).
fn wait_master(server: &Server, stream: &str, timeout: Duration) -> support::HttpResponse {
    let path = format!("/live/{stream}/index.m3u8");
    let deadline = Instant::now() + timeout;
    loop {
        let r = server.get(&path);
        if r.status == 200 {
            return r;
        }
        assert!(
            matches!(r.status, 404 | 503),
            "GET {path}: unexpected {}: {}",
            r.status,
            r.body
        );
        assert!(
            Instant::now() < deadline,
            "GET {path} still {} after {timeout:?}: {}\nserver log:\n{}",
            r.status,
            r.body,
            server.logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn media_playlist(server: &Server, stream: &str, rung: &str) -> MediaPlaylist {
    let path = format!("/live/{stream}/{rung}/index.m3u8");
    let r = server.get(&path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl"),
        "GET {path}"
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"), "GET {path}");
    parse_media(&r.body)
}

/// Every rung's media playlist, fetched back to back.
fn snapshot(server: &Server, stream: &str) -> Vec<(&'static str, MediaPlaylist)> {
    RUNGS
        .iter()
        .map(|(rung, _, _)| (*rung, media_playlist(server, stream, rung)))
        .collect()
}

/// `30/1` → 30.0; `0/0` (unknown) → None.
fn rate(v: &Value) -> Option<f64> {
    let (n, d) = v.as_str()?.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d != 0.0 && n != 0.0).then(|| n / d)
}

/// Fetches `init.mp4` and the segments `msns` of a rung, checks their headers, and writes them
/// one after the other into a file in the server's temp dir.
fn fetch_media(
    server: &Server,
    stream: &str,
    rung: &str,
    pl: &MediaPlaylist,
) -> std::path::PathBuf {
    let init = pl
        .map_uri
        .clone()
        .unwrap_or_else(|| panic!("{rung}: no EXT-X-MAP:\n{}", pl.text));
    let mut bytes = Vec::new();
    let r = server.get_bytes(&format!("/live/{stream}/{rung}/{init}"));
    assert_eq!(r.status, 200, "{rung}/{init}");
    assert_eq!(r.header("content-type"), Some("video/mp4"), "{rung}/{init}");
    assert!(!r.body.is_empty(), "{rung}/{init} is empty");
    bytes.extend_from_slice(&r.body);
    for seg in pl.segments.iter().take(2) {
        let path = format!("/live/{stream}/{rung}/{}", seg.uri);
        let r = server.get_bytes(&path);
        assert_eq!(r.status, 200, "GET {path}");
        assert_eq!(
            r.header("content-type"),
            Some("video/iso.segment"),
            "GET {path}"
        );
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "GET {path}"
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(r.body.len() > 1000, "GET {path}: {} bytes", r.body.len());
        bytes.extend_from_slice(&r.body);
    }
    let file = server.dir.file(&format!("{rung}.mp4"));
    std::fs::write(&file, &bytes).expect("write media");
    file
}

/// EXTINF durations near the target: every one while live; after ENDLIST the last may be short.
fn check_durations(rung: &str, pl: &MediaPlaylist) {
    let n = pl.segments.len();
    for (i, s) in pl.segments.iter().enumerate() {
        if pl.ended && i + 1 == n {
            assert!(
                s.duration > 0.0 && s.duration <= SEGMENT + 0.5,
                "{rung}: last segment {} lasts {}:\n{}",
                s.msn,
                s.duration,
                pl.text
            );
            continue;
        }
        assert!(
            (s.duration - SEGMENT).abs() <= 0.5,
            "{rung}: segment {} lasts {} s, target {SEGMENT} s:\n{}",
            s.msn,
            s.duration,
            pl.text
        );
    }
}

/// Same media sequence numbers (up to one segment completing mid-fetch), and per msn the same
/// duration (±1 ms) and date. `exact`: no slack at all (final playlists).
fn check_aligned(snap: &[(&str, MediaPlaylist)], exact: bool) {
    let (ref_rung, reference) = &snap[0];
    let ranges: Vec<String> = snap
        .iter()
        .map(|(r, p)| format!("{r}: {:?}..={:?}", p.first_msn(), p.last_msn()))
        .collect();
    let first = snap.iter().filter_map(|(_, p)| p.first_msn());
    let last = snap.iter().filter_map(|(_, p)| p.last_msn());
    let (lo, hi) = (first.clone().max(), last.clone().min());
    let slack = if exact { 0 } else { 1 };
    let spread = |it: &mut dyn Iterator<Item = u64>| {
        let v: Vec<u64> = it.collect();
        v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0)
    };
    assert!(
        spread(&mut first.clone()) <= slack && spread(&mut last.clone()) <= slack,
        "rungs list different segments: {ranges:?}"
    );
    let (Some(lo), Some(hi)) = (lo, hi) else {
        panic!("a rung has no segment: {ranges:?}");
    };
    assert!(hi >= lo, "no segment in common: {ranges:?}");
    for msn in lo..=hi {
        let a = reference.segment(msn).expect("reference segment");
        for (rung, pl) in &snap[1..] {
            let b = pl
                .segment(msn)
                .unwrap_or_else(|| panic!("{rung} lacks segment {msn}: {ranges:?}"));
            assert!(
                (a.duration - b.duration).abs() <= 0.001,
                "segment {msn}: {ref_rung} lasts {} s, {rung} {} s\n{}\n{}",
                a.duration,
                b.duration,
                reference.text,
                pl.text
            );
            assert_eq!(
                a.pdt, b.pdt,
                "segment {msn}: PROGRAM-DATE-TIME of {ref_rung} and {rung} differ\n{}\n{}",
                reference.text, pl.text
            );
        }
    }
    // Every segment is dated, so players can line rungs up by wall clock.
    assert!(
        reference.segments.iter().all(|s| s.pdt.is_some()),
        "{ref_rung}: segments without PROGRAM-DATE-TIME:\n{}",
        reference.text
    );
}

fn realtime_factors(server: &Server, stream: &str) -> Vec<(String, f64)> {
    let m = server.metrics();
    RUNGS
        .iter()
        .map(|(rung, _, _)| {
            (
                (*rung).to_owned(),
                m.value(
                    "ferrocast_pipeline_realtime_factor",
                    &[("stream", stream), ("rung", rung)],
                ),
            )
        })
        .collect()
}

#[test]
fn ladder_is_probed_aligned_and_ended() {
    let _serial = serial();
    require_tool("ffprobe", "-version");
    let started = Instant::now();
    let stream = "ladder";
    let server = start_server(stream, "e2e-ladder-key", &[]);
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        stream,
        &server.rtmp_url("e2e-ladder-key"),
        &format!("{}x{}", SOURCE.0, SOURCE.1),
        14,
    );

    // Master playlist: one variant per rung with what a player needs to choose.
    let master = wait_master(&server, stream, Duration::from_secs(30));
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(master.header("cache-control"), Some("no-cache"));
    assert_eq!(master.header("access-control-allow-origin"), Some("*"));
    let variants = parse_master(&master.body);
    let uris: BTreeSet<&str> = variants.iter().map(|v| v.uri.as_str()).collect();
    let expected: BTreeSet<String> = RUNGS
        .iter()
        .map(|(r, _, _)| format!("{r}/index.m3u8"))
        .collect();
    assert_eq!(
        uris,
        expected.iter().map(String::as_str).collect(),
        "master playlist:\n{}",
        master.body
    );
    for (rung, w, h) in RUNGS {
        let v = variants
            .iter()
            .find(|v| v.uri == format!("{rung}/index.m3u8"))
            .expect("variant");
        let ctx = format!("{rung} in master playlist:\n{}", master.body);
        assert_eq!(v.resolution(), Some((w, h)), "{ctx}");
        let fps = v.number("FRAME-RATE").expect("FRAME-RATE");
        assert!((fps - 30.0).abs() < 0.01, "{ctx}");
        let codecs: Vec<&str> = v.attr("CODECS").expect("CODECS").split(',').collect();
        assert_eq!(codecs.len(), 2, "{ctx}");
        assert!(
            codecs[0].starts_with("avc1.") && codecs[0].len() == 11,
            "{ctx}"
        );
        assert_eq!(codecs[1], "mp4a.40.2", "{ctx}");
        let peak = v.number("BANDWIDTH").expect("BANDWIDTH");
        let average = v.number("AVERAGE-BANDWIDTH").expect("AVERAGE-BANDWIDTH");
        assert!(average > 0.0 && average <= peak, "{ctx}");
    }
    eprintln!("master playlist after {:?}", started.elapsed());

    // Two complete segments in every rung.
    wait_until(
        Duration::from_secs(20),
        "two segments in every rung",
        || {
            snapshot(&server, stream)
                .iter()
                .all(|(_, p)| p.segments.len() >= 2)
                .then_some(())
        },
    );
    // Every rung keeps real time at 720p: the factor (media seconds out per wall second, over
    // the last 5 s) reads about 1. A stalled rung decays towards 0, and a rung without the metric
    // reads 0 here; more than 1.5 would mean the meter counts media twice. The band is wide
    // because the machine is shared; it is a liveness check, not a speed measurement.
    let deadline = Instant::now() + Duration::from_secs(10);
    let factors = loop {
        let f = realtime_factors(&server, stream);
        let keeping_up = f.iter().all(|(_, x)| (0.7..=1.5).contains(x));
        if keeping_up || Instant::now() >= deadline {
            assert!(
                keeping_up,
                "a rung's realtime factor is outside 0.7..=1.5 for 10 s: {f:?}"
            );
            break f;
        }
        thread::sleep(Duration::from_millis(250));
    };
    eprintln!("realtime factors: {factors:?}");

    // Alignment while live: retry a few times for a snapshot where no segment completed mid-way.
    let mut snap = snapshot(&server, stream);
    for _ in 0..5 {
        let ranges: BTreeSet<_> = snap
            .iter()
            .map(|(_, p)| (p.first_msn(), p.last_msn()))
            .collect();
        if ranges.len() == 1 {
            break;
        }
        thread::sleep(Duration::from_millis(300));
        snap = snapshot(&server, stream);
    }
    check_aligned(&snap, false);

    // Each rung's media, as a player would fetch it, probed.
    for (rung, w, h) in RUNGS {
        let pl = &snap.iter().find(|(r, _)| *r == rung).expect("rung").1;
        check_durations(rung, pl);
        let file = fetch_media(&server, stream, rung, pl);
        let probe = ffprobe(&file);
        let streams = probe["streams"].as_array().expect("streams");
        let video = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .unwrap_or_else(|| panic!("{rung}: no video stream: {probe:#}"));
        assert_eq!(video["codec_name"], "h264", "{rung}: {video:#}");
        assert_eq!(video["width"], w, "{rung}: {video:#}");
        assert_eq!(video["height"], h, "{rung}: {video:#}");
        eprintln!(
            "{rung}: ffprobe {}x{} r_frame_rate {} avg_frame_rate {}",
            video["width"], video["height"], video["r_frame_rate"], video["avg_frame_rate"]
        );
        // Both rates: a wrong time base (the passthrough rung once said 3000/1) shows in one.
        for field in ["r_frame_rate", "avg_frame_rate"] {
            let fps = rate(&video[field]);
            assert!(
                fps.is_some_and(|f| (f - 30.0).abs() < 0.5),
                "{rung}: {field} is {}, expected 30/1: {video:#}",
                video[field]
            );
        }
        let audio = streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .unwrap_or_else(|| panic!("{rung}: no audio stream: {probe:#}"));
        assert_eq!(audio["codec_name"], "aac", "{rung}: {audio:#}");
    }

    // The publisher leaves: every rung ends, and the final playlists agree exactly.
    let status = ffmpeg.expect_exit(Duration::from_secs(40));
    assert!(
        status.success(),
        "ffmpeg: {status:?}\n{}\nserver log:\n{}",
        ffmpeg.stderr(),
        server.logs()
    );
    let finished = Instant::now();
    let last = wait_until(
        Duration::from_secs(15),
        "EXT-X-ENDLIST in every rung",
        || {
            let snap = snapshot(&server, stream);
            snap.iter().all(|(_, p)| p.ended).then_some(snap)
        },
    );
    eprintln!("ended {:?} after ffmpeg", finished.elapsed());
    check_aligned(&last, true);
    for (rung, pl) in &last {
        check_durations(rung, pl);
    }
    let listed: f64 = last[0].1.segments.iter().map(|s| s.duration).sum();
    eprintln!(
        "final playlists: msn {:?}..={:?}, {listed:.3} s listed",
        last[0].1.first_msn(),
        last[0].1.last_msn()
    );

    let m = server.metrics();
    for (rung, _, _) in RUNGS {
        let n = m.value(
            "ferrocast_hls_segments_total",
            &[("stream", stream), ("rung", rung)],
        );
        assert!(
            n > 0.0,
            "ferrocast_hls_segments_total for {rung}:\n{}",
            m.text
        );
    }
    assert_eq!(
        m.value("ferrocast_pipeline_errors_total", &[("stream", stream)]),
        0.0,
        "pipeline errors:\n{}",
        server.logs()
    );
    eprintln!("ladder test took {:?}", started.elapsed());
}

/// The server's thread count once it stops changing (GStreamer threads wind down after the
/// pipeline ends), bounded.
fn settled_threads(server: &Server) -> u64 {
    let mut last = server.proc_status("Threads");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = server.proc_status("Threads");
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn repeated_publishes_leak_no_threads_or_memory() {
    let _serial = serial();
    let started = Instant::now();
    let stream = "leak";
    let key = "e2e-leak-key";
    // glibc gives threads their own malloc arenas (up to 8 per core), and GStreamer starts fresh
    // threads for every publish; glibc also raises its mmap threshold after the first large
    // frame is freed, so later frames come from the heap and stay in the RSS after they are
    // freed. With the defaults (or with only two arenas) the RSS climbs for the first three to
    // five publishes before it levels off: measured over 14 publishes with two arenas, 103, 139,
    // 149, 154, 158, then 147..170 MiB; one CI run read 107, 122, 140, 153, 173. With two arenas
    // and fixed mmap and trim thresholds it reads 89, 91, 92, 94, 94, 96 MiB, so this test is
    // about leaks in the server rather than the allocator's policy.
    let server = start_server(
        stream,
        key,
        &[
            ("MALLOC_ARENA_MAX", "2"),
            ("MALLOC_MMAP_THRESHOLD_", "131072"),
            ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ],
    );
    const CYCLES: usize = 6;
    let playlist = format!("/live/{stream}/360p/index.m3u8");
    let mut previous = String::new();
    // (threads, VmRSS kB) after each cycle.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    for cycle in 1..=CYCLES {
        let mut ffmpeg = ffmpeg_publish(
            &server.dir,
            &format!("leak-{cycle}"),
            &server.rtmp_url(key),
            &format!("{}x{}", SOURCE.0, SOURCE.1),
            3,
        );
        let status = ffmpeg.expect_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "cycle {cycle}: ffmpeg {status:?}\n{}\nserver log:\n{}",
            ffmpeg.stderr(),
            server.logs()
        );
        server.wait_not_live(stream, Duration::from_secs(10));
        // This publish's playlists (not the previous one's, kept for hls.keep_ended) ended.
        let text = wait_until(
            Duration::from_secs(15),
            &format!("cycle {cycle}: a new ended playlist"),
            || {
                let r = server.get(&playlist);
                (r.status == 200 && r.body.contains("#EXT-X-ENDLIST") && r.body != previous)
                    .then_some(r.body)
            },
        );
        assert!(
            !parse_media(&text).segments.is_empty(),
            "cycle {cycle}: no segment:\n{text}"
        );
        previous = text;
        let threads = settled_threads(&server);
        let rss = server.proc_status("VmRSS");
        let segments = server.metrics().value(
            "ferrocast_hls_segments_total",
            &[("stream", stream), ("rung", "360p")],
        );
        assert!(segments > 0.0, "cycle {cycle}: no segment counted");
        eprintln!(
            "cycle {cycle}: {threads} threads, VmRSS {} MiB, 360p segments_total {segments} ({:?})",
            rss / 1024,
            started.elapsed()
        );
        samples.push((threads, rss));
    }

    // Threads: back to (about) where the first cycle left them; a few pool threads may come and
    // go, a leaked pipeline leaves dozens.
    let base = samples[0].0;
    for (i, (threads, _)) in samples.iter().enumerate().skip(1) {
        assert!(
            *threads <= base + 4,
            "cycle {}: {threads} threads, {base} after the first cycle: {samples:?}\nserver log:\n{}",
            i + 1,
            server.logs()
        );
    }
    // Memory: the median of the last three cycles against the first three. A leak of 6 MiB per
    // publish (a few frames of the source) exceeds the bound; a leaked pipeline is far more.
    let median = |window: &[(u64, u64)]| {
        let mut rss: Vec<u64> = window.iter().map(|(_, rss)| *rss).collect();
        rss.sort_unstable();
        rss[rss.len() / 2] as i64
    };
    let grown = median(&samples[CYCLES - 3..]) - median(&samples[..3]);
    assert!(
        grown <= 16 * 1024,
        "VmRSS (median of the last three cycles against the first three) grew {} MiB: {samples:?}",
        grown / 1024
    );
    eprintln!("leak loop took {:?}", started.elapsed());
}
