//! The caps the input appsrcs announce: H.264 in avcC form, HEVC in hvcC form or AV1 OBUs with
//! their av1C, AAC raw, or parsed MP3.

use media::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};

/// Caps of H.264 (or HEVC) access units with `record` (`avcC`, or `hvcC`) as their
/// `codec_data`.
pub(crate) fn video_caps(video: &VideoConfig, record: &bytes::Bytes) -> gst::Caps {
    let (media_type, stream_format, alignment) = match video.codec {
        VideoCodec::Hevc => ("video/x-h265", "hvc1", "au"),
        // E-RTMP carries one temporal unit of low-overhead OBUs per message.
        VideoCodec::Av1 => ("video/x-av1", "obu-stream", "tu"),
        _ => ("video/x-h264", "avc", "au"),
    };
    let mut b = gst::Caps::builder(media_type)
        .field("stream-format", stream_format)
        .field("alignment", alignment)
        .field("codec_data", gst::Buffer::from_slice(record.clone()));
    if video.width > 0 && video.height > 0 {
        b = b
            .field("width", video.width as i32)
            .field("height", video.height as i32);
    }
    b.build()
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
        _ => "h264parse",
    }
}
