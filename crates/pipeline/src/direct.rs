//! A passthrough-only stream without a GStreamer pipeline
//! ([`crate::StartOptions::direct_passthrough`]; GStreamer is still initialised, and makes the
//! one silent AAC frame that fills missing audio):
//! the frames are stamped by the same [`crate::input`] rules as the GStreamer pipeline's
//! (timestamps, keyframe gate, silence where audio is missing), then cut into CMAF chunks and
//! written by [`media::fmp4::Chunker`] on the caller's thread. Nothing is decoded or queued: a
//! frame's bytes go from the demuxer to the chunker as the same `Bytes`, and are copied once,
//! into the fragment's `mdat`.
//!
//! It takes what the chunker writes: one video track (H.264, HEVC or AV1) with AAC-LC audio
//! (1024-sample frames, no SBR or PS) or none, into a ladder whose only rung is the passthrough
//! one. Anything else starts the GStreamer pipeline ([`plan_for`] says which): VP9 (the
//! writer's `vpcC` is not checked against a player yet), and AAC whose frames are not 1024
//! samples at the configured rate (HE-AAC's are 2048 at the SBR rate; the chunker gives every
//! AAC sample 1024).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::cmaf::{ChunkKind, CmafChunk};
use media::fmp4::Chunker;
use media::{
    AudioCodec, AudioConfig, AudioFrame, MediaFrame, MediaTime, VideoCodec, VideoConfig, VideoFrame,
};

use crate::chain::{Chain, StartOptions, StreamBackends};
use crate::config::{plan, LadderConfig, RungPlan};
use crate::error::Error;
use crate::input::{Decision, Input, Silence};
use crate::shared::Shared;
use crate::silence::silent_frame;
use crate::sink::{ChunkSink, Failure, RungInfo};
use crate::stream::{PushResult, StatsReader};

/// A keyframe this close before a segment boundary still starts the next segment (the input's
/// own cut tolerance: millisecond timestamps must not double a segment).
const CUT_TOLERANCE: Duration = Duration::from_millis(50);
/// Without LL-HLS parts a segment is one chunk: the part grid is put beyond any segment.
const NO_PARTS: Duration = Duration::from_secs(3600);

/// The plan of a stream the direct path can take, or `None` for the GStreamer pipeline: the
/// switch is on, the publish has one video track of H.264, HEVC or AV1 with AAC-LC audio or
/// none, and the ladder keeps only its passthrough rung for this source.
pub(crate) fn plan_for(
    video: Option<&VideoConfig>,
    audio: Option<&AudioConfig>,
    ladder: &LadderConfig,
    options: &StartOptions,
) -> Option<Vec<RungPlan>> {
    if !options.direct_passthrough || !options.tracks.is_empty() {
        return None;
    }
    let video = video?;
    let codec_ok = matches!(
        video.codec,
        VideoCodec::H264 | VideoCodec::Hevc | VideoCodec::Av1
    );
    if !codec_ok || audio.is_some_and(|a| !plain_aac(a)) {
        return None;
    }
    let plan = plan(&ladder.renditions, video.width, video.height);
    (plan.len() == 1 && plan[0].passthrough).then_some(plan)
}

/// AAC-LC with 1024-sample frames and no SBR or PS: every frame lasts 1024 samples at the
/// configuration's rate, as the chunker writes it.
fn plain_aac(audio: &AudioConfig) -> bool {
    audio.codec == AudioCodec::Aac
        && media::aac::AudioSpecificConfig::parse(&audio.record).is_ok_and(|asc| {
            asc.object_type == media::aac::AOT_AAC_LC
                && asc.frame_length == Some(1024)
                && asc.sbr_sample_rate.is_none()
                && !asc.ps
        })
}

struct State {
    input: Input,
    chunker: Chunker,
    /// One silent AAC frame, pushed where the publisher's audio is missing.
    silent: Option<Bytes>,
    /// The rung, announced before its first init segment.
    info: Option<RungInfo>,
    closed: bool,
}

/// One passthrough-only stream, repackaged on the thread that pushes its frames.
pub(crate) struct Direct {
    name: String,
    video_codec: VideoCodec,
    has_audio: bool,
    plan: Vec<RungPlan>,
    shared: Arc<Shared>,
    sink: Arc<dyn ChunkSink>,
    state: Mutex<State>,
    backends: StreamBackends,
    _chain: Chain,
}

