//! H.265 / HEVC: the decoder configuration record (`hvcC`, ISO/IEC 14496-15 8.3.3), the picture
//! size from the sequence parameter set, and the RFC 6381 codec string (`hvc1.1.6.L93.B0`,
//! ISO/IEC 14496-15 Annex E). Enhanced RTMP carries the record in its SequenceStart packet.
//! Bounds-checked throughout: untrusted input is an error, never a panic.

use bytes::Bytes;

use crate::bits::BitReader;
use crate::codec::{VideoCodec, VideoConfig};
use crate::h264::remove_emulation_prevention;

/// NAL unit types of the parameter sets.
pub const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub const NAL_PPS: u8 = 34;

/// Why an HEVC configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HevcError {
    /// The record ended inside `what`.
    #[error("hvcC is truncated in {0}")]
    Truncated(&'static str),
    /// `configurationVersion` is not 1.
    #[error("hvcC configurationVersion {0}, want 1")]
    Version(u8),
    /// The record carries no sequence parameter set.
    #[error("hvcC has no SPS")]
    NoSps,
    /// The sequence parameter set could not be read.
    #[error("HEVC SPS: {0}")]
    Sps(&'static str),
}

/// One array of NAL units of one type in an `hvcC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NalArray {
    /// Whether every NAL unit of this type is in the array (not also in the stream).
    pub complete: bool,
    /// The NAL unit type.
    pub nal_type: u8,
    /// The NAL units, without length prefixes.
    pub nal_units: Vec<Bytes>,
}

/// An `HEVCDecoderConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfigurationRecord {
    /// `general_profile_space` (0 to 3).
    pub profile_space: u8,
    /// `general_tier_flag`: the High tier.
    pub high_tier: bool,
    /// `general_profile_idc` (1: Main, 2: Main 10, ...).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`, as stored (flag 0 in the top bit).
    pub profile_compatibility: u32,
    /// The 48 bits of `general_constraint_indicator_flags`.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc` (30 times the level: 93 is level 3.1).
    pub level_idc: u8,
    /// `chromaFormat` (1: 4:2:0).
    pub chroma_format: u8,
    /// `bitDepthLumaMinus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bitDepthChromaMinus8 + 8`.
    pub bit_depth_chroma: u8,
    /// Size of the NAL unit length prefix in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    /// The parameter set arrays (VPS, SPS, PPS, SEI, ...), in order.
    pub arrays: Vec<NalArray>,
}

