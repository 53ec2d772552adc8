//! AAC parsing: the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and ADTS headers
//! (ISO/IEC 13818-7 6.2), and the [`AudioConfig`] built from them.
//!
//! Everything here is sans-IO and total: any input gives an `Ok` or an [`AacError`], never a
//! panic.
//!
//! ```
//! use media::aac::{AdtsHeader, AudioSpecificConfig};
//!
//! // The first ADTS header ffmpeg writes for 48 kHz mono AAC-LC.
//! let adts = AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x40, 0x1b, 0x7f, 0xfc])?;
//! assert_eq!((adts.sample_rate, adts.channel_configuration), (48_000, 1));
//! assert_eq!(adts.frame_length, 219);
//!
//! let asc = AudioSpecificConfig::parse(&adts.audio_specific_config()?)?;
//! assert_eq!(asc.codec_string(), "mp4a.40.2");
//! assert_eq!(asc.output_sample_rate(), 48_000);
//! # Ok::<(), media::aac::AacError>(())
//! ```

use bytes::Bytes;

use crate::bits::{BitReader, BitWriter, OutOfBits};
use crate::codec::{AudioCodec, AudioConfig};

/// Why AAC data could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AacError {
    /// The data ended before a field could be read in full.
    #[error("AAC data is truncated: it ended while reading {0}")]
    Truncated(&'static str),
    /// Audio object type 0 ("null object") is not a codec.
    #[error("AAC audio object type 0 is invalid")]
    InvalidObjectType,
    /// The sampling frequency index is one of the reserved values 13 or 14.
    #[error("AAC sampling frequency index {0} is reserved")]
    ReservedSamplingFrequencyIndex(u8),
    /// An explicit sampling frequency of zero.
    #[error("AAC sampling frequency is zero")]
    ZeroSampleRate,
    /// The channel configuration is reserved, or is 0 (layout in a program config element)
    /// for an object type whose program config element this parser does not read.
    #[error("AAC channel configuration {0} is not supported")]
    UnsupportedChannelConfiguration(u8),
    /// An ADTS header does not start with the 12-bit syncword `0xFFF`.
    #[error("ADTS syncword not found")]
    AdtsSyncLost,
    /// An ADTS header's layer field is not 0.
    #[error("ADTS layer is {0}, expected 0")]
    AdtsLayer(u8),
    /// An ADTS frame length is shorter than its own header.
    #[error("ADTS frame length {frame_length} is shorter than its {header_len}-byte header")]
    AdtsFrameTooShort {
        /// The frame length field (header included).
        frame_length: usize,
        /// The header length (7, or 9 with a CRC).
        header_len: usize,
    },
    /// A value cannot be written into an AudioSpecificConfig.
    #[error("AAC {field} value {value} cannot be encoded")]
    Unencodable {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: u32,
    },
}

/// Sample rates by sampling frequency index (ISO/IEC 14496-3 table 1.18).
pub const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Audio object type of AAC LC.
pub const AOT_AAC_LC: u8 = 2;
/// Audio object type of SBR (HE-AAC).
pub const AOT_SBR: u8 = 5;
/// Audio object type of PS (HE-AAC v2).
pub const AOT_PS: u8 = 29;

/// Reads ASC fields, naming the field on truncation.
struct Reader<'a>(BitReader<'a>);

