use media::{MediaFrame, MediaTime};
use proptest::prelude::*;

use crate::testing::{self, synthetic_stream, TsWriter, AUDIO_PID, PMT_PID, VIDEO_PID};
use crate::{fuzz, Demuxer, DropReason, Error, Outcome, Track, Unsupported};

/// Everything the demuxer says about `chunks`, flushed at the end.
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

fn demux(data: &[u8]) -> (Vec<Result<Outcome, Error>>, Demuxer) {
    demux_chunks([data])
}

fn frames(out: &[Result<Outcome, Error>]) -> Vec<&MediaFrame> {
    out.iter()
        .filter_map(|o| match o {
            Ok(Outcome::Frame(f)) => Some(f),
            _ => None,
        })
        .collect()
}

fn video_dts(out: &[Result<Outcome, Error>]) -> Vec<(MediaTime, MediaTime, bool)> {
    frames(out)
        .into_iter()
        .filter_map(|f| match f {
            MediaFrame::Video(v) => Some((v.dts, v.pts, v.keyframe)),
            _ => None,
        })
        .collect()
}

fn audio_pts(out: &[Result<Outcome, Error>]) -> Vec<MediaTime> {
    frames(out)
        .into_iter()
        .filter_map(|f| match f {
            MediaFrame::Audio(a) => Some(a.pts),
            _ => None,
        })
        .collect()
}

#[test]
fn synthetic_stream_demuxes() {
    let (out, d) = demux(&synthetic_stream(900_000, 60));
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let video = video_dts(&out);
    assert_eq!(video.len(), 60);
    assert_eq!(video[0].0, MediaTime::from_90khz(900_000));
    assert_eq!(video[0].1, MediaTime::from_90khz(903_000));
    let keyframes: Vec<usize> = video
        .iter()
        .enumerate()
        .filter(|(_, v)| v.2)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [0, 30]);
    // Two ADTS frames per PES, the second 1024 samples (21.33 ms at 48 kHz) after the first.
    let audio = audio_pts(&out);
    assert_eq!(audio[0], MediaTime::from_90khz(900_000));
    assert_eq!(
        audio[1] - audio[0],
        MediaTime::from_nanos(1024 * 1_000_000_000 / 48_000)
    );
    assert_eq!(audio[2], MediaTime::from_90khz(900_000 + 3840));
    assert!(audio.windows(2).all(|w| w[0] < w[1]));
    // Configurations come first, once each.
    assert!(matches!(
        out[0],
        Ok(Outcome::Program {
            video_pid: Some(VIDEO_PID),
            audio_pid: Some(AUDIO_PID)
        })
    ));
    let configs = frames(&out)
        .into_iter()
        .filter(|f| matches!(f, MediaFrame::VideoConfig(_) | MediaFrame::AudioConfig(_)))
        .count();
    assert_eq!(configs, 2);
    assert_eq!(
        d.video_config().map(|c| (c.width, c.height)),
        Some((640, 360))
    );
    assert_eq!(
        d.stats().cc_errors + d.stats().pes_dropped + d.stats().skipped_bytes,
        0
    );
}

