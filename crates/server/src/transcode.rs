//! From a publish's media frames to HLS: the registry's [`MediaConsumer`] that starts a
//! [`pipeline::StreamPipeline`] per publish and packages its chunks with an [`hls::Packager`].
//!
//! A publish goes through three states. *Waiting*: frames are buffered (bounded) until the video
//! configuration, the audio configuration (or a short wait for it) and a keyframe have arrived.
//! *Running*: frames go to the pipeline without blocking; when it falls behind, the pipeline drops
//! and counts. *Finishing* (on unpublish): the pipeline is flushed on a plain thread, so the
//! network task never waits, and the playlists end with `EXT-X-ENDLIST`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use media::cmaf::{ChunkKind, CmafChunk};
use media::{AudioConfig, MediaFrame, MediaTime, StreamName, VideoConfig};
use pipeline::accel::{
    self, AcceleratorPolicy, Capabilities, FailurePolicy, Selection, SessionBudget,
};
use pipeline::{
    ChunkSink, Failure, LadderConfig, PushResult, RungInfo, StartOptions, StreamBackends,
    StreamPipeline,
};
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::{ConsumerFactory, EndSignal, MediaConsumer};

/// Frames buffered while waiting for configurations and a keyframe.
const MAX_PENDING: usize = 600;
/// How long to wait for an audio configuration once video has started.
const AUDIO_WAIT: Duration = Duration::from_secs(2);

/// Environment variable that must be `1` for `transcode.test_fault_encoder` to be honoured: the
/// fault injection is a testing knob, unreachable from a configuration file alone.
pub const ENV_TEST_FAULTS: &str = "TESTING_FERROCAST_FAULTS";

/// Every stream's HLS output, for the HTTP side.
#[derive(Debug)]
pub struct Outputs {
    map: Mutex<HashMap<StreamName, Arc<StreamOutput>>>,
    keep_ended: Duration,
    finishing: AtomicUsize,
    finished: watch::Sender<()>,
    accelerator: std::sync::OnceLock<Arc<Accelerator>>,
}

/// What the machine offers and what the policy makes of it: probed once at start-up.
#[derive(Debug)]
pub struct Accelerator {
    /// `transcode.accelerator`.
    pub policy: AcceleratorPolicy,
    /// `transcode.on_accelerator_failure`.
    pub on_failure: FailurePolicy,
    /// The probe's findings.
    pub capabilities: Capabilities,
    /// The chain every stream starts with.
    pub selection: Selection,
    /// NVENC sessions, per rung.
    pub sessions: Arc<SessionBudget>,
    /// Set when publishes must be refused (promised hardware missing under `fail`).
    pub refusal: Option<String>,
    /// Fallbacks to software, by reason (`unavailable`, `session_limit`, `runtime_error`).
    pub fallbacks: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Publishes refused or streams ended for want of hardware, by reason.
    pub refusals: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Accelerator {
    /// Probes the running GStreamer and selects the chain for `config`.
    pub fn probe(config: &Config) -> Accelerator {
        Accelerator::from_registry(config, &accel::GstRegistry::new())
    }

    /// As [`Accelerator::probe`], over any registry (tests inject a fake).
    pub fn from_registry(config: &Config, registry: &dyn accel::ElementRegistry) -> Accelerator {
        use crate::config::{Accelerator as A, OnAcceleratorFailure as F};
        let policy = match config.transcode.accelerator {
            A::Auto => AcceleratorPolicy::Auto,
            A::Nvidia => AcceleratorPolicy::Nvidia,
            A::Software => AcceleratorPolicy::Software,
        };
        let on_failure = match config.transcode.on_accelerator_failure {
            F::Fallback => FailurePolicy::Fallback,
            F::Fail => FailurePolicy::Fail,
        };
        let capabilities = accel::probe(registry, config.nvidia.device);
        let mut selection = accel::select(&capabilities, policy);
        let faults_allowed = std::env::var(ENV_TEST_FAULTS).is_ok_and(|v| v == "1");
        if let Some(after) = config.transcode.fault_encoder_after() {
            if faults_allowed {
                tracing::warn!(
                    after,
                    "TEST ONLY: every rung's encoder is a fault-injecting stand-in for NVENC"
                );
                selection = selection.with_fault_encoder(after);
            } else {
                tracing::warn!("transcode.test_fault_encoder is ignored: it is a testing knob and needs {ENV_TEST_FAULTS}=1");
            }
        }
        let refusal = (on_failure == FailurePolicy::Fail && !selection.unmet.is_empty()).then(|| {
            format!(
                "transcode.accelerator = \"{}\" with on_accelerator_failure = \"fail\", but {}; \
                 check the NVIDIA driver and container runtime (NVIDIA_DRIVER_CAPABILITIES=compute,video,utility) \
                 or set on_accelerator_failure = \"fallback\"",
                policy.as_str(),
                selection.unmet.join("; ")
            )
        });
        let limit = config.nvidia.max_encode_sessions;
        Accelerator {
            policy,
            on_failure,
            capabilities,
            selection,
            sessions: SessionBudget::new((limit > 0).then_some(limit)),
            refusal,
            fallbacks: Mutex::new(Default::default()),
            refusals: Mutex::new(Default::default()),
        }
    }

    /// Logs what was found and chosen (once, at start-up).
    pub fn log(&self) {
        tracing::info!(probe = %self.capabilities.summary(), "accelerator probe");
        tracing::info!(
            policy = self.policy.as_str(),
            on_failure = self.on_failure.as_str(),
            chain = %self.selection.describe(),
            "accelerator selection"
        );
        for (stage, why) in &self.selection.fallbacks {
            tracing::info!(stage = stage.as_str(), "software {}: {why}", stage.as_str());
        }
        if let Some(r) = &self.refusal {
            tracing::error!("publishes will be refused: {r}");
        } else if !self.selection.unmet.is_empty() {
            self.count_fallback("unavailable");
            tracing::warn!(unmet = ?self.selection.unmet, "promised hardware is missing; falling back to software");
        }
    }

    fn count_fallback(&self, reason: &'static str) {
        *self
            .fallbacks
            .lock()
            .expect("fallbacks lock")
            .entry(reason)
            .or_default() += 1;
    }

    fn count_refusal(&self, reason: &'static str) {
        *self
            .refusals
            .lock()
            .expect("refusals lock")
            .entry(reason)
            .or_default() += 1;
    }
}

/// One stream's pipeline, packager and the cursor HTTP waiters watch.
pub struct StreamOutput {
    name: StreamName,
    state: Mutex<OutputState>,
    changed: watch::Sender<u64>,
    rates: Mutex<Vec<RateMeter>>,
    /// The running pipeline; taken out when it finishes.
    pipeline: Mutex<Option<StreamPipeline>>,
    /// The running pipeline's element chain (kept after it ends, for the API).
    backends: Mutex<Option<StreamBackends>>,
    /// A hardware element failed and the policy says go on in software: the reason, until the
    /// feeder has rebuilt the pipeline.
    fallback: Mutex<Option<String>>,
    /// Playlists as last rendered, each with the change count it was rendered at: a playlist is
    /// rendered once per change, however many requests (held or not) ask for it.
    rendered: Mutex<Vec<Rendered>>,
}

/// One rendered playlist.
#[derive(Debug)]
struct Rendered {
    /// The rung; `None` for the master playlist.
    rung: Option<String>,
    /// Rendered as a delta update (`_HLS_skip`).
    skip: bool,
    /// The change count the text is at least as new as.
    version: u64,
    text: bytes::Bytes,
}

/// What one chunk made visible to players.
#[derive(Debug)]
struct Listed {
    /// The rung's name.
    rung: String,
    /// The duration of the segment the chunk completed, if it completed one.
    completed: Option<MediaTime>,
    /// Whether the chunk is a listed part (not an init segment).
    part: bool,
    /// Arrival times of the frames that became listed with it.
    arrivals: Vec<Instant>,
}

impl std::fmt::Debug for StreamOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOutput")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum OutputState {
    /// Rungs announce themselves before their first chunk; the packager needs them all.
    Starting {
        packager_config: hls::PackagerConfig,
        planned: usize,
        ready: Vec<Option<RungInfo>>,
        pending: Vec<(usize, CmafChunk, SystemTime)>,
    },
    Live {
        packager: hls::Packager,
        names: Vec<String>,
    },
    Failed,
}