impl Reader<'_> {
    fn bits(&mut self, n: u32, field: &'static str) -> Result<u32, AacError> {
        self.0
            .read_bits(n)
            .map_err(|OutOfBits| AacError::Truncated(field))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, AacError> {
        Ok(self.bits(1, field)? == 1)
    }

    fn skip(&mut self, n: usize, field: &'static str) -> Result<(), AacError> {
        self.0
            .skip(n)
            .map_err(|OutOfBits| AacError::Truncated(field))
    }

    /// `GetAudioObjectType()`: 5 bits, with 31 escaping to 32 + 6 more bits.
    fn object_type(&mut self) -> Result<u8, AacError> {
        let aot = self.bits(5, "audioObjectType")? as u8;
        if aot == 31 {
            return Ok(32 + self.bits(6, "audioObjectTypeExt")? as u8);
        }
        Ok(aot)
    }

    /// Sampling frequency index and rate: 4 bits, with 15 escaping to an explicit 24-bit rate.
    fn sampling_frequency(&mut self) -> Result<(u8, u32), AacError> {
        let index = self.bits(4, "samplingFrequencyIndex")? as u8;
        let rate = match index {
            15 => self.bits(24, "samplingFrequency")?,
            i => *SAMPLE_RATES
                .get(usize::from(i))
                .ok_or(AacError::ReservedSamplingFrequencyIndex(i))?,
        };
        if rate == 0 {
            return Err(AacError::ZeroSampleRate);
        }
        Ok((index, rate))
    }
}

/// A parsed AudioSpecificConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AudioSpecificConfig {
    /// The first audio object type, as in RFC 6381 codec strings: 2 for AAC LC, and 5 or 29
    /// when HE-AAC is signalled explicitly (hierarchically).
    pub object_type: u8,
    /// The object type of the core codec: equal to `object_type` except with explicit SBR/PS
    /// signalling, where it is the underlying type (usually 2).
    pub core_object_type: u8,
    /// Sampling frequency index (15 means the rate was given explicitly).
    pub sampling_frequency_index: u8,
    /// Core sample rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (0 means the layout is in a program config element).
    pub channel_configuration: u8,
    /// Channel count of the core codec.
    pub channels: u8,
    /// SBR output sample rate, when SBR is signalled (explicitly or by a sync extension).
    pub sbr_sample_rate: Option<u32>,
    /// True when parametric stereo is signalled.
    pub ps: bool,
    /// Samples per frame of the core codec (1024, or 960 with `frameLengthFlag`), for the
    /// general audio object types; `None` for others.
    pub frame_length: Option<u16>,
}

/// Object types that use GASpecificConfig.
fn is_general_audio(aot: u8) -> bool {
    matches!(aot, 1 | 2 | 3 | 4 | 6 | 7 | 17 | 19 | 20 | 21 | 22 | 23)
}

/// Channels for a channel configuration other than 0.
fn channels_for_configuration(config: u8) -> Option<u8> {
    match config {
        1..=6 => Some(config),
        7 => Some(8),
        11 => Some(7),
        12 | 14 => Some(8),
        13 => Some(24),
        _ => None,
    }
}

impl AudioSpecificConfig {
    /// Parses an AudioSpecificConfig (as carried in FLV AAC sequence headers and MP4 `esds`).
    ///
    /// Fields after the ones this struct reports (ELD, error-protection details) are not read,
    /// and a malformed backward-compatible sync extension is ignored.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = Reader(BitReader::new(data));
        let object_type = r.object_type()?;
        if object_type == 0 {
            return Err(AacError::InvalidObjectType);
        }
        let (sampling_frequency_index, sample_rate) = r.sampling_frequency()?;
        let channel_configuration = r.bits(4, "channelConfiguration")? as u8;

        let mut core_object_type = object_type;
        let mut sbr_sample_rate = None;
        let mut ps = false;
        let mut explicit_sbr = false;
        if object_type == AOT_SBR || object_type == AOT_PS {
            explicit_sbr = true;
            ps = object_type == AOT_PS;
            sbr_sample_rate = Some(r.sampling_frequency()?.1);
            core_object_type = r.object_type()?;
            if core_object_type == 22 {
                r.bits(4, "extensionChannelConfiguration")?;
            }
        }

