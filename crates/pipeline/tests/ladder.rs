//! The ladder end to end, with real GStreamer: generated H.264 + AAC in, CMAF chunks out.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use media::cmaf::ChunkKind;
use media::MediaTime;
use pipeline::testing::{cpu_seconds, generate, Source};
use pipeline::{LadderConfig, PushResult, Rendition, StreamPipeline};

fn test_ladder(part: Option<Duration>) -> LadderConfig {
    ladder_of(
        vec![
            Rendition::passthrough("source"),
            Rendition::transcode("720p", 720, 2800, Some(30)),
            Rendition::transcode("240p", 240, 400, Some(30)),
            Rendition::transcode("180p", 180, 250, Some(30)),
        ],
        part,
    )
}

/// Pushes every frame (retrying drops is not needed: the queue bound is large) and finishes.
fn run(
    input: &pipeline::testing::Generated,
    ladder: &LadderConfig,
    expected_segments: usize,
) -> (
    Arc<RecordingSink>,
    Vec<pipeline::RungPlan>,
    pipeline::PipelineStats,
    f64,
) {
    let sink = RecordingSink::new();
    let cpu0 = cpu_seconds();
    let p = StreamPipeline::start(
        "test",
        &input.video,
        input.audio.as_ref(),
        ladder,
        sink.clone(),
    )
    .expect("pipeline starts");
    let plan = p.rungs();
    for f in &input.frames {
        assert_eq!(p.push(f), PushResult::Queued);
    }
    let started = Instant::now();
    // Let it work before finishing, so finish's bounded wait is not what we measure.
    sink.wait_for(Duration::from_secs(30), |r| {
        (0..plan.len()).all(|i| {
            r.chunks
                .iter()
                .filter(|(rung, c)| *rung == i && c.kind == ChunkKind::SegmentStart)
                .count()
                >= expected_segments
        })
    });
    let stats_before = p.stats();
    p.finish();
    let cpu = cpu_seconds() - cpu0;
    eprintln!(
        "drained in {:?}, cpu {cpu:.2}s, stats {stats_before:?}",
        started.elapsed()
    );
    let stats = stats_before;
    (sink, plan, stats, cpu)
}

#[test]
fn ladder_segments_are_aligned_and_playable() {
    let input = generate(&Source {
        time_offset: MediaTime::from_millis(123_456_789),
        ..Source::default()
    })
    .expect("test media");
    let ladder = test_ladder(None);
    let (sink, plan, stats, cpu) = run(&input, &ladder, 3);
    let rung_names: Vec<_> = plan.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        rung_names,
        ["source", "240p", "180p"],
        "720p is above the source and skipped"
    );
    assert_eq!((plan[1].width, plan[1].height), (426, 240));
    assert_eq!((plan[2].width, plan[2].height), (320, 180));
    eprintln!("cpu per media second: {:.3}", cpu / 7.0);

    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    assert!(rec.eos, "finish waits for EOS");
    assert_eq!(rec.infos.len(), 3);
    assert!(rec.ready_before_chunk.iter().all(|(_, before)| *before));
    for info in &rec.infos {
        eprintln!("{info:?}");
        assert!(info.video_codec.starts_with("avc1."), "{info:?}");
        assert_eq!(info.audio_codec.as_deref(), Some("mp4a.40.2"));
        let p = &plan[info.index];
        assert_eq!((info.width, info.height), (p.width, p.height));
    }
    // Every media chunk reports the arrival of the frames it presents (the start of the
    // ingest-to-publish latency), and together a rung's chunks account for every frame pushed.
    for rung in 0..plan.len() {
        let counts: Vec<usize> = rec
            .arrivals
            .iter()
            .filter(|(r, _)| *r == rung)
            .map(|(_, n)| *n)
            .collect();
        assert!(counts.iter().all(|n| *n > 0), "rung {rung}: {counts:?}");
        let total: usize = counts.iter().sum();
        let pushed = stats.video_frames_in as usize;
        assert!(
            total <= pushed && total * 100 >= pushed * 95,
            "rung {rung}: chunks hold {total} of {pushed} pushed frames"
        );
    }
    drop(rec);

    let mut starts: Vec<Vec<MediaTime>> = Vec::new();
    for rung in 0..plan.len() {
        let chunks = sink.chunks_of(rung);
        let summary: Vec<_> = chunks
            .iter()
            .map(|c| (c.kind, c.pts, c.duration, c.data.len()))
            .collect();
        eprintln!("rung {rung}: {summary:?}");
        assert_eq!(chunks[0].kind, ChunkKind::Init);
        assert_eq!(names(&chunks[0].data), ["ftyp", "moov"]);
        assert_eq!(trak_count(&chunks[0].data), 2, "video + audio");
        assert!(chunks[1..]
            .iter()
            .all(|c| c.kind == ChunkKind::SegmentStart));
        let mut seq = 0;
        for c in &chunks[1..] {
            assert!(c.independent);
            let n = names(&c.data);
            assert!(
                n.starts_with(&["moof".to_string(), "mdat".to_string()]) || n[0] == "styp",
                "{n:?}"
            );
            let s = sequence_number(&c.data);
            assert!(s > seq, "sequence numbers increase");
            seq = s;
        }
        // Every segment but the last is about 2 s long (the source GOP is 1 s).
        let segs = &chunks[1..];
        for c in &segs[..segs.len() - 1] {
            let d = c.duration.as_secs_f64();
            assert!((1.9..=2.1).contains(&d), "segment of {d}s in rung {rung}");
        }
        starts.push(segs.iter().map(|c| c.pts).collect());
    }
    assert!(starts[0].len() >= 3, "7 s make at least 3 segments");
    for s in &starts[1..] {
        assert_eq!(s, &starts[0], "all rungs cut at the same pts");
    }
    // The first segment starts near zero despite the publisher's large timestamps.
    assert!(
        starts[0][0] < MediaTime::from_millis(100),
        "{:?}",
        starts[0][0]
    );

    // ffprobe reads one rung's init + segments as H.264 + AAC of the planned size.
    let dir = tempfile::tempdir().unwrap();
    for (rung, (w, h)) in [(1usize, (426, 240)), (0, (640, 360))] {
        let path = dir.path().join(format!("rung{rung}.mp4"));
        let bytes: Vec<u8> = sink
            .chunks_of(rung)
            .iter()
            .flat_map(|c| c.data.to_vec())
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_streams", "-of", "compact"])
            .arg(&path)
            .output()
            .expect("ffprobe must be installed for this test");
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("codec_name=h264"), "{text}");
        assert!(text.contains("codec_name=aac"), "{text}");
        assert!(text.contains(&format!("width={w}|height={h}")), "{text}");
        assert!(!text.contains("High 4:4:4"), "{text}");
    }
}

