//! The direct passthrough path (`StartOptions::direct_passthrough`): the same generated input
//! through it and through GStreamer, the output read back by ffprobe and decoded by ffmpeg.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use media::cmaf::ChunkKind;
use media::{MediaFrame, MediaTime};
use pipeline::testing::{generate, Generated, Source};
use pipeline::{PipelineStats, PushResult, Rendition, StartOptions, StreamPipeline};

const PART: Duration = Duration::from_millis(500);

fn options(direct: bool) -> StartOptions {
    StartOptions {
        direct_passthrough: direct,
        ..StartOptions::default()
    }
}

/// Pushes every frame of `input` into a passthrough-only pipeline and finishes it.
fn run(
    input: &Generated,
    renditions: Vec<Rendition>,
    direct: bool,
) -> (Arc<RecordingSink>, bool, PipelineStats) {
    let sink = RecordingSink::new();
    let p = StreamPipeline::start_with(
        "test",
        &input.video,
        input.audio.as_ref(),
        &ladder_of(renditions, Some(PART)),
        sink.clone(),
        &options(direct),
    )
    .expect("pipeline starts");
    let is_direct = p.is_direct();
    for f in &input.frames {
        assert_eq!(p.push(f), PushResult::Queued, "{f:?}");
    }
    // The GStreamer pipeline works on its own threads: finish waits for its last chunks.
    let stats_before = p.stats();
    p.finish();
    assert!(sink.wait_for(Duration::from_secs(10), |r| r.eos), "no end");
    (sink, is_direct, stats_before)
}

