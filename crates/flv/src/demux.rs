//! The per-connection demuxer: configuration state and timestamp extension.

use std::collections::BTreeMap;

use bytes::Bytes;
use media::{
    AudioCodec, AudioConfig, AudioFrame, MediaFrame, MediaTime, VideoCodec, VideoConfig, VideoFrame,
};

use crate::error::Error;
use crate::metadata::MetadataHints;
use crate::outcome::{Ignored, Outcome};
use crate::tag::{self, AudioTag, VideoTag, MAIN_VIDEO_TRACK};
use crate::track::Track;

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
/// It holds the current H.264 and audio (AAC or MP3) configurations, so that it can hold back frames that
/// arrive before them ([`Outcome::WaitingForConfig`]), skip repeated identical sequence headers
/// and report changed ones as new configurations; and it extends timestamps
/// ([`TimestampExtender`]).
#[derive(Debug, Clone, Default)]
pub struct Demuxer {
    clock: TimestampExtender,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    hints: MetadataHints,
    /// A VP9 configuration waiting for a keyframe to give its picture size.
    vp9_pending: Option<VideoConfig>,
    /// The highest track id of a multitrack publish handed on besides track 0 (0: none).
    served_tracks: u8,
    /// The configuration of each other track handed on, by track id.
    tracks: BTreeMap<u8, VideoConfig>,
}

