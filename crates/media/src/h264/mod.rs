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

mod avcc;
mod error;
mod framing;
mod nal;
mod sps;

pub use avcc::{video_config, AvcDecoderConfigurationRecord, AvcHighProfileExt};
pub use error::H264Error;
pub use framing::{
    annex_b_nal_units, annex_b_to_length_prefixed, length_prefixed_nal_units,
    nal_units_to_length_prefixed, AnnexBNalUnits, LengthPrefixedNalUnits,
};
pub use nal::{
    nal_unit_type, remove_emulation_prevention, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SLICE,
    NAL_SPS,
};
pub use sps::{codec_string, Sps};

#[cfg(test)]
mod tests;
