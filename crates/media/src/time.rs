use std::fmt;
use std::ops::{Add, Sub};

/// A media timestamp or duration in nanoseconds (GStreamer's unit), signed so that composition
/// offsets and differences are plain arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MediaTime(i64);

impl MediaTime {
    /// Zero.
    pub const ZERO: MediaTime = MediaTime(0);

    /// From nanoseconds.
    pub const fn from_nanos(ns: i64) -> Self {
        MediaTime(ns)
    }

    /// From milliseconds (RTMP's unit).
    pub const fn from_millis(ms: i64) -> Self {
        MediaTime(ms.saturating_mul(1_000_000))
    }

    /// From 90 kHz ticks (MPEG-TS's unit).
    pub const fn from_90khz(ticks: i64) -> Self {
        // 1e9 / 90_000 = 100_000 / 9; multiply first to stay exact.
        MediaTime(ticks.saturating_mul(100_000) / 9)
    }

    /// In nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// In milliseconds, truncated toward zero.
    pub const fn as_millis(self) -> i64 {
        self.0 / 1_000_000
    }

    /// In seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add for MediaTime {
    type Output = MediaTime;
    fn add(self, rhs: MediaTime) -> MediaTime {
        MediaTime(self.0.saturating_add(rhs.0))
    }
}

impl Sub for MediaTime {
    type Output = MediaTime;
    fn sub(self, rhs: MediaTime) -> MediaTime {
        MediaTime(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(MediaTime::from_millis(1).as_nanos(), 1_000_000);
        assert_eq!(MediaTime::from_90khz(90_000).as_nanos(), 1_000_000_000);
        assert_eq!(MediaTime::from_90khz(3003).as_millis(), 33);
        assert_eq!(
            (MediaTime::from_millis(5) - MediaTime::from_millis(7)).as_millis(),
            -2
        );
    }
}
