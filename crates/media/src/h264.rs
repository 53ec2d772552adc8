//! H.264 parsing: the AVCDecoderConfigurationRecord (`avcC`), the SPS fields Ferrocast reports,
//! and the Annex B helpers an MPEG-TS demuxer needs.
//!
//! Everything here is sans-IO and total: any input, however malformed, gives an `Ok` or an
//! [`H264Error`], never a panic.
//!
//! ```
//! use media::h264::{AvcDecoderConfigurationRecord, Sps};
//!
//! // SPS and PPS of an x264 640x360 Main profile stream, in Annex B form.
//! let annex_b = [
//!     &[0u8, 0, 0, 1][..],
//!     &[0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00,
//!       0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x07, 0x8b, 0x16, 0xcb],
//!     &[0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x20],
//! ]
//! .concat();
//! let nals: Vec<&[u8]> = media::h264::annex_b_nal_units(&annex_b).collect();
//! let record = AvcDecoderConfigurationRecord::from_parameter_sets(&nals[..1], &nals[1..])?;
//! let sps = Sps::parse(&record.sps[0])?;
//! assert_eq!((sps.width, sps.height), (640, 360));
//! assert_eq!(sps.frame_rate, Some(25.0));
//! assert_eq!(sps.codec_string(), "avc1.4d401e");
//!
//! // The record survives a round trip through its serialised form.
//! let again = AvcDecoderConfigurationRecord::parse(&record.to_bytes())?;
//! assert_eq!(again, record);
//! # Ok::<(), media::h264::H264Error>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{BitReader, OutOfBits};
use crate::{VideoCodec, VideoConfig};

/// NAL unit type of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of a coded slice of an IDR picture (a keyframe).
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// Why H.264 data could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264Error {
    /// The data ended before a field could be read in full.
    #[error("H.264 data is truncated: it ended while reading {0}")]
    Truncated(&'static str),
    /// The `avcC` record's configurationVersion is not 1.
    #[error("AVCDecoderConfigurationRecord version {0} is not supported (expected 1)")]
    UnsupportedVersion(u8),
    /// The `avcC` record's lengthSizeMinusOne is 2, i.e. a 3-byte NAL length, which
    /// ISO/IEC 14496-15 does not allow.
    #[error("AVCDecoderConfigurationRecord declares a 3-byte NAL length size, which is invalid")]
    InvalidNalLengthSize,
    /// The `avcC` record (or the input of a builder) holds no sequence parameter set.
    #[error("no H.264 sequence parameter set (SPS) was found")]
    NoSps,
    /// No picture parameter set was given to a builder that needs one.
    #[error("no H.264 picture parameter set (PPS) was found")]
    NoPps,
    /// A NAL unit that should have been of one type is of another.
    #[error("expected an H.264 NAL unit of type {expected}, found type {found}")]
    UnexpectedNalType {
        /// The type wanted (7 = SPS, 8 = PPS).
        expected: u8,
        /// The type found.
        found: u8,
    },
    /// A NAL unit is empty.
    #[error("an H.264 NAL unit is empty")]
    EmptyNal,
    /// A NAL unit is too long for the length field that must carry it.
    #[error("an H.264 NAL unit of {0} bytes is too long for its length field")]
    NalTooLong(usize),
    /// More parameter sets were given than an `avcC` record can carry.
    #[error("too many H.264 parameter sets ({0}) for an AVCDecoderConfigurationRecord")]
    TooManyParameterSets(usize),
    /// An exp-Golomb code is longer than any value of 32 bits needs.
    #[error("H.264 exp-Golomb code for {0} is longer than 32 bits")]
    ExpGolombOverflow(&'static str),
    /// A syntax element holds a value outside the range the standard allows.
    #[error("H.264 field {field} has value {value}, outside the allowed range")]
    OutOfRange {
        /// The syntax element's name in ITU-T H.264.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The frame cropping rectangle is larger than the coded picture.
    #[error(
        "H.264 frame cropping ({crop_w}x{crop_h}) removes the whole {coded_w}x{coded_h} picture"
    )]
    BadCropping {
        /// Coded width in pixels.
        coded_w: u64,
        /// Coded height in pixels.
        coded_h: u64,
        /// Pixels cropped horizontally.
        crop_w: u64,
        /// Pixels cropped vertically.
        crop_h: u64,
    },
    /// A length-prefixed NAL unit claims more bytes than remain.
    #[error("a length-prefixed H.264 NAL unit claims {claimed} bytes but only {available} remain")]
    NalLengthOverrun {
        /// The length from the prefix.
        claimed: usize,
        /// Bytes left after the prefix.
        available: usize,
    },
}

