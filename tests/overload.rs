//! Overload sheds rungs and never stalls: a 1080p60 publish with the default ladder at x264's
//! `medium` preset, which this 2-core machine cannot transcode in full. The server sheds rungs
//! (the master playlist drops them, their playlists list gaps, the API and the metrics say which
//! and why, the log says so once per shed), the source rung keeps its cadence once the shedding
//! has settled, the stream stays live, and the server's memory stays under a stated bound.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::hls::{parse_master, parse_media};
use support::{require_tool, wait_until, ChildGuard, Server, TempDir};

/// The server's resident memory stays under this, shedding or not (measured: see the README's
/// "Overload" section).
const RSS_BOUND_KIB: u64 = 512 * 1024;
/// `transcode.overload.shed_after` here: behind for this long sheds a rung.
const SHED_AFTER: &str = "4s";
/// Once nothing has been shed for this long, the source rung must keep its 2 s cadence.
const SETTLE: Duration = Duration::from_secs(12);

/// A 20 s clip of 1080p60 H.264 + AAC, a keyframe every 2 s, made once.
fn clip(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.file("clip-1080p60.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "120",
        ])
        .args([
            "-pix_fmt", "yuv420p", "-b:v", "6M", "-c:a", "aac", "-b:a", "128k",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "making the 1080p60 clip failed");
    path
}

/// Publishes the clip four times over (80 s), in real time, without re-encoding.
fn publish(dir: &TempDir, clip: &std::path::Path, url: &str) -> ChildGuard {
    let stderr = dir.file("ffmpeg-publish.stderr");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-stream_loop", "3", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("stderr file"));
    ChildGuard::spawn("ffmpeg publish", &mut cmd, Some(stderr))
}

/// What one look at the server saw.
struct Look {
    at: Instant,
    /// Newest segment of the source rung.
    source_msn: Option<u64>,
    /// Rungs the API says are shed, with the reason.
    shed: BTreeMap<String, String>,
    rss_kib: u64,
}

