//! A rung's appsink side: muxer buffers assembled into CMAF chunks, counted, and handed to the
//! [`ChunkSink`] with the arrival times of the frames they present; the rung announced first,
//! from the caps that really reach its muxer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use media::cmaf::{ChunkKind, CmafChunk};

use crate::chunk::{Assembler, OutBuffer};
use crate::config::RungPlan;
use crate::shared::Shared;
use crate::sink::{ChunkSink, RungInfo};

/// A segment's output may start this much before its cut (audio that straddles the cut goes
/// with the segment after it).
const CUT_SLACK_NS: i64 = 100_000_000;

/// The output of rung `index`.
pub(crate) struct RungOutput {
    index: usize,
    plan: RungPlan,
    sink: Arc<dyn ChunkSink>,
    shared: Arc<Shared>,
    assembler: Mutex<Assembler>,
    announced: AtomicBool,
    video_pad: Option<gst::glib::WeakRef<gst::Pad>>,
    /// A passthrough rung's codec string as the source announced it: what the rung says when
    /// its caps carry no codec_data to read one from (VP9).
    source_codec: Option<String>,
    audio_codec: Option<String>,
    /// Gaps (start, duration) reported by the rung's gate before the rung's chunks up to their
    /// start came out of the muxer: they follow those chunks, in order.
    gaps: Mutex<Gaps>,
}

/// Gaps waiting for the rung's output to reach them.
#[derive(Default)]
struct Gaps {
    waiting: VecDeque<(media::MediaTime, media::MediaTime)>,
    /// The muxer's current segment is one of the shed time: its chunks are dropped.
    dropping: bool,
    /// The cut a shed starts at, until the segment before it is out and said to end there.
    closing: Option<media::MediaTime>,
}

impl RungOutput {
    /// Rung `plan.index`'s output, reading its video caps from `video_pad` (the muxer's video
    /// sink pad; none for a stream without video) and carrying `audio_codec`, if any.
    pub(crate) fn new(
        plan: &RungPlan,
        sink: &Arc<dyn ChunkSink>,
        shared: &Arc<Shared>,
        video_pad: Option<&gst::Pad>,
        source_codec: Option<String>,
        audio_codec: Option<String>,
    ) -> RungOutput {
        RungOutput {
            index: plan.index,
            plan: plan.clone(),
            sink: Arc::clone(sink),
            shared: Arc::clone(shared),
            assembler: Mutex::new(Assembler::default()),
            announced: AtomicBool::new(false),
            video_pad: video_pad.map(|p| p.downgrade()),
            source_codec,
            audio_codec,
            gaps: Mutex::new(Gaps::default()),
        }
    }

