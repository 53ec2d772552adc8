//! What ffmpeg publishes (H.264 with B-frames and AAC, as FLV), demuxed here and written by
//! `media::fmp4` as an init segment and one fragment per GOP, reads back in ffprobe and decodes
//! in ffmpeg frame for frame. ffmpeg and ffprobe are required: a missing one fails the test
//! with the command that was tried. Every tool runs under `timeout`.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use flv::{Demuxer, Outcome};
use media::cmaf::ChunkKind;
use media::fmp4::{self, Run, Sample, Track, VIDEO_TIMESCALE};
use media::{AudioConfig, AudioFrame, MediaFrame, VideoConfig, VideoFrame};

/// A directory of this process's and this test's own (tests run side by side, in processes or
/// threads of their own).
fn work_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fmp4-writer")
        .join(format!("{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `program args` under a 60 s `timeout`; returns its stdout and stderr.
fn run(program: &str, args: &[&str]) -> (String, String) {
    let output = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this test needs `timeout` and `{program}` on PATH: {e}"));
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\n{err}",
        args.join(" "),
        output.status
    );
    (out, err)
}

/// What ffmpeg publishes over RTMP, as an FLV file in `dir`: 3 s of 320x240 H.264 at 30 fps
/// (two B-frames, a keyframe a second) and stereo AAC at 48 kHz.
fn publish_flv(dir: &Path) -> PathBuf {
    let path = dir.join("in.flv");
    let args = format!(
        "-hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 -t 3 -c:v libx264 -bf 2 -g 30 \
         -sc_threshold 0 -pix_fmt yuv420p -c:a aac -ac 2 -f flv {}",
        path.display()
    );
    run("ffmpeg", &args.split_whitespace().collect::<Vec<_>>());
    path
}

/// The frames of an FLV file, through the demuxer RTMP ingest uses.
fn demux(path: &Path) -> Vec<MediaFrame> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..3], b"FLV", "not an FLV file");
    let mut at = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize + 4;
    let mut demuxer = Demuxer::new();
    let mut frames = Vec::new();
    while at + 11 <= data.len() {
        let kind = data[at];
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let body = Bytes::copy_from_slice(&data[at + 11..at + 11 + size]);
        at += 11 + size + 4;
        let outcome = match kind {
            8 => demuxer.push_audio(ts, body),
            9 => demuxer.push_video(ts, body),
            _ => continue,
        };
        match outcome.expect("a tag ffmpeg wrote") {
            Outcome::Frame(f) => frames.push(f),
            Outcome::Frames(fs) => frames.extend(fs),
            _ => {}
        }
    }
    frames
}

fn ticks(t: media::MediaTime, timescale: u32) -> i64 {
    i64::try_from(i128::from(t.as_nanos()) * i128::from(timescale) / 1_000_000_000).unwrap()
}

#[test]
fn what_ffmpeg_publishes_written_as_fmp4_decodes_frame_for_frame() {
    let dir = work_dir("writer");
    let flv_path = publish_flv(&dir);
    let frames = demux(&flv_path);
    let mut video_config: Option<VideoConfig> = None;
    let mut audio_config: Option<AudioConfig> = None;
    let mut video: Vec<VideoFrame> = Vec::new();
    let mut audio: Vec<AudioFrame> = Vec::new();
    for f in frames {
        match f {
            MediaFrame::VideoConfig(c) => video_config = Some(c),
            MediaFrame::AudioConfig(c) => audio_config = Some(c),
            MediaFrame::Video(v) => video.push(v),
            MediaFrame::Audio(a) => audio.push(a),
            _ => {}
        }
    }
    let (vc, ac) = (
        video_config.expect("avcC"),
        audio_config.expect("AAC config"),
    );
    assert!(
        video.len() >= 85 && video[0].keyframe,
        "{} video frames",
        video.len()
    );
    assert!(
        video.iter().any(|v| v.pts != v.dts),
        "no B-frames: composition offsets untested"
    );
    let rate = ac.sample_rate;
    let init = fmp4::init_segment(&[Track::Video(&vc), Track::Audio(&ac)]).unwrap();
    let mut file = init.to_vec();

    // One fragment per GOP, with the audio of the same time span.
    let starts: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    let mut audio_at = 0;
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(video.len());
        let gop = &video[start..end];
        let vt = |i: usize| ticks(video[i].dts, VIDEO_TIMESCALE);
        let samples: Vec<Sample> = (start..end)
            .map(|i| {
                let next = if i + 1 < video.len() {
                    vt(i + 1)
                } else {
                    2 * vt(i) - vt(i - 1)
                };
                Sample {
                    duration: u32::try_from(next - vt(i)).unwrap(),
                    composition_offset: i32::try_from(ticks(video[i].pts, VIDEO_TIMESCALE) - vt(i))
                        .unwrap(),
                    sync: video[i].keyframe,
                }
            })
            .collect();
        let video_data: Vec<Bytes> = gop.iter().map(|v| v.data.clone()).collect();
        // AAC frames of 1024 samples, numbered from the first.
        let until = video.get(end).map(|v| v.dts);
        let audio_end = audio[audio_at..]
            .iter()
            .position(|a| until.is_some_and(|u| a.pts >= u))
            .map_or(audio.len(), |i| audio_at + i);
        let audio_samples = vec![
            Sample {
                duration: 1024,
                composition_offset: 0,
                sync: true,
            };
            audio_end - audio_at
        ];
        let audio_data: Vec<Bytes> = audio[audio_at..audio_end]
            .iter()
            .map(|a| a.data.clone())
            .collect();
        let audio_base = u64::try_from(ticks(audio[0].pts, rate)).unwrap() + 1024 * audio_at as u64;
        let fragment = fmp4::fragment(
            n as u32 + 1,
            &[
                Run {
                    track: 1,
                    base_decode_time: u64::try_from(vt(start)).unwrap(),
                    samples: &samples,
                    data: &video_data,
                },
                Run {
                    track: 2,
                    base_decode_time: audio_base,
                    samples: &audio_samples,
                    data: &audio_data,
                },
            ],
        )
        .unwrap();
        file.extend_from_slice(&fragment);
        audio_at = audio_end;
    }
    assert_eq!(audio_at, audio.len());
    let mp4 = dir.join("out.mp4");
    std::fs::write(&mp4, &file).unwrap();
    let mp4_arg = mp4.to_str().unwrap();

    // ffprobe reads both tracks, every frame of each.
    let args = format!(
        "-v error -count_frames -show_entries \
         stream=codec_name,width,height,nb_read_frames,sample_rate,channels \
         -of compact=p=0:nk=0 {mp4_arg}"
    );
    let (json, _) = run("ffprobe", &args.split_whitespace().collect::<Vec<_>>());
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert!(
        lines[0].contains("codec_name=h264")
            && lines[0].contains("width=320")
            && lines[0].contains("height=240")
            && lines[0].contains(&format!("nb_read_frames={}", video.len())),
        "{json}"
    );
    assert!(
        lines[1].contains("codec_name=aac")
            && lines[1].contains("sample_rate=48000")
            && lines[1].contains("channels=2")
            && lines[1].contains(&format!("nb_read_frames={}", audio.len())),
        "{json}"
    );
    decodes_without_error(mp4_arg);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ffmpeg decodes `path` to the end without an error.
