//! HEVC and AV1 over Enhanced RTMP, end to end: a real Enhanced RTMP encoder (the static
//! ffmpeg 7 that `scripts/ertmp-ffmpeg.sh` installs; Debian's ffmpeg 5.1 cannot send either over
//! RTMP) publishes libx265 or libaom to the real binary. The H.264 rungs are transcoded from it
//! and play in Chromium with hls.js; the source rung passes the stream through (`hvc1`, `av01`
//! in fMP4) with the CODECS string of its real configuration record; ffprobe reads both. And a
//! multitrack publish (E-RTMP v2, OBS's framing, made from two Debian ffmpeg encodes) is served
//! from its track 0, and with `rtmp.multitrack_passthrough` its track 1 is passed through as a
//! variant of its own, in step with the ladder; a track whose keyframes miss the cuts is dropped
//! while the rest goes on.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::hls::{parse_master, parse_media};
use support::publisher::{ffmpeg_flv_gop, ffmpeg_flv_sized, replay, Replay, Tag};
use support::{has_video, require_tool, wait_until, ChildGuard, Server, TempDir};

const LIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Enhanced RTMP publisher: `$FERROCAST_ERTMP_FFMPEG`, or where the install script puts it.
fn ertmp_ffmpeg() -> PathBuf {
    let path = std::env::var_os("FERROCAST_ERTMP_FFMPEG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/ferrocast-tools/ertmp-ffmpeg-0.7.0/ffmpeg"));
    assert!(
        path.is_file(),
        "no Enhanced RTMP publisher at {}; run scripts/install-deps.sh (or scripts/ertmp-ffmpeg.sh)",
        path.display()
    );
    path
}

/// libx265 with a keyframe every 2 s.
const HEVC: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-x265-params",
    "keyint=60:min-keyint=60:scenecut=0:log-level=error",
];

/// libaom in real-time mode with a keyframe every 2 s.
const AV1: &[&str] = &[
    "-c:v",
    "libaom-av1",
    "-usage",
    "realtime",
    "-cpu-used",
    "8",
    "-g",
    "60",
    "-keyint_min",
    "60",
    "-b:v",
    "600k",
];

/// libvpx in real-time mode with a keyframe every 2 s.
const VP9: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
    "-row-mt",
    "1",
    "-g",
    "60",
    "-keyint_min",
    "60",
    "-b:v",
    "600k",
];

/// ffmpeg 7 publishing 640x360 at 30 fps, encoded with `video`, and AAC, for `seconds`.
fn publish(dir: &TempDir, tag: &str, video: &[&str], url: &str, seconds: u32) -> ChildGuard {
    let stderr = dir.file(&format!("ffmpeg-{tag}.stderr"));
    let mut cmd = Command::new(ertmp_ffmpeg());
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(video)
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("ffmpeg stderr file"));
    ChildGuard::spawn(&format!("ffmpeg {tag}"), &mut cmd, Some(stderr))
}