/// The most tracks besides track 0 that [`Demuxer::serve_tracks`] may hand on.
pub const MAX_SERVED_TRACKS: u8 = 8;

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

    /// Hands on tracks 1 to `up_to` (at most [`MAX_SERVED_TRACKS`]) of a multitrack publish,
    /// as [`MediaFrame::TrackConfig`] and [`MediaFrame::TrackVideo`], besides track 0. Other
    /// tracks stay [`Ignored::OtherTrack`]. H.264, HEVC and AV1 tracks are handed on; a VP9
    /// one is not.
    pub fn serve_tracks(&mut self, up_to: u8) {
        self.served_tracks = up_to.min(MAX_SERVED_TRACKS);
        self.tracks.retain(|id, _| *id <= up_to);
    }

    /// The H.264 configuration in use, if a sequence header has arrived.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.as_ref()
    }

    /// The audio configuration in use: AAC once a sequence header has arrived, MP3 once a
    /// first MP3 tag has.
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    /// Demuxes the body of an RTMP video message (type 9) with its timestamp.
    pub fn push_video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Outcome, Error> {
        let ms = self.clock.extend(timestamp_ms);
        let parsed = tag::parse_video(body)?;
        let dts = MediaTime::from_millis(ms) + MediaTime::from_nanos(parsed.nanos.into());
        self.video_tag(parsed.tag, dts)
    }

    fn video_tag(&mut self, tag: VideoTag, dts: MediaTime) -> Result<Outcome, Error> {
        match tag {
            VideoTag::Tracks(tracks) => {
                // Track 0 first: a damaged track 0 loses the message before any other track's
                // state changes. One entry per track id (a message may repeat one, up to 255
                // times); a multitrack message never nests another.
                let mut seen = [false; 256];
                let mut entries = Vec::new();
                for (id, tag) in tracks {
                    if !std::mem::replace(&mut seen[usize::from(id)], true)
                        && !matches!(tag, VideoTag::Tracks(_))
                        && (id == MAIN_VIDEO_TRACK || id <= self.served_tracks)
                    {
                        entries.push((id, tag));
                    }
                }
                let main = match entries.iter().position(|(id, _)| *id == MAIN_VIDEO_TRACK) {
                    Some(at) => Some(self.video_tag(entries.remove(at).1, dts)?),
                    None => None,
                };
                let mut others = Vec::new();
                for (id, tag) in entries {
                    others.extend(self.other_track(id, tag, dts));
                }
                Ok(match (main, others.is_empty()) {
                    (None, true) => Outcome::Ignored(Ignored::OtherTrack),
                    (Some(main), true) => main,
                    (Some(Outcome::Frame(f)), false) => {
                        others.insert(0, f);
                        Outcome::Frames(others)
                    }
                    (Some(Outcome::Frames(mut frames)), false) => {
                        frames.extend(others);
                        Outcome::Frames(frames)
                    }
                    (Some(Outcome::Unsupported(what)), false) => Outcome::Unsupported(what),
                    // Track 0 gave nothing to hand on (the reason is lost with the others'
                    // frames; OBS sends one track per message).
                    (_, false) if others.len() == 1 => Outcome::Frame(others.remove(0)),
                    (_, false) => Outcome::Frames(others),
                })
            }
            VideoTag::Config(codec, record) => {
                if self
                    .video
                    .as_ref()
                    .is_some_and(|c| c.codec == codec && c.record == record)
                {
                    return Ok(Outcome::Ignored(Ignored::UnchangedConfig));
                }
                if codec == VideoCodec::Vp9 {
                    // Handed on with the first keyframe, which has the picture size.
                    let mut config =
                        media::vp9::video_config(record).map_err(Error::Vp9SequenceHeader)?;
                    config.frame_rate = self.hints.frame_rate;
                    self.video = None;
                    self.vp9_pending = Some(config);
                    return Ok(Outcome::Ignored(Ignored::PendingConfig));
                }
                let mut config = sequence_header(codec, record)?;
                if config.frame_rate.is_none() {
                    config.frame_rate = self.hints.frame_rate;
                }
                self.video = Some(config.clone());
                Ok(Outcome::Frame(MediaFrame::VideoConfig(config)))
            }
            VideoTag::Frame {
                codec,
                keyframe,
                cts,
                data,
            } => {
                if codec == VideoCodec::Vp9 {
                    if let Some(outcome) = self.vp9_keyframe(keyframe, dts, &data) {
                        return Ok(outcome);
                    }
                }
                // Frames of another codec than the configuration's wait for their own.
                let Some(config) = self.video.as_ref().filter(|c| c.codec == codec) else {
                    return Ok(Outcome::WaitingForConfig(Track::Video));
                };
                Ok(match coded_frame(config, keyframe, dts, cts, data)? {
                    Some(frame) => Outcome::Frame(MediaFrame::Video(frame)),
                    None => Outcome::Ignored(Ignored::EmptyFrame),
                })
            }
            VideoTag::Ignored(why) => Ok(Outcome::Ignored(why)),
            VideoTag::Unsupported(what) => Ok(Outcome::Unsupported(what)),
        }
    }

    /// What track `id` (served, not 0) gives: a new configuration, a frame, or nothing. A bad
    /// configuration or frame loses only that track's configuration or frame.
    fn other_track(&mut self, id: u8, tag: VideoTag, dts: MediaTime) -> Option<MediaFrame> {
        match tag {
            VideoTag::Config(codec, record) => {
                if self
                    .tracks
                    .get(&id)
                    .is_some_and(|c| c.codec == codec && c.record == record)
                {
                    return None;
                }
                // VP9 needs a keyframe for its picture size: not handed on here.
                let config = (codec != VideoCodec::Vp9)
                    .then(|| sequence_header(codec, record).ok())
                    .flatten();
                let Some(config) = config else {
                    self.tracks.remove(&id);
                    return None;
                };
                self.tracks.insert(id, config.clone());
                Some(MediaFrame::TrackConfig(id, config))
            }
            VideoTag::Frame {
                codec,
                keyframe,
                cts,
                data,
            } => {
                let config = self.tracks.get(&id).filter(|c| c.codec == codec)?;
                let frame = coded_frame(config, keyframe, dts, cts, data).ok()??;
                Some(MediaFrame::TrackVideo(id, frame))
            }
            _ => None,
        }
    }

    /// A VP9 keyframe whose size completes a waiting configuration, or differs from the one in
    /// use: the configuration with that size, then the frame. `None` when neither.
    fn vp9_keyframe(&mut self, keyframe: bool, dts: MediaTime, data: &Bytes) -> Option<Outcome> {
        if !keyframe {
            return None;
        }
        let (width, height) = media::vp9::keyframe_size(data)?;
        let mut config = match self.vp9_pending.take() {
            Some(pending) => pending,
            None => {
                let current = self.video.as_ref().filter(|c| c.codec == VideoCodec::Vp9)?;
                if (current.width, current.height) == (width, height) {
                    return None;
                }
                current.clone()
            }
        };
        config.width = width;
        config.height = height;
        self.video = Some(config.clone());
        Some(Outcome::Frames(vec![
            MediaFrame::VideoConfig(config),
            MediaFrame::Video(VideoFrame {
                dts,
                pts: dts,
                keyframe,
                data: data.clone(),
            }),
        ]))
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
                if !self
                    .audio
                    .as_ref()
                    .is_some_and(|c| c.codec == AudioCodec::Aac)
                {
                    return Ok(Outcome::WaitingForConfig(Track::Audio));
                }
                if data.is_empty() {
                    return Ok(Outcome::Ignored(Ignored::EmptyFrame));
                }
                Ok(Outcome::Frame(MediaFrame::Audio(AudioFrame { pts, data })))
            }
            AudioTag::Mp3Frame {
                flag_rate,
                flag_channels,
                data,
            } => {
                if data.is_empty() {
                    return Ok(Outcome::Ignored(Ignored::EmptyFrame));
                }
                let current = self
                    .audio
                    .as_ref()
                    .filter(|c| c.codec == AudioCodec::Mp3)
                    .map(|c| (c.sample_rate, c.channels));
                let (sample_rate, channels) = match (mp3_header(&data), current) {
                    (Some(h), _) => h,
                    (None, Some(c)) => c,
                    (None, None) => (flag_rate, flag_channels),
                };
                if current == Some((sample_rate, channels)) {
                    return Ok(Outcome::Frame(MediaFrame::Audio(AudioFrame { pts, data })));
                }
                // A new or changed MP3 configuration. One outcome per tag: this tag's frame
                // gives way to the configuration (one MPEG audio frame, about 26 ms, at the
                // start of the stream or at the change).
                let config = AudioConfig {
                    codec: AudioCodec::Mp3,
                    record: Bytes::new(),
                    sample_rate,
                    channels,
                    codec_string: "mp3".to_owned(),
                };
                self.audio = Some(config.clone());
                Ok(Outcome::Frame(MediaFrame::AudioConfig(config)))
            }
            AudioTag::Ignored(why) => Ok(Outcome::Ignored(why)),
            AudioTag::Unsupported(what) => Ok(Outcome::Unsupported(what)),
        }
    }
}