impl Outputs {
    /// An empty set of outputs; ended streams are kept for `keep_ended`.
    pub fn new(keep_ended: Duration) -> Arc<Outputs> {
        Arc::new(Outputs {
            map: Mutex::new(HashMap::new()),
            keep_ended,
            finishing: AtomicUsize::new(0),
            finished: watch::channel(()).0,
            accelerator: std::sync::OnceLock::new(),
        })
    }

    /// The start-up probe and selection, once the transcoder exists.
    pub fn accelerator(&self) -> Option<Arc<Accelerator>> {
        self.accelerator.get().cloned()
    }

    /// The output of a stream, if it has one (live, starting, or ended but still kept).
    /// On the request path, so it looks at one output only; ended outputs past `keep_ended` are
    /// dropped here when asked for, and all at once in [`Outputs::all`] (each scrape).
    pub fn get(&self, name: &str) -> Option<Arc<StreamOutput>> {
        let mut map = self.map.lock().expect("outputs lock");
        let (key, output) = map.iter().find(|(n, _)| n.as_str() == name)?;
        if output.expired(self.keep_ended) {
            let key = key.clone();
            map.remove(&key);
            return None;
        }
        Some(output.clone())
    }

    /// All outputs still served, for metrics.
    pub fn all(&self) -> Vec<Arc<StreamOutput>> {
        let mut map = self.map.lock().expect("outputs lock");
        let keep = self.keep_ended;
        map.retain(|_, o| !o.expired(keep));
        map.values().cloned().collect()
    }

    /// Where a new publish of `name` starts its media sequence numbers. Segments are served as
    /// immutable, so a URI must never name two contents: not after a reconnect (continue after
    /// the previous publish) and not after a restart of the process (start from the clock, in
    /// units of the shortest allowed segment, 500 ms, which no real-time publish can outrun).
    fn first_msn(&self, name: &StreamName) -> u64 {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_millis() / 500) as u64)
            .unwrap_or(0);
        let previous = self
            .map
            .lock()
            .expect("outputs lock")
            .get(name)
            .and_then(|o| o.with_packager(|p| p.next_msn()))
            .unwrap_or(0);
        clock.max(previous)
    }

    fn replace(&self, output: Arc<StreamOutput>) {
        self.map
            .lock()
            .expect("outputs lock")
            .insert(output.name.clone(), output);
    }

    /// Waits until every finishing pipeline has flushed (ENDLIST written), or the deadline.
    pub async fn wait_finished(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.finished.subscribe();
        loop {
            if self.finishing.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }
}

impl StreamOutput {
    fn new(name: StreamName, packager_config: hls::PackagerConfig, planned: usize) -> Arc<Self> {
        let interval = chunk_interval(&packager_config);
        Arc::new(StreamOutput {
            name,
            rendered: Mutex::new(Vec::new()),
            state: Mutex::new(OutputState::Starting {
                packager_config,
                planned,
                ready: vec![None; planned],
                pending: Vec::new(),
            }),
            changed: watch::channel(0).0,
            rates: Mutex::new((0..planned).map(|_| RateMeter::new(interval)).collect()),
            pipeline: Mutex::new(None),
            backends: Mutex::new(None),
            fallback: Mutex::new(None),
        })
    }

    /// The element chain of the stream's (newest) pipeline.
    pub fn backends(&self) -> Option<StreamBackends> {
        self.backends.lock().expect("backends lock").clone()
    }

