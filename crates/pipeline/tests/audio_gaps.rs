//! Publisher audio quirks with real GStreamer: audio that stops for seconds while video goes
//! on, and audio sent far ahead of video.

mod common;

use std::time::{Duration, Instant};

use common::*;
use media::cmaf::ChunkKind;
use media::{MediaFrame, MediaTime};
use pipeline::testing::{generate, Source};
use pipeline::{LadderConfig, PushResult, Rendition, StreamPipeline};

fn ladder(part: Option<Duration>) -> LadderConfig {
    LadderConfig {
        renditions: vec![
            Rendition::passthrough("source"),
            Rendition::transcode("144p", 144, 200, None),
        ],
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(1),
        part_duration: part,
        max_queued_frames: 120,
    }
}

/// Media end (s) of the newest chunk of `rung`.
fn media_end(sink: &RecordingSink, rung: usize) -> f64 {
    sink.chunks_of(rung)
        .iter()
        .filter(|c| c.kind != ChunkKind::Init)
        .map(|c| (c.pts + c.duration).as_nanos() as f64 / 1e9)
        .fold(0.0, f64::max)
}

/// Pushes `frames` in arrival order at `speed` times real time (paced by video), and returns
/// the worst lag (s) of any rung's output behind the video pushed so far, sampled after each
/// video frame once 2 s are in.
fn push_paced(p: &StreamPipeline, sink: &RecordingSink, frames: &[MediaFrame], speed: f64) -> f64 {
    let start = Instant::now();
    let mut first: Option<i64> = None;
    let mut worst: f64 = 0.0;
    for f in frames {
        if let MediaFrame::Video(v) = f {
            let t = v.dts.as_nanos();
            let t0 = *first.get_or_insert(t);
            let due = Duration::from_nanos(((t - t0) as f64 / speed) as u64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            let pushed = (t - t0) as f64 / 1e9;
            if pushed > 2.0 {
                for rung in 0..2 {
                    worst = worst.max(pushed - media_end(sink, rung));
                }
            }
        }
        assert_ne!(p.push(f), PushResult::Closed, "pipeline closed");
    }
    worst
}

/// Segment durations (s) of `rung`, complete segments only (the last may be cut short).
fn segment_durations(sink: &RecordingSink, rung: usize) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for c in sink.chunks_of(rung) {
        let d = c.duration.as_nanos() as f64 / 1e9;
        match c.kind {
            ChunkKind::Init => {}
            ChunkKind::SegmentStart => out.push(d),
            _ => {
                if let Some(last) = out.last_mut() {
                    *last += d;
                }
            }
        }
    }
    out.pop();
    out
}

/// Runs `frames` through the two-rung ladder at twice real time; returns the worst output lag
/// and the stats, after checking that nothing failed and every segment is near 1 s.
fn run(
    name: &str,
    input: &pipeline::testing::Generated,
    audio: Option<&media::AudioConfig>,
    frames: &[MediaFrame],
) -> (f64, pipeline::PipelineStats) {
    let sink = RecordingSink::new();
    let p = StreamPipeline::start(
        name,
        &input.video,
        audio,
        &ladder(Some(Duration::from_millis(250))),
        sink.clone(),
    )
    .unwrap();
    let worst = push_paced(&p, &sink, frames, 2.0);
    let stats = p.stats();
    p.finish();
    eprintln!("{name}: worst lag {worst:.2} s; {stats:?}");
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{name}: {:?}", rec.errors);
    drop(rec);
    for rung in 0..2 {
        let d = segment_durations(&sink, rung);
        assert!(d.len() >= 6, "{name} rung {rung}: segments {d:?}");
        assert!(
            d.iter().all(|d| (0.9..=1.2).contains(d)),
            "{name} rung {rung}: segment durations {d:?}"
        );
    }
    (worst, stats)
}

fn input(seconds: u32) -> pipeline::testing::Generated {
    generate(&Source {
        width: 320,
        height: 180,
        seconds,
        keyframe_interval: 15,
        ..Source::default()
    })
    .unwrap()
}

/// `frames` without the audio in `[from, to)` ms.
fn without_audio(frames: &[MediaFrame], from: i64, to: i64) -> Vec<MediaFrame> {
    let gap = MediaTime::from_millis(from)..MediaTime::from_millis(to);
    frames
        .iter()
        .filter(|f| !matches!(f, MediaFrame::Audio(a) if gap.contains(&a.pts)))
        .cloned()
        .collect()
}

/// `frames` in arrival order with audio sent `ms` early (negative: late).
fn audio_shifted(frames: &[MediaFrame], ms: i64) -> Vec<MediaFrame> {
    let mut frames = frames.to_vec();
    frames.sort_by_key(|f| match f {
        MediaFrame::Audio(a) => a.pts.as_nanos() - ms * 1_000_000,
        other => other.dts().unwrap_or_default().as_nanos(),
    });
    frames
}

