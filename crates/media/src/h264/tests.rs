use bytes::Bytes;

use super::*;
use crate::bits::BitWriter;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Real SPS/PPS produced by ffmpeg + libx264, with the values ffprobe reports.
struct Vector {
    name: &'static str,
    sps: &'static str,
    pps: &'static str,
    profile: u8,
    constraints: u8,
    level: u8,
    chroma: u8,
    width: u32,
    height: u32,
    fps: Option<f64>,
    codec: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "x264 640x360 Main 25 fps",
        sps: "674d401eeca05017fcb808800000030080000019078b16cb",
        pps: "68ebe3cb20",
        profile: 77,
        constraints: 0x40,
        level: 30,
        chroma: 1,
        width: 640,
        height: 360,
        fps: Some(25.0),
        codec: "avc1.4d401e",
    },
    Vector {
        name: "x264 1920x1080 High 30 fps (coded 1088, cropped)",
        sps: "67640028acd940780227e5c044000003000400000300f03c60c658",
        pps: "68ebe3cb22c0",
        profile: 100,
        constraints: 0,
        level: 40,
        chroma: 1,
        width: 1920,
        height: 1080,
        fps: Some(30.0),
        codec: "avc1.640028",
    },
    Vector {
        name: "x264 320x240 Constrained Baseline 15 fps",
        sps: "6742c00cd90141fb0110000003001000000301e0f142a480",
        pps: "68cb83cb20",
        profile: 66,
        constraints: 0xc0,
        level: 12,
        chroma: 1,
        width: 320,
        height: 240,
        fps: Some(15.0),
        codec: "avc1.42c00c",
    },
    Vector {
        name: "x264 1280x720 High 4:4:4 Predictive 29.97 fps",
        sps: "67f4001f919b280a00b76022000007d20001d4c01e30632c",
        pps: "68ebe3c44844",
        profile: 244,
        constraints: 0,
        level: 31,
        chroma: 3,
        width: 1280,
        height: 720,
        fps: Some(30_000.0 / 1001.0),
        codec: "avc1.f4001f",
    },
    Vector {
        name: "x264 1276x716 High 4:4:4 (4:4:4 crop units are 1 pixel)",
        sps: "67f4001f919b280a00b7cb2e022000007d20001d4c01e30632c0",
        pps: "68ebe3c44c000440",
        profile: 244,
        constraints: 0,
        level: 31,
        chroma: 3,
        width: 1276,
        height: 716,
        fps: Some(30_000.0 / 1001.0),
        codec: "avc1.f4001f",
    },
    Vector {
        name: "x264 854x480 High 4:2:2 10-bit 24 fps",
        sps: "677a001eb6cd940d83de6f011000000300100000030300f162d960",
        pps: "68ebe3cb22c0",
        profile: 122,
        constraints: 0,
        level: 30,
        chroma: 2,
        width: 854,
        height: 480,
        fps: Some(24.0),
        codec: "avc1.7a001e",
    },
    Vector {
        name: "x264 1280x720 High interlaced (MBAFF, field-pair crop units)",
        sps: "67640020acd940500bbf2e0220000003002000000c83e2c5b2c0",
        pps: "68fba3cb22c0",
        profile: 100,
        constraints: 0,
        level: 32,
        chroma: 1,
        width: 1280,
        height: 720,
        fps: Some(50.0),
        codec: "avc1.640020",
    },
];

#[test]
fn real_sps_vectors() {
    for v in VECTORS {
        let sps = Sps::parse(&hex(v.sps)).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(sps.profile_idc, v.profile, "{}", v.name);
        assert_eq!(sps.constraint_flags, v.constraints, "{}", v.name);
        assert_eq!(sps.level_idc, v.level, "{}", v.name);
        assert_eq!(sps.chroma_format_idc, v.chroma, "{}", v.name);
        assert_eq!((sps.width, sps.height), (v.width, v.height), "{}", v.name);
        assert_eq!(sps.frame_rate, v.fps, "{}", v.name);
        assert_eq!(sps.codec_string(), v.codec, "{}", v.name);
    }
}

#[test]
fn detail_fields() {
    let s = Sps::parse(&hex(VECTORS[5].sps)).unwrap();
    assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (10, 10));
    assert!(s.frame_mbs_only);
    assert_eq!(s.sample_aspect_ratio, Some((1, 1)));
    let s = Sps::parse(&hex(VECTORS[6].sps)).unwrap();
    assert!(!s.frame_mbs_only);
    assert_eq!(s.timing, Some((1, 100)));
}

