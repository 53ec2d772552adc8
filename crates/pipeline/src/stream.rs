//! One live stream's GStreamer pipeline: build, feed, watch, tear down.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use media::cmaf::ChunkKind;
use media::{AudioCodec, AudioConfig, MediaFrame, VideoCodec, VideoConfig};

use crate::accel::{
    apply_properties, encoder_properties, set_cuda_device, Backend, DecoderChoice, EncoderChoice,
    EncoderKind, EncoderSettings, FailurePolicy, Selection, SessionBudget, SessionLease, Stage,
};
use crate::chunk::{Assembler, OutBuffer};
use crate::config::{plan, LadderConfig, RungPlan};
use crate::{init, AcceleratorFault, ChunkSink, Error, Failure, RungInfo};

/// How long `finish` waits for the last segments to flush.
const EOS_TIMEOUT: Duration = Duration::from_secs(5);
/// Raw frames a rung's input queue may hold: enough to keep the encoder busy, no more.
const RUNG_QUEUE_BUFFERS: u32 = 4;
/// A source keyframe this close before a segment boundary still cuts there, so that millisecond
/// timestamp rounding does not double a segment.
const CUT_TOLERANCE_NS: u64 = 50_000_000;
/// Scheduled fragments are never reached: splits are requested explicitly at every cut.
const FRAGMENT_DURATION_NS: u64 = 3_600_000_000_000;
/// Cuts remembered for the encoders' force-key-unit probes.
const CUTS_KEPT: usize = 64;
/// Video arrival times are remembered for the chunks that will hold those frames for this long
/// beyond two segments (an encoder and muxer hold back far less)...
const ARRIVALS_SLACK: Duration = Duration::from_secs(10);
/// ...and never more than this many (a minute at 120 fps).
const ARRIVALS_MAX: usize = 7200;

/// Outcome of [`StreamPipeline::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    /// The frame is in the pipeline's input queue.
    Queued,
    /// The frame was dropped (queue full, waiting for a keyframe, or unusable timestamp) and
    /// counted.
    Dropped,
    /// The pipeline has failed or is finishing; the frame was discarded.
    Closed,
}

/// Counters of one rung.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RungStats {
    /// The rendition's name.
    pub name: String,
    /// Video frames out of the encoder (for passthrough: frames repackaged).
    pub frames: u64,
    /// Bytes handed to the sink.
    pub bytes: u64,
    /// Chunks handed to the sink (init, segment starts and continuations).
    pub chunks: u64,
    /// Segments started.
    pub segments: u64,
    /// End (pts + duration) of the newest chunk, in media time; divide its growth by wall time
    /// for the realtime factor.
    pub media_time: Option<media::MediaTime>,
}

/// A snapshot of a pipeline's counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineStats {
    /// Video frames accepted by `push`.
    pub video_frames_in: u64,
    /// Audio frames accepted by `push`.
    pub audio_frames_in: u64,
    /// Video frames dropped at the input (queue full, or waiting for a keyframe after a drop).
    pub video_dropped: u64,
    /// Audio frames dropped at the input.
    pub audio_dropped: u64,
    /// Video frames waiting in the input queue now.
    pub video_queued: u64,
    /// Audio frames waiting in the input queue now.
    pub audio_queued: u64,
    /// Per rung, in rung order.
    pub rungs: Vec<RungStats>,
}

/// How a pipeline is built beyond its ladder: the element chain and hardware admission.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The chain (from [`crate::accel::select`]); the default is all software.
    pub selection: Option<Selection>,
    /// Hardware encoder sessions, taken per hardware-encoded rung for the pipeline's life.
    pub sessions: Option<Arc<SessionBudget>>,
    /// When the session budget is spent: encode the rung with x264 (`Fallback`) or refuse the
    /// stream with [`Error::Accelerator`] (`Fail`).
    pub on_failure: FailurePolicy,
    /// Input timestamp that becomes media time zero: pass a failed pipeline's
    /// [`StreamPipeline::input_offset`] so that its replacement continues its timeline.
    pub input_offset: Option<i64>,
}

/// What one rung's encoder turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RungBackend {
    /// The rendition's name.
    pub name: String,
    /// Encoder factory; `None` for passthrough.
    pub encoder: Option<String>,
    /// Who encodes; `Software` for passthrough (nothing is encoded).
    pub backend: Backend,
    /// Why the rung is in software although the stream's selection had hardware.
    pub fallback: Option<String>,
}

/// The chain a pipeline was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBackends {
    /// The decoder (also when no rung transcodes, as selected).
    pub decoder: DecoderChoice,
    /// Scale and convert.
    pub scale: Backend,
    /// Per rung, in rung order.
    pub rungs: Vec<RungBackend>,
}

#[derive(Default)]
struct RungCounters {
    frames: AtomicU64,
    bytes: AtomicU64,
    chunks: AtomicU64,
    segments: AtomicU64,
    /// ns; negative means none yet.
    media_end: AtomicI64,
}

struct Shared {
    rungs: Vec<RungCounters>,
    video_in: AtomicU64,
    audio_in: AtomicU64,
    video_dropped: AtomicU64,
    audio_dropped: AtomicU64,
    failed: AtomicBool,
    /// Running times (ns) of segment cuts, oldest first.
    cuts: Mutex<VecDeque<u64>>,
    /// (running time in ns, wall-clock arrival at `push`) of recent video frames, in push order.
    arrivals: Mutex<VecDeque<(u64, Instant)>>,
}

impl Shared {
    fn arrived(&self, pts: u64, at: Instant, keep: Duration) {
        if let Ok(mut a) = self.arrivals.lock() {
            while a.len() >= ARRIVALS_MAX
                || a.front()
                    .is_some_and(|(_, t)| at.saturating_duration_since(*t) > keep)
            {
                a.pop_front();
            }
            a.push_back((pts, at));
        }
    }

