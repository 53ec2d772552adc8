//! A publisher whose timestamps jump (back to zero, as an encoder restart does, or an hour
//! ahead) keeps its stream: the ladder starts again on a new timeline, the same playlists go on
//! after one `EXT-X-DISCONTINUITY` with sequence numbers that carry on, and hls.js in headless
//! Chromium plays across the jump. The publisher replays an ffmpeg-made FLV over RTMP tag by tag
//! (`support::publisher`) with the timestamps rewritten from 10 s on; with a player, it holds
//! before the jump until the page plays (on a loaded machine Chromium took 14 s to play, after
//! the jump, and the page had too little media left to play).

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use support::publisher::{ffmpeg_flv, replay_held, Hold};
use support::{require_browser_tools, wait_until, TempDir};

/// Where the timestamps jump, ms of the original media.
const JUMP_AT: u32 = 10_000;

/// One publish at a time: each transcodes and one plays in Chromium.
fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Publishes 24 s of ffmpeg's media with every timestamp from [`JUMP_AT`] on moved by `shift`
/// ms, sent at its original time; checks the playlists (and, with `play`, Chromium) across the
/// jump.
fn jump_continues_the_stream(stream: &str, shift: i64, play: bool) {
    let _serial = serial();
    if play {
        require_browser_tools();
    }
    let config = TempDir::new(&format!("{stream}-config"));
    let key = format!("e2e-{stream}-key");
    let server = support::two_rung_server(&config, stream, &key);
    let mut tags = ffmpeg_flv(&server.dir, 24);
    let original: Vec<u32> = tags.iter().map(|t| t.ts).collect();
    for t in tags.iter_mut().filter(|t| t.ts >= JUMP_AT) {
        t.ts = u32::try_from(i64::from(t.ts) + shift).expect("timestamp in range");
    }
    let when: std::collections::HashMap<(u8, u32, usize), u32> = tags
        .iter()
        .zip(&original)
        .map(|(t, o)| ((t.kind, t.ts, t.body.len()), *o))
        .collect();
    // The player starts once the master playlist is there, after the replay did: the replay
    // holds until the player it is given says it plays.
    let playing: Arc<OnceLock<Box<dyn Fn() -> bool + Send + Sync>>> = Arc::default();
    let hold = play.then(|| {
        let playing = playing.clone();
        Hold {
            // A second before the jump: the page plays a little of the old timeline first.
            at_ms: i64::from(JUMP_AT) - 1000,
            ready: Box::new(move || playing.get().is_some_and(|p| p())),
            bound: Duration::from_secs(60),
        }
    });
    let publish = replay_held(
        server.rtmp,
        &key,
        tags,
        move |t| {
            when.get(&(t.kind, t.ts, t.body.len()))
                .map(|o| i64::from(*o))
        },
        hold,
    );
    let master = format!("/live/{stream}/index.m3u8");
    wait_until(Duration::from_secs(30), "the master playlist", || {
        (server.get(&master).status == 200).then_some(())
    });
    let player = play.then(|| support::play_in_background(&server, stream, "", "jump", 16));
    if let Some(p) = &player {
        let _ = playing.set(Box::new(p.started_check()));
    }

    // 24 s of media, and the hold's bound.
    let sent = publish.join(Duration::from_secs(120)).expect("replay");
    assert!(sent > 1000, "sent {sent} tags");
    // Right after the publisher leaves, the playlists wait for it (no ENDLIST yet).
    support::source_across_one_break(&server, stream, "jump");
    support::check_one_restart(&server, stream, &["source", "240p"], "timestamp_jump");

    if let Some(player) = player {
        let r = player.join().expect("the player thread");
        // The page played before the jump (the replay held for it), at most about 9 s of it.
        support::check_played_across(&r, 10.0, &server.logs());
    }
}

#[test]
fn timestamps_going_back_to_zero_continue_the_stream_and_play() {
    jump_continues_the_stream("back", -i64::from(JUMP_AT), true);
}

#[test]
fn timestamps_leaping_an_hour_ahead_continue_the_stream() {
    jump_continues_the_stream("ahead", 3_600_000, false);
}
