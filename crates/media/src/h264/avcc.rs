//! The AVCDecoderConfigurationRecord (`avcC`): parsing, building from parameter sets,
//! serialising, and the [`VideoConfig`] an H.264 track gets from it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{VideoCodec, VideoConfig};
use crate::h264::error::H264Error;
use crate::h264::nal::{nal_unit_type, NAL_PPS, NAL_SPS};
use crate::h264::sps::Sps;

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