    /// Arrival times of the video frames presented in `[start, end)` (ns).
    fn arrivals_between(&self, start: u64, end: u64) -> Vec<Instant> {
        self.arrivals
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|(pts, _)| (start..end).contains(pts))
                    .map(|(_, at)| *at)
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct InputState {
    /// Subtracted from every input timestamp, shared by audio and video (ns).
    offset: Option<i64>,
    last_video_dts: u64,
    last_audio_pts: u64,
    video_wait_keyframe: bool,
    video_discont: bool,
    audio_discont: bool,
    last_cut: Option<u64>,
    video_record: bytes::Bytes,
    /// The codec the audio branch was built for, and the caps last set on its appsrc.
    audio_input: Option<(AudioCodec, gst::Caps)>,
    closed: bool,
}

/// One stream's pipeline. Dropping it without [`StreamPipeline::finish`] stops it at once.
pub struct StreamPipeline {
    name: String,
    pipeline: gst::Pipeline,
    video_src: gst_app::AppSrc,
    audio_src: Option<gst_app::AppSrc>,
    muxers: Vec<gst::Element>,
    plan: Vec<RungPlan>,
    shared: Arc<Shared>,
    input: Mutex<InputState>,
    max_queued: u64,
    segment_ns: u64,
    stop: Arc<AtomicBool>,
    bus_thread: Option<JoinHandle<()>>,
    eos_rx: Mutex<mpsc::Receiver<()>>,
    torn_down: bool,
    backends: StreamBackends,
    /// Hardware encoder sessions held until the pipeline is gone.
    _leases: Vec<SessionLease>,
}

fn make(factory: &str, name: &str) -> Result<gst::Element, Error> {
    if gst::ElementFactory::find(factory).is_none() {
        return Err(Error::MissingElement(factory.to_owned()));
    }
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| Error::Pipeline(format!("creating {factory}: {e}")))
}

/// The first of `factories` that is installed, as an element named `name`.
fn make_any(factories: &[&str], name: &str) -> Result<gst::Element, Error> {
    match factories
        .iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
    {
        Some(factory) => make(factory, name),
        None => Err(Error::MissingElement(factories.join(" or "))),
    }
}

/// Bit rate of the AAC that MP3 input is encoded to.
const MP3_TO_AAC_BITRATE: i32 = 128_000;

/// The elements that turn parsed MP3 into AAC-LC at [`MP3_TO_AAC_BITRATE`], in link order:
/// mpegaudioparse, a decoder, audioconvert, audioresample and an encoder.
fn mp3_to_aac() -> Result<Vec<gst::Element>, Error> {
    let parse = make("mpegaudioparse", "audio-mp3-parse")?;
    let decoder = make_any(&["mpg123audiodec", "avdec_mp3"], "audio-mp3-decoder")?;
    let convert = make("audioconvert", "audio-convert")?;
    let resample = make("audioresample", "audio-resample")?;
    let encoder = make_any(&["avenc_aac", "voaacenc"], "audio-aac-encoder")?;
    encoder.set_property("bitrate", MP3_TO_AAC_BITRATE);
    Ok(vec![parse, decoder, convert, resample, encoder])
}

fn link(a: &gst::Element, b: &gst::Element) -> Result<(), Error> {
    a.link(b)
        .map_err(|e| Error::Pipeline(format!("linking {} to {}: {e}", a.name(), b.name())))
}

fn link_chain(elements: &[&gst::Element]) -> Result<(), Error> {
    for pair in elements.windows(2) {
        link(pair[0], pair[1])?;
    }
    Ok(())
}

fn link_pads(src: &gst::Pad, sink: &gst::Pad) -> Result<(), Error> {
    src.link(sink)
        .map(|_| ())
        .map_err(|e| Error::Pipeline(format!("linking {} to {}: {e:?}", src.name(), sink.name())))
}

fn request_pad(element: &gst::Element, template: &str) -> Result<gst::Pad, Error> {
    element.request_pad_simple(template).ok_or_else(|| {
        Error::Pipeline(format!("{} gave no {template} request pad", element.name()))
    })
}

fn video_caps(video: &VideoConfig, record: &bytes::Bytes) -> gst::Caps {
    let mut b = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .field("codec_data", gst::Buffer::from_slice(record.clone()));
    if video.width > 0 && video.height > 0 {
        b = b
            .field("width", video.width as i32)
            .field("height", video.height as i32);
    }
    b.build()
}

