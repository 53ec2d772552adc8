//! [`StreamPipeline`]: one stream's pipeline, whichever engine runs it. A passthrough-only
//! stream runs on the direct path ([`crate::direct`]) when [`StartOptions::direct_passthrough`]
//! asks for it; every other stream, and that one without the switch, runs in GStreamer
//! ([`crate::stream`]).

use std::sync::Arc;

use media::{AudioConfig, MediaFrame, VideoConfig};

use crate::chain::{StartOptions, StreamBackends};
use crate::config::{LadderConfig, RungPlan};
use crate::direct::{plan_for, Direct};
use crate::error::Error;
use crate::init::init;
use crate::sink::ChunkSink;
use crate::stats::PipelineStats;
use crate::stream::{check_input, GstPipeline, PushResult, StatsReader};

/// Both boxed: a stream has one, and either is large.
enum Engine {
    Gst(Box<GstPipeline>),
    Direct(Box<Direct>),
}

/// One stream's pipeline. Dropping it without [`StreamPipeline::finish`] stops it at once.
pub struct StreamPipeline {
    engine: Engine,
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
    /// [`ChunkSink::on_failure`] with [`crate::Failure::accelerator`] set. With
    /// [`StartOptions::direct_passthrough`], a stream whose ladder keeps only the passthrough
    /// rung is repackaged without GStreamer, and its sink is called on the thread that pushes.
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
        check_input(Some(video), audio)?;
        if let Some(plan) = plan_for(Some(video), audio, ladder, options) {
            let direct = Direct::start(stream_name, video, audio, ladder, plan, sink, options)?;
            return Ok(StreamPipeline {
                engine: Engine::Direct(Box::new(direct)),
            });
        }
        let gst = GstPipeline::start(stream_name, Some(video), audio, ladder, sink, options)?;
        Ok(StreamPipeline {
            engine: Engine::Gst(Box::new(gst)),
        })
    }

    /// Starts the pipeline of a stream without video: one rung
    /// ([`crate::audio_only_plan`]) that carries `audio` alone, cut into segments on audio
    /// frames. Video frames pushed to it are dropped.
    pub fn start_audio_only(
        stream_name: &str,
        audio: &AudioConfig,
        ladder: &LadderConfig,
        sink: Arc<dyn ChunkSink>,
        options: &StartOptions,
    ) -> Result<StreamPipeline, Error> {
        init()?;
        ladder.validate()?;
        check_input(None, Some(audio))?;
        let gst = GstPipeline::start(stream_name, None, Some(audio), ladder, sink, options)?;
        Ok(StreamPipeline {
            engine: Engine::Gst(Box::new(gst)),
        })
    }

    /// Whether this stream runs on the direct path (no GStreamer).
    pub fn is_direct(&self) -> bool {
        matches!(self.engine, Engine::Direct(_))
    }

    /// The rungs this pipeline makes, after skipping those above the source's size.
    pub fn rungs(&self) -> Vec<RungPlan> {
        match &self.engine {
            Engine::Gst(p) => p.rungs(),
            Engine::Direct(d) => d.rungs(),
        }
    }

    /// The stream's name, as given to [`StreamPipeline::start`].
    pub fn name(&self) -> &str {
        match &self.engine {
            Engine::Gst(p) => p.name(),
            Engine::Direct(d) => d.name(),
        }
    }

    /// The element chain: decoder, scaler, and each rung's encoder with its backend.
    pub fn backends(&self) -> &StreamBackends {
        match &self.engine {
            Engine::Gst(p) => p.backends(),
            Engine::Direct(d) => d.backends(),
        }
    }

    /// The input timestamp (ns) that is media time zero, once the first frame has arrived.
    /// Hand it to a replacement pipeline ([`StartOptions::input_offset`]) to continue the
    /// timeline.
    pub fn input_offset(&self) -> Option<i64> {
        match &self.engine {
            Engine::Gst(p) => p.input_offset(),
            Engine::Direct(d) => d.input_offset(),
        }
    }

    /// Counters, read without locking the pipeline.
    pub fn stats(&self) -> PipelineStats {
        self.stats_reader().read()
    }

    /// A handle that reads [`StreamPipeline::stats`] from any thread without holding the
    /// pipeline: whoever owns the pipeline hands this to the metrics and the API.
    pub fn stats_reader(&self) -> StatsReader {
        match &self.engine {
            Engine::Gst(p) => p.stats_reader(),
            Engine::Direct(d) => d.stats_reader(),
        }
    }

    /// Whether rung `rung` (an index into [`StreamPipeline::rungs`]) can be shed: it is
    /// encoded in software (a passthrough rung costs nothing to keep; a hardware encoder may
    /// hand frames on later than the gate needs), and the stream has audio (the muxer of a
    /// shed rung cuts its segments on the audio while its video is a gap).
    pub fn can_shed(&self, rung: usize) -> bool {
        match &self.engine {
            Engine::Gst(p) => p.can_shed(rung),
            // Its only rung is the passthrough one.
            Engine::Direct(_) => false,
        }
    }

    /// Sheds rung `rung` (`shed`), or brings it back, from the next segment cut on: a shed
    /// rung's frames are dropped before its scaler and encoder, so it costs nothing, and its
    /// segments are reported as gaps ([`ChunkSink::on_gap`]) in step with the other rungs'.
    /// A rung brought back starts again on a cut, with an IDR, its segments aligned as before.
    /// Returns false (and does nothing) for a rung that [`StreamPipeline::can_shed`] refuses.
    pub fn shed(&self, rung: usize, shed: bool) -> bool {
        match &self.engine {
            Engine::Gst(p) => p.shed(rung, shed),
            Engine::Direct(_) => false,
        }
    }

    /// True once the pipeline has reported an error; further pushes are discarded.
    pub fn has_failed(&self) -> bool {
        match &self.engine {
            Engine::Gst(p) => p.has_failed(),
            Engine::Direct(d) => d.has_failed(),
        }
    }

    /// Hands one frame to the pipeline. The GStreamer pipeline never blocks here: when its
    /// input queue is full the frame is dropped and counted, and video then waits for the next
    /// keyframe. The direct path writes what the frame completes and calls the sink before it
    /// returns.
    pub fn push(&self, frame: &MediaFrame) -> PushResult {
        match &self.engine {
            Engine::Gst(p) => p.push(frame),
            Engine::Direct(d) => d.push(frame),
        }
    }

    /// Ends the stream: sends end-of-stream, waits (bounded) until every rung has flushed its
    /// last segment, then stops the pipeline and its bus thread (the direct path writes its
    /// last chunk at once).
    pub fn finish(self) {
        match self.engine {
            Engine::Gst(p) => p.finish(),
            Engine::Direct(d) => d.finish(),
        }
    }
}
