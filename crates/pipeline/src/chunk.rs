//! Turning the muxer's buffers into [`CmafChunk`]s (seam 3 in ARCHITECTURE.md).
//!
//! The fMP4 muxer marks its output with buffer flags: `DISCONT|HEADER` is the init segment (one
//! buffer, not followed by `MARKER`), `HEADER` starts a segment (`moof`), `HEADER|DELTA_UNIT`
//! starts a further chunk of it, and `MARKER` ends an output. Everything else is payload.

use bytes::{Bytes, BytesMut};
use gst::BufferFlags;
use media::cmaf::{ChunkKind, CmafChunk};
use media::MediaTime;

/// What the first buffer of a muxer output says it starts; `None` for a payload buffer.
pub(crate) fn classify(flags: BufferFlags) -> Option<ChunkKind> {
    if !flags.contains(BufferFlags::HEADER) {
        None
    } else if flags.contains(BufferFlags::DISCONT) {
        Some(ChunkKind::Init)
    } else if flags.contains(BufferFlags::DELTA_UNIT) {
        Some(ChunkKind::Continuation)
    } else {
        Some(ChunkKind::SegmentStart)
    }
}

/// One muxer buffer reduced to what the assembler needs, so it can be tested without GStreamer.
#[derive(Debug, Clone)]
pub(crate) struct OutBuffer<'a> {
    pub(crate) flags: BufferFlags,
    pub(crate) data: &'a [u8],
    /// Running time of the buffer's PTS, in ns.
    pub(crate) pts: Option<u64>,
    pub(crate) duration: Option<u64>,
}

/// Collects buffers from `HEADER` to `MARKER` into one chunk.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    current: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    kind: ChunkKind,
    data: BytesMut,
    pts: u64,
    duration: u64,
}

impl Assembler {
    /// Feeds one buffer; returns the chunks it completes (an init segment completes at once).
    pub(crate) fn push(&mut self, buf: &OutBuffer<'_>, out: &mut Vec<CmafChunk>) {
        if let Some(kind) = classify(buf.flags) {
            if let Some(p) = self.current.take() {
                // A new output started before the previous one's MARKER: emit what we have
                // rather than glue two outputs together.
                tracing::warn!("muxer output ended without MARKER; emitting it as is");
                out.push(p.finish());
            }
            let p = Pending {
                kind,
                data: BytesMut::from(buf.data),
                pts: if kind == ChunkKind::Init {
                    0
                } else {
                    buf.pts.unwrap_or(0)
                },
                duration: if kind == ChunkKind::Init {
                    0
                } else {
                    buf.duration.unwrap_or(0)
                },
            };
            if kind == ChunkKind::Init || buf.flags.contains(BufferFlags::MARKER) {
                out.push(p.finish());
            } else {
                self.current = Some(p);
            }
            return;
        }
        match self.current.as_mut() {
            Some(p) => {
                p.data.extend_from_slice(buf.data);
                if buf.flags.contains(BufferFlags::MARKER) {
                    if let Some(p) = self.current.take() {
                        out.push(p.finish());
                    }
                }
            }
            None => tracing::warn!("muxer payload buffer outside any output; dropped"),
        }
    }

    /// Emits a chunk left open at end of stream.
    pub(crate) fn flush(&mut self, out: &mut Vec<CmafChunk>) {
        if let Some(p) = self.current.take() {
            out.push(p.finish());
        }
    }
}

impl Pending {
    fn finish(self) -> CmafChunk {
        let to_time = |v: u64| MediaTime::from_nanos(i64::try_from(v).unwrap_or(i64::MAX));
        CmafChunk {
            kind: self.kind,
            data: Bytes::from(self.data),
            pts: to_time(self.pts),
            duration: to_time(self.duration),
            // Cuts only happen at keyframes; within a segment the muxer does not tell us
            // whether a chunk starts with one, so only segment starts are claimed.
            independent: self.kind == ChunkKind::SegmentStart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_to_kinds() {
        let f = BufferFlags::DISCONT | BufferFlags::HEADER;
        assert_eq!(classify(f), Some(ChunkKind::Init));
        assert_eq!(classify(BufferFlags::HEADER), Some(ChunkKind::SegmentStart));
        assert_eq!(
            classify(BufferFlags::HEADER | BufferFlags::DELTA_UNIT),
            Some(ChunkKind::Continuation)
        );
        assert_eq!(classify(BufferFlags::DELTA_UNIT), None);
        assert_eq!(
            classify(BufferFlags::DELTA_UNIT | BufferFlags::MARKER),
            None
        );
        assert_eq!(classify(BufferFlags::empty()), None);
    }

    #[test]
    fn assembles_outputs() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        let b = |flags, data: &'static [u8], pts| OutBuffer {
            flags,
            data,
            pts,
            duration: Some(5),
        };
        a.push(
            &b(BufferFlags::DISCONT | BufferFlags::HEADER, b"init", None),
            &mut out,
        );
        a.push(&b(BufferFlags::HEADER, b"moof", Some(10)), &mut out);
        a.push(&b(BufferFlags::DELTA_UNIT, b"a", Some(10)), &mut out);
        a.push(
            &b(
                BufferFlags::DELTA_UNIT | BufferFlags::MARKER,
                b"b",
                Some(11),
            ),
            &mut out,
        );
        a.push(
            &b(
                BufferFlags::HEADER | BufferFlags::DELTA_UNIT,
                b"m2",
                Some(15),
            ),
            &mut out,
        );
        a.push(&b(BufferFlags::DELTA_UNIT, b"c", Some(15)), &mut out);
        assert_eq!(out.len(), 2);
        a.flush(&mut out);
        let kinds: Vec<_> = out.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChunkKind::Init,
                ChunkKind::SegmentStart,
                ChunkKind::Continuation
            ]
        );
        assert_eq!(&out[1].data[..], b"moofab");
        assert_eq!(out[1].pts, MediaTime::from_nanos(10));
        assert!(out[1].independent && !out[2].independent);
        assert_eq!(&out[2].data[..], b"m2c");
    }
}
