//! One silent frame of a stream's audio codec, for the input to push where the publisher's
//! audio is missing (every muxer waits for audio as well as video).
//!
//! The frame is encoded once per codec, sample rate and channel count by GStreamer's own
//! encoders and then kept. An AAC-LC raw data block depends only on the sampling frequency and
//! the channel configuration, so one made by our encoder decodes in the publisher's stream; the
//! same holds for the core of HE-AAC. MP3 frames are self-contained.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use media::{AudioCodec, AudioConfig};

use crate::error::Error;
use crate::testing::run_to_samples;

/// (codec, sample rate, channels) → the silent frame and its duration.
type Cache = HashMap<(AudioCodec, u32, u8), (Bytes, Duration)>;

/// A silent frame for `audio` and its duration. An error says why there is none (an exotic
/// configuration or a missing encoder); the caller then fills nothing.
pub(crate) fn silent_frame(audio: &AudioConfig) -> Result<(Bytes, Duration), Error> {
    let (rate, channels, samples, desc) = match audio.codec {
        AudioCodec::Aac => {
            let asc = media::aac::AudioSpecificConfig::parse(&audio.record)
                .map_err(|e| Error::InvalidCodecConfig(format!("AudioSpecificConfig: {e}")))?;
            if asc.core_object_type != media::aac::AOT_AAC_LC
                || asc.frame_length != Some(1024)
                || asc.channel_configuration == 0
                || asc.channel_configuration > 2
            {
                return Err(Error::InvalidConfig(format!(
                    "no silent frame for AAC object type {} with channel configuration {} and \
                     {:?}-sample frames (mono or stereo AAC-LC, 1024 samples, only)",
                    asc.core_object_type, asc.channel_configuration, asc.frame_length
                )));
            }
            let encoder = ["avenc_aac", "voaacenc", "fdkaacenc"]
                .into_iter()
                .find(|e| gst::ElementFactory::find(e).is_some())
                .ok_or_else(|| Error::MissingElement("avenc_aac".into()))?;
            let desc =
                format!("{encoder} ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw",);
            (asc.sample_rate, asc.channels, 1024u32, desc)
        }
        AudioCodec::Mp3 => {
            if gst::ElementFactory::find("lamemp3enc").is_none() {
                return Err(Error::MissingElement("lamemp3enc".into()));
            }
            // MPEG-1 layer III below 32 kHz is MPEG-2/2.5: half the samples per frame.
            let samples = if audio.sample_rate >= 32_000 {
                1152
            } else {
                576
            };
            let desc = "lamemp3enc ! mpegaudioparse".to_owned();
            (audio.sample_rate, audio.channels, samples, desc)
        }
        other => {
            return Err(Error::UnsupportedCodec(format!(
                "no silent frame for {other:?}"
            )))
        }
    };
    if rate == 0 || channels == 0 || channels > 2 {
        return Err(Error::InvalidConfig(format!(
            "no silent frame for {rate} Hz with {channels} channels"
        )));
    }
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (audio.codec, rate, channels);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let launch = format!(
        "audiotestsrc wave=silence num-buffers=12 samplesperbuffer={samples} ! \
         audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels={channels} ! \
         audioconvert ! {desc} ! appsink name=out sync=false"
    );
    let (_, frames) = run_to_samples(&launch)?;
    // A frame from the middle: past the encoder's start-up, before its final flush.
    let frame = frames
        .get(frames.len() / 2)
        .map(|f| f.data.clone())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| Error::Launch {
            description: launch.clone(),
            reason: "the encoder produced no frames".into(),
        })?;
    let duration = Duration::from_nanos(u64::from(samples) * 1_000_000_000 / u64::from(rate));
    if let Ok(mut c) = cache.lock() {
        c.insert(key, (frame.clone(), duration));
    }
    Ok((frame, duration))
}
