//! One live stream's GStreamer pipeline: start, feed, watch, tear down.
//!
//! The graph is built by [`crate::graph`], each rung's output handled by [`crate::output`],
//! errors watched by [`crate::bus`]; what to do with each input frame is decided by
//! [`crate::input`], and `push` carries the decision out on the appsrcs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use media::{AudioCodec, AudioConfig, MediaFrame, VideoCodec, VideoConfig};

use crate::bus::watch_bus;
use crate::caps::{audio_caps, video_caps};
use crate::chain::{Chain, StartOptions, StreamBackends};
use crate::config::{audio_only_plan, plan, with_tracks, LadderConfig, RungPlan};
use crate::elements::set_state;
use crate::error::Error;
use crate::graph::{build, Built};
use crate::input::{Decision, Dropped, Input, Silence, Stamp, TrackInput};
use crate::shared::Shared;
use crate::silence::silent_frame;
use crate::sink::ChunkSink;
use crate::stats::PipelineStats;

/// How long `finish` waits for the last segments to flush.
const EOS_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcome of [`crate::StreamPipeline::push`].
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

struct InputState {
    /// The timestamps, drops and cuts.
    frames: Input,
    /// The codec the audio branch was built for, and the caps last set on its appsrc.
    audio_input: Option<(AudioCodec, gst::Caps)>,
    /// One silent frame of the audio input's codec, pushed where audio is missing.
    silent: Option<bytes::Bytes>,
    /// The other tracks of a multitrack publish that rungs carry, by track id.
    tracks: std::collections::BTreeMap<u8, TrackInput>,
    closed: bool,
}

/// One stream's GStreamer pipeline (behind [`crate::StreamPipeline`]). Dropping it without
/// [`GstPipeline::finish`] stops it at once.
pub(crate) struct GstPipeline {
    name: String,
    pipeline: gst::Pipeline,
    video_src: Option<gst_app::AppSrc>,
    /// The codec the video input was built for.
    video_codec: Option<VideoCodec>,
    audio_src: Option<gst_app::AppSrc>,
    /// The input of each other track a rung carries.
    track_srcs: Vec<TrackSrc>,
    muxers: Vec<gst::Element>,
    plan: Vec<RungPlan>,
    shared: Arc<Shared>,
    input: Mutex<InputState>,
    stop: Arc<AtomicBool>,
    bus_thread: Option<JoinHandle<()>>,
    eos_rx: Mutex<mpsc::Receiver<()>>,
    torn_down: bool,
    backends: StreamBackends,
    /// The chain, with the hardware encoder sessions it holds until the pipeline is gone.
    _chain: Chain,
}

impl GstPipeline {
    /// Builds and starts the GStreamer pipeline of a stream with `video` (none: one rung of
    /// `audio` alone, cut on audio frames). Chunks, rung announcements and errors go to `sink`
    /// from GStreamer's threads. [`crate::StreamPipeline`] has initialised GStreamer and checked
    /// the ladder and the input first.
    pub(crate) fn start(
        stream_name: &str,
        video: Option<&VideoConfig>,
        audio: Option<&AudioConfig>,
        ladder: &LadderConfig,
        sink: Arc<dyn ChunkSink>,
        options: &StartOptions,
    ) -> Result<GstPipeline, Error> {
        // Other tracks ride along with video only; a track the pipeline cannot take is left
        // out (and said so), not the stream.
        let tracks: Vec<(u8, VideoConfig)> = match video {
            Some(_) => options
                .tracks
                .iter()
                .filter(|(id, t)| match check_track(t) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(stream = %stream_name, track = id, "track left out: {e}");
                        false
                    }
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let plan = match video {
            Some(v) => with_tracks(plan(&ladder.renditions, v.width, v.height), &tracks),
            None => audio_only_plan(&ladder.renditions),
        };
        if plan.is_empty() {
            let (w, h) = video.map_or((0, 0), |v| (v.width, v.height));
            return Err(Error::EmptyLadder(w, h));
        }
        let segment_ns = ladder.segment_duration.as_nanos() as u64;
        let shared = Arc::new(Shared::new(plan.len(), segment_ns));
        let chain = Chain::admit(&plan, options)?;
        let backends = chain.backends(&plan);
        let hardware = Arc::new(Mutex::new(Vec::new()));
        let pipeline = gst::Pipeline::with_name(&format!("stream-{stream_name}"));
        let built = build(
            &pipeline, video, audio, &tracks, ladder, &plan, &shared, &sink, &chain, &hardware,
        );
        let Built {
            video_src,
            audio_src,
            muxers,
            track_srcs,
        } = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(e);
            }
        };