#[test]
fn video_frames_are_length_prefixed_without_parameter_sets() {
    let (out, _) = demux(&synthetic_stream(0, 2));
    let MediaFrame::Video(first) = frames(&out)
        .into_iter()
        .find(|f| matches!(f, MediaFrame::Video(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let nals: Vec<&[u8]> = media::h264::length_prefixed_nal_units(&first.data, 4)
        .collect::<Result<_, _>>()
        .unwrap();
    let types: Vec<u8> = nals.iter().map(|n| n[0] & 0x1f).collect();
    assert_eq!(types, [5]);
}

#[test]
fn pts_wraparound_keeps_increasing() {
    // Starts 1 s before the 33-bit wrap and runs 3 s across it.
    let start = (1u64 << 33) - 90_000;
    let (out, d) = demux(&synthetic_stream(start, 90));
    let video = video_dts(&out);
    assert_eq!(video.len(), 90);
    assert!(
        video.windows(2).all(|w| w[1].0 > w[0].0),
        "video DTS must keep increasing"
    );
    assert_eq!(video[89].0, MediaTime::from_90khz(start as i64 + 89 * 3000));
    let audio = audio_pts(&out);
    assert!(
        audio.windows(2).all(|w| w[1] > w[0]),
        "audio PTS must keep increasing"
    );
    assert!(*audio.last().unwrap() > MediaTime::from_90khz(1 << 33));
    // Audio and video stay on one timeline: no gap of more than a few frames between them.
    let last_video = video[89].0;
    assert!((last_video - *audio.last().unwrap()).as_millis().abs() < 100);
    assert_eq!(d.stats().cc_errors, 0);
}

#[test]
fn dropped_packet_counts_a_continuity_error_and_recovers() {
    let stream = synthetic_stream(0, 60);
    // Drop the second packet of video frame 10's PES.
    let packets: Vec<&[u8]> = stream.chunks(188).collect();
    let video_starts: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| u16::from_be_bytes([p[1] & 0x1f, p[2]]) == VIDEO_PID && p[1] & 0x40 != 0)
        .map(|(i, _)| i)
        .collect();
    let victim = video_starts[10] + 1;
    let damaged: Vec<u8> = packets
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != victim)
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    let (out, d) = demux(&damaged);
    assert_eq!(d.stats().cc_errors, 1);
    assert_eq!(d.stats().pes_dropped, 1);
    assert!(out.contains(&Ok(Outcome::Dropped {
        track: Track::Video,
        reason: DropReason::ContinuityError
    })));
    let video = video_dts(&out);
    assert_eq!(video.len(), 59);
    assert_eq!(video.last().unwrap().0, MediaTime::from_90khz(59 * 3000));
}

#[test]
fn transport_error_and_duplicates() {
    let stream = synthetic_stream(0, 30);
    let mut packets: Vec<Vec<u8>> = stream.chunks(188).map(<[u8]>::to_vec).collect();
    let audio_packet = packets
        .iter()
        .position(|p| u16::from_be_bytes([p[1] & 0x1f, p[2]]) == AUDIO_PID)
        .unwrap();
    packets[audio_packet][1] |= 0x80;
    // Duplicate a video packet (the same CC twice in a row is allowed and discarded).
    let video_packet = packets
        .iter()
        .rposition(|p| u16::from_be_bytes([p[1] & 0x1f, p[2]]) == VIDEO_PID)
        .unwrap();
    let dup = packets[video_packet].clone();
    packets.insert(video_packet, dup);
    let (out, d) = demux(&packets.concat());
    assert_eq!(d.stats().transport_errors, 1);
    assert_eq!(d.stats().duplicate_packets, 1);
    assert_eq!(video_dts(&out).len(), 30);
}

#[test]
fn garbage_before_and_inside_is_skipped() {
    let stream = synthetic_stream(0, 30);
    // Sync bytes in the garbage, but never three 188 bytes apart.
    let mut data = [&b"\x47 not a transport stream"[..], &[0x33; 75]]
        .concat()
        .repeat(5);
    let garbage_len = data.len() as u64;
    data.extend_from_slice(&stream[..188 * 40]);
    data.extend_from_slice(&[0x47, 1, 2, 3, 4, 5, 6, 7, 8]);
    data.extend_from_slice(&stream[188 * 40..]);
    let (out, d) = demux(&data);
    assert_eq!(d.stats().skipped_bytes, garbage_len + 9);
    assert_eq!(d.stats().sync_losses, 1);
    // Only what the inserted bytes broke is lost.
    assert!(video_dts(&out).len() >= 29);
    assert_eq!(
        frames(&out)
            .iter()
            .filter(|f| matches!(f, MediaFrame::VideoConfig(_)))
            .count(),
        1
    );
}

#[test]
fn frames_before_parameter_sets_wait() {
    let mut w = TsWriter::new();
    let mut data = w.pat(PMT_PID);
    data.extend(w.pmt(PMT_PID, &[(0x1b, VIDEO_PID)]));
    data.extend(w.pes(
        VIDEO_PID,
        0xe0,
        0,
        None,
        &testing::access_unit(false, 50),
        false,
    ));
    data.extend(w.pes(
        VIDEO_PID,
        0xe0,
        3000,
        None,
        &testing::access_unit(true, 50),
        false,
    ));
    let (out, _) = demux(&data);
    assert_eq!(out[1], Ok(Outcome::WaitingForConfig(Track::Video)));
    assert!(matches!(
        out[2],
        Ok(Outcome::Frame(MediaFrame::VideoConfig(_)))
    ));
    assert!(
        matches!(&out[3], Ok(Outcome::Frame(MediaFrame::Video(v))) if v.keyframe && v.dts == v.pts)
    );
}

#[test]
fn unsupported_codecs_are_named() {
    let mut w = TsWriter::new();
    let mut data = w.pat(PMT_PID);
    data.extend(w.pmt(PMT_PID, &[(0x24, 0x100), (0x03, 0x101), (0x06, 0x102)]));
    let (out, _) = demux(&data);
    let hevc = Unsupported {
        track: Track::Video,
        stream_type: 0x24,
    };
    assert_eq!(
        out,
        [
            Ok(Outcome::Unsupported(hevc)),
            Ok(Outcome::Unsupported(Unsupported {
                track: Track::Audio,
                stream_type: 0x03
            })),
        ]
    );
    assert_eq!(
        hevc.to_string(),
        "video stream type 0x24 (HEVC); set the encoder to H.264"
    );
    // H.264 with LATM audio: only the audio is refused.
    let mut data = w.pat(PMT_PID);
    data.extend(w.pmt(PMT_PID, &[(0x11, 0x101), (0x1b, 0x100)]));
    let (out, _) = demux(&data);
    assert_eq!(
        out[0],
        Ok(Outcome::Unsupported(Unsupported {
            track: Track::Audio,
            stream_type: 0x11
        }))
    );
    assert_eq!(
        out[1],
        Ok(Outcome::Program {
            video_pid: Some(0x100),
            audio_pid: None
        })
    );
}

#[test]
fn oversized_pes_is_dropped() {
    let mut w = TsWriter::new();
    let mut data = w.pat(PMT_PID);
    data.extend(w.pmt(PMT_PID, &[(0x0f, AUDIO_PID)]));
    let huge: Vec<u8> = (0..100).flat_map(|_| testing::adts_frame(1000)).collect();
    data.extend(w.pes(AUDIO_PID, 0xc0, 0, None, &huge, false));
    data.extend(w.pes(AUDIO_PID, 0xc0, 9000, None, &testing::adts_frame(10), true));
    let (out, d) = demux(&data);
    assert_eq!(d.stats().pes_oversized, 1);
    assert!(out.contains(&Ok(Outcome::Dropped {
        track: Track::Audio,
        reason: DropReason::TooLarge
    })));
    assert_eq!(audio_pts(&out), [MediaTime::from_90khz(9000)]);
}

#[test]
fn bad_adts_is_an_error_not_a_panic() {
    let mut w = TsWriter::new();
    let mut data = w.pat(PMT_PID);
    data.extend(w.pmt(PMT_PID, &[(0x0f, AUDIO_PID)]));
    data.extend(w.pes(AUDIO_PID, 0xc0, 0, None, &[1, 2, 3, 4, 5, 6, 7, 8], true));
    let (out, d) = demux(&data);
    assert!(matches!(out.last(), Some(Err(Error::Adts(_)))), "{out:?}");
    // The demuxer goes on.
    let mut d = d;
    d.push(&w.pes(AUDIO_PID, 0xc0, 1000, None, &testing::adts_frame(5), true));
    d.flush();
    assert!(matches!(
        d.poll(),
        Some(Ok(Outcome::Frame(MediaFrame::AudioConfig(_))))
    ));
}

#[test]
fn flipped_bytes_never_panic() {
    let stream = synthetic_stream(0, 40);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let mut data = stream.clone();
        for _ in 0..(1 + round % 20) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = (rng % data.len() as u64) as usize;
            data[at] ^= (rng >> 32) as u8 | 1;
        }
        let _ = demux_chunks(data.chunks(1 + (round * 37) % 1500));
    }
}

