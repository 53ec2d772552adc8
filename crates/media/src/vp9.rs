//! VP9: the codec configuration record (`vpcC`, VP Codec ISO Media File Format Binding 2.2), the
//! codec string (`vp09.00.21.08`, the binding's short form), and the picture size from a
//! keyframe's uncompressed header (VP9 bitstream 6.2), which the record does not carry. Enhanced
//! RTMP carries the record in its SequenceStart packet. Bounds-checked throughout: untrusted
//! input is an error or `None`, never a panic.

use bytes::Bytes;

use crate::bits::BitReader;
use crate::codec::{VideoCodec, VideoConfig};

/// Why a VP9 configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Vp9Error {
    /// The record is shorter than its twelve fixed bytes.
    #[error("vpcC is truncated")]
    Truncated,
    /// The record's version is not 1.
    #[error("vpcC version {0} (want 1)")]
    Version(u8),
}

/// A `VPCodecConfigurationRecord` (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpCodecConfigurationRecord {
    /// Profile, 0 to 3.
    pub profile: u8,
    /// Level, as the binding writes it (10 is level 1, 21 is level 2.1).
    pub level: u8,
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `chromaSubsampling` (0: 4:2:0 vertical, 1: 4:2:0 colocated, 2: 4:2:2, 3: 4:4:4).
    pub chroma_subsampling: u8,
    /// `videoFullRangeFlag`.
    pub full_range: bool,
    /// `matrixCoefficients` (ISO/IEC 23091-2: 1 BT.709, 5 and 6 BT.601, 9 BT.2020; 2 unknown).
    pub matrix: u8,
}

impl VpCodecConfigurationRecord {
    /// Reads a record: a FullBox header (version 1, flags), then the fixed fields.
    pub fn parse(data: &[u8]) -> Result<Self, Vp9Error> {
        let [version, _, _, _, profile, level, packed, _primaries, _transfer, matrix, _, _, ..] =
            *data
        else {
            return Err(Vp9Error::Truncated);
        };
        if version != 1 {
            return Err(Vp9Error::Version(version));
        }
        Ok(VpCodecConfigurationRecord {
            profile,
            level,
            bit_depth: packed >> 4,
            chroma_subsampling: (packed >> 1) & 7,
            full_range: packed & 1 == 1,
            matrix,
        })
    }

    /// The codec string's short form: `vp09.PP.LL.DD`.
    pub fn codec_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}",
            self.profile, self.level, self.bit_depth
        )
    }
}

/// The picture size a VP9 keyframe declares (its uncompressed header's `frame_size`); `None`
/// for an inter frame, a shown existing frame, or a header that does not read.
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(frame);
    if r.read_bits(2).ok()? != 2 {
        return None; // frame_marker
    }
    let low = r.read_bits(1).ok()?;
    let high = r.read_bits(1).ok()?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.read_bits(1).ok()?; // reserved_zero
    }
    if r.read_flag().ok()? {
        return None; // show_existing_frame
    }
    if r.read_bits(1).ok()? != 0 {
        return None; // frame_type: not a KEY_FRAME
    }
    r.read_bits(2).ok()?; // show_frame, error_resilient_mode
    if r.read_bits(24).ok()? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    if profile >= 2 {
        r.read_bits(1).ok()?; // ten_or_twelve_bit
    }
    let color_space = r.read_bits(3).ok()?;
    const CS_RGB: u32 = 7;
    if color_space != CS_RGB {
        r.read_bits(1).ok()?; // color_range
        if profile == 1 || profile == 3 {
            r.read_bits(3).ok()?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.read_bits(1).ok()?; // reserved_zero
    }
    let width = r.read_bits(16).ok()? + 1;
    let height = r.read_bits(16).ok()? + 1;
    Some((width, height))
}

/// The video configuration of a `vpcC` record: its codec string; the size is not in the record
/// (0 until a keyframe gives it, [`keyframe_size`]).
pub fn video_config(record: Bytes) -> Result<VideoConfig, Vp9Error> {
    let vpcc = VpCodecConfigurationRecord::parse(&record)?;
    Ok(VideoConfig {
        codec: VideoCodec::Vp9,
        codec_string: vpcc.codec_string(),
        width: 0,
        height: 0,
        frame_rate: None,
        nal_length_size: 0,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The `vpcC` that ffmpeg 7's FLV muxer sends for libvpx-vp9 at 640x360 (profile 0, level
    /// 2.1, 8 bits, 4:2:0 colocated).
    const FFMPEG_VPCC: [u8; 12] = [1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0];

    /// The first bytes of that stream's first keyframe (profile 0, 640x360).
    const FFMPEG_KEYFRAME: [u8; 12] = [
        0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xf0, 0x16, 0x76, 0x06, 0x38, 0x24,
    ];

    #[test]
    fn an_ffmpeg_record_gives_its_codec_string() {
        let vpcc = VpCodecConfigurationRecord::parse(&FFMPEG_VPCC).unwrap();
        assert_eq!((vpcc.profile, vpcc.level, vpcc.bit_depth), (0, 21, 8));
        assert_eq!(vpcc.chroma_subsampling, 1);
        assert_eq!(vpcc.codec_string(), "vp09.00.21.08");
        let config = video_config(Bytes::from_static(&FFMPEG_VPCC)).unwrap();
        assert_eq!((config.codec, config.width), (VideoCodec::Vp9, 0));
    }

    #[test]
    fn a_keyframe_gives_its_size_and_an_inter_frame_none() {
        assert_eq!(keyframe_size(&FFMPEG_KEYFRAME), Some((640, 360)));
        // frame_type 1 (inter).
        let mut inter = FFMPEG_KEYFRAME;
        inter[0] = 0x86;
        assert_eq!(keyframe_size(&inter), None);
        // A broken sync code.
        let mut broken = FFMPEG_KEYFRAME;
        broken[2] = 0;
        assert_eq!(keyframe_size(&broken), None);
    }

    #[test]
    fn a_short_or_wrong_record_is_refused() {
        for n in 0..FFMPEG_VPCC.len() {
            assert_eq!(
                VpCodecConfigurationRecord::parse(&FFMPEG_VPCC[..n]),
                Err(Vp9Error::Truncated)
            );
        }
        let mut v0 = FFMPEG_VPCC;
        v0[0] = 0;
        assert_eq!(
            VpCodecConfigurationRecord::parse(&v0),
            Err(Vp9Error::Version(0))
        );
    }

    proptest! {
        #[test]
        fn no_input_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = VpCodecConfigurationRecord::parse(&data);
            let _ = keyframe_size(&data);
        }
    }
}
