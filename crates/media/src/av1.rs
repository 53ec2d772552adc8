//! AV1: the codec configuration record (`av1C`, AV1 Codec ISO Media File Format Binding 2.3),
//! the picture size from its sequence header OBU (AV1 5.5), and the codec string
//! (`av01.0.04M.08`, the binding's "Codecs Parameter String"). Enhanced RTMP carries the record
//! in its SequenceStart packet. Bounds-checked throughout: untrusted input is an error, never a
//! panic.

use bytes::Bytes;

use crate::bits::{BitReader, OutOfBits};
use crate::codec::{VideoCodec, VideoConfig};

/// OBU type of a sequence header.
const OBU_SEQUENCE_HEADER: u8 = 1;

/// Why an AV1 configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Av1Error {
    /// The record is shorter than its four fixed bytes.
    #[error("av1C is truncated")]
    Truncated,
    /// The marker bit is not set or the version is not 1.
    #[error("av1C marker or version is wrong (first byte {0:#04x}, want 0x81)")]
    Version(u8),
    /// The record's configOBUs carry no sequence header.
    #[error("av1C has no sequence header OBU")]
    NoSequenceHeader,
    /// The sequence header could not be read.
    #[error("AV1 sequence header: {0}")]
    SequenceHeader(&'static str),
}

/// An `AV1CodecConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1CodecConfigurationRecord {
    /// `seq_profile` (0: Main, 1: High, 2: Professional).
    pub profile: u8,
    /// `seq_level_idx_0` (AV1 Annex A: 0 is level 2.0, 4 is 3.0, 8 is 4.0, ...).
    pub level_idx: u8,
    /// `seq_tier_0`: the High tier.
    pub high_tier: bool,
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `monochrome`.
    pub monochrome: bool,
    /// `chroma_subsampling_x`, `chroma_subsampling_y` and `chroma_sample_position`.
    pub chroma: (bool, bool, u8),
    /// `configOBUs`: the sequence header OBU (and any metadata OBUs), as stored.
    pub config_obus: Bytes,
}

impl Av1CodecConfigurationRecord {
    /// Reads a record.
    pub fn parse(data: &[u8]) -> Result<Self, Av1Error> {
        let [first, b1, b2, _b3, ..] = *data else {
            return Err(Av1Error::Truncated);
        };
        if first != 0x81 {
            return Err(Av1Error::Version(first));
        }
        let high_bitdepth = b2 & 0x40 != 0;
        let twelve_bit = b2 & 0x20 != 0;
        Ok(Av1CodecConfigurationRecord {
            profile: b1 >> 5,
            level_idx: b1 & 0x1f,
            high_tier: b2 & 0x80 != 0,
            bit_depth: match (high_bitdepth, twelve_bit) {
                (true, true) => 12,
                (true, false) => 10,
                _ => 8,
            },
            monochrome: b2 & 0x10 != 0,
            chroma: (b2 & 0x08 != 0, b2 & 0x04 != 0, b2 & 0x03),
            config_obus: Bytes::copy_from_slice(&data[4..]),
        })
    }

    /// The codec string: `av01.` profile, two-digit level and tier (`M` or `H`), two-digit bit
    /// depth; the optional fields after it are left out (their defaults apply).
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.profile,
            self.level_idx,
            if self.high_tier { 'H' } else { 'M' },
            self.bit_depth
        )
    }

    /// The sequence header OBU's payload, from `configOBUs`.
    pub fn sequence_header(&self) -> Result<&[u8], Av1Error> {
        let mut rest = &self.config_obus[..];
        while let Some((&header, after)) = rest.split_first() {
            let obu_type = (header >> 3) & 0x0f;
            let has_extension = header & 0x04 != 0;
            let has_size = header & 0x02 != 0;
            let after = if has_extension {
                after.get(1..).ok_or(Av1Error::NoSequenceHeader)?
            } else {
                after
            };
            let (size, after) = if has_size {
                leb128(after).ok_or(Av1Error::NoSequenceHeader)?
            } else {
                (after.len(), after)
            };
            let payload = after.get(..size).ok_or(Av1Error::NoSequenceHeader)?;
            if obu_type == OBU_SEQUENCE_HEADER {
                return Ok(payload);
            }
            rest = &after[size..];
        }
        Err(Av1Error::NoSequenceHeader)
    }
}

/// A LEB128 number (at most 8 bytes, AV1 4.10.5) and what follows it.
fn leb128(data: &[u8]) -> Option<(usize, &[u8])> {
    let mut value: u64 = 0;
    for (i, b) in data.iter().take(8).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, &data[i + 1..]));
        }
    }
    None
}

/// The largest frame a sequence header allows: `max_frame_width_minus_1 + 1` by
/// `max_frame_height_minus_1 + 1` (AV1 5.5.1).
pub fn sequence_size(payload: &[u8]) -> Result<(u32, u32), Av1Error> {
    size(&mut BitReader::new(payload)).map_err(|_| Av1Error::SequenceHeader("truncated"))?
}

