//! The realtime factor: media time produced per wall second, from when chunks come.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use media::MediaTime;

/// Media time produced per wall second, from recent chunk ends.
#[derive(Debug)]
pub(crate) struct RateMeter {
    samples: VecDeque<(Instant, MediaTime)>,
    /// No chunk for this long is a stall, not the gap between two chunks.
    stall: Duration,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(5);

    pub(crate) fn new(chunk_interval: Duration) -> RateMeter {
        RateMeter {
            samples: VecDeque::new(),
            stall: (chunk_interval * 3 / 2).max(Duration::from_millis(2500)),
        }
    }

    pub(crate) fn record(&mut self, at: Instant, media_end: MediaTime) {
        self.samples.push_back((at, media_end));
        while self.samples.len() > 64 {
            self.samples.pop_front();
        }
    }

    /// Over the last `WINDOW` of wall time before the newest chunk (or since the first sample):
    /// a pipeline that keeps up reads about 1 whenever it is asked, not less by however long ago
    /// its last chunk came. Once nothing has come for longer than the stall limit, the wall time
    /// runs on to `now`, so a stalled pipeline decays towards 0. `None` until there are two
    /// chunks half a second apart: nothing to measure yet.
    pub(crate) fn factor(&self, now: Instant) -> Option<f64> {
        let &(newest_at, newest) = self.samples.back()?;
        let until = if now.saturating_duration_since(newest_at) <= self.stall_limit() {
            newest_at
        } else {
            now
        };
        let (t0, m0) = self
            .samples
            .iter()
            .rev()
            .skip(1)
            .find(|(t, _)| newest_at.saturating_duration_since(*t) >= Self::WINDOW)
            .or_else(|| self.samples.front().filter(|_| self.samples.len() > 1))
            .copied()?;
        let wall = until.saturating_duration_since(t0).as_secs_f64();
        if wall < 0.5 {
            return None;
        }
        Some(((newest - m0).as_secs_f64() / wall).max(0.0))
    }

    /// No chunk for this long is a stall: the configured limit, or half again the longest
    /// recent gap between chunks (a passthrough rung's segments follow the source's keyframes,
    /// which may be further apart than configured).
    fn stall_limit(&self) -> Duration {
        let newer = self.samples.iter().rev().take(8);
        let older = self.samples.iter().rev().skip(1);
        newer
            .zip(older)
            .map(|((n, _), (o, _))| n.saturating_duration_since(*o))
            .max()
            .map_or(self.stall, |g| self.stall.max(g * 3 / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(t0: Instant, media_ms: i64) -> RateMeter {
        let mut m = RateMeter::new(Duration::from_millis(334));
        for i in 0..=10u32 {
            m.record(
                t0 + Duration::from_secs(u64::from(i)),
                MediaTime::from_millis(i64::from(i) * media_ms),
            );
        }
        m
    }

    #[test]
    fn rate_meter_tracks_realtime_and_decays_when_stalled() {
        let t0 = Instant::now();
        let m = meter(t0, 1000);
        let f = m.factor(t0 + Duration::from_secs(10)).expect("a factor");
        assert!((f - 1.0).abs() < 0.01, "{f}");
        // Asked between two chunks, a pipeline that keeps up still reads 1.
        let between = m
            .factor(t0 + Duration::from_millis(10_900))
            .expect("a factor");
        assert!((between - 1.0).abs() < 0.01, "{between}");
        // Half speed reads a half.
        let half = meter(t0, 500)
            .factor(t0 + Duration::from_millis(10_500))
            .expect("a factor");
        assert!((half - 0.5).abs() < 0.02, "{half}");
        // Nothing new for 10 s: the factor falls.
        let stalled = m.factor(t0 + Duration::from_secs(20)).expect("a factor");
        assert!(stalled < 0.5, "{stalled}");
        // Nothing to measure before two chunks.
        let mut one = RateMeter::new(Duration::from_secs(2));
        assert_eq!(one.factor(t0), None);
        one.record(t0, MediaTime::from_millis(500));
        assert_eq!(one.factor(t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn rate_meter_reads_one_for_chunks_further_apart_than_its_window() {
        // Whole 6 s segments (plain HLS), and a passthrough rung following a source keyframe
        // every 8.3 s although 2 s segments are configured: healthy at any moment between chunks.
        for (configured, gap_ms) in [(6_000u64, 6_000u64), (2_000, 8_300)] {
            let t0 = Instant::now();
            let mut m = RateMeter::new(Duration::from_millis(configured));
            for i in 0..=6u64 {
                m.record(
                    t0 + Duration::from_millis(i * gap_ms),
                    MediaTime::from_millis((i * gap_ms) as i64),
                );
            }
            let last = t0 + Duration::from_millis(6 * gap_ms);
            for after_ms in [0, 1_000, 3_000, 5_500, gap_ms - 100] {
                let f = m
                    .factor(last + Duration::from_millis(after_ms))
                    .expect("a factor");
                assert!(
                    (f - 1.0).abs() < 0.01,
                    "{gap_ms} ms chunks, asked {after_ms} ms after the last: {f}"
                );
            }
            // Two gaps without a chunk is a stall.
            let f = m
                .factor(last + Duration::from_millis(2 * gap_ms))
                .expect("a factor");
            assert!(f < 0.8, "{f}");
        }
    }
}