        let bus = pipeline.bus().ok_or_else(|| Error::NoBus {
            pipeline: pipeline.name().to_string(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (eos_tx, eos_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            let sink = Arc::clone(&sink);
            let weak = pipeline.downgrade();
            let thread = format!("gst-bus-{stream_name}");
            std::thread::Builder::new()
                .name(thread.clone())
                .spawn({
                    // The bus thread's log lines carry the stream, like the connection's.
                    let span = tracing::info_span!("stream", stream = %stream_name);
                    move || {
                        let _entered = span.entered();
                        watch_bus(bus, weak, stop, shared, sink, eos_tx, hardware)
                    }
                })
                .map_err(|e| Error::SpawnThread {
                    thread,
                    reason: e.to_string(),
                })?
        };

        let mut frames = Input::new(
            options.input_offset,
            video.map(|v| v.record.clone()).unwrap_or_default(),
            ladder.segment_duration,
            ladder.max_queued_frames,
        );
        if video.is_none() {
            frames.audio_only();
        }
        // Without a silent frame the muxers wait for audio as before (README, "Audio gaps").
        let silent = audio.and_then(|a| match silent_frame(a) {
            Ok((data, frame)) => {
                frames.fill_audio_gaps(frame);
                Some(data)
            }
            Err(e) => {
                tracing::warn!(stream = %stream_name, "audio gaps will not be filled: {e}");
                None
            }
        });
        let mut me = GstPipeline {
            name: stream_name.to_owned(),
            pipeline,
            video_src,
            video_codec: video.map(|v| v.codec),
            audio_src,
            track_srcs: track_srcs
                .into_iter()
                .filter_map(|(id, src)| {
                    let (_, t) = tracks.iter().find(|(t, _)| *t == id)?;
                    let rung = plan.iter().find(|r| r.track == id)?.index;
                    Some(TrackSrc {
                        id,
                        src,
                        codec: t.codec,
                        rung,
                    })
                })
                .collect(),
            muxers,
            plan,
            shared,
            input: Mutex::new(InputState {
                frames,
                audio_input: audio.map(|a| (a.codec, audio_caps(a, &a.record))),
                silent,
                tracks: tracks
                    .iter()
                    .map(|(id, t)| (*id, TrackInput::new(t.record.clone())))
                    .collect(),
                closed: false,
            }),
            stop,
            bus_thread: Some(thread),
            eos_rx: Mutex::new(eos_rx),
            torn_down: false,
            backends,
            _chain: chain,
        };
        if let Err(e) = set_state(me.pipeline.upcast_ref(), gst::State::Playing) {
            me.teardown(false);
            return Err(e);
        }
        Ok(me)
    }

    /// The rungs this pipeline makes, after skipping those above the source's size.
    pub(crate) fn rungs(&self) -> Vec<RungPlan> {
        self.plan.clone()
    }

    /// The stream's name, as given to [`crate::StreamPipeline::start`].
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The element chain: decoder, scaler, and each rung's encoder with its backend.
    pub(crate) fn backends(&self) -> &StreamBackends {
        &self.backends
    }

    /// The input timestamp (ns) that is media time zero, once the first frame has arrived.
    /// Hand it to a replacement pipeline ([`StartOptions::input_offset`]) to continue the
    /// timeline.
    pub(crate) fn input_offset(&self) -> Option<i64> {
        self.input.lock().ok().and_then(|st| st.frames.offset())
    }

    /// A handle that reads [`crate::StreamPipeline::stats`] from any thread without holding the
    /// pipeline: whoever owns the pipeline hands this to the metrics and the API.
    pub(crate) fn stats_reader(&self) -> StatsReader {
        StatsReader {
            shared: self.shared.clone(),
            plan: self.plan.clone().into(),
            video_src: self.video_src.as_ref().map(|s| s.downgrade()),
            audio_src: self.audio_src.as_ref().map(|s| s.downgrade()),
        }
    }

    /// Whether rung `rung` (an index into [`crate::StreamPipeline::rungs`]) can be shed: it is
    /// encoded in software (a passthrough rung costs nothing to keep; a hardware encoder may
    /// hand frames on later than the gate needs), and the stream has audio (the muxer of a
    /// shed rung cuts its segments on the audio while its video is a gap).
    pub(crate) fn can_shed(&self, rung: usize) -> bool {
        self.audio_src.is_some()
            && self.plan.get(rung).is_some_and(|p| !p.passthrough)
            && self
                .backends
                .rungs
                .get(rung)
                .is_some_and(|b| b.encoder.is_some() && !b.backend.is_hardware())
    }

    /// Sheds rung `rung` (`shed`), or brings it back, from the next segment cut on: a shed
    /// rung's frames are dropped before its scaler and encoder, so it costs nothing, and its
    /// segments are reported as gaps ([`ChunkSink::on_gap`]) in step with the other rungs'.
    /// A rung brought back starts again on a cut, with an IDR, its segments aligned as before.
    /// Returns false (and does nothing) for a rung that [`crate::StreamPipeline::can_shed`] refuses.
    pub(crate) fn shed(&self, rung: usize, shed: bool) -> bool {
        if !self.can_shed(rung) {
            return false;
        }
        self.shared.request_gate(rung, shed);
        true
    }

    /// True once the pipeline has reported an error; further pushes are discarded.
    pub(crate) fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Hands one frame to the pipeline. Never blocks on the pipeline: when its input queue is
    /// full the frame is dropped and counted, and video then waits for the next keyframe.
    pub(crate) fn push(&self, frame: &MediaFrame) -> PushResult {
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
                let Some(video_src) = &self.video_src else {
                    return PushResult::Dropped;
                };
                if Some(cfg.codec) != self.video_codec {
                    tracing::warn!(stream = %self.name, "video codec changed to {:?}; ignored", cfg.codec);
                    return PushResult::Dropped;
                }
                // The new configuration applies from the next keyframe.
                if st.frames.video_config(&cfg.record) {
                    video_src.set_caps(Some(&video_caps(cfg, &cfg.record)));
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
                let Some(video_src) = &self.video_src else {
                    return PushResult::Dropped;
                };
                let queued = video_src.current_level_buffers();
                let stamp = match st.frames.video(v, queued) {
                    Decision::Push(stamp) => stamp,
                    Decision::Drop(why) => {
                        self.shared.video_dropped.fetch_add(1, Ordering::Relaxed);
                        self.count_overflow(why);
                        return PushResult::Dropped;
                    }
                };
                if stamp.cut {
                    self.cut(stamp.pts);
                }
                match video_src.push_buffer(buffer(&v.data, &stamp)) {
                    Ok(_) => {
                        self.shared.arrived(stamp.pts, Instant::now());
                        self.shared.video_in.fetch_add(1, Ordering::Relaxed);
                        if let Some(silence) = st.frames.silence_for_video(stamp.dts) {
                            self.push_silence(&st, &silence);
                        }
                        PushResult::Queued
                    }
                    Err(_) => PushResult::Closed,
                }
            }
            MediaFrame::TrackConfig(id, cfg) => {
                let Some(t) = self.track_srcs.iter().find(|t| t.id == *id) else {
                    return PushResult::Dropped;
                };
                let Some(track) = st.tracks.get_mut(id) else {
                    return PushResult::Dropped;
                };
                // Another codec or size needs another rung: a new pipeline (the feeder's call).
                if cfg.codec != t.codec {
                    return PushResult::Dropped;
                }
                // The new configuration applies from the track's next keyframe.
                if track.config(&cfg.record) {
                    t.src.set_caps(Some(&video_caps(cfg, &cfg.record)));
                }
                PushResult::Queued
            }
            MediaFrame::TrackVideo(id, v) => {
                let Some(t) = self.track_srcs.iter().find(|t| t.id == *id) else {
                    return PushResult::Dropped;
                };
                let InputState { frames, tracks, .. } = &mut *st;
                let Some(track) = tracks.get_mut(id) else {
                    return PushResult::Dropped;
                };
                // Not counted as dropped: the counters say whether the ladder keeps up, and a
                // track's frames wait for its keyframe or for track 0 on their own.
                let Decision::Push(stamp) = track.video(v, t.src.current_level_buffers(), frames)
                else {
                    return PushResult::Dropped;
                };
                if track.first_told_misaligned() {
                    self.misaligned(t);
                }
                if track.is_misaligned() && self.audio_src.is_none() {
                    return PushResult::Dropped;
                }
                match t.src.push_buffer(buffer(&v.data, &stamp)) {
                    Ok(_) => PushResult::Queued,
                    Err(_) => PushResult::Closed,
                }
            }
            MediaFrame::Audio(a) => {
                let Some(src) = &self.audio_src else {
                    return PushResult::Dropped;
                };
                let (silence, decision) = st.frames.audio(a.pts, src.current_level_buffers());
                if let Some(silence) = silence {
                    self.push_silence(&st, &silence);
                }
                let stamp = match decision {
                    Decision::Push(stamp) => stamp,
                    Decision::Drop(why) => {
                        self.shared.audio_dropped.fetch_add(1, Ordering::Relaxed);
                        self.count_overflow(why);
                        return PushResult::Dropped;
                    }
                };
                if stamp.cut {
                    self.cut(stamp.pts);
                }
                match src.push_buffer(buffer(&a.data, &stamp)) {
                    Ok(_) => {
                        self.shared.audio_in.fetch_add(1, Ordering::Relaxed);
                        PushResult::Queued
                    }
                    Err(_) => PushResult::Closed,
                }
            }
        }
    }

    /// Track `t`'s keyframes missed a cut: its rung cannot start its segments where the others
    /// do. With audio the rung is shed from the next cut on (its segments become gaps, as an
    /// overloaded rung's do); without, the track's frames are dropped and its playlist stops.
    fn misaligned(&self, t: &TrackSrc) {
        let (rung, id) = (t.rung, t.id);
        if self.audio_src.is_some() {
            tracing::warn!(stream = %self.name, track = id, "the track's keyframes are not where track 0's are: its variant is shed (gaps) from the next segment on");
            self.shared.request_gate(rung, true);
        } else {
            tracing::warn!(stream = %self.name, track = id, "the track's keyframes are not where track 0's are: its variant stops here");
        }
    }

    /// Counts a drop that says the pipeline could not keep up (not a late or early frame).
    fn count_overflow(&self, why: Dropped) {
        // After a full queue, video waits for the next keyframe: those drops are the overflow's.
        if matches!(why, Dropped::QueueFull | Dropped::WaitingForKeyframe)
            && self.shared.video_in.load(Ordering::Relaxed) > 0
        {
            self.shared.overflow_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Pushes `silence` on the audio input: the same silent frame at each of its times.
    fn push_silence(&self, st: &InputState, silence: &Silence) {
        let (Some(src), Some(data)) = (&self.audio_src, &st.silent) else {
            return;
        };
        for pts in silence.times() {
            let stamp = Stamp {
                pts,
                dts: pts,
                delta_unit: false,
                discont: false,
                cut: false,
            };
            let mut b = buffer(data, &stamp);
            if let Some(b) = b.get_mut() {
                b.set_duration(gst::ClockTime::from_nseconds(silence.frame_ns));
            }
            if src.push_buffer(b).is_err() {
                return;
            }
            self.shared.audio_silence.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A segment starts at the source keyframe at `pts`: tells every encoder (through the cut
    /// list their probes read) and every muxer.
    fn cut(&self, pts: u64) {
        self.shared.add_cut(pts);
        let at = gst::ClockTime::from_nseconds(pts);
        for mux in &self.muxers {
            mux.emit_by_name::<()>("split-at-running-time", &[&at]);
        }
    }

    /// Ends the stream: sends end-of-stream, waits (bounded) until every rung has flushed its
    /// last segment, then stops the pipeline and its bus thread.
    pub(crate) fn finish(mut self) {
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
            if let Some(v) = &self.video_src {
                let _ = v.end_of_stream();
            }
            if let Some(a) = &self.audio_src {
                let _ = a.end_of_stream();
            }
            for t in &self.track_srcs {
                let _ = t.src.end_of_stream();
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

/// The input of another track of a multitrack publish.
struct TrackSrc {
    /// The track id.
    id: u8,
    src: gst_app::AppSrc,
    /// The codec the branch was built for.
    codec: VideoCodec,
    /// The rung that carries it.
    rung: usize,
}

/// Reads a pipeline's counters ([`crate::StreamPipeline::stats_reader`]). It keeps the counters, not
/// the pipeline: once the pipeline is gone, its input queues read empty.
#[derive(Clone)]
pub struct StatsReader {
    shared: Arc<Shared>,
    plan: Arc<[RungPlan]>,
    video_src: Option<gst::glib::WeakRef<gst_app::AppSrc>>,
    audio_src: Option<gst::glib::WeakRef<gst_app::AppSrc>>,
}

impl StatsReader {
    /// A reader of `shared`'s counters for a pipeline with no input queues.
    pub(crate) fn counters(shared: Arc<Shared>, plan: Arc<[RungPlan]>) -> StatsReader {
        StatsReader {
            shared,
            plan,
            video_src: None,
            audio_src: None,
        }
    }

    /// The counters now.
    pub fn read(&self) -> PipelineStats {
        let queued = |src: &Option<gst::glib::WeakRef<gst_app::AppSrc>>| {
            src.as_ref()
                .and_then(|s| s.upgrade())
                .map_or(0, |s| s.current_level_buffers())
        };
        self.shared
            .snapshot(&self.plan, queued(&self.video_src), queued(&self.audio_src))
    }
}

impl std::fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsReader")
            .field("rungs", &self.plan.len())
            .finish_non_exhaustive()
    }
}

impl Drop for GstPipeline {
    fn drop(&mut self) {
        self.teardown(false);
    }
}

/// Whether the pipeline can pass through another track of a multitrack publish whose
/// configuration is `config` ([`StartOptions::tracks`] leaves out those it cannot).
pub fn check_track(config: &VideoConfig) -> Result<(), Error> {
    check_input(Some(config), None)
}

/// Refuses input the pipeline cannot take: video other than H.264 with a valid avcC, audio
/// other than AAC with a valid AudioSpecificConfig or MP3 with a rate and channels.
pub(crate) fn check_input(
    video: Option<&VideoConfig>,
    audio: Option<&AudioConfig>,
) -> Result<(), Error> {
    if let Some(video) = video {
        match video.codec {
            VideoCodec::H264 => {
                media::h264::AvcDecoderConfigurationRecord::parse(&video.record)
                    .map_err(|e| Error::InvalidCodecConfig(format!("avcC: {e}")))?;
            }
            VideoCodec::Hevc => {
                media::hevc::HevcDecoderConfigurationRecord::parse(&video.record)
                    .map_err(|e| Error::InvalidCodecConfig(format!("hvcC: {e}")))?;
            }
            VideoCodec::Av1 => {
                media::av1::Av1CodecConfigurationRecord::parse(&video.record)
                    .map_err(|e| Error::InvalidCodecConfig(format!("av1C: {e}")))?;
            }
            VideoCodec::Vp9 => {
                media::vp9::VpCodecConfigurationRecord::parse(&video.record)
                    .map_err(|e| Error::InvalidCodecConfig(format!("vpcC: {e}")))?;
            }
            other => {
                return Err(Error::UnsupportedCodec(format!(
                    "video {other:?}: only H.264, HEVC, AV1 and VP9 are transcoded"
                )))
            }
        }
    } else if audio.is_none() {
        return Err(Error::InvalidConfig(
            "a stream needs video or audio".to_owned(),
        ));
    }
    if let Some(a) = audio {
        match a.codec {
            AudioCodec::Aac => {
                media::aac::AudioSpecificConfig::parse(&a.record)
                    .map_err(|e| Error::InvalidCodecConfig(format!("AudioSpecificConfig: {e}")))?;
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
    Ok(())
}

/// A buffer of `data` with `stamp`'s times and flags.
fn buffer(data: &bytes::Bytes, stamp: &Stamp) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(data.clone());
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::from_nseconds(stamp.pts));
        b.set_dts(gst::ClockTime::from_nseconds(stamp.dts));
        if stamp.delta_unit {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        if stamp.discont {
            b.set_flags(gst::BufferFlags::DISCONT);
        }
    }
    buffer
}
