//! `transcode.direct_passthrough`: a passthrough-only stream repackaged by Ferrocast's own fMP4
//! writer instead of GStreamer. ffmpeg publishes H.264 with B-frames (as OBS's x264 does) and
//! AAC over RTMP; the LL-HLS output is read back by ffprobe, decoded by ffmpeg, and played by
//! hls.js in headless Chromium.

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{
    player_assets_arg, require_browser_tools, require_tool, wait_until, ChildGuard, Server, TempDir,
};

const STREAM: &str = "pt";
const KEY: &str = "pt-key";

/// The passthrough rung alone.
const LADDER: &str = r#"
[[transcode.renditions]]
name = "source"
passthrough = true
"#;

/// ffmpeg publishing 640x360 x264 (`veryfast`, two B-frames, a keyframe every 2 s) + AAC for
/// `seconds`, in real time.
fn publish(server: &Server, seconds: u32) -> ChildGuard {
    require_tool("ffmpeg", "-version");
    let stderr = server.dir.file("ffmpeg.stderr");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", "flv", &server.rtmp_url(KEY)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("ffmpeg stderr file"));
    ChildGuard::spawn("ffmpeg publish", &mut cmd, Some(stderr))
}

#[test]
fn a_passthrough_only_stream_goes_direct_and_plays_in_hlsjs() {
    require_browser_tools();
    let config = TempDir::new("direct-config");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, LADDER).expect("write config");
    let path = path.display().to_string();
    let stream = format!("{STREAM}={KEY}");
    let assets = player_assets_arg();
    let server = Server::start(&[
        "--config",
        &path,
        "--stream",
        &stream,
        "--set",
        "transcode.direct_passthrough=true",
        "--set",
        "hls.segment_duration=2s",
        "--set",
        "hls.low_latency=true",
        "--set",
        &assets,
    ]);
    let _ffmpeg = publish(&server, 60);
    let playlist = format!("/live/{STREAM}/source/index.m3u8");
    let pl = wait_until(Duration::from_secs(30), "two segments", || {
        let r = server.get(&playlist);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.media().count() >= 2)
    });
    let logs = server.logs();
    // (The log's field names may carry terminal colours.)
    assert!(
        logs.lines()
            .any(|l| l.contains("transcoding started") && l.contains("\"direct\"")),
        "{logs}"
    );
    assert!(pl.text.contains("#EXT-X-PART:"), "{}", pl.text);

    // The init segment and a whole segment read back as H.264 + AAC, every frame decoding.
    let init = server.get_bytes(&format!(
        "/live/{STREAM}/source/{}",
        pl.map_uri.as_deref().expect("EXT-X-MAP")
    ));
    let segment = pl.media().next().expect("a segment").uri.clone();
    let media = server.get_bytes(&format!("/live/{STREAM}/source/{segment}"));
    assert_eq!((init.status, media.status), (200, 200));
    let file = server.dir.file("segment.mp4");
    std::fs::write(&file, [init.body, media.body].concat()).expect("write segment");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args(["stream=codec_name,width,height,has_b_frames,nb_read_frames"])
        .args(["-of", "compact"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        text.contains("codec_name=h264|width=640|height=360|has_b_frames=2"),
        "{text}"
    );
    assert!(text.contains("codec_name=aac"), "{text}");
    // A 2 s segment at 30 fps.
    let frames: u64 = text
        .lines()
        .find(|l| l.contains("codec_name=h264"))
        .and_then(|l| l.rsplit("nb_read_frames=").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!((55..=65).contains(&frames), "{frames} frames: {text}");
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );

    // hls.js plays it, in low-latency mode, without an error. Meanwhile every playlist form
    // is fetched (plain, blocking for the hinted part, delta) for a strict parser.
    let player = support::play_at(
        server.http,
        STREAM,
        "",
        "direct",
        12,
        Duration::from_secs(60),
    );
    let playlists = collect_playlists(&server, &playlist, Duration::from_secs(10));
    let r = player.join().expect("the player");
    support::check_played_across(&r, 8.0, &server.logs());
    check_strictly(&server, &playlists);
}

/// The distinct texts of `path`'s playlist, plain, as a blocking reload for its hinted part and
/// as a delta update, fetched for `seconds`.
fn collect_playlists(server: &Server, path: &str, seconds: Duration) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut keep = |name: String, text: String| {
        if seen.insert(text.clone()) {
            out.push((name, text));
        }
    };
    let started = std::time::Instant::now();
    while started.elapsed() < seconds {
        let plain = server.get(path);
        assert_eq!(plain.status, 200, "{}", plain.body);
        let hint = plain.body.lines().find_map(|l| {
            let uri = l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-")?;
            let (msn, part) = uri.split_once(".m4s")?.0.split_once('.')?;
            Some((msn.to_owned(), part.to_owned()))
        });
        keep(path.to_owned(), plain.body);
        if let Some((msn, part)) = hint {
            let blocking = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
            let r = server.get(&blocking);
            assert_eq!(r.status, 200, "GET {blocking}: {}", r.body);
            keep(blocking, r.body);
        }
        let delta = format!("{path}?_HLS_skip=YES");
        let r = server.get(&delta);
        assert_eq!(r.status, 200, "GET {delta}: {}", r.body);
        keep(delta, r.body);
    }
    out
}

/// hls-parser in strict mode accepts every playlist; every part lasts at most the one
/// `PART-TARGET` they all announce.
fn check_strictly(server: &Server, playlists: &[(String, String)]) {
    assert!(playlists.len() >= 10, "{} playlists", playlists.len());
    let mut targets = std::collections::BTreeSet::new();
    for (name, text) in playlists {
        let target: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no PART-TARGET\n{text}"));
        targets.insert(target.to_bits());
        for l in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
            let d: f64 = l
                .split("DURATION=")
                .nth(1)
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}: {l}"));
            assert!(d <= target, "{name}: a part of {d} s over {target}\n{text}");
        }
    }
    assert_eq!(targets.len(), 1, "PART-TARGET changed");
    let entries: Vec<serde_json::Value> = playlists
        .iter()
        .map(|(name, text)| serde_json::json!({ "name": name, "text": text }))
        .collect();
    let file = server.dir.file("playlists.json");
    std::fs::write(&file, serde_json::Value::from(entries).to_string()).expect("write");
    let report = support::browser_report(
        &server.dir,
        "strict",
        "strict.mjs",
        &[&file.display().to_string()],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        report["checked"].as_u64(),
        Some(playlists.len() as u64),
        "{report}"
    );
    assert!(
        report["errors"].as_array().is_some_and(Vec::is_empty),
        "hls-parser (strict): {report:#}"
    );
}
