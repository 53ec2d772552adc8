//! Hardware selection at run time, with real GStreamer and injected faults: this machine has no
//! GPU, so a test-only "hardware encoder" (`identity error-after=N ! x264enc` in a bin that the
//! pipeline treats as NVENC) stands in for one that fails mid-stream.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use media::cmaf::ChunkKind;
use media::MediaFrame;
use pipeline::accel::{Backend, FailurePolicy, Selection, SessionBudget, Stage};
use pipeline::testing::{generate, Generated, Source};
use pipeline::{Error, LadderConfig, Rendition, StartOptions, StreamPipeline};

fn ladder(rungs: usize) -> LadderConfig {
    let mut renditions = vec![Rendition::passthrough("source")];
    for (i, h) in [144u32, 90].iter().take(rungs).enumerate() {
        renditions.push(Rendition::transcode(&format!("r{i}"), *h, 150, None));
    }
    LadderConfig {
        renditions,
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(1),
        part_duration: None,
        max_queued_frames: 1000,
    }
}

fn input(seconds: u32) -> Generated {
    generate(&Source {
        width: 320,
        height: 180,
        fps: 30,
        seconds,
        keyframe_interval: 15,
        audio: false,
        ..Source::default()
    })
    .unwrap()
}

#[test]
fn failing_hardware_encoder_is_an_accelerator_failure_and_software_continues_the_timeline() {
    let input = input(4);
    let budget = SessionBudget::new(Some(4));
    let sink = RecordingSink::new();
    let faulty = StreamPipeline::start_with(
        "fault",
        &input.video,
        None,
        &ladder(1),
        sink.clone(),
        &StartOptions {
            // Fails on the 20th frame into the encoder.
            selection: Some(Selection::software().with_fault_encoder(20)),
            sessions: Some(budget.clone()),
            ..StartOptions::default()
        },
    )
    .unwrap();
    assert_eq!(budget.in_use(), 1, "the hardware rung holds a session");
    let b = faulty.backends();
    assert_eq!(b.rungs[1].backend, Backend::Nvidia);
    assert_eq!(b.rungs[1].encoder.as_deref(), Some("fault-h264enc"));
    assert_eq!(b.rungs[0].encoder, None, "passthrough encodes nothing");

    // The first two seconds go to the faulty pipeline.
    let split = input
        .frames
        .iter()
        .position(|f| matches!(f, MediaFrame::Video(v) if v.pts.as_nanos() >= 2_000_000_000 && v.keyframe))
        .unwrap();
    for f in &input.frames[..split] {
        faulty.push(f);
    }
    assert!(
        sink.wait_for(Duration::from_secs(20), |r| !r.failures.is_empty()),
        "the injected fault is reported"
    );
    let failure = sink.rec.lock().unwrap().failures[0].clone();
    eprintln!("reported: {failure:?}");
    let fault = failure
        .accelerator
        .expect("classified as an accelerator failure");
    assert_eq!(fault.stage, Stage::Encode);
    assert_eq!(fault.backend, Backend::Nvidia);
    assert_eq!(fault.element, "r1-enc");
    // The bus thread tells the sink first and marks the pipeline failed just after (so that an
    // owner has decided before `push` reports `Closed`): wait for the mark, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !faulty.has_failed() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        faulty.has_failed(),
        "the pipeline is marked failed after the report"
    );

    // Rebuild in software, continuing the timeline.
    let offset = faulty.input_offset();
    assert!(offset.is_some());
    drop(faulty);
    assert_eq!(
        budget.in_use(),
        0,
        "a dropped pipeline returns its sessions"
    );
    let old_end = sink
        .chunks_of(1)
        .iter()
        .filter(|c| c.kind != ChunkKind::Init)
        .map(|c| c.pts + c.duration)
        .max();
    let sink2 = RecordingSink::new();
    let software = StreamPipeline::start_with(
        "fault",
        &input.video,
        None,
        &ladder(1),
        sink2.clone(),
        &StartOptions {
            selection: Some(Selection::software()),
            sessions: Some(budget.clone()),
            input_offset: offset,
            ..StartOptions::default()
        },
    )
    .unwrap();
    assert_eq!(budget.in_use(), 0, "software takes no session");
    assert_eq!(software.backends().rungs[1].backend, Backend::Software);
    for f in &input.frames[split..] {
        software.push(f);
    }
    software.finish();
    let rec = sink2.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let chunks: Vec<_> = rec
        .chunks
        .iter()
        .filter(|(r, _)| *r == 1)
        .map(|(_, c)| c)
        .collect();
    assert_eq!(chunks[0].kind, ChunkKind::Init);
    let first = chunks
        .iter()
        .find(|c| c.kind == ChunkKind::SegmentStart)
        .expect("the software rebuild makes segments");
    // The timeline continues where the input left off (2 s), not at zero.
    assert!(
        first.pts.as_nanos() >= 1_900_000_000,
        "continued timeline: first pts {:?}",
        first.pts
    );
    if let Some(end) = old_end {
        assert!(
            first.pts >= end - media::MediaTime::from_millis(50),
            "{:?} after {:?}",
            first.pts,
            end
        );
    }
    assert!(
        chunks
            .iter()
            .filter(|c| c.kind == ChunkKind::SegmentStart)
            .count()
            >= 2
    );
}

#[test]
fn exhausted_session_budget_sends_rungs_to_software_or_refuses() {
    let input = input(2);
    // A "hardware" encoder that works (fails only after far more frames than we send).
    let selection = Selection::software().with_fault_encoder(100_000);
    let budget = SessionBudget::new(Some(1));

    // Fallback: the first rung gets the one session, the second goes to x264.
    let sink = RecordingSink::new();
    let p = StreamPipeline::start_with(
        "budget",
        &input.video,
        None,
        &ladder(2),
        sink.clone(),
        &StartOptions {
            selection: Some(selection.clone()),
            sessions: Some(budget.clone()),
            on_failure: FailurePolicy::Fallback,
            ..StartOptions::default()
        },
    )
    .unwrap();
    let rungs = p.backends().rungs.clone();
    assert_eq!(rungs[1].backend, Backend::Nvidia);
    assert_eq!(rungs[2].backend, Backend::Software);
    assert!(
        rungs[2]
            .fallback
            .as_deref()
            .unwrap()
            .contains("hardware encoder sessions are in use"),
        "{rungs:?}"
    );
    assert_eq!(budget.in_use(), 1);

    // Fail: a second stream cannot get any session and is refused with the reason.
    let refused = StreamPipeline::start_with(
        "budget2",
        &input.video,
        None,
        &ladder(1),
        RecordingSink::new(),
        &StartOptions {
            selection: Some(selection.clone()),
            sessions: Some(budget.clone()),
            on_failure: FailurePolicy::Fail,
            ..StartOptions::default()
        },
    );
    match refused {
        Err(Error::Accelerator(why)) => {
            eprintln!("refused: {why}");
            assert!(why.contains("max_encode_sessions"), "{why}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a stream beyond the budget must be refused under fail"),
    }
    assert_eq!(budget.in_use(), 1, "a refused stream holds nothing");

    // Both rungs of the admitted stream still encode.
    for f in &input.frames {
        p.push(f);
    }
    p.finish();
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    for rung in 1..=2 {
        assert!(
            rec.chunks
                .iter()
                .any(|(r, c)| *r == rung && c.kind == ChunkKind::SegmentStart),
            "rung {rung} produced segments"
        );
    }
    drop(rec);
    assert_eq!(budget.in_use(), 0);
    let _ = Arc::clone(&budget);
}
