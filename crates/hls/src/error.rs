use thiserror::Error;

/// Everything the packager can refuse. Each error concerns one call; the packager stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The rung name is not one the packager was built with. Use a name from the `Variant`s
    /// given to [`crate::Packager::new`].
    #[error("unknown rung {0:?}: it is not one of this stream's variants")]
    UnknownRung(String),
    /// A variant name cannot appear in a URL path segment. Names are 1 to 64 characters of
    /// ASCII letters, digits, `_` and `-`.
    #[error("invalid rung name {0:?}: use 1 to 64 ASCII letters, digits, '_' or '-'")]
    InvalidRungName(String),
    /// Two variants share a name; each needs its own URL.
    #[error("duplicate rung name {0:?}: every variant needs a distinct name")]
    DuplicateRung(String),
    /// The packager was built without variants; a master playlist needs at least one.
    #[error("no variants: a stream needs at least one rung")]
    NoVariants,
    /// A media chunk arrived before the rung's init segment. The pipeline must emit the
    /// `ftyp+moov` chunk first.
    #[error("rung {0:?}: media chunk before the init segment")]
    MissingInit(String),
    /// A continuation chunk arrived before any segment start, so there is no segment to append
    /// it to. The pipeline must start each segment with a keyframe chunk.
    #[error("rung {0:?}: continuation chunk before any segment start")]
    NoOpenSegment(String),
    /// A chunk arrived after [`crate::Packager::end`]. A new publish needs a new packager.
    #[error("stream has ended; start a new packager for a new publish")]
    Ended,
}
