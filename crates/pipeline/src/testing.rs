//! Test and benchmark input made without a network: GStreamer's test sources, encoded to H.264
//! and AAC and returned as the [`MediaFrame`]s a publisher would produce.

use gst::prelude::*;
use media::{AudioConfig, AudioFrame, MediaFrame, MediaTime, VideoConfig, VideoFrame};

use crate::elements::{launch, set_state};
use crate::error::Error;
use crate::init::init;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second (integer).
    pub fps: u32,
    /// Length in seconds.
    pub seconds: u32,
    /// Frames between keyframes.
    pub keyframe_interval: u32,
    /// Source bitrate in kbit/s.
    pub kbps: u32,
    /// B-frames between references (0 gives a zero-latency stream without reordering).
    pub bframes: u32,
    /// Generate an AAC track too.
    pub audio: bool,
    /// Added to every timestamp, to mimic publishers whose clocks do not start at zero.
    pub time_offset: MediaTime,
}

impl Default for Source {
    fn default() -> Self {
        Source {
            width: 640,
            height: 360,
            fps: 30,
            seconds: 7,
            keyframe_interval: 30,
            kbps: 1500,
            bframes: 0,
            audio: true,
            time_offset: MediaTime::ZERO,
        }
    }
}

/// Generated input: configurations plus frames sorted by decode time (audio and video
/// interleaved as a publisher would send them).
#[derive(Debug, Clone)]
pub struct Generated {
    /// The video configuration (from the encoder's `avcC`).
    pub video: VideoConfig,
    /// The audio configuration (from the encoder's AudioSpecificConfig), if audio was asked for.
    pub audio: Option<AudioConfig>,
    /// Access units, interleaved by time.
    pub frames: Vec<MediaFrame>,
}

/// One encoded buffer with its times converted to running time (x264enc's output segment
/// carries a 1000-hour offset that only running time removes).
pub(crate) struct Encoded {
    pub(crate) pts: i64,
    pub(crate) dts: i64,
    pub(crate) keyframe: bool,
    pub(crate) data: bytes::Bytes,
}

pub(crate) fn run_to_samples(desc: &str) -> Result<(Option<gst::Caps>, Vec<Encoded>), Error> {
    let pipeline = launch(desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Launch {
            description: desc.to_owned(),
            reason: "it is a single element, not a pipeline".into(),
        })?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| Error::NoSuchElement {
            bin: desc.to_owned(),
            element: "out (an appsink)".into(),
        })?;
    set_state(pipeline.upcast_ref(), gst::State::Playing)?;
    let mut caps = None;
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let rt = |t: Option<gst::ClockTime>| -> i64 {
            match (t, &segment) {
                (Some(t), Some(s)) => match s.to_running_time_full(t) {
                    Some(gst::Signed::Positive(v)) => v.nseconds() as i64,
                    Some(gst::Signed::Negative(v)) => -(v.nseconds() as i64),
                    None => 0,
                },
                (Some(t), None) => t.nseconds() as i64,
                _ => 0,
            }
        };
        if let Some(b) = sample.buffer() {
            out.push(Encoded {
                pts: rt(b.pts()),
                dts: rt(b.dts().or(b.pts())),
                keyframe: !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                data: copy(b, desc)?,
            });
        }
    }
    let error = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(Error::Element {
                    element: e
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    message: e.error().to_string(),
                }),
                _ => None,
            })
    });
    set_state(pipeline.upcast_ref(), gst::State::Null)?;
    if let Some(e) = error {
        return Err(e);
    }
    Ok((caps, out))
}

/// The `codec_data` of the caps that the end of `desc` produced.
fn codec_data(caps: &Option<gst::Caps>, desc: &str) -> Result<bytes::Bytes, Error> {
    let buf = caps
        .as_ref()
        .and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .ok_or_else(|| Error::MissingCaps {
            element: desc.to_owned(),
            field: "codec_data".into(),
        })?;
    copy(&buf, desc)
}

/// The bytes of a buffer that `desc` produced.
fn copy(buf: &gst::BufferRef, desc: &str) -> Result<bytes::Bytes, Error> {
    let map = buf.map_readable().map_err(|_| Error::UnreadableBuffer {
        element: desc.to_owned(),
    })?;
    Ok(bytes::Bytes::copy_from_slice(map.as_slice()))
}