#[test]
fn fuzz_entry_point_on_seeds() {
    fuzz::demux(&[]);
    fuzz::demux(&[0x13]);
    let stream = synthetic_stream(0, 10);
    for selector in [0x00, 0x05, 0x1f] {
        let mut input = vec![selector];
        input.extend_from_slice(&stream);
        fuzz::demux(&input);
        input.truncate(1 + stream.len() / 3);
        fuzz::demux(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn split_invariance(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        let stream = synthetic_stream((1 << 33) - 30_000, 20);
        let whole = demux(&stream);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let pieces = points.windows(2).map(|w| &stream[w[0]..w[1]]);
        let split = demux_chunks(pieces);
        prop_assert_eq!(&whole.0, &split.0);
        prop_assert_eq!(whole.1.stats(), split.1.stats());
    }

    #[test]
    fn arbitrary_bytes_never_panic(selector in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut input = vec![selector];
        input.extend(body);
        fuzz::demux(&input);
    }

    #[test]
    fn packet_shaped_noise_never_panics(
        selector in any::<u8>(),
        packets in proptest::collection::vec((0u16..0x120, any::<u8>(), proptest::collection::vec(any::<u8>(), 184)), 0..40),
    ) {
        // Valid sync and PIDs near the ones in use, so the layers behind sync are reached.
        let mut input = vec![selector | 0x10];
        for (pid, flags, payload) in packets {
            let pid = if pid >= 0x100 { pid } else { [0, PMT_PID, VIDEO_PID, AUDIO_PID][usize::from(pid % 4)] };
            input.extend_from_slice(&[0x47, (flags & 0xe0) | (pid >> 8) as u8, pid as u8, flags.rotate_left(4)]);
            input.extend(payload);
        }
        fuzz::demux(&input);
    }
}
