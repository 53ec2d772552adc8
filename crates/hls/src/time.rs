//! Wall-clock formatting without a date crate: the packager only ever needs RFC 3339 in UTC
//! with milliseconds, which is a few lines of civil-calendar arithmetic.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as RFC 3339 UTC with milliseconds, e.g. `2024-05-01T12:00:00.040Z`. Times before
/// the Unix epoch are clamped to it (a wall clock that far off is a caller bug, not a reason to
/// panic).
pub(crate) fn rfc3339_millis(t: SystemTime, out: &mut String) {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    );
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (non-negative only).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(ms: u64) -> String {
        let mut s = String::new();
        rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms), &mut s);
        s
    }

    #[test]
    fn known_dates() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(1_714_564_800_040), "2024-05-01T12:00:00.040Z");
        assert_eq!(fmt(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        let mut s = String::new();
        rfc3339_millis(UNIX_EPOCH - Duration::from_secs(5), &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
    }
}