        let mut frame_length = None;
        let channels = if is_general_audio(core_object_type) {
            let short = r.flag("frameLengthFlag")?;
            frame_length = Some(if short { 960 } else { 1024 });
            if r.flag("dependsOnCoreCoder")? {
                r.skip(14, "coreCoderDelay")?;
            }
            let extension = r.flag("extensionFlag")?;
            let channels = match channel_configuration {
                0 => program_config_channels(&mut r)?,
                c => channels_for_configuration(c)
                    .ok_or(AacError::UnsupportedChannelConfiguration(c))?,
            };
            if channel_configuration != 0 {
                // The sync extension is byte-position independent only without a PCE (whose
                // byte alignment is ambiguous inside an ASC), so it is only looked for here.
                if core_object_type == 6 || core_object_type == 20 {
                    r.skip(3, "layerNr")?;
                }
                if extension {
                    if core_object_type == 22 {
                        r.skip(16, "numOfSubFrame, layer_length")?;
                    }
                    if matches!(core_object_type, 17 | 19 | 20 | 23) {
                        r.skip(3, "resilience flags")?;
                    }
                    r.skip(1, "extensionFlag3")?;
                }
                if matches!(core_object_type, 17 | 19 | 20 | 21 | 22 | 23) {
                    r.skip(2, "epConfig")?;
                }
                if !explicit_sbr {
                    if let Ok(Some((rate, has_ps))) = sync_extension(&mut r) {
                        sbr_sample_rate = Some(rate);
                        ps = has_ps;
                    }
                }
            }
            channels
        } else {
            channels_for_configuration(channel_configuration).ok_or(
                AacError::UnsupportedChannelConfiguration(channel_configuration),
            )?
        };

        Ok(AudioSpecificConfig {
            object_type,
            core_object_type,
            sampling_frequency_index,
            sample_rate,
            channel_configuration,
            channels,
            sbr_sample_rate,
            ps,
            frame_length,
        })
    }

    /// RFC 6381 codec string, `mp4a.40.<object type>`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Sample rate a decoder outputs: the SBR rate when SBR is signalled, else the core rate.
    pub fn output_sample_rate(&self) -> u32 {
        self.sbr_sample_rate.unwrap_or(self.sample_rate)
    }

    /// Channels a decoder outputs: parametric stereo turns one core channel into two.
    pub fn output_channels(&self) -> u8 {
        if self.ps && self.channels == 1 {
            2
        } else {
            self.channels
        }
    }
}

/// Reads a backward-compatible SBR/PS sync extension (ISO/IEC 14496-3 1.6.2.1): returns the
/// SBR rate and whether PS is present, or `None` when there is none or SBR is absent.
fn sync_extension(r: &mut Reader<'_>) -> Result<Option<(u32, bool)>, AacError> {
    if r.0.remaining() < 16 || r.bits(11, "syncExtensionType")? != 0x2b7 {
        return Ok(None);
    }
    if r.object_type()? != AOT_SBR || !r.flag("sbrPresentFlag")? {
        return Ok(None);
    }
    let (_, rate) = r.sampling_frequency()?;
    let mut ps = false;
    if r.0.remaining() >= 12 && r.bits(11, "syncExtensionType")? == 0x548 {
        ps = r.flag("psPresentFlag")?;
    }
    Ok(Some((rate, ps)))
}

/// Counts the channels of a program_config_element (ISO/IEC 14496-3 4.4.1.1).
fn program_config_channels(r: &mut Reader<'_>) -> Result<u8, AacError> {
    r.skip(4 + 2 + 4, "program_config_element header")?;
    let front = r.bits(4, "num_front_channel_elements")?;
    let side = r.bits(4, "num_side_channel_elements")?;
    let back = r.bits(4, "num_back_channel_elements")?;
    let lfe = r.bits(2, "num_lfe_channel_elements")?;
    r.skip(3 + 4, "num_assoc_data_elements, num_valid_cc_elements")?;
    if r.flag("mono_mixdown_present")? {
        r.skip(4, "mono_mixdown_element_number")?;
    }
    if r.flag("stereo_mixdown_present")? {
        r.skip(4, "stereo_mixdown_element_number")?;
    }
    if r.flag("matrix_mixdown_idx_present")? {
        r.skip(3, "matrix_mixdown_idx")?;
    }
    let mut channels = lfe;
    for _ in 0..front + side + back {
        channels += if r.flag("is_cpe")? { 2 } else { 1 };
        r.skip(4, "element_tag_select")?;
    }
    u8::try_from(channels).map_err(|_| AacError::UnsupportedChannelConfiguration(0))
}

