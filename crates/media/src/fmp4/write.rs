//! The boxes: init segments and fragments.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};

/// Ticks per second of a video track.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// A track of an init segment. Tracks are numbered from 1 in the order given.
#[derive(Debug, Clone, Copy)]
pub enum Track<'a> {
    /// Video, on [`VIDEO_TIMESCALE`].
    Video(&'a VideoConfig),
    /// Audio, on a timescale of its sample rate.
    Audio(&'a AudioConfig),
}

impl Track<'_> {
    /// Ticks per second of its media timeline.
    pub fn timescale(&self) -> u32 {
        match self {
            Track::Video(_) => VIDEO_TIMESCALE,
            Track::Audio(a) => a.sample_rate.max(1),
        }
    }
}

/// What the writer cannot write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An init segment needs at least one track.
    #[error("an init segment needs a track")]
    NoTracks,
    /// A codec configuration the sample entry needs is missing.
    #[error("the {0} track has no decoder configuration record")]
    NoRecord(&'static str),
    /// The samples of a run and their bytes do not agree.
    #[error("track {track}: {samples} samples, {data} payloads")]
    RunMismatch {
        /// The run's track.
        track: u32,
        /// Samples described.
        samples: usize,
        /// Payloads given.
        data: usize,
    },
    /// A fragment larger than 4 GiB.
    #[error("a fragment over 4 GiB")]
    TooLarge,
}

/// One sample of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Until the next sample, in the track's ticks.
    pub duration: u32,
    /// Presentation minus decode time, in the track's ticks.
    pub composition_offset: i32,
    /// A sync sample (a keyframe; every audio sample).
    pub sync: bool,
}

/// The samples of one track in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The track (1-based, as in the init segment).
    pub track: u32,
    /// Decode time of the first sample, in the track's ticks.
    pub base_decode_time: u64,
    /// The samples, in decode order.
    pub samples: &'a [Sample],
    /// Each sample's bytes (video: length-prefixed NAL units, as MP4 stores them).
    pub data: &'a [Bytes],
}

/// Sample flags (14496-12 8.8.3.1): depends on no other sample.
const SYNC: u32 = 0x0200_0000;
/// Depends on others, and is not a sync sample.
const NON_SYNC: u32 = 0x0101_0000;

/// Writes a box: its size and type, then what `body` writes.
fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box: [`boxed`] with a version and flags.
fn full(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

/// The unity matrix of `mvhd` and `tkhd`.
fn matrix(out: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.put_u32(v);
    }
}