    /// The running pipeline's counters, if it runs.
    pub fn pipeline_stats(&self) -> Option<pipeline::PipelineStats> {
        self.pipeline
            .lock()
            .expect("pipeline lock")
            .as_ref()
            .map(|p| p.stats())
    }

    /// The stream name.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// A receiver that changes whenever the packager does (a chunk, the end).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Runs `f` on the packager once it exists.
    pub fn with_packager<R>(&self, f: impl FnOnce(&hls::Packager) -> R) -> Option<R> {
        match &*self.state.lock().expect("output lock") {
            OutputState::Live { packager, .. } => Some(f(packager)),
            _ => None,
        }
    }

    /// The media playlist of `rung` (a delta update with `skip`), or the master playlist for
    /// `None`; `None` before packaging starts or for an unknown rung. Rendered once per change of
    /// the stream: the text is cached with the change count read before rendering, so a cached
    /// text is never older than the count it is served for.
    pub fn playlist(&self, rung: Option<&str>, skip: bool) -> Option<bytes::Bytes> {
        let version = *self.changed.borrow();
        let matches = |r: &Rendered| r.rung.as_deref() == rung && r.skip == skip;
        {
            let cache = self.rendered.lock().expect("rendered lock");
            if let Some(r) = cache.iter().find(|r| matches(r) && r.version == version) {
                return Some(r.text.clone());
            }
        }
        let text: bytes::Bytes = self
            .with_packager(|p| match rung {
                Some(rung) => p.media_playlist(rung, skip).ok(),
                None => Some(p.master_playlist()),
            })
            .flatten()?
            .into();
        let mut cache = self.rendered.lock().expect("rendered lock");
        match cache.iter_mut().find(|r| matches(r)) {
            Some(r) if r.version <= version => {
                r.version = version;
                r.text = text.clone();
            }
            Some(_) => {}
            // Rungs that exist (an unknown one renders nothing), with and without skip, and
            // the master: bounded by the ladder.
            None => cache.push(Rendered {
                rung: rung.map(str::to_owned),
                skip,
                version,
                text: text.clone(),
            }),
        }
        Some(text)
    }

    /// True once the stream has ended or failed: waiting for more is pointless.
    pub fn is_over(&self) -> bool {
        match &*self.state.lock().expect("output lock") {
            OutputState::Live { packager, .. } => packager.ended_at().is_some(),
            OutputState::Failed => true,
            OutputState::Starting { .. } => false,
        }
    }

    /// Media seconds produced per wall second over the last few seconds, per rung name.
    pub fn realtime_factors(&self) -> Vec<(String, f64)> {
        let names = self
            .with_packager(|p| p.variants().map(|v| v.name.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        let now = Instant::now();
        let rates = self.rates.lock().expect("rates lock");
        names
            .into_iter()
            .zip(rates.iter())
            .filter_map(|(n, r)| Some((n, r.factor(now)?)))
            .collect()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn expired(&self, keep: Duration) -> bool {
        let state = self.state.lock().expect("output lock");
        match &*state {
            OutputState::Live { packager, .. } => packager
                .ended_at()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > keep),
            _ => false,
        }
    }

    fn on_rung_ready(&self, info: RungInfo) {
        let mut state = self.state.lock().expect("output lock");
        let OutputState::Starting {
            packager_config,
            planned,
            ready,
            pending,
        } = &mut *state
        else {
            return;
        };
        if let Some(slot) = ready.get_mut(info.index) {
            *slot = Some(info);
        }
        if ready.iter().filter(|r| r.is_some()).count() < *planned {
            return;
        }
        let infos: Vec<RungInfo> = ready.iter().flatten().cloned().collect();
        let variants = infos
            .iter()
            .map(|r| hls::Variant {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                frame_rate: r.frame_rate,
                video_codec: r.video_codec.clone(),
                audio_codec: r.audio_codec.clone(),
                bitrate_kbps: r.video_kbps,
            })
            .collect();
        match hls::Packager::in_memory(packager_config.clone(), variants) {
            Ok(mut packager) => {
                let names: Vec<String> = infos.iter().map(|r| r.name.clone()).collect();
                for (rung, chunk, pdt) in pending.drain(..) {
                    if let Some(name) = names.get(rung) {
                        if let Err(e) = packager.push(name, chunk, pdt) {
                            tracing::warn!(stream = %self.name, error = %e, "packager refused a chunk");
                        }
                    }
                }
                tracing::info!(stream = %self.name, rungs = ?names, "ladder ready");
                *state = OutputState::Live { packager, names };
            }
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "cannot package the ladder");
                *state = OutputState::Failed;
            }
        }
        // Bumped under the lock, so that whoever sees the new state also sees the new count
        // (the playlist cache relies on it).
        self.bump();
        drop(state);
    }

    /// Pushes a chunk; once packaging has started, says what it made visible to players.
    fn on_chunk(
        &self,
        rung: usize,
        chunk: CmafChunk,
        pdt: SystemTime,
        arrivals: &[Instant],
    ) -> Option<Listed> {
        let end = chunk.pts + chunk.duration;
        let kind = chunk.kind;
        let mut listed = None;
        {
            let mut state = self.state.lock().expect("output lock");
            match &mut *state {
                OutputState::Starting { pending, .. } => pending.push((rung, chunk, pdt)),
                OutputState::Live { packager, names } => {
                    let name = names.get(rung)?.clone();
                    let before = packager.stats(&name).map(|s| s.segments).unwrap_or(0);
                    let pushed = packager.push(&name, chunk, pdt);
                    if let Err(e) = &pushed {
                        tracing::warn!(stream = %self.name, rung = %name, error = %e, "packager refused a chunk");
                    }
                    let completed = packager
                        .stats(&name)
                        .ok()
                        .filter(|s| s.segments > before)
                        .and_then(|s| s.last_segment_duration);
                    // A chunk is listed as it is pushed: as a part with LL-HLS, as a whole
                    // segment without (`PackagerConfig::whole_segments`).
                    let part = pushed.is_ok() && kind != ChunkKind::Init;
                    listed = Some(Listed {
                        arrivals: if part { arrivals.to_vec() } else { Vec::new() },
                        rung: name,
                        completed,
                        part,
                    });
                }
                OutputState::Failed => return None,
            }
            // Under the lock: see `on_rung_ready`.
            self.bump();
        }
        if let Some(meter) = self.rates.lock().expect("rates lock").get_mut(rung) {
            meter.record(Instant::now(), end);
        }
        listed
    }