/// Writes the two-to-five-byte AudioSpecificConfig of a plain (non-explicit-SBR) stream: object
/// type, sample rate (as an index when it has one, else explicitly) and channel configuration,
/// followed by an all-zero GASpecificConfig (1024-sample frames, no core coder, no extension).
pub fn encode_audio_specific_config(
    object_type: u8,
    sample_rate: u32,
    channel_configuration: u8,
) -> Result<Bytes, AacError> {
    if object_type == 0 || object_type > 95 {
        return Err(AacError::Unencodable {
            field: "audio object type",
            value: object_type.into(),
        });
    }
    if sample_rate == 0 || sample_rate >= 1 << 24 {
        return Err(AacError::Unencodable {
            field: "sample rate",
            value: sample_rate,
        });
    }
    if channel_configuration > 15 {
        return Err(AacError::Unencodable {
            field: "channel configuration",
            value: channel_configuration.into(),
        });
    }
    let mut w = BitWriter::new();
    if object_type >= 31 {
        w.write_bits(5, 31);
        w.write_bits(6, u32::from(object_type - 32));
    } else {
        w.write_bits(5, object_type.into());
    }
    match SAMPLE_RATES.iter().position(|&r| r == sample_rate) {
        Some(i) => w.write_bits(4, i as u32),
        None => {
            w.write_bits(4, 15);
            w.write_bits(24, sample_rate);
        }
    }
    w.write_bits(4, channel_configuration.into());
    w.write_bits(3, 0);
    Ok(Bytes::from(w.finish()))
}

/// Builds the [`AudioConfig`] for an AAC track from its AudioSpecificConfig bytes: the sample
/// rate and channel count are what a decoder outputs (see
/// [`AudioSpecificConfig::output_sample_rate`]), and `record` is `asc` itself.
pub fn audio_config(asc: Bytes) -> Result<AudioConfig, AacError> {
    let parsed = AudioSpecificConfig::parse(&asc)?;
    Ok(AudioConfig {
        codec: AudioCodec::Aac,
        sample_rate: parsed.output_sample_rate(),
        channels: parsed.output_channels(),
        codec_string: parsed.codec_string(),
        record: asc,
    })
}

/// A parsed ADTS frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdtsHeader {
    /// 4 for MPEG-4 AAC (`ID` = 0), 2 for MPEG-2 AAC (`ID` = 1).
    pub mpeg_version: u8,
    /// True when no CRC follows the fixed and variable headers.
    pub protection_absent: bool,
    /// Audio object type (`profile` + 1): 1 Main, 2 LC, 3 SSR, 4 LTP.
    pub object_type: u8,
    /// Sampling frequency index.
    pub sampling_frequency_index: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (0 means a program config element in the payload).
    pub channel_configuration: u8,
    /// Length of the whole frame in bytes, header included.
    pub frame_length: usize,
    /// `adts_buffer_fullness` (0x7FF for variable bit rate).
    pub buffer_fullness: u16,
    /// Number of raw data blocks in the frame (`number_of_raw_data_blocks_in_frame` + 1).
    pub raw_data_blocks: u8,
}

impl AdtsHeader {
    /// Bytes needed to parse a header (9 are needed to skip one with a CRC).
    pub const MIN_LEN: usize = 7;

