//! A viewer on a rung that is shed keeps watching: hls.js in headless Chromium plays the 360p
//! rung of a ladder without passthrough (360p + 240p), the 360p rung is shed through the test
//! builds' fault hook (`POST /testing/faults/shed/{stream}/{rung}`, the same path an overload
//! takes), and the player meets its `EXT-X-GAP` segments, moves to 240p and plays on.

#[path = "support/mod.rs"]
mod support;

use std::thread;
use std::time::Duration;

use support::hls::{parse_master, parse_media};
use support::{ffmpeg_publish, require_browser_tools, wait_until, Server, TempDir};

const LADDER: &str = r#"
[transcode]
preset = "ultrafast"

[[transcode.renditions]]
name = "360p"
height = 360
video_kbps = 900

[[transcode.renditions]]
name = "240p"
height = 240
video_kbps = 300

[[streams]]
name = "shed"
key = "e2e-shed-key"
"#;

#[test]
fn a_player_on_a_shed_rung_moves_to_another_and_plays_on() {
    require_browser_tools();
    let config = TempDir::new("shed-config");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, LADDER).expect("write config");
    let server = Server::start_with_env(
        &[
            "--config",
            path.to_str().expect("UTF-8 temp path"),
            "--set",
            "hls.segment_duration=2s",
            "--set",
            &support::player_assets_arg(),
        ],
        &[("TESTING_FERROCAST_FAULTS", "1")],
    );
    let _publisher = ffmpeg_publish(
        &server.dir,
        "shed",
        &server.rtmp_url("e2e-shed-key"),
        "640x360",
        50,
    );
    wait_until(Duration::from_secs(30), "the master playlist", || {
        (server.get("/live/shed/index.m3u8").status == 200).then_some(())
    });
    let player = support::play_in_background(&server, "shed", "&rung=360p", "shed", 24);
    // Shed 360p only once the page plays it: on a loaded machine Chromium took over 10 s to load
    // the page, and a rung shed before that is one the player never started on.
    let start = player.wait_started(Duration::from_secs(60));
    // The first level hls.js switched to: its bandwidth estimate may move it down between the
    // first frame (when the page lets it adapt) and the sample that saw playback start.
    assert_eq!(
        start["switches"][0], 360,
        "started on the rung asked for: {start:#}"
    );
    thread::sleep(Duration::from_secs(4));
    assert_eq!(server.post("/testing/faults/shed/shed/360p"), 202);
    assert_eq!(server.post("/testing/faults/shed/shed/nope"), 404);
    let media = wait_until(Duration::from_secs(10), "gaps in the 360p playlist", || {
        let r = server.get("/live/shed/360p/index.m3u8");
        (r.body.matches("#EXT-X-GAP").count() >= 2).then_some(r.body)
    });
    let master = server.get("/live/shed/index.m3u8").body;
    let uris: Vec<String> = parse_master(&master)
        .iter()
        .map(|v| v.uri.clone())
        .collect();
    assert_eq!(uris, ["240p/index.m3u8"], "{master}");
    // The gaps carry the numbers of the 240p rung's segments.
    let low = parse_media(&server.get("/live/shed/240p/index.m3u8").body);
    let shed = parse_media(&media);
    assert!(
        shed.last_msn()
            .zip(low.last_msn())
            .is_some_and(|(a, b)| a.abs_diff(b) <= 1),
        "360p:\n{media}\n240p:\n{}",
        low.text
    );
    let stream = server.stream("shed");
    let rung = stream["rungs"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "360p"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(rung["shed"], true, "{stream}");
    assert_eq!(rung["shed_reason"], "forced", "{stream}");

    let r = player.join().expect("the player thread");
    eprintln!(
        "player: level {} -> {}, switches {}, gaps met {}, advanced {} s",
        r["start"]["level"],
        r["end"]["level"],
        r["end"]["switches"],
        r["end"]["gaps"],
        r["advanced"]
    );
    let logs = server.logs();
    support::check_played_across(&r, 16.0, &logs);
    assert_eq!(
        r["start"]["level"], 360,
        "started on the rung asked for: {r:#}"
    );
    assert_eq!(r["end"]["level"], 240, "moved off the shed rung: {r:#}");
    assert!(
        r["end"]["gaps"].as_u64().is_some_and(|g| g >= 1),
        "hls.js met a gap: {r:#}"
    );
}
