//! Stateless parsing of FLV audio and video tag bodies into what they carry.
//!
//! The demuxer ([`crate::Demuxer`]) adds the state: configurations, timestamps and the checks that
//! need them.

use bytes::Bytes;
use media::VideoCodec;

use crate::error::Error;
use crate::fourcc::FourCc;
use crate::outcome::Ignored;
use crate::track::Track;
use crate::unsupported::Unsupported;

/// What one video tag body carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VideoTag {
    /// A decoder configuration record: `avcC` for H.264, `hvcC` for HEVC.
    Config(VideoCodec, Bytes),
    /// Length-prefixed NAL units of `codec`.
    Frame {
        codec: VideoCodec,
        keyframe: bool,
        /// Composition time offset in milliseconds.
        cts: i32,
        data: Bytes,
    },
    /// An E-RTMP v2 multitrack message: each track's id and what it carries.
    Tracks(Vec<(u8, VideoTag)>),
    /// Nothing to hand on.
    Ignored(Ignored),
    /// A codec or layout this crate does not turn into frames.
    Unsupported(Unsupported),
}

/// What one audio tag body carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AudioTag {
    /// An AudioSpecificConfig.
    AacConfig(Bytes),
    /// One raw AAC frame.
    AacFrame(Bytes),
    /// MPEG audio (MP3) frames, with the FLV header's rate and channel flags as a fallback for
    /// when the frame header cannot be read.
    Mp3Frame {
        /// The header's sample rate: 5512, 11025, 22050 or 44100 Hz, or 8000 for format 14.
        flag_rate: u32,
        /// The header's channel count (1 or 2).
        flag_channels: u8,
        /// The MPEG audio frames.
        data: Bytes,
    },
    /// Nothing to hand on.
    Ignored(Ignored),
    /// A codec or layout this crate does not turn into frames.
    Unsupported(Unsupported),
}

/// A parsed tag plus the E-RTMP `TimestampOffsetNano` modifier, if one was sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed<T> {
    pub(crate) tag: T,
    /// Nanoseconds to add to the millisecond timestamp (0..=999_999).
    pub(crate) nanos: u32,
}

/// A cursor over a tag body that names the field it was reading when the body ran out.
struct Cursor {
    body: Bytes,
    pos: usize,
    track: Track,
}