#[test]
fn four_second_audio_gap_is_filled_with_silence() {
    let input = input(10);
    let frames = without_audio(&input.frames, 3000, 7000);
    let (worst, stats) = run("gap", &input, input.audio.as_ref(), &frames);
    // Without the fill every rung stalled for the whole gap (4.4 s behind the input).
    assert!(worst < 2.0, "output fell {worst:.2} s behind the input");
    // 4 s of 1024-sample frames at 48 kHz: 187.5.
    assert!(
        (180..=190).contains(&stats.audio_silence_frames),
        "{stats:?}"
    );
    assert_eq!(stats.audio_dropped, 0, "{stats:?}");
}

#[test]
fn audio_that_never_comes_is_silence() {
    let input = input(8);
    let frames: Vec<MediaFrame> = input
        .frames
        .iter()
        .filter(|f| !matches!(f, MediaFrame::Audio(_)))
        .cloned()
        .collect();
    let (worst, stats) = run("no-audio", &input, input.audio.as_ref(), &frames);
    assert!(worst < 2.0, "output fell {worst:.2} s behind the input");
    assert!(stats.audio_silence_frames > 300, "{stats:?}");
}

#[test]
fn audio_three_seconds_ahead_of_video_is_accepted() {
    let input = input(10);
    let frames = audio_shifted(&input.frames, 3000);
    let (worst, stats) = run("ahead", &input, input.audio.as_ref(), &frames);
    assert!(worst < 1.0, "output fell {worst:.2} s behind the input");
    assert_eq!(
        (stats.audio_dropped, stats.audio_silence_frames),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn audio_half_a_second_behind_video_is_kept() {
    let input = input(10);
    let frames = audio_shifted(&input.frames, -500);
    let (worst, stats) = run("behind", &input, input.audio.as_ref(), &frames);
    assert!(worst < 1.5, "output fell {worst:.2} s behind the input");
    assert_eq!(
        (stats.audio_dropped, stats.audio_silence_frames),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn mp3_audio_gap_is_filled_with_silence() {
    let mut input = input(10);
    let (mp3, audio) = pipeline::testing::generate_mp3(&Source {
        seconds: 10,
        ..Source::default()
    })
    .unwrap();
    input.frames.retain(|f| !matches!(f, MediaFrame::Audio(_)));
    input.frames.extend(audio);
    input.frames.sort_by_key(|f| f.dts().unwrap_or_default());
    let frames = without_audio(&input.frames, 3000, 7000);
    let (worst, stats) = run("mp3-gap", &input, Some(&mp3), &frames);
    assert!(worst < 2.0, "output fell {worst:.2} s behind the input");
    // 4 s of 1152-sample frames at 44.1 kHz: 153.
    assert!(
        (145..=156).contains(&stats.audio_silence_frames),
        "{stats:?}"
    );
}

#[test]
fn audio_only_stream_is_cut_into_segments() {
    let input = input(6);
    let audio = input.audio.clone().unwrap();
    let sink = RecordingSink::new();
    let mut ladder = ladder(Some(Duration::from_millis(250)));
    ladder.max_queued_frames = 1000;
    let p = StreamPipeline::start_audio_only(
        "audio-only",
        &audio,
        &ladder,
        sink.clone(),
        &pipeline::StartOptions::default(),
    )
    .unwrap();
    assert_eq!(p.rungs().len(), 1);
    assert_eq!(p.rungs()[0].name, "source");
    for f in &input.frames {
        let r = p.push(f);
        match f {
            MediaFrame::Audio(_) => assert_eq!(r, PushResult::Queued),
            _ => assert_eq!(r, PushResult::Dropped),
        }
    }
    p.finish();
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert_eq!(rec.infos.len(), 1);
    assert_eq!(rec.infos[0].video_codec, "");
    assert_eq!(rec.infos[0].audio_codec.as_deref(), Some("mp4a.40.2"));
    let init = &rec.chunks.iter().find(|(r, _)| *r == 0).unwrap().1;
    assert_eq!(init.kind, ChunkKind::Init);
    assert_eq!(trak_count(&init.data), 1);
    drop(rec);
    let d = segment_durations(&sink, 0);
    assert!(d.len() >= 4, "segments {d:?}");
    assert!(d.iter().all(|d| (0.95..=1.1).contains(d)), "segments {d:?}");
    // Parts too (LL-HLS chunks).
    let parts = sink
        .chunks_of(0)
        .iter()
        .filter(|c| c.kind == ChunkKind::Continuation)
        .count();
    assert!(parts >= 8, "{parts} parts");
}
