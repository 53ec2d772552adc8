//! Shedding a rung mid-stream and bringing it back, with real GStreamer: the shed rung's encoder
//! sees no frames, its segments are reported as gaps in step with the other rungs, and when it
//! comes back its segments start on the same cuts as everyone else's.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use media::cmaf::ChunkKind;
use media::{MediaFrame, MediaTime};
use pipeline::testing::{generate, Source};
use pipeline::{LadderConfig, PushResult, Rendition, StreamPipeline};

fn ladder(part: Option<Duration>) -> LadderConfig {
    ladder_of(
        vec![
            Rendition::passthrough("source"),
            Rendition::transcode("240p", 240, 400, Some(30)),
            Rendition::transcode("180p", 180, 250, Some(30)),
        ],
        part,
    )
}

fn video_pts(f: &MediaFrame) -> Option<MediaTime> {
    match f {
        MediaFrame::Video(v) => Some(v.pts),
        _ => None,
    }
}

/// Pushes 14 s; rung 1 is shed from the cut at 4 s (asked at 3 s) and brought back at the cut
/// at 10 s (asked at 8.5 s). Returns the sink and the stats before finishing.
fn shed_and_restore(
    part: Option<Duration>,
) -> (std::sync::Arc<RecordingSink>, pipeline::PipelineStats) {
    shed_and_restore_with(part, None, true)
}

/// As [`shed_and_restore`], leaving out the video frames whose pts (ms) is in `hole` (as the
/// input does when it drops frames until a keyframe), and shedding only if `shed`.
fn shed_and_restore_with(
    part: Option<Duration>,
    hole: Option<(i64, i64)>,
    shed: bool,
) -> (std::sync::Arc<RecordingSink>, pipeline::PipelineStats) {
    let input = generate(&Source {
        seconds: 14,
        ..Source::default()
    })
    .expect("test media");
    let sink = RecordingSink::new();
    let p = StreamPipeline::start(
        "shed",
        &input.video,
        input.audio.as_ref(),
        &ladder(part),
        sink.clone(),
    )
    .expect("pipeline starts");
    assert!(!p.can_shed(0), "the passthrough rung is never shed");
    assert!(!p.shed(0, true));
    assert!(p.can_shed(1));
    let (mut asked_shed, mut asked_back) = (false, false);
    for f in &input.frames {
        let pts = video_pts(f);
        if shed && !asked_shed && pts.is_some_and(|t| t >= MediaTime::from_millis(3_000)) {
            assert!(p.shed(1, true));
            asked_shed = true;
        }
        if shed && !asked_back && pts.is_some_and(|t| t >= MediaTime::from_millis(8_500)) {
            assert!(p.shed(1, false));
            asked_back = true;
        }
        if let (Some(t), Some((from, to))) = (pts, hole) {
            if (from..to).contains(&t.as_millis()) {
                continue;
            }
        }
        assert_eq!(p.push(f), PushResult::Queued);
    }
    sink.wait_for(Duration::from_secs(60), |r| {
        (0..3).all(|i| {
            r.chunks
                .iter()
                .filter(|(rung, c)| *rung == i && c.kind == ChunkKind::SegmentStart)
                .count()
                >= if i == 1 && shed { 3 } else { 6 }
        })
    });
    let stats = p.stats();
    p.finish();
    (sink, stats)
}

fn starts(chunks: &[media::cmaf::CmafChunk]) -> Vec<i64> {
    chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::SegmentStart)
        .map(|c| c.pts.as_millis())
        .collect()
}

