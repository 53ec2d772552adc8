//! A publish once its pipeline runs: the feeder owns the [`StreamPipeline`] by value, with the
//! output it writes into and what the overload policy has seen. Here the pipeline is fed,
//! looked at for overload about once a second (shedding rungs and bringing them back), and
//! finished.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ingest::frames::DropCounter;
use media::{MediaFrame, VideoConfig};
use pipeline::{PushResult, StreamPipeline};

use crate::continuity::ContinuityStore;
use crate::metrics::{RungLabels, TranscodeMetrics};
use crate::output::StreamOutput;
use crate::outputs::Outputs;
use crate::overload::{shedding_order, Action, Observation, Policy, ShedReason};
use crate::rate::RateMeter;
use crate::transcoder::Transcoder;

/// How often a running stream is looked at for overload.
const OVERLOAD_TICK: Duration = Duration::from_secs(1);

/// A publish with a running pipeline.
pub(crate) struct Running {
    pub(crate) output: Arc<StreamOutput>,
    pipeline: StreamPipeline,
    /// None for a publish without video.
    pub(crate) video: Option<VideoConfig>,
    /// Wall clock of media time zero.
    pub(crate) epoch: SystemTime,
    overload: Watch,
    /// Where the playlists' continuity is kept beyond this process, if anywhere.
    continuity: Option<Arc<dyn ContinuityStore>>,
}

impl Running {
    /// `pipeline`, started for `output`: the status reads its chain and counters from now on,
    /// and every rung is made again (none is shed).
    pub(crate) fn new(
        t: &Transcoder,
        output: Arc<StreamOutput>,
        pipeline: StreamPipeline,
        video: Option<VideoConfig>,
        epoch: SystemTime,
        backends: pipeline::StreamBackends,
    ) -> Running {
        output.pipeline.started(backends, pipeline.stats_reader());
        output.packaged.clear_shed();
        Running {
            overload: Watch::new(t, &pipeline),
            output,
            pipeline,
            video,
            epoch,
            continuity: t.continuity.get().cloned(),
        }
    }

    /// Hands `frame` to the pipeline (never blocks; a pipeline that falls behind drops).
    pub(crate) fn push(&mut self, frame: &MediaFrame) -> PushResult {
        if let MediaFrame::Video(v) = frame {
            self.overload.input.record(Instant::now(), v.dts);
        }
        self.pipeline.push(frame)
    }

    /// Stops the pipeline (joining its threads; the caller's thread is ours to block) and
    /// says where its input timeline started, for a replacement to continue it.
    pub(crate) fn stop(
        self,
    ) -> (
        Arc<StreamOutput>,
        Option<VideoConfig>,
        SystemTime,
        Option<i64>,
    ) {
        let offset = self.pipeline.input_offset();
        self.output.pipeline.finished();
        drop(self.pipeline);
        (self.output, self.video, self.epoch, offset)
    }

    /// Flushes the pipeline's last segments and ends the output's playlists (ENDLIST), or, with
    /// `keep_open`, leaves them open for the reconnect window.
    pub(crate) fn finish(self, metrics: &TranscodeMetrics, outputs: &Outputs, keep_open: bool) {
        let failed = self.pipeline.has_failed();
        self.pipeline.finish();
        self.output.pipeline.finished();
        // Decided after the flush: a drain that began meanwhile ends the playlists (unless it
        // hands the stream over).
        let paused = keep_open && !failed && !outputs.ends_on_drain();
        close(&self.output, metrics, paused);
        // The last word on where the playlists stand: whoever continues them elsewhere goes
        // on from here.
        if let (Some(store), Some(state)) =
            (&self.continuity, self.output.packaged.continuity(true))
        {
            store.save(self.output.name().as_str(), state);
        }
        tracing::info!("transcoding finished");
    }

