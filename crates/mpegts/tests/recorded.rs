//! Transport streams recorded from real muxers (ffmpeg and GStreamer), generated at test time.
//! Both tools are required: a missing one fails the test with the command that was tried.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use media::{MediaFrame, MediaTime};
use mpegts::{Demuxer, Error, Outcome};
use proptest::prelude::*;

/// A directory of this process's own for the recordings. nextest runs each test in a process of
/// its own, side by side: a directory shared between processes let one test read a recording
/// that another was still writing.
fn recordings_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("mpegts-recorded")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `program args`, which writes `file` in the test's temporary directory; returns its
/// bytes (the file is removed).
fn record(program: &str, args: &[&str], file: &str) -> Vec<u8> {
    let path = recordings_dir().join(file);
    let output = Command::new(program)
        .args(args)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs `{program}` on PATH to record a transport stream: {e}")
        });
    assert!(
        output.status.success(),
        "`{program} {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(path.parent().unwrap());
    bytes
}

fn ffmpeg_ts() -> &'static [u8] {
    static TS: OnceLock<Vec<u8>> = OnceLock::new();
    TS.get_or_init(|| {
        let args = "-hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=30 \
                    -f lavfi -i sine -t 3 -c:v libx264 -g 30 -sc_threshold 0 -c:a aac -f mpegts";
        record("ffmpeg", &args.split(' ').collect::<Vec<_>>(), "ffmpeg.ts")
    })
}

fn gstreamer_ts() -> &'static [u8] {
    static TS: OnceLock<Vec<u8>> = OnceLock::new();
    TS.get_or_init(|| {
        let pipeline = "-q videotestsrc num-buffers=90 \
            ! video/x-raw,width=320,height=240,framerate=30/1,format=I420 \
            ! x264enc key-int-max=30 ! h264parse ! mpegtsmux name=m ! filesink location=";
        let audio = "audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000,channels=2 \
            ! avenc_aac ! aacparse ! m.";
        // The file path goes right after `location=`; the audio branch follows it.
        let path = recordings_dir().join("gstreamer.ts");
        let line = format!("{pipeline}{} {audio}", path.display());
        let args: Vec<&str> = line.split_whitespace().collect();
        let output = Command::new("gst-launch-1.0")
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs `gst-launch-1.0` (with x264, libav, mpegtsmux) on PATH: {e}"
                )
            });
        assert!(
            output.status.success(),
            "`gst-launch-1.0 {line}` failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(path.parent().unwrap());
        bytes
    })
}

fn demux_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Result<Outcome, Error>>, Demuxer) {
    let mut d = Demuxer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        out.extend(std::iter::from_fn(|| d.poll()));
    }
    d.flush();
    out.extend(std::iter::from_fn(|| d.poll()));
    (out, d)
}