    /// Sends `appsink`'s samples and its end of stream here.
    pub(crate) fn attach(self: Arc<Self>, appsink: &gst_app::AppSink) {
        let on_eos = Arc::clone(&self);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| self.on_sample(s))
                .eos(move |_| on_eos.on_eos())
                .build(),
        );
    }

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
        self.announce_shed();
        Ok(gst::FlowSuccess::Ok)
    }

    /// The rung's gate reports a shed segment (its video never reached the encoder). Handed to
    /// the sink when the muxer's output gets there, so that it follows the rung's last chunk
    /// before it.
    pub(crate) fn gap(&self, start: media::MediaTime, duration: media::MediaTime) {
        if let Ok(mut g) = self.gaps.lock() {
            g.waiting.push_back((start, duration));
        }
    }

    /// The rung's gate dropped its first frame, at the cut `at`: once the muxer's output gets
    /// there, the sink hears that the rung's segment before it ends at `at`
    /// ([`ChunkSink::on_shed`]), a segment before the first gap is known.
    pub(crate) fn shed_from(&self, at: media::MediaTime) {
        if let Ok(mut g) = self.gaps.lock() {
            g.closing = Some(at);
        }
        self.announce_shed();
    }

    /// Tells the sink where a shed begins once the rung's output has reached it.
    fn announce_shed(&self) {
        let end = self
            .shared
            .rungs
            .get(self.index)
            .map_or(-1, |c| c.media_end.load(Ordering::Relaxed));
        let at = {
            let Ok(mut g) = self.gaps.lock() else {
                return;
            };
            match g.closing {
                Some(at) if end >= 0 && end + CUT_SLACK_NS >= at.as_nanos() => g.closing.take(),
                _ => None,
            }
        };
        if let Some(at) = at {
            self.sink.on_shed(self.index, at);
        }
    }

    /// Whether `chunk` goes to the sink: not when it belongs to a segment of the shed time (the
    /// muxer's audio-only output there). Hands on the gaps up to a segment that starts here
    /// first.
    fn pass_shed(&self, chunk: &CmafChunk) -> bool {
        let Ok(mut gaps) = self.gaps.lock() else {
            return true;
        };
        match chunk.kind {
            ChunkKind::Init => true,
            ChunkKind::Continuation => !gaps.dropping,
            ChunkKind::SegmentStart => {
                let at = chunk.pts.as_nanos() + CUT_SLACK_NS;
                let gate = self.shared.gate(self.index);
                gaps.dropping = gate.drops(u64::try_from(at).unwrap_or(0));
                while gaps
                    .waiting
                    .front()
                    .is_some_and(|(s, _)| s.as_nanos() <= at)
                {
                    if let Some((start, duration)) = gaps.waiting.pop_front() {
                        self.sink.on_gap(self.index, start, duration);
                    }
                }
                !gaps.dropping
            }
        }
    }

    /// Hands on every gap still waiting (at the end of the stream).
    fn hand_on_gaps(&self) {
        let waiting = match self.gaps.lock() {
            Ok(mut g) => std::mem::take(&mut g.waiting),
            Err(_) => return,
        };
        for (start, duration) in waiting {
            self.sink.on_gap(self.index, start, duration);
        }
    }

    fn on_eos(&self) {
        let mut chunks = Vec::new();
        if let Ok(mut a) = self.assembler.lock() {
            a.flush(&mut chunks);
        }
        for chunk in chunks {
            self.emit(chunk);
        }
        self.hand_on_gaps();
    }

    fn emit(&self, chunk: CmafChunk) {
        if !self.pass_shed(&chunk) {
            tracing::debug!(rung = %self.plan.name, pts_ms = chunk.pts.as_millis(), "chunk of a shed rung dropped");
            return;
        }
        if chunk.kind == ChunkKind::Init && !self.announced.swap(true, Ordering::SeqCst) {
            self.sink.on_rung_ready(self.info());
        }
        let arrivals = self.shared.chunk_out(self.index, &chunk);
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
            video_codec: self.source_codec.clone().unwrap_or_default(),
            audio_codec: self.audio_codec.clone(),
            passthrough: self.plan.passthrough,
        };
        let caps = self
            .video_pad
            .as_ref()
            .and_then(|p| p.upgrade())
            .and_then(|p| p.current_caps());
        if let Some(s) = caps.as_ref().and_then(|c| c.structure(0)) {
            if let Ok(f) = s.get::<gst::Fraction>("framerate") {
                // A rate no camera sends is an encoder's placeholder, not the stream's.
                if f.numer() > 0
                    && f.denom() > 0
                    && i64::from(f.numer()) <= 1000 * i64::from(f.denom())
                {
                    info.frame_rate = Some(f64::from(f.numer()) / f64::from(f.denom()));
                }
            }
            if let Ok(buf) = s.get::<gst::Buffer>("codec_data") {
                if let Ok(map) = buf.map_readable() {
                    // A passthrough rung of an HEVC or AV1 source carries its hvcC or av1C.
                    let record = || bytes::Bytes::copy_from_slice(&map);
                    let passed = match s.name().as_str() {
                        "video/x-h265" => {
                            Some(media::hevc::video_config(record()).map_err(|e| e.to_string()))
                        }
                        "video/x-av1" => {
                            Some(media::av1::video_config(record()).map_err(|e| e.to_string()))
                        }
                        _ => None,
                    };
                    if let Some(config) = passed {
                        match config {
                            Ok(c) => {
                                info.video_codec = c.codec_string;
                                info.width = c.width;
                                info.height = c.height;
                            }
                            Err(e) => {
                                tracing::warn!(rung = %self.plan.name, "output codec_data: {e}")
                            }
                        }
                        return info;
                    }
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