    /// Parses the header at the start of `data`.
    ///
    /// [`AacError::Truncated`] means more bytes are needed; every other error means the bytes
    /// are not an ADTS header.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        // Check the syncword first, so that a short non-ADTS input is reported as such.
        match data {
            [] => return Err(AacError::Truncated("ADTS syncword")),
            [a] if *a != 0xff => return Err(AacError::AdtsSyncLost),
            [a, b, ..] if *a != 0xff || b & 0xf0 != 0xf0 => return Err(AacError::AdtsSyncLost),
            _ => {}
        }
        if data.len() < Self::MIN_LEN {
            return Err(AacError::Truncated("ADTS header"));
        }
        let mut r = Reader(BitReader::new(&data[..Self::MIN_LEN]));
        r.skip(12, "syncword")?;
        let id = r.bits(1, "ID")?;
        let layer = r.bits(2, "layer")? as u8;
        if layer != 0 {
            return Err(AacError::AdtsLayer(layer));
        }
        let protection_absent = r.flag("protection_absent")?;
        let object_type = r.bits(2, "profile")? as u8 + 1;
        let sampling_frequency_index = r.bits(4, "sampling_frequency_index")? as u8;
        let sample_rate = *SAMPLE_RATES
            .get(usize::from(sampling_frequency_index))
            .ok_or(AacError::ReservedSamplingFrequencyIndex(
                sampling_frequency_index,
            ))?;
        r.skip(1, "private_bit")?;
        let channel_configuration = r.bits(3, "channel_configuration")? as u8;
        r.skip(4, "original_copy, home, copyright bits")?;
        let frame_length = r.bits(13, "frame_length")? as usize;
        let buffer_fullness = r.bits(11, "adts_buffer_fullness")? as u16;
        let raw_data_blocks = r.bits(2, "number_of_raw_data_blocks_in_frame")? as u8 + 1;
        let header = AdtsHeader {
            mpeg_version: if id == 1 { 2 } else { 4 },
            protection_absent,
            object_type,
            sampling_frequency_index,
            sample_rate,
            channel_configuration,
            frame_length,
            buffer_fullness,
            raw_data_blocks,
        };
        if frame_length < header.header_len() {
            return Err(AacError::AdtsFrameTooShort {
                frame_length,
                header_len: header.header_len(),
            });
        }
        Ok(header)
    }

    /// Header length in bytes: 7, or 9 when a CRC follows.
    pub fn header_len(&self) -> usize {
        if self.protection_absent {
            7
        } else {
            9
        }
    }

    /// Length of the raw AAC payload after the header.
    pub fn payload_len(&self) -> usize {
        self.frame_length.saturating_sub(self.header_len())
    }

    /// The AudioSpecificConfig equivalent to this header.
    ///
    /// With channel configuration 0 the layout lives in a program config element inside the
    /// payload; the ASC written here then says 0 and holds no PCE, which decoders may refuse.
    pub fn audio_specific_config(&self) -> Result<Bytes, AacError> {
        encode_audio_specific_config(
            self.object_type,
            self.sample_rate,
            self.channel_configuration,
        )
    }
}

/// Iterates over the ADTS frames in `data` (e.g. one PES payload), yielding each header with its
/// raw payload. Stops after the first error; a frame cut short at the end yields
/// [`AacError::Truncated`].
pub fn adts_frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames {
        data,
        failed: false,
    }
}

