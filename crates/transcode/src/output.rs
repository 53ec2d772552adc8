//! One stream's HLS output: the packager fed by the pipeline's chunks, the playlists rendered
//! once per change, and the `watch` cursor that held playlist and part requests wait on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ingest::frames::{DropCounter, Dropped};
use media::cmaf::{ChunkKind, CmafChunk};
use media::{MediaTime, StreamName};
use pipeline::{RungInfo, StreamBackends, StreamPipeline};
use tokio::sync::watch;

use crate::rate::RateMeter;

/// One stream's pipeline, packager and the cursor HTTP waiters watch.
pub struct StreamOutput {
    name: StreamName,
    state: Mutex<OutputState>,
    changed: watch::Sender<u64>,
    rates: Mutex<Vec<RateMeter>>,
    /// The running pipeline; taken out when it finishes.
    pub(crate) pipeline: Mutex<Option<StreamPipeline>>,
    /// The running pipeline's element chain (kept after it ends, for the API).
    pub(crate) backends: Mutex<Option<StreamBackends>>,
    /// What the feeder is asked to do from other threads, until it does it.
    control: Mutex<Vec<Control>>,
    /// Frames the publish's queue dropped before they reached the pipeline.
    input_drops: DropCounter,
    /// Playlists as last rendered, each with the change count it was rendered at: a playlist is
    /// rendered once per change, however many requests (held or not) ask for it.
    rendered: Mutex<Vec<Rendered>>,
    /// Since when the publisher has been gone with the playlists left open for it
    /// ([`StreamOutput::pause`]).
    paused: Mutex<Option<Instant>>,
    /// Per rung (by index): shed under overload, since when and why.
    shed: Mutex<Vec<Option<Shed>>>,
}

/// What the feeder is asked to do from other threads: the pipeline's streaming threads (go on
/// in software) and the fault hook (shed a rung, or bring it back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// A hardware element failed and the policy says go on in software: rebuild the pipeline.
    Fallback(Fallback),
    /// Shed rung `rung` (by index), or bring it back.
    ForceShed {
        /// The rung.
        rung: usize,
        /// Shed (true) or back.
        shed: bool,
    },
}

/// The hardware element whose failure the stream goes on from in software.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fallback {
    /// The element.
    pub(crate) element: String,
    /// Its backend.
    pub(crate) backend: String,
    /// The pipeline's error.
    pub(crate) message: String,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) failed: {}",
            self.element, self.backend, self.message
        )
    }
}