/// The NAL unit type (low 5 bits of the first byte), or `None` for an empty NAL unit.
pub fn nal_unit_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// Removes emulation prevention bytes: every `0x03` that follows two zero bytes is dropped,
/// turning a NAL unit's payload into its RBSP.
pub fn remove_emulation_prevention(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The SPS fields Ferrocast reports, parsed from one sequence parameter set NAL unit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Sps {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, 244 High 4:4:4 Predictive, ...).
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag` .. `constraint_set5_flag` and the two reserved
    /// bits, as it appears in the bitstream (and in RFC 6381 codec strings).
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4. 1 when not signalled.
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag` (4:4:4 only).
    pub separate_colour_plane: bool,
    /// Luma bit depth (8 when not signalled).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 when not signalled).
    pub bit_depth_chroma: u8,
    /// `frame_mbs_only_flag`: false when the stream may hold field pictures (interlaced).
    pub frame_mbs_only: bool,
    /// Picture width in pixels, after cropping.
    pub width: u32,
    /// Picture (frame) height in pixels, after cropping.
    pub height: u32,
    /// Sample aspect ratio from the VUI, when signalled.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// `num_units_in_tick` and `time_scale` from the VUI, when signalled (both non-zero).
    pub timing: Option<(u32, u32)>,
    /// Frame rate, `time_scale / (2 * num_units_in_tick)`, when the VUI signals timing.
    pub frame_rate: Option<f64>,
}

/// Profiles whose SPS carries `chroma_format_idc`, bit depths and scaling lists.
fn has_high_profile_fields(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Wraps a [`BitReader`] so each read names the field it was reading when it failed.
struct SpsReader<'a>(BitReader<'a>);

impl SpsReader<'_> {
    fn bits(&mut self, n: u32, field: &'static str) -> Result<u32, H264Error> {
        self.0
            .read_bits(n)
            .map_err(|OutOfBits| H264Error::Truncated(field))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, H264Error> {
        self.0
            .read_flag()
            .map_err(|OutOfBits| H264Error::Truncated(field))
    }

    fn ue(&mut self, field: &'static str) -> Result<u32, H264Error> {
        self.0
            .read_ue()
            .map_err(|OutOfBits| H264Error::Truncated(field))?
            .ok_or(H264Error::ExpGolombOverflow(field))
    }

    /// `ue(v)` that must not exceed `max`.
    fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, H264Error> {
        let v = self.ue(field)?;
        if v > max {
            return Err(H264Error::OutOfRange {
                field,
                value: i64::from(v),
            });
        }
        Ok(v)
    }

    fn se(&mut self, field: &'static str) -> Result<i64, H264Error> {
        self.0
            .read_se()
            .map_err(|OutOfBits| H264Error::Truncated(field))?
            .ok_or(H264Error::ExpGolombOverflow(field))
    }

    fn scaling_list(&mut self, size: usize) -> Result<(), H264Error> {
        let mut last: i64 = 8;
        let mut next: i64 = 8;
        for _ in 0..size {
            if next != 0 {
                let delta = self.se("delta_scale")?;
                if !(-128..=127).contains(&delta) {
                    return Err(H264Error::OutOfRange {
                        field: "delta_scale",
                        value: delta,
                    });
                }
                next = (last + delta + 256).rem_euclid(256);
            }
            if next != 0 {
                last = next;
            }
        }
        Ok(())
    }
}

