//! Back-pressure, bad input and error isolation, with real GStreamer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use media::cmaf::ChunkKind;
use media::{MediaFrame, MediaTime, VideoFrame};
use pipeline::testing::{generate, rss_kib, Source};
use pipeline::{Error, LadderConfig, PushResult, Rendition, StreamPipeline};

fn small_ladder() -> LadderConfig {
    LadderConfig {
        renditions: vec![
            Rendition::passthrough("source"),
            Rendition::transcode("144p", 144, 200, None),
        ],
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(1),
        part_duration: Some(Duration::from_millis(250)),
        max_queued_frames: 4,
    }
}

#[test]
fn full_queue_drops_and_resumes_at_a_keyframe() {
    let input = generate(&Source {
        width: 320,
        height: 180,
        seconds: 6,
        keyframe_interval: 15,
        ..Source::default()
    })
    .unwrap();
    // A slow consumer: every chunk takes 300 ms to "write" (eight chunks per media second), so
    // the pipeline backs up while frames arrive at twice real time.
    let sink = RecordingSink::with_delay(Duration::from_millis(300));
    let p = StreamPipeline::start(
        "slow",
        &input.video,
        input.audio.as_ref(),
        &small_ladder(),
        sink.clone(),
    )
    .unwrap();
    let rss0 = rss_kib();
    let mut after_drop = false;
    let mut resumed_on_keyframe = 0;
    let mut slowest_push = Duration::ZERO;
    let started = std::time::Instant::now();
    for f in &input.frames {
        let t = std::time::Instant::now();
        let r = p.push(f);
        slowest_push = slowest_push.max(t.elapsed());
        if let MediaFrame::Video(v) = f {
            match r {
                PushResult::Dropped => after_drop = true,
                PushResult::Queued if after_drop => {
                    assert!(v.keyframe, "video resumes only at a keyframe");
                    after_drop = false;
                    resumed_on_keyframe += 1;
                }
                PushResult::Queued => {}
                PushResult::Closed => panic!("pipeline closed"),
            }
            // Half a frame interval: twice real time.
            std::thread::sleep(Duration::from_micros(16_667));
        }
    }
    *sink.delay.lock().unwrap() = Duration::ZERO;
    let push_time = started.elapsed();
    let stats = p.stats();
    eprintln!(
        "pushed in {push_time:?}; {stats:?}; rss +{} KiB",
        rss_kib().saturating_sub(rss0)
    );
    assert!(
        slowest_push < Duration::from_millis(50),
        "push never blocks: {slowest_push:?}"
    );
    assert!(stats.video_dropped > 0, "a full queue drops");
    assert!(resumed_on_keyframe > 0);
    assert!(stats.video_frames_in > 0);
    p.finish();
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    // Output is still well formed: init then segments, each rung.
    for rung in 0..2 {
        let chunks: Vec<_> = rec
            .chunks
            .iter()
            .filter(|(r, _)| *r == rung)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(chunks[0].kind, ChunkKind::Init);
        assert!(chunks
            .iter()
            .skip(1)
            .any(|c| c.kind == ChunkKind::SegmentStart));
    }
}

#[test]
fn corrupt_codec_config_is_an_error_not_a_panic() {
    let input = generate(&Source {
        width: 320,
        height: 180,
        seconds: 1,
        audio: false,
        ..Source::default()
    })
    .unwrap();
    let mut video = input.video.clone();
    video.record = Bytes::from_static(&[1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 50, 0x67]);
    let sink = RecordingSink::new();
    match StreamPipeline::start("bad", &video, None, &small_ladder(), sink) {
        Err(Error::InvalidCodecConfig(m)) => eprintln!("rejected: {m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a corrupt avcC must be rejected"),
    }
    let mut ladder = small_ladder();
    ladder.preset = "nonsense".into();
    let sink = RecordingSink::new();
    assert!(matches!(
        StreamPipeline::start("bad", &input.video, None, &ladder, sink),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn garbage_frames_fail_the_stream_only() {
    let input = small_input(2);
    let sink = RecordingSink::new();
    let p = StreamPipeline::start(
        "garbage",
        &input.video,
        input.audio.as_ref(),
        &small_ladder(),
        sink.clone(),
    )
    .unwrap();
    // NAL length prefixes that overrun, random payloads, all claiming to be keyframes.
    let mut seed = 0x1234_5678u32;
    for i in 0..90 {
        let mut data = Vec::with_capacity(400);
        for _ in 0..400 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push((seed >> 24) as u8);
        }
        if i % 3 == 0 {
            data[..4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        }
        let t = MediaTime::from_millis(i * 33);
        let _ = p.push(&MediaFrame::Video(VideoFrame {
            dts: t,
            pts: t,
            keyframe: true,
            data: Bytes::from(data),
        }));
    }
    // Either the pipeline reports an error, or it conceals and ends normally: both are fine as
    // long as nothing panics and the call returns.
    let errored = sink.wait_for(Duration::from_secs(5), |r| !r.errors.is_empty());
    p.finish();
    let rec = sink.rec.lock().unwrap();
    eprintln!(
        "errored={errored}; errors={:?}; chunks={}",
        rec.errors,
        rec.chunks.len()
    );
    assert!(rec.errors.len() <= 1, "on_error is called at most once");

    // The process is fine: a good stream works afterwards.
    drop(rec);
    let sink = RecordingSink::new();
    let p = StreamPipeline::start(
        "good",
        &input.video,
        input.audio.as_ref(),
        &small_ladder(),
        sink.clone(),
    )
    .unwrap();
    for f in &input.frames {
        let _ = p.push(f);
        std::thread::sleep(Duration::from_millis(2));
    }
    p.finish();
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert!(rec
        .chunks
        .iter()
        .any(|(_, c)| c.kind == ChunkKind::SegmentStart));
}

#[test]
fn drop_without_finish_stops() {
    let input = small_input(1);
    let sink = RecordingSink::new();
    let p = StreamPipeline::start(
        "dropped",
        &input.video,
        input.audio.as_ref(),
        &small_ladder(),
        sink.clone(),
    )
    .unwrap();
    for f in &input.frames {
        let _ = p.push(f);
    }
    drop(p);
    let _ = Arc::strong_count(&sink);
}

#[test]
fn video_only_stream_is_muxed_alone() {
    let input = generate(&Source {
        width: 320,
        height: 180,
        seconds: 3,
        audio: false,
        ..Source::default()
    })
    .unwrap();
    let sink = RecordingSink::new();
    let mut ladder = small_ladder();
    ladder.max_queued_frames = 1000;
    let p = StreamPipeline::start("video-only", &input.video, None, &ladder, sink.clone()).unwrap();
    for f in &input.frames {
        assert_eq!(p.push(f), PushResult::Queued);
    }
    p.finish();
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert!(rec.infos.iter().all(|i| i.audio_codec.is_none()));
    let init = &rec.chunks.iter().find(|(r, _)| *r == 1).unwrap().1;
    assert_eq!(init.kind, ChunkKind::Init);
    assert_eq!(trak_count(&init.data), 1);
    assert!(
        rec.chunks
            .iter()
            .filter(|(r, c)| *r == 1 && c.kind == ChunkKind::SegmentStart)
            .count()
            >= 2
    );
}
