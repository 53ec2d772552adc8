//! How NAL units are delimited in a byte stream: Annex B start codes (MPEG-TS) and length
//! prefixes (`avcC`, FLV and MP4 samples).

use bytes::{BufMut, Bytes, BytesMut};

use crate::h264::error::H264Error;

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