    /// Ends the playlists (ENDLIST); returns the segments this closed, per rung.
    fn end(&self) -> Vec<(String, MediaTime)> {
        let mut closed = Vec::new();
        let mut state = self.state.lock().expect("output lock");
        if let OutputState::Live { packager, names } = &mut *state {
            if packager.ended_at().is_none() {
                let before: Vec<u64> = names
                    .iter()
                    .map(|n| packager.stats(n).map(|s| s.segments).unwrap_or(0))
                    .collect();
                packager.end(SystemTime::now());
                for (name, before) in names.iter().zip(before) {
                    if let Ok(s) = packager.stats(name) {
                        if s.segments > before {
                            if let Some(d) = s.last_segment_duration {
                                closed.push((name.clone(), d));
                            }
                        }
                    }
                }
            }
        } else {
            *state = OutputState::Failed;
        }
        self.bump();
        drop(state);
        closed
    }
}

/// How often a rung hands over a chunk: a part with LL-HLS, a whole segment without.
fn chunk_interval(c: &hls::PackagerConfig) -> Duration {
    if c.low_latency {
        c.part_target
    } else {
        c.segment_duration
    }
}

/// Media time produced per wall second, from recent chunk ends.
#[derive(Debug)]
struct RateMeter {
    samples: VecDeque<(Instant, MediaTime)>,
    /// No chunk for this long is a stall, not the gap between two chunks.
    stall: Duration,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(5);

    fn new(chunk_interval: Duration) -> RateMeter {
        RateMeter {
            samples: VecDeque::new(),
            stall: (chunk_interval * 3 / 2).max(Duration::from_millis(2500)),
        }
    }

    fn record(&mut self, at: Instant, media_end: MediaTime) {
        self.samples.push_back((at, media_end));
        while self.samples.len() > 64 {
            self.samples.pop_front();
        }
    }

    /// Over the last `WINDOW` of wall time before the newest chunk (or since the first sample):
    /// a pipeline that keeps up reads about 1 whenever it is asked, not less by however long ago
    /// its last chunk came. Once nothing has come for longer than the stall limit, the wall time
    /// runs on to `now`, so a stalled pipeline decays towards 0. `None` until there are two
    /// chunks half a second apart: nothing to measure yet.
    fn factor(&self, now: Instant) -> Option<f64> {
        let &(newest_at, newest) = self.samples.back()?;
        let until = if now.saturating_duration_since(newest_at) <= self.stall_limit() {
            newest_at
        } else {
            now
        };
        let (t0, m0) = self
            .samples
            .iter()
            .rev()
            .skip(1)
            .find(|(t, _)| newest_at.saturating_duration_since(*t) >= Self::WINDOW)
            .or_else(|| self.samples.front().filter(|_| self.samples.len() > 1))
            .copied()?;
        let wall = until.saturating_duration_since(t0).as_secs_f64();
        if wall < 0.5 {
            return None;
        }
        Some(((newest - m0).as_secs_f64() / wall).max(0.0))
    }

    /// No chunk for this long is a stall: the configured limit, or half again the longest
    /// recent gap between chunks (a passthrough rung's segments follow the source's keyframes,
    /// which may be further apart than configured).
    fn stall_limit(&self) -> Duration {
        let newer = self.samples.iter().rev().take(8);
        let older = self.samples.iter().rev().skip(1);
        newer
            .zip(older)
            .map(|((n, _), (o, _))| n.saturating_duration_since(*o))
            .max()
            .map_or(self.stall, |g| self.stall.max(g * 3 / 2))
    }
}

/// What the pipeline's threads call.
struct Sink {
    output: Arc<StreamOutput>,
    metrics: Arc<Metrics>,
    /// Wall clock of media time zero: the arrival of the first frame fed to the pipeline.
    epoch: SystemTime,
    ended: EndSignal,
    accelerator: Arc<Accelerator>,
}

impl ChunkSink for Sink {
    fn on_rung_ready(&self, info: RungInfo) {
        tracing::debug!(stream = %self.output.name, rung = %info.name, width = info.width, height = info.height, codec = %info.video_codec, "rung ready");
        self.output.on_rung_ready(info);
    }

    fn on_chunk(&self, rung: usize, chunk: CmafChunk, arrivals: &[Instant]) {
        let pts = u64::try_from(chunk.pts.as_nanos()).unwrap_or(0);
        let pdt = self.epoch + Duration::from_nanos(pts);
        let bytes = chunk.data.len() as u64;
        if let Some(listed) = self.output.on_chunk(rung, chunk, pdt, arrivals) {
            let now = Instant::now();
            let stream = self.output.name.as_str();
            self.metrics.packaged(stream, &listed.rung, bytes);
            if let Some(d) = listed.completed {
                self.metrics
                    .segment_completed(stream, &listed.rung, d.as_secs_f64());
            }
            self.metrics
                .listed(stream, &listed.rung, listed.part, &listed.arrivals, now);
        }
    }