/// What both recordings must give: 320x240 H.264 with a keyframe every 30 frames, and AAC
/// frames with increasing timestamps.
fn check(ts: &[u8], sample_rate: u32, channels: u8) {
    let (out, d) = demux_chunks(ts.chunks(1456));
    let errors: Vec<_> = out.iter().filter(|o| o.is_err()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut video = Vec::new();
    let mut audio = Vec::new();
    let mut video_configs = Vec::new();
    let mut audio_configs = Vec::new();
    for o in &out {
        match o {
            Ok(Outcome::Frame(MediaFrame::VideoConfig(c))) => {
                assert!(video.is_empty(), "config must come before the frames");
                video_configs.push(c.clone());
            }
            Ok(Outcome::Frame(MediaFrame::AudioConfig(c))) => audio_configs.push(c.clone()),
            Ok(Outcome::Frame(MediaFrame::Video(v))) => video.push(v.clone()),
            Ok(Outcome::Frame(MediaFrame::Audio(a))) => audio.push(a.clone()),
            Ok(Outcome::Program {
                video_pid,
                audio_pid,
            }) => {
                assert!(video_pid.is_some() && audio_pid.is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(video_configs.len(), 1);
    let vc = &video_configs[0];
    assert_eq!((vc.width, vc.height, vc.nal_length_size), (320, 240, 4));
    assert!(vc.codec_string.starts_with("avc1."), "{}", vc.codec_string);
    assert_eq!(audio_configs.len(), 1);
    let ac = &audio_configs[0];
    assert_eq!(
        (ac.sample_rate, ac.channels, ac.codec_string.as_str()),
        (sample_rate, channels, "mp4a.40.2")
    );

    assert_eq!(video.len(), 90);
    assert!(
        video.windows(2).all(|w| w[0].dts <= w[1].dts),
        "video DTS must not decrease"
    );
    assert!(video.iter().all(|v| v.pts >= v.dts));
    let keyframes: Vec<usize> = video
        .iter()
        .enumerate()
        .filter(|(_, v)| v.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 30, 60]);
    // Each frame is well-formed length-prefixed H.264 without parameter sets or delimiters.
    for v in &video {
        let nals: Vec<&[u8]> = media::h264::length_prefixed_nal_units(&v.data, 4)
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(nals.iter().all(|n| !matches!(n[0] & 0x1f, 7..=9)));
        assert_eq!(v.keyframe, nals.iter().any(|n| n[0] & 0x1f == 5));
    }
    // 30 fps: 90 frames span 89 frame durations of DTS (GStreamer rounds its nanosecond
    // times to 90 kHz ticks, so allow a millisecond).
    let span = video[89].dts - video[0].dts;
    let error = (span - MediaTime::from_90khz(89 * 3000)).as_nanos().abs();
    assert!(error < 1_000_000, "90 frames span {span}");

    assert!(
        audio.len() > 2 * sample_rate as usize / 1024,
        "{} audio frames",
        audio.len()
    );
    assert!(
        audio.windows(2).all(|w| w[0].pts < w[1].pts),
        "audio PTS must increase"
    );
    let frame = 1024.0 / f64::from(sample_rate);
    for w in audio.windows(2) {
        let step = (w[1].pts - w[0].pts).as_secs_f64();
        assert!(
            (step - frame).abs() < 0.0001,
            "audio step {step} s, expected {frame} s"
        );
    }
    // Audio and video start on one timeline.
    let skew = (audio[0].pts - video[0].pts).as_secs_f64().abs();
    assert!(skew < 0.5, "A/V start {skew} s apart");

    let stats = d.stats();
    assert_eq!(
        (stats.cc_errors, stats.pes_dropped, stats.skipped_bytes),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn ffmpeg_recording() {
    check(ffmpeg_ts(), 44_100, 1);
}

#[test]
fn gstreamer_recording() {
    check(gstreamer_ts(), 48_000, 2);
}

#[test]
fn common_chunkings_agree() {
    for ts in [ffmpeg_ts(), gstreamer_ts()] {
        let whole = demux_chunks([ts]).0;
        for size in [1316, 1456, 188, 1, 7 * 188 + 1] {
            assert_eq!(demux_chunks(ts.chunks(size)).0, whole, "chunks of {size}");
        }
    }
}

#[test]
fn dropped_packet_in_recording() {
    let ts = ffmpeg_ts();
    let (clean, _) = demux_chunks([ts]);
    let packets: Vec<&[u8]> = ts.chunks(188).collect();
    let middle = packets.len() / 2;
    // The first video packet after the middle that continues a PES.
    let pid_of = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1f, p[2]]);
    let video_pid = clean
        .iter()
        .find_map(|o| match o {
            Ok(Outcome::Program { video_pid, .. }) => *video_pid,
            _ => None,
        })
        .unwrap();
    let victim = (middle..packets.len())
        .find(|&i| pid_of(packets[i]) == video_pid && packets[i][1] & 0x40 == 0)
        .unwrap();
    let damaged: Vec<u8> = packets
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != victim)
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    let (out, d) = demux_chunks(damaged.chunks(1456));
    assert_eq!(d.stats().cc_errors, 1);
    assert_eq!(d.stats().pes_dropped, 1);
    let video = out
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::Frame(MediaFrame::Video(_)))))
        .count();
    assert_eq!(video, 89, "only the damaged frame is lost");
}

#[test]
fn garbage_then_recording() {
    let ts = gstreamer_ts();
    let mut data: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let garbage = data.len();
    data.extend_from_slice(ts);
    let (out, d) = demux_chunks(data.chunks(1456));
    let (clean, _) = demux_chunks([ts]);
    // Random bytes may hold a false alignment for a packet or two; after that it is the same.
    assert!(d.stats().skipped_bytes as usize <= garbage);
    let tail = |o: &[Result<Outcome, Error>]| -> Vec<Result<Outcome, Error>> {
        o.iter()
            .filter(|o| matches!(o, Ok(Outcome::Frame(MediaFrame::Video(_)))))
            .cloned()
            .collect()
    };
    assert_eq!(tail(&out), tail(&clean));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any split of a real recording gives the same outcomes as feeding it whole.
    #[test]
    fn split_invariance_on_ffmpeg(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..300)) {
        let ts = ffmpeg_ts();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(ts.len())).collect();
        points.extend([0, ts.len()]);
        points.sort_unstable();
        let pieces = points.windows(2).map(|w| &ts[w[0]..w[1]]);
        let (split, ds) = demux_chunks(pieces);
        let (whole, dw) = demux_chunks([ts]);
        prop_assert_eq!(split, whole);
        prop_assert_eq!(ds.stats(), dw.stats());
    }
}
