//! Sequence parameter set parsing: the picture size, frame rate, profile and level Ferrocast
//! reports.

use crate::bits::{BitReader, OutOfBits};
use crate::h264::error::H264Error;
use crate::h264::nal::{remove_emulation_prevention, NAL_SPS};

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