fn audio_caps(audio: &AudioConfig, record: &bytes::Bytes) -> gst::Caps {
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

fn new_queue(
    name: &str,
    max_buffers: u32,
    max_time: gst::ClockTime,
) -> Result<gst::Element, Error> {
    let q = make("queue", name)?;
    q.set_property("max-size-buffers", max_buffers);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", max_time.nseconds());
    Ok(q)
}

/// Counts buffers (and buffers in lists) passing `pad`.
fn count_buffers(pad: &gst::Pad, shared: &Arc<Shared>, rung: usize) {
    let shared = Arc::clone(shared);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let n = match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => 1,
                Some(gst::PadProbeData::BufferList(l)) => l.len() as u64,
                _ => 0,
            };
            if let Some(c) = shared.rungs.get(rung) {
                c.frames.fetch_add(n, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// On every frame entering a rung's encoder, sends a force-key-unit event first when the frame
/// is at or after a cut the encoder has not been asked for yet.
fn force_key_units_at_cuts(pad: &gst::Pad, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let last_forced = AtomicI64::new(-1);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let running_time = running_time(pad, pts);
        let last = last_forced.load(Ordering::Relaxed);
        let due = match shared.cuts.lock() {
            Ok(cuts) => cuts
                .iter()
                .rev()
                .find(|&&c| c <= running_time && (last < 0 || c as i64 > last))
                .copied(),
            Err(_) => None,
        };
        if let Some(cut) = due {
            last_forced.store(cut as i64, Ordering::Relaxed);
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .running_time(gst::ClockTime::from_nseconds(cut))
                .all_headers(true)
                .build();
            if !pad.push_event(event) {
                tracing::warn!(pad = %pad.name(), "force-key-unit event not handled");
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Drops frames so that at most `cap` per second pass `pad`, keeping every frame a segment
/// starts on (those must reach the encoder to become its IDRs).
fn cap_frame_rate(pad: &gst::Pad, shared: &Arc<Shared>, cap: u32) {
    let shared = Arc::clone(shared);
    let interval = 1_000_000_000 / u64::from(cap.max(1));
    // Timestamps are rounded to ns (or to ms by RTMP): allow a little early.
    let slack = (interval / 10).min(3_000_000);
    let next_allowed = AtomicI64::new(-1);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let rt = running_time(pad, pts);
        let is_cut = shared
            .cuts
            .lock()
            .map(|c| c.iter().any(|&cut| cut == rt))
            .unwrap_or(false);
        let next = next_allowed.load(Ordering::Relaxed);
        if is_cut || next < 0 || rt + slack >= next as u64 {
            next_allowed.store((rt + interval) as i64, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// Running time (ns) of `pts` in the segment last seen on `pad`.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> u64 {
    pad.sticky_event::<gst::event::Segment>(0)
        .and_then(|ev| {
            ev.segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|s| s.to_running_time(pts))
        })
        .unwrap_or(pts)
        .nseconds()
}

struct RungOutput {
    index: usize,
    plan: RungPlan,
    sink: Arc<dyn ChunkSink>,
    shared: Arc<Shared>,
    assembler: Mutex<Assembler>,
    announced: AtomicBool,
    video_pad: gst::glib::WeakRef<gst::Pad>,
    audio_codec: Option<String>,
}

impl RungOutput {
    fn on_sample(&self, appsink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let mut chunks = Vec::new();
        {
            let mut assembler = self.assembler.lock().map_err(|_| gst::FlowError::Error)?;
            let mut feed = |buffer: &gst::BufferRef| {
                let pts = buffer.pts().map(|pts| {
                    segment
                        .as_ref()
                        .and_then(|s| s.to_running_time(pts))
                        .unwrap_or(pts)
                        .nseconds()
                });
                match buffer.map_readable() {
                    Ok(map) => assembler.push(
                        &OutBuffer {
                            flags: buffer.flags(),
                            data: map.as_slice(),
                            pts,
                            duration: buffer.duration().map(|d| d.nseconds()),
                        },
                        &mut chunks,
                    ),
                    Err(_) => tracing::warn!("unreadable muxer buffer dropped"),
                }
            };
            if let Some(list) = sample.buffer_list() {
                for buffer in list.iter() {
                    feed(buffer);
                }
            } else if let Some(buffer) = sample.buffer() {
                feed(buffer);
            }
        }
        for chunk in chunks {
            self.emit(chunk);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn on_eos(&self) {
        let mut chunks = Vec::new();
        if let Ok(mut a) = self.assembler.lock() {
            a.flush(&mut chunks);
        }
        for chunk in chunks {
            self.emit(chunk);
        }
    }

    fn emit(&self, chunk: media::cmaf::CmafChunk) {
        if chunk.kind == ChunkKind::Init && !self.announced.swap(true, Ordering::SeqCst) {
            self.sink.on_rung_ready(self.info());
        }
        let arrivals = if chunk.kind == ChunkKind::Init {
            Vec::new()
        } else {
            let start = u64::try_from(chunk.pts.as_nanos()).unwrap_or(0);
            let end = u64::try_from((chunk.pts + chunk.duration).as_nanos()).unwrap_or(0);
            self.shared.arrivals_between(start, end)
        };
        if let Some(c) = self.shared.rungs.get(self.index) {
            c.bytes
                .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            c.chunks.fetch_add(1, Ordering::Relaxed);
            if chunk.kind == ChunkKind::SegmentStart {
                c.segments.fetch_add(1, Ordering::Relaxed);
            }
            if chunk.kind != ChunkKind::Init {
                c.media_end
                    .fetch_max((chunk.pts + chunk.duration).as_nanos(), Ordering::Relaxed);
            }
        }
        self.sink.on_chunk(self.index, chunk, &arrivals);
    }

    /// What the rung really is, from the caps reaching its muxer.
    fn info(&self) -> RungInfo {
        let mut info = RungInfo {
            index: self.index,
            name: self.plan.name.clone(),
            width: self.plan.width,
            height: self.plan.height,
            frame_rate: None,
            video_kbps: self.plan.video_kbps,
            video_codec: String::new(),
            audio_codec: self.audio_codec.clone(),
            passthrough: self.plan.passthrough,
        };
        let caps = self.video_pad.upgrade().and_then(|p| p.current_caps());
        if let Some(s) = caps.as_ref().and_then(|c| c.structure(0)) {
            if let Ok(f) = s.get::<gst::Fraction>("framerate") {
                if f.numer() > 0 && f.denom() > 0 {
                    info.frame_rate = Some(f64::from(f.numer()) / f64::from(f.denom()));
                }
            }
            if let Ok(buf) = s.get::<gst::Buffer>("codec_data") {
                if let Ok(map) = buf.map_readable() {
                    let sps = media::h264::AvcDecoderConfigurationRecord::parse(map.as_slice())
                        .and_then(|r| r.first_sps());
                    match sps {
                        Ok(sps) => {
                            info.video_codec = sps.codec_string();
                            info.width = sps.width;
                            info.height = sps.height;
                            if info.frame_rate.is_none() {
                                info.frame_rate = sps.frame_rate;
                            }
                        }
                        Err(e) => tracing::warn!(rung = %self.plan.name, "output SPS: {e}"),
                    }
                }
            }
        }
        info
    }
}

impl StreamPipeline {
    /// Builds and starts the pipeline for one stream.
    ///
    /// `video` is the stream's current H.264 configuration; `audio`, when present, is AAC
    /// (passed through) or MP3 (encoded to AAC once, for every rung).
    /// Chunks, rung announcements and errors go to `sink` from GStreamer's threads.
    pub fn start(
        stream_name: &str,
        video: &VideoConfig,
        audio: Option<&AudioConfig>,
        ladder: &LadderConfig,
        sink: Arc<dyn ChunkSink>,
    ) -> Result<StreamPipeline, Error> {
        Self::start_with(
            stream_name,
            video,
            audio,
            ladder,
            sink,
            &StartOptions::default(),
        )
    }

    /// [`StreamPipeline::start`] with an element chain, encoder-session admission and a
    /// continued timeline. A failure of a hardware element is reported through
    /// [`ChunkSink::on_failure`] with [`Failure::accelerator`] set.
    pub fn start_with(
        stream_name: &str,
        video: &VideoConfig,
        audio: Option<&AudioConfig>,
        ladder: &LadderConfig,
        sink: Arc<dyn ChunkSink>,
        options: &StartOptions,
    ) -> Result<StreamPipeline, Error> {
        init()?;
        ladder.validate()?;
        if video.codec != VideoCodec::H264 {
            return Err(Error::UnsupportedCodec(format!(
                "video {:?}: only H.264 is transcoded",
                video.codec
            )));
        }
        media::h264::AvcDecoderConfigurationRecord::parse(&video.record)
            .map_err(|e| Error::InvalidCodecConfig(format!("avcC: {e}")))?;
        if let Some(a) = audio {
            match a.codec {
                AudioCodec::Aac => {
                    media::aac::AudioSpecificConfig::parse(&a.record).map_err(|e| {
                        Error::InvalidCodecConfig(format!("AudioSpecificConfig: {e}"))
                    })?;
                }
                AudioCodec::Mp3 => {
                    if a.sample_rate == 0 || a.channels == 0 {
                        return Err(Error::InvalidCodecConfig(format!(
                            "MP3 audio at {} Hz with {} channels",
                            a.sample_rate, a.channels
                        )));
                    }
                }
                other => {
                    return Err(Error::UnsupportedCodec(format!(
                        "audio {other:?}: only AAC (passed through) and MP3 (encoded to AAC) \
                         are accepted"
                    )))
                }
            }
        }
        let plan = plan(&ladder.renditions, video.width, video.height);
        if plan.is_empty() {
            return Err(Error::EmptyLadder(video.width, video.height));
        }

        let shared = Arc::new(Shared {
            rungs: plan
                .iter()
                .map(|_| RungCounters {
                    media_end: AtomicI64::new(-1),
                    ..RungCounters::default()
                })
                .collect(),
            video_in: AtomicU64::new(0),
            audio_in: AtomicU64::new(0),
            video_dropped: AtomicU64::new(0),
            audio_dropped: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            cuts: Mutex::new(VecDeque::new()),
            arrivals: Mutex::new(VecDeque::new()),
        });

        let selection = options
            .selection
            .clone()
            .unwrap_or_else(Selection::software);
        let (encoders, leases) = admit_encoders(&selection, &plan, options)?;
        let backends = StreamBackends {
            decoder: selection.decoder.clone(),
            scale: selection.scale,
            rungs: plan
                .iter()
                .zip(&encoders)
                .map(|(r, e)| RungBackend {
                    name: r.name.clone(),
                    encoder: e.as_ref().map(|(c, _)| c.factory.clone()),
                    backend: e
                        .as_ref()
                        .map(|(c, _)| c.kind.backend())
                        .unwrap_or(Backend::Software),
                    fallback: e.as_ref().and_then(|(_, why)| why.clone()),
                })
                .collect(),
        };
        let chain = Chain {
            selection: &selection,
            encoders: &encoders,
        };
        let hardware = Arc::new(Mutex::new(Vec::new()));
        let pipeline = gst::Pipeline::with_name(&format!("stream-{stream_name}"));
        let built = build(
            &pipeline, video, audio, ladder, &plan, &shared, &sink, &chain, &hardware,
        );
        let (video_src, audio_src, muxers) = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(e);
            }
        };

        let bus = pipeline
            .bus()
            .ok_or_else(|| Error::Pipeline("pipeline has no bus".to_owned()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (eos_tx, eos_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            let sink = Arc::clone(&sink);
            let weak = pipeline.downgrade();
            std::thread::Builder::new()
                .name(format!("gst-bus-{stream_name}"))
                .spawn({
                    // The bus thread's log lines carry the stream, like the connection's.
                    let span = tracing::info_span!("stream", stream = %stream_name);
                    move || {
                        let _entered = span.entered();
                        watch_bus(bus, weak, stop, shared, sink, eos_tx, hardware)
                    }
                })
                .map_err(|e| Error::Pipeline(format!("spawning the bus thread: {e}")))?
        };

        let mut me = StreamPipeline {
            name: stream_name.to_owned(),
            pipeline,
            video_src,
            audio_src,
            muxers,
            plan,
            shared,
            input: Mutex::new(InputState {
                offset: options.input_offset,
                last_video_dts: 0,
                last_audio_pts: 0,
                video_wait_keyframe: true,
                video_discont: false,
                audio_discont: false,
                last_cut: None,
                video_record: video.record.clone(),
                audio_input: audio.map(|a| (a.codec, audio_caps(a, &a.record))),
                closed: false,
            }),
            max_queued: ladder.max_queued_frames as u64,
            segment_ns: ladder.segment_duration.as_nanos() as u64,
            stop,
            bus_thread: Some(thread),
            eos_rx: Mutex::new(eos_rx),
            torn_down: false,
            backends,
            _leases: leases,
        };
        if let Err(e) = me.pipeline.set_state(gst::State::Playing) {
            me.teardown(false);
            return Err(Error::Pipeline(format!(
                "stream {stream_name}: could not start: {e}"
            )));
        }
        Ok(me)
    }

    /// The rungs this pipeline makes, after skipping those above the source's size.
    pub fn rungs(&self) -> Vec<RungPlan> {
        self.plan.clone()
    }

    /// The stream's name, as given to [`StreamPipeline::start`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element chain: decoder, scaler, and each rung's encoder with its backend.
    pub fn backends(&self) -> &StreamBackends {
        &self.backends
    }

    /// The input timestamp (ns) that is media time zero, once the first frame has arrived.
    /// Hand it to a replacement pipeline ([`StartOptions::input_offset`]) to continue the
    /// timeline.
    pub fn input_offset(&self) -> Option<i64> {
        self.input.lock().ok().and_then(|st| st.offset)
    }

    /// Counters, read without locking the pipeline.
    pub fn stats(&self) -> PipelineStats {
        let s = &self.shared;
        PipelineStats {
            video_frames_in: s.video_in.load(Ordering::Relaxed),
            audio_frames_in: s.audio_in.load(Ordering::Relaxed),
            video_dropped: s.video_dropped.load(Ordering::Relaxed),
            audio_dropped: s.audio_dropped.load(Ordering::Relaxed),
            video_queued: self.video_src.current_level_buffers(),
            audio_queued: self
                .audio_src
                .as_ref()
                .map_or(0, |a| a.current_level_buffers()),
            rungs: self
                .plan
                .iter()
                .zip(&s.rungs)
                .map(|(p, c)| {
                    let end = c.media_end.load(Ordering::Relaxed);
                    RungStats {
                        name: p.name.clone(),
                        frames: c.frames.load(Ordering::Relaxed),
                        bytes: c.bytes.load(Ordering::Relaxed),
                        chunks: c.chunks.load(Ordering::Relaxed),
                        segments: c.segments.load(Ordering::Relaxed),
                        media_time: (end >= 0).then(|| media::MediaTime::from_nanos(end)),
                    }
                })
                .collect(),
        }
    }

    /// True once the pipeline has reported an error; further pushes are discarded.
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Hands one frame to the pipeline. Never blocks on the pipeline: when its input queue is
    /// full the frame is dropped and counted, and video then waits for the next keyframe.
    pub fn push(&self, frame: &MediaFrame) -> PushResult {
        if self.has_failed() {
            return PushResult::Closed;
        }
        let Ok(mut st) = self.input.lock() else {
            return PushResult::Closed;
        };
        if st.closed {
            return PushResult::Closed;
        }
        match frame {
            MediaFrame::VideoConfig(cfg) => {
                if cfg.codec != VideoCodec::H264 {
                    tracing::warn!(stream = %self.name, "video codec changed to {:?}; ignored", cfg.codec);
                    return PushResult::Dropped;
                }
                if cfg.record != st.video_record {
                    st.video_record = cfg.record.clone();
                    self.video_src.set_caps(Some(&video_caps(cfg, &cfg.record)));
                    // The new configuration applies from the next keyframe.
                    st.video_wait_keyframe = true;
                }
                PushResult::Queued
            }
            MediaFrame::AudioConfig(cfg) => {
                let Some(src) = &self.audio_src else {
                    return PushResult::Dropped;
                };
                // The audio branch is built for one input codec (AAC passed through, or MP3
                // decoded and encoded to AAC); another codec needs a new pipeline.
                let Some((codec, caps)) = &mut st.audio_input else {
                    return PushResult::Dropped;
                };
                if cfg.codec != *codec {
                    return PushResult::Dropped;
                }
                let new_caps = audio_caps(cfg, &cfg.record);
                if *caps != new_caps {
                    src.set_caps(Some(&new_caps));
                    *caps = new_caps;
                }
                PushResult::Queued
            }
            MediaFrame::Video(v) => {
                let dropped = || {
                    self.shared.video_dropped.fetch_add(1, Ordering::Relaxed);
                    PushResult::Dropped
                };
                if self.video_src.current_level_buffers() >= self.max_queued {
                    st.video_wait_keyframe = true;
                    st.video_discont = true;
                    return dropped();
                }
                if st.video_wait_keyframe && !v.keyframe {
                    return dropped();
                }
                let offset = *st
                    .offset
                    .get_or_insert(v.dts.as_nanos().min(v.pts.as_nanos()));
                let dts = v.dts.as_nanos() - offset;
                if dts < 0 {
                    st.video_wait_keyframe = true;
                    return dropped();
                }
                let dts = (dts as u64).max(st.last_video_dts);
                let pts = (v.pts.as_nanos() - offset).max(0) as u64;
                let pts = pts.max(dts);
                st.last_video_dts = dts;
                st.video_wait_keyframe = false;

                if v.keyframe {
                    self.maybe_cut(&mut st, pts);
                }
                let mut buffer = gst::Buffer::from_slice(v.data.clone());
                if let Some(b) = buffer.get_mut() {
                    b.set_pts(gst::ClockTime::from_nseconds(pts));
                    b.set_dts(gst::ClockTime::from_nseconds(dts));
                    if !v.keyframe {
                        b.set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                    if std::mem::take(&mut st.video_discont) {
                        b.set_flags(gst::BufferFlags::DISCONT);
                    }
                }
                match self.video_src.push_buffer(buffer) {
                    Ok(_) => {
                        let keep = Duration::from_nanos(self.segment_ns * 2) + ARRIVALS_SLACK;
                        self.shared.arrived(pts, Instant::now(), keep);
                        self.shared.video_in.fetch_add(1, Ordering::Relaxed);
                        PushResult::Queued
                    }
                    Err(_) => PushResult::Closed,
                }
            }
            MediaFrame::Audio(a) => {
                let Some(src) = &self.audio_src else {
                    return PushResult::Dropped;
                };
                let dropped = || {
                    self.shared.audio_dropped.fetch_add(1, Ordering::Relaxed);
                    PushResult::Dropped
                };
                // Audio frames are shorter than video frames; allow proportionally more.
                if src.current_level_buffers() >= self.max_queued.saturating_mul(2) {
                    st.audio_discont = true;
                    return dropped();
                }
                let offset = *st.offset.get_or_insert(a.pts.as_nanos());
                let pts = a.pts.as_nanos() - offset;
                if pts < 0 {
                    return dropped();
                }
                let pts = (pts as u64).max(st.last_audio_pts);
                st.last_audio_pts = pts;
                let mut buffer = gst::Buffer::from_slice(a.data.clone());
                if let Some(b) = buffer.get_mut() {
                    b.set_pts(gst::ClockTime::from_nseconds(pts));
                    b.set_dts(gst::ClockTime::from_nseconds(pts));
                    if std::mem::take(&mut st.audio_discont) {
                        b.set_flags(gst::BufferFlags::DISCONT);
                    }
                }
                match src.push_buffer(buffer) {
                    Ok(_) => {
                        self.shared.audio_in.fetch_add(1, Ordering::Relaxed);
                        PushResult::Queued
                    }
                    Err(_) => PushResult::Closed,
                }
            }
        }
    }

    /// Decides whether the source keyframe at `pts` starts a new segment, and if so tells every
    /// encoder (through the cut list their probes read) and every muxer.
    fn maybe_cut(&self, st: &mut InputState, pts: u64) {
        let Some(last) = st.last_cut else {
            st.last_cut = Some(pts);
            return;
        };
        if pts + CUT_TOLERANCE_NS < last + self.segment_ns {
            return;
        }
        st.last_cut = Some(pts);
        if let Ok(mut cuts) = self.shared.cuts.lock() {
            cuts.push_back(pts);
            while cuts.len() > CUTS_KEPT {
                cuts.pop_front();
            }
        }
        let at = gst::ClockTime::from_nseconds(pts);
        for mux in &self.muxers {
            mux.emit_by_name::<()>("split-at-running-time", &[&at]);
        }
    }

    /// Ends the stream: sends end-of-stream, waits (bounded) until every rung has flushed its
    /// last segment, then stops the pipeline and its bus thread.
    pub fn finish(mut self) {
        self.teardown(true);
    }

    fn teardown(&mut self, drain: bool) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        if let Ok(mut st) = self.input.lock() {
            st.closed = true;
        }
        if drain && !self.has_failed() {
            let _ = self.video_src.end_of_stream();
            if let Some(a) = &self.audio_src {
                let _ = a.end_of_stream();
            }
            if let Ok(rx) = self.eos_rx.lock() {
                if rx.recv_timeout(EOS_TIMEOUT).is_err() {
                    tracing::warn!(stream = %self.name, "pipeline did not drain in {EOS_TIMEOUT:?}; stopping it anyway");
                }
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.pipeline.set_state(gst::State::Null) {
            tracing::warn!(stream = %self.name, "stopping pipeline: {e}");
        }
        if let Some(t) = self.bus_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StreamPipeline {
    fn drop(&mut self) {
        self.teardown(false);
    }
}

fn watch_bus(
    bus: gst::Bus,
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    sink: Arc<dyn ChunkSink>,
    eos_tx: mpsc::Sender<()>,
    hardware: HardwareElements,
) {
    while !stop.load(Ordering::SeqCst) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                sink.on_eos();
                let _ = eos_tx.send(());
                return;
            }
            gst::MessageView::Error(e) => {
                let source = e
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let message = match e.debug() {
                    Some(d) => format!("{source}: {} ({d})", e.error()),
                    None => format!("{source}: {}", e.error()),
                };
                let accelerator = e.src().and_then(|src| hardware_fault(src, &hardware));
                // The sink hears of the failure before `push` reports `Closed`, so an owner that
                // rebuilds on accelerator failures has decided by then.
                sink.on_failure(Failure {
                    message,
                    accelerator,
                });
                shared.failed.store(true, Ordering::SeqCst);
                // Stop burning CPU on a broken stream; the owner still calls finish or drops.
                if let Some(p) = pipeline.upgrade() {
                    let _ = p.set_state(gst::State::Null);
                }
                let _ = eos_tx.send(());
                return;
            }
            gst::MessageView::Warning(w) => {
                tracing::warn!(source = ?w.src().map(|s| s.path_string()), "{}", w.error());
            }
            gst::MessageView::Latency(_) => {
                if let Some(p) = pipeline.upgrade() {
                    let _ = p.recalculate_latency();
                }
            }
            _ => {}
        }
    }
}

type Built = (gst_app::AppSrc, Option<gst_app::AppSrc>, Vec<gst::Element>);

/// Names of the pipeline's hardware elements, with the stage and backend each serves: an error
/// posted by one of them (or by anything inside it) is an accelerator failure.
type HardwareElements = Arc<Mutex<Vec<(String, Stage, Backend)>>>;

/// The hardware element `src` is, or is inside, if any.
fn hardware_fault(src: &gst::Object, hardware: &HardwareElements) -> Option<AcceleratorFault> {
    let list = hardware.lock().ok()?;
    let mut current = Some(src.clone());
    while let Some(obj) = current {
        let name = obj.name();
        if let Some((element, stage, backend)) = list.iter().find(|(n, ..)| *n == name.as_str()) {
            return Some(AcceleratorFault {
                stage: *stage,
                backend: *backend,
                element: element.clone(),
            });
        }
        current = obj.parent();
    }
    None
}

/// Each transcoded rung's encoder (with the reason it fell back, if it did); `None` for
/// passthrough rungs.
type RungEncoders = Vec<Option<(EncoderChoice, Option<String>)>>;

/// Admits hardware-encoded rungs against the session budget, one session per rung.
fn admit_encoders(
    selection: &Selection,
    plan: &[RungPlan],
    options: &StartOptions,
) -> Result<(RungEncoders, Vec<SessionLease>), Error> {
    let mut leases = Vec::new();
    let mut encoders = Vec::with_capacity(plan.len());
    for rung in plan {
        if rung.passthrough {
            encoders.push(None);
            continue;
        }
        let choice = &selection.encoder;
        if choice.kind.backend() != Backend::Nvidia {
            encoders.push(Some((choice.clone(), None)));
            continue;
        }
        match options
            .sessions
            .as_ref()
            .map(|b| (b.try_acquire(), b.limit()))
        {
            None => encoders.push(Some((choice.clone(), None))),
            Some((Some(lease), _)) => {
                leases.push(lease);
                encoders.push(Some((choice.clone(), None)));
            }
            Some((None, limit)) => {
                let why = format!(
                    "all {} hardware encoder sessions are in use (nvidia.max_encode_sessions)",
                    limit.unwrap_or_default()
                );
                if options.on_failure == FailurePolicy::Fail {
                    return Err(Error::Accelerator(format!(
                        "rung {:?} cannot be encoded on the GPU: {why}; raise the limit, or set \
                         transcode.on_accelerator_failure = \"fallback\" to encode it with x264",
                        rung.name
                    )));
                }
                encoders.push(Some((EncoderChoice::x264(), Some(why))));
            }
        }
    }
    Ok((encoders, leases))
}

/// What [`build`] needs to know about the element chain.
struct Chain<'a> {
    selection: &'a Selection,
    encoders: &'a RungEncoders,
}

/// The encoder element of a rung: a plain factory, or the test-only failing bin.
fn make_encoder(choice: &EncoderChoice, name: &str) -> Result<gst::Element, Error> {
    match choice.kind {
        EncoderKind::Fault { error_after } => {
            let bin = gst::Bin::with_name(name);
            let fault = make("identity", &format!("{name}-fault"))?;
            fault.set_property("error-after", error_after as i32);
            fault.set_property("silent", true);
            let x264 = make("x264enc", &format!("{name}-x264"))?;
            bin.add_many([&fault, &x264])?;
            link(&fault, &x264)?;
            let sink = gst::GhostPad::with_target(&static_pad(&fault, "sink")?)?;
            let src = gst::GhostPad::with_target(&static_pad(&x264, "src")?)?;
            bin.add_pad(&sink)?;
            bin.add_pad(&src)?;
            Ok(bin.upcast())
        }
        _ => make(&choice.factory, name),
    }
}

/// The element to set encoder properties on (inside the fault bin: its x264enc).
fn encoder_core(enc: &gst::Element, choice: &EncoderChoice) -> gst::Element {
    if let EncoderKind::Fault { .. } = choice.kind {
        if let Some(inner) = enc
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name(&format!("{}-x264", enc.name())))
        {
            return inner;
        }
    }
    enc.clone()
}

// One call site; the arguments are the pipeline's whole description.
#[allow(clippy::too_many_arguments)]
fn build(
    pipeline: &gst::Pipeline,
    video: &VideoConfig,
    audio: Option<&AudioConfig>,
    ladder: &LadderConfig,
    plan: &[RungPlan],
    shared: &Arc<Shared>,
    sink: &Arc<dyn ChunkSink>,
    chain: &Chain<'_>,
    hardware: &HardwareElements,
) -> Result<Built, Error> {
    let selection = chain.selection;
    let cuda_scale = selection.scale == Backend::Nvidia;
    let device = selection.device;
    let mark = |e: &gst::Element, stage: Stage, backend: Backend| {
        if backend.is_hardware() {
            if let Ok(mut h) = hardware.lock() {
                h.push((e.name().to_string(), stage, backend));
            }
        }
    };
    let add = |e: &gst::Element| {
        pipeline
            .add(e)
            .map_err(|err| Error::Pipeline(format!("adding {}: {err}", e.name())))
    };

    // Video input: appsrc → h264parse → tee (compressed).
    let video_src = gst_app::AppSrc::builder()
        .name("video-src")
        .caps(&video_caps(video, &video.record))
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        .max_bytes(0)
        .build();
    let vparse = make("h264parse", "video-parse")?;
    let vtee = make("tee", "video-tee")?;
    let video_src_el: gst::Element = video_src.clone().upcast();
    for e in [&video_src_el, &vparse, &vtee] {
        add(e)?;
    }
    link_chain(&[&video_src_el, &vparse, &vtee])?;

    // Decoder, once, only when some rung transcodes. Its output is in CUDA memory when the
    // rungs scale on the GPU: straight from NVDEC, or uploaded once here for every rung.
    let decoded_tee = if plan.iter().any(|r| !r.passthrough) {
        let q = new_queue("decode-queue", 0, gst::ClockTime::from_seconds(1))?;
        let dec = make(&selection.decoder.factory, "decoder")?;
        mark(&dec, Stage::Decode, selection.decoder.backend);
        let tee = make("tee", "decoded-tee")?;
        let mut elements = vec![q.clone(), dec.clone()];
        if selection.decoder.backend == Backend::Nvidia {
            let caps = make("capsfilter", "decoded-caps")?;
            caps.set_property(
                "caps",
                if cuda_scale {
                    gst::Caps::builder("video/x-raw")
                        .features(["memory:CUDAMemory"])
                        .build()
                } else {
                    gst::Caps::builder("video/x-raw").build()
                },
            );
            elements.push(caps);
        } else if cuda_scale {
            let up = make("cudaupload", "upload")?;
            set_cuda_device(&up, device);
            mark(&up, Stage::Scale, Backend::Nvidia);
            elements.push(up);
        }
        elements.push(tee.clone());
        for e in &elements {
            add(e)?;
        }
        link_pads(
            &request_pad(&vtee, "src_%u")?,
            &q.static_pad("sink")
                .ok_or_else(|| Error::Pipeline("queue without sink pad".into()))?,
        )?;
        let refs: Vec<&gst::Element> = elements.iter().collect();
        link_chain(&refs)?;
        Some(tee)
    } else {
        None
    };

    // Audio input: AAC passes through (appsrc → aacparse → tee); MP3 is decoded and encoded
    // to AAC once (appsrc → mpegaudioparse → decoder → audioconvert → audioresample → AAC
    // encoder → aacparse → tee). Either way every rung's muxer takes the same tee.
    let audio_src = audio.map(|a| {
        gst_app::AppSrc::builder()
            .name("audio-src")
            .caps(&audio_caps(a, &a.record))
            .format(gst::Format::Time)
            .is_live(false)
            .block(false)
            .max_bytes(0)
            .build()
    });
    let audio_tee = match &audio_src {
        Some(src) => {
            let mut elements: Vec<gst::Element> = vec![src.clone().upcast()];
            if audio.is_some_and(|a| a.codec == AudioCodec::Mp3) {
                elements.extend(mp3_to_aac()?);
            }
            elements.push(make("aacparse", "audio-parse")?);
            let tee = make("tee", "audio-tee")?;
            elements.push(tee.clone());
            for e in &elements {
                add(e)?;
            }
            link_chain(&elements.iter().collect::<Vec<_>>())?;
            Some(tee)
        }
        None => None,
    };

    let source_fps = video.frame_rate.filter(|f| *f > 0.0);
    let mut muxers = Vec::with_capacity(plan.len());
    for rung in plan {
        let i = rung.index;
        let mux = make("isofmp4mux", &format!("r{i}-mux"))?;
        mux.set_property("fragment-duration", FRAGMENT_DURATION_NS);
        if let Some(part) = ladder.part_duration {
            mux.set_property("chunk-duration", part.as_nanos() as u64);
        }
        mux.set_property_from_str("header-update-mode", "none");
        mux.set_property("send-force-keyunit", false);
        mux.set_property("write-mfra", false);
        let appsink = gst_app::AppSink::builder()
            .name(format!("r{i}-sink"))
            .sync(false)
            .buffer_list(true)
            .build();
        let appsink_el: gst::Element = appsink.clone().upcast();
        add(&mux)?;
        add(&appsink_el)?;
        link(&mux, &appsink_el)?;

        // Video into the muxer first: the muxer's first stream decides where fragments end.
        let mux_video = request_pad(&mux, "sink_%u")?;
        let video_out: gst::Element = if rung.passthrough {
            let q = new_queue(&format!("r{i}-queue"), 0, gst::ClockTime::from_seconds(2))?;
            add(&q)?;
            link_pads(&request_pad(&vtee, "src_%u")?, &static_pad(&q, "sink")?)?;
            count_buffers(&static_pad(&q, "src")?, shared, i);
            q
        } else {
            let tee = decoded_tee
                .as_ref()
                .ok_or_else(|| Error::Pipeline("no decoder for a transcoded rung".into()))?;
            let q = new_queue(
                &format!("r{i}-queue"),
                RUNG_QUEUE_BUFFERS,
                gst::ClockTime::ZERO,
            )?;
            let (choice, _) = chain
                .encoders
                .get(i)
                .and_then(|e| e.as_ref())
                .ok_or_else(|| Error::Pipeline(format!("no encoder chosen for rung {i}")))?;
            let format = choice.kind.input_format();
            let sized = |b: gst::caps::Builder<gst::caps::NoFeature>| {
                b.field("format", format)
                    .field("width", rung.width as i32)
                    .field("height", rung.height as i32)
                    .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            };
            let caps = make("capsfilter", &format!("r{i}-caps"))?;
            let mut elements = vec![q.clone()];
            // The last element before the encoder: where cuts become force-key-unit events.
            let mut feed = caps.clone();
            if cuda_scale {
                let scale = make("cudascale", &format!("r{i}-scale"))?;
                let convert = make("cudaconvert", &format!("r{i}-convert"))?;
                for e in [&scale, &convert] {
                    set_cuda_device(e, device);
                    mark(e, Stage::Scale, Backend::Nvidia);
                }
                caps.set_property(
                    "caps",
                    sized(gst::Caps::builder("video/x-raw"))
                        .features(["memory:CUDAMemory"])
                        .build(),
                );
                elements.extend([scale, convert, caps.clone()]);
                if !choice.kind.takes_cuda_memory() {
                    let down = make("cudadownload", &format!("r{i}-download"))?;
                    set_cuda_device(&down, device);
                    mark(&down, Stage::Scale, Backend::Nvidia);
                    let sys = make("capsfilter", &format!("r{i}-syscaps"))?;
                    sys.set_property("caps", sized(gst::Caps::builder("video/x-raw")).build());
                    elements.extend([down, sys.clone()]);
                    feed = sys;
                }
            } else {
                let scale = make("videoscale", &format!("r{i}-scale"))?;
                let convert = make("videoconvert", &format!("r{i}-convert"))?;
                caps.set_property("caps", sized(gst::Caps::builder("video/x-raw")).build());
                elements.extend([scale, convert, caps.clone()]);
            }
            let enc = make_encoder(choice, &format!("r{i}-enc"))?;
            mark(&enc, Stage::Encode, choice.kind.backend());
            let parse = make("h264parse", &format!("r{i}-parse"))?;
            let mut chain = elements;
            let fps = match (rung.fps_cap, source_fps) {
                (Some(cap), Some(src)) if src > f64::from(cap) + 0.5 => {
                    // Not videorate: it may drop the very frame a segment must start on. Our
                    // probe drops to the cap but keeps cut frames; capssetter then tells the
                    // encoder the capped rate, which its rate control needs.
                    cap_frame_rate(&static_pad(&q, "src")?, shared, cap);
                    let setter = make("capssetter", &format!("r{i}-rate"))?;
                    setter.set_property(
                        "caps",
                        gst::Caps::builder("video/x-raw")
                            .field("framerate", gst::Fraction::new(cap as i32, 1))
                            .build(),
                    );
                    chain.push(setter.clone());
                    feed = setter;
                    f64::from(cap)
                }
                (_, Some(src)) => src,
                (Some(cap), None) => f64::from(cap),
                (None, None) => 30.0,
            };
            // IDRs only where the cadence forces them: the encoder's own keyframes would only
            // come after ten segments' worth of frames.
            let seg_frames = fps * ladder.segment_duration.as_secs_f64();
            let settings = EncoderSettings {
                kbps: rung.video_kbps.unwrap_or(1000),
                key_int_max: ((seg_frames * 10.0).ceil() as u32).max(60),
                preset: ladder.preset.clone(),
                // Always: cuts must land on the forced IDR of exactly the cut frame, and LL-HLS
                // parts must not wait for reordered frames.
                low_latency: true,
            };
            let skipped = apply_properties(
                &encoder_core(&enc, choice),
                &encoder_properties(choice.kind, &settings),
            )?;
            if !skipped.is_empty() {
                tracing::warn!(encoder = %choice.factory, ?skipped, "encoder lacks properties; left at their defaults");
            }
            chain.push(enc.clone());
            chain.push(parse);
            for e in &chain {
                add(e)?;
            }
            link_pads(&request_pad(tee, "src_%u")?, &static_pad(&q, "sink")?)?;
            let refs: Vec<&gst::Element> = chain.iter().collect();
            link_chain(&refs)?;
            force_key_units_at_cuts(&static_pad(&feed, "src")?, shared);
            count_buffers(&static_pad(&enc, "src")?, shared, i);
            chain
                .last()
                .cloned()
                .ok_or_else(|| Error::Pipeline("empty chain".into()))?
        };
        link_pads(&static_pad(&video_out, "src")?, &mux_video)?;

        let audio_codec = match (&audio_tee, audio) {
            (Some(tee), Some(a)) => {
                let q = new_queue(
                    &format!("r{i}-audio-queue"),
                    0,
                    gst::ClockTime::from_seconds(10),
                )?;
                add(&q)?;
                link_pads(&request_pad(tee, "src_%u")?, &static_pad(&q, "sink")?)?;
                link_pads(&static_pad(&q, "src")?, &request_pad(&mux, "sink_%u")?)?;
                Some(match a.codec {
                    // Encoded by `mp3_to_aac`: AAC-LC.
                    AudioCodec::Mp3 => "mp4a.40.2".to_owned(),
                    _ => a.codec_string.clone(),
                })
            }
            _ => None,
        };

        let out = Arc::new(RungOutput {
            index: i,
            plan: rung.clone(),
            sink: Arc::clone(sink),
            shared: Arc::clone(shared),
            assembler: Mutex::new(Assembler::default()),
            announced: AtomicBool::new(false),
            video_pad: mux_video.downgrade(),
            audio_codec,
        });
        let on_eos = Arc::clone(&out);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| out.on_sample(s))
                .eos(move |_| on_eos.on_eos())
                .build(),
        );
        muxers.push(mux);
    }
    Ok((video_src, audio_src, muxers))
}

fn static_pad(e: &gst::Element, name: &str) -> Result<gst::Pad, Error> {
    e.static_pad(name)
        .ok_or_else(|| Error::Pipeline(format!("{} has no {name} pad", e.name())))
}