/// The init segment of `tracks`.
pub fn init_segment(tracks: &[Track<'_>]) -> Result<Bytes, Error> {
    if tracks.is_empty() {
        return Err(Error::NoTracks);
    }
    for t in tracks {
        match t {
            Track::Video(v) if v.record.is_empty() => return Err(Error::NoRecord("video")),
            Track::Audio(a) if a.codec == AudioCodec::Aac && a.record.is_empty() => {
                return Err(Error::NoRecord("audio"))
            }
            _ => {}
        }
    }
    let mut out = BytesMut::with_capacity(1024);
    boxed(&mut out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            out.put_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |out| {
        full(out, b"mvhd", 0, 0, |out| {
            out.put_u32(0); // creation time
            out.put_u32(0); // modification time
            out.put_u32(1000); // timescale
            out.put_u32(0); // duration: fragmented
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.put_bytes(0, 10);
            matrix(out);
            out.put_bytes(0, 24);
            out.put_u32(tracks.len() as u32 + 1); // next track id
        });
        for (i, track) in tracks.iter().enumerate() {
            trak(out, i as u32 + 1, track);
        }
        boxed(out, b"mvex", |out| {
            for i in 0..tracks.len() {
                full(out, b"trex", 0, 0, |out| {
                    out.put_u32(i as u32 + 1);
                    out.put_u32(1); // sample description index
                    out.put_u32(0); // default duration
                    out.put_u32(0); // default size
                    out.put_u32(0); // default flags
                });
            }
        });
    });
    Ok(out.freeze())
}

fn trak(out: &mut BytesMut, id: u32, track: &Track<'_>) {
    let (width, height, volume) = match track {
        Track::Video(v) => (v.width, v.height, 0),
        Track::Audio(_) => (0, 0, 0x0100),
    };
    boxed(out, b"trak", |out| {
        // Enabled, in the movie.
        full(out, b"tkhd", 0, 0x3, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(id);
            out.put_u32(0);
            out.put_u32(0); // duration
            out.put_bytes(0, 8);
            out.put_u16(0); // layer
            out.put_u16(0); // alternate group
            out.put_u16(volume);
            out.put_u16(0);
            matrix(out);
            out.put_u32(width << 16);
            out.put_u32(height << 16);
        });
        boxed(out, b"mdia", |out| {
            full(out, b"mdhd", 0, 0, |out| {
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(track.timescale());
                out.put_u32(0);
                out.put_u16(0x55c4); // "und"
                out.put_u16(0);
            });
            let (handler, name): (&[u8; 4], &[u8]) = match track {
                Track::Video(_) => (b"vide", b"VideoHandler\0"),
                Track::Audio(_) => (b"soun", b"SoundHandler\0"),
            };
            full(out, b"hdlr", 0, 0, |out| {
                out.put_u32(0);
                out.put_slice(handler);
                out.put_bytes(0, 12);
                out.put_slice(name);
            });
            boxed(out, b"minf", |out| {
                match track {
                    Track::Video(_) => full(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8)),
                    Track::Audio(_) => full(out, b"smhd", 0, 0, |out| out.put_u32(0)),
                }
                boxed(out, b"dinf", |out| {
                    full(out, b"dref", 0, 0, |out| {
                        out.put_u32(1);
                        full(out, b"url ", 0, 1, |_| {});
                    });
                });
                boxed(out, b"stbl", |out| {
                    full(out, b"stsd", 0, 0, |out| {
                        out.put_u32(1);
                        match track {
                            Track::Video(v) => video_entry(out, v),
                            Track::Audio(a) => audio_entry(out, a),
                        }
                    });
                    for kind in [b"stts", b"stsc", b"stco"] {
                        full(out, kind, 0, 0, |out| out.put_u32(0));
                    }
                    full(out, b"stsz", 0, 0, |out| {
                        out.put_u32(0);
                        out.put_u32(0);
                    });
                });
            });
        });
    });
}

fn video_entry(out: &mut BytesMut, v: &VideoConfig) {
    let (entry, config): (&[u8; 4], &[u8; 4]) = match v.codec {
        VideoCodec::H264 => (b"avc1", b"avcC"),
        VideoCodec::Hevc => (b"hvc1", b"hvcC"),
        VideoCodec::Av1 => (b"av01", b"av1C"),
        VideoCodec::Vp9 => (b"vp09", b"vpcC"),
    };
    boxed(out, entry, |out| {
        out.put_bytes(0, 6);
        out.put_u16(1); // data reference index
        out.put_bytes(0, 16);
        out.put_u16(u16::try_from(v.width).unwrap_or(u16::MAX));
        out.put_u16(u16::try_from(v.height).unwrap_or(u16::MAX));
        out.put_u32(0x0048_0000); // 72 dpi
        out.put_u32(0x0048_0000);
        out.put_u32(0);
        out.put_u16(1); // frame count
        out.put_bytes(0, 32); // compressor name
        out.put_u16(0x0018); // depth
        out.put_i16(-1);
        if v.codec == VideoCodec::Vp9 {
            // vpcC is a full box; the record carried over E-RTMP is its body.
            full(out, config, 1, 0, |out| out.put_slice(&v.record));
        } else {
            boxed(out, config, |out| out.put_slice(&v.record));
        }
    });
}

fn audio_entry(out: &mut BytesMut, a: &AudioConfig) {
    boxed(out, b"mp4a", |out| {
        out.put_bytes(0, 6);
        out.put_u16(1); // data reference index
        out.put_bytes(0, 8);
        out.put_u16(u16::from(a.channels.max(1)));
        out.put_u16(16); // sample size
        out.put_u32(0);
        // 16.16 fixed point; rates above 65535 Hz do not fit (the timescale says the rate).
        out.put_u32(a.sample_rate.min(0xffff) << 16);
        full(out, b"esds", 0, 0, |out| es_descriptor(out, a));
    });
}