impl Sps {
    /// Parses a sequence parameter set NAL unit (header byte included, emulation prevention
    /// bytes still in place, no start code or length prefix).
    ///
    /// Errors in the VUI after the timing information do not matter: parsing stops there.
    /// A VUI that ends early leaves `frame_rate` as `None` rather than failing, because the
    /// picture size is already known and some encoders write short VUIs.
    pub fn parse(nal: &[u8]) -> Result<Sps, H264Error> {
        let header = *nal.first().ok_or(H264Error::EmptyNal)?;
        if header & 0x1f != NAL_SPS {
            return Err(H264Error::UnexpectedNalType {
                expected: NAL_SPS,
                found: header & 0x1f,
            });
        }
        let rbsp = remove_emulation_prevention(&nal[1..]);
        let mut r = SpsReader(BitReader::new(&rbsp));

        let profile_idc = r.bits(8, "profile_idc")? as u8;
        let constraint_flags = r.bits(8, "constraint_set_flags")? as u8;
        let level_idc = r.bits(8, "level_idc")? as u8;
        let id = r.ue_max("seq_parameter_set_id", 31)?;

        let mut chroma_format_idc = 1u8;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8u8;
        let mut bit_depth_chroma = 8u8;
        if has_high_profile_fields(profile_idc) {
            chroma_format_idc = r.ue_max("chroma_format_idc", 3)? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag("separate_colour_plane_flag")?;
            }
            bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 6)? as u8;
            bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 6)? as u8;
            r.flag("qpprime_y_zero_transform_bypass_flag")?;
            if r.flag("seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag("seq_scaling_list_present_flag")? {
                        r.scaling_list(if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }

        r.ue_max("log2_max_frame_num_minus4", 12)?;
        match r.ue_max("pic_order_cnt_type", 2)? {
            0 => {
                r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
            }
            1 => {
                r.flag("delta_pic_order_always_zero_flag")?;
                r.se("offset_for_non_ref_pic")?;
                r.se("offset_for_top_to_bottom_field")?;
                let n = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..n {
                    r.se("offset_for_ref_frame")?;
                }
            }
            _ => {}
        }
        r.ue("max_num_ref_frames")?;
        r.flag("gaps_in_frame_num_value_allowed_flag")?;
        let width_mbs = u64::from(r.ue("pic_width_in_mbs_minus1")?) + 1;
        let height_map_units = u64::from(r.ue("pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
        if !frame_mbs_only {
            r.flag("mb_adaptive_frame_field_flag")?;
        }
        r.flag("direct_8x8_inference_flag")?;
        let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) =
            (0u64, 0u64, 0u64, 0u64);
        if r.flag("frame_cropping_flag")? {
            crop_left = r.ue("frame_crop_left_offset")?.into();
            crop_right = r.ue("frame_crop_right_offset")?.into();
            crop_top = r.ue("frame_crop_top_offset")?.into();
            crop_bottom = r.ue("frame_crop_bottom_offset")?.into();
        }

        // ITU-T H.264 7.4.2.1.1: crop units depend on ChromaArrayType and field coding.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width_c, sub_height_c) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let coded_w = width_mbs * 16;
        let coded_h = height_map_units * 16 * field_factor;
        let crop_w = (crop_left + crop_right) * sub_width_c;
        let crop_h = (crop_top + crop_bottom) * sub_height_c * field_factor;
        let (width, height) = match (coded_w.checked_sub(crop_w), coded_h.checked_sub(crop_h)) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
            _ => {
                return Err(H264Error::BadCropping {
                    coded_w,
                    coded_h,
                    crop_w,
                    crop_h,
                })
            }
        };
        let width = u32::try_from(width).map_err(|_| H264Error::OutOfRange {
            field: "pic_width_in_mbs_minus1",
            value: i64::try_from(width_mbs - 1).unwrap_or(i64::MAX),
        })?;
        let height = u32::try_from(height).map_err(|_| H264Error::OutOfRange {
            field: "pic_height_in_map_units_minus1",
            value: i64::try_from(height_map_units - 1).unwrap_or(i64::MAX),
        })?;

        let mut sps = Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            chroma_format_idc,
            separate_colour_plane,
            bit_depth_luma,
            bit_depth_chroma,
            frame_mbs_only,
            width,
            height,
            sample_aspect_ratio: None,
            timing: None,
            frame_rate: None,
        };
        if r.flag("vui_parameters_present_flag").unwrap_or(false) {
            // A broken VUI only costs us the fields we could not read.
            let _ = sps.parse_vui(&mut r);
        }
        Ok(sps)
    }

    fn parse_vui(&mut self, r: &mut SpsReader<'_>) -> Result<(), H264Error> {
        if r.flag("aspect_ratio_info_present_flag")? {
            let idc = r.bits(8, "aspect_ratio_idc")?;
            self.sample_aspect_ratio = match idc {
                255 => {
                    let w = r.bits(16, "sar_width")? as u16;
                    let h = r.bits(16, "sar_height")? as u16;
                    Some((w, h))
                }
                _ => sar_from_idc(idc),
            };
        }
        if r.flag("overscan_info_present_flag")? {
            r.flag("overscan_appropriate_flag")?;
        }
        if r.flag("video_signal_type_present_flag")? {
            r.bits(4, "video_format, video_full_range_flag")?;
            if r.flag("colour_description_present_flag")? {
                r.bits(24, "colour_description")?;
            }
        }
        if r.flag("chroma_loc_info_present_flag")? {
            r.ue("chroma_sample_loc_type_top_field")?;
            r.ue("chroma_sample_loc_type_bottom_field")?;
        }
        if r.flag("timing_info_present_flag")? {
            let num_units_in_tick = r.bits(32, "num_units_in_tick")?;
            let time_scale = r.bits(32, "time_scale")?;
            if num_units_in_tick > 0 && time_scale > 0 {
                self.timing = Some((num_units_in_tick, time_scale));
                self.frame_rate =
                    Some(f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick)));
            }
        }
        Ok(())
    }

    /// RFC 6381 codec string, `avc1.PPCCLL`: profile_idc, constraint byte and level_idc in hex.
    pub fn codec_string(&self) -> String {
        codec_string(self.profile_idc, self.constraint_flags, self.level_idc)
    }
}

