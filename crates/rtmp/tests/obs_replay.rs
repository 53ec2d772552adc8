//! Replays every byte OBS Studio 29 sent in a real publish session (see
//! `tests/fixtures/rtmp/README.md`) into a `ServerSession`.

use proptest::prelude::*;
use rtmp::{Event, ServerConfig, ServerSession};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/rtmp/obs29.client.bin"
);

fn capture() -> Vec<u8> {
    std::fs::read(CAPTURE).unwrap_or_else(|e| {
        panic!(
            "cannot read the OBS capture at {CAPTURE}: {e}. It is part of the repository, in \
             tests/fixtures/rtmp/ under the repository root; restore it from git."
        )
    })
}

/// Feeds `pieces` in order, accepting the publish as soon as it is asked for, and returns the
/// events and everything the session transmitted.
fn replay<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Event>, Vec<u8>) {
    let mut s = ServerSession::new(ServerConfig::default(), [42; 32]);
    let mut events = Vec::new();
    let mut sent = Vec::new();
    for piece in pieces {
        s.handle_input(piece).expect("the OBS capture decodes");
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::Publish { .. }) {
                s.accept_publish();
            }
            events.push(e);
        }
        while let Some(b) = s.poll_transmit() {
            sent.extend_from_slice(&b);
        }
    }
    (events, sent)
}

#[test]
fn obs29_publish_session() {
    let data = capture();
    // Socket-sized reads, so that the publish is accepted before the capture's end.
    let (events, sent) = replay(data.chunks(16 * 1024));

    assert_eq!(events[0], Event::HandshakeDone);
    match &events[1] {
        Event::Connect {
            app,
            tc_url,
            flash_ver,
            ..
        } => {
            assert_eq!(app, "live");
            assert!(tc_url.as_deref().unwrap().ends_with("/live"));
            assert_eq!(
                flash_ver.as_deref(),
                Some("FMLE/3.0 (compatible; FMSc/1.0)")
            );
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    match &events[2] {
        Event::Publish {
            stream_id,
            app,
            name,
            query,
            publish_type,
        } => {
            assert_eq!((*stream_id, app.as_str()), (1, "live"));
            assert_eq!(name, "obs-stream-key");
            assert_eq!(query, "");
            assert_eq!(publish_type, "live");
        }
        other => panic!("expected Publish, got {other:?}"),
    }
    match &events[3] {
        Event::Metadata { stream_id, values } => {
            assert_eq!(*stream_id, 1);
            assert_eq!(values.get("width").and_then(|v| v.as_number()), Some(640.0));
            assert_eq!(
                values.get("height").and_then(|v| v.as_number()),
                Some(360.0)
            );
        }
        other => panic!("expected Metadata, got {other:?}"),
    }
    assert_eq!(events.last(), Some(&Event::Unpublish { stream_id: 1 }));
    let unpublishes = events
        .iter()
        .filter(|e| matches!(e, Event::Unpublish { .. }))
        .count();
    assert_eq!(unpublishes, 1);

    let video: Vec<(u32, &[u8])> = events
        .iter()
        .filter_map(|e| match e {
            Event::Video { timestamp, data } => Some((*timestamp, &data[..])),
            _ => None,
        })
        .collect();
    let audio: Vec<(u32, &[u8])> = events
        .iter()
        .filter_map(|e| match e {
            Event::Audio { timestamp, data } => Some((*timestamp, &data[..])),
            _ => None,
        })
        .collect();
    assert_eq!(
        video[0].1[..2],
        [0x17, 0x00],
        "first video is the AVC sequence header"
    );
    assert_eq!(
        audio[0].1[..2],
        [0xAF, 0x00],
        "first audio is the AAC sequence header"
    );
    for track in [&video, &audio] {
        for w in track.windows(2) {
            assert!(
                w[0].0 <= w[1].0,
                "timestamps go back: {} -> {}",
                w[0].0,
                w[1].0
            );
        }
    }
    let video_span = video.last().unwrap().0 - video[0].0;
    let audio_span = audio.last().unwrap().0 - audio[0].0;
    assert!(
        (10_000..=14_000).contains(&video_span),
        "video spans {video_span} ms"
    );
    assert!(
        (10_000..=14_000).contains(&audio_span),
        "audio spans {audio_span} ms"
    );
    // 30 fps video, 48 kHz AAC (1024 samples a frame) for about 12 s.
    assert!(video.len() > 300, "{} video messages", video.len());
    assert!(audio.len() > 500, "{} audio messages", audio.len());
    // Keyframes every 2 s: 0x17 NALU packets.
    let keyframes = video.iter().filter(|(_, d)| d[..2] == [0x17, 0x01]).count();
    assert!((5..=8).contains(&keyframes), "{keyframes} keyframes");

    // The server answered: S0/S1/S2, then the connect sequence and Publish.Start.
    assert_eq!(sent[0], 3);
    let text = String::from_utf8_lossy(&sent);
    for needle in [
        "NetConnection.Connect.Success",
        "NetStream.Publish.Start",
        "NetStream.Unpublish.Success",
    ] {
        assert!(text.contains(needle), "transmit lacks {needle}");
    }
    eprintln!(
        "OBS capture: {} events, {} video, {} audio, {video_span} ms video, {keyframes} keyframes",
        events.len(),
        video.len(),
        audio.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]
    /// Any split of the capture gives the same events as feeding it whole.
    #[test]
    fn obs29_split_invariance(mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        let data = capture();
        let (whole, _) = replay([&data[..]]);
        let mut points: Vec<usize> = cuts.drain(..).map(|i| i.index(data.len())).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&data[last..p]);
            last = p;
        }
        pieces.push(&data[last..]);
        let (split, _) = replay(pieces);
        prop_assert_eq!(whole, split);
    }

    /// Small pieces near the start (handshake and commands) are where splits bite.
    #[test]
    fn obs29_split_invariance_head(sizes in proptest::collection::vec(1usize..200, 1..60)) {
        let data = capture();
        let (whole, _) = replay([&data[..]]);
        let mut pieces = Vec::new();
        let mut pos = 0;
        for s in sizes {
            let end = (pos + s).min(data.len());
            pieces.push(&data[pos..end]);
            pos = end;
        }
        pieces.push(&data[pos..]);
        let (split, _) = replay(pieces);
        prop_assert_eq!(whole, split);
    }
}
