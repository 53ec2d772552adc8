//! One table of tag bodies, valid and invalid, with what the demuxer should make of each. The
//! unit tests run it, and the `fuzz/` crate can write its bodies out as seeds
//! ([`Case::fuzz_input`]).

use bytes::Bytes;
use media::{MediaFrame, MediaTime};

use crate::demux::Demuxer;
use crate::error::Error;
use crate::fourcc::FourCc;
use crate::outcome::{Ignored, Outcome};
use crate::track::Track;
use crate::unsupported::Unsupported;

/// Video tag body of ffmpeg's AVC sequence header for an x264 640x360 Main profile stream.
pub const AVC_SEQUENCE_HEADER: &[u8] = &[
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x4d, 0x40,
    0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00,
    0x19, 0x07, 0x8b, 0x16, 0xcb, 0x01, 0x00, 0x05, 0x68, 0xeb, 0xe3, 0xcb, 0x20,
];

/// The avcC record inside [`AVC_SEQUENCE_HEADER`].
pub const AVC_RECORD: &[u8] = AVC_SEQUENCE_HEADER.split_at(5).1;

/// Video tag body of ffmpeg's AVC sequence header for an x264 1920x1080 High profile stream
/// (coded as 1088 lines, cropped to 1080, with the avcC high-profile extension).
pub const AVC_SEQUENCE_HEADER_1080P: &[u8] = &[
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x28, 0xff, 0xe1, 0x00, 0x1b, 0x67, 0x64, 0x00,
    0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00,
    0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22,
    0xc0, 0xfd, 0xf8, 0xf8, 0x00,
];

/// The `hvcC` of a 640x360 libx265 stream (Main, level 63; see `media::hevc`'s tests), as
/// ffmpeg 7's FLV muxer sends it after an E-RTMP `hvc1` SequenceStart header.
pub const HEVC_RECORD: &[u8] = &[
    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00, 0xfc,
    0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01,
    0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00,
    0x3f, 0x95, 0x94, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2b, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x71,
    0xf2, 0xe5, 0x95, 0x95, 0x29, 0x30, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00,
    0x00, 0x03, 0x03, 0xc1, 0x22, 0x00, 0x01, 0x00, 0x06, 0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89,
];

/// The `av1C` of a 640x360 libaom stream (Main, level index 1; see `media::av1`'s tests), as an
/// E-RTMP `av01` SequenceStart carries it.
pub const AV1_RECORD: &[u8] = &[
    0x81, 0x01, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0x36, 0xbe, 0x40,
    0x10,
];

/// Audio tag body of ffmpeg's AAC sequence header for 44.1 kHz stereo AAC-LC (its
/// AudioSpecificConfig ends with a sync extension saying "no SBR").
pub const AAC_SEQUENCE_HEADER: &[u8] = &[0xaf, 0x00, 0x12, 0x10, 0x56, 0xe5, 0x00];

/// What the demuxer should return for a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A video configuration of this size.
    VideoConfig {
        /// Width after cropping.
        width: u32,
        /// Height after cropping.
        height: u32,
    },
    /// An audio configuration.
    AudioConfig {
        /// Sample rate.
        sample_rate: u32,
        /// Channels.
        channels: u8,
        /// Codec string.
        codec_string: &'static str,
    },
    /// A video frame.
    Video {
        /// Keyframe flag.
        keyframe: bool,
        /// Decode time.
        dts: MediaTime,
        /// Presentation time.
        pts: MediaTime,
        /// Payload length.
        len: usize,
    },
    /// An audio frame.
    Audio {
        /// Presentation time.
        pts: MediaTime,
        /// Payload length.
        len: usize,
    },
    /// This outcome exactly.
    Exactly(Outcome),
    /// An error.
    Error,
}

