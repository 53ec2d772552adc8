//! A publisher that leaves and comes back within `ingest.reconnect_window` continues the same
//! playlists: no `EXT-X-ENDLIST` while it is gone, an `EXT-X-DISCONTINUITY` where it came back,
//! sequence numbers without a gap, and hls.js in headless Chromium plays across it without a
//! reload. Once for RTMP and once for SRT, with ffmpeg as the publisher.

#[path = "support/mod.rs"]
mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::hls::{parse_media, MediaPlaylist};
use support::{
    ffmpeg_publish, ffmpeg_srt, player_assets_arg, require_browser_tools, srt_addr, srt_url,
    wait_until, ChildGuard, Server,
};

/// Wall seconds the page plays for once playback has started.
const PLAY_SECONDS: u32 = 30;
/// How long the publisher stays away.
const AWAY: Duration = Duration::from_secs(3);

fn source(server: &Server) -> Option<MediaPlaylist> {
    let r = server.get("/live/main/source/index.m3u8");
    (r.status == 200).then(|| parse_media(&r.body))
}

fn publish(server: &Server, tag: &str, protocol: &str, seconds: u32) -> ChildGuard {
    match protocol {
        "rtmp" => ffmpeg_publish(
            &server.dir,
            tag,
            &server.rtmp_url("e2e-reconnect"),
            "640x360",
            seconds,
        ),
        _ => ffmpeg_srt(
            &server.dir,
            tag,
            &srt_url(srt_addr(server), "e2e-reconnect", ""),
            "640x360",
            seconds,
        ),
    }
}

/// One browser test at a time: two Chromiums and four encodes do not fit on 2 cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn reconnect_continues_the_playlists(protocol: &str) {
    let _serial = serial();
    require_browser_tools();
    let server = Server::start(&[
        "--stream",
        "main=e2e-reconnect",
        "--set",
        "transcode.preset=ultrafast",
        "--set",
        "hls.segment_duration=2s",
        "--set",
        &player_assets_arg(),
    ]);
    let mut first = publish(&server, "first", protocol, 14);
    let before = wait_until(
        Duration::from_secs(30),
        "two segments of the first publish",
        || source(&server).filter(|p| p.segments.len() >= 2),
    );
    assert!(!before.ended);

    // The viewer: hls.js plays the watch page while the publisher leaves and comes back.
    let player = support::play_in_background(&server, "main", "", "reconnect", PLAY_SECONDS);

    let status = first.expect_exit(Duration::from_secs(40));
    assert!(status.success(), "ffmpeg: {}", first.stderr());
    server.wait_not_live("main", Duration::from_secs(10));
    // While the publisher is away, the playlists stay open.
    let away_until = Instant::now() + AWAY;
    while Instant::now() < away_until {
        let p = source(&server).expect("the playlist is still served");
        assert!(
            !p.ended,
            "ENDLIST while the publisher was away:\n{}",
            p.text
        );
        thread::sleep(Duration::from_millis(200));
    }
    let last_before = source(&server).unwrap().last_msn().unwrap();

    let _second = publish(&server, "second", protocol, 40);
    let after = wait_until(
        Duration::from_secs(30),
        "two segments of the second publish",
        || source(&server).filter(|p| p.last_msn().is_some_and(|m| m >= last_before + 2)),
    );
    assert!(!after.ended, "{}", after.text);
    // Numbers carry on without a gap or a restart, and the change is marked.
    let msns: Vec<u64> = after.segments.iter().map(|s| s.msn).collect();
    assert!(
        msns.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers with a gap: {msns:?}\n{}",
        after.text
    );
    let text = &after.text;
    let disc = text
        .find("#EXT-X-DISCONTINUITY\n")
        .unwrap_or_else(|| panic!("no EXT-X-DISCONTINUITY after the reconnect:\n{text}"));
    let next_segment = text[disc..]
        .lines()
        .find(|l| l.starts_with("seg-"))
        .expect("a segment after the discontinuity");
    assert_eq!(
        next_segment,
        format!("seg-{}.m4s", last_before + 1),
        "the discontinuity is not where the second publish began:\n{text}"
    );
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");

    // The first publish had at most 14 s of media, most of it before the page started; playing
    // more than that means the page went on into the second publish's media by itself.
    let r = player.join().expect("the player thread");
    support::check_played_across(&r, 14.0, &server.logs());
}

#[test]
fn rtmp_reconnect_continues_the_playlists_and_playback() {
    reconnect_continues_the_playlists("rtmp");
}

#[test]
fn srt_reconnect_continues_the_playlists_and_playback() {
    reconnect_continues_the_playlists("srt");
}
