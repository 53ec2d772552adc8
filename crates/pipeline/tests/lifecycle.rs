//! Starting and finishing pipelines again and again leaks neither threads nor memory.
//! Alone in its test binary, so that no other test's threads are counted.

mod common;

use std::time::Duration;

use common::*;
use pipeline::testing::{rss_kib, thread_count};
use pipeline::{LadderConfig, Rendition, StreamPipeline};

const ITERATIONS: usize = 10;

#[test]
fn start_finish_loop_is_bounded() {
    let input = small_input(2);
    let ladder = LadderConfig {
        renditions: vec![
            Rendition::passthrough("source"),
            Rendition::transcode("144p", 144, 200, None),
            Rendition::transcode("90p", 90, 100, None),
        ],
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(1),
        part_duration: None,
        max_queued_frames: 1000,
    };
    let mut samples = Vec::new();
    for i in 0..ITERATIONS {
        let sink = RecordingSink::new();
        let p = StreamPipeline::start(
            &format!("loop{i}"),
            &input.video,
            input.audio.as_ref(),
            &ladder,
            sink.clone(),
        )
        .unwrap();
        for f in &input.frames {
            let _ = p.push(f);
        }
        p.finish();
        let rec = sink.rec.lock().unwrap();
        assert!(
            rec.eos && rec.errors.is_empty(),
            "iteration {i}: {:?}",
            rec.errors
        );
        drop(rec);
        assert_eq!(
            std::sync::Arc::strong_count(&sink),
            1,
            "the pipeline released the sink"
        );
        samples.push((thread_count(), rss_kib()));
    }
    eprintln!("(threads, rss KiB) per iteration: {samples:?}");
    let (t1, r1) = samples[1];
    let (tn, rn) = samples[samples.len() - 1];
    assert!(tn <= t1 + 4, "threads grew from {t1} to {tn}");
    assert!(rn <= r1 + 40 * 1024, "RSS grew from {r1} KiB to {rn} KiB");
}
