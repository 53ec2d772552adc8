//! End-to-end publisher audio quirks (issue 14): audio that stops for seconds, audio far ahead
//! of video in arrival order, and publishes without audio. Real media (ffmpeg's x264 and AAC,
//! replayed tag by tag over RTMP where a quirk is needed, ffmpeg itself otherwise), the real
//! binary, and Debian's Chromium playing the result.
//!
//! Needs ffmpeg, node with `npm ci --prefix tests/browser`, hls.js from `npm ci --prefix player`
//! and `/usr/bin/chromium`; `make test` installs them. A missing one fails with what to run.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hls::parse_media;
use support::publisher::{ffmpeg_flv, replay};
use support::{
    browser_report, require_browser_tools, require_tool, wait_until, ChildGuard, Server, TempDir,
};

/// The rungs of [`support::TWO_RUNG_LADDER`].
const RUNGS: [&str; 2] = ["source", "240p"];
/// `hls.segment_duration`.
const SEGMENT_S: f64 = 2.0;
/// Longest wall time between two new segments on a rung while the publisher sends: a segment's
/// worth plus the 1 s silence bound plus slack for two busy cores.
const MAX_SEGMENT_WAIT_S: f64 = 4.5;

/// A server with the two-rung ladder, stream `name` on `key`, and hls.js for the player.
/// Per rung, per media sequence number: when the segment was first listed, and its duration.
type Seen = BTreeMap<String, BTreeMap<u64, (Instant, f64)>>;

/// When each segment of each rung was first listed, and its duration: polled from the media
/// playlists every 200 ms on a thread of its own until `stop`.
struct SegmentWatch {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Seen>,
}

impl SegmentWatch {
    fn start(server: &Server, stream: &str, rungs: &[&str]) -> SegmentWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let http = server.http;
        let paths: Vec<(String, String)> = rungs
            .iter()
            .map(|r| (r.to_string(), format!("/live/{stream}/{r}/index.m3u8")))
            .collect();
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut seen = Seen::new();
            while !flag.load(Ordering::SeqCst) {
                for (rung, path) in &paths {
                    let r = support::http_get(http, path);
                    if r.status != 200 {
                        continue;
                    }
                    let now = Instant::now();
                    let pl = parse_media(&r.body);
                    let rung = seen.entry(rung.clone()).or_default();
                    for s in pl.segments {
                        rung.entry(s.msn).or_insert((now, s.duration));
                    }
                }
                thread::sleep(Duration::from_millis(200));
            }
            seen
        });
        SegmentWatch { stop, thread }
    }

    /// Stops polling; checks that every rung listed at least `min` segments, each new one within
    /// [`MAX_SEGMENT_WAIT_S`] of the previous, every complete one near the target duration. Returns
    /// the longest wait seen, per rung.
    fn check(self, min: usize, what: &str) -> BTreeMap<String, f64> {
        self.check_rungs(&RUNGS, min, what)
    }

    /// [`check`](Self::check) for `rungs`.
    fn check_rungs(self, rungs: &[&str], min: usize, what: &str) -> BTreeMap<String, f64> {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self.thread.join().expect("segment watch");
        let mut waits = BTreeMap::new();
        for &rung in rungs {
            let segs = seen.get(rung).cloned().unwrap_or_default();
            assert!(
                segs.len() >= min,
                "{what}: rung {rung} listed {} segments, want {min}: {segs:?}",
                segs.len()
            );
            let list: Vec<(Instant, f64)> = segs.values().copied().collect();
            // The first polls list a backlog at once, and the last segment is cut by the end.
            let mut longest: f64 = 0.0;
            for w in list.windows(2) {
                longest = longest.max(w[1].0.duration_since(w[0].0).as_secs_f64());
            }
            assert!(
                longest <= MAX_SEGMENT_WAIT_S,
                "{what}: rung {rung} waited {longest:.2} s for a segment (segments are \
                 {SEGMENT_S} s)"
            );
            for (msn, (_, d)) in segs.iter().take(segs.len().saturating_sub(1)) {
                assert!(
                    (SEGMENT_S * 0.75..=SEGMENT_S * 1.3).contains(d),
                    "{what}: rung {rung} segment {msn} lasts {d} s"
                );
            }
            waits.insert(rung.to_owned(), longest);
        }
        waits
    }
}

/// Plays `/watch/STREAM` with `engine` for `seconds` in Chromium; the report.
fn play(server: &Server, stream: &str, engine: &str, seconds: u32) -> Value {
    play_with(server, stream, engine, seconds, &[])
}

/// [`play`] with `env` for play.mjs.
fn play_with(
    server: &Server,
    stream: &str,
    engine: &str,
    seconds: u32,
    env: &[(&str, String)],
) -> Value {
    let url = format!("http://{}/watch/{stream}?engine={engine}", server.http);
    let shot = server.dir.file(&format!("{stream}-{engine}.png"));
    browser_report(
        &server.dir,
        &format!("play-{stream}-{engine}"),
        "play.mjs",
        &[
            &url,
            engine,
            &seconds.to_string(),
            &shot.display().to_string(),
        ],
        env,
        Duration::from_secs(u64::from(seconds) + 60),
    )
}