/// The configuration of a `codec` sequence header (H.264, HEVC or AV1; another codec is read
/// as H.264's).
fn sequence_header(codec: VideoCodec, record: Bytes) -> Result<VideoConfig, Error> {
    match codec {
        VideoCodec::Hevc => media::hevc::video_config(record).map_err(Error::HevcSequenceHeader),
        VideoCodec::Av1 => media::av1::video_config(record).map_err(Error::Av1SequenceHeader),
        _ => media::h264::video_config(record).map_err(Error::AvcSequenceHeader),
    }
}

/// A coded frame of `config`'s codec at `dts`; `None` when it is empty (a keep-alive). H.264 and
/// HEVC NAL units are checked here; AV1 OBUs and VP9 frames by their parsers.
fn coded_frame(
    config: &VideoConfig,
    keyframe: bool,
    dts: MediaTime,
    cts: i32,
    data: Bytes,
) -> Result<Option<VideoFrame>, Error> {
    if data.is_empty() {
        return Ok(None);
    }
    if matches!(config.codec, VideoCodec::H264 | VideoCodec::Hevc) {
        for nal in media::h264::length_prefixed_nal_units(&data, config.nal_length_size) {
            nal.map_err(Error::AvcFrame)?;
        }
    }
    Ok(Some(VideoFrame {
        dts,
        pts: dts + MediaTime::from_millis(cts.into()),
        keyframe,
        data,
    }))
}

