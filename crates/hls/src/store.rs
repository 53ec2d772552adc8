//! Where segment bytes go (convention 4 in ARCHITECTURE.md: outputs are injected). The packager
//! writes through [`SegmentStore`]; the server reads through it (or through
//! [`crate::Packager::fetch`]).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// Storage for a stream's init segments, segments and parts, keyed by rung name and media
/// sequence number.
///
/// Synchronous on purpose: the in-memory store is a few map operations, and the server holds the
/// packager (and so its store) under a mutex and hands out cheap [`Bytes`] clones. A store backed
/// by disk or object storage would queue writes behind this interface.
pub trait SegmentStore: Send {
    /// Stores version `version` of a rung's init segment (a store may forget old versions
    /// beyond the last few).
    fn put_init(&mut self, rung: &str, version: u32, data: Bytes);
    /// Stores part `part` of segment `msn`. Parts arrive in order while the segment is open.
    fn put_part(&mut self, rung: &str, msn: u64, part: u32, data: Bytes);
    /// Stores the complete segment `msn`, once all of its parts have been put. `data` is the
    /// concatenation of the parts, in order.
    fn put_segment(&mut self, rung: &str, msn: u64, data: Bytes);
    /// Drops segment `msn` and all its parts. Called once the segment is past the playlist window
    /// and its grace period; later reads of it should miss.
    fn evict(&mut self, rung: &str, msn: u64);
    /// Drops everything stored for `rung` (when the stream goes away).
    fn clear(&mut self, rung: &str);

    /// Version `version` of the rung's init segment.
    fn init(&self, rung: &str, version: u32) -> Option<Bytes>;
    /// A complete segment.
    fn segment(&self, rung: &str, msn: u64) -> Option<Bytes>;
    /// A part of a (complete or open) segment.
    fn part(&self, rung: &str, msn: u64, part: u32) -> Option<Bytes>;
}

impl<S: SegmentStore + ?Sized> SegmentStore for Box<S> {
    fn put_init(&mut self, rung: &str, version: u32, data: Bytes) {
        (**self).put_init(rung, version, data);
    }
    fn put_part(&mut self, rung: &str, msn: u64, part: u32, data: Bytes) {
        (**self).put_part(rung, msn, part, data);
    }
    fn put_segment(&mut self, rung: &str, msn: u64, data: Bytes) {
        (**self).put_segment(rung, msn, data);
    }
    fn evict(&mut self, rung: &str, msn: u64) {
        (**self).evict(rung, msn);
    }
    fn clear(&mut self, rung: &str) {
        (**self).clear(rung);
    }
    fn init(&self, rung: &str, version: u32) -> Option<Bytes> {
        (**self).init(rung, version)
    }
    fn segment(&self, rung: &str, msn: u64) -> Option<Bytes> {
        (**self).segment(rung, msn)
    }
    fn part(&self, rung: &str, msn: u64, part: u32) -> Option<Bytes> {
        (**self).part(rung, msn, part)
    }
}

/// Init versions a [`MemoryStore`] keeps per rung: more than a playlist window can refer to,
/// unless the codec configuration changes in nearly every segment.
pub const INIT_VERSIONS_KEPT: usize = 8;

/// The in-memory [`SegmentStore`].
///
/// Each byte is held once: when a segment completes, its parts are re-pointed at slices of the
/// segment's buffer (when their lengths add up), so the separately allocated part buffers are
/// freed and [`MemoryStore::bytes_held`] counts the segment only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rungs: HashMap<String, RungEntries>,
}

#[derive(Debug, Default)]
struct RungEntries {
    /// The newest init versions, oldest first, at most [`INIT_VERSIONS_KEPT`].
    inits: Vec<(u32, Bytes)>,
    segments: BTreeMap<u64, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    full: Option<Bytes>,
    parts: Vec<Bytes>,
    /// True while `parts` are separate allocations rather than slices of `full`.
    parts_separate: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of media held for `rung` (init, complete segments, parts of the open segment),
    /// counting each allocation once. This is what the memory bound is about.
    pub fn bytes_held(&self, rung: &str) -> usize {
        let Some(r) = self.rungs.get(rung) else {
            return 0;
        };
        let init: usize = r.inits.iter().map(|(_, b)| b.len()).sum();
        init + r
            .segments
            .values()
            .map(|e| {
                let full = e.full.as_ref().map_or(0, Bytes::len);
                let parts = if e.parts_separate {
                    e.parts.iter().map(Bytes::len).sum()
                } else {
                    0
                };
                full + parts
            })
            .sum::<usize>()
    }