/// ffprobe's frame counts of the rung's init + chunks: (video, audio) frames read.
fn probe(sink: &RecordingSink, dir: &std::path::Path, name: &str) -> (u64, u64, String) {
    let path = dir.join(format!("{name}.mp4"));
    let bytes: Vec<u8> = sink
        .chunks_of(0)
        .iter()
        .flat_map(|c| c.data.to_vec())
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "compact",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe must be installed for this test");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |codec: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(&format!("codec_name={codec}")))
            .and_then(|l| l.rsplit("nb_read_frames=").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    // Every frame decodes: ffmpeg stops at the first error.
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed for this test");
    assert!(
        decoded.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    (count("h264"), count("aac"), text)
}

fn video_frames(input: &Generated) -> u64 {
    input
        .frames
        .iter()
        .filter(|f| matches!(f, MediaFrame::Video(_)))
        .count() as u64
}

/// Segment starts, and whether every part is within the part duration (plus a frame).
fn segment_starts(sink: &RecordingSink) -> Vec<MediaTime> {
    sink.chunks_of(0)
        .iter()
        .filter(|c| c.kind == ChunkKind::SegmentStart)
        .map(|c| c.pts)
        .collect()
}

#[test]
fn a_passthrough_only_stream_is_cut_where_gstreamer_cuts_it_and_every_frame_plays() {
    // B-frames (composition offsets), 1 s GOPs against 2 s segments, a publisher clock that
    // does not start at zero.
    let input = generate(&Source {
        width: 320,
        height: 180,
        seconds: 7,
        bframes: 2,
        time_offset: MediaTime::from_millis(5_000),
        ..Source::default()
    })
    .expect("test media");
    let ladder = || vec![Rendition::passthrough("source")];
    let (direct, is_direct, stats) = run(&input, ladder(), true);
    let (gst, gst_is_direct, _) = run(&input, ladder(), false);
    assert!(is_direct && !gst_is_direct);

    let rec = direct.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert_eq!(rec.ready_before_chunk, vec![(0, true)]);
    let info = &rec.infos[0];
    let gst_info = gst.rec.lock().unwrap().infos[0].clone();
    assert!(info.passthrough && info.video_kbps.is_none());
    assert_eq!(
        (
            info.width,
            info.height,
            &info.video_codec,
            &info.audio_codec
        ),
        (
            gst_info.width,
            gst_info.height,
            &gst_info.video_codec,
            &gst_info.audio_codec
        )
    );
    drop(rec);

    // One init segment, first; segments on the same keyframes as GStreamer's; parts on the
    // part grid, each with the arrival of the frames it presents.
    let chunks = direct.chunks_of(0);
    let kinds = kinds(&chunks);
    assert_eq!(kinds[0], ChunkKind::Init);
    assert_eq!(kinds[1], ChunkKind::SegmentStart);
    assert!(!kinds[1..].contains(&ChunkKind::Init), "{kinds:?}");
    let starts = segment_starts(&direct);
    assert!(starts.len() >= 3, "{starts:?}");
    // GStreamer's segment time is the earliest of its tracks' (audio may start up to a frame
    // before the keyframe); the direct path's is the keyframe's.
    let gst_starts = segment_starts(&gst);
    assert_eq!(starts.len(), gst_starts.len(), "{starts:?} {gst_starts:?}");
    for (d, g) in starts.iter().zip(&gst_starts) {
        let ahead = *d - *g;
        assert!(
            ahead >= MediaTime::ZERO && ahead < MediaTime::from_millis(100),
            "{starts:?} {gst_starts:?}"
        );
    }
    // (The last chunk also carries the audio that outlasts the video.)
    for c in &chunks[1..chunks.len() - 1] {
        assert!(
            c.duration <= MediaTime::from_millis(600),
            "a part of {}: {:?}",
            c.duration,
            chunks
                .iter()
                .map(|c| (c.kind, c.pts, c.duration))
                .collect::<Vec<_>>()
        );
    }
    let arrivals = direct.rec.lock().unwrap().arrivals.clone();
    assert!(arrivals.iter().all(|(_, n)| *n > 0), "{arrivals:?}");

    // Every video frame pushed is in the output and decodes; the audio as GStreamer's does.
    let dir = tempfile::tempdir().unwrap();
    let (v, a, text) = probe(&direct, dir.path(), "direct");
    let (gst_v, gst_a, _) = probe(&gst, dir.path(), "gst");
    assert_eq!(v, video_frames(&input), "{text}");
    assert_eq!((v, a), (gst_v, gst_a), "{text}");
    assert!(text.contains("width=320|height=180"), "{text}");

    assert_eq!(stats.video_frames_in, video_frames(&input));
    assert_eq!(stats.rungs[0].frames, video_frames(&input));
    assert_eq!(stats.rungs[0].segments as usize, starts.len(), "{stats:?}");
    assert_eq!((stats.video_queued, stats.audio_queued), (0, 0));
}

#[test]
fn missing_audio_is_filled_with_silence_on_the_direct_path() {
    let mut input = small_input(6);
    // The publisher's audio stops from 2 s to 4.5 s.
    let gap = MediaTime::from_millis(2_000)..MediaTime::from_millis(4_500);
    input
        .frames
        .retain(|f| !matches!(f, MediaFrame::Audio(a) if gap.contains(&a.pts)));
    let (sink, is_direct, stats) = run(&input, vec![Rendition::passthrough("source")], true);
    assert!(is_direct);
    assert!(sink.rec.lock().unwrap().errors.is_empty());
    assert!(stats.audio_silence_frames > 0, "{stats:?}");
    let dir = tempfile::tempdir().unwrap();
    let (v, a, text) = probe(&sink, dir.path(), "gap");
    assert_eq!(v, video_frames(&input), "{text}");
    // 6 s of 1024-sample AAC frames at 48 kHz (or 44.1 kHz): the hole is filled.
    assert!(a >= 250, "{a} audio frames: {text}");
}

#[test]
fn only_a_ladder_that_keeps_the_passthrough_rung_alone_goes_direct() {
    let input = small_input(1);
    let start = |renditions: Vec<Rendition>, direct: bool| {
        let p = StreamPipeline::start_with(
            "test",
            &input.video,
            input.audio.as_ref(),
            &ladder_of(renditions, Some(PART)),
            RecordingSink::new(),
            &options(direct),
        )
        .expect("pipeline starts");
        let d = p.is_direct();
        p.finish();
        d
    };
    // A transcoded rung needs GStreamer.
    let two = || {
        vec![
            Rendition::passthrough("source"),
            Rendition::transcode("144p", 144, 200, Some(30)),
        ]
    };
    assert!(!start(two(), true));
    // A rung taller than the 180p source is skipped: the passthrough rung is alone.
    let taller = vec![
        Rendition::passthrough("source"),
        Rendition::transcode("720p", 720, 2800, Some(30)),
    ];
    assert!(start(taller, true));
    // Without the switch, never.
    assert!(!start(vec![Rendition::passthrough("source")], false));
}