/// One tag and what it should give.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is about.
    pub name: &'static str,
    /// The tag's track.
    pub track: Track,
    /// Whether the demuxer first receives [`AVC_SEQUENCE_HEADER`] and
    /// [`AAC_SEQUENCE_HEADER`] (at timestamp 0).
    pub configured: bool,
    /// RTMP timestamp in milliseconds.
    pub timestamp_ms: u32,
    /// The tag body.
    pub body: Vec<u8>,
    /// What the demuxer should return.
    pub expect: Expect,
}

impl Case {
    /// A demuxer in the state the case asks for.
    pub fn demuxer(&self) -> Demuxer {
        let mut d = Demuxer::new();
        if self.configured {
            let _ = d.push_video(0, Bytes::from_static(AVC_SEQUENCE_HEADER));
            let _ = d.push_audio(0, Bytes::from_static(AAC_SEQUENCE_HEADER));
        }
        d
    }

    /// Feeds `body` (the case's body, or a part of it) to a fresh demuxer.
    pub fn run(&self, body: &[u8]) -> Result<Outcome, Error> {
        let mut d = self.demuxer();
        let body = Bytes::copy_from_slice(body);
        match self.track {
            Track::Video => d.push_video(self.timestamp_ms, body),
            Track::Audio => d.push_audio(self.timestamp_ms, body),
        }
    }

    /// Whether `result` is what the case expects.
    pub fn check(&self, result: &Result<Outcome, Error>) -> bool {
        match (&self.expect, result) {
            (Expect::Error, Err(_)) => true,
            (Expect::Exactly(want), Ok(got)) => want == got,
            (
                Expect::VideoConfig { width, height },
                Ok(Outcome::Frame(MediaFrame::VideoConfig(c))),
            ) => (c.width, c.height) == (*width, *height),
            (
                Expect::AudioConfig {
                    sample_rate,
                    channels,
                    codec_string,
                },
                Ok(Outcome::Frame(MediaFrame::AudioConfig(c))),
            ) => {
                (c.sample_rate, c.channels, c.codec_string.as_str())
                    == (*sample_rate, *channels, *codec_string)
            }
            (
                Expect::Video {
                    keyframe,
                    dts,
                    pts,
                    len,
                },
                Ok(Outcome::Frame(MediaFrame::Video(v))),
            ) => (v.keyframe, v.dts, v.pts, v.data.len()) == (*keyframe, *dts, *pts, *len),
            (Expect::Audio { pts, len }, Ok(Outcome::Frame(MediaFrame::Audio(a)))) => {
                (a.pts, a.data.len()) == (*pts, *len)
            }
            _ => false,
        }
    }

