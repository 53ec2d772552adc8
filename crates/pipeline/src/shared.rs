//! What `push` and GStreamer's streaming threads share (the direct path uses the same counters
//! from one thread): counters, the failure flag, the segment cuts the encoders' probes read, and
//! the arrival times the chunks report.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use media::cmaf::{ChunkKind, CmafChunk};

use crate::config::RungPlan;
use crate::stats::{PipelineStats, RungStats};

/// Cuts remembered for the encoders' force-key-unit probes.
const CUTS_KEPT: usize = 64;
/// Video arrival times are remembered for the chunks that will hold those frames for this long
/// beyond two segments (an encoder and muxer hold back far less)...
const ARRIVALS_SLACK: Duration = Duration::from_secs(10);
/// ...and never more than this many (a minute at 120 fps).
const ARRIVALS_MAX: usize = 7200;

/// One rung's counters.
pub(crate) struct RungCounters {
    pub(crate) frames: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) chunks: AtomicU64,
    pub(crate) segments: AtomicU64,
    /// ns; negative means none yet.
    pub(crate) media_end: AtomicI64,
    /// Which of the rung's frames are dropped before its encoder (it is shed).
    pub(crate) gate: Mutex<Gate>,
}

/// A rung's input gate: video frames of running time in `[from, until)` are dropped before the
/// rung's scaler and encoder (its audio goes on to its muxer). Both ends are segment cuts, so
/// the rung's segments stay aligned with every other rung's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gate {
    /// First running time dropped (ns); `u64::MAX`: never shed.
    pub(crate) from: u64,
    /// First running time let through again (ns); `u64::MAX`: not yet.
    pub(crate) until: u64,
}

impl Gate {
    pub(crate) const OPEN: Gate = Gate {
        from: u64::MAX,
        until: u64::MAX,
    };

    /// Whether a frame of running time `rt` is dropped.
    pub(crate) fn drops(&self, rt: u64) -> bool {
        rt >= self.from && rt < self.until
    }

    /// Shed from its cut on, and not brought back yet.
    pub(crate) fn is_shed(&self) -> bool {
        self.from != u64::MAX && self.until == u64::MAX
    }
}

/// One pipeline's shared state; every field is safe to touch from any thread.
pub(crate) struct Shared {
    pub(crate) rungs: Vec<RungCounters>,
    pub(crate) video_in: AtomicU64,
    pub(crate) audio_in: AtomicU64,
    pub(crate) video_dropped: AtomicU64,
    pub(crate) audio_dropped: AtomicU64,
    /// Frames dropped because the input queue was full (and video waiting for a keyframe after
    /// that): the pipeline could not take them.
    pub(crate) overflow_dropped: AtomicU64,
    /// Silent audio frames pushed where the publisher's audio was missing.
    pub(crate) audio_silence: AtomicU64,
    pub(crate) failed: AtomicBool,
    /// Shed (true) or bring back (false) these rungs at the next cut, in request order.
    gate_requests: Mutex<Vec<(usize, bool)>>,
    /// Running times (ns) of segment cuts, oldest first.
    cuts: Mutex<VecDeque<u64>>,
    /// (running time in ns, wall-clock arrival at `push`) of recent video frames, in push order.
    arrivals: Mutex<VecDeque<(u64, Instant)>>,
    /// How long an arrival is remembered.
    keep: Duration,
}

impl Shared {
    /// Zeroed counters for `rungs` rungs of segments of `segment_ns`.
    pub(crate) fn new(rungs: usize, segment_ns: u64) -> Shared {
        Shared {
            rungs: (0..rungs)
                .map(|_| RungCounters {
                    frames: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    chunks: AtomicU64::new(0),
                    segments: AtomicU64::new(0),
                    media_end: AtomicI64::new(-1),
                    gate: Mutex::new(Gate::OPEN),
                })
                .collect(),
            video_in: AtomicU64::new(0),
            audio_in: AtomicU64::new(0),
            video_dropped: AtomicU64::new(0),
            audio_dropped: AtomicU64::new(0),
            overflow_dropped: AtomicU64::new(0),
            audio_silence: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            gate_requests: Mutex::new(Vec::new()),
            cuts: Mutex::new(VecDeque::new()),
            arrivals: Mutex::new(VecDeque::new()),
            keep: Duration::from_nanos(segment_ns * 2) + ARRIVALS_SLACK,
        }
    }

    /// A video frame of running time `pts` was pushed at `at`.
    pub(crate) fn arrived(&self, pts: u64, at: Instant) {
        if let Ok(mut a) = self.arrivals.lock() {
            while a.len() >= ARRIVALS_MAX
                || a.front()
                    .is_some_and(|(_, t)| at.saturating_duration_since(*t) > self.keep)
            {
                a.pop_front();
            }
            a.push_back((pts, at));
        }
    }

    /// Arrival times of the video frames presented in `[start, end)` (ns).
    pub(crate) fn arrivals_between(&self, start: u64, end: u64) -> Vec<Instant> {
        self.arrivals
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|(pts, _)| (start..end).contains(pts))
                    .map(|(_, at)| *at)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rung `rung` hands `chunk` on: it is counted, and the arrival times of the video frames
    /// it presents are returned (none for an init segment).
    pub(crate) fn chunk_out(&self, rung: usize, chunk: &CmafChunk) -> Vec<Instant> {
        let end = chunk.pts + chunk.duration;
        if let Some(c) = self.rungs.get(rung) {
            c.bytes
                .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            c.chunks.fetch_add(1, Ordering::Relaxed);
            if chunk.kind == ChunkKind::SegmentStart {
                c.segments.fetch_add(1, Ordering::Relaxed);
            }
            if chunk.kind != ChunkKind::Init {
                c.media_end.fetch_max(end.as_nanos(), Ordering::Relaxed);
            }
        }
        if chunk.kind == ChunkKind::Init {
            return Vec::new();
        }
        let ns = |t: media::MediaTime| u64::try_from(t.as_nanos()).unwrap_or(0);
        self.arrivals_between(ns(chunk.pts), ns(end))
    }