/// An MPEG-4 descriptor: its tag, its length (one to four 7-bit bytes) and `body`.
fn descriptor(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    let len = body.len();
    let mut bytes = Vec::with_capacity(4);
    let mut rest = len;
    loop {
        bytes.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, b) in bytes.iter().rev().enumerate() {
        let more = if i + 1 < bytes.len() { 0x80 } else { 0 };
        out.put_u8(b | more);
    }
    out.put_slice(body);
}

fn es_descriptor(out: &mut BytesMut, a: &AudioConfig) {
    // ISO/IEC 14496-1 object types: AAC 0x40, MPEG-1 audio (MP3) 0x6B.
    let object_type = match a.codec {
        AudioCodec::Aac => 0x40,
        AudioCodec::Mp3 => 0x6b,
    };
    let mut config = BytesMut::new();
    config.put_u8(object_type);
    config.put_u8(0x15); // audio stream, upstream 0, reserved 1
    config.put_bytes(0, 3); // buffer size
    config.put_u32(0); // max bitrate
    config.put_u32(0); // average bitrate
    if !a.record.is_empty() {
        descriptor(&mut config, 0x05, &a.record);
    }
    let mut es = BytesMut::new();
    es.put_u16(0); // ES id
    es.put_u8(0); // flags
    descriptor(&mut es, 0x04, &config);
    descriptor(&mut es, 0x06, &[0x02]); // SL config: predefined for MP4
    descriptor(out, 0x03, &es);
}