/// RFC 6381 codec string `avc1.PPCCLL` from its three bytes.
pub fn codec_string(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}")
}

/// Table E-1 of ITU-T H.264.
fn sar_from_idc(idc: u32) -> Option<(u16, u16)> {
    const TABLE: [(u16, u16); 16] = [
        (1, 1),
        (12, 11),
        (10, 11),
        (16, 11),
        (40, 33),
        (24, 11),
        (20, 11),
        (32, 11),
        (80, 33),
        (18, 11),
        (15, 11),
        (64, 33),
        (160, 99),
        (4, 3),
        (3, 2),
        (2, 1),
    ];
    let i = usize::try_from(idc).ok()?.checked_sub(1)?;
    TABLE.get(i).copied()
}

/// The high-profile extension of an `avcC` record (ISO/IEC 14496-15 5.3.3.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcHighProfileExt {
    /// `chroma_format` (same meaning as the SPS's `chroma_format_idc`).
    pub chroma_format: u8,
    /// `bit_depth_luma_minus8`.
    pub bit_depth_luma_minus8: u8,
    /// `bit_depth_chroma_minus8`.
    pub bit_depth_chroma_minus8: u8,
    /// Sequence parameter set extension NAL units.
    pub sps_ext: Vec<Bytes>,
}

/// An AVCDecoderConfigurationRecord (`avcC`), as carried in FLV sequence headers and MP4.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AvcDecoderConfigurationRecord {
    /// `configurationVersion` (always 1).
    pub version: u8,
    /// `AVCProfileIndication` (a copy of the SPS's profile_idc).
    pub profile_indication: u8,
    /// `profile_compatibility` (a copy of the SPS's constraint byte).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication` (a copy of the SPS's level_idc).
    pub level_indication: u8,
    /// Size of the NAL unit length prefix in samples: 1, 2 or 4.
    pub nal_length_size: u8,
    /// Sequence parameter set NAL units.
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units.
    pub pps: Vec<Bytes>,
    /// The high-profile extension, when present.
    pub high_profile_ext: Option<AvcHighProfileExt>,
}