impl Cursor {
    fn truncated(&self, what: &'static str) -> Error {
        Error::Truncated {
            track: self.track,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.body.len());
        let Some(end) = end else {
            return Err(self.truncated(what));
        };
        let s = &self.body[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.take(3, what)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// A signed 24-bit big-endian integer (`SI24`).
    fn i24(&mut self, what: &'static str) -> Result<i32, Error> {
        let v = self.u24(what)?;
        // Sign-extend bit 23.
        Ok(((v << 8) as i32) >> 8)
    }

    fn fourcc(&mut self) -> Result<FourCc, Error> {
        let b = self.take(4, "FourCC")?;
        Ok(FourCc([b[0], b[1], b[2], b[3]]))
    }

    /// The rest of the body, without copying.
    fn rest(&self) -> Bytes {
        self.body.slice(self.pos.min(self.body.len())..)
    }

    /// Follows an E-RTMP v2 `ModEx` chain; returns the real packet type and the
    /// `TimestampOffsetNano` value, if any.
    fn mod_ex(&mut self, mut packet_type: u8) -> Result<(u8, u32), Error> {
        let mut nanos = 0;
        while packet_type == MOD_EX {
            let mut size = usize::from(self.u8("ModEx data size")?) + 1;
            if size == 256 {
                size = usize::from(self.u16("ModEx data size")?) + 1;
            }
            let data = self.take(size, "ModEx data")?;
            let nano = match data {
                [a, b, c, ..] => u32::from_be_bytes([0, *a, *b, *c]),
                _ => 0,
            };
            let next = self.u8("ModEx type and packet type")?;
            if next >> 4 == MOD_EX_TIMESTAMP_OFFSET_NANO {
                // The spec bounds it below one millisecond; clamp what lies outside.
                nanos = nano.min(999_999);
            }
            packet_type = next & 0x0f;
        }
        Ok((packet_type, nanos))
    }
}

const MOD_EX: u8 = 7;
const MOD_EX_TIMESTAMP_OFFSET_NANO: u8 = 0;

/// Legacy FLV video codec id of AVC.
pub(crate) const CODEC_AVC: u8 = 7;
/// Legacy FLV video frame type of a keyframe.
const FRAME_KEY: u8 = 1;
/// Legacy and E-RTMP video frame type of an info or command frame.
const FRAME_COMMAND: u8 = 5;

/// Parses a video tag body (the payload of an RTMP message of type 9).
pub(crate) fn parse_video(body: Bytes) -> Result<Parsed<VideoTag>, Error> {
    let mut c = Cursor {
        body,
        pos: 0,
        track: Track::Video,
    };
    let first = c.u8("video tag header")?;
    if first & 0x80 != 0 {
        return parse_ex_video(&mut c, first);
    }
    let frame_type = (first >> 4) & 0x07;
    let codec_id = first & 0x0f;
    let tag = if frame_type == FRAME_COMMAND {
        VideoTag::Ignored(Ignored::VideoCommand)
    } else if codec_id != CODEC_AVC {
        VideoTag::Unsupported(Unsupported::VideoCodecId(codec_id))
    } else {
        let packet_type = c.u8("AVCPacketType")?;
        let cts = c.i24("composition time offset")?;
        match packet_type {
            0 => VideoTag::Config(VideoCodec::H264, c.rest()),
            1 => VideoTag::Frame {
                codec: VideoCodec::H264,
                keyframe: frame_type == FRAME_KEY,
                cts,
                data: c.rest(),
            },
            2 => VideoTag::Ignored(Ignored::EndOfSequence),
            value => {
                return Err(Error::UnknownPacketType {
                    track: Track::Video,
                    value,
                })
            }
        }
    };
    Ok(Parsed { tag, nanos: 0 })
}

/// E-RTMP video packet types.
mod video_packet {
    pub(super) const SEQUENCE_START: u8 = 0;
    pub(super) const CODED_FRAMES: u8 = 1;
    pub(super) const SEQUENCE_END: u8 = 2;
    pub(super) const CODED_FRAMES_X: u8 = 3;
    pub(super) const METADATA: u8 = 4;
    pub(super) const MULTITRACK: u8 = 6;
}

fn parse_ex_video(c: &mut Cursor, first: u8) -> Result<Parsed<VideoTag>, Error> {
    use video_packet::*;
    let frame_type = (first >> 4) & 0x07;
    let (packet_type, nanos) = c.mod_ex(first & 0x0f)?;
    if frame_type == FRAME_COMMAND && packet_type != METADATA {
        return Ok(Parsed {
            tag: VideoTag::Ignored(Ignored::VideoCommand),
            nanos,
        });
    }
    let tag = if packet_type == MULTITRACK {
        parse_multitrack(c, frame_type)?
    } else {
        let fourcc = c.fourcc()?;
        video_track_body(c, fourcc, packet_type, frame_type)?
    };
    Ok(Parsed { tag, nanos })
}

/// The video track of a multitrack publish that is demuxed (E-RTMP v2 track id): 0, the track
/// an OBS multitrack publish sends its main encode on. Messages without multitrack framing are
/// that track too.
pub(crate) const MAIN_VIDEO_TRACK: u8 = 0;

/// `AvMultitrackType`: one track in the message.
const ONE_TRACK: u8 = 0;
/// `AvMultitrackType`: several tracks of one codec, each with its size.
const MANY_TRACKS: u8 = 1;
/// `AvMultitrackType`: several tracks, each with its own codec and size.
const MANY_TRACKS_MANY_CODECS: u8 = 2;
/// The most tracks one message may carry (the track id is a byte).
const MAX_TRACKS: usize = 256;

/// An E-RTMP v2 multitrack video message: each track's id and what its body carries.
fn parse_multitrack(c: &mut Cursor, frame_type: u8) -> Result<VideoTag, Error> {
    let b = c.u8("AvMultitrackType and packet type")?;
    let (layout, packet_type) = (b >> 4, b & 0x0f);
    if packet_type == video_packet::MULTITRACK {
        return Err(Error::UnknownPacketType {
            track: Track::Video,
            value: packet_type,
        });
    }
    let shared = match layout {
        ONE_TRACK | MANY_TRACKS => Some(c.fourcc()?),
        MANY_TRACKS_MANY_CODECS => None,
        value => {
            return Err(Error::UnknownMultitrackType {
                track: Track::Video,
                value,
            })
        }
    };
    let mut tracks = Vec::new();
    loop {
        let fourcc = match shared {
            Some(f) => f,
            None => c.fourcc()?,
        };
        let id = c.u8("track id")?;
        let body = if layout == ONE_TRACK {
            c.rest()
        } else {
            let size = c.u24("track size")? as usize;
            let start = c.pos;
            c.take(size, "track body")?;
            c.body.slice(start..c.pos)
        };
        let mut track = Cursor {
            body,
            pos: 0,
            track: Track::Video,
        };
        // A damaged body of another track loses only that track.
        let tag = match video_track_body(&mut track, fourcc, packet_type, frame_type) {
            Err(_) if id != MAIN_VIDEO_TRACK => VideoTag::Ignored(Ignored::OtherTrack),
            parsed => parsed?,
        };
        tracks.push((id, tag));
        if layout == ONE_TRACK || c.pos >= c.body.len() || tracks.len() >= MAX_TRACKS {
            break;
        }
    }
    Ok(VideoTag::Tracks(tracks))
}

/// The body of one video track after its FourCC: a configuration, a frame, or nothing to hand
/// on.
fn video_track_body(
    c: &mut Cursor,
    fourcc: FourCc,
    packet_type: u8,
    frame_type: u8,
) -> Result<VideoTag, Error> {
    use video_packet::*;
    let codec = match fourcc {
        FourCc::AVC1 => VideoCodec::H264,
        FourCc::HVC1 => VideoCodec::Hevc,
        FourCc::AV01 => VideoCodec::Av1,
        FourCc::VP09 => VideoCodec::Vp9,
        _ => return Ok(VideoTag::Unsupported(Unsupported::VideoFourCc(fourcc))),
    };
    Ok(match packet_type {
        // ffmpeg 7 sends an empty AV1 SequenceStart before the one with the av1C.
        SEQUENCE_START if c.rest().is_empty() => VideoTag::Ignored(Ignored::EmptyFrame),
        SEQUENCE_START => VideoTag::Config(codec, c.rest()),
        CODED_FRAMES | CODED_FRAMES_X => {
            // CodedFramesX: the composition time offset is zero and not sent. AV1 and VP9 have
            // no reordering and no offset field at all.
            let with_offset = matches!(codec, VideoCodec::H264 | VideoCodec::Hevc);
            let cts = if packet_type == CODED_FRAMES && with_offset {
                c.i24("composition time offset")?
            } else {
                0
            };
            VideoTag::Frame {
                codec,
                keyframe: frame_type == FRAME_KEY,
                cts,
                data: c.rest(),
            }
        }
        SEQUENCE_END => VideoTag::Ignored(Ignored::EndOfSequence),
        METADATA => VideoTag::Ignored(Ignored::Metadata),
        value => {
            return Err(Error::UnknownPacketType {
                track: Track::Video,
                value,
            })
        }
    })
}

/// Legacy FLV sound format of AAC.
pub(crate) const SOUND_AAC: u8 = 10;
/// Legacy FLV sound format of MP3.
pub(crate) const SOUND_MP3: u8 = 2;
/// Legacy FLV sound format of MP3 at 8 kHz.
pub(crate) const SOUND_MP3_8K: u8 = 14;
/// Sound format that announces an E-RTMP ExAudioTagHeader.
const SOUND_EX_HEADER: u8 = 9;

/// Parses an audio tag body (the payload of an RTMP message of type 8).
pub(crate) fn parse_audio(body: Bytes) -> Result<Parsed<AudioTag>, Error> {
    let mut c = Cursor {
        body,
        pos: 0,
        track: Track::Audio,
    };
    let first = c.u8("audio tag header")?;
    let format = first >> 4;
    if format == SOUND_EX_HEADER {
        return parse_ex_audio(&mut c, first);
    }
    if format == SOUND_MP3 || format == SOUND_MP3_8K {
        let flag_rate = if format == SOUND_MP3_8K {
            8_000
        } else {
            [5_512, 11_025, 22_050, 44_100][usize::from((first >> 2) & 3)]
        };
        return Ok(Parsed {
            tag: AudioTag::Mp3Frame {
                flag_rate,
                flag_channels: 1 + (first & 1),
                data: c.rest(),
            },
            nanos: 0,
        });
    }
    if format != SOUND_AAC {
        return Ok(Parsed {
            tag: AudioTag::Unsupported(Unsupported::AudioFormat(format)),
            nanos: 0,
        });
    }
    // The rate, size and channel bits of the header are fixed for AAC and say nothing true;
    // the AudioSpecificConfig is the authority.
    let tag = match c.u8("AACPacketType")? {
        0 => AudioTag::AacConfig(c.rest()),
        1 => AudioTag::AacFrame(c.rest()),
        value => {
            return Err(Error::UnknownPacketType {
                track: Track::Audio,
                value,
            })
        }
    };
    Ok(Parsed { tag, nanos: 0 })
}

/// E-RTMP audio packet types.
mod audio_packet {
    pub(super) const SEQUENCE_START: u8 = 0;
    pub(super) const CODED_FRAMES: u8 = 1;
    pub(super) const SEQUENCE_END: u8 = 2;
    pub(super) const MULTICHANNEL_CONFIG: u8 = 4;
    pub(super) const MULTITRACK: u8 = 5;
}

fn parse_ex_audio(c: &mut Cursor, first: u8) -> Result<Parsed<AudioTag>, Error> {
    use audio_packet::*;
    let (packet_type, nanos) = c.mod_ex(first & 0x0f)?;
    if packet_type == MULTITRACK {
        c.u8("AvMultitrackType and packet type")?;
        let fourcc = c.fourcc()?;
        return Ok(Parsed {
            tag: AudioTag::Unsupported(Unsupported::Multitrack {
                track: Track::Audio,
                fourcc,
            }),
            nanos,
        });
    }
    let fourcc = c.fourcc()?;
    if fourcc != FourCc::MP4A {
        return Ok(Parsed {
            tag: AudioTag::Unsupported(Unsupported::AudioFourCc(fourcc)),
            nanos,
        });
    }
    let tag = match packet_type {
        SEQUENCE_START => AudioTag::AacConfig(c.rest()),
        CODED_FRAMES => AudioTag::AacFrame(c.rest()),
        SEQUENCE_END => AudioTag::Ignored(Ignored::EndOfSequence),
        MULTICHANNEL_CONFIG => AudioTag::Ignored(Ignored::MultichannelConfig),
        value => {
            return Err(Error::UnknownPacketType {
                track: Track::Audio,
                value,
            })
        }
    };
    Ok(Parsed { tag, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si24_sign_extension() {
        let mut c = Cursor {
            body: Bytes::from_static(&[0xff, 0xff, 0xd8, 0x00, 0x00, 0x50, 0x80, 0, 0]),
            pos: 0,
            track: Track::Video,
        };
        assert_eq!(c.i24("a").unwrap(), -40);
        assert_eq!(c.i24("b").unwrap(), 80);
        assert_eq!(c.i24("c").unwrap(), -(1 << 23));
        assert_eq!(
            c.i24("d"),
            Err(Error::Truncated {
                track: Track::Video,
                what: "d"
            })
        );
    }

    #[test]
    fn mod_ex_chain() {
        // Two ModEx entries: a 1-byte unknown type 3, then a 3-byte TimestampOffsetNano of
        // 500_000 ns, then CodedFrames.
        let mut c = Cursor {
            body: Bytes::from_static(&[0x00, 0xaa, 0x37, 0x02, 0x07, 0xa1, 0x20, 0x01, 0x99]),
            pos: 0,
            track: Track::Video,
        };
        assert_eq!(c.mod_ex(MOD_EX).unwrap(), (1, 500_000));
        assert_eq!(c.u8("x").unwrap(), 0x99);
        // The 16-bit size escape: 0xff then UI16 + 1 = 300 bytes.
        let mut body = vec![0xff, 0x01, 0x2b];
        body.extend(std::iter::repeat_n(0u8, 300));
        body.push(0x01);
        let mut c = Cursor {
            body: Bytes::from(body),
            pos: 0,
            track: Track::Audio,
        };
        assert_eq!(c.mod_ex(MOD_EX).unwrap(), (1, 0));
    }
}