#[test]
fn avcc_round_trip_and_build() {
    for v in VECTORS {
        let sps = hex(v.sps);
        let pps = hex(v.pps);
        let rec = AvcDecoderConfigurationRecord::from_parameter_sets(&[&sps], &[&pps]).unwrap();
        assert_eq!(rec.profile_indication, v.profile);
        assert_eq!(rec.nal_length_size, 4);
        assert_eq!(
            rec.high_profile_ext.is_some(),
            matches!(v.profile, 100 | 110 | 122 | 144)
        );
        let bytes = rec.to_bytes();
        let back = AvcDecoderConfigurationRecord::parse(&bytes).unwrap();
        assert_eq!(back, rec, "{}", v.name);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.first_sps().unwrap().width, v.width);
    }
}

#[test]
fn avcc_as_ffmpeg_writes_it() {
    // `ffmpeg -i main360.h264 -c copy out.flv`: the FLV sequence header's avcC.
    let rec = hex(concat!(
        "014d401effe10018674d401eeca05017fcb808800000030080000019078b16cb",
        "01000568ebe3cb20"
    ));
    let parsed = AvcDecoderConfigurationRecord::parse(&rec).unwrap();
    assert_eq!(parsed.nal_length_size, 4);
    assert_eq!(parsed.sps.len(), 1);
    assert_eq!(parsed.pps.len(), 1);
    assert_eq!(parsed.high_profile_ext, None);
    assert_eq!(&parsed.to_bytes()[..], &rec[..]);

    // The same for 1080p High: ffmpeg appends the high-profile extension (fd f8 f8 00).
    let rec = hex(concat!(
        "01640028ffe1001b67640028acd940780227e5c044000003000400000300f03c60c658",
        "01000668ebe3cb22c0fdf8f800"
    ));
    let parsed = AvcDecoderConfigurationRecord::parse(&rec).unwrap();
    let ext = parsed.high_profile_ext.clone().unwrap();
    assert_eq!((ext.chroma_format, ext.bit_depth_luma_minus8), (1, 0));
    assert_eq!(&parsed.to_bytes()[..], &rec[..]);
    let built = AvcDecoderConfigurationRecord::from_parameter_sets(&parsed.sps, &parsed.pps);
    assert_eq!(built.unwrap(), parsed);
    let cfg = video_config(Bytes::from(rec)).unwrap();
    assert_eq!(
        (cfg.width, cfg.height, cfg.frame_rate),
        (1920, 1080, Some(30.0))
    );
    assert_eq!(cfg.codec_string, "avc1.640028");
    assert_eq!(cfg.nal_length_size, 4);
}

#[test]
fn avcc_errors() {
    use H264Error::*;
    let ok = AvcDecoderConfigurationRecord::from_parameter_sets(
        &[hex(VECTORS[0].sps)],
        &[hex(VECTORS[0].pps)],
    )
    .unwrap()
    .to_bytes();
    assert_eq!(
        AvcDecoderConfigurationRecord::parse(&[]),
        Err(Truncated("configurationVersion"))
    );
    let mut bad = ok.to_vec();
    bad[0] = 0;
    assert_eq!(
        AvcDecoderConfigurationRecord::parse(&bad),
        Err(UnsupportedVersion(0))
    );
    let mut bad = ok.to_vec();
    bad[4] = 0xfe;
    assert_eq!(
        AvcDecoderConfigurationRecord::parse(&bad),
        Err(InvalidNalLengthSize)
    );
    let mut bad = ok.to_vec();
    bad[5] = 0xe0;
    assert!(AvcDecoderConfigurationRecord::parse(&bad).is_err());
    assert_eq!(
        AvcDecoderConfigurationRecord::parse(&[1, 66, 0, 30, 0xff, 0xe0, 0]),
        Err(NoSps)
    );
    for n in 0..ok.len() {
        assert!(
            AvcDecoderConfigurationRecord::parse(&ok[..n]).is_err(),
            "prefix {n}"
        );
    }
    let sps = hex(VECTORS[0].sps);
    let pps = hex(VECTORS[0].pps);
    let none: [&[u8]; 0] = [];
    assert_eq!(
        AvcDecoderConfigurationRecord::from_parameter_sets(&none, &[&pps]),
        Err(NoSps)
    );
    assert_eq!(
        AvcDecoderConfigurationRecord::from_parameter_sets(&[&sps], &none),
        Err(NoPps)
    );
    assert_eq!(
        AvcDecoderConfigurationRecord::from_parameter_sets(&[&sps], &[&sps]),
        Err(UnexpectedNalType {
            expected: 8,
            found: 7
        })
    );
}

