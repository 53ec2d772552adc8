//! Codecs and layouts the crate recognises but refuses, and how they are named to the user.

use std::fmt;

use crate::fourcc::FourCc;
use crate::track::Track;

/// A codec or layout this crate recognises but does not turn into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsupported {
    /// A legacy FLV video codec id other than 7 (AVC).
    VideoCodecId(u8),
    /// An Enhanced RTMP video FourCC other than `avc1`.
    VideoFourCc(FourCc),
    /// A legacy FLV sound format other than 10 (AAC), 2 and 14 (MP3).
    AudioFormat(u8),
    /// An Enhanced RTMP audio FourCC other than `mp4a`.
    AudioFourCc(FourCc),
    /// Enhanced RTMP multitrack, whatever the codec.
    Multitrack {
        /// The track the multitrack tag was sent on.
        track: Track,
        /// The FourCC of the first track.
        fourcc: FourCc,
    },
}

impl Unsupported {
    /// The track the refused tag was sent on.
    pub fn track(&self) -> Track {
        match self {
            Unsupported::VideoCodecId(_) | Unsupported::VideoFourCc(_) => Track::Video,
            Unsupported::AudioFormat(_) | Unsupported::AudioFourCc(_) => Track::Audio,
            Unsupported::Multitrack { track, .. } => *track,
        }
    }
}

fn video_codec_id_name(id: u8) -> &'static str {
    match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen Video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen Video 2",
        7 => "H.264",
        12 => "HEVC, non-standard FLV extension",
        13 => "AV1, non-standard FLV extension",
        _ => "unknown",
    }
}

fn sound_format_name(format: u8) -> &'static str {
    match format {
        0 => "linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM, little endian",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        10 => "AAC",
        11 => "Speex",
        13 => "Opus, non-standard FLV extension",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "reserved",
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::VideoCodecId(id) => {
                write!(f, "video codec id {id} ({})", video_codec_id_name(*id))
            }
            Unsupported::AudioFormat(format) => {
                write!(f, "audio format {format} ({})", sound_format_name(*format))
            }
            Unsupported::VideoFourCc(cc) | Unsupported::AudioFourCc(cc) => {
                let track = self.track();
                match cc.codec_name() {
                    Some(name) => write!(f, "{track} codec {name} ({cc}) over Enhanced RTMP"),
                    None => write!(f, "unknown {track} codec FourCC {cc:?} over Enhanced RTMP"),
                }
            }
            Unsupported::Multitrack { track, fourcc } => {
                write!(f, "Enhanced RTMP multitrack {track} ({fourcc})")
            }
        }
    }
}