/// Reads `avcC` fields from a byte slice, naming the field on truncation.
struct ByteReader<'a> {
    data: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn u8(&mut self, what: &'static str) -> Result<u8, H264Error> {
        let (&b, rest) = self.data.split_first().ok_or(H264Error::Truncated(what))?;
        self.data = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], H264Error> {
        if n > self.data.len() {
            return Err(H264Error::Truncated(what));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn nal_list(&mut self, count: usize, what: &'static str) -> Result<Vec<Bytes>, H264Error> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let len = self.take(2, what)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            out.push(Bytes::copy_from_slice(self.take(len, what)?));
        }
        Ok(out)
    }
}

impl AvcDecoderConfigurationRecord {
    /// Parses a serialised record.
    ///
    /// The high-profile extension is read when the profile calls for it and the bytes are
    /// there; many encoders leave it out, so its absence is not an error. Reserved bits are not
    /// checked, because some encoders write them as zeros.
    pub fn parse(data: &[u8]) -> Result<Self, H264Error> {
        let mut r = ByteReader { data };
        let version = r.u8("configurationVersion")?;
        if version != 1 {
            return Err(H264Error::UnsupportedVersion(version));
        }
        let profile_indication = r.u8("AVCProfileIndication")?;
        let profile_compatibility = r.u8("profile_compatibility")?;
        let level_indication = r.u8("AVCLevelIndication")?;
        let nal_length_size = match r.u8("lengthSizeMinusOne")? & 0x03 {
            0 => 1,
            1 => 2,
            3 => 4,
            _ => return Err(H264Error::InvalidNalLengthSize),
        };
        let num_sps = usize::from(r.u8("numOfSequenceParameterSets")? & 0x1f);
        let sps = r.nal_list(num_sps, "sequenceParameterSetNALUnit")?;
        let num_pps = usize::from(r.u8("numOfPictureParameterSets")?);
        let pps = r.nal_list(num_pps, "pictureParameterSetNALUnit")?;
        if sps.is_empty() {
            return Err(H264Error::NoSps);
        }
        let high_profile_ext =
            if matches!(profile_indication, 100 | 110 | 122 | 144) && r.data.len() >= 4 {
                let chroma_format = r.u8("chroma_format")? & 0x03;
                let bit_depth_luma_minus8 = r.u8("bit_depth_luma_minus8")? & 0x07;
                let bit_depth_chroma_minus8 = r.u8("bit_depth_chroma_minus8")? & 0x07;
                let n = usize::from(r.u8("numOfSequenceParameterSetExt")?);
                // A malformed extension is ignored rather than refusing a usable record.
                r.nal_list(n, "sequenceParameterSetExtNALUnit")
                    .ok()
                    .map(|sps_ext| AvcHighProfileExt {
                        chroma_format,
                        bit_depth_luma_minus8,
                        bit_depth_chroma_minus8,
                        sps_ext,
                    })
            } else {
                None
            };
        Ok(AvcDecoderConfigurationRecord {
            version,
            profile_indication,
            profile_compatibility,
            level_indication,
            nal_length_size,
            sps,
            pps,
            high_profile_ext,
        })
    }

