//! Stream types the crate recognises but refuses, and how they are named to the user.

use std::fmt;

use crate::track::Track;

/// An elementary stream the PMT lists whose codec Ferrocast recognises but does not ingest;
/// reported when the program has no supported stream of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unsupported {
    /// The kind of stream.
    pub track: Track,
    /// Its PMT stream type.
    pub stream_type: u8,
}

impl Unsupported {
    /// The codec name of a recognised stream type.
    fn codec_name(stream_type: u8) -> Option<&'static str> {
        Some(match stream_type {
            0x01 => "MPEG-1 video",
            0x02 => "MPEG-2 video",
            0x10 => "MPEG-4 Part 2 video",
            0x1b => "H.264",
            0x24 => "HEVC",
            0x33 => "VVC",
            0x03 => "MPEG-1 audio (MP3)",
            0x04 => "MPEG-2 audio (MP3)",
            0x0f => "AAC (ADTS)",
            0x11 => "AAC (LATM)",
            0x81 => "AC-3",
            0x87 => "E-AC-3",
            _ => return None,
        })
    }

    /// The track of a recognised stream type; `None` for types this crate does not know.
    pub(crate) fn track_of(stream_type: u8) -> Option<Track> {
        match stream_type {
            0x01 | 0x02 | 0x10 | 0x1b | 0x24 | 0x33 => Some(Track::Video),
            0x03 | 0x04 | 0x0f | 0x11 | 0x81 | 0x87 => Some(Track::Audio),
            _ => None,
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::codec_name(self.stream_type).unwrap_or("unknown codec");
        let wanted = match self.track {
            Track::Video => "H.264",
            Track::Audio => "AAC (ADTS)",
        };
        write!(
            f,
            "{} stream type 0x{:02x} ({name}); set the encoder to {wanted}",
            self.track, self.stream_type
        )
    }
}
