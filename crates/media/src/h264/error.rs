//! The one error type of H.264 parsing.

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
