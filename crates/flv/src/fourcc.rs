//! Enhanced RTMP's four-character codec codes.

use std::fmt;

/// A four-character code naming a codec in Enhanced RTMP.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// H.264 / AVC.
    pub const AVC1: FourCc = FourCc(*b"avc1");
    /// H.265 / HEVC.
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    /// AV1.
    pub const AV01: FourCc = FourCc(*b"av01");
    /// VP9.
    pub const VP09: FourCc = FourCc(*b"vp09");
    /// VP8.
    pub const VP08: FourCc = FourCc(*b"vp08");
    /// AAC (MPEG-4 audio).
    pub const MP4A: FourCc = FourCc(*b"mp4a");
    /// Opus.
    pub const OPUS: FourCc = FourCc(*b"Opus");
    /// FLAC.
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    /// AC-3.
    pub const AC3: FourCc = FourCc(*b"ac-3");
    /// E-AC-3.
    pub const EC3: FourCc = FourCc(*b"ec-3");
    /// MP3.
    pub const MP3: FourCc = FourCc(*b".mp3");

    /// A human name for the codecs Enhanced RTMP defines.
    pub(crate) fn codec_name(self) -> Option<&'static str> {
        Some(match &self.0 {
            b"avc1" => "H.264",
            b"hvc1" => "HEVC",
            b"av01" => "AV1",
            b"vp09" => "VP9",
            b"vp08" => "VP8",
            b"mp4a" => "AAC",
            b"Opus" => "Opus",
            b"fLaC" => "FLAC",
            b"ac-3" => "AC-3",
            b"ec-3" => "E-AC-3",
            b".mp3" => "MP3",
            _ => return None,
        })
    }
}

impl fmt::Display for FourCc {
    /// Printable ASCII as is, other bytes as `\xNN`, so a hostile FourCC cannot forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}
