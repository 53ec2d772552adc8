//! Bit-level reading and writing shared by the H.264 and AAC parsers.
//!
//! The reader never panics: every read checks the remaining length and reports
//! [`OutOfBits`] instead, and callers turn that into their own "truncated" error.

/// The reader ran past the end of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfBits;

/// Reads big-endian bit fields, most significant bit first.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits not yet read.
    pub(crate) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool, OutOfBits> {
        let byte = self.data.get(self.pos / 8).ok_or(OutOfBits)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    pub(crate) fn read_flag(&mut self) -> Result<bool, OutOfBits> {
        self.read_bit()
    }

    /// Reads `n` bits (at most 32) as an unsigned integer.
    pub(crate) fn read_bits(&mut self, n: u32) -> Result<u32, OutOfBits> {
        debug_assert!(n <= 32);
        if n as usize > self.remaining() {
            return Err(OutOfBits);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        Ok(v as u32)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), OutOfBits> {
        if n > self.remaining() {
            return Err(OutOfBits);
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned exp-Golomb code, `ue(v)`. Returns `Ok(None)` when the code has 32 or more
    /// leading zero bits, which cannot encode a value that fits in 32 bits.
    pub(crate) fn read_ue(&mut self) -> Result<Option<u32>, OutOfBits> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 31 {
                return Ok(None);
            }
        }
        let suffix = u64::from(self.read_bits(zeros)?);
        let v = (1u64 << zeros) - 1 + suffix;
        Ok(u32::try_from(v).ok())
    }

    /// Signed exp-Golomb code, `se(v)`.
    pub(crate) fn read_se(&mut self) -> Result<Option<i64>, OutOfBits> {
        Ok(self.read_ue()?.map(|k| {
            let k = i64::from(k);
            if k % 2 == 1 {
                (k + 1) / 2
            } else {
                -(k / 2)
            }
        }))
    }
}

/// Writes big-endian bit fields, most significant bit first.
#[derive(Debug, Default, Clone)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte of `out` (0 means a fresh byte is needed).
    used: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.out.push(0);
        }
        if bit {
            if let Some(last) = self.out.last_mut() {
                *last |= 1 << (7 - self.used);
            }
        }
        self.used = (self.used + 1) % 8;
    }

    /// Writes the low `n` bits of `v` (at most 32).
    pub(crate) fn write_bits(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.write_bit((v >> i) & 1 == 1);
        }
    }

    #[cfg(test)]
    pub(crate) fn write_ue(&mut self, v: u32) {
        let v = u64::from(v) + 1;
        let len = 64 - v.leading_zeros();
        for _ in 1..len {
            self.write_bit(false);
        }
        for i in (0..len).rev() {
            self.write_bit((v >> i) & 1 == 1);
        }
    }

    #[cfg(test)]
    pub(crate) fn write_se(&mut self, v: i32) {
        let k = if v > 0 {
            (v as u32) * 2 - 1
        } else {
            v.unsigned_abs() * 2
        };
        self.write_ue(k);
    }

    /// Pads with zero bits to a byte boundary and returns the bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_round_trip() {
        let values = [0u32, 1, 2, 3, 7, 8, 255, 65_535, u32::MAX - 1];
        let mut w = BitWriter::new();
        for v in values {
            w.write_ue(v);
        }
        for v in [0i32, 1, -1, 2, -2, 127, -128] {
            w.write_se(v);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for v in values {
            assert_eq!(r.read_ue().unwrap(), Some(v));
        }
        for v in [0i64, 1, -1, 2, -2, 127, -128] {
            assert_eq!(r.read_se().unwrap(), Some(v));
        }
    }

    #[test]
    fn overlong_exp_golomb_and_truncation() {
        // 32 leading zeros then a one: value does not fit in u32.
        let mut r = BitReader::new(&[0, 0, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(r.read_ue(), Ok(None));
        let mut r = BitReader::new(&[0]);
        assert_eq!(r.read_ue(), Err(OutOfBits));
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(9), Err(OutOfBits));
        assert_eq!(r.read_bits(8), Ok(0xff));
        assert_eq!(r.skip(1), Err(OutOfBits));
    }
}