/// Encodes test patterns and returns them as frames.
pub fn generate(src: &Source) -> Result<Generated, Error> {
    init()?;
    let frames_n = src.fps * src.seconds;
    let video_desc = format!(
        "videotestsrc num-buffers={frames_n} pattern=ball ! \
         video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! \
         x264enc speed-preset={preset} {tune} bitrate={kbps} key-int-max={ki} bframes={bf} \
           option-string=scenecut=0 ! \
         h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false",
        w = src.width,
        h = src.height,
        fps = src.fps,
        kbps = src.kbps,
        ki = src.keyframe_interval,
        bf = src.bframes,
        // ultrafast and zerolatency both turn B-frames off.
        preset = if src.bframes > 0 {
            "veryfast"
        } else {
            "ultrafast"
        },
        tune = if src.bframes > 0 {
            ""
        } else {
            "tune=zerolatency"
        },
    );
    let (caps, buffers) = run_to_samples(&video_desc)?;
    let video = media::h264::video_config(codec_data(&caps, &video_desc)?)
        .map_err(|e| Error::InvalidCodecConfig(e.to_string()))?;
    let off = src.time_offset.as_nanos();
    let mut frames = Vec::new();
    for b in buffers {
        frames.push(MediaFrame::Video(VideoFrame {
            dts: MediaTime::from_nanos(b.dts + off),
            pts: MediaTime::from_nanos(b.pts + off),
            keyframe: b.keyframe,
            data: b.data,
        }));
    }

    let mut audio = None;
    if src.audio {
        let encoder = ["avenc_aac", "voaacenc", "fdkaacenc"]
            .into_iter()
            .find(|e| gst::ElementFactory::find(e).is_some())
            .ok_or_else(|| Error::MissingElement("avenc_aac".into()))?;
        let n = (u64::from(src.seconds) * 48_000).div_ceil(1024);
        let audio_desc = format!(
            "audiotestsrc num-buffers={n} samplesperbuffer=1024 wave=sine ! \
             audio/x-raw,rate=48000,channels=2 ! audioconvert ! {encoder} bitrate=128000 ! \
             aacparse ! audio/mpeg,mpegversion=4,stream-format=raw ! appsink name=out sync=false"
        );
        let (caps, buffers) = run_to_samples(&audio_desc)?;
        let cfg = media::aac::audio_config(codec_data(&caps, &audio_desc)?)
            .map_err(|e| Error::InvalidCodecConfig(e.to_string()))?;
        for b in buffers {
            frames.push(MediaFrame::Audio(AudioFrame {
                pts: MediaTime::from_nanos(b.pts + off),
                data: b.data,
            }));
        }
        audio = Some(cfg);
    }
    // Stable sort: equal times keep video before audio.
    frames.sort_by_key(|f| f.dts().unwrap_or_default());
    Ok(Generated {
        video,
        audio,
        frames,
    })
}

/// Encodes `src.seconds` of a sine tone to MP3 (44.1 kHz stereo, 128 kb/s, lamemp3enc) and
/// returns its configuration, as an FLV demuxer would report it, and its frames, with
/// `src.time_offset` added. Merge them into [`Generated::frames`] to publish MP3 audio.
pub fn generate_mp3(src: &Source) -> Result<(AudioConfig, Vec<MediaFrame>), Error> {
    init()?;
    let n = (u64::from(src.seconds) * 44_100).div_ceil(1152);
    let desc = format!(
        "audiotestsrc num-buffers={n} samplesperbuffer=1152 wave=sine ! \
         audio/x-raw,rate=44100,channels=2 ! audioconvert ! \
         lamemp3enc target=bitrate bitrate=128 cbr=true ! mpegaudioparse ! \
         audio/mpeg,mpegversion=1,layer=3 ! appsink name=out sync=false"
    );
    let (caps, buffers) = run_to_samples(&desc)?;
    let s = caps
        .as_ref()
        .and_then(|c| c.structure(0))
        .ok_or_else(|| Error::MissingCaps {
            element: desc.clone(),
            field: "caps".into(),
        })?;
    let field = |name: &str| {
        s.get::<i32>(name).map_err(|_| Error::MissingCaps {
            element: desc.clone(),
            field: name.to_owned(),
        })
    };
    let cfg = AudioConfig {
        codec: media::AudioCodec::Mp3,
        record: bytes::Bytes::new(),
        sample_rate: field("rate")? as u32,
        channels: field("channels")? as u8,
        codec_string: "mp3".into(),
    };
    let off = src.time_offset.as_nanos();
    let frames = buffers
        .into_iter()
        .map(|b| {
            MediaFrame::Audio(AudioFrame {
                pts: MediaTime::from_nanos(b.pts + off),
                data: b.data,
            })
        })
        .collect();
    Ok((cfg, frames))
}

/// Threads of this process, from `/proc/self/status` (Linux); 0 elsewhere.
pub fn thread_count() -> u64 {
    proc_status_field("Threads:")
}

/// Resident set size of this process in KiB, from `/proc/self/status` (Linux); 0 elsewhere.
pub fn rss_kib() -> u64 {
    proc_status_field("VmRSS:")
}

fn proc_status_field(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used, in seconds (0 where it cannot be read).
pub fn cpu_seconds() -> f64 {
    telemetry::process::cpu_seconds().unwrap_or(0.0)
}