    /// The case in the input format of [`crate::fuzz::parse_tag`].
    pub fn fuzz_input(&self) -> Vec<u8> {
        let mut selector = u8::from(self.track == Track::Video);
        if self.configured {
            selector |= 2;
        }
        let mut out = vec![selector];
        out.extend_from_slice(&self.body);
        out
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn ms(v: i64) -> MediaTime {
    MediaTime::from_millis(v)
}

/// A small IDR access unit in AVCC form: one 4-byte length and a 3-byte slice NAL unit.
const IDR: &[u8] = &[0, 0, 0, 3, 0x65, 0x88, 0x84];
/// A non-IDR slice in AVCC form.
const P_SLICE: &[u8] = &[0, 0, 0, 2, 0x41, 0x9a];

/// The table.
pub fn _cases() -> Vec<Case> {
    use Expect::*;
    let video = |name, configured, timestamp_ms, body: Vec<u8>, expect| Case {
        name,
        track: Track::Video,
        configured,
        timestamp_ms,
        body,
        expect,
    };
    let audio = |name, configured, timestamp_ms, body: Vec<u8>, expect| Case {
        name,
        track: Track::Audio,
        configured,
        timestamp_ms,
        body,
        expect,
    };
    let outcome = Expect::Exactly;
    vec![
        // Legacy FLV video.
        video(
            "avc sequence header",
            false,
            0,
            AVC_SEQUENCE_HEADER.to_vec(),
            VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "changed avc sequence header",
            true,
            0,
            AVC_SEQUENCE_HEADER_1080P.to_vec(),
            VideoConfig {
                width: 1920,
                height: 1080,
            },
        ),
        video(
            "repeated avc sequence header",
            true,
            0,
            AVC_SEQUENCE_HEADER.to_vec(),
            outcome(Outcome::Ignored(Ignored::UnchangedConfig)),
        ),
        video(
            "avc keyframe with composition offset",
            true,
            1000,
            cat(&[&[0x17, 1, 0, 0, 80], IDR]),
            Video {
                keyframe: true,
                dts: ms(1000),
                pts: ms(1080),
                len: IDR.len(),
            },
        ),
        video(
            "avc inter frame with negative offset",
            true,
            1040,
            cat(&[&[0x27, 1, 0xff, 0xff, 0xd8], P_SLICE]),
            Video {
                keyframe: false,
                dts: ms(1040),
                pts: ms(1000),
                len: P_SLICE.len(),
            },
        ),
        video(
            "avc frame before sequence header",
            false,
            0,
            cat(&[&[0x17, 1, 0, 0, 0], IDR]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "avc empty frame",
            true,
            0,
            vec![0x27, 1, 0, 0, 0],
            outcome(Outcome::Ignored(Ignored::EmptyFrame)),
        ),
        video(
            "avc end of sequence",
            true,
            0,
            vec![0x17, 2, 0, 0, 0],
            outcome(Outcome::Ignored(Ignored::EndOfSequence)),
        ),
        video(
            "video info/command frame",
            false,
            0,
            vec![0x57, 0],
            outcome(Outcome::Ignored(Ignored::VideoCommand)),
        ),
        video(
            "sorenson h.263",
            false,
            0,
            vec![0x22, 0, 0, 0x84],
            outcome(Outcome::Unsupported(Unsupported::VideoCodecId(2))),
        ),
        video(
            "on2 vp6",
            false,
            0,
            vec![0x14, 0, 0],
            outcome(Outcome::Unsupported(Unsupported::VideoCodecId(4))),
        ),
        video(
            "hevc as codec id 12",
            false,
            0,
            vec![0x1c, 0, 0, 0, 0, 1],
            outcome(Outcome::Unsupported(Unsupported::VideoCodecId(12))),
        ),
        // Enhanced RTMP video.
        video(
            "e-rtmp hevc sequence start",
            false,
            0,
            cat(&[&[0x90], b"hvc1", HEVC_RECORD]),
            Expect::VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp hevc sequence start that is not an hvcC",
            false,
            0,
            cat(&[&[0x90], b"hvc1", &[1, 2, 3]]),
            Expect::Error,
        ),
        video(
            "e-rtmp hevc frame before its sequence start",
            true,
            40,
            cat(&[&[0x91], b"hvc1", &[0, 0, 0], &[0, 0, 0, 2, 0x26, 0x01]]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "e-rtmp hevc metadata (colorInfo)",
            false,
            0,
            cat(&[&[0xd4], b"hvc1", &[2, 0, 9], b"colorInfo"]),
            outcome(Outcome::Ignored(Ignored::Metadata)),
        ),
        video(
            "e-rtmp av1 coded frames before the sequence start",
            false,
            0,
            cat(&[&[0xa1], b"av01", &[0x12, 0]]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "e-rtmp av1 empty sequence start (ffmpeg 7 sends one first)",
            false,
            0,
            cat(&[&[0x90], b"av01"]),
            outcome(Outcome::Ignored(Ignored::EmptyFrame)),
        ),
        video(
            "e-rtmp av1 sequence start",
            false,
            0,
            cat(&[&[0x90], b"av01", AV1_RECORD]),
            Expect::VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp av1 sequence start that is not an av1C",
            false,
            0,
            cat(&[&[0x90], b"av01", &[0x81, 1]]),
            Expect::Error,
        ),
        video(
            "e-rtmp vp9 coded frames x before the sequence start",
            false,
            0,
            cat(&[&[0x93], b"vp09", &[9]]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "e-rtmp vp9 sequence start (held for the first keyframe's size)",
            false,
            0,
            cat(&[&[0x90], b"vp09", &[1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0]]),
            outcome(Outcome::Ignored(Ignored::PendingConfig)),
        ),
        video(
            "e-rtmp vp9 sequence start that is not a vpcC",
            false,
            0,
            cat(&[&[0x90], b"vp09", &[0, 0, 0]]),
            Expect::Error,
        ),
        video(
            "e-rtmp vp8 (not taken)",
            false,
            0,
            cat(&[&[0x93], b"vp08", &[9]]),
            outcome(Outcome::Unsupported(Unsupported::VideoFourCc(FourCc::VP08))),
        ),
        video(
            "e-rtmp multitrack, one hevc track, a sequence start that is not an hvcC",
            false,
            0,
            cat(&[&[0x96, 0x00], b"hvc1", &[0, 1, 2]]),
            Expect::Error,
        ),
        video(
            "e-rtmp multitrack, one avc track 0",
            false,
            0,
            cat(&[&[0x96, 0x00], b"avc1", &[0], AVC_RECORD]),
            Expect::VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp multitrack, one avc track 1 (another encode)",
            false,
            0,
            cat(&[&[0x96, 0x00], b"avc1", &[1], AVC_RECORD]),
            outcome(Outcome::Ignored(Ignored::OtherTrack)),
        ),
        video(
            "e-rtmp multitrack, many avc tracks, track 0 second",
            false,
            0,
            cat(&[
                &[0x96, 0x10],
                b"avc1",
                &[1, 0, 0, 3, 9, 9, 9],
                &[0, 0, 0, AVC_RECORD.len() as u8],
                AVC_RECORD,
            ]),
            Expect::VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp multitrack, many tracks and codecs, hevc track 0",
            false,
            0,
            cat(&[
                &[0x96, 0x20],
                b"av01",
                &[1, 0, 0, 2, 1, 2],
                b"hvc1",
                &[0, 0, 0, HEVC_RECORD.len() as u8],
                HEVC_RECORD,
            ]),
            Expect::VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp multitrack, a track size past the end",
            false,
            0,
            cat(&[&[0x96, 0x10], b"avc1", &[0, 0, 1, 0, 1, 2]]),
            Expect::Error,
        ),
        video(
            "e-rtmp multitrack, a damaged track 1 beside a good track 0",
            false,
            0,
            cat(&[
                &[0x96, 0x11],
                b"avc1",
                &[1, 0, 0, 2, 0, 0],
                &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88],
            ]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "e-rtmp multitrack type 3 (undefined)",
            false,
            0,
            cat(&[&[0x96, 0x30], b"avc1", &[0]]),
            Expect::Error,
        ),
        video(
            "e-rtmp multitrack, avc coded frames on track 0 before its sequence start",
            false,
            40,
            cat(&[
                &[0x96, 0x01],
                b"avc1",
                &[0],
                &[0, 0, 0],
                &[0, 0, 0, 2, 0x65, 0x88],
            ]),
            outcome(Outcome::WaitingForConfig(Track::Video)),
        ),
        video(
            "e-rtmp avc sequence start",
            false,
            0,
            cat(&[&[0x90], b"avc1", AVC_RECORD]),
            VideoConfig {
                width: 640,
                height: 360,
            },
        ),
        video(
            "e-rtmp avc coded frames x",
            true,
            2000,
            cat(&[&[0x93], b"avc1", IDR]),
            Video {
                keyframe: true,
                dts: ms(2000),
                pts: ms(2000),
                len: IDR.len(),
            },
        ),
        video(
            "e-rtmp avc coded frames with nano offset",
            true,
            2000,
            cat(&[
                &[0xa7, 0x02, 0x07, 0xa1, 0x20, 0x01],
                b"avc1",
                &[0, 0, 40],
                P_SLICE,
            ]),
            Video {
                keyframe: false,
                dts: ms(2000) + MediaTime::from_nanos(500_000),
                pts: ms(2040) + MediaTime::from_nanos(500_000),
                len: P_SLICE.len(),
            },
        ),
        video(
            "e-rtmp avc metadata",
            true,
            0,
            cat(&[&[0x94], b"avc1", &[2, 0, 9]]),
            outcome(Outcome::Ignored(Ignored::Metadata)),
        ),
        video(
            "e-rtmp command frame",
            false,
            0,
            vec![0xd1, 0],
            outcome(Outcome::Ignored(Ignored::VideoCommand)),
        ),
        video(
            "e-rtmp avc sequence end",
            true,
            0,
            cat(&[&[0x92], b"avc1"]),
            outcome(Outcome::Ignored(Ignored::EndOfSequence)),
        ),
        // Legacy FLV audio.
        audio(
            "aac sequence header",
            false,
            0,
            AAC_SEQUENCE_HEADER.to_vec(),
            AudioConfig {
                sample_rate: 44_100,
                channels: 2,
                codec_string: "mp4a.40.2",
            },
        ),
        audio(
            "repeated aac sequence header",
            true,
            0,
            AAC_SEQUENCE_HEADER.to_vec(),
            outcome(Outcome::Ignored(Ignored::UnchangedConfig)),
        ),
        audio(
            "he-aac sequence header (flags lie: mono 5.5 kHz)",
            true,
            0,
            vec![0xa0, 0x00, 0x2b, 0x92, 0x08, 0x00],
            AudioConfig {
                sample_rate: 44_100,
                channels: 2,
                codec_string: "mp4a.40.5",
            },
        ),
        audio(
            "aac raw frame",
            true,
            23,
            vec![0xaf, 0x01, 0x21, 0x1b, 0x80],
            Audio {
                pts: ms(23),
                len: 3,
            },
        ),
        audio(
            "aac frame before sequence header",
            false,
            23,
            vec![0xaf, 0x01, 0x21],
            outcome(Outcome::WaitingForConfig(Track::Audio)),
        ),
        audio(
            "aac empty frame",
            true,
            23,
            vec![0xaf, 0x01],
            outcome(Outcome::Ignored(Ignored::EmptyFrame)),
        ),
        audio(
            "mp3 first frame (44.1 kHz joint stereo)",
            false,
            0,
            vec![0x2f, 0xff, 0xfb, 0x90, 0x64, 0, 0],
            AudioConfig {
                sample_rate: 44_100,
                channels: 2,
                codec_string: "mp3",
            },
        ),
        audio(
            "mp3 frame header beats the flags (48 kHz mono, flags say 44 kHz stereo)",
            false,
            0,
            vec![0x2f, 0xff, 0xfb, 0x94, 0xc4, 0, 0],
            AudioConfig {
                sample_rate: 48_000,
                channels: 1,
                codec_string: "mp3",
            },
        ),
        audio(
            "mp3 without a readable frame header: the flags (22 kHz mono)",
            false,
            0,
            vec![0x28, 0x12, 0x34, 0x56, 0x78],
            AudioConfig {
                sample_rate: 22_050,
                channels: 1,
                codec_string: "mp3",
            },
        ),
        audio(
            "mp3 8 kHz (format 14)",
            false,
            0,
            vec![0xe6, 0xff, 0xe3, 0x28, 0xc0, 0],
            AudioConfig {
                sample_rate: 8_000,
                channels: 1,
                codec_string: "mp3",
            },
        ),
        audio(
            "mp3 empty frame",
            false,
            0,
            vec![0x2f],
            outcome(Outcome::Ignored(Ignored::EmptyFrame)),
        ),
        audio(
            "e-rtmp mp3 stays unsupported",
            false,
            0,
            cat(&[&[0x91], b".mp3", &[0xff, 0xfb, 0x90, 0x64]]),
            outcome(Outcome::Unsupported(Unsupported::AudioFourCc(FourCc::MP3))),
        ),
        audio(
            "speex",
            false,
            0,
            vec![0xb6, 0],
            outcome(Outcome::Unsupported(Unsupported::AudioFormat(11))),
        ),
        audio(
            "g.711 a-law",
            false,
            0,
            vec![0x72, 0xd5],
            outcome(Outcome::Unsupported(Unsupported::AudioFormat(7))),
        ),
        // Enhanced RTMP audio.
        audio(
            "e-rtmp opus sequence start",
            false,
            0,
            cat(&[&[0x90], b"Opus", b"OpusHead"]),
            outcome(Outcome::Unsupported(Unsupported::AudioFourCc(FourCc::OPUS))),
        ),
        audio(
            "e-rtmp mp4a sequence start",
            true,
            0,
            cat(&[&[0x90], b"mp4a", &[0x11, 0x88]]),
            AudioConfig {
                sample_rate: 48_000,
                channels: 1,
                codec_string: "mp4a.40.2",
            },
        ),
        audio(
            "e-rtmp mp4a coded frames",
            true,
            46,
            cat(&[&[0x91], b"mp4a", &[1, 2, 3, 4]]),
            Audio {
                pts: ms(46),
                len: 4,
            },
        ),
        audio(
            "e-rtmp mp4a multichannel config",
            true,
            0,
            cat(&[&[0x94], b"mp4a", &[1, 2]]),
            outcome(Outcome::Ignored(Ignored::MultichannelConfig)),
        ),
        audio(
            "e-rtmp multitrack opus",
            false,
            0,
            cat(&[&[0x95, 0x00], b"Opus", &[0, 1]]),
            outcome(Outcome::Unsupported(Unsupported::Multitrack {
                track: Track::Audio,
                fourcc: FourCc::OPUS,
            })),
        ),
        // Invalid bodies.
        video("empty video body", false, 0, vec![], Error),
        video("avc header byte only", false, 0, vec![0x17], Error),
        video(
            "avc composition offset cut short",
            true,
            0,
            vec![0x17, 1, 0],
            Error,
        ),
        video(
            "avc sequence header without record",
            false,
            0,
            vec![0x17, 0, 0, 0, 0],
            Error,
        ),
        video(
            "avc sequence header with version 0",
            false,
            0,
            cat(&[&[0x17, 0, 0, 0, 0, 0], &AVC_RECORD[1..]]),
            Error,
        ),
        video(
            "avc sequence header cut inside the sps",
            false,
            0,
            AVC_SEQUENCE_HEADER[..20].to_vec(),
            Error,
        ),
        video(
            "avc unknown packet type",
            true,
            0,
            vec![0x17, 5, 0, 0, 0],
            Error,
        ),
        video(
            "avc nal length overruns the tag",
            true,
            0,
            vec![0x17, 1, 0, 0, 0, 0, 0, 0, 9, 0x65],
            Error,
        ),
        video(
            "e-rtmp fourcc cut short",
            false,
            0,
            vec![0x90, b'h', b'v'],
            Error,
        ),
        video(
            "e-rtmp avc unknown packet type",
            true,
            0,
            cat(&[&[0x9f], b"avc1"]),
            Error,
        ),
        video(
            "e-rtmp modex cut short",
            false,
            0,
            vec![0x97, 0x05, 1, 2],
            Error,
        ),
        audio("empty audio body", false, 0, vec![], Error),
        audio("aac header byte only", false, 0, vec![0xaf], Error),
        audio("aac unknown packet type", true, 0, vec![0xaf, 2, 0], Error),
        audio("aac empty sequence header", false, 0, vec![0xaf, 0], Error),
        audio(
            "aac reserved sampling frequency index",
            false,
            0,
            vec![0xaf, 0, 0x16, 0x90],
            Error,
        ),
        audio(
            "e-rtmp mp4a unknown packet type",
            true,
            0,
            cat(&[&[0x93], b"mp4a"]),
            Error,
        ),
    ]
}