#[test]
fn sps_prefixes_never_panic() {
    for v in VECTORS {
        let sps = hex(v.sps);
        for n in 0..sps.len() {
            let _ = Sps::parse(&sps[..n]);
        }
        // The fields up to the VUI end well before the last byte; a cut inside the VUI
        // loses only the frame rate.
        assert!(Sps::parse(&sps[..4]).is_err());
    }
    assert_eq!(Sps::parse(&[]), Err(H264Error::EmptyNal));
    assert!(matches!(
        Sps::parse(&[0x68, 0]),
        Err(H264Error::UnexpectedNalType { .. })
    ));
}

/// Writes an SPS with the given high-profile fields and scaling lists, for the paths no
/// x264 stream exercises.
fn synthetic_sps(
    profile: u8,
    chroma: u32,
    separate_planes: bool,
    scaling: bool,
    poc_type: u32,
    crop: [u32; 4],
) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.write_bits(8, profile.into());
    w.write_bits(8, 0);
    w.write_bits(8, 40);
    w.write_ue(0);
    w.write_ue(chroma);
    if chroma == 3 {
        w.write_bit(separate_planes);
    }
    w.write_ue(0);
    w.write_ue(0);
    w.write_bit(false);
    w.write_bit(scaling);
    if scaling {
        let lists = if chroma == 3 { 12 } else { 8 };
        for i in 0..lists {
            match i % 3 {
                0 => w.write_bit(false),
                1 => {
                    // Use the default matrix: delta -8 makes nextScale 0 at once.
                    w.write_bit(true);
                    w.write_se(-8);
                }
                _ => {
                    w.write_bit(true);
                    let size = if i < 6 { 16 } else { 64 };
                    for j in 0..size {
                        w.write_se(if j % 2 == 0 { 3 } else { -2 });
                    }
                }
            }
        }
    }
    w.write_ue(0); // log2_max_frame_num_minus4
    w.write_ue(poc_type);
    match poc_type {
        0 => w.write_ue(2),
        1 => {
            w.write_bit(false);
            w.write_se(-1);
            w.write_se(2);
            w.write_ue(3);
            for v in [1, -1, 5] {
                w.write_se(v);
            }
        }
        _ => {}
    }
    w.write_ue(4); // max_num_ref_frames
    w.write_bit(false);
    w.write_ue(79); // 1280
    w.write_ue(44); // 720
    w.write_bit(true); // frame_mbs_only
    w.write_bit(true);
    let cropped = crop.iter().any(|&c| c > 0);
    w.write_bit(cropped);
    if cropped {
        for c in crop {
            w.write_ue(c);
        }
    }
    w.write_bit(true); // vui
    w.write_bit(true); // aspect ratio
    w.write_bits(8, 255);
    w.write_bits(16, 4);
    w.write_bits(16, 3);
    w.write_bit(true); // overscan
    w.write_bit(false);
    w.write_bit(true); // video signal type
    w.write_bits(4, 5);
    w.write_bit(true);
    w.write_bits(24, 0x010101);
    w.write_bit(true); // chroma loc
    w.write_ue(1);
    w.write_ue(1);
    w.write_bit(true); // timing
    w.write_bits(32, 1001);
    w.write_bits(32, 120_000);
    w.write_bit(true);
    w.write_bit(true); // stop bit
    let rbsp = w.finish();
    // Add emulation prevention the way an encoder would.
    let mut nal = vec![0x67];
    let mut zeros = 0;
    for b in rbsp {
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        nal.push(b);
    }
    nal
}

/// The synthetic 4:4:4 SPS with scaling lists, as bytes. ffmpeg's `trace_headers` reads
/// the same fields from it (scaling matrix present, crop 1/2/3/4, SAR 4:3, 1001/120000),
/// which checks the writer above against an independent parser.
const SYNTHETIC_444_SCALING: &str = concat!(
    "67f4002891a8466298a6298a6298a6298a8466298a6298a6298a6298a8466298a6298a6298a6298a6298a629",
    "8a6298a6298a6298a6298a6298a6298a6298a6298a6298a6298a8466298a6298a6298a6298a6298a6298a629",
    "8a6298a6298a6298a6298a6298a6298a6298a6298a6298bb280a00b7a642ffe00080007560202034a000007d",
    "20003a9818",
);

#[test]
fn synthetic_vector_is_stable() {
    assert_eq!(
        synthetic_sps(244, 3, false, true, 0, [1, 2, 3, 4]),
        hex(SYNTHETIC_444_SCALING)
    );
}