    /// About once a second: is the stream behind, and should a rung be shed or come back
    /// ([`crate::overload`])? Carries out the sheds asked for, then the policy's answer, on
    /// the pipeline and the output.
    pub(crate) fn look_for_overload(&mut self, t: &Transcoder, input_drops: &DropCounter) {
        let now = Instant::now();
        if now.saturating_duration_since(self.overload.last_look) < OVERLOAD_TICK {
            return;
        }
        let name = self.output.name().clone();
        for (i, shed) in self.output.control.take_forced() {
            if !self.pipeline.shed(i, shed) {
                tracing::warn!(stream = %name, rung = i, "this rung cannot be shed");
                continue;
            }
            self.overload.policy.force(i, shed, now);
            let reason = shed.then_some(ShedReason::Forced);
            let rung = self.output.packaged.set_shed(i, reason).unwrap_or_default();
            if shed {
                t.metrics.rung_shed(name.as_str(), ShedReason::Forced);
            }
            tracing::warn!(stream = %name, rung = %rung, shed, "rung shed or brought back on request");
        }
        let w = &mut self.overload;
        w.last_look = now;
        // The rungs' rates only: the pipeline's counters are read from the pipeline itself below.
        let (_, _, rungs) = self.output.packaged.look();
        // Nothing to shed before the ladder is packaged.
        if rungs.is_empty() {
            return;
        }
        // Drops that say the pipeline could not keep up: its input queue overflowing, and the
        // publish's own queue (the feeder fell behind). Not late or early frames.
        let queue = input_drops.get();
        let drops = self.pipeline.stats().overflow_dropped + queue.video + queue.audio;
        let dropped = w.drops.is_some_and(|d| drops > d);
        w.drops = Some(drops);
        // Against the rate the input comes at: never above real time.
        let input = w.input.factor(now).unwrap_or(1.0).min(1.0);
        // Another track's rung (a multitrack publish's own encode) says how that track
        // arrives, not whether the ladder keeps up: a track that stops would shed every rung.
        let plan = self.pipeline.rungs();
        let slowest = (rungs.into_iter().enumerate())
            .filter(|(i, _)| !w.policy.is_shed(*i))
            .filter(|(i, _)| plan.get(*i).is_some_and(|p| p.track == 0))
            .filter_map(|(_, r)| Some((r.name, r.realtime_factor?)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let slow = slowest
            .as_ref()
            .is_some_and(|(_, f)| *f < t.overload.behind_below * input);
        let behind = if dropped {
            Some(ShedReason::InputDropping)
        } else if slow {
            Some(ShedReason::BehindRealtime)
        } else {
            None
        };
        let cpu_busy = w.cpu_busy(now);
        let Some(action) = w.policy.observe(Observation {
            now,
            behind,
            cpu_busy,
        }) else {
            return;
        };
        match action {
            Action::Shed(i, reason) => {
                if !self.pipeline.shed(i, true) {
                    return;
                }
                let rung = self
                    .output
                    .packaged
                    .set_shed(i, Some(reason))
                    .unwrap_or_default();
                t.metrics.rung_shed(name.as_str(), reason);
                tracing::warn!(
                    stream = %name,
                    rung = %rung,
                    reason = reason.label(),
                    slowest_rung = slowest.as_ref().map_or("", |s| s.0.as_str()),
                    realtime_factor = slowest.as_ref().map_or(0.0, |s| s.1),
                    input_rate = input,
                    dropped,
                    "overloaded: rung shed until there is headroom again"
                );
            }
            Action::Restore(i) => {
                if !self.pipeline.shed(i, false) {
                    return;
                }
                let rung = self.output.packaged.set_shed(i, None).unwrap_or_default();
                tracing::info!(
                    stream = %name,
                    rung = %rung,
                    cpu_busy = cpu_busy.unwrap_or(0.0),
                    "headroom again: rung back"
                );
            }
        }
    }
}

/// Closes `output`'s open segments, counting them: the playlists wait for the publisher when
/// `paused`, else they end.
pub(crate) fn close(output: &StreamOutput, metrics: &TranscodeMetrics, paused: bool) {
    let closed = if paused {
        output.packaged.pause()
    } else {
        output.packaged.end()
    };
    for (rung, d) in closed {
        let labels = RungLabels::new(output.name().as_str(), &rung);
        metrics.segment_completed(&labels, d.as_secs_f64());
    }
}

/// What the overload policy looks at, between two looks.
struct Watch {
    policy: Policy,
    /// The rate video arrives at (a publisher sending slowly is not an overload).
    input: RateMeter,
    last_look: Instant,
    /// Frames dropped at the input so far, at the last look; `None` before the first.
    drops: Option<u64>,
    /// (when, the process's CPU seconds) at the last look.
    cpu: Option<(Instant, f64)>,
    cpus: f64,
}

impl Watch {
    /// The policy for `pipeline`'s sheddable rungs, in shedding order.
    fn new(t: &Transcoder, pipeline: &StreamPipeline) -> Watch {
        let rungs = pipeline.rungs();
        let priority = |name: &str| {
            t.shed_priorities
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, p)| *p)
        };
        let mut order = shedding_order(
            rungs
                .iter()
                .enumerate()
                .filter(|(i, _)| pipeline.can_shed(*i))
                .map(|(i, r)| (i, priority(&r.name), r.height))
                .collect(),
        );
        // A ladder without a rung that stays (no passthrough): the last one is never shed.
        // Another track's rung does not count: it may stop with its track.
        if order.len() == rungs.iter().filter(|r| r.track == 0).count() {
            order.pop();
        }
        Watch {
            policy: Policy::new(t.overload.clone(), order),
            input: RateMeter::new(Duration::from_millis(100)),
            last_look: Instant::now(),
            drops: None,
            cpu: None,
            cpus: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        }
    }

    /// The process's CPU use since the last call, as a share of the CPUs it may use.
    fn cpu_busy(&mut self, now: Instant) -> Option<f64> {
        let cpu = telemetry::process::cpu_seconds()?;
        let busy = self.cpu.and_then(|(at, was)| {
            let wall = now.saturating_duration_since(at).as_secs_f64();
            (wall > 0.0).then(|| (cpu - was) / wall / self.cpus)
        });
        self.cpu = Some((now, cpu));
        busy
    }
}