    /// Builds a record from SPS and PPS NAL units (no start codes), with 4-byte NAL lengths.
    ///
    /// Profile, compatibility and level come from the first SPS, and the high-profile extension
    /// is filled in from it for the profiles that need one.
    pub fn from_parameter_sets<S, P>(sps: &[S], pps: &[P]) -> Result<Self, H264Error>
    where
        S: AsRef<[u8]>,
        P: AsRef<[u8]>,
    {
        let first = sps.first().ok_or(H264Error::NoSps)?;
        if pps.is_empty() {
            return Err(H264Error::NoPps);
        }
        if sps.len() > 31 {
            return Err(H264Error::TooManyParameterSets(sps.len()));
        }
        if pps.len() > 255 {
            return Err(H264Error::TooManyParameterSets(pps.len()));
        }
        let parsed = Sps::parse(first.as_ref())?;
        let to_bytes = |nals: &[&[u8]], expected: u8| -> Result<Vec<Bytes>, H264Error> {
            nals.iter()
                .map(|n| {
                    let found = nal_unit_type(n).ok_or(H264Error::EmptyNal)?;
                    if found != expected {
                        return Err(H264Error::UnexpectedNalType { expected, found });
                    }
                    if n.len() > usize::from(u16::MAX) {
                        return Err(H264Error::NalTooLong(n.len()));
                    }
                    Ok(Bytes::copy_from_slice(n))
                })
                .collect()
        };
        let sps_refs: Vec<&[u8]> = sps.iter().map(AsRef::as_ref).collect();
        let pps_refs: Vec<&[u8]> = pps.iter().map(AsRef::as_ref).collect();
        let sps = to_bytes(&sps_refs, NAL_SPS)?;
        let pps = to_bytes(&pps_refs, NAL_PPS)?;
        let high_profile_ext =
            matches!(parsed.profile_idc, 100 | 110 | 122 | 144).then(|| AvcHighProfileExt {
                chroma_format: parsed.chroma_format_idc,
                bit_depth_luma_minus8: parsed.bit_depth_luma - 8,
                bit_depth_chroma_minus8: parsed.bit_depth_chroma - 8,
                sps_ext: Vec::new(),
            });
        Ok(AvcDecoderConfigurationRecord {
            version: 1,
            profile_indication: parsed.profile_idc,
            profile_compatibility: parsed.constraint_flags,
            level_indication: parsed.level_idc,
            nal_length_size: 4,
            sps,
            pps,
            high_profile_ext,
        })
    }

    /// Serialises the record, with reserved bits set to one as the standard asks.
    ///
    /// Lists longer than the format allows (31 SPS, 255 PPS or SPS extensions, 65535-byte
    /// NAL units) are cut to fit; records built by this module never hold such lists.
    pub fn to_bytes(&self) -> Bytes {
        fn put_list(out: &mut BytesMut, nals: &[Bytes]) {
            for n in nals {
                let len = n.len().min(usize::from(u16::MAX));
                out.put_u16(len as u16);
                out.put_slice(&n[..len]);
            }
        }
        let mut out = BytesMut::with_capacity(64);
        out.put_u8(self.version);
        out.put_u8(self.profile_indication);
        out.put_u8(self.profile_compatibility);
        out.put_u8(self.level_indication);
        let length_size_minus_one = match self.nal_length_size {
            1 => 0,
            2 => 1,
            _ => 3,
        };
        out.put_u8(0xfc | length_size_minus_one);
        let sps = &self.sps[..self.sps.len().min(31)];
        out.put_u8(0xe0 | sps.len() as u8);
        put_list(&mut out, sps);
        let pps = &self.pps[..self.pps.len().min(255)];
        out.put_u8(pps.len() as u8);
        put_list(&mut out, pps);
        if let Some(ext) = &self.high_profile_ext {
            out.put_u8(0xfc | (ext.chroma_format & 0x03));
            out.put_u8(0xf8 | (ext.bit_depth_luma_minus8 & 0x07));
            out.put_u8(0xf8 | (ext.bit_depth_chroma_minus8 & 0x07));
            let sps_ext = &ext.sps_ext[..ext.sps_ext.len().min(255)];
            out.put_u8(sps_ext.len() as u8);
            put_list(&mut out, sps_ext);
        }
        out.freeze()
    }

    /// Parses the first SPS of the record.
    pub fn first_sps(&self) -> Result<Sps, H264Error> {
        Sps::parse(self.sps.first().ok_or(H264Error::NoSps)?)
    }
}

/// Builds the [`VideoConfig`] for an H.264 track from its serialised `avcC` record: size, frame
/// rate and codec string come from the record's first SPS, and `record` is kept as given.
pub fn video_config(record: Bytes) -> Result<VideoConfig, H264Error> {
    let parsed = AvcDecoderConfigurationRecord::parse(&record)?;
    let sps = parsed.first_sps()?;
    Ok(VideoConfig {
        codec: VideoCodec::H264,
        width: sps.width,
        height: sps.height,
        frame_rate: sps.frame_rate,
        codec_string: sps.codec_string(),
        nal_length_size: parsed.nal_length_size,
        record,
    })
}