impl Direct {
    /// Starts a stream that [`plan_for`] gave `plan` for.
    pub(crate) fn start(
        stream_name: &str,
        video: &VideoConfig,
        audio: Option<&AudioConfig>,
        ladder: &LadderConfig,
        plan: Vec<RungPlan>,
        sink: Arc<dyn ChunkSink>,
        options: &StartOptions,
    ) -> Result<Direct, Error> {
        let chain = Chain::admit(&plan, options)?;
        let backends = chain.backends(&plan);
        let segment = ladder.segment_duration;
        let mut chunker = Chunker::new(
            (true, audio.is_some()),
            segment.saturating_sub(CUT_TOLERANCE),
            ladder.part_duration.unwrap_or(NO_PARTS),
        );
        let mut input = Input::new(
            options.input_offset,
            video.record.clone(),
            segment,
            ladder.max_queued_frames,
        );
        let configs = std::iter::once(MediaFrame::VideoConfig(video.clone()))
            .chain(audio.map(|a| MediaFrame::AudioConfig(a.clone())));
        for config in configs {
            // Configurations alone complete no chunk.
            chunker
                .push(config)
                .map_err(|e| Error::InvalidCodecConfig(e.to_string()))?;
        }
        let silent = audio.and_then(|a| match silent_frame(a) {
            Ok((data, frame)) => {
                input.fill_audio_gaps(frame);
                Some(data)
            }
            Err(e) => {
                tracing::warn!(stream = %stream_name, "audio gaps will not be filled: {e}");
                None
            }
        });
        let rung = &plan[0];
        let info = RungInfo {
            index: 0,
            name: rung.name.clone(),
            width: video.width,
            height: video.height,
            frame_rate: video.frame_rate,
            video_kbps: None,
            video_codec: video.codec_string.clone(),
            audio_codec: audio.map(|a| a.codec_string.clone()),
            passthrough: true,
        };
        Ok(Direct {
            name: stream_name.to_owned(),
            video_codec: video.codec,
            has_audio: audio.is_some(),
            shared: Arc::new(Shared::new(plan.len(), segment.as_nanos() as u64)),
            plan,
            sink,
            state: Mutex::new(State {
                input,
                chunker,
                silent,
                info: Some(info),
                closed: false,
            }),
            backends,
            _chain: chain,
        })
    }