impl HevcDecoderConfigurationRecord {
    /// Reads a record.
    pub fn parse(data: &[u8]) -> Result<Self, HevcError> {
        let mut r = Reader { data, pos: 0 };
        let version = r.u8("configurationVersion")?;
        if version != 1 {
            return Err(HevcError::Version(version));
        }
        let b = r.u8("general_profile_space")?;
        let profile_compatibility = u32::from_be_bytes(
            r.take(4, "general_profile_compatibility_flags")?
                .try_into()
                .map_err(|_| HevcError::Truncated("general_profile_compatibility_flags"))?,
        );
        let mut constraint_flags = [0u8; 6];
        constraint_flags.copy_from_slice(r.take(6, "general_constraint_indicator_flags")?);
        let level_idc = r.u8("general_level_idc")?;
        r.take(2, "min_spatial_segmentation_idc")?;
        r.u8("parallelismType")?;
        let chroma_format = r.u8("chromaFormat")? & 0x03;
        let bit_depth_luma = (r.u8("bitDepthLumaMinus8")? & 0x07) + 8;
        let bit_depth_chroma = (r.u8("bitDepthChromaMinus8")? & 0x07) + 8;
        r.take(2, "avgFrameRate")?;
        let flags = r.u8("lengthSizeMinusOne")?;
        let count = r.u8("numOfArrays")?;
        let mut arrays = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let t = r.u8("NAL_unit_type")?;
            let n = r.u16("numNalus")?;
            let mut nal_units = Vec::new();
            for _ in 0..n {
                let len = usize::from(r.u16("nalUnitLength")?);
                nal_units.push(Bytes::copy_from_slice(r.take(len, "nalUnit")?));
            }
            arrays.push(NalArray {
                complete: t & 0x80 != 0,
                nal_type: t & 0x3f,
                nal_units,
            });
        }
        Ok(HevcDecoderConfigurationRecord {
            profile_space: b >> 6,
            high_tier: b & 0x20 != 0,
            profile_idc: b & 0x1f,
            profile_compatibility,
            constraint_flags,
            level_idc,
            chroma_format,
            bit_depth_luma,
            bit_depth_chroma,
            nal_length_size: (flags & 0x03) + 1,
            arrays,
        })
    }

    /// The NAL units of `nal_type`, in order.
    pub fn nal_units(&self, nal_type: u8) -> impl Iterator<Item = &Bytes> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == nal_type)
            .flat_map(|a| a.nal_units.iter())
    }

    /// The RFC 6381 codec string for `hvc1` samples (ISO/IEC 14496-15 E.3): the profile space
    /// (none, `A`, `B` or `C`) and profile, the compatibility flags in reverse bit order in hex,
    /// the tier (`L` or `H`) and level, then the constraint bytes in hex without trailing zero
    /// bytes.
    pub fn codec_string(&self) -> String {
        let space = ["", "A", "B", "C"][usize::from(self.profile_space & 3)];
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.profile_compatibility.reverse_bits(),
            if self.high_tier { 'H' } else { 'L' },
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraint_flags[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// The picture size an HEVC sequence parameter set gives, after its conformance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Reads the picture size from an SPS NAL unit (with its two-byte header).
pub fn sps_size(nal: &[u8]) -> Result<SpsSize, HevcError> {
    let rbsp = remove_emulation_prevention(nal.get(2..).ok_or(HevcError::Sps("no header"))?);
    let mut b = BitReader::new(&rbsp);
    let cut = |_| HevcError::Sps("truncated");
    b.read_bits(4).map_err(cut)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.read_bits(3).map_err(cut)?;
    b.read_bit().map_err(cut)?; // sps_temporal_id_nesting_flag
    profile_tier_level(&mut b, max_sub_layers_minus1).map_err(cut)?;
    let ue = |b: &mut BitReader| -> Result<u32, HevcError> {
        b.read_ue()
            .map_err(cut)?
            .ok_or(HevcError::Sps("exp-Golomb code too long"))
    };
    ue(&mut b)?; // sps_seq_parameter_set_id
    let chroma_format_idc = ue(&mut b)?;
    if chroma_format_idc > 3 {
        return Err(HevcError::Sps("chroma_format_idc above 3"));
    }
    if chroma_format_idc == 3 {
        b.read_bit().map_err(cut)?; // separate_colour_plane_flag
    }
    let width = ue(&mut b)?;
    let height = ue(&mut b)?;
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if b.read_flag().map_err(cut)? {
        let (left, right) = (ue(&mut b)?, ue(&mut b)?);
        let (top, bottom) = (ue(&mut b)?, ue(&mut b)?);
        crop_w = sub_w * (u64::from(left) + u64::from(right));
        crop_h = sub_h * (u64::from(top) + u64::from(bottom));
    }
    let width = u64::from(width).checked_sub(crop_w);
    let height = u64::from(height).checked_sub(crop_h);
    match (width, height) {
        (Some(w), Some(h)) if w > 0 && h > 0 && w <= 16_888 && h <= 16_888 => Ok(SpsSize {
            width: w as u32,
            height: h as u32,
        }),
        _ => Err(HevcError::Sps("picture size out of range")),
    }
}

/// Skips `profile_tier_level(1, max_sub_layers_minus1)` (H.265 7.3.3).
fn profile_tier_level(
    b: &mut BitReader,
    max_sub_layers_minus1: u32,
) -> Result<(), crate::bits::OutOfBits> {
    // General profile (2 + 1 + 5 + 32 + 48 bits) and level (8 bits).
    b.skip(96)?;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.read_bit()?, b.read_bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            b.skip(2)?; // reserved_zero_2bits
        }
    }
    for (profile, level) in present {
        if profile {
            b.skip(88)?;
        }
        if level {
            b.skip(8)?;
        }
    }
    Ok(())
}