/// The page played for `seconds`: the clock advanced at least `min_advance`, without an error;
/// with a picture when `video`.
fn check_played(r: &Value, min_advance: f64, video: bool, server: &Server) {
    let ctx = || format!("{r:#}\nserver log:\n{}", server.logs());
    let end = &r["end"];
    let advanced = r["advanced"].as_f64().unwrap_or(0.0);
    assert!(
        advanced >= min_advance,
        "currentTime advanced {advanced:.2} s, want {min_advance} s: {}",
        ctx()
    );
    assert!(
        end["errors"].as_array().is_some_and(Vec::is_empty),
        "window.ferrocast.errors: {}",
        ctx()
    );
    assert!(end["videoError"].is_null(), "video.error: {}", ctx());
    if video {
        let frames = end["totalVideoFrames"].as_u64().unwrap_or(0);
        assert!(frames > 0, "no decoded frames: {}", ctx());
        assert!(
            end["videoWidth"].as_u64().unwrap_or(0) > 0,
            "no picture: {}",
            ctx()
        );
    }
}

fn wait_for_master(server: &Server, stream: &str) {
    let master = format!("/live/{stream}/index.m3u8");
    wait_until(Duration::from_secs(30), "the master playlist", || {
        (server.get(&master).status == 200).then_some(())
    });
}

/// ffmpeg audio stops for 5 s while video goes on: every rung keeps its cadence through the gap
/// (silence fills it after 1 s), and Chromium plays across it.
#[test]
fn audio_gap_keeps_every_rung_going_and_plays() {
    require_browser_tools();
    let config = TempDir::new("gap-config");
    let (stream, key) = ("gap", "e2e-gap-key");
    let server = support::two_rung_server(&config, stream, key);
    let tags = ffmpeg_flv(&server.dir, 30);
    let (gap_from, gap_to) = (8_000, 13_000);
    let dropped = tags
        .iter()
        .filter(|t| t.is_audio() && !t.is_config() && (gap_from..gap_to).contains(&t.ts))
        .count();
    assert!(dropped > 200, "the gap drops {dropped} audio tags");
    let publish = replay(server.rtmp, key, tags, |t| {
        (!(t.is_audio() && (gap_from..gap_to).contains(&t.ts))).then_some(i64::from(t.ts))
    });
    let started = Instant::now();
    wait_for_master(&server, stream);
    let watch = SegmentWatch::start(&server, stream, &RUNGS);
    // The silence counter, sampled while the publish lasts (it goes with the pipeline).
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (admin, flag) = (server.admin, sampling.clone());
        thread::spawn(move || {
            let mut most: f64 = 0.0;
            while flag.load(Ordering::SeqCst) {
                let r = support::http_get(admin, "/metrics");
                let m = support::Metrics::parse(&r.body);
                most = most.max(m.value(
                    "ferrocast_pipeline_audio_silence_frames_total",
                    &[("stream", "gap")],
                ));
                thread::sleep(Duration::from_millis(500));
            }
            most
        })
    };
    // The page joins a few seconds in and plays through the gap (8 s to 13 s of media, about
    // one segment behind the live edge).
    let r = play(&server, stream, "hlsjs", 20);
    eprintln!("hls.js across the gap: {r}");
    let sent = publish.join(Duration::from_secs(40)).expect("replay");
    sampling.store(false, Ordering::SeqCst);
    let silence = sampler.join().expect("metrics sampler");
    // 5 s of 1024-sample frames at 48 kHz (234) were silence, give or take the video frame
    // the fill stops at.
    assert!(
        (200.0..=240.0).contains(&silence),
        "{silence} silent frames for a 5 s gap\n{}",
        server.logs()
    );
    let waits = watch.check(10, "audio gap");
    eprintln!(
        "sent {sent} tags; {silence} silent frames; longest wait for a segment per rung: \
         {waits:?}; took {:?}",
        started.elapsed()
    );
    check_played(&r, 16.0, true, &server);
    let m = server.metrics();
    assert_eq!(
        m.value("ferrocast_pipeline_errors_total", &[("stream", stream)]),
        0.0,
        "{}",
        server.logs()
    );
}

