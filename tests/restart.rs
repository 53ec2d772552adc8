//! Crash and restart: the server is killed with SIGKILL while hls.js plays in headless
//! Chromium, started again on the same ports, and the publisher reconnects. The same playlist
//! URLs go on with higher media sequence numbers (no URI names two contents), and the watch page
//! recovers by itself: no reload, no error left, playback carries on into the new publish.

#[path = "support/mod.rs"]
mod support;

use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::Duration;

use support::hls::{parse_media, MediaPlaylist};
use support::{ffmpeg_publish, player_assets_arg, require_browser_tools, wait_until, Server};

/// Wall seconds the page plays for once playback has started.
const PLAY_SECONDS: u32 = 48;

/// Wall seconds the page plays the first server's stream before that server is killed.
const BEFORE_KILL: u64 = 6;

fn free_tcp() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free TCP port");
    l.local_addr().unwrap().to_string()
}

fn free_udp() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a free UDP port");
    s.local_addr().unwrap().to_string()
}

fn source(server: &Server) -> Option<MediaPlaylist> {
    let r = server.get("/live/main/source/index.m3u8");
    (r.status == 200).then(|| parse_media(&r.body))
}

#[test]
fn after_sigkill_and_restart_the_same_playlists_go_on_and_the_player_recovers() {
    require_browser_tools();
    // Picked now and given to both runs: the player and the publisher come back to them.
    let (http, rtmp, srt) = (free_tcp(), free_tcp(), free_udp());
    let assets = player_assets_arg();
    let args = [
        "--http",
        &http,
        "--rtmp",
        &rtmp,
        "--srt",
        &srt,
        "--stream",
        "main=e2e-restart",
        "--set",
        "transcode.preset=ultrafast",
        "--set",
        "hls.segment_duration=2s",
        "--set",
        &assets,
    ];
    let mut first = Server::start(&args);
    let mut a = ffmpeg_publish(
        &first.dir,
        "a",
        &first.rtmp_url("e2e-restart"),
        "640x360",
        60,
    );
    let before = wait_until(Duration::from_secs(30), "two segments", || {
        source(&first).filter(|p| p.segments.len() >= 2)
    });

    let player = support::play_at(
        &http,
        "main",
        "",
        "restart",
        PLAY_SECONDS,
        Duration::from_secs(120),
    );
    // Let the page play the first publish for a while, then kill the server outright.
    player.wait_started(Duration::from_secs(60));
    thread::sleep(Duration::from_secs(BEFORE_KILL));
    let before = source(&first).unwrap_or(before);
    let last_before = before.last_msn().unwrap();
    first.process.signal("KILL");
    first.process.expect_exit(Duration::from_secs(10));
    // The publisher loses its connection and gives up; a real one reconnects, as B does.
    let status = a.expect_exit(Duration::from_secs(20));
    assert!(!status.success(), "ffmpeg kept publishing to a dead server");
    thread::sleep(Duration::from_secs(1));

    let second = Server::start(&args);
    let _b = ffmpeg_publish(
        &second.dir,
        "b",
        &second.rtmp_url("e2e-restart"),
        "640x360",
        60,
    );
    let after = wait_until(
        Duration::from_secs(30),
        "two segments after the restart",
        || source(&second).filter(|p| p.segments.len() >= 2),
    );
    assert!(
        after.first_msn().unwrap() > last_before,
        "sequence numbers after the restart ({:?}) do not go past the last one before ({last_before}):\n{}",
        after.first_msn(),
        after.text
    );

    let r = player.join().expect("the player thread");
    // The page met the outage: it recovered from a fatal error, or (when hls.js's own retries
    // outlasted the outage, as on a loaded machine) its requests were refused or reset.
    let refused = r["console"].as_array().is_some_and(|c| {
        c.iter()
            .filter_map(|l| l.as_str())
            .any(|l| l.contains("ERR_CONNECTION_REFUSED") || l.contains("ERR_CONNECTION_RESET"))
    });
    assert!(
        r["end"]["recovered"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
            || refused,
        "the page saw no failure to recover from, so the restart was not observed: {r:#}"
    );
    // Before the kill the page had played BEFORE_KILL s of the first publish (it is killed that
    // long after the page started playing) and had at most its LL-HLS buffer (about 2 s) of it
    // left, so 8 s or more came from the second. The outage and the page's recovery took up to
    // 21 s on a loaded machine, within 48 s.
    support::check_played_across(&r, BEFORE_KILL as f64 + 10.0, &second.logs());
}