/// The sample rate and channel count in the 4-byte MPEG audio frame header at the start of
/// `data`, if there is a valid one (MPEG-1, -2 or -2.5; any layer).
pub(crate) fn mp3_header(data: &[u8]) -> Option<(u32, u8)> {
    let [b0, b1, b2, b3, ..] = *data else {
        return None;
    };
    // 11-bit frame sync.
    if b0 != 0xff || b1 & 0xe0 != 0xe0 {
        return None;
    }
    let version = (b1 >> 3) & 3; // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1.
    let layer = (b1 >> 1) & 3; // 0: reserved.
    let bitrate = b2 >> 4; // 15: invalid.
    let rate_index = usize::from((b2 >> 2) & 3); // 3: reserved.
    if version == 1 || layer == 0 || bitrate == 15 || rate_index == 3 {
        return None;
    }
    let base = [44_100, 48_000, 32_000][rate_index];
    let sample_rate = match version {
        3 => base,
        2 => base / 2,
        _ => base / 4,
    };
    // Channel mode 3 is single channel; stereo, joint stereo and dual channel are two.
    let channels = if b3 >> 6 == 3 { 1 } else { 2 };
    Some((sample_rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp9_configuration_is_handed_on_with_the_first_keyframe_and_its_size() {
        let mut d = Demuxer::new();
        let vpcc: &[u8] = &[1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0];
        let start = Bytes::from([&[0x90][..], b"vp09", vpcc].concat());
        assert_eq!(
            d.push_video(0, start).unwrap(),
            Outcome::Ignored(Ignored::PendingConfig)
        );
        // An inter frame first (a publisher that joined late): held back.
        let inter = Bytes::from([&[0xa1][..], b"vp09", &[0x86, 0, 0]].concat());
        assert_eq!(
            d.push_video(33, inter).unwrap(),
            Outcome::WaitingForConfig(Track::Video)
        );
        let key: &[u8] = &[
            0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xf0, 0x16, 0x76, 0x06, 0x38,
        ];
        let keyframe = Bytes::from([&[0x91][..], b"vp09", key].concat());
        match d.push_video(66, keyframe.clone()).unwrap() {
            Outcome::Frames(frames) => match &frames[..] {
                [MediaFrame::VideoConfig(c), MediaFrame::Video(v)] => {
                    assert_eq!((c.codec, c.width, c.height), (VideoCodec::Vp9, 640, 360));
                    assert_eq!(c.codec_string, "vp09.00.21.08");
                    assert!(v.keyframe && v.data[..] == key[..]);
                    assert_eq!(v.dts, MediaTime::from_millis(66));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // The next keyframe of the same size is a frame like any other.
        assert!(matches!(
            d.push_video(2066, keyframe).unwrap(),
            Outcome::Frame(MediaFrame::Video(_))
        ));
    }

    /// An E-RTMP v2 multitrack message with one AVC track: `frame_type` 1 (key) or 2, and
    /// packet type 0 (SequenceStart) or 1 (CodedFrames, after a zero composition offset).
    fn one_track(frame_type: u8, packet_type: u8, id: u8, payload: &[u8]) -> Bytes {
        let mut b = vec![0x80 | (frame_type << 4) | 6, packet_type];
        b.extend_from_slice(b"avc1");
        b.push(id);
        if packet_type == 1 {
            b.extend_from_slice(&[0, 0, 0]);
        }
        b.extend_from_slice(payload);
        Bytes::from(b)
    }

    const IDR: &[u8] = &[0, 0, 0, 3, 0x65, 0x88, 0x84];

    #[test]
    fn served_tracks_are_handed_on_with_their_ids() {
        let record = crate::cases::AVC_RECORD;
        let mut d = Demuxer::new();
        // Not served: another track is ignored, as before.
        assert_eq!(
            d.push_video(0, one_track(1, 0, 1, record)).unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
        d.serve_tracks(2);
        // A frame before its track's configuration gives nothing.
        assert_eq!(
            d.push_video(0, one_track(1, 1, 1, IDR)).unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
        match d.push_video(0, one_track(1, 0, 1, record)).unwrap() {
            Outcome::Frame(MediaFrame::TrackConfig(1, c)) => {
                assert_eq!((c.codec, c.width, c.height), (VideoCodec::H264, 640, 360));
            }
            other => panic!("{other:?}"),
        }
        // The same configuration again gives nothing; track 0 has none yet.
        assert_eq!(
            d.push_video(0, one_track(1, 0, 1, record)).unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
        match d.push_video(40, one_track(1, 1, 1, IDR)).unwrap() {
            Outcome::Frame(MediaFrame::TrackVideo(1, v)) => {
                assert!(v.keyframe);
                assert_eq!(v.dts, MediaTime::from_millis(40));
                assert_eq!(&v.data[..], IDR);
            }
            other => panic!("{other:?}"),
        }
        // Track 3 is past the served ones; a damaged frame loses only itself.
        assert_eq!(
            d.push_video(40, one_track(1, 0, 3, record)).unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
        assert_eq!(
            d.push_video(40, one_track(1, 1, 1, &[0, 0, 0, 9, 0x65]))
                .unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
        // Track 0's frame and track 1's in one message: both, track 0 first.
        d.push_video(0, one_track(1, 0, 0, record)).unwrap();
        let mut both = vec![0x96, 0x10];
        both.extend_from_slice(b"avc1");
        for id in [1u8, 0] {
            both.push(id);
            both.extend_from_slice(&[0, 0, (3 + IDR.len()) as u8, 0, 0, 0]);
            both.extend_from_slice(IDR);
        }
        both[1] = 0x11;
        match d.push_video(80, Bytes::from(both)).unwrap() {
            Outcome::Frames(frames) => match &frames[..] {
                [MediaFrame::Video(main), MediaFrame::TrackVideo(1, other)] => {
                    assert!(main.keyframe && other.keyframe);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // Serving fewer tracks forgets the others.
        d.serve_tracks(0);
        assert_eq!(
            d.push_video(120, one_track(1, 1, 1, IDR)).unwrap(),
            Outcome::Ignored(Ignored::OtherTrack)
        );
    }

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
    fn mp3_headers() {
        // MPEG-1 Layer III, 128 kb/s, 44.1 kHz, joint stereo.
        assert_eq!(mp3_header(&[0xff, 0xfb, 0x90, 0x64]), Some((44_100, 2)));
        // MPEG-1 Layer III, 48 kHz, mono.
        assert_eq!(mp3_header(&[0xff, 0xfb, 0x94, 0xc4]), Some((48_000, 1)));
        // MPEG-2 Layer III, 24 kHz, stereo.
        assert_eq!(mp3_header(&[0xff, 0xf3, 0x84, 0x00]), Some((24_000, 2)));
        // MPEG-2.5 Layer III, 8 kHz, mono.
        assert_eq!(mp3_header(&[0xff, 0xe3, 0x28, 0xc0]), Some((8_000, 1)));
        // No sync, reserved version, reserved rate, too short.
        assert_eq!(mp3_header(&[0x00, 0xfb, 0x90, 0x64]), None);
        assert_eq!(mp3_header(&[0xff, 0xeb, 0x90, 0x64]), None);
        assert_eq!(mp3_header(&[0xff, 0xfb, 0x9c, 0x64]), None);
        assert_eq!(mp3_header(&[0xff, 0xfb, 0x90]), None);
    }

    #[test]
    fn small_backward_steps_stay_backward() {
        let mut t = TimestampExtender::new();
        assert_eq!(t.extend(1000), 1000);
        assert_eq!(t.extend(990), 990);
        assert_eq!(t.extend(0), 0);
    }
}