#[test]
fn a_shed_rung_encodes_nothing_reports_gaps_and_comes_back_aligned() {
    let (sink, stats) = shed_and_restore(None);
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    // The gaps: rung 1 only, the three segments from 4 s to 10 s, in order, and each after the
    // rung's last real chunk before it (two segments and the init segment).
    let gaps: Vec<(usize, i64, i64, usize)> = rec
        .gaps
        .iter()
        .map(|(r, s, d, before)| (*r, s.as_millis(), d.as_millis(), *before))
        .collect();
    // The shed was announced once, at its cut, after the rung's last chunk before it (init and
    // two segments) and before its first gap.
    let sheds: Vec<(usize, i64, usize, usize)> = rec
        .sheds
        .iter()
        .map(|(r, at, chunks, gaps)| (*r, at.as_millis(), *chunks, *gaps))
        .collect();
    assert_eq!(sheds.len(), 1, "{sheds:?}");
    assert_eq!((sheds[0].0, sheds[0].2, sheds[0].3), (1, 3, 0), "{sheds:?}");
    drop(rec);
    let source = starts(&sink.chunks_of(0));
    let shed = starts(&sink.chunks_of(1));
    let other = starts(&sink.chunks_of(2));
    // Cuts on the source's keyframes, a second apart at 30 fps with millisecond timestamps.
    assert!(source.len() >= 7, "{source:?}");
    assert_eq!(other, source, "the rung that was not shed is untouched");
    let cut = |i: usize| source[i];
    // The cuts are on video keyframes, each a whole second at 30 fps; a segment's output
    // starts with its first sample, audio that may be up to a frame earlier.
    let cut_v = |i: usize| (source[i] + 50) / 1000 * 1000;
    let summary: Vec<_> = sink
        .chunks_of(1)
        .iter()
        .map(|c| (c.kind, c.pts.as_millis(), c.duration.as_millis()))
        .collect();
    eprintln!("shed rung: {summary:?}");
    assert_eq!(sheds[0].1, cut_v(2), "announced at the cut it starts at");
    assert_eq!(
        gaps,
        [
            (1, cut_v(2), cut_v(3) - cut_v(2), 3),
            (1, cut_v(3), cut_v(4) - cut_v(3), 3),
            (1, cut_v(4), cut_v(5) - cut_v(4), 3)
        ],
        "gaps in step with the cuts {source:?}"
    );
    assert_eq!(
        shed,
        [cut(0), cut(1), cut(5), cut(6)],
        "real segments of the shed rung"
    );
    // The segment before the shed is whole, and came out before the shed time was over; the
    // one after it starts with a keyframe.
    let chunks = sink.chunks_of(1);
    let before = chunks.iter().find(|c| c.pts.as_millis() == cut(1)).unwrap();
    assert!(
        (1.9..=2.1).contains(&before.duration.as_secs_f64()),
        "{before:?}"
    );
    let after = chunks.iter().find(|c| c.pts.as_millis() == cut(5)).unwrap();
    assert!(after.independent);
    // Its encoder saw only the 8 s it was not shed for (30 fps), the others all 14 s.
    let (shed_frames, other_frames) = (stats.rungs[1].frames, stats.rungs[2].frames);
    assert!(
        shed_frames + 150 <= other_frames && shed_frames >= 100,
        "frames encoded: shed rung {shed_frames}, other rung {other_frames}"
    );
    assert!(!stats.rungs[1].shed, "brought back");

    // ffprobe reads the shed rung's init + segments: H.264 + AAC, no decode errors.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shed.mp4");
    let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-of",
            "compact",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe must be installed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("codec_name=h264") && text.contains("codec_name=aac"),
        "{text}"
    );
}