fn decodes_without_error(path: &str) {
    let (_, err) = run(
        "ffmpeg",
        &["-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
    );
    assert!(err.trim().is_empty(), "{err}");
}

/// ffprobe's count of each stream's frames in `path`: (codec, frames).
fn frame_counts(path: &str) -> Vec<(String, usize)> {
    let args = format!(
        "-v error -count_frames -show_entries stream=codec_name,nb_read_frames \
         -of compact=p=0:nk=1 {path}"
    );
    let (out, _) = run("ffprobe", &args.split_whitespace().collect::<Vec<_>>());
    out.lines()
        .map(|l| {
            let (codec, n) = l.split_once('|').unwrap_or_else(|| panic!("{out}"));
            (
                codec.to_owned(),
                n.trim().parse().unwrap_or_else(|_| panic!("{out}")),
            )
        })
        .collect()
}

/// The same publish cut by `fmp4::Chunker` as a passed-through rung is: an init segment, then
/// chunks of 334 ms parts in segments of a second that start on the GOPs' keyframes. Their
/// concatenation plays every frame that followed the first keyframe.
#[test]
fn the_chunker_cuts_segments_at_keyframes_and_parts_that_play_back_to_back() {
    let dir = work_dir("chunker");
    let flv_path = publish_flv(&dir);
    let mut chunker = fmp4::Chunker::new(
        (true, true),
        std::time::Duration::from_secs(1),
        std::time::Duration::from_millis(334),
    );
    let (mut video, mut audio, mut keyed) = (0, 0, false);
    let mut chunks = Vec::new();
    for f in demux(&flv_path) {
        match &f {
            MediaFrame::Video(v) => {
                keyed |= v.keyframe;
                video += usize::from(keyed);
            }
            MediaFrame::Audio(_) => audio += usize::from(keyed),
            _ => {}
        }
        chunks.extend(chunker.push(f).unwrap());
    }
    chunks.extend(chunker.flush().unwrap());
    let kinds: Vec<ChunkKind> = chunks.iter().map(|c| c.kind).collect();
    assert_eq!(kinds[0], ChunkKind::Init, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == ChunkKind::Init).count(),
        1,
        "{kinds:?}"
    );
    let starts: Vec<&media::cmaf::CmafChunk> = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::SegmentStart)
        .collect();
    assert_eq!(starts.len(), 3, "{kinds:?}");
    assert!(starts.iter().all(|c| c.independent));
    // Parts of about 334 ms (whole frames), each segment a second.
    for c in chunks.iter().filter(|c| c.kind != ChunkKind::Init) {
        let ms = c.duration.as_millis();
        assert!((250..=400).contains(&ms), "a part of {ms} ms: {kinds:?}");
    }
    let file: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
    let mp4 = dir.join("chunked.mp4");
    std::fs::write(&mp4, &file).unwrap();
    let mp4_arg = mp4.to_str().unwrap();
    assert_eq!(
        frame_counts(mp4_arg),
        [("h264".to_owned(), video), ("aac".to_owned(), audio)]
    );
    decodes_without_error(mp4_arg);
    let _ = std::fs::remove_dir_all(&dir);
}
