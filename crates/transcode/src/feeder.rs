//! One publish's consumer, on a thread of its own: it reads the publish's frames from the
//! registry's queue and runs the stream's pipeline.
//!
//! A publish goes through three states. *Waiting*: frames are buffered (bounded) until the video
//! configuration, the audio configuration (or a short wait for it) and a keyframe have arrived;
//! a publish that sends only audio starts without video after the same short wait (and restarts
//! with video should video begin later).
//! *Running*: frames go to the pipeline without blocking; when it falls behind, the pipeline drops
//! and counts. *Finishing* (once the publish's queue closes): the pipeline is flushed and the
//! playlists end with `EXT-X-ENDLIST`. Building and flushing pipelines happens on this thread,
//! never on the ingest's network tasks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ingest::frames::{DropCounter, FrameReceiver, RecvError};
use ingest::{ConsumerFactory, EndReason, EndSignal, PublishOptions};
use media::{AudioConfig, MediaFrame, MediaTime, StreamName, VideoConfig};
use pipeline::accel::{FailurePolicy, Selection};
use pipeline::{LadderConfig, PushResult, StartOptions, StreamBackends, StreamPipeline};

use crate::continuity::{Continuity, ContinuityStore};
use crate::hardware::HardwareIssue;
use crate::metrics::RestartReason;
use crate::output::StreamOutput;
use crate::outputs::Busy;
use crate::running::{close, Running};
use crate::sink::Sink;
use crate::transcoder::Transcoder;

/// Frames buffered while waiting for configurations and a keyframe.
const MAX_PENDING: usize = 600;
/// How long to wait for an audio configuration once video has started.
const AUDIO_WAIT: Duration = Duration::from_secs(2);
/// How long a publish that continues another server's playlists waits for that server's last
/// word (its pipeline flushed) when its state is that recent.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);
/// How long a new publish waits for the previous publish of its name to flush, so that it can
/// continue its playlists.
const PREVIOUS_WAIT: Duration = Duration::from_secs(3);
/// Video timestamps that go back by more than this start a new timeline.
const JUMP_BACK: MediaTime = MediaTime::from_millis(1_000);
/// Video timestamps that leap ahead by more than this start a new timeline.
const JUMP_AHEAD: MediaTime = MediaTime::from_millis(10_000);
/// How long to wait for video once audio has started, before starting without video.
const VIDEO_WAIT: Duration = Duration::from_secs(2);
/// How long a publish's start waits for the first keyframe of another track whose
/// configuration has arrived, so that its rung is in the first pipeline (not added by a restart).
const TRACK_WAIT: Duration = Duration::from_secs(1);
/// The most restarts a publish's other tracks may cause (a track that starts late or changes
/// size); after that, a track that would need one is no longer fed.
const MAX_TRACK_RESTARTS: u32 = 3;
/// How long the feeder waits for a frame before it looks at its state again (the audio wait
/// runs out without a frame arriving).
const TICK: Duration = Duration::from_millis(100);

impl Transcoder {
    /// What the registry calls for each publish: refuses it at once when promised hardware is
    /// missing, else starts its feeder thread.
    pub fn consumer_factory(self: &Arc<Self>) -> ConsumerFactory {
        let this = self.clone();
        Arc::new(
            move |name: &StreamName,
                  options: &PublishOptions,
                  ended: EndSignal,
                  frames: FrameReceiver| {
                if let Some(why) = &this.hardware.refusal {
                    // Refused before any frame: the ingest sends the publisher an error status and
                    // closes.
                    this.refuse(name, &ended, HardwareIssue::Unavailable, why);
                    return;
                }
                let ladder = match this.ladder_for(options) {
                    Ok(ladder) => ladder,
                    Err(why) => {
                        tracing::warn!(stream = %name, "publish refused: {why}");
                        ended.end(EndReason::Refused(why));
                        return;
                    }
                };
                spawn(this.clone(), name.clone(), ladder, ended, frames);
            },
        )
    }