/// Iterates over the NAL units of an Annex B byte stream, without their start codes.
///
/// Both 3-byte (`00 00 01`) and 4-byte (`00 00 00 01`) start codes are recognised. Bytes before
/// the first start code are skipped, trailing zero bytes of each NAL unit (which belong to the
/// next start code or to `trailing_zero_8bits`) are dropped, and empty NAL units are skipped.
pub fn annex_b_nal_units(data: &[u8]) -> AnnexBNalUnits<'_> {
    let start = find_start_code(data, 0).map(|(_, payload)| payload);
    AnnexBNalUnits { data, next: start }
}

/// Iterator returned by [`annex_b_nal_units`].
#[derive(Debug, Clone)]
pub struct AnnexBNalUnits<'a> {
    data: &'a [u8],
    /// Offset of the next NAL unit's first byte, `None` when done.
    next: Option<usize>,
}

/// Finds the first `00 00 01` at or after `from`: returns (offset of the first zero, offset
/// just after the `01`).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let rest = data.get(from..)?;
    rest.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (from + i, from + i + 3))
}

impl<'a> Iterator for AnnexBNalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let (end, next) = match find_start_code(self.data, start) {
                Some((sc, after)) => (sc, Some(after)),
                None => (self.data.len(), None),
            };
            self.next = next;
            let mut nal = self.data.get(start..end).unwrap_or_default();
            while let Some((&0, head)) = nal.split_last() {
                nal = head;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// Converts an Annex B access unit into length-prefixed form (4-byte big-endian lengths), the
/// form of [`crate::VideoFrame::data`]. Every NAL unit is kept, parameter sets included.
pub fn annex_b_to_length_prefixed(data: &[u8]) -> Result<Bytes, H264Error> {
    nal_units_to_length_prefixed(annex_b_nal_units(data))
}

/// Writes NAL units (without start codes) as one length-prefixed buffer with 4-byte lengths.
pub fn nal_units_to_length_prefixed<'a, I>(nals: I) -> Result<Bytes, H264Error>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = BytesMut::new();
    for nal in nals {
        let len = u32::try_from(nal.len()).map_err(|_| H264Error::NalTooLong(nal.len()))?;
        out.reserve(4 + nal.len());
        out.put_u32(len);
        out.put_slice(nal);
    }
    Ok(out.freeze())
}

/// Iterates over length-prefixed NAL units (as in [`crate::VideoFrame::data`]), yielding an
/// error (and then stopping) when a length prefix is cut short or overruns the buffer.
///
/// `nal_length_size` must be 1, 2, 3 or 4; any other size yields one error.
pub fn length_prefixed_nal_units(data: &[u8], nal_length_size: u8) -> LengthPrefixedNalUnits<'_> {
    LengthPrefixedNalUnits {
        data,
        size: usize::from(nal_length_size),
        failed: false,
    }
}

/// Iterator returned by [`length_prefixed_nal_units`].
#[derive(Debug, Clone)]
pub struct LengthPrefixedNalUnits<'a> {
    data: &'a [u8],
    size: usize,
    failed: bool,
}

impl<'a> Iterator for LengthPrefixedNalUnits<'a> {
    type Item = Result<&'a [u8], H264Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        if !(1..=4).contains(&self.size) {
            self.failed = true;
            return Some(Err(H264Error::InvalidNalLengthSize));
        }
        if self.data.len() < self.size {
            self.failed = true;
            return Some(Err(H264Error::Truncated("NAL unit length prefix")));
        }
        let (prefix, rest) = self.data.split_at(self.size);
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len > rest.len() {
            self.failed = true;
            return Some(Err(H264Error::NalLengthOverrun {
                claimed: len,
                available: rest.len(),
            }));
        }
        let (nal, rest) = rest.split_at(len);
        self.data = rest;
        Some(Ok(nal))
    }
}

#[cfg(test)]
mod tests {
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
}