fn size(b: &mut BitReader) -> Result<Result<(u32, u32), Av1Error>, OutOfBits> {
    b.skip(3)?; // seq_profile
    b.skip(1)?; // still_picture
    let reduced = b.read_flag()?;
    if reduced {
        b.skip(5)?; // seq_level_idx[0]
    } else {
        let timing_info = b.read_flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_length = 0;
        if timing_info {
            b.skip(32)?; // num_units_in_display_tick
            b.skip(32)?; // time_scale
            if b.read_flag()? {
                // num_ticks_per_picture_minus_1, uvlc().
                let mut zeros = 0;
                while !b.read_flag()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return Ok(Err(Av1Error::SequenceHeader("uvlc too long")));
                    }
                }
                b.skip(zeros)?;
            }
            decoder_model_info = b.read_flag()?;
            if decoder_model_info {
                buffer_delay_length = b.read_bits(5)? + 1;
                b.skip(32)?; // num_units_in_decoding_tick
                b.skip(5)?; // buffer_removal_time_length_minus_1
                b.skip(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = b.read_flag()?;
        let points = b.read_bits(5)? + 1;
        for _ in 0..points {
            b.skip(12)?; // operating_point_idc
            let level = b.read_bits(5)?;
            if level > 7 {
                b.skip(1)?; // seq_tier
            }
            if decoder_model_info && b.read_flag()? {
                // operating_parameters_info: decoder and encoder buffer delays, low delay flag.
                b.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if initial_display_delay && b.read_flag()? {
                b.skip(4)?;
            }
        }
    }
    let width_bits = b.read_bits(4)? + 1;
    let height_bits = b.read_bits(4)? + 1;
    let width = b.read_bits(width_bits)? + 1;
    let height = b.read_bits(height_bits)? + 1;
    Ok(Ok((width, height)))
}

/// The video configuration of an `av1C` record: its codec string, and the picture size from its
/// sequence header.
pub fn video_config(record: Bytes) -> Result<VideoConfig, Av1Error> {
    let av1c = Av1CodecConfigurationRecord::parse(&record)?;
    let (width, height) = sequence_size(av1c.sequence_header()?)?;
    Ok(VideoConfig {
        codec: VideoCodec::Av1,
        codec_string: av1c.codec_string(),
        width,
        height,
        frame_rate: None,
        // AV1 samples are OBUs, not length-prefixed NAL units.
        nal_length_size: 0,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The `av1C` of two 640x360 frames from Debian's ffmpeg with libaom (`-f lavfi -i
    /// testsrc2=size=640x360 -frames:v 2 -c:v libaom-av1 -cpu-used 8 -b:v 200k`); ffprobe reads
    /// it as Main, level index 1.
    const AOM_640X360: [u8; 17] = [
        0x81, 0x01, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0x36, 0xbe,
        0x40, 0x10,
    ];

    #[test]
    fn an_aom_record_gives_its_profile_level_size_and_codec_string() {
        let av1c = Av1CodecConfigurationRecord::parse(&AOM_640X360).unwrap();
        assert_eq!(
            (av1c.profile, av1c.level_idx, av1c.high_tier),
            (0, 1, false)
        );
        assert_eq!((av1c.bit_depth, av1c.monochrome), (8, false));
        assert_eq!(av1c.chroma, (true, true, 0));
        assert_eq!(av1c.codec_string(), "av01.0.01M.08");
        let config = video_config(Bytes::from_static(&AOM_640X360)).unwrap();
        assert_eq!((config.width, config.height), (640, 360));
        assert_eq!(config.codec, VideoCodec::Av1);
    }

    #[test]
    fn codec_strings_follow_the_binding() {
        let mut av1c = Av1CodecConfigurationRecord::parse(&AOM_640X360).unwrap();
        // The binding's example: Main profile, level 3.0, Main tier, 8 bits.
        av1c.level_idx = 4;
        assert_eq!(av1c.codec_string(), "av01.0.04M.08");
        av1c.profile = 1;
        av1c.level_idx = 13;
        av1c.high_tier = true;
        av1c.bit_depth = 10;
        assert_eq!(av1c.codec_string(), "av01.1.13H.10");
    }

    #[test]
    fn cut_or_wrong_records_are_errors() {
        for len in 0..AOM_640X360.len() {
            assert!(
                video_config(Bytes::copy_from_slice(&AOM_640X360[..len])).is_err(),
                "accepted a record cut at {len}"
            );
        }
        let mut v2 = AOM_640X360;
        v2[0] = 0x82;
        assert_eq!(
            Av1CodecConfigurationRecord::parse(&v2),
            Err(Av1Error::Version(0x82))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = video_config(Bytes::from(data.clone()));
            let _ = sequence_size(&data);
        }
    }
}