#[test]
fn overload_sheds_rungs_and_the_source_rung_keeps_its_cadence() {
    require_tool("ffmpeg", "-version");
    let server = Server::start(&[
        "--stream",
        "big=overload-key",
        "--set",
        "transcode.preset=medium",
        "--set",
        "hls.segment_duration=2s",
        "--set",
        &format!("transcode.overload.shed_after={SHED_AFTER}"),
    ]);
    let clip = clip(&server.dir);
    let mut publisher = publish(&server.dir, &clip, &server.rtmp_url("overload-key"));
    server.wait_live("big", Duration::from_secs(20), |p| {
        p["video"]["width"] == 1920
    });
    wait_until(Duration::from_secs(30), "the master playlist", || {
        (server.get("/live/big/index.m3u8").status == 200).then_some(())
    });
    let all_rungs: Vec<String> = parse_master(&server.get("/live/big/index.m3u8").body)
        .iter()
        .map(|v| v.uri.trim_end_matches("/index.m3u8").to_owned())
        .collect();
    assert_eq!(all_rungs.len(), 4, "source and three transcoded rungs");

    let started = Instant::now();
    let mut looks: Vec<Look> = Vec::new();
    // What a shed rung looked like while shed: (rung, master playlist, its media playlist).
    let mut seen_shed: Option<(String, String, String, f64)> = None;
    let mut last_change = Instant::now();
    let mut last_shed_set = BTreeMap::new();
    while started.elapsed() < Duration::from_secs(75) {
        let stream = server.stream("big");
        assert_eq!(
            stream["live"],
            true,
            "the stream went off air: {stream}\n{}",
            server.logs()
        );
        let shed: BTreeMap<String, String> = stream["rungs"]
            .as_array()
            .expect("rungs in the API")
            .iter()
            .filter(|r| r["shed"] == true)
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["shed_reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if shed != last_shed_set {
            last_change = Instant::now();
            last_shed_set = shed.clone();
        }
        if let (None, Some(rung)) = (&seen_shed, shed.keys().next()) {
            let master = server.get("/live/big/index.m3u8").body;
            let media = server.get(&format!("/live/big/{rung}/index.m3u8")).body;
            let gauge = server
                .metrics()
                .value("ferrocast_rung_shed", &[("stream", "big"), ("rung", rung)]);
            let source_msn =
                parse_media(&server.get("/live/big/source/index.m3u8").body).last_msn();
            if shed.contains_key(rung) && media.contains("#EXT-X-GAP") {
                // Its gaps keep its sequence numbers in step with the source rung's.
                let shed_msn = parse_media(&media).last_msn();
                let (a, b) = (shed_msn.unwrap_or(0), source_msn.unwrap_or(0));
                assert!(
                    a.abs_diff(b) <= 1 && a > 0,
                    "{rung} at segment {a}, the source at {b}:\n{media}"
                );
                seen_shed = Some((rung.clone(), master, media, gauge));
            }
        }
        let source = server.get("/live/big/source/index.m3u8");
        let source_msn = (source.status == 200)
            .then(|| parse_media(&source.body).last_msn())
            .flatten();
        looks.push(Look {
            at: Instant::now(),
            source_msn,
            shed,
            rss_kib: server.proc_status("VmRSS"),
        });
        // Enough seen: something was shed, and the set has been steady for the settle time and
        // 20 s more.
        if seen_shed.is_some() && last_change.elapsed() >= SETTLE + Duration::from_secs(20) {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let logs = server.logs();

    // Something was shed, never the source, and while shed it was out of the master playlist,
    // listed as gaps, and its gauge read 1.
    let (rung, master, media, gauge) = seen_shed.unwrap_or_else(|| {
        panic!("no rung was shed in 75 s of an overloaded 1080p60 publish\n{logs}")
    });
    assert!(
        looks.iter().all(|l| !l.shed.contains_key("source")),
        "the source rung was shed"
    );
    let listed: Vec<String> = parse_master(&master)
        .iter()
        .map(|v| v.uri.clone())
        .collect();
    assert!(
        !listed.contains(&format!("{rung}/index.m3u8")),
        "{rung} still in the master:\n{master}"
    );
    assert!(listed.contains(&"source/index.m3u8".to_owned()), "{master}");
    assert!(media.contains("#EXT-X-GAP\n#EXTINF:"), "{media}");
    assert!(!media.contains("#EXT-X-ENDLIST"), "{media}");
    assert_eq!(gauge, 1.0);
    let reasons: Vec<&String> = looks.iter().flat_map(|l| l.shed.values()).collect();
    assert!(
        reasons
            .iter()
            .all(|r| *r == "behind_realtime" || *r == "input_dropping"),
        "{reasons:?}"
    );

    // Each shed was logged once, and counted.
    let metrics = server.metrics();
    let counted: f64 = ["behind_realtime", "input_dropping"]
        .iter()
        .map(|r| {
            metrics.value(
                "ferrocast_rung_sheds_total",
                &[("stream", "big"), ("reason", r)],
            )
        })
        .sum();
    let logged = logs.matches("overloaded: rung shed").count();
    assert!(counted >= 1.0, "{}", metrics.text);
    assert_eq!(logged as f64, counted, "one log line per shed\n{logs}");

    // The source rung: once the shedding settled, a new segment at least every 4.5 s (2 s
    // segments), and about one every 2 s over the last 20 s.
    let settled_at = looks
        .windows(2)
        .filter(|w| w[0].shed != w[1].shed)
        .map(|w| w[1].at)
        .next_back()
        .unwrap_or(started)
        + SETTLE;
    let after: Vec<&Look> = looks.iter().filter(|l| l.at >= settled_at).collect();
    assert!(
        after.len() >= 30,
        "too little time after the shedding settled: {}",
        after.len()
    );
    let mut last_advance = after[0].at;
    let mut longest = Duration::ZERO;
    for w in after.windows(2) {
        if w[1].source_msn > w[0].source_msn {
            last_advance = w[1].at;
        }
        longest = longest.max(w[1].at - last_advance);
    }
    assert!(
        longest <= Duration::from_millis(4_500),
        "the source rung stalled for {longest:?} after the shedding settled\n{logs}"
    );
    let (first, last) = (after[0], after[after.len() - 1]);
    let made = last.source_msn.unwrap_or(0) - first.source_msn.unwrap_or(0);
    let secs = (last.at - first.at).as_secs_f64();
    assert!(
        made as f64 >= secs / 2.0 * 0.85,
        "the source rung made {made} segments in {secs:.1} s"
    );
    // Its newest segment is served.
    let source = parse_media(&server.get("/live/big/source/index.m3u8").body);
    let newest = source.segments.last().expect("a source segment");
    assert_eq!(
        server
            .get_bytes(&format!("/live/big/source/{}", newest.uri))
            .status,
        200
    );

    // Memory stays bounded throughout.
    let peak = looks.iter().map(|l| l.rss_kib).max().unwrap_or(0);
    eprintln!(
        "shed {:?}; source stall after settling at most {longest:?}; peak RSS {peak} KiB",
        last.shed
    );
    assert!(peak > 0 && peak <= RSS_BOUND_KIB, "peak RSS {peak} KiB");

    publisher.signal("KILL");
    let _ = publisher.wait_timeout(Duration::from_secs(5));
}
