//! One stream's packaged state, under one lock: the packager (or the rungs it waits for), the
//! rendered playlists, each rung's rate and shed state, and whether the publisher is away.
//! Written by the pipeline's sink (rungs, chunks, gaps) and by the feeder's lifecycle calls
//! (pause, resume, end, shed); every change moves the `watch` cursor that held requests wait on,
//! under the same lock, so whoever sees the new state also sees the new count.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use media::cmaf::{ChunkKind, CmafChunk};
use media::{MediaTime, StreamName};
use pipeline::RungInfo;
use tokio::sync::watch;

use crate::continuity::Continuity;
use crate::overload::ShedReason;
use crate::rate::RateMeter;

/// A rung shed under overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    /// When it was shed.
    pub since: SystemTime,
    /// Why.
    pub reason: ShedReason,
}

/// One rung as the gauges and the API see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RungStatus {
    /// The rung's name.
    pub name: String,
    /// Shed under overload: since when and why.
    pub shed: Option<Shed>,
    /// Media seconds produced per wall second over the last few seconds; none while the
    /// publisher is away, for a shed rung (it makes no media), or before there is enough to
    /// measure.
    pub realtime_factor: Option<f64>,
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
    /// Where the playlists stand, when the chunk completed a segment of the first rung: for
    /// a publish on another server to continue them.
    pub(crate) continuity: Option<Continuity>,
}

/// The packaged state and its cursor.
#[derive(Debug)]
pub(crate) struct Packaged {
    name: StreamName,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Playlists as last rendered, each with the change count it was rendered at: a playlist is
    /// rendered once per change, however many requests (held or not) ask for it.
    rendered: Vec<Rendered>,
    /// Per rung (by index).
    rates: Vec<RateMeter>,
    /// Per rung (by index): shed under overload, since when and why.
    shed: Vec<Option<Shed>>,
    /// Since when the publisher has been gone with the playlists left open for it
    /// ([`Packaged::pause`]). Tokio's clock, so that tests can run the window out in virtual
    /// time.
    paused: Option<tokio::time::Instant>,
}

#[derive(Debug)]
enum State {
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

impl Packaged {
    pub(crate) fn new(
        name: StreamName,
        packager_config: hls::PackagerConfig,
        planned: usize,
    ) -> Packaged {
        let interval = chunk_interval(&packager_config);
        Packaged {
            name,
            inner: Mutex::new(Inner {
                state: State::Starting {
                    packager_config,
                    planned,
                    ready: vec![None; planned],
                    pending: Vec::new(),
                },
                rendered: Vec::new(),
                rates: (0..planned).map(|_| RateMeter::new(interval)).collect(),
                shed: vec![None; planned],
                paused: None,
            }),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("output lock")
    }

    /// Moves the cursor; called with the lock held (see the module's doc).
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever the packager does (a chunk, the end).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Runs `f` on the packager once it exists.
    pub(crate) fn with_packager<R>(&self, f: impl FnOnce(&hls::Packager) -> R) -> Option<R> {
        match &self.lock().state {
            State::Live { packager, .. } => Some(f(packager)),
            _ => None,
        }
    }

    /// The media playlist of `rung` (a delta update with `skip`), or the master playlist for
    /// `None`; `None` before packaging starts or for an unknown rung. Rendered once per change:
    /// the text is cached with the change count it was rendered at, both read under the lock.
    pub(crate) fn playlist(&self, rung: Option<&str>, skip: bool) -> Option<bytes::Bytes> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let version = *self.changed.borrow();
        let matches = |r: &Rendered| r.rung.as_deref() == rung && r.skip == skip;
        if let Some(r) = inner
            .rendered
            .iter()
            .find(|r| matches(r) && r.version == version)
        {
            return Some(r.text.clone());
        }
        let State::Live { packager, .. } = &inner.state else {
            return None;
        };
        let text: bytes::Bytes = match rung {
            Some(rung) => packager.media_playlist(rung, skip).ok()?,
            None => packager.master_playlist(),
        }
        .into();
        match inner.rendered.iter_mut().find(|r| matches(r)) {
            Some(r) => {
                r.version = version;
                r.text = text.clone();
            }
            // Rungs that exist (an unknown one renders nothing), with and without skip, and
            // the master: bounded by the ladder.
            None => inner.rendered.push(Rendered {
                rung: rung.map(str::to_owned),
                skip,
                version,
                text: text.clone(),
            }),
        }
        Some(text)
    }