/// The first video stream ffprobe finds in `file`.
fn ffprobe_stream(file: &Path) -> Value {
    let v = support::ffprobe(file);
    v["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .unwrap_or_else(|| panic!("no video stream in {}: {v}", file.display()))
}

/// Stream `main`'s `rung` playlist once it lists `n` segments (bounded by [`LIVE_TIMEOUT`]).
fn wait_segments(server: &Server, rung: &str, n: usize) -> support::hls::MediaPlaylist {
    wait_until(LIVE_TIMEOUT, &format!("{n} {rung} segments"), || {
        let r = server.get(&format!("/live/main/{rung}/index.m3u8"));
        (r.status == 200)
            .then(|| parse_media(&r.body))
            .filter(|pl| pl.segments.len() >= n)
    })
}

/// A rung's init segment and first two segments, written one after the other into a file.
fn fetch_rung(server: &Server, rung: &str) -> PathBuf {
    let pl = wait_segments(server, rung, 2);
    let init = pl.map_uri.clone().expect("EXT-X-MAP");
    let mut bytes = server
        .get_bytes(&format!("/live/main/{rung}/{init}"))
        .body
        .to_vec();
    for seg in pl.segments.iter().take(2) {
        let r = server.get_bytes(&format!("/live/main/{rung}/{}", seg.uri));
        assert_eq!(r.status, 200, "{rung}/{}", seg.uri);
        bytes.extend_from_slice(&r.body);
    }
    let file = server.dir.file(&format!("{rung}.mp4"));
    std::fs::write(&file, bytes).expect("write media");
    file
}

/// What a publish must give: the API's codec and codec string (also the source variant's
/// CODECS), and ffprobe's codec name and tag for the source rung.
struct Expected {
    codec: &'static str,
    codec_string: &'static str,
    ffprobe_name: &'static str,
    ffprobe_tag: &'static str,
}

/// Publishes in `video` and checks the API, the master playlist, both rungs with ffprobe, and
/// Chromium playing the stream.
fn publish_and_check(tag: &str, video: &[&str], want: Expected) {
    require_tool("ffprobe", "-version");
    support::require_browser_tools();
    let server = Server::start(&[
        "--stream",
        "main=ertmp-key-main",
        "--set",
        "hls.segment_duration=2s",
        "--set",
        &support::player_assets_arg(),
    ]);
    let url = server.rtmp_url("ertmp-key-main");
    let _publisher = publish(&server.dir, tag, video, &url, 60);

    let p = server.wait_live("main", LIVE_TIMEOUT, |p| has_video(p, 640, 360));
    assert_eq!(p["video"]["codec"], want.codec, "{p}");
    assert_eq!(p["video"]["codec_string"], want.codec_string, "{p}");

    // The master playlist: the source rung passed through, its own variant; 360p in H.264.
    let master = wait_until(LIVE_TIMEOUT, "the master playlist with both rungs", || {
        let r = server.get("/live/main/index.m3u8");
        (r.status == 200 && parse_master(&r.body).len() >= 2).then_some(r.body)
    });
    let variants = parse_master(&master);
    let codecs = |uri: &str| {
        variants
            .iter()
            .find(|v| v.uri.starts_with(uri))
            .and_then(|v| v.attr("CODECS"))
            .unwrap_or_else(|| panic!("no {uri} variant with CODECS:\n{master}"))
            .to_owned()
    };
    let source_codecs = codecs("source/");
    assert!(
        source_codecs.starts_with(&format!("{},", want.codec_string)),
        "{master}"
    );
    assert!(codecs("360p/").starts_with("avc1."), "{master}");
    // Every variant at the publisher's 30 fps (AV1 and VP9 carry no timing of their own: the
    // rate comes from onMetaData, or an encoder's placeholder of 10^9 fps showed through).
    for v in &variants {
        let rate = v.number("FRAME-RATE");
        assert!(
            rate.is_some_and(|r| (29.0..=31.0).contains(&r)),
            "{}: {master}",
            v.uri
        );
    }

    // Chromium plays it; hls.js leaves out a variant it cannot decode.
    let player = support::play_in_background(&server, "main", "", tag, 8);

    let source = ffprobe_stream(&fetch_rung(&server, "source"));
    assert_eq!(source["codec_name"], want.ffprobe_name, "{source}");
    assert_eq!(source["codec_tag_string"], want.ffprobe_tag, "{source}");
    let size = (source["width"].as_u64(), source["height"].as_u64());
    assert_eq!(size, (Some(640), Some(360)), "{source}");
    let low = ffprobe_stream(&fetch_rung(&server, "360p"));
    assert_eq!(low["codec_name"], "h264", "{low}");
    assert_eq!(low["height"], 360, "{low}");

    let r = player.join().expect("the player");
    let advanced = r["advanced"].as_f64().unwrap_or(0.0);
    assert!(advanced > 4.0, "the page played {advanced} s: {r:#}");
    let end = &r["end"];
    assert!(end["errors"].as_array().is_some_and(Vec::is_empty), "{r:#}");
    assert!(end["videoError"].is_null(), "{r:#}");
    let width = end["videoWidth"].as_u64().unwrap_or(0);
    assert!(width > 0, "no picture: {r:#}");
    let logs = server.logs();
    assert!(!logs.contains("refusing stream"), "{logs}");
}

#[test]
fn hevc_over_enhanced_rtmp_is_transcoded_played_and_passed_through() {
    publish_and_check(
        "hevc",
        HEVC,
        Expected {
            codec: "hevc",
            codec_string: "hvc1.1.6.L63.90",
            ffprobe_name: "hevc",
            ffprobe_tag: "hvc1",
        },
    );
}

#[test]
fn vp9_over_enhanced_rtmp_is_transcoded_played_and_passed_through() {
    publish_and_check(
        "vp9",
        VP9,
        Expected {
            codec: "vp9",
            codec_string: "vp09.00.21.08",
            ffprobe_name: "vp9",
            ffprobe_tag: "vp09",
        },
    );
}

#[test]
fn av1_over_enhanced_rtmp_is_transcoded_played_and_passed_through() {
    publish_and_check(
        "av1",
        AV1,
        Expected {
            codec: "av1",
            codec_string: "av01.0.01M.08",
            ffprobe_name: "av1",
            ffprobe_tag: "av01",
        },
    );
}

/// A legacy AVC video tag (x264 from Debian's ffmpeg) as an E-RTMP v2 multitrack message that
/// carries one track, `id`: the framing OBS's multitrack output ("Enhanced Broadcasting") sends.
fn as_one_track(tag: &Tag, id: u8) -> Tag {
    let b = &tag.body;
    let (frame_type, packet_type) = (b[0] >> 4, b[1]);
    // AVCPacketType 0, 1 and 2 are SequenceStart, CodedFrames and SequenceEnd, in that order.
    let mut body = vec![0x80 | (frame_type << 4) | 6, packet_type];
    body.extend_from_slice(b"avc1");
    body.push(id);
    if packet_type == 1 {
        body.extend_from_slice(&b[2..5]);
    }
    body.extend_from_slice(&b[5..]);
    Tag {
        kind: tag.kind,
        ts: tag.ts,
        body,
    }
}

/// A multitrack publish of two encodes of one source, as OBS sends them: 640x360 on track 0
/// with a keyframe a second, 320x180 on track 1 with one every `gop_1` frames (30 fps) and its
/// frames only from `from_ms` on (its configuration at the start), and track 0's audio; each
/// track's configuration first.
fn multitrack_tags_from(server: &Server, gop_1: u32, from_ms: u32) -> Vec<Tag> {
    let main = ffmpeg_flv_sized(&server.dir, "track0", "640x360", 8);
    let other = ffmpeg_flv_gop(&server.dir, "track1", "320x180", 8, gop_1);
    let mut tags: Vec<Tag> = main
        .iter()
        .map(|t| {
            if t.kind == 9 {
                as_one_track(t, 0)
            } else {
                t.clone()
            }
        })
        .chain(
            other
                .iter()
                .filter(|t| t.kind == 9 && (t.ts >= from_ms || t.is_config()))
                .map(|t| as_one_track(t, 1)),
        )
        .collect();
    // A stable sort: at one time, track 0's tags before track 1's; configurations first.
    let is_config = |t: &Tag| t.kind == 9 && t.body[0] & 0x0f == 6 && t.body[1] == 0;
    tags.sort_by_key(|t| (t.ts, !is_config(t)));
    tags
}

/// A server (2 s segments; `--set` each of `settings`) and a replay of [`multitrack_tags`] to it,
/// in real time, once the stream is live at track 0's size.
fn multitrack_publish(settings: &[&str], gop_1: u32, from_ms: u32) -> (Server, Replay) {
    let mut args = vec![
        "--stream",
        "main=multitrack-key",
        "--set",
        "hls.segment_duration=2s",
    ];
    for s in settings {
        args.extend(["--set", s]);
    }
    let server = Server::start(&args);
    let tags = multitrack_tags_from(&server, gop_1, from_ms);
    let replay = replay(server.rtmp, "multitrack-key", tags, |t| {
        Some(i64::from(t.ts))
    });
    server.wait_live("main", LIVE_TIMEOUT, |p| has_video(p, 640, 360));
    (server, replay)
}

/// The ladder's restarts for a configuration change so far.
fn config_change_restarts(server: &Server) -> f64 {
    server.metrics().value(
        "ferrocast_pipeline_restarts_total",
        &[("stream", "main"), ("reason", "config_change")],
    )
}

#[test]
fn a_multitrack_publish_is_served_from_its_track_0() {
    let (server, replay) = multitrack_publish(&[], 30, 0);
    wait_segments(&server, "360p", 2);
    let sent = replay.join(Duration::from_secs(30)).expect("the replay");
    assert!(sent > 400, "{sent} tags sent");
    // Track 1's 320x180 never reached the ladder: it would have restarted it.
    let restarts = config_change_restarts(&server);
    assert_eq!(
        restarts, 0.0,
        "the other track's configuration reached the ladder"
    );
    let master = server.get("/live/main/index.m3u8").body;
    assert!(!master.contains("track1/"), "{master}");
    let logs = server.logs();
    assert!(!logs.contains("refusing stream"), "{logs}");
}

#[test]
fn a_multitrack_publish_serves_its_other_track_passed_through() {
    require_tool("ffprobe", "-version");
    let (server, replay) = multitrack_publish(&["rtmp.multitrack_passthrough=1"], 30, 0);
    let master = wait_until(LIVE_TIMEOUT, "a track1 variant", || {
        let r = server.get("/live/main/index.m3u8");
        (r.status == 200 && r.body.contains("track1/")).then_some(r.body)
    });
    let variants = parse_master(&master);
    let track1 = variants
        .iter()
        .find(|v| v.uri.starts_with("track1/"))
        .unwrap_or_else(|| panic!("{master}"));
    assert_eq!(track1.resolution(), Some((320, 180)), "{master}");
    assert!(
        track1
            .attr("CODECS")
            .is_some_and(|c| c.starts_with("avc1.") && c.contains("mp4a")),
        "{master}"
    );
    for rung in ["source", "360p"] {
        assert!(
            variants
                .iter()
                .any(|v| v.uri.starts_with(&format!("{rung}/"))),
            "{master}"
        );
    }
    // The track passed through: x264's 320x180 as the publisher sent it, with the audio.
    let file = fetch_rung(&server, "track1");
    let probe = support::ffprobe(&file);
    let streams = probe["streams"].as_array().expect("streams");
    let video = ffprobe_stream(&file);
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert!(
        streams.iter().any(|s| s["codec_type"] == "audio"),
        "{probe}"
    );
    // Its segments are the other rungs': the same numbers, the same durations. The rungs are
    // read one after the other (and the transcoded one lags a little): compare the segments
    // both list, once they list three.
    let segments = |rung: &str| {
        parse_media(&server.get(&format!("/live/main/{rung}/index.m3u8")).body)
            .segments
            .iter()
            .map(|s| (s.uri.clone(), (s.duration * 10.0).round() as i64))
            .collect::<Vec<_>>()
    };
    let (main, other) = wait_until(LIVE_TIMEOUT, "three segments of 360p and track1", || {
        let (main, other) = (segments("360p"), segments("track1"));
        let common: Vec<(String, i64)> = main
            .iter()
            .filter(|(uri, _)| other.iter().any(|(u, _)| u == uri))
            .cloned()
            .collect();
        (common.len() >= 3).then_some((common, other))
    });
    let other: Vec<(String, i64)> = other
        .into_iter()
        .filter(|(uri, _)| main.iter().any(|(u, _)| u == uri))
        .collect();
    assert_eq!(main, other, "360p and track1 differ");

    let sent = replay.join(Duration::from_secs(30)).expect("the replay");
    assert!(sent > 400, "{sent} tags sent");
    let restarts = config_change_restarts(&server);
    assert_eq!(
        restarts, 0.0,
        "a restart for a track present from the start"
    );
    let logs = server.logs();
    assert!(!logs.contains("no longer served"), "{logs}");
}

#[test]
fn a_track_that_starts_late_joins_with_one_restart() {
    // Track 1's configuration comes at once, its frames 3 s later.
    let (server, replay) = multitrack_publish(&["rtmp.multitrack_passthrough=1"], 30, 3000);
    let master = wait_until(LIVE_TIMEOUT, "a track1 variant", || {
        let r = server.get("/live/main/index.m3u8");
        (r.status == 200 && r.body.contains("track1/")).then_some(r.body)
    });
    let track1 = parse_master(&master)
        .into_iter()
        .find(|v| v.uri.starts_with("track1/"))
        .unwrap_or_else(|| panic!("{master}"));
    assert_eq!(track1.resolution(), Some((320, 180)), "{master}");
    wait_segments(&server, "track1", 2);
    let sent = replay.join(Duration::from_secs(30)).expect("the replay");
    assert!(sent > 400, "{sent} tags sent");
    let restarts = config_change_restarts(&server);
    assert_eq!(restarts, 1.0, "{}", server.logs());
}

#[test]
fn a_track_whose_keyframes_miss_the_cuts_is_shed_and_the_rest_goes_on() {
    // Track 1's keyframes every 1.5 s: the cut at 2 s finds none. The overload policy acts
    // after 2 s behind: a stalled track's rung must not make it shed the ladder.
    let (server, replay) = multitrack_publish(
        &[
            "rtmp.multitrack_passthrough=1",
            "transcode.overload.shed_after=2s",
        ],
        45,
        0,
    );
    wait_until(LIVE_TIMEOUT, "the warning", || {
        server.logs().contains("its variant is shed").then_some(())
    });
    // Its segments become gaps from the next cut on, while the ladder goes on.
    wait_until(LIVE_TIMEOUT, "a gap in track1", || {
        let r = server.get("/live/main/track1/index.m3u8");
        (r.status == 200 && r.body.contains("#EXT-X-GAP")).then_some(())
    });
    let sent = replay.join(Duration::from_secs(30)).expect("the replay");
    assert!(sent > 400, "{sent} tags sent");
    let segments = parse_media(&server.get("/live/main/360p/index.m3u8").body)
        .segments
        .len();
    assert!(segments >= 3, "{segments} 360p segments");
    let m = server.metrics();
    for reason in ["behind_realtime", "input_dropping"] {
        let shed = m.value(
            "ferrocast_rung_sheds_total",
            &[("stream", "main"), ("reason", reason)],
        );
        assert_eq!(
            shed,
            0.0,
            "the ladder was shed ({reason}):\n{}",
            server.logs()
        );
    }
}
