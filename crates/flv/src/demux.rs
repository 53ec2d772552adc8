//! The per-connection demuxer: configuration state and timestamp extension.

use bytes::Bytes;
use media::{AudioConfig, AudioFrame, MediaFrame, MediaTime, VideoConfig, VideoFrame};

use crate::tag::{self, AudioTag, VideoTag};
use crate::{Error, Ignored, MetadataHints, Outcome, Track};

/// Extends RTMP's 32-bit millisecond timestamps, which wrap every 2^32 ms (about 49.7 days),
/// to an `i64` that does not wrap.
///
/// Each timestamp is placed at the extended value nearest to the previous one, so a step of
/// less than 2^31 ms either way is taken as it is, and a step across the wrap point (from
/// near `u32::MAX` to near 0) counts as a small step forward. Audio and video share one
/// extender, because RTMP puts both on one clock and they interleave slightly out of order.
#[derive(Debug, Clone, Default)]
pub struct TimestampExtender {
    last: Option<(u32, i64)>,
}

impl TimestampExtender {
    /// A fresh extender: the first timestamp is taken as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends one timestamp.
    pub fn extend(&mut self, timestamp_ms: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(timestamp_ms),
            Some((raw, ext)) => ext + i64::from(timestamp_ms.wrapping_sub(raw) as i32),
        };
        self.last = Some((timestamp_ms, extended));
        extended
    }
}

/// Turns one connection's FLV audio and video tag bodies into [`MediaFrame`]s.
///
/// It holds the current H.264 and AAC configurations, so that it can hold back frames that
/// arrive before them ([`Outcome::WaitingForConfig`]), skip repeated identical sequence headers
/// and report changed ones as new configurations; and it extends timestamps
/// ([`TimestampExtender`]).
#[derive(Debug, Clone, Default)]
pub struct Demuxer {
    clock: TimestampExtender,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    hints: MetadataHints,
}

impl Demuxer {
    /// A demuxer with no configurations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `onMetaData` hints. Their frame rate fills in [`VideoConfig::frame_rate`] for
    /// later sequence headers whose SPS signals none.
    pub fn set_metadata(&mut self, hints: MetadataHints) {
        self.hints = hints;
    }

    /// The H.264 configuration in use, if a sequence header has arrived.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.as_ref()
    }

    /// The AAC configuration in use, if a sequence header has arrived.
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    /// Demuxes the body of an RTMP video message (type 9) with its timestamp.
    pub fn push_video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Outcome, Error> {
        let ms = self.clock.extend(timestamp_ms);
        let parsed = tag::parse_video(body)?;
        let dts = MediaTime::from_millis(ms) + MediaTime::from_nanos(parsed.nanos.into());
        match parsed.tag {
            VideoTag::AvcConfig(record) => {
                if self.video.as_ref().is_some_and(|c| c.record == record) {
                    return Ok(Outcome::Ignored(Ignored::UnchangedConfig));
                }
                let mut config =
                    media::h264::video_config(record).map_err(Error::AvcSequenceHeader)?;
                if config.frame_rate.is_none() {
                    config.frame_rate = self.hints.frame_rate;
                }
                self.video = Some(config.clone());
                Ok(Outcome::Frame(MediaFrame::VideoConfig(config)))
            }
            VideoTag::AvcFrame {
                keyframe,
                cts,
                data,
            } => {
                let Some(config) = &self.video else {
                    return Ok(Outcome::WaitingForConfig(Track::Video));
                };
                if data.is_empty() {
                    return Ok(Outcome::Ignored(Ignored::EmptyFrame));
                }
                for nal in media::h264::length_prefixed_nal_units(&data, config.nal_length_size) {
                    nal.map_err(Error::AvcFrame)?;
                }
                Ok(Outcome::Frame(MediaFrame::Video(VideoFrame {
                    dts,
                    pts: dts + MediaTime::from_millis(cts.into()),
                    keyframe,
                    data,
                })))
            }
            VideoTag::Ignored(why) => Ok(Outcome::Ignored(why)),
            VideoTag::Unsupported(what) => Ok(Outcome::Unsupported(what)),
        }
    }

    /// Demuxes the body of an RTMP audio message (type 8) with its timestamp.
    pub fn push_audio(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Outcome, Error> {
        let ms = self.clock.extend(timestamp_ms);
        let parsed = tag::parse_audio(body)?;
        let pts = MediaTime::from_millis(ms) + MediaTime::from_nanos(parsed.nanos.into());
        match parsed.tag {
            AudioTag::AacConfig(asc) => {
                if self.audio.as_ref().is_some_and(|c| c.record == asc) {
                    return Ok(Outcome::Ignored(Ignored::UnchangedConfig));
                }
                let config = media::aac::audio_config(asc).map_err(Error::AacSequenceHeader)?;
                self.audio = Some(config.clone());
                Ok(Outcome::Frame(MediaFrame::AudioConfig(config)))
            }
            AudioTag::AacFrame(data) => {
                if self.audio.is_none() {
                    return Ok(Outcome::WaitingForConfig(Track::Audio));
                }
                if data.is_empty() {
                    return Ok(Outcome::Ignored(Ignored::EmptyFrame));
                }
                Ok(Outcome::Frame(MediaFrame::Audio(AudioFrame { pts, data })))
            }
            AudioTag::Ignored(why) => Ok(Outcome::Ignored(why)),
            AudioTag::Unsupported(what) => Ok(Outcome::Unsupported(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_extend_across_the_wrap() {
        let mut t = TimestampExtender::new();
        assert_eq!(t.extend(u32::MAX - 20), i64::from(u32::MAX) - 20);
        assert_eq!(t.extend(u32::MAX), i64::from(u32::MAX));
        assert_eq!(t.extend(5), (1i64 << 32) + 5);
        // Audio slightly behind video, from before the wrap.
        assert_eq!(t.extend(u32::MAX - 3), i64::from(u32::MAX) - 3);
        assert_eq!(t.extend(40), (1i64 << 32) + 40);
        // A second wrap.
        assert_eq!(t.extend(1 << 31), (1i64 << 32) + (1 << 31));
        assert_eq!(t.extend(u32::MAX), (2i64 << 32) - 1);
        assert_eq!(t.extend(0), 2i64 << 32);
    }

    #[test]
    fn small_backward_steps_stay_backward() {
        let mut t = TimestampExtender::new();
        assert_eq!(t.extend(1000), 1000);
        assert_eq!(t.extend(990), 990);
        assert_eq!(t.extend(0), 0);
    }
}