    fn on_failure(&self, failure: Failure) {
        let Some(fault) = &failure.accelerator else {
            return self.on_error(failure.message);
        };
        if self.accelerator.on_failure == FailurePolicy::Fallback {
            tracing::warn!(
                stream = %self.output.name,
                stage = fault.stage.as_str(),
                element = %fault.element,
                error = %failure.message,
                "hardware {} failed; rebuilding the stream in software",
                fault.stage.as_str()
            );
            self.accelerator.count_fallback("runtime_error");
            *self.output.fallback.lock().expect("fallback lock") = Some(format!(
                "{} ({}) failed: {}",
                fault.element, fault.backend, failure.message
            ));
            return;
        }
        tracing::error!(
            stream = %self.output.name,
            stage = fault.stage.as_str(),
            element = %fault.element,
            error = %failure.message,
            "hardware {} failed and transcode.on_accelerator_failure = \"fail\"; ending the stream",
            fault.stage.as_str()
        );
        self.accelerator.count_refusal("runtime_error");
        self.on_error(failure.message);
    }

    fn on_error(&self, message: String) {
        tracing::error!(stream = %self.output.name, error = %message, "pipeline failed; ending the stream");
        self.metrics.pipeline_error(self.output.name.as_str());
        // Ends the publish: the ingest connection closes, and unpublish tidies up.
        self.ended.end(format!("Transcoding failed: {message}"));
    }
}

/// Settings every feeder shares.
#[derive(Debug)]
pub struct Transcoder {
    ladder: LadderConfig,
    packager: hls::PackagerConfig,
    outputs: Arc<Outputs>,
    metrics: Arc<Metrics>,
    accelerator: Arc<Accelerator>,
}

impl Transcoder {
    /// From the service configuration.
    pub fn new(config: &Config, outputs: Arc<Outputs>, metrics: Arc<Metrics>) -> Arc<Transcoder> {
        let ladder = LadderConfig {
            renditions: config
                .transcode
                .renditions
                .iter()
                .map(|r| pipeline::Rendition {
                    name: r.name.to_string(),
                    height: r.height,
                    video_kbps: r.video_kbps,
                    fps: r.fps,
                    passthrough: r.passthrough,
                })
                .collect(),
            preset: config.transcode.preset.clone(),
            segment_duration: config.hls.segment_duration,
            part_duration: config.hls.low_latency.then_some(config.hls.part_duration),
            max_queued_frames: config.transcode.max_queued_frames,
        };
        let packager = hls::PackagerConfig {
            window: config.hls.window,
            segment_duration: config.hls.segment_duration,
            low_latency: config.hls.low_latency,
            part_target: config.hls.part_duration,
            // Without LL-HLS the muxer has no chunk duration: each segment is one chunk.
            whole_segments: !config.hls.low_latency,
            ..hls::PackagerConfig::default()
        };
        let accelerator = Arc::new(Accelerator::probe(config));
        accelerator.log();
        if outputs.accelerator.set(accelerator.clone()).is_ok() {
            metrics.watch_accelerator(&outputs);
        }
        Arc::new(Transcoder {
            ladder,
            packager,
            outputs,
            metrics,
            accelerator,
        })
    }

    /// The factory the registry calls for each publish.
    pub fn factory(self: &Arc<Self>) -> ConsumerFactory {
        let this = self.clone();
        Arc::new(move |name: &StreamName, ended: EndSignal| {
            if let Some(why) = &this.accelerator.refusal {
                // Refused before any frame: the ingest sends the publisher an error status and
                // closes; the reason is in the log, the API and the metrics.
                tracing::error!(stream = %name, "publish refused: {why}");
                this.accelerator.count_refusal("unavailable");
                this.metrics.pipeline_error(name.as_str());
                ended.end(format!("Refused: {why}"));
            }
            Box::new(Feeder {
                name: name.clone(),
                transcoder: this.clone(),
                ended,
                video: None,
                audio: None,
                pending: VecDeque::new(),
                first_video_at: None,
                running: None,
            }) as Box<dyn MediaConsumer>
        })
    }
}

struct Running {
    output: Arc<StreamOutput>,
    video: VideoConfig,
    epoch: SystemTime,
}

/// One publish's consumer.
struct Feeder {
    name: StreamName,
    transcoder: Arc<Transcoder>,
    ended: EndSignal,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    pending: VecDeque<MediaFrame>,
    first_video_at: Option<Instant>,
    running: Option<Running>,
}

