//! A rung shed under overload: its segments listed as `EXT-X-GAP` in step with the other
//! rungs', the rung left out of the master playlist, and numbers kept aligned when a pipeline
//! ends while it is shed.

use std::time::{Duration, SystemTime};

use media::MediaTime;

use crate::error::Error;
use crate::packager::{duration_to_media, media_to_duration, Packager};
use crate::playlist::Segment;
use crate::store::SegmentStore;

impl<S: SegmentStore> Packager<S> {
    /// Lists a segment of `rung` that has no media: `EXT-X-GAP` with the same sequence number
    /// and duration as the other rungs' segment that starts at `start` (the rung was shed under
    /// overload). Closes the rung's open segment first, ending it at `start`. Players skip a gap
    /// and take that time from another variant (RFC 8216bis 4.4.4.7, 6.3.3); its URI answers 404.
    pub fn gap(
        &mut self,
        rung: &str,
        start: MediaTime,
        duration: MediaTime,
        program_date_time: SystemTime,
    ) -> Result<(), Error> {
        if self.ended_at.is_some() {
            return Err(Error::Ended);
        }
        let r = self.index(rung)?;
        self.gap_at(r, start, duration, program_date_time)
    }

    fn gap_at(
        &mut self,
        r: usize,
        start: MediaTime,
        duration: MediaTime,
        program_date_time: SystemTime,
    ) -> Result<(), Error> {
        self.close_open(r, Some(start));
        let rung = &mut self.rungs[r];
        let msn = rung.next_msn;
        rung.next_msn += 1;
        rung.closed_early = false;
        // A gap copies another rung's timing. Where this rung's last segment ended before the
        // gap starts (it lagged when its pipeline ended, and the pause cut it short), the gap
        // starts there instead and lasts to the same end, so the dates stay in step with the
        // durations, and the discontinuity sequence with the other rungs'. (A last segment that
        // ran past the gap's start is a jump back: that one is marked a discontinuity.)
        let mut program_date_time = program_date_time;
        let mut duration = duration;
        let mut out_of_step = false;
        if let Some(prev) = rung.playlist.segments.back() {
            let end = prev.program_date_time + media_to_duration(prev.duration);
            match program_date_time.duration_since(end) {
                Ok(hole) if hole > Duration::from_millis(1) => {
                    program_date_time = end;
                    duration = duration + duration_to_media(hole);
                }
                Ok(_) => {}
                Err(e) => out_of_step = e.duration() > Duration::from_millis(1),
            }
        }
        let discontinuity = std::mem::take(&mut rung.pending_discontinuity) || out_of_step;
        rung.playlist.push_segment(Segment {
            msn,
            duration,
            program_date_time,
            discontinuity,
            init: rung.init_version,
            parts: Vec::new(),
            size: 0,
            gap: true,
        });
        self.update_hint(r);
        Ok(())
    }

    /// Closes `rung`'s open segment, ending it at `at` (the cut it is shed from): players see it
    /// complete at once rather than when its first gap is listed.
    pub fn end_segment(&mut self, rung: &str, at: MediaTime) -> Result<(), Error> {
        if self.ended_at.is_some() {
            return Err(Error::Ended);
        }
        let r = self.index(rung)?;
        self.close_open(r, Some(at));
        self.update_hint(r);
        Ok(())
    }

    /// Marks `rung` shed (left out of the master playlist, so that new players never pick it)
    /// or back. Players already on it meet its gap segments and switch.
    pub fn set_shed(&mut self, rung: &str, shed: bool) -> Result<(), Error> {
        let r = self.index(rung)?;
        self.rungs[r].shed = shed;
        self.update_hint(r);
        Ok(())
    }

    /// Whether `rung` is shed ([`Packager::set_shed`]).
    pub fn is_shed(&self, rung: &str) -> Result<bool, Error> {
        Ok(self.rungs[self.index(rung)?].shed)
    }

    /// Lists gaps in every rung that is behind the others in sequence numbers (a rung shed when
    /// its pipeline ended, whose last gaps were never reported), copying the durations of the
    /// rung furthest ahead, so that a segment number means the same time in every rung again.
    pub fn align_gaps(&mut self) {
        if self.ended_at.is_some() {
            return;
        }
        let Some(lead) = (0..self.rungs.len()).max_by_key(|&r| self.rungs[r].next_msn) else {
            return;
        };
        let head = self.rungs[lead].next_msn;
        let fallback = duration_to_media(self.config.segment_duration);
        for r in 0..self.rungs.len() {
            while self.rungs[r].next_msn < head {
                let msn = self.rungs[r].next_msn;
                let lead_pl = &self.rungs[lead].playlist;
                let (duration, pdt) = lead_pl
                    .segments
                    .iter()
                    .chain(&lead_pl.partial)
                    .find(|s| s.msn == msn)
                    .map_or((fallback, SystemTime::now()), |s| {
                        (s.duration, s.program_date_time)
                    });
                let start = self.rungs[r]
                    .open
                    .as_ref()
                    .map_or(MediaTime::ZERO, |(start, _)| *start);
                if self.gap_at(r, start, duration, pdt).is_err() {
                    break;
                }
            }
        }
    }
}
