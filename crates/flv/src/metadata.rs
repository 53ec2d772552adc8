//! Hints from `onMetaData`, which encoders send before the media and which may be wrong: the
//! bitstream's own headers win wherever they say something.

/// What an `onMetaData` (or `@setDataFrame`) object says about the stream, from its numeric
/// properties. Every field is `None` when the property is absent, not finite, or not positive.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MetadataHints {
    /// `width` in pixels.
    pub width: Option<u32>,
    /// `height` in pixels.
    pub height: Option<u32>,
    /// `framerate` (or `fps`) in frames per second.
    pub frame_rate: Option<f64>,
    /// `videodatarate` in kbit/s.
    pub video_kbps: Option<f64>,
    /// `videocodecid` (7 for H.264).
    pub video_codec_id: Option<u8>,
    /// `audiodatarate` in kbit/s.
    pub audio_kbps: Option<f64>,
    /// `audiosamplerate` in Hz.
    pub audio_sample_rate: Option<u32>,
    /// `audiochannels`.
    pub audio_channels: Option<u8>,
    /// `audiocodecid` (10 for AAC).
    pub audio_codec_id: Option<u8>,
}

impl MetadataHints {
    /// Reads the numeric properties of an `onMetaData` object, given as (name, value) pairs.
    /// Names are matched without regard to case; unknown names are skipped.
    pub fn from_pairs<'a, I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, f64)>,
    {
        fn positive(v: f64) -> Option<f64> {
            (v.is_finite() && v > 0.0).then_some(v)
        }
        fn whole<T: TryFrom<u64>>(v: f64) -> Option<T> {
            let v = positive(v)?.round();
            if v > u64::MAX as f64 {
                return None;
            }
            T::try_from(v as u64).ok()
        }
        let mut h = MetadataHints::default();
        for (key, value) in pairs {
            match key.to_ascii_lowercase().as_str() {
                "width" => h.width = whole(value),
                "height" => h.height = whole(value),
                "framerate" | "fps" => h.frame_rate = positive(value),
                "videodatarate" => h.video_kbps = positive(value),
                "videocodecid" => h.video_codec_id = whole(value),
                "audiodatarate" => h.audio_kbps = positive(value),
                "audiosamplerate" => h.audio_sample_rate = whole(value),
                "audiochannels" => h.audio_channels = whole(value),
                "audiocodecid" => h.audio_codec_id = whole(value),
                _ => {}
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obs_style_metadata() {
        let h = MetadataHints::from_pairs([
            ("duration", 0.0),
            ("width", 1920.0),
            ("height", 1080.0),
            ("videodatarate", 6000.0),
            ("framerate", 29.97),
            ("videocodecid", 7.0),
            ("audiodatarate", 160.0),
            ("audiosamplerate", 48_000.0),
            ("audiosamplesize", 16.0),
            ("audiochannels", 2.0),
            ("audiocodecid", 10.0),
            ("fileSize", 0.0),
        ]);
        assert_eq!((h.width, h.height), (Some(1920), Some(1080)));
        assert_eq!(h.frame_rate, Some(29.97));
        assert_eq!(h.video_kbps, Some(6000.0));
        assert_eq!(h.video_codec_id, Some(7));
        assert_eq!(h.audio_sample_rate, Some(48_000));
        assert_eq!(h.audio_channels, Some(2));
        assert_eq!(h.audio_codec_id, Some(10));
    }

    #[test]
    fn nonsense_values_are_dropped() {
        let h = MetadataHints::from_pairs([
            ("WIDTH", f64::NAN),
            ("height", -5.0),
            ("fps", f64::INFINITY),
            ("audiochannels", 1e9),
            ("videocodecid", 1e300),
        ]);
        assert_eq!(h, MetadataHints::default());
    }
}