/// Iterator returned by [`adts_frames`].
#[derive(Debug, Clone)]
pub struct AdtsFrames<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = Result<(AdtsHeader, &'a [u8]), AacError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let header = match AdtsHeader::parse(self.data) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let Some(frame) = self.data.get(..header.frame_length) else {
            self.failed = true;
            return Some(Err(AacError::Truncated("ADTS frame")));
        };
        self.data = &self.data[header.frame_length..];
        let payload = frame.get(header.header_len()..).unwrap_or_default();
        Some(Ok((header, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_lc_with_sync_extension() {
        // ffmpeg's FLV sequence header for 44.1 kHz stereo LC: it appends a sync extension
        // saying "SBR not present".
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(asc.object_type, 2);
        assert_eq!((asc.sample_rate, asc.channels), (44_100, 2));
        assert_eq!(asc.sbr_sample_rate, None);
        assert_eq!(asc.frame_length, Some(1024));
        assert_eq!(asc.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn he_aac_explicit() {
        // HE-AAC v1: 22.05 kHz core, 44.1 kHz SBR, stereo.
        let asc = AudioSpecificConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
        assert_eq!((asc.object_type, asc.core_object_type), (5, 2));
        assert_eq!(asc.sample_rate, 22_050);
        assert_eq!(asc.output_sample_rate(), 44_100);
        assert_eq!(asc.output_channels(), 2);
        assert_eq!(asc.codec_string(), "mp4a.40.5");
        // HE-AAC v2: mono core + PS.
        let asc = AudioSpecificConfig::parse(&[0xeb, 0x8a, 0x08, 0x00]).unwrap();
        assert_eq!(asc.codec_string(), "mp4a.40.29");
        assert!(asc.ps);
        assert_eq!((asc.channels, asc.output_channels()), (1, 2));
        assert_eq!(asc.output_sample_rate(), 44_100);
    }

    #[test]
    fn implicit_sbr_and_ps_sync_extension() {
        // LC 24 kHz mono, then sync extension 0x2b7, SBR present at 48 kHz, then 0x548 PS.
        let mut w = BitWriter::new();
        w.write_bits(5, 2);
        w.write_bits(4, 6);
        w.write_bits(4, 1);
        w.write_bits(3, 0);
        w.write_bits(11, 0x2b7);
        w.write_bits(5, 5);
        w.write_bits(1, 1);
        w.write_bits(4, 3);
        w.write_bits(11, 0x548);
        w.write_bits(1, 1);
        let asc = AudioSpecificConfig::parse(&w.finish()).unwrap();
        assert_eq!(asc.codec_string(), "mp4a.40.2");
        assert_eq!(asc.output_sample_rate(), 48_000);
        assert_eq!(asc.output_channels(), 2);
    }

    #[test]
    fn escapes() {
        // AAC-ELD: object type 39 needs the escape; 48 kHz mono.
        let asc = AudioSpecificConfig::parse(&[0xf8, 0xe6, 0x20]).unwrap();
        assert_eq!(asc.object_type, 39);
        assert_eq!((asc.sample_rate, asc.channels), (48_000, 1));
        assert_eq!(asc.codec_string(), "mp4a.40.39");
        assert_eq!(asc.frame_length, None);
        // Explicit 24-bit sample rate.
        let bytes = encode_audio_specific_config(2, 50_000, 2).unwrap();
        let asc = AudioSpecificConfig::parse(&bytes).unwrap();
        assert_eq!(
            (asc.sampling_frequency_index, asc.sample_rate),
            (15, 50_000)
        );
        assert_eq!(asc.channels, 2);
        let bytes = encode_audio_specific_config(39, 48_000, 1).unwrap();
        assert_eq!(&bytes[..3], &[0xf8, 0xe6, 0x20]);
    }

    #[test]
    fn program_config_element() {
        // LC 48 kHz, channel configuration 0, PCE: 2 front (SCE + CPE), 1 back CPE, 1 LFE.
        let mut w = BitWriter::new();
        w.write_bits(5, 2);
        w.write_bits(4, 3);
        w.write_bits(4, 0);
        w.write_bits(3, 0);
        w.write_bits(4, 0); // element_instance_tag
        w.write_bits(2, 1);
        w.write_bits(4, 3);
        w.write_bits(4, 2); // front
        w.write_bits(4, 0); // side
        w.write_bits(4, 1); // back
        w.write_bits(2, 1); // lfe
        w.write_bits(3, 0);
        w.write_bits(4, 0);
        w.write_bits(3, 0); // no mixdowns
        for cpe in [false, true, true] {
            w.write_bit(cpe);
            w.write_bits(4, 0);
        }
        w.write_bits(4, 0); // lfe tag
        w.write_bits(8, 0); // alignment and empty comment
        let bytes = w.finish();
        let asc = AudioSpecificConfig::parse(&bytes).unwrap();
        assert_eq!(asc.channel_configuration, 0);
        assert_eq!(asc.channels, 6);
        for n in 0..bytes.len() {
            let _ = AudioSpecificConfig::parse(&bytes[..n]);
        }
    }

    #[test]
    fn asc_errors() {
        assert_eq!(
            AudioSpecificConfig::parse(&[]),
            Err(AacError::Truncated("audioObjectType"))
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x00, 0x10]),
            Err(AacError::InvalidObjectType)
        );
        // Index 13 is reserved.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::ReservedSamplingFrequencyIndex(13))
        );
        // Channel configuration 9 is reserved.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12, 0x48]),
            Err(AacError::UnsupportedChannelConfiguration(9))
        );
        // Explicit rate of zero.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x17, 0x80, 0x00, 0x00, 0x10]),
            Err(AacError::ZeroSampleRate)
        );
        assert!(encode_audio_specific_config(0, 48_000, 2).is_err());
        assert!(encode_audio_specific_config(2, 0, 2).is_err());
        assert!(encode_audio_specific_config(2, 48_000, 16).is_err());
    }

    #[test]
    fn adts() {
        let data = [0xff, 0xf1, 0x4c, 0x40, 0x1b, 0x7f, 0xfc];
        let h = AdtsHeader::parse(&data).unwrap();
        assert_eq!(h.mpeg_version, 4);
        assert_eq!(h.object_type, 2);
        assert_eq!(h.sample_rate, 48_000);
        assert_eq!(h.channel_configuration, 1);
        assert_eq!(h.frame_length, 219);
        assert_eq!(h.payload_len(), 212);
        assert_eq!(h.buffer_fullness, 0x7ff);
        assert_eq!(h.raw_data_blocks, 1);
        let asc = h.audio_specific_config().unwrap();
        assert_eq!(&asc[..], &[0x11, 0x88]);
        let cfg = audio_config(asc).unwrap();
        assert_eq!((cfg.sample_rate, cfg.channels), (48_000, 1));
        assert_eq!(cfg.codec_string, "mp4a.40.2");

        for n in 0..data.len() {
            assert!(matches!(
                AdtsHeader::parse(&data[..n]),
                Err(AacError::Truncated(_))
            ));
        }
        assert_eq!(AdtsHeader::parse(&[0xfe]), Err(AacError::AdtsSyncLost));
        assert_eq!(
            AdtsHeader::parse(&[0xff, 0xf3, 0x4c, 0x40, 0x1b, 0x7f, 0xfc]),
            Err(AacError::AdtsLayer(1))
        );
        assert_eq!(
            AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x40, 0x00, 0x1f, 0xfc]),
            Err(AacError::AdtsFrameTooShort {
                frame_length: 0,
                header_len: 7
            })
        );
    }

    #[test]
    fn adts_frame_iteration() {
        // Two frames of 9 bytes (7 header + 2 payload), then a cut frame.
        let header = [0xff, 0xf1, 0x50, 0x80, 0x01, 0x3f, 0xfc];
        let h = AdtsHeader::parse(&header).unwrap();
        assert_eq!(
            (h.frame_length, h.sample_rate, h.channel_configuration),
            (9, 44_100, 2)
        );
        let mut data = Vec::new();
        for p in [[1, 2], [3, 4]] {
            data.extend_from_slice(&header);
            data.extend_from_slice(&p);
        }
        let frames: Vec<_> = adts_frames(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].1, &[3, 4]);
        data.extend_from_slice(&header);
        let last = adts_frames(&data).last().unwrap();
        assert_eq!(last, Err(AacError::Truncated("ADTS frame")));
    }
}