/// The video configuration of an `hvcC` record: its codec string, and the picture size from its
/// first SPS.
pub fn video_config(record: Bytes) -> Result<VideoConfig, HevcError> {
    let hvcc = HevcDecoderConfigurationRecord::parse(&record)?;
    let sps = hvcc.nal_units(NAL_SPS).next().ok_or(HevcError::NoSps)?;
    let size = sps_size(sps)?;
    Ok(VideoConfig {
        codec: VideoCodec::Hevc,
        codec_string: hvcc.codec_string(),
        width: size.width,
        height: size.height,
        frame_rate: None,
        nal_length_size: hvcc.nal_length_size,
        record,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HevcError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(HevcError::Truncated(what))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HevcError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HevcError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The `hvcC` of one 640x360 frame from Debian's ffmpeg with libx265 (`-f lavfi -i
    /// testsrc2=size=640x360 -frames:v 1 -c:v libx265 -preset ultrafast`), with its VPS, SPS
    /// and PPS arrays (x265's SEI array left out). ffprobe reads it as Main, level 63.
    const X265_640X360: &str = "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959409210001002b42010101600000030090000003000003003fa005020171f2e595952930bc05a020000003002000000303c122000100064401c073c189";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn an_x265_record_gives_its_profile_level_size_and_codec_string() {
        let record = hex(X265_640X360);
        let hvcc = HevcDecoderConfigurationRecord::parse(&record).unwrap();
        assert_eq!(
            (hvcc.profile_idc, hvcc.level_idc, hvcc.high_tier),
            (1, 63, false)
        );
        assert_eq!(hvcc.profile_compatibility, 0x6000_0000);
        assert_eq!((hvcc.chroma_format, hvcc.bit_depth_luma), (1, 8));
        assert_eq!(hvcc.nal_length_size, 4);
        let types: Vec<u8> = hvcc.arrays.iter().map(|a| a.nal_type).collect();
        assert_eq!(types, [NAL_VPS, NAL_SPS, NAL_PPS]);
        assert_eq!(hvcc.codec_string(), "hvc1.1.6.L63.90");
        let config = video_config(Bytes::from(record)).unwrap();
        assert_eq!((config.width, config.height), (640, 360));
        assert_eq!(config.codec, VideoCodec::Hevc);
        assert_eq!(config.codec_string, "hvc1.1.6.L63.90");
    }

    #[test]
    fn codec_strings_follow_annex_e() {
        let mut hvcc = HevcDecoderConfigurationRecord::parse(&hex(X265_640X360)).unwrap();
        // The spec's own examples: Main, level 3.1, progressive source; Main 10 at High tier.
        hvcc.level_idc = 93;
        hvcc.constraint_flags = [0xB0, 0, 0, 0, 0, 0];
        assert_eq!(hvcc.codec_string(), "hvc1.1.6.L93.B0");
        hvcc.profile_idc = 2;
        hvcc.profile_compatibility = 0x2000_0000;
        hvcc.high_tier = true;
        hvcc.level_idc = 120;
        assert_eq!(hvcc.codec_string(), "hvc1.2.4.H120.B0");
        hvcc.constraint_flags = [0; 6];
        hvcc.profile_space = 1;
        assert_eq!(hvcc.codec_string(), "hvc1.A2.4.H120");
    }

    #[test]
    fn cut_or_wrong_records_are_errors() {
        let record = hex(X265_640X360);
        for len in 0..record.len() {
            assert!(
                video_config(Bytes::copy_from_slice(&record[..len])).is_err(),
                "accepted a record cut at {len}"
            );
        }
        let mut v2 = record.clone();
        v2[0] = 2;
        assert_eq!(
            HevcDecoderConfigurationRecord::parse(&v2),
            Err(HevcError::Version(2))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = video_config(Bytes::from(data.clone()));
            let _ = sps_size(&data);
        }
    }
}
