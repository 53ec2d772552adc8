//! The caps the input appsrcs announce: H.264 in avcC form, HEVC in hvcC form, AV1 OBUs with
//! their av1C or VP9 frames, AAC raw, or parsed MP3.

use media::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};

/// Caps of the video access units: H.264 or HEVC with `record` (`avcC`, `hvcC`) as their
/// `codec_data`, AV1 temporal units with their `av1C`, or VP9 frames.
pub(crate) fn video_caps(video: &VideoConfig, record: &bytes::Bytes) -> gst::Caps {
    let mut b = match video.codec {
        VideoCodec::Hevc => with_record("video/x-h265", "hvc1", "au", record),
        // E-RTMP carries one temporal unit of low-overhead OBUs per message.
        VideoCodec::Av1 => with_record("video/x-av1", "obu-stream", "tu", record),
        // VP9 frames need no codec_data: vp9parse reads the profile and size from them. fMP4's
        // vpcC needs colorimetry, which vp9parse leaves out when the stream does not say: the
        // record's matrix, else what GStreamer assumes for the size.
        VideoCodec::Vp9 => {
            let matrix = media::vp9::VpCodecConfigurationRecord::parse(record)
                .map(|r| r.matrix)
                .unwrap_or(2);
            let colorimetry = match matrix {
                1 => "bt709",
                5 | 6 => "bt601",
                9 | 10 => "bt2020",
                _ if video.height >= 720 => "bt709",
                _ => "bt601",
            };
            gst::Caps::builder("video/x-vp9").field("colorimetry", colorimetry)
        }
        _ => with_record("video/x-h264", "avc", "au", record),
    };
    if video.width > 0 && video.height > 0 {
        b = b
            .field("width", video.width as i32)
            .field("height", video.height as i32);
    }
    // AV1 and VP9 bitstreams carry no timing: the container's frame rate (onMetaData), when
    // it gave one, or the encoders downstream make one up. H.264 and HEVC parsers read theirs.
    if matches!(video.codec, VideoCodec::Av1 | VideoCodec::Vp9) {
        if let Some(rate) = video
            .frame_rate
            .filter(|f| *f > 0.0 && *f <= 240.0)
            .and_then(gst::Fraction::approximate_f64)
        {
            b = b.field("framerate", rate);
        }
    }
    b.build()
}

fn with_record(
    media_type: &str,
    stream_format: &str,
    alignment: &str,
    record: &bytes::Bytes,
) -> gst::caps::Builder<gst::caps::NoFeature> {
    gst::Caps::builder(media_type)
        .field("stream-format", stream_format)
        .field("alignment", alignment)
        .field("codec_data", gst::Buffer::from_slice(record.clone()))
}

/// Caps of raw AAC frames with `record` (the AudioSpecificConfig) as their `codec_data`, or of
/// parsed MP3 frames.
pub(crate) fn audio_caps(audio: &AudioConfig, record: &bytes::Bytes) -> gst::Caps {
    if audio.codec == AudioCodec::Mp3 {
        return gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .field("layer", 3i32)
            .field("rate", audio.sample_rate as i32)
            .field("channels", i32::from(audio.channels))
            .field("parsed", true)
            .build();
    }
    gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field("codec_data", gst::Buffer::from_slice(record.clone()))
        .field("rate", audio.sample_rate as i32)
        .field("channels", i32::from(audio.channels))
        .build()
}

/// The parser of `codec`'s access units.
pub(crate) fn video_parser(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Hevc => "h265parse",
        VideoCodec::Av1 => "av1parse",
        VideoCodec::Vp9 => "vp9parse",
        _ => "h264parse",
    }
}