#[test]
fn parts_become_continuations() {
    let input = small_input(5);
    let mut ladder = test_ladder(Some(Duration::from_millis(500)));
    ladder.renditions = vec![
        Rendition::passthrough("source"),
        Rendition::transcode("144p", 144, 200, Some(30)),
    ];
    let (sink, plan, _stats, _) = run(&input, &ladder, 2);
    assert_eq!(plan.len(), 2);
    assert!(sink.rec.lock().unwrap().errors.is_empty());
    let mut starts = Vec::new();
    for rung in 0..plan.len() {
        let chunks = sink.chunks_of(rung);
        let summary: Vec<_> = chunks.iter().map(|c| (c.kind, c.pts, c.duration)).collect();
        eprintln!("rung {rung}: {summary:?}");
        assert_eq!(chunks[0].kind, ChunkKind::Init);
        assert_eq!(chunks[1].kind, ChunkKind::SegmentStart);
        let conts = chunks
            .iter()
            .filter(|c| c.kind == ChunkKind::Continuation)
            .count();
        assert!(conts >= 4, "parts between segment starts: {summary:?}");
        // A continuation belongs to the segment before it: same mfhd sequence number.
        let mut seg_seq = 0;
        for c in &chunks[1..] {
            let s = sequence_number(&c.data);
            match c.kind {
                ChunkKind::SegmentStart => {
                    assert!(s > seg_seq);
                    seg_seq = s;
                }
                ChunkKind::Continuation => assert_eq!(s, seg_seq),
                ChunkKind::Init => panic!("second init"),
            }
            assert!(
                c.duration <= MediaTime::from_millis(600),
                "part of {}",
                c.duration
            );
        }
        starts.push(
            chunks
                .iter()
                .filter(|c| c.kind == ChunkKind::SegmentStart)
                .map(|c| c.pts)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(starts[0], starts[1]);
}

#[test]
fn b_frames_and_frame_rate_cap_stay_aligned() {
    // 60 fps with B-frames and a 0.5 s GOP; one rung capped at 30 fps (videorate).
    let input = generate(&Source {
        width: 320,
        height: 180,
        fps: 60,
        seconds: 5,
        keyframe_interval: 30,
        bframes: 2,
        ..Source::default()
    })
    .expect("test media");
    let has_b = input.frames.iter().any(|f| match f {
        media::MediaFrame::Video(v) => v.pts != v.dts,
        _ => false,
    });
    assert!(has_b, "the source reorders frames");
    let mut ladder = test_ladder(None);
    ladder.renditions = vec![
        Rendition::passthrough("source"),
        Rendition::transcode("144p30", 144, 200, Some(30)),
        Rendition::transcode("90p", 90, 100, None),
    ];
    let (sink, plan, stats, _) = run(&input, &ladder, 2);
    assert_eq!(plan.len(), 3);
    assert!(sink.rec.lock().unwrap().errors.is_empty());
    let infos = sink.rec.lock().unwrap().infos.clone();
    let capped = infos.iter().find(|i| i.index == 1).unwrap();
    assert_eq!(capped.frame_rate, Some(30.0), "{capped:?}");
    assert!(stats.rungs[1].frames < stats.rungs[2].frames, "{stats:?}");
    let mut starts = Vec::new();
    for rung in 0..plan.len() {
        let chunks = sink.chunks_of(rung);
        let summary: Vec<_> = chunks.iter().map(|c| (c.kind, c.pts, c.duration)).collect();
        eprintln!("rung {rung}: {summary:?}");
        starts.push(
            chunks[1..]
                .iter()
                .map(|c| {
                    assert_eq!(c.kind, ChunkKind::SegmentStart);
                    c.pts
                })
                .collect::<Vec<_>>(),
        );
    }
    assert!(starts[0].len() >= 2);
    assert_eq!(starts[0], starts[1]);
    assert_eq!(starts[0], starts[2]);
}