/// A rung shed under overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    /// When it was shed.
    pub since: SystemTime,
    /// Why.
    pub reason: crate::overload::ShedReason,
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
pub(crate) struct Listed {
    /// The rung's name.
    pub(crate) rung: String,
    /// The duration of the segment the chunk completed, if it completed one.
    pub(crate) completed: Option<MediaTime>,
    /// Whether the chunk is a listed part (not an init segment).
    pub(crate) part: bool,
    /// Arrival times of the frames that became listed with it.
    pub(crate) arrivals: Vec<Instant>,
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

impl StreamOutput {
    pub(crate) fn new(
        name: StreamName,
        packager_config: hls::PackagerConfig,
        planned: usize,
        input_drops: DropCounter,
    ) -> Arc<Self> {
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
            control: Mutex::new(Vec::new()),
            input_drops,
            paused: Mutex::new(None),
            shed: Mutex::new(vec![None; planned]),
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

    /// Frames the publish's input queue dropped before they reached the pipeline (it fell
    /// behind, or was starting).
    pub fn input_dropped(&self) -> Dropped {
        self.input_drops.get()
    }

    /// Marks a break in every rung's timeline (`EXT-X-DISCONTINUITY` before the next segment),
    /// first listing gaps in a rung left behind (one shed when its pipeline was dropped).
    pub(crate) fn discontinuity(&self) {
        let mut state = self.state.lock().expect("output lock");
        if let OutputState::Live { packager, names } = &mut *state {
            packager.align_gaps();
            for n in names.iter() {
                let _ = packager.discontinuity(n);
            }
        }
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

    /// Media seconds produced per wall second over the last few seconds, per rung name; none
    /// while the output waits for its publisher to come back, and none for a shed rung (it
    /// makes no media).
    pub fn realtime_factors(&self) -> Vec<(String, f64)> {
        self.realtime_factors_by_index()
            .into_iter()
            .map(|(_, n, f)| (n, f))
            .collect()
    }

    /// [`StreamOutput::realtime_factors`] with each rung's index.
    pub(crate) fn realtime_factors_by_index(&self) -> Vec<(usize, String, f64)> {
        if self.is_paused() {
            return Vec::new();
        }
        let names = self
            .with_packager(|p| p.variants().map(|v| v.name.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        let shed = self.shed.lock().expect("shed lock").clone();
        let now = Instant::now();
        let rates = self.rates.lock().expect("rates lock");
        names
            .into_iter()
            .zip(rates.iter())
            .enumerate()
            .filter(|(i, _)| shed.get(*i).is_none_or(|s| s.is_none()))
            .filter_map(|(i, (n, r))| Some((i, n, r.factor(now)?)))
            .collect()
    }

    /// Every rung by name, with its shed state (`None`: not shed); empty before packaging.
    pub fn rung_states(&self) -> Vec<(String, Option<Shed>)> {
        let names = self
            .with_packager(|p| p.variants().map(|v| v.name.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        let shed = self.shed.lock().expect("shed lock");
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, shed.get(i).copied().flatten()))
            .collect()
    }

    /// Marks rung `rung` shed (for `reason`) or back (`None`): the master playlist leaves it out
    /// while shed. A rung that comes back starts measuring its realtime factor again. Returns
    /// the rung's name.
    pub(crate) fn set_shed(
        &self,
        rung: usize,
        reason: Option<crate::overload::ShedReason>,
    ) -> Option<String> {
        let name = {
            let mut state = self.state.lock().expect("output lock");
            let OutputState::Live { packager, names } = &mut *state else {
                return None;
            };
            let name = names.get(rung)?.clone();
            let _ = packager.set_shed(&name, reason.is_some());
            self.bump();
            name
        };
        if let Some(slot) = self.shed.lock().expect("shed lock").get_mut(rung) {
            *slot = reason.map(|reason| Shed {
                since: SystemTime::now(),
                reason,
            });
        }
        if reason.is_none() {
            let interval = self.chunk_interval();
            if let Some(m) = self.rates.lock().expect("rates lock").get_mut(rung) {
                *m = RateMeter::new(interval);
            }
        }
        Some(name)
    }

    /// Asks the feeder to shed rung `rung` (by name), or to bring it back, at once; the test
    /// builds' fault hook calls this.
    pub fn request_shed(&self, rung: &str, shed: bool) -> Result<(), ShedRefusal> {
        let index = self
            .rung_states()
            .iter()
            .position(|(n, _)| n == rung)
            .ok_or_else(|| ShedRefusal::NoSuchRung {
                stream: self.name.to_string(),
                rung: rung.to_owned(),
            })?;
        self.send(Control::ForceShed { rung: index, shed });
        Ok(())
    }

    /// Asks the feeder for `control`.
    pub(crate) fn send(&self, control: Control) {
        self.control.lock().expect("control lock").push(control);
    }

    /// Whether a fallback to software waits for the feeder.
    pub(crate) fn falling_back(&self) -> bool {
        self.control
            .lock()
            .expect("control lock")
            .iter()
            .any(|c| matches!(c, Control::Fallback(_)))
    }

    /// Takes the fallback waiting, if any (a pipeline fails once; the first one counts).
    pub(crate) fn take_fallback(&self) -> Option<Fallback> {
        let mut control = self.control.lock().expect("control lock");
        let mut first = None;
        control.retain(|c| match c {
            Control::Fallback(f) => {
                first.get_or_insert_with(|| f.clone());
                false
            }
            _ => true,
        });
        first
    }

    /// Takes the sheds and comebacks asked for, in order.
    pub(crate) fn take_forced(&self) -> Vec<(usize, bool)> {
        let mut control = self.control.lock().expect("control lock");
        let mut forced = Vec::new();
        control.retain(|c| match c {
            Control::ForceShed { rung, shed } => {
                forced.push((*rung, *shed));
                false
            }
            _ => true,
        });
        forced
    }

    /// Brings every shed rung back (a new pipeline makes them all).
    pub(crate) fn clear_shed(&self) {
        let shed: Vec<usize> = self
            .shed
            .lock()
            .expect("shed lock")
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|_| i))
            .collect();
        for i in shed {
            self.set_shed(i, None);
        }
    }

    /// Rung `rung`'s open segment ends at `at` (media time): it is shed from there.
    pub(crate) fn end_segment(&self, rung: usize, at: MediaTime) {
        let mut state = self.state.lock().expect("output lock");
        if let OutputState::Live { packager, names } = &mut *state {
            let Some(name) = names.get(rung).cloned() else {
                return;
            };
            let _ = packager.end_segment(&name, at);
            // Under the lock: see `on_rung_ready`.
            self.bump();
        }
    }

    /// A shed rung's segment from `start` lasting `duration` (media time), listed as a gap.
    pub(crate) fn on_gap(
        &self,
        rung: usize,
        start: MediaTime,
        duration: MediaTime,
        pdt: SystemTime,
    ) {
        let mut state = self.state.lock().expect("output lock");
        if let OutputState::Live { packager, names } = &mut *state {
            let Some(name) = names.get(rung).cloned() else {
                return;
            };
            if let Err(e) = packager.gap(&name, start, duration, pdt) {
                tracing::warn!(stream = %self.name, rung = %name, error = %e, "packager refused a gap");
            }
            // Under the lock: see `on_rung_ready`.
            self.bump();
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub(crate) fn expired(&self, keep: Duration) -> bool {
        let state = self.state.lock().expect("output lock");
        match &*state {
            OutputState::Live { packager, .. } => packager
                .ended_at()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > keep),
            _ => false,
        }
    }

    pub(crate) fn on_rung_ready(&self, info: RungInfo) {
        let mut state = self.state.lock().expect("output lock");
        // A continued output (a reconnect, a new resolution): the rung may have a new size or
        // codec, which the master playlist must say.
        if let OutputState::Live { packager, names } = &mut *state {
            if names.get(info.index) == Some(&info.name) {
                let _ = packager.update_variant(variant_of(&info));
                self.bump();
            }
            return;
        }
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
        let variants = infos.iter().map(variant_of).collect();
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
    pub(crate) fn on_chunk(
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
    pub(crate) fn end(&self) -> Vec<(String, MediaTime)> {
        *self.paused.lock().expect("paused lock") = None;
        self.close(|p| p.end(SystemTime::now()), true)
    }

    /// The publisher left, and may come back within the reconnect window: the open segments
    /// are closed, the playlists stay open, and the next segment of each rung starts after an
    /// `EXT-X-DISCONTINUITY`. Returns the segments this closed, per rung. An output that never
    /// started packaging cannot be continued and ends instead.
    pub(crate) fn pause(&self) -> Vec<(String, MediaTime)> {
        let live = matches!(&*self.state.lock().expect("output lock"), OutputState::Live { packager, .. } if packager.ended_at().is_none());
        if !live {
            return self.end();
        }
        // Closed before it can be resumed, so a new pipeline never pushes into an open segment.
        let closed = self.close(hls::Packager::pause, false);
        *self.paused.lock().expect("paused lock") = Some(Instant::now());
        closed
    }

    /// Whether the playlists wait for the publisher to come back.
    pub fn is_paused(&self) -> bool {
        self.paused.lock().expect("paused lock").is_some()
    }

    /// A new publish continues this paused output with a ladder of these rung names: true when
    /// it can (the same rungs, in order), and then it is no longer paused.
    pub(crate) fn resume(&self, rungs: &[&str]) -> bool {
        let mut paused = self.paused.lock().expect("paused lock");
        if paused.is_none() {
            return false;
        }
        let same = match &*self.state.lock().expect("output lock") {
            OutputState::Live { packager, names } => {
                packager.ended_at().is_none()
                    && names.len() == rungs.len()
                    && names.iter().zip(rungs).all(|(a, b)| a == b)
            }
            _ => false,
        };
        if same {
            *paused = None;
            // The new pipeline's media time starts again at zero.
            let interval = self.chunk_interval();
            for meter in self.rates.lock().expect("rates lock").iter_mut() {
                *meter = RateMeter::new(interval);
            }
        }
        same
    }

    /// Ends the playlists of an output whose publisher has been gone for longer than `window`.
    pub(crate) fn end_if_paused_for(&self, window: Duration) {
        // Taken out of the paused state under its lock, so that a publish resuming now either
        // comes first (and the stream goes on) or finds nothing to resume (and starts anew).
        let expired = {
            let mut paused = self.paused.lock().expect("paused lock");
            let expired = paused.is_some_and(|since| since.elapsed() >= window);
            if expired {
                *paused = None;
            }
            expired
        };
        if expired {
            tracing::info!(stream = %self.name, "no publisher came back within the reconnect window; the stream ends");
            self.end();
        }
    }

    fn chunk_interval(&self) -> Duration {
        self.with_packager(|p| chunk_interval(p.config()))
            .unwrap_or(Duration::from_secs(1))
    }

    /// Applies `f` to the live packager (or marks a packager-less output failed when `failing`)
    /// and returns the segments that closed, per rung.
    fn close(&self, f: impl FnOnce(&mut hls::Packager), failing: bool) -> Vec<(String, MediaTime)> {
        let mut closed = Vec::new();
        let mut state = self.state.lock().expect("output lock");
        if let OutputState::Live { packager, names } = &mut *state {
            if packager.ended_at().is_none() {
                let before: Vec<u64> = names
                    .iter()
                    .map(|n| packager.stats(n).map(|s| s.segments).unwrap_or(0))
                    .collect();
                f(packager);
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
        } else if failing {
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

/// The master playlist's description of a rung.
fn variant_of(r: &RungInfo) -> hls::Variant {
    hls::Variant {
        name: r.name.clone(),
        width: r.width,
        height: r.height,
        frame_rate: r.frame_rate,
        video_codec: r.video_codec.clone(),
        audio_codec: r.audio_codec.clone(),
        bitrate_kbps: r.video_kbps,
    }
}

/// Why [`StreamOutput::request_shed`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShedRefusal {
    /// The stream's ladder has no such rung now.
    #[error("stream {stream} has no rung {rung:?} now")]
    NoSuchRung {
        /// The stream.
        stream: String,
        /// The rung asked for.
        rung: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn source_rung() -> RungInfo {
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

    pub(crate) fn chunk(kind: ChunkKind, pts_ms: i64, ms: i64) -> CmafChunk {
        CmafChunk {
            kind,
            data: bytes::Bytes::from(vec![0u8; 64]),
            pts: MediaTime::from_millis(pts_ms),
            duration: MediaTime::from_millis(ms),
            independent: kind != ChunkKind::Continuation,
        }
    }

    /// A live single-rung output, low-latency or not, with its init segment in.
    pub(crate) fn live_output(low_latency: bool) -> Arc<StreamOutput> {
        let config = hls::PackagerConfig {
            low_latency,
            whole_segments: !low_latency,
            ..hls::PackagerConfig::default()
        };
        let o = StreamOutput::new("s".parse().unwrap(), config, 1, DropCounter::default());
        o.on_rung_ready(source_rung());
        let now = SystemTime::now();
        assert!(o
            .on_chunk(0, chunk(ChunkKind::Init, 0, 0), now, &[])
            .is_some());
        o
    }

    #[test]
    fn the_feeder_takes_each_kind_of_control_in_order() {
        let o = live_output(true);
        let fallback = |m: &str| Fallback {
            element: "nvh264enc0".into(),
            backend: "nvidia".into(),
            message: m.into(),
        };
        o.send(Control::ForceShed {
            rung: 0,
            shed: true,
        });
        o.send(Control::Fallback(fallback("first")));
        o.send(Control::Fallback(fallback("second")));
        o.send(Control::ForceShed {
            rung: 0,
            shed: false,
        });
        assert!(o.falling_back());
        assert_eq!(
            o.take_fallback(),
            Some(fallback("first")),
            "the first failure counts"
        );
        assert!(!o.falling_back() && o.take_fallback().is_none());
        assert_eq!(o.take_forced(), [(0, true), (0, false)]);
        assert!(o.take_forced().is_empty());
        assert_eq!(
            fallback("boom").to_string(),
            "nvh264enc0 (nvidia) failed: boom"
        );
        assert_eq!(
            o.request_shed("nope", true),
            Err(ShedRefusal::NoSuchRung {
                stream: "s".into(),
                rung: "nope".into()
            })
        );
        o.request_shed("source", true).unwrap();
        assert_eq!(o.take_forced(), [(0, true)]);
    }

    #[test]
    fn a_paused_output_is_continued_by_a_new_publish_or_ends_after_the_window() {
        let o = live_output(true);
        let now = SystemTime::now();
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 500, 500), now, &[]);
        assert!(!o.is_paused());
        // The publisher leaves: the open segment closes, the playlist stays open.
        let closed = o.pause();
        assert_eq!(closed.len(), 1, "the open segment closed: {closed:?}");
        assert!(o.is_paused() && !o.is_over());
        assert!(
            o.realtime_factors().is_empty(),
            "a paused stream reports no rates"
        );
        o.end_if_paused_for(Duration::from_secs(30));
        assert!(!o.is_over(), "within the window");
        // A ladder with other rungs cannot continue it; the same one can, once.
        assert!(!o.resume(&["source", "240p"]));
        assert!(o.resume(&["source"]));
        assert!(!o.is_paused());
        assert!(!o.resume(&["source"]), "not paused any more");
        o.on_chunk(0, chunk(ChunkKind::Init, 0, 0), now, &[]);
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        o.on_chunk(0, chunk(ChunkKind::SegmentStart, 500, 500), now, &[]);
        let text = o.playlist(Some("source"), false).expect("a playlist");
        let text = std::str::from_utf8(&text).unwrap();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
        // Gone again, and nobody comes back within the window: the playlist ends.
        o.pause();
        o.end_if_paused_for(Duration::ZERO);
        assert!(o.is_over() && !o.is_paused());
        let text = o.playlist(Some("source"), false).expect("a playlist");
        assert!(std::str::from_utf8(&text)
            .unwrap()
            .contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn a_shed_rung_leaves_the_master_lists_gaps_reports_no_rate_and_comes_back() {
        let config = hls::PackagerConfig {
            low_latency: true,
            ..hls::PackagerConfig::default()
        };
        let o = StreamOutput::new("s".parse().unwrap(), config, 2, DropCounter::default());
        o.on_rung_ready(source_rung());
        o.on_rung_ready(RungInfo {
            index: 1,
            name: "240p".into(),
            passthrough: false,
            video_kbps: Some(400),
            ..source_rung()
        });
        let now = SystemTime::now();
        for rung in 0..2 {
            o.on_chunk(rung, chunk(ChunkKind::Init, 0, 0), now, &[]);
            o.on_chunk(rung, chunk(ChunkKind::SegmentStart, 0, 1000), now, &[]);
            o.on_chunk(rung, chunk(ChunkKind::Continuation, 1000, 1000), now, &[]);
        }
        // Two rates a second apart, as chunks would leave them.
        for m in o.rates.lock().unwrap().iter_mut() {
            let t0 = Instant::now() - Duration::from_secs(1);
            *m = RateMeter::new(Duration::from_millis(334));
            m.record(t0, MediaTime::ZERO);
            m.record(Instant::now(), MediaTime::from_millis(1000));
        }
        assert_eq!(o.realtime_factors().len(), 2);
        assert_eq!(
            o.set_shed(1, Some(crate::overload::ShedReason::BehindRealtime))
                .as_deref(),
            Some("240p")
        );
        let master = o.playlist(None, false).unwrap();
        assert!(!std::str::from_utf8(&master).unwrap().contains("240p/"));
        o.on_gap(
            1,
            MediaTime::from_millis(2000),
            MediaTime::from_millis(2000),
            now,
        );
        let media = o.playlist(Some("240p"), false).unwrap();
        assert!(std::str::from_utf8(&media)
            .unwrap()
            .contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg-1.m4s"));
        let states = o.rung_states();
        assert_eq!(states[0], ("source".to_owned(), None));
        assert_eq!(
            states[1].1.map(|s| s.reason),
            Some(crate::overload::ShedReason::BehindRealtime)
        );
        assert_eq!(
            o.realtime_factors_by_index()
                .iter()
                .map(|(i, ..)| *i)
                .collect::<Vec<_>>(),
            [0],
            "no rate for a shed rung"
        );
        o.clear_shed();
        assert!(o.rung_states().iter().all(|(_, s)| s.is_none()));
        let master = o.playlist(None, false).unwrap();
        assert!(std::str::from_utf8(&master).unwrap().contains("240p/"));
    }

    #[test]
    fn an_output_that_never_packaged_ends_instead_of_pausing() {
        let config = hls::PackagerConfig::default();
        let o = StreamOutput::new("s".parse().unwrap(), config, 1, DropCounter::default());
        o.pause();
        assert!(!o.is_paused());
        assert!(o.is_over());
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
        // The writer starts with the reader, so that a busy machine does not let it finish
        // before the first check (CI once read no check at all).
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writer = {
            let o = o.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
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
        start.wait();
        // Checks while parts come, and at least once (after the last part, if the writer was
        // that quick).
        let deadline = Instant::now() + Duration::from_secs(10);
        while (!writer.is_finished() || checked == 0) && Instant::now() < deadline {
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
}
