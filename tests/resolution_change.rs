//! A publisher that changes its output size mid-stream (OBS does when its output resolution is
//! changed; the new SPS/PPS come in a new AVC sequence header on the same connection) keeps its
//! stream: the ladder is rebuilt for the new size with the same rungs, the same playlists go on
//! after one `EXT-X-DISCONTINUITY` and a new init segment, sequence numbers carry on, and hls.js in
//! headless Chromium plays across the change. The publisher replays two ffmpeg-made FLVs, 640x360
//! then 480x270, back to back on one RTMP connection (`support::publisher`).

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::publisher::{ffmpeg_flv_sized, replay};
use support::{require_browser_tools, wait_until, TempDir};

/// Length of each half, ms.
const HALF_MS: u32 = 12_000;

#[test]
fn a_new_output_size_mid_stream_continues_the_playlists_and_plays() {
    require_browser_tools();
    let stream = "resize";
    let config = TempDir::new("resize-config");
    let key = "e2e-resize-key";
    let server = support::two_rung_server(&config, stream, key);
    let mut tags = ffmpeg_flv_sized(&server.dir, "first", "640x360", HALF_MS / 1000);
    let mut second = ffmpeg_flv_sized(&server.dir, "second", "480x270", HALF_MS / 1000);
    for t in &mut second {
        t.ts += HALF_MS;
    }
    assert!(
        second.iter().filter(|t| t.is_config()).count() == 2,
        "the second half starts with its own AVC and AAC sequence headers"
    );
    tags.extend(second);
    let publish = replay(server.rtmp, key, tags, |t| Some(i64::from(t.ts)));
    let master = format!("/live/{stream}/index.m3u8");
    wait_until(Duration::from_secs(30), "the master playlist", || {
        (server.get(&master).status == 200).then_some(())
    });
    let player = support::play_in_background(&server, stream, "", "resize", 16);

    let sent = publish.join(Duration::from_secs(60)).expect("replay");
    assert!(sent > 1000, "sent {sent} tags");
    let (pl, after) = support::source_across_one_break(&server, stream, "change");
    // The new size comes with a new init segment, named where it takes effect.
    let map = after
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no new EXT-X-MAP after the change:\n{}", pl.text));
    assert_ne!(map, "init.mp4", "{}", pl.text);
    let newest = pl.segments.last().expect("a segment");
    let mut media = server
        .get_bytes(&format!("/live/{stream}/source/{map}"))
        .body;
    assert!(!media.is_empty(), "{map} is empty");
    media.extend(
        server
            .get_bytes(&format!("/live/{stream}/source/{}", newest.uri))
            .body,
    );
    let probe_path = server.dir.file("after-change.mp4");
    std::fs::write(&probe_path, &media).expect("write the probe file");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(&probe_path)
        .output()
        .expect("ffprobe");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "480,270",
        "the source rung after the change: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The master playlist says what the source rung is now.
    let master = server.get(&master).body;
    let source_variant = support::hls::parse_master(&master)
        .into_iter()
        .find(|v| v.uri == "source/index.m3u8")
        .unwrap_or_else(|| panic!("no source variant:\n{master}"));
    assert_eq!(source_variant.resolution(), Some((480, 270)), "{master}");
    // Both rungs went on, each with one discontinuity.
    support::check_one_restart(&server, stream, &["source", "240p"], "config_change");
    let r = player.join().expect("the player thread");
    support::check_played_across(&r, 10.0, &server.logs());
}