/// Publishes 20 s of ffmpeg's media with each audio tag sent `early_ms` before its time
/// (negative: late), and checks that the stream lasts until the publisher stops, every rung
/// keeps its cadence, nothing fails, and `silence` holds for the silent frames pushed.
fn skewed_publish_keeps_every_rung_going(stream: &str, early_ms: i64, silence: fn(f64) -> bool) {
    let config = TempDir::new(&format!("{stream}-config"));
    let key = format!("e2e-{stream}-key");
    let server = support::two_rung_server(&config, stream, &key);
    let tags = ffmpeg_flv(&server.dir, 20);
    let publish = replay(server.rtmp, &key, tags, move |t| {
        Some(i64::from(t.ts) - if t.is_audio() { early_ms } else { 0 })
    });
    wait_for_master(&server, stream);
    let watch = SegmentWatch::start(&server, stream, &RUNGS);
    // Mid-publish, while the pipeline (and its counters) are there.
    thread::sleep(Duration::from_secs(12));
    let silent = server.metrics().value(
        "ferrocast_pipeline_audio_silence_frames_total",
        &[("stream", stream)],
    );
    let sent = publish.join(Duration::from_secs(40)).expect("replay");
    // The stream was live until the publisher stopped; its segments kept coming.
    let waits = watch.check(7, stream);
    eprintln!("{stream}: sent {sent} tags; {silent} silent frames by 12 s; longest wait for a segment per rung: {waits:?}");
    assert!(silence(silent), "{stream}: {silent} silent frames by 12 s");
    for rung in RUNGS {
        let pl = parse_media(
            &server
                .get(&format!("/live/{stream}/{rung}/index.m3u8"))
                .body,
        );
        let listed: f64 = pl.segments.iter().map(|s| s.duration).sum();
        let first = pl.first_msn().unwrap_or(0);
        assert!(
            listed + first as f64 * SEGMENT_S >= 17.0,
            "rung {rung} covers {listed} s after segment {first}:\n{}\n{}",
            pl.text,
            server.logs()
        );
    }
    let m = server.metrics();
    assert_eq!(
        m.value("ferrocast_pipeline_errors_total", &[("stream", stream)]),
        0.0,
        "{}",
        server.logs()
    );
}

/// Audio sent 3 s before its time (GStreamer's live flvmux sends it a part or so early): the
/// stream never ends early, every rung keeps its cadence, and no silence is needed.
#[test]
fn audio_three_seconds_ahead_keeps_every_rung_going() {
    skewed_publish_keeps_every_rung_going("ahead", 3000, |n| n == 0.0);
}

/// Audio sent 500 ms after its time, within the 1 s bound: kept as it is, no silence.
#[test]
fn audio_half_a_second_behind_keeps_every_rung_going() {
    skewed_publish_keeps_every_rung_going("behind", -500, |n| n == 0.0);
}

/// ffmpeg publishing `args` (its test sources already given) to `url` in real time.
fn ffmpeg(dir: &TempDir, tag: &str, url: &str, args: &[&str]) -> ChildGuard {
    require_tool("ffmpeg", "-version");
    let stderr = dir.file(&format!("ffmpeg-{tag}.stderr"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(args)
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("ffmpeg stderr file"));
    ChildGuard::spawn(&format!("ffmpeg {tag}"), &mut cmd, Some(stderr))
}

/// A publisher without audio (`-an`, as hardware encoders often are) plays.
#[test]
fn video_only_publish_plays() {
    require_browser_tools();
    let config = TempDir::new("vonly-config");
    let (stream, key) = ("vonly", "e2e-vonly-key");
    let server = support::two_rung_server(&config, stream, key);
    let _ffmpeg = ffmpeg(
        &server.dir,
        "video-only",
        &server.rtmp_url(key),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "40",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-an",
        ],
    );
    wait_for_master(&server, stream);
    let master = server.get(&format!("/live/{stream}/index.m3u8")).body;
    assert!(
        !master.contains("mp4a"),
        "a video-only master names audio:\n{master}"
    );
    let r = play(&server, stream, "hlsjs", 8);
    eprintln!("hls.js video only: {r}");
    check_played(&r, 5.0, true, &server);
}

/// A publisher without video (`-vn`) gets one audio-only rung, named after the passthrough
/// rendition, that Chromium plays.
#[test]
fn audio_only_publish_plays() {
    require_browser_tools();
    let config = TempDir::new("aonly-config");
    let (stream, key) = ("aonly", "e2e-aonly-key");
    let server = support::two_rung_server(&config, stream, key);
    let _ffmpeg = ffmpeg(
        &server.dir,
        "audio-only",
        &server.rtmp_url(key),
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "40",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-vn",
        ],
    );
    wait_for_master(&server, stream);
    let master = server.get(&format!("/live/{stream}/index.m3u8")).body;
    let variants = support::hls::parse_master(&master);
    assert_eq!(variants.len(), 1, "{master}");
    assert_eq!(variants[0].uri, "source/index.m3u8", "{master}");
    assert_eq!(variants[0].attr("CODECS"), Some("mp4a.40.2"), "{master}");
    assert!(variants[0].resolution().is_none(), "{master}");
    let watch = SegmentWatch::start(&server, stream, &["source"]);
    let r = play_with(
        &server,
        stream,
        "hlsjs",
        8,
        &[("PLAY_AUDIO_ONLY", "1".to_owned())],
    );
    eprintln!("hls.js audio only: {r}");
    check_played(&r, 5.0, false, &server);
    let waits = watch.check_rungs(&["source"], 3, "audio only");
    eprintln!("longest wait for a segment: {waits:?}");
}
