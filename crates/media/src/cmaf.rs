//! CMAF output chunks: what the pipeline hands to the packager (seam 3 in ARCHITECTURE.md).
//!
//! The pipeline classifies `cmafmux` output by buffer flags; the packager only sees these types,
//! so it never links GStreamer and its tests can feed it synthetic chunks.

use bytes::Bytes;

use crate::time::MediaTime;

/// What a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// The initialization segment (`ftyp` + `moov`). `DISCONT|HEADER` from cmafmux.
    Init,
    /// The first chunk of a new media segment (`HEADER` without `DELTA_UNIT`). It starts with a
    /// keyframe.
    SegmentStart,
    /// A further chunk of the current segment (`HEADER|DELTA_UNIT`, produced when cmafmux has a
    /// `chunk-duration`). One chunk is one LL-HLS part.
    Continuation,
}

/// One complete `cmafmux` output (all buffers up to and including the one flagged `MARKER`).
#[derive(Debug, Clone, PartialEq)]
pub struct CmafChunk {
    /// Init, segment start or continuation.
    pub kind: ChunkKind,
    /// The bytes: `ftyp+moov` for init; `[styp+]moof+mdat` otherwise.
    pub data: Bytes,
    /// Earliest presentation time in the chunk, on the stream's media timeline (zero for init).
    pub pts: MediaTime,
    /// Duration of the media in the chunk (zero for init).
    pub duration: MediaTime,
    /// True when the chunk starts with a video keyframe (always true for `SegmentStart`).
    pub independent: bool,
}
