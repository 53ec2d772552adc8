//! MP3 input: decoded and encoded to AAC once, and that AAC is in every rung.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use media::cmaf::ChunkKind;
use media::{AudioCodec, MediaTime};
use pipeline::testing::{generate, generate_mp3, Source};
use pipeline::{LadderConfig, PushResult, Rendition, StreamPipeline};

#[test]
fn mp3_input_becomes_shared_aac() {
    let src = Source {
        seconds: 5,
        audio: false,
        time_offset: MediaTime::from_millis(5_000),
        ..Source::default()
    };
    let mut input = generate(&src).expect("test video");
    let (audio, mp3_frames) = generate_mp3(&src).expect("test MP3 (lamemp3enc)");
    assert_eq!(audio.codec, AudioCodec::Mp3);
    assert_eq!((audio.sample_rate, audio.channels), (44_100, 2));
    input.frames.extend(mp3_frames);
    input.frames.sort_by_key(|f| f.dts().unwrap_or_default());

    let ladder = LadderConfig {
        renditions: vec![
            Rendition::passthrough("source"),
            Rendition::transcode("240p", 240, 400, Some(30)),
        ],
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(2),
        part_duration: None,
        max_queued_frames: 10_000,
    };
    let sink = RecordingSink::new();
    let p = StreamPipeline::start("mp3", &input.video, Some(&audio), &ladder, sink.clone())
        .expect("pipeline starts with MP3 audio");
    let plan = p.rungs();
    assert_eq!(plan.len(), 2);
    // A repeated (unchanged) configuration is accepted; AAC on an MP3 branch is not.
    assert_eq!(
        p.push(&media::MediaFrame::AudioConfig(audio.clone())),
        PushResult::Queued
    );
    let aac = media::AudioConfig {
        codec: AudioCodec::Aac,
        ..audio.clone()
    };
    assert_eq!(
        p.push(&media::MediaFrame::AudioConfig(aac)),
        PushResult::Dropped
    );
    for f in &input.frames {
        assert_eq!(p.push(f), PushResult::Queued);
    }
    sink.wait_for(Duration::from_secs(30), |r| {
        (0..plan.len()).all(|i| {
            r.chunks
                .iter()
                .filter(|(rung, c)| *rung == i && c.kind == ChunkKind::SegmentStart)
                .count()
                >= 2
        })
    });
    let stats = p.stats();
    p.finish();
    eprintln!("stats {stats:?}");

    let rec = sink.rec.lock().unwrap();
    assert!(rec.errors.is_empty(), "errors: {:?}", rec.errors);
    assert_eq!(rec.infos.len(), 2);
    for info in &rec.infos {
        assert_eq!(info.audio_codec.as_deref(), Some("mp4a.40.2"), "{info:?}");
    }
    drop(rec);

    let dir = tempfile::tempdir().unwrap();
    for rung in 0..plan.len() {
        let chunks = sink.chunks_of(rung);
        assert_eq!(chunks[0].kind, ChunkKind::Init);
        assert_eq!(trak_count(&chunks[0].data), 2, "video + audio");
        assert!(
            chunks[0].data.windows(4).any(|w| w == b"mp4a"),
            "rung {rung}'s init has an mp4a sample entry"
        );
        let path = dir.path().join(format!("rung{rung}.mp4"));
        let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
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
        assert!(text.contains("profile=LC"), "{text}");
        assert!(text.contains("sample_rate=44100"), "{text}");
    }
}