    pub(crate) fn rungs(&self) -> Vec<RungPlan> {
        self.plan.clone()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn backends(&self) -> &StreamBackends {
        &self.backends
    }

    pub(crate) fn input_offset(&self) -> Option<i64> {
        self.state.lock().ok().and_then(|st| st.input.offset())
    }

    pub(crate) fn stats_reader(&self) -> StatsReader {
        StatsReader::counters(self.shared.clone(), self.plan.clone().into())
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Stamps `frame` and hands what it completes to the sink, on this thread.
    pub(crate) fn push(&self, frame: &MediaFrame) -> PushResult {
        if self.has_failed() {
            return PushResult::Closed;
        }
        let Ok(mut st) = self.state.lock() else {
            return PushResult::Closed;
        };
        if st.closed {
            return PushResult::Closed;
        }
        // The direct path queues nothing: a drop is never an overflow, and the queue level the
        // input rules are told is 0.
        let fed = match frame {
            MediaFrame::VideoConfig(cfg) => {
                if cfg.codec != self.video_codec {
                    tracing::warn!(stream = %self.name, "video codec changed to {:?}; ignored", cfg.codec);
                    return PushResult::Dropped;
                }
                // The new configuration applies from the next keyframe (the chunker starts a
                // segment, after a new init segment, there).
                !st.input.video_config(&cfg.record) || self.feed(&mut st, frame.clone())
            }
            MediaFrame::AudioConfig(cfg) => {
                if !self.has_audio || cfg.codec != AudioCodec::Aac {
                    return PushResult::Dropped;
                }
                // The same configuration again changes nothing. Another one restarts the
                // chunker (a new init segment), whose video then waits for a keyframe. The
                // transcoder never sends one: it starts a new pipeline for a new configuration.
                self.feed(&mut st, frame.clone())
            }
            MediaFrame::Video(v) => {
                let Decision::Push(stamp) = st.input.video(v, 0) else {
                    self.shared.video_dropped.fetch_add(1, Ordering::Relaxed);
                    return PushResult::Dropped;
                };
                self.shared.arrived(stamp.pts, Instant::now());
                self.shared.video_in.fetch_add(1, Ordering::Relaxed);
                self.shared.rungs[0].frames.fetch_add(1, Ordering::Relaxed);
                // Silence up to this frame goes first: it belongs to the chunk before the one
                // this frame may start.
                let silence = st.input.silence_for_video(stamp.dts);
                self.silence(&mut st, silence)
                    && self.feed(
                        &mut st,
                        MediaFrame::Video(VideoFrame {
                            dts: ns(stamp.dts),
                            pts: ns(stamp.pts),
                            keyframe: !stamp.delta_unit,
                            data: v.data.clone(),
                        }),
                    )
            }
            MediaFrame::Audio(a) => {
                if !self.has_audio {
                    return PushResult::Dropped;
                }
                let (silence, decision) = st.input.audio(a.pts, 0);
                if !self.silence(&mut st, silence) {
                    return PushResult::Closed;
                }
                let Decision::Push(stamp) = decision else {
                    self.shared.audio_dropped.fetch_add(1, Ordering::Relaxed);
                    return PushResult::Dropped;
                };
                self.shared.audio_in.fetch_add(1, Ordering::Relaxed);
                let audio = AudioFrame {
                    pts: ns(stamp.pts),
                    data: a.data.clone(),
                };
                self.feed(&mut st, MediaFrame::Audio(audio))
            }
            // The direct path carries no other tracks.
            MediaFrame::TrackConfig(..) | MediaFrame::TrackVideo(..) => return PushResult::Dropped,
        };
        if fed {
            PushResult::Queued
        } else {
            PushResult::Closed
        }
    }

    /// One frame into the chunker, and what it completes to the sink; false once the writer
    /// failed.
    fn feed(&self, st: &mut State, frame: MediaFrame) -> bool {
        let chunks = st.chunker.push(frame);
        self.hand_on(st, chunks)
    }

    /// Silent frames at `silence`'s times into the chunker (none without a silent frame).
    fn silence(&self, st: &mut State, silence: Option<Silence>) -> bool {
        let (Some(silence), Some(data)) = (silence, st.silent.clone()) else {
            return true;
        };
        let fed = silence.times().all(|pts| {
            self.shared.audio_silence.fetch_add(1, Ordering::Relaxed);
            let frame = AudioFrame {
                pts: ns(pts),
                data: data.clone(),
            };
            self.feed(st, MediaFrame::Audio(frame))
        });
        fed
    }

    /// Hands `chunks` to the sink (the rung announced before its first init segment). A
    /// writer error fails the stream; false then.
    fn hand_on(&self, st: &mut State, chunks: Result<Vec<CmafChunk>, media::fmp4::Error>) -> bool {
        let chunks = match chunks {
            Ok(c) => c,
            Err(e) => {
                if !self.shared.failed.swap(true, Ordering::SeqCst) {
                    tracing::error!(stream = %self.name, error = %e, "the fMP4 writer failed");
                    self.sink.on_failure(Failure {
                        message: format!("fMP4 writer: {e}"),
                        accelerator: None,
                    });
                }
                st.closed = true;
                return false;
            }
        };
        for chunk in chunks {
            if chunk.kind == ChunkKind::Init {
                if let Some(info) = st.info.take() {
                    self.sink.on_rung_ready(info);
                }
            }
            self.emit(chunk);
        }
        true
    }

    fn emit(&self, chunk: CmafChunk) {
        let arrivals = self.shared.chunk_out(0, &chunk);
        self.sink.on_chunk(0, chunk, &arrivals);
    }

    /// Ends the stream: the last chunk goes out, then the end.
    pub(crate) fn finish(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if std::mem::replace(&mut st.closed, true) || self.has_failed() {
            return;
        }
        let chunks = st.chunker.flush();
        if self.hand_on(&mut st, chunks) {
            self.sink.on_eos();
        }
    }
}

fn ns(t: u64) -> MediaTime {
    MediaTime::from_nanos(i64::try_from(t).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rendition;

    fn video(codec: VideoCodec) -> VideoConfig {
        VideoConfig {
            codec,
            record: Bytes::new(),
            width: 640,
            height: 360,
            frame_rate: Some(30.0),
            codec_string: String::new(),
            nal_length_size: 4,
        }
    }

    fn aac(record: &'static [u8]) -> AudioConfig {
        AudioConfig {
            codec: AudioCodec::Aac,
            record: Bytes::from_static(record),
            sample_rate: 48_000,
            channels: 2,
            codec_string: "mp4a.40.2".to_owned(),
        }
    }

    #[test]
    fn only_what_the_writer_writes_goes_direct() {
        let ladder = LadderConfig {
            renditions: vec![Rendition::passthrough("source")],
            ..LadderConfig::default()
        };
        let on = StartOptions {
            direct_passthrough: true,
            ..StartOptions::default()
        };
        let lc = aac(&[0x11, 0x90]); // AAC-LC, 48 kHz, stereo
        let he = aac(&[0x2B, 0x11, 0x88, 0x00]); // HE-AAC: SBR at 48 kHz over a 24 kHz core
        let go = |v: VideoCodec, a: Option<&AudioConfig>| {
            plan_for(Some(&video(v)), a, &ladder, &on).is_some()
        };
        assert!(go(VideoCodec::H264, Some(&lc)));
        assert!(go(VideoCodec::Hevc, None));
        assert!(go(VideoCodec::Av1, Some(&lc)));
        assert!(!go(VideoCodec::Vp9, Some(&lc)), "VP9");
        assert!(!go(VideoCodec::H264, Some(&he)), "HE-AAC");
        assert!(
            plan_for(None, Some(&lc), &ladder, &on).is_none(),
            "audio only"
        );
        let off = StartOptions::default();
        assert!(plan_for(Some(&video(VideoCodec::H264)), Some(&lc), &ladder, &off).is_none());
    }
}
