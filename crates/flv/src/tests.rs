use bytes::Bytes;
use media::h264::AvcDecoderConfigurationRecord;
use media::{MediaFrame, MediaTime};
use proptest::prelude::*;

use crate::cases::{self, Expect};
use crate::{fuzz, Demuxer, FourCc, MetadataHints, Outcome, Track, Unsupported};

#[test]
fn table() {
    let cases = cases::_cases();
    assert!(cases.len() > 40);
    let mut failures = Vec::new();
    for case in &cases {
        let got = case.run(&case.body);
        if !case.check(&got) {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_prefix_of_every_case_is_ok_or_err() {
    for case in cases::_cases() {
        for n in 0..=case.body.len() {
            // Reaching the next line at all is the test: no prefix may panic.
            let result = case.run(&case.body[..n]);
            if n == 0 {
                assert!(
                    result.is_err(),
                    "{}: empty body must be an error",
                    case.name
                );
            }
        }
        let input = case.fuzz_input();
        for n in 0..=input.len() {
            fuzz::parse_tag(&input[..n]);
        }
    }
}

#[test]
fn errors_say_what_was_wrong() {
    let by_name = |name: &str| {
        let case = cases::_cases()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap();
        case.run(&case.body).unwrap_err().to_string()
    };
    assert_eq!(
        by_name("avc composition offset cut short"),
        "FLV video tag is truncated: it ended while reading the composition time offset"
    );
    assert_eq!(
        by_name("avc sequence header with version 0"),
        "invalid H.264 sequence header, check the encoder's H.264 settings: \
         AVCDecoderConfigurationRecord version 0 is not supported (expected 1)"
    );
    assert_eq!(
        by_name("aac unknown packet type"),
        "FLV audio tag has unknown packet type 2"
    );
    assert!(by_name("avc nal length overruns the tag").contains("claims 9 bytes but only 1 remain"));
}

#[test]
fn unsupported_outcomes_name_the_codec() {
    let cases: [(Unsupported, &str); 6] = [
        (
            Unsupported::VideoFourCc(FourCc::HVC1),
            "video codec HEVC (hvc1) over Enhanced RTMP",
        ),
        (
            Unsupported::VideoCodecId(12),
            "video codec id 12 (HEVC, non-standard FLV extension)",
        ),
        (
            Unsupported::AudioFourCc(FourCc::OPUS),
            "audio codec Opus (Opus) over Enhanced RTMP",
        ),
        (Unsupported::AudioFormat(2), "audio format 2 (MP3)"),
        (
            Unsupported::VideoFourCc(FourCc(*b"x\n\0y")),
            "unknown video codec FourCC FourCc(\"x\\x0a\\x00y\") over Enhanced RTMP",
        ),
        (
            Unsupported::Multitrack {
                track: Track::Audio,
                fourcc: FourCc::MP4A,
            },
            "Enhanced RTMP multitrack audio (mp4a)",
        ),
    ];
    for (u, text) in cases {
        assert_eq!(u.to_string(), text);
    }
    assert_eq!(Unsupported::AudioFormat(2).track(), Track::Audio);
    assert_eq!(Unsupported::VideoFourCc(FourCc::AV01).track(), Track::Video);
}

#[test]
fn mp3_config_once_then_frames_and_again_on_change() {
    let mut d = Demuxer::new();
    let tag = |header: [u8; 4]| {
        let mut body = vec![0x2f];
        body.extend_from_slice(&header);
        body.extend_from_slice(&[0u8; 100]);
        Bytes::from(body)
    };
    let stereo_44k = tag([0xff, 0xfb, 0x90, 0x64]);
    let mono_48k = tag([0xff, 0xfb, 0x94, 0xc4]);
    let MediaFrame::AudioConfig(c) = frame(d.push_audio(0, stereo_44k.clone()).unwrap()) else {
        panic!("expected a configuration");
    };
    assert_eq!(c.codec, media::AudioCodec::Mp3);
    assert!(c.record.is_empty());
    assert_eq!(
        (c.sample_rate, c.channels, c.codec_string.as_str()),
        (44_100, 2, "mp3")
    );
    for ts in [26, 52] {
        let MediaFrame::Audio(a) = frame(d.push_audio(ts, stereo_44k.clone()).unwrap()) else {
            panic!("expected a frame");
        };
        assert_eq!(a.pts.as_millis(), i64::from(ts));
        assert_eq!(&a.data[..], &stereo_44k[1..]);
    }
    // A frame whose header cannot be read keeps the configuration in use.
    let MediaFrame::Audio(_) = frame(d.push_audio(78, Bytes::from_static(&[0x2a, 1, 2])).unwrap())
    else {
        panic!("expected a frame");
    };
    let MediaFrame::AudioConfig(c) = frame(d.push_audio(104, mono_48k.clone()).unwrap()) else {
        panic!("expected a new configuration");
    };
    assert_eq!((c.sample_rate, c.channels), (48_000, 1));
    assert_eq!(d.audio_config(), Some(&c));
    assert!(matches!(
        frame(d.push_audio(128, mono_48k).unwrap()),
        MediaFrame::Audio(_)
    ));
    // AAC frames need an AAC configuration; an AAC sequence header switches back.
    assert_eq!(
        d.push_audio(150, Bytes::from_static(&[0xaf, 0x01, 0x21]))
            .unwrap(),
        Outcome::WaitingForConfig(Track::Audio)
    );
    let MediaFrame::AudioConfig(c) = frame(
        d.push_audio(150, Bytes::from_static(cases::AAC_SEQUENCE_HEADER))
            .unwrap(),
    ) else {
        panic!("expected the AAC configuration");
    };
    assert_eq!(c.codec, media::AudioCodec::Aac);
}

fn frame(outcome: Outcome) -> MediaFrame {
    match outcome {
        Outcome::Frame(f) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn timestamps_extend_across_the_rtmp_wrap() {
    let mut d = Demuxer::new();
    let start = u32::MAX - 30;
    d.push_video(start, Bytes::from_static(cases::AVC_SEQUENCE_HEADER))
        .unwrap();
    d.push_audio(start, Bytes::from_static(cases::AAC_SEQUENCE_HEADER))
        .unwrap();
    let key = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
    let aac = Bytes::from_static(&[0xaf, 1, 0x21]);
    let mut last = i64::MIN;
    for (i, ts) in [start, u32::MAX - 7, 9, 32, 55].into_iter().enumerate() {
        let v = frame(d.push_video(ts, key.clone()).unwrap());
        let a = frame(d.push_audio(ts.wrapping_sub(3), aac.clone()).unwrap());
        let dts = v.dts().unwrap().as_millis();
        assert!(dts > last, "step {i}: {dts} after {last}");
        assert_eq!(dts - a.dts().unwrap().as_millis(), 3);
        last = dts;
    }
    assert_eq!(last, (1i64 << 32) + 55);
}

#[test]
fn changed_config_replaces_the_old_one() {
    let mut d = Demuxer::new();
    d.push_video(0, Bytes::from_static(cases::AVC_SEQUENCE_HEADER))
        .unwrap();
    assert_eq!(d.video_config().unwrap().width, 640);
    let MediaFrame::VideoConfig(c) = frame(
        d.push_video(0, Bytes::from_static(cases::AVC_SEQUENCE_HEADER_1080P))
            .unwrap(),
    ) else {
        panic!("expected a config")
    };
    assert_eq!(c.codec_string, "avc1.640028");
    assert_eq!(c.frame_rate, Some(30.0));
    assert_eq!(d.video_config(), Some(&c));
    // A broken header keeps the old configuration.
    assert!(d
        .push_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))
        .is_err());
    assert_eq!(d.video_config(), Some(&c));
    assert!(d.audio_config().is_none());
}

#[test]
fn metadata_fills_in_a_missing_frame_rate() {
    // Baseline 320x240 SPS without VUI, so no frame rate in the bitstream.
    let sps = [0x67, 0x42, 0xc0, 0x0d, 0xf4, 0x0a, 0x0f, 0xc8];
    let record =
        AvcDecoderConfigurationRecord::from_parameter_sets(&[&sps[..]], &[&[0x68, 0xce][..]])
            .unwrap()
            .to_bytes();
    let body = Bytes::from([&[0x17, 0, 0, 0, 0][..], &record].concat());

    let mut d = Demuxer::new();
    let MediaFrame::VideoConfig(c) = frame(d.push_video(0, body.clone()).unwrap()) else {
        panic!()
    };
    assert_eq!((c.width, c.height, c.frame_rate), (320, 240, None));

    let mut d = Demuxer::new();
    d.set_metadata(MetadataHints::from_pairs([
        ("framerate", 29.97),
        ("width", 320.0),
    ]));
    let MediaFrame::VideoConfig(c) = frame(d.push_video(0, body).unwrap()) else {
        panic!()
    };
    assert_eq!(c.frame_rate, Some(29.97));
}

#[test]
fn frames_share_the_tag_buffer() {
    let body = Bytes::from([&[0x17, 1, 0, 0, 0][..], &[0, 0, 0, 2, 0x65, 0x88]].concat());
    let mut d = Demuxer::new();
    d.push_video(0, Bytes::from_static(cases::AVC_SEQUENCE_HEADER))
        .unwrap();
    let MediaFrame::Video(v) = frame(d.push_video(0, body.clone()).unwrap()) else {
        panic!()
    };
    assert_eq!(v.data, body.slice(5..));
    assert_eq!(v.data.as_ptr(), body[5..].as_ptr());
    assert_eq!(v.pts, MediaTime::ZERO);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzz::parse_tag(&data);
    }

    #[test]
    fn mutated_cases_never_panic(index in 0usize..1000, pos in 0usize..64, byte in any::<u8>()) {
        let cases = cases::_cases();
        let case = &cases[index % cases.len()];
        let mut input = case.fuzz_input();
        let at = pos % input.len();
        input[at] = byte;
        fuzz::parse_tag(&input);
    }

    #[test]
    fn timestamp_steps_are_kept(start in any::<u32>(), steps in proptest::collection::vec(-100_000i32..100_000, 1..50)) {
        let mut t = crate::TimestampExtender::new();
        let mut raw = start;
        let mut ext = t.extend(raw);
        for step in steps {
            raw = raw.wrapping_add(step as u32);
            let next = t.extend(raw);
            prop_assert_eq!(next - ext, i64::from(step));
            prop_assert_eq!(next.rem_euclid(1 << 32), i64::from(raw));
            ext = next;
        }
    }
}

#[test]
fn expect_variants_are_used() {
    // Keeps the table's checker honest: a wrong expectation must fail.
    let mut case = cases::_cases().remove(0);
    case.expect = Expect::VideoConfig {
        width: 1,
        height: 1,
    };
    assert!(!case.check(&case.run(&case.body)));
}

/// Writes the table's inputs as fuzz seeds under `fuzz/seeds/flv_tag/`. Run by hand:
/// `cargo test -p flv -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files outside the crate"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/flv_tag");
    std::fs::create_dir_all(&dir).unwrap();
    for case in cases::_cases() {
        let name: String = case
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(dir.join(format!("{name}.bin")), case.fuzz_input()).unwrap();
    }
}
