//! Streams as the API and the metrics show them. Nothing here ever carries a key.

use std::time::SystemTime;

use media::{AudioCodec, StreamName, VideoCodec};
use serde::Serialize;

use crate::outcome::Protocol;

/// Video track description, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// Codec.
    pub codec: VideoCodec,
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate: signalled in the bitstream, else measured.
    pub frame_rate: Option<f64>,
}

/// Audio track description, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioInfo {
    /// Codec.
    pub codec: AudioCodec,
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u8,
}

/// A stream as the API shows it. Never carries the key.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    /// Public name.
    pub name: StreamName,
    /// True while a publisher is live.
    pub live: bool,
    /// The live publisher, if any.
    pub publisher: Option<PublisherSnapshot>,
}

/// A live publisher as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherSnapshot {
    /// `rtmp` or `srt`.
    pub protocol: Protocol,
    /// Publisher's address.
    pub remote_addr: String,
    /// When the publish started, RFC 3339 UTC.
    pub started_at: String,
    /// Seconds since the publish started.
    pub uptime_seconds: f64,
    /// Video track, once its configuration arrived.
    pub video: Option<VideoInfo>,
    /// Audio track, once its configuration arrived.
    pub audio: Option<AudioInfo>,
    /// Ingest media bitrate over about the last second.
    pub bitrate_bps: u64,
}

/// Formats a time as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