impl MediaConsumer for Feeder {
    fn push(&mut self, frame: &MediaFrame) {
        match frame {
            MediaFrame::VideoConfig(c) => {
                let changed = self
                    .running
                    .as_ref()
                    .is_some_and(|r| r.video.record != c.record);
                self.video = Some(c.clone());
                if changed {
                    // New resolution or profile mid-stream: a fresh pipeline and ladder.
                    tracing::info!(stream = %self.name, "video configuration changed; restarting the ladder");
                    self.transcoder
                        .metrics
                        .pipeline_restart(self.name.as_str(), "config_change");
                    self.stop();
                }
                return;
            }
            MediaFrame::AudioConfig(c) => {
                self.audio = Some(c.clone());
                return;
            }
            MediaFrame::Video(_) => {
                self.first_video_at.get_or_insert_with(Instant::now);
            }
            MediaFrame::Audio(_) => {}
        }
        if self.ended.is_cancelled() {
            return;
        }
        let fallback = self
            .running
            .as_ref()
            .and_then(|r| r.output.fallback.lock().expect("fallback lock").take());
        if let Some(why) = fallback {
            self.restart_in_software(&why);
        }
        if let Some(running) = &self.running {
            let result = running
                .output
                .pipeline
                .lock()
                .expect("pipeline lock")
                .as_ref()
                .map(|p| p.push(frame));
            let falling_back = running
                .output
                .fallback
                .lock()
                .expect("fallback lock")
                .is_some();
            // A hardware failure that goes on in software is rebuilt on the next frame.
            if result == Some(PushResult::Closed) && !self.ended.is_cancelled() && !falling_back {
                tracing::warn!(stream = %self.name, "pipeline closed; ending the stream");
                self.ended.cancel();
            }
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(frame.clone());
        self.try_start();
    }
}

impl Feeder {
    fn try_start(&mut self) {
        let Some(video) = self.video.clone() else {
            return;
        };
        let audio_waited = self
            .first_video_at
            .is_some_and(|t| t.elapsed() >= AUDIO_WAIT);
        if self.audio.is_none() && !audio_waited {
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
        let key_dts = self.pending[key].dts().unwrap_or(MediaTime::ZERO);
        let frames: Vec<MediaFrame> = self
            .pending
            .drain(..)
            .skip(key)
            .filter(|f| match f {
                MediaFrame::Audio(a) => a.pts >= key_dts,
                _ => true,
            })
            .collect();
        let t = &self.transcoder;
        let plan = pipeline::plan(&t.ladder.renditions, video.width, video.height);
        let packager_config = hls::PackagerConfig {
            first_msn: t.outputs.first_msn(&self.name),
            ..t.packager.clone()
        };
        let output = StreamOutput::new(self.name.clone(), packager_config, plan.len());
        let epoch = SystemTime::now();
        let sink = Arc::new(Sink {
            output: output.clone(),
            metrics: t.metrics.clone(),
            epoch,
            ended: self.ended.clone(),
            accelerator: t.accelerator.clone(),
        });
        let options = StartOptions {
            selection: Some(t.accelerator.selection.clone()),
            sessions: Some(t.accelerator.sessions.clone()),
            on_failure: t.accelerator.on_failure,
            input_offset: None,
        };
        match StreamPipeline::start_with(
            self.name.as_str(),
            &video,
            self.audio.as_ref(),
            &t.ladder,
            sink,
            &options,
        ) {
            Ok(p) => {
                let backends = p.backends().clone();
                tracing::info!(
                    stream = %self.name,
                    width = video.width,
                    height = video.height,
                    audio = self.audio.is_some(),
                    rungs = plan.len(),
                    chain = %describe_backends(&backends),
                    "transcoding started"
                );
                for r in backends.rungs.iter().filter(|r| r.fallback.is_some()) {
                    t.accelerator.count_fallback("session_limit");
                    tracing::warn!(stream = %self.name, rung = %r.name, reason = r.fallback.as_deref().unwrap_or(""), "rung encoded in software");
                }
                *output.backends.lock().expect("backends lock") = Some(backends);
                for f in &frames {
                    p.push(f);
                }
                *output.pipeline.lock().expect("pipeline lock") = Some(p);
                t.outputs.replace(output.clone());
                self.running = Some(Running {
                    output,
                    video,
                    epoch,
                });
            }
            Err(pipeline::Error::Accelerator(why)) => {
                tracing::error!(stream = %self.name, "publish refused: {why}");
                t.accelerator.count_refusal("session_limit");
                t.metrics.pipeline_error(self.name.as_str());
                self.ended.end(format!("Refused: {why}"));
            }
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "cannot start the pipeline; ending the stream");
                t.metrics.pipeline_error(self.name.as_str());
                self.ended.end(format!("Cannot transcode this stream: {e}"));
            }
        }
    }