    /// True once the stream has ended or failed: waiting for more is pointless.
    pub(crate) fn is_over(&self) -> bool {
        self.lock().is_over()
    }

    /// Whether the playlists wait for the publisher to come back.
    pub(crate) fn is_paused(&self) -> bool {
        self.lock().paused.is_some()
    }

    /// One look, under the lock: whether the stream is over, whether it is paused, and every
    /// rung in ladder order with its shed state and rate (none before packaging).
    pub(crate) fn look(&self) -> (bool, bool, Vec<RungStatus>) {
        let inner = self.lock();
        let over = inner.is_over();
        let paused = inner.paused.is_some();
        let State::Live { names, .. } = &inner.state else {
            return (over, paused, Vec::new());
        };
        let now = Instant::now();
        let rungs = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let shed = inner.shed.get(i).copied().flatten();
                let measured = inner.paused.is_none() && shed.is_none();
                RungStatus {
                    name: name.clone(),
                    shed,
                    realtime_factor: inner
                        .rates
                        .get(i)
                        .filter(|_| measured)
                        .and_then(|r| r.factor(now)),
                }
            })
            .collect();
        (over, paused, rungs)
    }

    /// Marks rung `rung` shed (for `reason`) or back (`None`): the master playlist leaves it out
    /// while shed. A rung that comes back starts measuring its realtime factor again. Returns
    /// the rung's name.
    pub(crate) fn set_shed(&self, rung: usize, reason: Option<ShedReason>) -> Option<String> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let interval = inner.chunk_interval();
        let State::Live { packager, names } = &mut inner.state else {
            return None;
        };
        let name = names.get(rung)?.clone();
        let _ = packager.set_shed(&name, reason.is_some());
        if let Some(slot) = inner.shed.get_mut(rung) {
            *slot = reason.map(|reason| Shed {
                since: SystemTime::now(),
                reason,
            });
        }
        if reason.is_none() {
            if let Some(m) = inner.rates.get_mut(rung) {
                *m = RateMeter::new(interval);
            }
        }
        self.bump();
        Some(name)
    }

    /// Brings every shed rung back (a new pipeline makes them all).
    pub(crate) fn clear_shed(&self) {
        let shed: Vec<usize> = (self.lock().shed.iter().enumerate())
            .filter_map(|(i, s)| s.map(|_| i))
            .collect();
        for i in shed {
            self.set_shed(i, None);
        }
    }

    /// Marks a break in every rung's timeline (`EXT-X-DISCONTINUITY` before the next segment),
    /// first listing gaps in a rung left behind (one shed when its pipeline was dropped).
    pub(crate) fn discontinuity(&self) {
        let mut inner = self.lock();
        if let State::Live { packager, names } = &mut inner.state {
            packager.align_gaps();
            for n in names.iter() {
                let _ = packager.discontinuity(n);
            }
        }
    }

    /// Rung `rung`'s open segment ends at `at` (media time): it is shed from there.
    pub(crate) fn end_segment(&self, rung: usize, at: MediaTime) {
        let mut inner = self.lock();
        if let State::Live { packager, names } = &mut inner.state {
            let Some(name) = names.get(rung) else {
                return;
            };
            let _ = packager.end_segment(name, at);
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
        let mut inner = self.lock();
        if let State::Live { packager, names } = &mut inner.state {
            let Some(name) = names.get(rung) else {
                return;
            };
            if let Err(e) = packager.gap(name, start, duration, pdt) {
                tracing::warn!(stream = %self.name, rung = %name, error = %e, "packager refused a gap");
            }
            self.bump();
        }
    }

    /// Whether the stream ended more than `keep` ago.
    pub(crate) fn expired(&self, keep: Duration) -> bool {
        match &self.lock().state {
            State::Live { packager, .. } => packager
                .ended_at()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > keep),
            _ => false,
        }
    }

    /// A rung announced itself: packaging starts once every planned rung has.
    pub(crate) fn on_rung_ready(&self, info: RungInfo) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        // A continued output (a reconnect, a new resolution): the rung may have a new size or
        // codec, which the master playlist must say.
        if let State::Live { packager, names } = &mut inner.state {
            if names.get(info.index) == Some(&info.name) {
                let _ = packager.update_variant(variant_of(&info));
                self.bump();
            }
            return;
        }
        let State::Starting {
            packager_config,
            planned,
            ready,
            pending,
        } = &mut inner.state
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
        inner.state = match hls::Packager::in_memory(packager_config.clone(), variants) {
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
                State::Live { packager, names }
            }
            Err(e) => {
                tracing::error!(stream = %self.name, error = %e, "cannot package the ladder");
                State::Failed
            }
        };
        self.bump();
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
        let end_pdt =
            pdt + std::time::Duration::from_nanos(chunk.duration.as_nanos().max(0) as u64);
        let kind = chunk.kind;
        let mut inner = self.lock();
        let listed = match &mut inner.state {
            State::Starting { pending, .. } => {
                pending.push((rung, chunk, pdt));
                None
            }
            State::Live { packager, names } => {
                let name = names.get(rung)?.clone();
                let before = packager.stats(&name).map(|s| s.segments).unwrap_or(0);
                let next_before = packager.next_msn_of(&name);
                let pushed = packager.push(&name, chunk, pdt);
                if let Err(e) = &pushed {
                    tracing::warn!(stream = %self.name, rung = %name, error = %e, "packager refused a chunk");
                }
                let completed = packager
                    .stats(&name)
                    .ok()
                    .filter(|s| s.segments > before)
                    .and_then(|s| s.last_segment_duration);
                // A chunk is listed as it is pushed: as a part with LL-HLS, as a whole segment
                // without (`PackagerConfig::whole_segments`).
                let part = pushed.is_ok() && kind != ChunkKind::Init;
                // Whenever a rung opens a segment (a number a player may have seen, with a
                // part, is never handed on again), and as the first rung completes one.
                let moved = packager.next_msn_of(&name) != next_before
                    || (rung == 0 && completed.is_some());
                let continuity = moved.then(|| state_of(packager, names, end_pdt, false));
                Some(Listed {
                    arrivals: if part { arrivals.to_vec() } else { Vec::new() },
                    rung: name,
                    completed,
                    part,
                    continuity,
                })
            }
            State::Failed => return None,
        };
        if let Some(meter) = inner.rates.get_mut(rung) {
            meter.record(Instant::now(), end);
        }
        self.bump();
        listed
    }

    /// Where the playlists stand now, once packaging has started; `closed` says the pipeline
    /// has flushed.
    pub(crate) fn continuity(&self, closed: bool) -> Option<Continuity> {
        match &self.lock().state {
            State::Live { packager, names } => {
                Some(state_of(packager, names, SystemTime::now(), closed))
            }
            _ => None,
        }
    }

    /// Ends the playlists (ENDLIST); returns the segments this closed, per rung.
    pub(crate) fn end(&self) -> Vec<(String, MediaTime)> {
        let mut inner = self.lock();
        self.end_locked(&mut inner)
    }

    /// The publisher left, and may come back within the reconnect window: the open segments
    /// are closed, the playlists stay open, and the next segment of each rung starts after an
    /// `EXT-X-DISCONTINUITY`. Returns the segments this closed, per rung. An output that never
    /// started packaging cannot be continued and ends instead.
    pub(crate) fn pause(&self) -> Vec<(String, MediaTime)> {
        let mut inner = self.lock();
        let live =
            matches!(&inner.state, State::Live { packager, .. } if packager.ended_at().is_none());
        if !live {
            return self.end_locked(&mut inner);
        }
        // Closed before it can be resumed, so a new pipeline never pushes into an open segment.
        let closed = self.close(&mut inner, hls::Packager::pause, false);
        inner.paused = Some(tokio::time::Instant::now());
        closed
    }

    /// A new publish continues this paused output with a ladder of these rung names: true when
    /// it can (the same rungs, in order), and then it is no longer paused.
    pub(crate) fn resume(&self, rungs: &[&str]) -> bool {
        let mut inner = self.lock();
        if inner.paused.is_none() {
            return false;
        }
        let same = match &inner.state {
            State::Live { packager, names } => {
                packager.ended_at().is_none()
                    && names.len() == rungs.len()
                    && names.iter().zip(rungs).all(|(a, b)| a == b)
            }
            _ => false,
        };
        if same {
            inner.paused = None;
            // The new pipeline's media time starts again at zero.
            let interval = inner.chunk_interval();
            for meter in inner.rates.iter_mut() {
                *meter = RateMeter::new(interval);
            }
        }
        same
    }

    /// Ends the playlists of an output whose publisher has been gone for `window` or longer.
    /// Under the one lock, a publish resuming now either comes first (and the stream goes on)
    /// or finds nothing to resume (and starts anew).
    pub(crate) fn end_if_paused_for(&self, window: Duration) {
        let mut inner = self.lock();
        if inner.paused.is_some_and(|since| since.elapsed() >= window) {
            tracing::info!(stream = %self.name, "no publisher came back within the reconnect window; the stream ends");
            self.end_locked(&mut inner);
        }
    }

    /// [`Packaged::end`] with the lock held: not paused any more, the playlists end.
    fn end_locked(&self, inner: &mut Inner) -> Vec<(String, MediaTime)> {
        inner.paused = None;
        self.close(inner, |p| p.end(SystemTime::now()), true)
    }

    /// Applies `f` to the live packager (or marks a packager-less output failed when `failing`)
    /// and returns the segments that closed, per rung.
    fn close(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&mut hls::Packager),
        failing: bool,
    ) -> Vec<(String, MediaTime)> {
        let mut closed = Vec::new();
        if let State::Live { packager, names } = &mut inner.state {
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
            inner.state = State::Failed;
        }
        self.bump();
        closed
    }
}

#[cfg(test)]
impl Packaged {
    /// Lets a test set each rung's rate meter.
    pub(crate) fn with_rates(&self, f: impl FnOnce(&mut [RateMeter])) {
        f(&mut self.lock().rates)
    }
}

impl Inner {
    fn is_over(&self) -> bool {
        match &self.state {
            State::Live { packager, .. } => packager.ended_at().is_some(),
            State::Failed => true,
            State::Starting { .. } => false,
        }
    }

    fn chunk_interval(&self) -> Duration {
        match &self.state {
            State::Live { packager, .. } => chunk_interval(packager.config()),
            _ => Duration::from_secs(1),
        }
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

/// The continuity of `packager`'s playlists (rungs `names`), its newest media ending at
/// `last_end`.
fn state_of(
    packager: &hls::Packager,
    names: &[String],
    last_end: SystemTime,
    closed: bool,
) -> Continuity {
    Continuity {
        next_msn: packager.next_msn(),
        next_msn_of: packager.next_msns(),
        open_of: packager.incomplete(),
        next_discontinuity_sequence: packager.next_discontinuity_sequence(),
        next_init_version: packager.next_init_version(),
        last_end,
        rungs: names.to_vec(),
        closed,
        written: SystemTime::now(),
    }
}
