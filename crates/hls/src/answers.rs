//! What a request can be answered now: a rung's newest part, a blocking playlist request
//! decided (wait, ready, too far ahead), and whether an init segment, segment or part is
//! stored, pending or gone, and its bytes.

use bytes::Bytes;

use crate::error::Error;
use crate::packager::{Blocking, Cursor, Packager, ResourceStatus};
use crate::resource::Resource;
use crate::store::SegmentStore;

impl<S: SegmentStore> Packager<S> {
    /// A rung's newest part; `None` before its first segment starts.
    pub fn cursor(&self, rung: &str) -> Result<Option<Cursor>, Error> {
        Ok(self.cursor_of(self.index(rung)?))
    }

    /// Decides a blocking playlist request `_HLS_msn=msn[&_HLS_part=part]` (RFC 8216bis 6.2.5.2).
    /// Without `part`, it waits for segment `msn` to be complete; with it, for part `part` of
    /// segment `msn` or any later part (of a segment that closed before that part, or of a gap,
    /// the next segment's first).
    ///
    /// One exception: while the stream is paused (its publisher left, [`Packager::pause`]), a
    /// request for a part of a segment the pause closed is answered at once, with that segment
    /// complete. Nothing more comes of it, and a player must learn where it ended before the
    /// playlist goes on, perhaps made by another server (cluster hand-over): hls.js places the
    /// next publish's segments right after the last one it knows complete, and with only the
    /// open segment known it aligned them by program-date-time, across the hole where nobody
    /// published, and stalled there for good.
    pub fn playlist_request(
        &self,
        rung: &str,
        msn: u64,
        part: Option<u32>,
    ) -> Result<Blocking, Error> {
        let r = self.index(rung)?;
        let cursor = self.cursor_of(r);
        let head = cursor.map_or(self.rungs[r].next_msn, |c| c.msn);
        if msn > head.saturating_add(2) {
            return Ok(Blocking::TooFarAhead);
        }
        if self.ended_at.is_some() {
            return Ok(Blocking::Ready);
        }
        let ready = match (cursor, part) {
            (None, _) => false,
            (Some(c), None) => c.last_complete.is_some_and(|m| m >= msn),
            (Some(c), Some(p)) => {
                (c.msn, c.part) >= (msn, p)
                    || (self.paused && c.last_complete.is_some_and(|m| m >= msn))
            }
        };
        Ok(if ready {
            Blocking::Ready
        } else {
            Blocking::Wait
        })
    }

    /// Whether `resource` can be served now, later, or never.
    pub fn resource_status(&self, resource: &Resource) -> Result<ResourceStatus, Error> {
        let Some(name) = resource.rung() else {
            return Ok(ResourceStatus::Available);
        };
        let r = self.index(name)?;
        let rung = &self.rungs[r];
        let ended = self.ended_at.is_some();
        let head = self.cursor_of(r).map_or(rung.next_msn, |c| c.msn);
        let future = |msn: u64| {
            if ended {
                ResourceStatus::Gone
            } else if msn > head.saturating_add(2) {
                ResourceStatus::TooFarAhead
            } else {
                ResourceStatus::Pending
            }
        };
        let retained = |msn: u64| rung.retained.iter().find(|(m, _)| *m == msn).copied();
        let open = rung.playlist.partial.as_ref();
        let status = match resource {
            Resource::Master | Resource::Media(_) => ResourceStatus::Available,
            Resource::Init(_, v) if rung.has_init && *v <= rung.init_version => {
                if self.store().init(&rung.variant.name, *v).is_some() {
                    ResourceStatus::Available
                } else {
                    ResourceStatus::Gone
                }
            }
            Resource::Init(..) => future(0),
            Resource::Segment(_, msn) => {
                if retained(*msn).is_some() {
                    ResourceStatus::Available
                } else if *msn < rung.next_msn && open.is_none_or(|o| o.msn != *msn) {
                    ResourceStatus::Gone
                } else {
                    future(*msn)
                }
            }
            Resource::Part(_, msn, i) => {
                if let Some((_, parts)) = retained(*msn) {
                    if *i < parts {
                        ResourceStatus::Available
                    } else {
                        ResourceStatus::Gone
                    }
                } else if let Some(o) = open.filter(|o| o.msn == *msn) {
                    if (*i as usize) < o.parts.len() {
                        ResourceStatus::Available
                    } else {
                        future(*msn)
                    }
                } else if *msn < rung.next_msn {
                    ResourceStatus::Gone
                } else {
                    future(*msn)
                }
            }
        };
        Ok(status)
    }

    /// The bytes of an init segment, segment or part, if stored; `None` for playlists.
    pub fn fetch(&self, resource: &Resource) -> Option<Bytes> {
        match resource {
            Resource::Master | Resource::Media(_) => None,
            Resource::Init(r, v) => self.store().init(r, *v),
            Resource::Segment(r, msn) => self.store().segment(r, *msn),
            Resource::Part(r, msn, i) => self.store().part(r, *msn, *i),
        }
    }

    pub(crate) fn cursor_of(&self, r: usize) -> Option<Cursor> {
        let rung = &self.rungs[r];
        let last_complete = rung.playlist.segments.back();
        let newest = rung
            .playlist
            .partial
            .as_ref()
            .filter(|p| !p.parts.is_empty())
            .or(last_complete)?;
        Some(Cursor {
            msn: newest.msn,
            part: u32::try_from(newest.parts.len().saturating_sub(1)).unwrap_or(u32::MAX),
            last_complete: last_complete.map(|s| s.msn),
        })
    }
}