    /// Replaces a pipeline whose hardware failed by an all-software one on the same output:
    /// the timeline continues, and every rung's playlist marks the change with
    /// `EXT-X-DISCONTINUITY`.
    fn restart_in_software(&mut self, why: &str) {
        let Some(running) = &self.running else {
            return;
        };
        let t = &self.transcoder;
        let old = running
            .output
            .pipeline
            .lock()
            .expect("pipeline lock")
            .take();
        let offset = old.as_ref().and_then(|p| p.input_offset());
        if let Some(old) = old {
            // Stopping joins its bus thread: not on the network task.
            let _ = std::thread::Builder::new()
                .name("ferrocast-drop".into())
                .spawn(move || drop(old));
        }
        {
            let mut state = running.output.state.lock().expect("output lock");
            if let OutputState::Live { packager, names } = &mut *state {
                for n in names.iter() {
                    let _ = packager.discontinuity(n);
                }
            }
        }
        let sink = Arc::new(Sink {
            output: running.output.clone(),
            metrics: t.metrics.clone(),
            epoch: running.epoch,
            ended: self.ended.clone(),
            accelerator: t.accelerator.clone(),
        });
        let options = StartOptions {
            selection: Some(Selection::software()),
            sessions: None,
            on_failure: FailurePolicy::Fallback,
            input_offset: offset,
        };
        match StreamPipeline::start_with(
            self.name.as_str(),
            &running.video,
            self.audio.as_ref(),
            &t.ladder,
            sink,
            &options,
        ) {
            Ok(p) => {
                tracing::warn!(stream = %self.name, reason = %why, chain = %describe_backends(p.backends()), "stream continues in software after a hardware failure");
                t.metrics
                    .pipeline_restart(self.name.as_str(), "hardware_fallback");
                let mut backends = p.backends().clone();
                for r in backends.rungs.iter_mut().filter(|r| r.encoder.is_some()) {
                    r.fallback = Some(format!("runtime fallback: {why}"));
                }
                *running.output.backends.lock().expect("backends lock") = Some(backends);
                *running.output.pipeline.lock().expect("pipeline lock") = Some(p);
            }
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "cannot rebuild the stream in software; ending it");
                t.metrics.pipeline_error(self.name.as_str());
                self.ended.end(format!("Transcoding failed: {e}"));
            }
        }
    }

    /// Flushes and ends the running pipeline on its own thread.
    fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let outputs = self.transcoder.outputs.clone();
        outputs.finishing.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("ferrocast-finish".into())
            .spawn({
                let outputs = outputs.clone();
                let metrics = self.transcoder.metrics.clone();
                let span = tracing::info_span!("stream", stream = %self.name);
                move || {
                    let _entered = span.entered();
                    let pipeline = running
                        .output
                        .pipeline
                        .lock()
                        .expect("pipeline lock")
                        .take();
                    if let Some(p) = pipeline {
                        p.finish();
                    }
                    let stream = running.output.name().to_string();
                    for (rung, d) in running.output.end() {
                        metrics.segment_completed(&stream, &rung, d.as_secs_f64());
                    }
                    tracing::info!("transcoding finished");
                    outputs.finishing.fetch_sub(1, Ordering::SeqCst);
                    outputs.finished.send_replace(());
                }
            });
        if spawned.is_err() {
            tracing::error!(stream = %self.name, "cannot spawn the finishing thread");
            outputs.finishing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The body of `/api/v1/capabilities`.
pub fn capabilities_json(acc: &Accelerator, outputs: &Outputs) -> serde_json::Value {
    use serde_json::json;
    let elements: Vec<_> = acc
        .capabilities
        .elements
        .iter()
        .map(|e| {
            json!({
                "stage": e.stage.as_str(),
                "kind": e.backend.as_str(),
                "factory": e.factory,
                "registered": e.registered,
                "usable": e.usable,
            })
        })
        .collect();
    let mut available = serde_json::Map::new();
    for stage in accel::Stage::ALL {
        let kinds: Vec<&str> = accel::Backend::ALL
            .iter()
            .filter(|b| acc.capabilities.available(stage, **b))
            .map(|b| b.as_str())
            .collect();
        available.insert(stage.as_str().into(), json!(kinds));
    }
    let s = &acc.selection;
    let mut streams: Vec<_> = outputs
        .all()
        .into_iter()
        .filter(|o| !o.is_over())
        .filter_map(|o| o.backends().map(|b| (o.name().to_string(), b)))
        .collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    let streams: Vec<_> = streams
        .into_iter()
        .map(|(name, b)| {
            json!({
                "name": name,
                "decode": { "factory": b.decoder.factory, "backend": b.decoder.backend.as_str() },
                "scale": b.scale.as_str(),
                "rungs": b.rungs.iter().map(|r| json!({
                    "name": r.name,
                    "encoder": r.encoder,
                    "backend": r.backend.as_str(),
                    "fallback": r.fallback,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "policy": acc.policy.as_str(),
        "on_failure": acc.on_failure.as_str(),
        "device": acc.capabilities.device,
        "available": available,
        "elements": elements,
        "selection": {
            "decode": { "factory": s.decoder.factory, "backend": s.decoder.backend.as_str() },
            "scale": s.scale.as_str(),
            "encode": { "factory": s.encoder.factory, "backend": s.encoder.kind.backend().as_str() },
            "fallbacks": s.fallbacks.iter().map(|(stage, why)| json!({ "stage": stage.as_str(), "reason": why })).collect::<Vec<_>>(),
            "unmet": s.unmet,
        },
        "refusal": acc.refusal,
        "encoder_sessions": { "in_use": acc.sessions.in_use(), "limit": acc.sessions.limit() },
        "fallbacks": *acc.fallbacks.lock().expect("fallbacks lock"),
        "refusals": *acc.refusals.lock().expect("refusals lock"),
        "streams": streams,
    })
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

    fn source_rung() -> RungInfo {
        RungInfo {
            index: 0,
            name: "source".into(),
            width: 640,
            height: 360,
            frame_rate: Some(30.0),
            video_kbps: None,
            video_codec: "avc1.42c01e".into(),
            audio_codec: None,
            passthrough: true,
        }
    }

    fn chunk(kind: ChunkKind, pts_ms: i64, ms: i64) -> CmafChunk {
        CmafChunk {
            kind,
            data: bytes::Bytes::from(vec![0u8; 64]),
            pts: MediaTime::from_millis(pts_ms),
            duration: MediaTime::from_millis(ms),
            independent: kind != ChunkKind::Continuation,
        }
    }

    /// A live single-rung output, low-latency or not, with its init segment in.
    fn live_output(low_latency: bool) -> Arc<StreamOutput> {
        let config = hls::PackagerConfig {
            low_latency,
            whole_segments: !low_latency,
            ..hls::PackagerConfig::default()
        };
        let o = StreamOutput::new("s".parse().unwrap(), config, 1);
        o.on_rung_ready(source_rung());
        let now = SystemTime::now();
        assert!(o
            .on_chunk(0, chunk(ChunkKind::Init, 0, 0), now, &[])
            .is_some());
        o
    }

    #[test]
    fn playlists_render_once_per_change() {
        let o = live_output(true);
        let now = SystemTime::now();
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        let a = o.playlist(Some("source"), false).expect("a playlist");
        let b = o.playlist(Some("source"), false).expect("a playlist");
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second request is served the cached text"
        );
        let master = o.playlist(None, false).expect("the master playlist");
        assert!(std::str::from_utf8(&master)
            .unwrap()
            .contains("#EXT-X-STREAM-INF"));
        assert!(o.playlist(Some("nope"), false).is_none());

        o.on_chunk(0, chunk(ChunkKind::Continuation, 500, 500), now, &[]);
        let c = o.playlist(Some("source"), false).expect("a playlist");
        assert_ne!(a, c, "a new part renders a new playlist");
        assert!(std::str::from_utf8(&c).unwrap().contains("part-"), "{c:?}");
        o.end();
        let ended = o.playlist(Some("source"), false).expect("a playlist");
        assert!(std::str::from_utf8(&ended)
            .unwrap()
            .contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn a_cached_playlist_is_never_older_than_the_state_a_request_saw() {
        // A blocking request checks the packager, then asks for the (cached) playlist: the
        // playlist must list everything the check saw, while parts keep coming.
        let o = live_output(true);
        let now = SystemTime::now();
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 100), now, &[]);
        let writer = {
            let o = o.clone();
            std::thread::spawn(move || {
                for i in 1..400i64 {
                    let kind = if i % 20 == 0 {
                        ChunkKind::SegmentStart
                    } else {
                        ChunkKind::Continuation
                    };
                    o.on_chunk(0, chunk(kind, i * 100, 100), now, &[]);
                }
            })
        };
        // (msn, index) of the newest listed part.
        let last_part = |text: &str| {
            let line = text.lines().rfind(|l| l.starts_with("#EXT-X-PART:"))?;
            let name = line.split("URI=\"part-").nth(1)?.split(".m4s").next()?;
            let (msn, index) = name.split_once('.')?;
            Some((msn.parse::<u64>().ok()?, index.parse::<u32>().ok()?))
        };
        let mut checked = 0;
        while !writer.is_finished() {
            let seen = o
                .with_packager(|p| p.media_playlist("source", false).ok())
                .flatten()
                .and_then(|t| last_part(&t));
            let served = o.playlist(Some("source"), false).expect("a playlist");
            let served = std::str::from_utf8(&served).expect("utf-8");
            if let Some(seen) = seen {
                assert!(
                    last_part(served) >= Some(seen),
                    "saw part {seen:?} but was served:\n{served}"
                );
                checked += 1;
            }
        }
        writer.join().expect("writer");
        assert!(checked > 0);
    }

    #[test]
    fn frames_count_as_published_when_their_part_or_segment_is_listed() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let now = SystemTime::now();
        // LL-HLS: a part is listed as it comes.
        let ll = live_output(true);
        let listed = ll
            .on_chunk(
                0,
                chunk(ChunkKind::SegmentStart, 0, 500),
                now,
                &[at(0), at(33)],
            )
            .expect("listed");
        assert!(listed.part);
        assert_eq!(listed.arrivals, [at(0), at(33)]);

        // Plain HLS: each chunk is a whole segment, complete and listed as it comes.
        let plain = live_output(false);
        let first = plain
            .on_chunk(
                0,
                chunk(ChunkKind::SegmentStart, 0, 2000),
                now,
                &[at(0), at(33)],
            )
            .expect("listed");
        assert_eq!(first.completed, Some(MediaTime::from_millis(2000)));
        assert_eq!(first.arrivals, [at(0), at(33)]);
        assert!(plain.end().is_empty(), "nothing was left open");
    }

    #[test]
    fn ended_outputs_are_kept_for_keep_ended_then_dropped() {
        let name: StreamName = "s".parse().unwrap();
        let ready = |outputs: &Arc<Outputs>| {
            let o = StreamOutput::new(name.clone(), hls::PackagerConfig::default(), 1);
            o.on_rung_ready(source_rung());
            outputs.replace(o.clone());
            o
        };
        let kept = Outputs::new(Duration::from_secs(60));
        ready(&kept).end();
        assert!(
            kept.get("s").is_some(),
            "an ended stream stays served for keep_ended"
        );
        let gone = Outputs::new(Duration::ZERO);
        ready(&gone).end();
        std::thread::sleep(Duration::from_millis(5));
        assert!(gone.get("s").is_none());
        assert!(gone.all().is_empty());
        assert!(gone.get("other").is_none());
    }

    /// A meter fed one chunk a second for 10 s, each holding `media_ms` of media.
    fn meter(t0: Instant, media_ms: i64) -> RateMeter {
        let mut m = RateMeter::new(Duration::from_millis(334));
        for i in 0..=10u32 {
            m.record(
                t0 + Duration::from_secs(u64::from(i)),
                MediaTime::from_millis(i64::from(i) * media_ms),
            );
        }
        m
    }

    #[test]
    fn rate_meter_tracks_realtime_and_decays_when_stalled() {
        let t0 = Instant::now();
        let m = meter(t0, 1000);
        let f = m.factor(t0 + Duration::from_secs(10)).expect("a factor");
        assert!((f - 1.0).abs() < 0.01, "{f}");
        // Asked between two chunks, a pipeline that keeps up still reads 1.
        let between = m
            .factor(t0 + Duration::from_millis(10_900))
            .expect("a factor");
        assert!((between - 1.0).abs() < 0.01, "{between}");
        // Half speed reads a half.
        let half = meter(t0, 500)
            .factor(t0 + Duration::from_millis(10_500))
            .expect("a factor");
        assert!((half - 0.5).abs() < 0.02, "{half}");
        // Nothing new for 10 s: the factor falls.
        let stalled = m.factor(t0 + Duration::from_secs(20)).expect("a factor");
        assert!(stalled < 0.5, "{stalled}");
        // Nothing to measure before two chunks.
        let mut one = RateMeter::new(Duration::from_secs(2));
        assert_eq!(one.factor(t0), None);
        one.record(t0, MediaTime::from_millis(500));
        assert_eq!(one.factor(t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn rate_meter_reads_one_for_chunks_further_apart_than_its_window() {
        // Whole 6 s segments (plain HLS), and a passthrough rung following a source keyframe
        // every 8.3 s although 2 s segments are configured: healthy at any moment between chunks.
        for (configured, gap_ms) in [(6_000u64, 6_000u64), (2_000, 8_300)] {
            let t0 = Instant::now();
            let mut m = RateMeter::new(Duration::from_millis(configured));
            for i in 0..=6u64 {
                m.record(
                    t0 + Duration::from_millis(i * gap_ms),
                    MediaTime::from_millis((i * gap_ms) as i64),
                );
            }
            let last = t0 + Duration::from_millis(6 * gap_ms);
            for after_ms in [0, 1_000, 3_000, 5_500, gap_ms - 100] {
                let f = m
                    .factor(last + Duration::from_millis(after_ms))
                    .expect("a factor");
                assert!(
                    (f - 1.0).abs() < 0.01,
                    "{gap_ms} ms chunks, asked {after_ms} ms after the last: {f}"
                );
            }
            // Two gaps without a chunk is a stall.
            let f = m
                .factor(last + Duration::from_millis(2 * gap_ms))
                .expect("a factor");
            assert!(f < 0.8, "{f}");
        }
    }
}