#[test]
fn shedding_with_parts_drops_no_part_of_the_segments_around_it() {
    let (sink, _) = shed_and_restore(Some(Duration::from_millis(500)));
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    let gaps: Vec<i64> = rec.gaps.iter().map(|g| g.1.as_millis()).collect();
    let sheds: Vec<(i64, usize)> = rec.sheds.iter().map(|s| (s.1.as_millis(), s.3)).collect();
    drop(rec);
    let source = starts(&sink.chunks_of(0));
    let cuts_v: Vec<i64> = source[2..5]
        .iter()
        .map(|c| (c + 50) / 1000 * 1000)
        .collect();
    assert_eq!(gaps, cuts_v);
    assert_eq!(
        sheds,
        [(cuts_v[0], 0)],
        "announced once, before the first gap"
    );
    let (shed_at, back_at) = (source[2], source[5]);
    let chunks = sink.chunks_of(1);
    // Parts of the segment before the shed cover it up to the cut; nothing of the shed time
    // comes out; parts resume at the cut it came back on.
    let summary: Vec<_> = chunks
        .iter()
        .map(|c| (c.kind, c.pts.as_millis(), c.duration.as_millis()))
        .collect();
    eprintln!("shed rung: {summary:?}");
    let media: Vec<(i64, i64)> = chunks
        .iter()
        .filter(|c| c.kind != ChunkKind::Init)
        .map(|c| (c.pts.as_millis(), (c.pts + c.duration).as_millis()))
        .collect();
    assert!(
        media
            .iter()
            .all(|(s, e)| *e <= shed_at + 40 || *s >= back_at),
        "{media:?}"
    );
    let end_before = media
        .iter()
        .filter(|(s, _)| *s < shed_at)
        .map(|m| m.1)
        .max()
        .unwrap();
    assert!(
        (shed_at - 50..=shed_at + 40).contains(&end_before),
        "{media:?}"
    );
    assert!(media.iter().any(|(s, _)| *s == back_at), "{media:?}");
}

/// The first rung shed under heavy overload: the input has just dropped video until the
/// keyframe that the shed starts on, so the rung's muxer sees a hole in its video right before
/// the gate's first GAP. With parts, isofmp4mux 0.14 then stalled: nothing more came out of the
/// rung, neither chunks nor (since the gate reports gaps from the rung's output) anything after
/// the shed, and its playlist froze.
#[test]
fn a_rung_shed_right_after_an_input_hole_still_reports_gaps_and_comes_back() {
    let (sink, _) =
        shed_and_restore_with(Some(Duration::from_millis(334)), Some((3_400, 4_000)), true);
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    let gaps: Vec<i64> = rec.gaps.iter().map(|g| g.1.as_millis()).collect();
    drop(rec);
    let source = starts(&sink.chunks_of(0));
    let summary: Vec<_> = sink
        .chunks_of(1)
        .iter()
        .map(|c| (c.kind, c.pts.as_millis(), c.duration.as_millis()))
        .collect();
    eprintln!("source starts {source:?}\nshed rung: {summary:?}");
    assert!(source.len() >= 7, "{source:?}");
    let cuts_v: Vec<i64> = source[2..5]
        .iter()
        .map(|c| (c + 50) / 1000 * 1000)
        .collect();
    assert_eq!(gaps, cuts_v, "gaps at the cuts of the shed time");
    let shed = starts(&sink.chunks_of(1));
    assert_eq!(
        shed,
        [source[0], source[1], source[5], source[6]],
        "real segments of the shed rung"
    );
}

/// The same hole without shedding: every rung is cut on the same keyframes (before the hole was
/// filled, the transcoded rungs lost the cut after the hole's: their segment at 4 s ran to 8 s).
#[test]
fn an_input_hole_before_a_keyframe_keeps_every_rung_on_the_cuts() {
    let (sink, _) = shed_and_restore_with(
        Some(Duration::from_millis(334)),
        Some((3_400, 4_000)),
        false,
    );
    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    assert!(rec.gaps.is_empty(), "{:?}", rec.gaps);
    drop(rec);
    let source = starts(&sink.chunks_of(0));
    assert!(source.len() >= 7, "{source:?}");
    for rung in 1..3 {
        // A segment starts with its first sample: an audio frame across the cut may start it
        // up to a frame (21 ms) earlier or later on one rung than on another.
        let other = starts(&sink.chunks_of(rung));
        assert!(
            other.len() == source.len()
                && other.iter().zip(&source).all(|(o, s)| (o - s).abs() <= 50),
            "rung {rung}: {other:?}, source {source:?}"
        );
    }
}