/// A fragment (`moof` + `mdat`) numbered `sequence` (from 1, one more each fragment), with
/// `runs`' samples.
pub fn fragment(sequence: u32, runs: &[Run<'_>]) -> Result<Bytes, Error> {
    for run in runs {
        if run.samples.len() != run.data.len() {
            return Err(Error::RunMismatch {
                track: run.track,
                samples: run.samples.len(),
                data: run.data.len(),
            });
        }
    }
    let payload: usize = runs
        .iter()
        .flat_map(|r| r.data.iter())
        .map(Bytes::len)
        .sum();
    let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut out = BytesMut::with_capacity(payload + 64 + 80 * runs.len() + 16 * samples);
    // Where each trun's data offset goes, to be filled in once the moof's size is known.
    let mut offsets = Vec::with_capacity(runs.len());
    boxed(&mut out, b"moof", |out| {
        full(out, b"mfhd", 0, 0, |out| out.put_u32(sequence));
        for run in runs {
            boxed(out, b"traf", |out| {
                // default-base-is-moof: data offsets count from the moof's first byte.
                full(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(run.track));
                full(out, b"tfdt", 1, 0, |out| out.put_u64(run.base_decode_time));
                // Data offset, and per sample: duration, size, flags, composition offset.
                full(
                    out,
                    b"trun",
                    1,
                    0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800,
                    |out| {
                        out.put_u32(run.samples.len() as u32);
                        offsets.push(out.len());
                        out.put_i32(0);
                        for (s, data) in run.samples.iter().zip(run.data) {
                            out.put_u32(s.duration);
                            out.put_u32(data.len() as u32);
                            out.put_u32(if s.sync { SYNC } else { NON_SYNC });
                            out.put_i32(s.composition_offset);
                        }
                    },
                );
            });
        }
    });
    let moof = out.len();
    let mut at = moof + 8;
    for (run, field) in runs.iter().zip(offsets) {
        let offset = i32::try_from(at).map_err(|_| Error::TooLarge)?;
        out[field..field + 4].copy_from_slice(&offset.to_be_bytes());
        at += run.data.iter().map(Bytes::len).sum::<usize>();
    }
    let mdat = u32::try_from(8 + payload).map_err(|_| Error::TooLarge)?;
    out.put_u32(mdat);
    out.put_slice(b"mdat");
    for data in runs.iter().flat_map(|r| r.data.iter()) {
        out.put_slice(data);
    }
    Ok(out.freeze())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The boxes at the top of `data`: (type, size).
    fn top_boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned(),
                size,
            ));
            assert!(size >= 8, "box of size {size}");
            at += size;
        }
        assert_eq!(at, data.len(), "boxes do not tile the data");
        out
    }

    /// An H.264 configuration for tests.
    pub(crate) fn video() -> VideoConfig {
        VideoConfig {
            codec: VideoCodec::H264,
            record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            width: 320,
            height: 240,
            frame_rate: Some(30.0),
            codec_string: "avc1.64001f".into(),
            nal_length_size: 4,
        }
    }

    /// An AAC-LC configuration (48 kHz, stereo) for tests.
    pub(crate) fn audio() -> AudioConfig {
        AudioConfig {
            codec: AudioCodec::Aac,
            record: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
            codec_string: "mp4a.40.2".into(),
        }
    }

    #[test]
    fn an_init_segment_is_ftyp_and_moov_with_a_trak_and_trex_per_track() {
        let v = video();
        let a = audio();
        let init = init_segment(&[Track::Video(&v), Track::Audio(&a)]).unwrap();
        let top = top_boxes(&init);
        assert_eq!(
            top.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov"]
        );
        let text = String::from_utf8_lossy(&init);
        for kind in ["trak", "avc1", "avcC", "mp4a", "esds", "mvex", "trex"] {
            assert!(text.contains(kind), "{kind} missing");
        }
        assert_eq!(text.matches("trak").count(), 2);
        assert_eq!(text.matches("trex").count(), 2);
        assert_eq!(init_segment(&[]), Err(Error::NoTracks));
        let bare = VideoConfig {
            record: Bytes::new(),
            ..v
        };
        assert_eq!(
            init_segment(&[Track::Video(&bare)]),
            Err(Error::NoRecord("video"))
        );
    }

    #[test]
    fn a_fragment_points_each_run_at_its_bytes_in_the_mdat() {
        let video = [
            Bytes::from_static(b"key-frame"),
            Bytes::from_static(b"delta"),
        ];
        let audio = [Bytes::from_static(b"aac1"), Bytes::from_static(b"aac2!")];
        let vs = [
            Sample {
                duration: 3000,
                composition_offset: 3000,
                sync: true,
            },
            Sample {
                duration: 3000,
                composition_offset: -1500,
                sync: false,
            },
        ];
        let audio_samples = [Sample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
        }; 2];
        let frag = fragment(
            7,
            &[
                Run {
                    track: 1,
                    base_decode_time: 90_000,
                    samples: &vs,
                    data: &video,
                },
                Run {
                    track: 2,
                    base_decode_time: 48_000,
                    samples: &audio_samples,
                    data: &audio,
                },
            ],
        )
        .unwrap();
        let top = top_boxes(&frag);
        assert_eq!(top[0].0, "moof");
        assert_eq!(top[1], ("mdat".to_owned(), 8 + 9 + 5 + 4 + 5));
        // Each trun's data offset (from the moof's start) lands on its run's first bytes.
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(i) = frag[at..].windows(4).position(|w| w == b"trun") {
            let trun = at + i;
            // version+flags (4), sample count (4), then the data offset.
            let field = trun + 4 + 4 + 4;
            let offset = i32::from_be_bytes(frag[field..field + 4].try_into().unwrap());
            found.push(offset as usize);
            at = trun + 4;
        }
        assert_eq!(found.len(), 2);
        assert_eq!(&frag[found[0]..found[0] + 9], b"key-frame");
        assert_eq!(&frag[found[1]..found[1] + 4], b"aac1");
        assert!(matches!(
            fragment(
                1,
                &[Run {
                    track: 1,
                    base_decode_time: 0,
                    samples: &vs,
                    data: &video[..1],
                }]
            ),
            Err(Error::RunMismatch { .. })
        ));
    }

    #[test]
    fn descriptor_lengths_take_more_bytes_past_127() {
        let mut out = BytesMut::new();
        descriptor(&mut out, 5, &[0; 200]);
        assert_eq!(&out[..3], &[5, 0x81, 0x48]);
        assert_eq!(out.len(), 3 + 200);
    }
}