#[test]
fn synthetic_high_profiles() {
    let s = Sps::parse(&synthetic_sps(244, 3, false, true, 0, [1, 2, 3, 4])).unwrap();
    assert_eq!(s.chroma_format_idc, 3);
    assert_eq!((s.width, s.height), (1277, 713));
    assert_eq!(s.sample_aspect_ratio, Some((4, 3)));
    assert_eq!(s.frame_rate, Some(120_000.0 / 2002.0));

    let s = Sps::parse(&synthetic_sps(244, 3, true, true, 1, [1, 2, 3, 4])).unwrap();
    assert!(s.separate_colour_plane);
    assert_eq!((s.width, s.height), (1277, 713));

    let s = Sps::parse(&synthetic_sps(100, 1, false, true, 2, [1, 2, 3, 4])).unwrap();
    assert_eq!((s.width, s.height), (1274, 706));
    assert_eq!(s.timing, Some((1001, 120_000)));

    let s = Sps::parse(&synthetic_sps(122, 2, false, false, 0, [0, 0, 0, 8])).unwrap();
    assert_eq!((s.width, s.height), (1280, 712));

    let s = Sps::parse(&synthetic_sps(100, 0, false, false, 0, [1, 0, 1, 0])).unwrap();
    assert_eq!((s.width, s.height), (1279, 719));

    assert!(matches!(
        Sps::parse(&synthetic_sps(100, 1, false, false, 0, [400, 400, 0, 0])),
        Err(H264Error::BadCropping { .. })
    ));
    assert!(matches!(
        Sps::parse(&synthetic_sps(100, 4, false, false, 0, [0; 4])),
        Err(H264Error::OutOfRange {
            field: "chroma_format_idc",
            value: 4
        })
    ));
    let sps = synthetic_sps(244, 3, false, true, 1, [1, 2, 3, 4]);
    for n in 0..sps.len() {
        let _ = Sps::parse(&sps[..n]);
    }
}

#[test]
fn emulation_prevention() {
    assert_eq!(
        remove_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3]),
        [0, 0, 1, 0, 0]
    );
    assert_eq!(
        remove_emulation_prevention(&[0, 0, 3, 0, 0, 3, 0]),
        [0, 0, 0, 0, 0]
    );
    assert_eq!(remove_emulation_prevention(&[0, 3, 0, 3]), [0, 3, 0, 3]);
}

#[test]
fn annex_b_split_and_convert() {
    let stream = [
        &[0xaa, 0, 0, 0, 1, 0x09, 0xf0][..],
        &[0, 0, 1, 0x67, 1, 2, 0, 0],
        &[0, 0, 0, 1, 0x68, 3],
        &[0, 0, 1],
        &[0, 0, 1, 0x65, 0, 0, 3, 1, 0, 0],
    ]
    .concat();
    let nals: Vec<&[u8]> = annex_b_nal_units(&stream).collect();
    assert_eq!(
        nals,
        [
            &[0x09, 0xf0][..],
            &[0x67, 1, 2],
            &[0x68, 3],
            &[0x65, 0, 0, 3, 1]
        ]
    );
    let lp = annex_b_to_length_prefixed(&stream).unwrap();
    let back: Vec<&[u8]> = length_prefixed_nal_units(&lp, 4)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, nals);
    assert_eq!(&lp[..6], &[0, 0, 0, 2, 0x09, 0xf0]);
    assert_eq!(annex_b_nal_units(&[1, 2, 3]).count(), 0);
    assert_eq!(annex_b_nal_units(&[]).count(), 0);
    assert_eq!(annex_b_to_length_prefixed(&[0, 0, 1]).unwrap().len(), 0);
}

#[test]
fn length_prefixed_errors() {
    let it: Vec<_> = length_prefixed_nal_units(&[0, 2, 0x65, 1, 0, 5, 1], 2).collect();
    assert_eq!(it.len(), 2);
    assert_eq!(it[0], Ok(&[0x65, 1][..]));
    assert_eq!(
        it[1],
        Err(H264Error::NalLengthOverrun {
            claimed: 5,
            available: 1
        })
    );
    let it: Vec<_> = length_prefixed_nal_units(&[0, 0, 0], 4).collect();
    assert_eq!(it, [Err(H264Error::Truncated("NAL unit length prefix"))]);
    let it: Vec<_> = length_prefixed_nal_units(&[0], 0).collect();
    assert_eq!(it, [Err(H264Error::InvalidNalLengthSize)]);
}