    /// The ladder of a publish: the configured one, or the renditions its authorizer named,
    /// in configuration order. A name that is not configured refuses the publish.
    fn ladder_for(&self, options: &PublishOptions) -> Result<Arc<LadderConfig>, String> {
        let Some(names) = &options.renditions else {
            return Ok(self.ladder.clone());
        };
        let known: Vec<String> = self
            .ladder
            .renditions
            .iter()
            .map(|r| r.name.clone())
            .collect();
        if let Some(why) = options.unknown_rendition(&known) {
            return Err(why);
        }
        let mut ladder = (*self.ladder).clone();
        ladder.renditions.retain(|r| names.contains(&r.name));
        Ok(Arc::new(ladder))
    }
}

impl Transcoder {
    /// Refuses a publish for want of hardware: the reason goes to the log, the metrics and, as
    /// an error status, to the publisher.
    fn refuse(&self, name: &StreamName, ended: &EndSignal, issue: HardwareIssue, why: &str) {
        tracing::error!(stream = %name, "publish refused: {why}");
        self.hardware.refuse(issue);
        self.metrics.pipeline_error(name.as_str());
        ended.end(EndReason::Refused(why.to_owned()));
    }
}

/// Starts the feeder thread of a publish. The drain waits for it (the busy guard) from now on.
fn spawn(
    transcoder: Arc<Transcoder>,
    name: StreamName,
    ladder: Arc<LadderConfig>,
    ended: EndSignal,
    frames: FrameReceiver,
) {
    let busy = transcoder.outputs.busy();
    let span = tracing::info_span!("stream", stream = %name);
    let feeder = Feeder {
        name,
        input_drops: frames.drop_counter(),
        transcoder,
        ladder,
        ended: ended.clone(),
        video: None,
        audio: None,
        tracks: BTreeMap::new(),
        keyed: BTreeSet::new(),
        refused: BTreeSet::new(),
        serving: Vec::new(),
        track_restarts: 0,
        pending: VecDeque::new(),
        first_video_at: None,
        first_audio_at: None,
        last_video_dts: None,
        deferred_at: None,
        running: None,
    };
    let spawned = std::thread::Builder::new()
        .name("ferrocast-feed".into())
        .spawn(move || {
            let _entered = span.entered();
            let _busy = busy;
            feeder.run(frames);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the transcoding thread; ending the publish");
        ended.end(EndReason::Refused(
            "the server is out of threads to transcode this stream".into(),
        ));
    }
}

/// One publish's consumer.
struct Feeder {
    name: StreamName,
    transcoder: Arc<Transcoder>,
    /// This publish's ladder: the configured one, or the renditions its authorizer chose.
    ladder: Arc<LadderConfig>,
    ended: EndSignal,
    input_drops: DropCounter,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// The configurations of a multitrack publish's other video tracks (the ingest hands on
    /// only those to serve), by track id; each is passed through on a rung of its own once a
    /// keyframe of it has arrived.
    tracks: BTreeMap<u8, VideoConfig>,
    /// The tracks whose keyframe has arrived since their configuration took its shape.
    keyed: BTreeSet<u8>,
    /// Tracks no longer fed (they needed a restart past [`MAX_TRACK_RESTARTS`]).
    refused: BTreeSet<u8>,
    /// The tracks the running pipeline was started with.
    serving: Vec<(u8, VideoConfig)>,
    /// Restarts the other tracks caused.
    track_restarts: u32,
    pending: VecDeque<MediaFrame>,
    first_video_at: Option<Instant>,
    first_audio_at: Option<Instant>,
    /// The newest video frame's decode time, to notice a jump.
    last_video_dts: Option<MediaTime>,
    /// When the start was first put off for the previous publish's pipeline to flush.
    deferred_at: Option<Instant>,
    running: Option<Running>,
}

impl Feeder {
    /// Feeds the publish's frames until its queue closes, then finishes the pipeline.
    fn run(mut self, frames: FrameReceiver) {
        loop {
            match frames.recv_timeout(TICK) {
                Ok(frame) => self.push(frame),
                // The audio wait may run out between frames; a publish that has ended waits for
                // nothing.
                Err(RecvError::Timeout) if self.running.is_none() && !self.ended.is_cancelled() => {
                    self.try_start()
                }
                Err(RecvError::Timeout) => self.look_for_overload(),
                Err(RecvError::Closed) => break,
            }
        }
        if let Some(running) = self.running.take() {
            // A publish that ended by itself leaves its playlists open for a publisher that comes
            // back; one that failed (or a drain) ends them.
            let keep_open = self.ended.reason().is_none_or(|r| r.keeps_playlists_open())
                && !self.transcoder.outputs.reconnect_window().is_zero();
            running.finish(
                &self.transcoder.metrics,
                &self.transcoder.outputs,
                keep_open,
            );
        }
    }

    fn push(&mut self, frame: MediaFrame) {
        match &frame {
            MediaFrame::VideoConfig(c) => {
                // A publish that started without video restarts with it.
                let changed = self
                    .running
                    .as_ref()
                    .is_some_and(|r| r.video.as_ref().is_none_or(|v| v.record != c.record));
                self.video = Some(c.clone());
                if changed {
                    // New resolution or profile mid-stream: a fresh pipeline and ladder.
                    tracing::info!(stream = %self.name, "video configuration changed; restarting the ladder");
                    self.transcoder
                        .metrics
                        .pipeline_restart(self.name.as_str(), RestartReason::ConfigChange);
                    self.finish_in_background();
                }
                return;
            }
            MediaFrame::AudioConfig(c) => {
                self.audio = Some(c.clone());
                return;
            }
            MediaFrame::TrackConfig(id, c) => {
                if let Err(e) = pipeline::check_track(c) {
                    tracing::warn!(stream = %self.name, track = id, "track not served: {e}");
                    self.tracks.remove(id);
                    self.keyed.remove(id);
                    return;
                }
                let unchanged = self.tracks.get(id).is_some_and(|t| same_shape(t, c));
                self.tracks.insert(*id, c.clone());
                if !unchanged {
                    // A new rung, or a new size: served from its next keyframe, by a restart.
                    self.keyed.remove(id);
                    return;
                }
                // The same rung: the running pipeline takes the new parameter sets.
                let serves = self
                    .serving
                    .iter()
                    .any(|(t, s)| t == id && same_shape(s, c));
                if let (true, Some(running)) = (serves, &mut self.running) {
                    running.push(&frame);
                }
                return;
            }
            MediaFrame::TrackVideo(id, v) => {
                if self.refused.contains(id) || !self.tracks.contains_key(id) {
                    return;
                }
                if !self.keyed.contains(id) {
                    if !v.keyframe {
                        return;
                    }
                    self.keyed.insert(*id);
                    self.track_keyed(*id);
                }
            }
            MediaFrame::Video(v) => {
                self.first_video_at.get_or_insert_with(Instant::now);
                let dts = v.dts;
                if let Some(last) = self.last_video_dts.replace(dts) {
                    if self.running.is_some() && is_timestamp_jump(last, dts) {
                        // An encoder restart or a spliced source: the old timeline cannot go on,
                        // so the ladder starts again on a new one, continuing the playlists.
                        tracing::warn!(
                            stream = %self.name,
                            from_ms = last.as_millis(),
                            to_ms = dts.as_millis(),
                            "the publisher's timestamps jumped; restarting the ladder on a new timeline"
                        );
                        self.transcoder
                            .metrics
                            .pipeline_restart(self.name.as_str(), RestartReason::TimestampJump);
                        self.finish_in_background();
                    }
                }
            }
            MediaFrame::Audio(_) => {
                self.first_audio_at.get_or_insert_with(Instant::now);
            }
        }
        if self.ended.is_cancelled() {
            return;
        }
        let fallback = (self.running.as_ref()).and_then(|r| r.output.control.take_fallback());
        if let Some(fallback) = fallback {
            self.restart_in_software(&fallback.to_string());
        }
        self.look_for_overload();
        if let Some(running) = &mut self.running {
            let result = running.push(&frame);
            let falling_back = running.output.control.falling_back();
            // A hardware failure that goes on in software is rebuilt on the next frame.
            if result == PushResult::Closed && !self.ended.is_cancelled() && !falling_back {
                tracing::warn!(stream = %self.name, "pipeline closed; ending the stream");
                self.ended
                    .end(EndReason::Failed("the pipeline closed".into()));
            }
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(frame);
        self.try_start();
    }

    /// Track `id`'s first keyframe (since its configuration took its shape) has arrived: a
    /// running pipeline that does not serve it in this shape is replaced by one that does.
    fn track_keyed(&mut self, id: u8) {
        let Some(config) = self.tracks.get(&id) else {
            return;
        };
        let running_video = self.running.as_ref().is_some_and(|r| r.video.is_some());
        let served = self
            .serving
            .iter()
            .any(|(t, s)| *t == id && same_shape(s, config));
        if !running_video || served {
            return;
        }
        if self.track_restarts >= MAX_TRACK_RESTARTS {
            tracing::warn!(stream = %self.name, track = id, "another video track started or changed again; it is no longer fed (restarts for tracks are spent)");
            self.refused.insert(id);
            return;
        }
        self.track_restarts += 1;
        tracing::info!(stream = %self.name, track = id, width = config.width, height = config.height, "another video track started or changed size; restarting the ladder with its rung");
        self.transcoder
            .metrics
            .pipeline_restart(self.name.as_str(), RestartReason::ConfigChange);
        self.finish_in_background();
    }

    fn try_start(&mut self) {
        let Some(video) = self.video.clone() else {
            self.try_start_audio_only();
            return;
        };
        let waited = |wait| self.first_video_at.is_some_and(|t| t.elapsed() >= wait);
        if self.audio.is_none() && !waited(AUDIO_WAIT) {
            return;
        }
        // Another track whose configuration came may have its keyframe just behind track 0's.
        let unkeyed =
            (self.tracks.keys()).any(|id| !self.keyed.contains(id) && !self.refused.contains(id));
        if unkeyed && !waited(TRACK_WAIT) {
            return;
        }
        // Start on a keyframe; everything before it is useless to a decoder.
        let Some(key) = self
            .pending
            .iter()
            .position(|f| matches!(f, MediaFrame::Video(v) if v.keyframe))
        else {
            return;
        };
        if self.previous_still_flushing() {
            return;
        }
        let key_dts = self.pending[key].dts().unwrap_or(MediaTime::ZERO);
        // From track 0's keyframe on; another track's frames from the same time on, even
        // those queued just before it (after it, so that it sets the timeline first).
        let mut early = Vec::new();
        let mut frames = Vec::new();
        for (i, f) in self.pending.drain(..).enumerate() {
            match &f {
                MediaFrame::TrackVideo(_, v) if i < key && v.dts >= key_dts => early.push(f),
                _ if i < key => {}
                MediaFrame::Audio(a) if a.pts < key_dts => {}
                _ => {
                    frames.push(f);
                    if i == key {
                        frames.append(&mut early);
                    }
                }
            }
        }
        let tracks = self.served_tracks();
        let plan = pipeline::with_tracks(
            pipeline::plan(&self.ladder.renditions, video.width, video.height),
            &tracks,
        );
        self.start(Some(video), plan, frames, tracks);
    }

    /// Starts a publish that has sent audio and no video configuration for [`VIDEO_WAIT`].
    fn try_start_audio_only(&mut self) {
        let waited = self
            .first_audio_at
            .is_some_and(|t| t.elapsed() >= VIDEO_WAIT);
        if self.audio.is_none() || !waited || self.previous_still_flushing() {
            return;
        }
        let frames: Vec<MediaFrame> = self
            .pending
            .drain(..)
            .filter(|f| matches!(f, MediaFrame::Audio(_)))
            .collect();
        let plan = pipeline::audio_only_plan(&self.ladder.renditions);
        self.start(None, plan, frames, Vec::new());
    }

    /// The previous publish of this name may still be flushing (a takeover, a quick reconnect,
    /// a configuration change): true while this one should wait, briefly, for it to leave its
    /// playlists open, so that it can continue them.
    fn previous_still_flushing(&mut self) -> bool {
        let busy = self
            .transcoder
            .outputs
            .get(self.name.as_str())
            .is_some_and(|o| !o.is_paused() && !o.is_over());
        if busy && self.deferred_at.get_or_insert_with(Instant::now).elapsed() < PREVIOUS_WAIT {
            return true;
        }
        self.deferred_at = None;
        false
    }

    /// Starts the pipeline of `video` (none: audio only) and `tracks` for `plan`, and pushes
    /// `frames` into it. A paused output of the same rungs is continued; otherwise a new one
    /// starts.
    fn start(
        &mut self,
        video: Option<VideoConfig>,
        plan: Vec<pipeline::RungPlan>,
        frames: Vec<MediaFrame>,
        tracks: Vec<(u8, VideoConfig)>,
    ) {
        let t = &self.transcoder;
        let names: Vec<&str> = plan.iter().map(|r| r.name.as_str()).collect();
        // A stream that was live on another server within the reconnect window continues its
        // playlists from where that server left them (cluster mode). A paused output here is
        // resumed only if no server has taken the stream further since.
        let carried = (t.continuity.get()).and_then(|store| self.carried(store.as_ref()));
        let resumed = t
            .outputs
            .get(self.name.as_str())
            .filter(|o| {
                carried.as_ref().is_none_or(|c| {
                    o.with_packager(|p| p.next_msn())
                        .is_some_and(|here| c.next_msn <= here)
                })
            })
            .filter(|o| o.packaged.resume(&names));
        let carried = carried.filter(|_| resumed.is_none());
        let output = match &resumed {
            Some(o) => o.clone(),
            None => {
                let (mut first_msn, mut first_discontinuity_sequence, mut first_init_version) = (
                    t.outputs.first_msn(&self.name),
                    t.outputs.first_discontinuity_sequence(&self.name),
                    t.outputs.first_init_version(&self.name),
                );
                let (mut first_msn_of, mut lost_of) = (Vec::new(), Vec::new());
                if let Some(c) = &carried {
                    // Its numbers, not the clock's: the sequence goes on without a jump, each
                    // rung after its own last segment (one rung may have opened a segment more
                    // than another as the owner stopped: no rung skips a number).
                    first_msn = c
                        .next_msn
                        .max(t.outputs.previous_msn(&self.name).unwrap_or(0));
                    // Only from a closed state (the owner flushed, and every rung's number
                    // was written before it): a dead owner's last write of a rung may not have
                    // landed, and a number its players saw must not be used again.
                    first_discontinuity_sequence =
                        first_discontinuity_sequence.max(c.next_discontinuity_sequence);
                    if c.closed {
                        first_msn_of = names
                            .iter()
                            .map(|&rung| {
                                let here = t.outputs.previous_msn_of(&self.name, rung);
                                let msn = c.next_msn_of(rung).max(here.unwrap_or(0));
                                (rung.to_owned(), msn)
                            })
                            .collect();
                    } else if first_msn == c.next_msn {
                        // A dead owner's: the segment each rung had open is lost. Its players
                        // may have some of its parts; they are told it is a gap, so that they
                        // skip the rest and play on into this publish. Only where it was in
                        // the discontinuity just before this publish's (the gaps are listed
                        // there; a rung that had one pending, or was shed, differs).
                        lost_of = names
                            .iter()
                            .filter_map(|&rung| {
                                let (msn, start, ds) = c.open_of(rung)?;
                                (ds + 1 == first_discontinuity_sequence)
                                    .then(|| (rung.to_owned(), msn, start))
                            })
                            .collect();
                    }
                    first_init_version = first_init_version.max(c.next_init_version);
                    tracing::info!(
                        stream = %self.name,
                        first_msn,
                        first_msn_of = ?first_msn_of,
                        lost_of = ?lost_of.iter().map(|(r, msn, _)| (r, msn)).collect::<Vec<_>>(),
                        first_discontinuity_sequence,
                        first_init_version,
                        same_rungs = c.rungs == plan.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
                        "continuing the playlists another server left within the reconnect window"
                    );
                }
                StreamOutput::new(
                    self.name.clone(),
                    hls::PackagerConfig {
                        first_msn,
                        first_msn_of,
                        first_discontinuity_sequence,
                        first_init_version,
                        lost_of,
                        ..t.packager.clone()
                    },
                    plan.len(),
                    self.input_drops.clone(),
                )
            }
        };
        // The timeline goes on no earlier than where the other server's ended (clocks differ).
        let epoch = carried
            .as_ref()
            .map_or(SystemTime::now(), |c| SystemTime::now().max(c.last_end));
        let options = StartOptions {
            selection: Some(t.hardware.selection.clone()),
            sessions: Some(t.hardware.sessions.clone()),
            on_failure: t.hardware.on_failure,
            input_offset: None,
            tracks: tracks.clone(),
            direct_passthrough: t.direct_passthrough,
        };
        match self.start_pipeline(&output, video.as_ref(), epoch, &options) {
            Ok(p) => {
                let backends = p.backends().clone();
                tracing::info!(
                    stream = %self.name,
                    width = video.as_ref().map_or(0, |v| v.width),
                    height = video.as_ref().map_or(0, |v| v.height),
                    audio = self.audio.is_some(),
                    rungs = plan.len(),
                    continues = resumed.is_some(),
                    // `direct`: a passthrough-only stream repackaged without GStreamer.
                    engine = if p.is_direct() { "direct" } else { "gstreamer" },
                    chain = %describe_backends(&backends),
                    "transcoding started"
                );
                for r in backends.rungs.iter().filter(|r| r.fallback.is_some()) {
                    t.hardware.fallback(HardwareIssue::SessionLimit);
                    tracing::warn!(stream = %self.name, rung = %r.name, reason = r.fallback.as_deref().unwrap_or(""), "rung encoded in software");
                }
                if resumed.is_none() {
                    t.outputs.replace(output.clone());
                }
                let mut running = Running::new(t, output, p, video, epoch, backends);
                for f in &frames {
                    running.push(f);
                }
                self.running = Some(running);
                self.serving = tracks;
            }
            Err(e) => {
                // A continued output has no pipeline now: its playlists end here.
                if resumed.is_some() {
                    close(&output, &t.metrics, false);
                }
                match e {
                    pipeline::Error::Accelerator(why) => {
                        t.refuse(&self.name, &self.ended, HardwareIssue::SessionLimit, &why);
                    }
                    e => {
                        tracing::error!(stream = %self.name, error = %e, "cannot start the pipeline; ending the stream");
                        t.metrics.pipeline_error(self.name.as_str());
                        self.ended
                            .end(EndReason::Failed(format!("cannot start the pipeline: {e}")));
                    }
                }
            }
        }
    }

    /// The continuity another server left for this stream in `store`, if any and believable.
    /// One written a moment ago by an owner that has not flushed yet (a drain, a publisher that
    /// left it) is waited for, at most [`HANDOVER_WAIT`], so that its last segment is counted.
    fn carried(&self, store: &dyn ContinuityStore) -> Option<Continuity> {
        let deadline = Instant::now() + HANDOVER_WAIT;
        loop {
            let state = store.load(self.name.as_str())?;
            let now = SystemTime::now();
            if !state.is_plausible(now) {
                tracing::warn!(stream = %self.name, next_msn = state.next_msn, "the playlists' continuity in the store is not believable; starting new playlists");
                return None;
            }
            let recent = now
                .duration_since(state.written)
                .map_or(true, |age| age < HANDOVER_WAIT);
            if state.closed || !recent || Instant::now() >= deadline {
                return Some(state);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Builds and starts a pipeline that writes into `output`.
    fn start_pipeline(
        &self,
        output: &Arc<StreamOutput>,
        video: Option<&VideoConfig>,
        epoch: SystemTime,
        options: &StartOptions,
    ) -> Result<StreamPipeline, pipeline::Error> {
        let t = &self.transcoder;
        let sink = Arc::new(Sink {
            output: output.clone(),
            metrics: t.metrics.clone(),
            epoch,
            ended: self.ended.clone(),
            hardware: t.hardware.clone(),
            continuity: t.continuity.get().cloned(),
        });
        match (video, &self.audio) {
            (Some(video), audio) => StreamPipeline::start_with(
                self.name.as_str(),
                video,
                audio.as_ref(),
                &self.ladder,
                sink,
                options,
            ),
            (None, Some(audio)) => StreamPipeline::start_audio_only(
                self.name.as_str(),
                audio,
                &self.ladder,
                sink,
                options,
            ),
            (None, None) => Err(pipeline::Error::InvalidConfig(
                "a stream needs video or audio".to_owned(),
            )),
        }
    }

    /// Replaces a pipeline whose hardware failed by an all-software one on the same output:
    /// the timeline continues, and every rung's playlist marks the change with
    /// `EXT-X-DISCONTINUITY`.
    fn restart_in_software(&mut self, why: &str) {
        let Some(running) = self.running.take() else {
            return;
        };
        let t = self.transcoder.clone();
        let (output, video, epoch, offset) = running.stop();
        output.packaged.discontinuity();
        let options = StartOptions {
            selection: Some(Selection::software()),
            sessions: None,
            on_failure: FailurePolicy::Fallback,
            input_offset: offset,
            // The same rungs as the output was made for.
            tracks: self.serving.clone(),
            direct_passthrough: t.direct_passthrough,
        };
        match self.start_pipeline(&output, video.as_ref(), epoch, &options) {
            Ok(p) => {
                tracing::warn!(stream = %self.name, reason = %why, chain = %describe_backends(p.backends()), "stream continues in software after a hardware failure");
                t.metrics
                    .pipeline_restart(self.name.as_str(), RestartReason::HardwareFallback);
                let mut backends = p.backends().clone();
                for r in backends.rungs.iter_mut().filter(|r| r.encoder.is_some()) {
                    r.fallback = Some(format!("runtime fallback: {why}"));
                }
                self.running = Some(Running::new(&t, output, p, video, epoch, backends));
            }
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "cannot rebuild the stream in software; ending it");
                t.metrics.pipeline_error(self.name.as_str());
                // No pipeline is left: the playlists end here.
                close(&output, &t.metrics, false);
                self.ended.end(EndReason::Failed(format!(
                    "cannot rebuild the stream in software: {e}"
                )));
            }
        }
    }

    /// The other video tracks to serve (those whose keyframe has come), by track id.
    fn served_tracks(&self) -> Vec<(u8, VideoConfig)> {
        (self.tracks.iter())
            .filter(|(id, _)| self.keyed.contains(id) && !self.refused.contains(id))
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }

    /// About once a second, a look at the running stream for overload ([`Running`]).
    fn look_for_overload(&mut self) {
        if let Some(running) = &mut self.running {
            running.look_for_overload(&self.transcoder, &self.input_drops);
        }
    }

    /// Flushes and ends the running pipeline on a thread of its own, so that the next one can
    /// start at once.
    fn finish_in_background(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let busy: Busy = self.transcoder.outputs.busy();
        let metrics = self.transcoder.metrics.clone();
        let outputs = self.transcoder.outputs.clone();
        let span = tracing::info_span!("stream", stream = %self.name);
        let spawned = std::thread::Builder::new()
            .name("ferrocast-finish".into())
            .spawn(move || {
                let _entered = span.entered();
                let _busy = busy;
                // Left open, so that the new pipeline continues the same playlists.
                running.finish(&metrics, &outputs, true);
            });
        if spawned.is_err() {
            tracing::error!(stream = %self.name, "cannot spawn the finishing thread");
        }
    }
}

/// Whether two configurations of a track make the same rung: the codec and the size.
fn same_shape(a: &VideoConfig, b: &VideoConfig) -> bool {
    (a.codec, a.width, a.height) == (b.codec, b.width, b.height)
}

/// A video decode time that went back more than [`JUMP_BACK`] or ahead more than
/// [`JUMP_AHEAD`] from the one before: not reordering or a dropped frame, but a new timeline.
fn is_timestamp_jump(last: MediaTime, dts: MediaTime) -> bool {
    dts + JUMP_BACK < last || dts > last + JUMP_AHEAD
}

/// `decode=nvh264dec(nvidia) scale=nvidia 720p=nvh264enc(nvidia) 480p=x264enc(software)`.
fn describe_backends(b: &StreamBackends) -> String {
    let mut out = format!(
        "decode={}({}) scale={}",
        b.decoder.factory, b.decoder.backend, b.scale
    );
    for r in &b.rungs {
        if let Some(enc) = &r.encoder {
            out.push_str(&format!(" {}={enc}({})", r.name, r.backend));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_told_from_reordering_and_gaps() {
        let ms = MediaTime::from_millis;
        assert!(!is_timestamp_jump(ms(5_000), ms(5_033)), "the next frame");
        assert!(
            !is_timestamp_jump(ms(5_000), ms(4_100)),
            "within a second back"
        );
        assert!(
            !is_timestamp_jump(ms(5_000), ms(14_000)),
            "a gap of a few seconds"
        );
        assert!(is_timestamp_jump(ms(60_000), ms(0)), "an encoder restart");
        assert!(is_timestamp_jump(ms(5_000), ms(3_605_000)), "an hour ahead");
    }
}