    /// Asks for rung `rung` to be shed (or brought back) from the next cut on.
    pub(crate) fn request_gate(&self, rung: usize, shed: bool) {
        if let Ok(mut r) = self.gate_requests.lock() {
            r.push((rung, shed));
        }
    }

    /// The gate of rung `rung` now.
    pub(crate) fn gate(&self, rung: usize) -> Gate {
        self.rungs
            .get(rung)
            .and_then(|c| c.gate.lock().ok().map(|g| *g))
            .unwrap_or(Gate::OPEN)
    }

    /// Applies the gate requests at the cut at `pts` (ns): a shed rung drops from this cut on,
    /// a rung brought back takes frames again from it. Called before the cut frame is pushed.
    fn apply_gate_requests(&self, pts: u64) {
        let requests = match self.gate_requests.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        for (rung, shed) in requests {
            let Some(mut gate) = self.rungs.get(rung).and_then(|c| c.gate.lock().ok()) else {
                continue;
            };
            if shed && gate.until == pts {
                // Brought back and shed again at this same cut: it simply stays shed.
                gate.until = u64::MAX;
            } else if shed && !gate.is_shed() {
                *gate = Gate {
                    from: pts,
                    until: u64::MAX,
                };
            } else if !shed && gate.is_shed() {
                gate.until = pts;
            }
        }
    }

    /// A segment starts at running time `pts` (ns).
    pub(crate) fn add_cut(&self, pts: u64) {
        self.apply_gate_requests(pts);
        if let Ok(mut cuts) = self.cuts.lock() {
            cuts.push_back(pts);
            while cuts.len() > CUTS_KEPT {
                cuts.pop_front();
            }
        }
    }

    /// The newest cut at or before `running_time` and after `after` (negative: none yet).
    pub(crate) fn due_cut(&self, running_time: u64, after: i64) -> Option<u64> {
        match self.cuts.lock() {
            Ok(cuts) => cuts
                .iter()
                .rev()
                .find(|&&c| c <= running_time && (after < 0 || c as i64 > after))
                .copied(),
            Err(_) => None,
        }
    }

    /// A segment starts exactly at `running_time`.
    pub(crate) fn is_cut(&self, running_time: u64) -> bool {
        self.cuts
            .lock()
            .map(|c| c.iter().any(|&cut| cut == running_time))
            .unwrap_or(false)
    }

    /// The counters, with the input queues' levels read by the caller.
    pub(crate) fn snapshot(
        &self,
        plan: &[RungPlan],
        video_queued: u64,
        audio_queued: u64,
    ) -> PipelineStats {
        PipelineStats {
            video_frames_in: self.video_in.load(Ordering::Relaxed),
            audio_frames_in: self.audio_in.load(Ordering::Relaxed),
            video_dropped: self.video_dropped.load(Ordering::Relaxed),
            audio_dropped: self.audio_dropped.load(Ordering::Relaxed),
            overflow_dropped: self.overflow_dropped.load(Ordering::Relaxed),
            audio_silence_frames: self.audio_silence.load(Ordering::Relaxed),
            video_queued,
            audio_queued,
            rungs: plan
                .iter()
                .zip(&self.rungs)
                .map(|(p, c)| {
                    let end = c.media_end.load(Ordering::Relaxed);
                    RungStats {
                        name: p.name.clone(),
                        frames: c.frames.load(Ordering::Relaxed),
                        bytes: c.bytes.load(Ordering::Relaxed),
                        chunks: c.chunks.load(Ordering::Relaxed),
                        segments: c.segments.load(Ordering::Relaxed),
                        shed: c.gate.lock().map(|g| g.is_shed()).unwrap_or(false),
                        media_time: (end >= 0).then(|| media::MediaTime::from_nanos(end)),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_open_and_close_on_cuts() {
        let s = Shared::new(2, 2_000);
        s.request_gate(1, true);
        s.add_cut(4_000);
        assert_eq!(
            s.gate(1),
            Gate {
                from: 4_000,
                until: u64::MAX
            }
        );
        assert!(s.gate(1).is_shed() && s.gate(1).drops(5_000) && !s.gate(1).drops(3_999));
        assert_eq!(s.gate(0), Gate::OPEN, "only the rung asked for");
        s.request_gate(1, false);
        s.add_cut(10_000);
        assert!(!s.gate(1).is_shed() && s.gate(1).drops(9_999) && !s.gate(1).drops(10_000));
        // Shed again at a later cut: a new gate.
        s.request_gate(1, true);
        s.add_cut(12_000);
        assert_eq!(
            s.gate(1),
            Gate {
                from: 12_000,
                until: u64::MAX
            }
        );
        // Back and shed again at the same cut: it stays shed from where it was, so the time
        // already dropped is never taken for media.
        s.request_gate(1, false);
        s.add_cut(14_000);
        s.request_gate(1, true);
        s.add_cut(14_000);
        assert_eq!(
            s.gate(1),
            Gate {
                from: 12_000,
                until: u64::MAX
            }
        );
        // Both asked before one cut: shed and back at once, nothing dropped.
        s.request_gate(0, true);
        s.request_gate(0, false);
        s.add_cut(16_000);
        assert!(!s.gate(0).is_shed() && !s.gate(0).drops(16_000));
    }
}