    /// Media sequence numbers with anything stored for `rung`, oldest first.
    pub fn stored_msns(&self, rung: &str) -> Vec<u64> {
        self.rungs
            .get(rung)
            .map(|r| r.segments.keys().copied().collect())
            .unwrap_or_default()
    }

    fn entry(&mut self, rung: &str, msn: u64) -> &mut Entry {
        self.rungs
            .entry(rung.to_owned())
            .or_default()
            .segments
            .entry(msn)
            .or_default()
    }
}

impl SegmentStore for MemoryStore {
    fn put_init(&mut self, rung: &str, version: u32, data: Bytes) {
        let inits = &mut self.rungs.entry(rung.to_owned()).or_default().inits;
        inits.retain(|(v, _)| *v != version);
        inits.push((version, data));
        if inits.len() > INIT_VERSIONS_KEPT {
            inits.remove(0);
        }
    }

    fn put_part(&mut self, rung: &str, msn: u64, part: u32, data: Bytes) {
        let e = self.entry(rung, msn);
        let i = part as usize;
        if e.parts.len() <= i {
            e.parts.resize(i + 1, Bytes::new());
        }
        e.parts[i] = data;
        e.parts_separate = true;
    }

    fn put_segment(&mut self, rung: &str, msn: u64, data: Bytes) {
        let e = self.entry(rung, msn);
        if e.parts.iter().map(Bytes::len).sum::<usize>() == data.len() {
            let mut at = 0;
            for p in &mut e.parts {
                let len = p.len();
                *p = data.slice(at..at + len);
                at += len;
            }
            e.parts_separate = false;
        }
        e.full = Some(data);
    }

    fn evict(&mut self, rung: &str, msn: u64) {
        if let Some(r) = self.rungs.get_mut(rung) {
            r.segments.remove(&msn);
        }
    }

    fn clear(&mut self, rung: &str) {
        self.rungs.remove(rung);
    }

    fn init(&self, rung: &str, version: u32) -> Option<Bytes> {
        self.rungs
            .get(rung)?
            .inits
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    fn segment(&self, rung: &str, msn: u64) -> Option<Bytes> {
        self.rungs.get(rung)?.segments.get(&msn)?.full.clone()
    }

    fn part(&self, rung: &str, msn: u64, part: u32) -> Option<Bytes> {
        let e = self.rungs.get(rung)?.segments.get(&msn)?;
        e.parts
            .get(part as usize)
            .filter(|b| !b.is_empty())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_completion_reslices_parts() {
        let mut s = MemoryStore::new();
        s.put_init("a", 0, Bytes::from_static(b"init"));
        s.put_part("a", 3, 0, Bytes::from_static(b"abc"));
        s.put_part("a", 3, 1, Bytes::from_static(b"de"));
        assert_eq!(s.bytes_held("a"), 4 + 5);
        s.put_segment("a", 3, Bytes::from_static(b"abcde"));
        assert_eq!(s.bytes_held("a"), 4 + 5);
        assert_eq!(s.part("a", 3, 1).unwrap(), "de");
        assert_eq!(s.segment("a", 3).unwrap(), "abcde");
        assert_eq!(s.part("a", 3, 2), None);
        s.evict("a", 3);
        assert_eq!(s.segment("a", 3), None);
        assert_eq!(s.part("a", 3, 0), None);
        assert_eq!(s.bytes_held("a"), 4);
        assert_eq!(s.init("b", 0), None);
    }

    #[test]
    fn init_versions_are_kept_apart_and_the_oldest_forgotten() {
        let mut s = MemoryStore::new();
        for v in 0..=INIT_VERSIONS_KEPT as u32 {
            s.put_init("a", v, Bytes::from(vec![v as u8; 2]));
        }
        assert_eq!(s.init("a", 0), None, "beyond the last {INIT_VERSIONS_KEPT}");
        assert_eq!(s.init("a", 1).unwrap(), vec![1u8, 1]);
        let newest = INIT_VERSIONS_KEPT as u32;
        assert_eq!(s.init("a", newest).unwrap(), vec![newest as u8; 2]);
        assert_eq!(s.bytes_held("a"), 2 * INIT_VERSIONS_KEPT);
    }
}
