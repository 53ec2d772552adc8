//! What happens to each input frame, decided without GStreamer or a clock: the timestamps it is
//! pushed with, whether it is dropped, and whether a segment starts on it.
//!
//! [`crate::StreamPipeline::push`] hands every frame here with the level of its appsrc's queue
//! and carries out the [`Decision`]: it pushes a buffer with the given times and flags (first
//! telling every encoder and muxer about a cut), or counts a drop.
//!
//! - **Media time zero** is the first frame's timestamp (for video the smaller of its DTS and
//!   PTS, for audio its PTS), shared by both tracks, so whichever comes first sets it. A
//!   replacement pipeline starts with its predecessor's offset and continues its timeline.
//! - **Monotonic times**: video DTS never goes back, PTS is never before DTS, and audio PTS
//!   never goes back. A frame before media time zero is dropped.
//! - **Keyframe gate**: video starts on a keyframe, and waits for the next one after a drop or
//!   a change of its configuration (the new SPS/PPS apply from there).
//! - **Bounded queues**: a frame that finds `max_queued` frames waiting is dropped (audio may
//!   have twice as many: its frames are shorter), and the next frame pushed on that track is
//!   marked DISCONT.
//! - **Segment cuts**: the first source keyframe at or after the previous cut plus the segment
//!   duration (less [`CUT_TOLERANCE_NS`]) starts the next segment on every rung.

use std::time::Duration;

use bytes::Bytes;
use media::{MediaTime, VideoFrame};

/// A source keyframe this close before a segment boundary still cuts there, so that millisecond
/// timestamp rounding does not double a segment.
const CUT_TOLERANCE_NS: u64 = 50_000_000;

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Push it with these times and flags.
    Push(Stamp),
    /// Drop it, and count it as dropped.
    Drop(Dropped),
}

/// How a frame is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Presentation time, ns of media time.
    pub(crate) pts: u64,
    /// Decode time, ns of media time (audio: the PTS).
    pub(crate) dts: u64,
    /// Not a keyframe (`DELTA_UNIT`); never set on audio.
    pub(crate) delta_unit: bool,
    /// The first frame of its track after a drop (`DISCONT`).
    pub(crate) discont: bool,
    /// A new segment starts at this frame's PTS: tell the encoders and muxers before pushing.
    pub(crate) cut: bool,
}

/// Why a frame is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The track's input queue is full.
    QueueFull,
    /// Video waits for a keyframe (at the start, after a drop or a configuration change).
    WaitingForKeyframe,
    /// The frame's time is before media time zero.
    BeforeStart,
}

/// The input side of one pipeline.
#[derive(Debug)]
pub(crate) struct Input {
    /// Subtracted from every input timestamp, shared by audio and video (ns).
    offset: Option<i64>,
    last_video_dts: u64,
    last_audio_pts: u64,
    video_wait_keyframe: bool,
    video_discont: bool,
    audio_discont: bool,
    last_cut: Option<u64>,
    video_record: Bytes,
    segment_ns: u64,
    max_queued: u64,
}

impl Input {
    /// Input of a stream whose video configuration record is `video_record`, cut into segments
    /// of `segment`, with at most `max_queued` video frames waiting. `offset` continues another
    /// pipeline's timeline.
    pub(crate) fn new(
        offset: Option<i64>,
        video_record: Bytes,
        segment: Duration,
        max_queued: usize,
    ) -> Input {
        Input {
            offset,
            last_video_dts: 0,
            last_audio_pts: 0,
            video_wait_keyframe: true,
            video_discont: false,
            audio_discont: false,
            last_cut: None,
            video_record,
            segment_ns: segment.as_nanos() as u64,
            max_queued: max_queued as u64,
        }
    }

    /// The input timestamp (ns) that is media time zero, once a frame has set it.
    pub(crate) fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// A video configuration arrived. True when its record differs from the current one: the
    /// caller then sets new caps, and video waits for the next keyframe.
    pub(crate) fn video_config(&mut self, record: &Bytes) -> bool {
        if *record == self.video_record {
            return false;
        }
        self.video_record = record.clone();
        self.video_wait_keyframe = true;
        true
    }

    /// A video frame, with `queued` frames waiting in the video input queue.
    pub(crate) fn video(&mut self, v: &VideoFrame, queued: u64) -> Decision {
        if queued >= self.max_queued {
            self.video_wait_keyframe = true;
            self.video_discont = true;
            return Decision::Drop(Dropped::QueueFull);
        }
        if self.video_wait_keyframe && !v.keyframe {
            return Decision::Drop(Dropped::WaitingForKeyframe);
        }
        let offset = *self
            .offset
            .get_or_insert(v.dts.as_nanos().min(v.pts.as_nanos()));
        let dts = v.dts.as_nanos() - offset;
        if dts < 0 {
            self.video_wait_keyframe = true;
            return Decision::Drop(Dropped::BeforeStart);
        }
        let dts = (dts as u64).max(self.last_video_dts);
        let pts = (v.pts.as_nanos() - offset).max(0) as u64;
        let pts = pts.max(dts);
        self.last_video_dts = dts;
        self.video_wait_keyframe = false;
        let cut = v.keyframe && self.cut(pts);
        Decision::Push(Stamp {
            pts,
            dts,
            delta_unit: !v.keyframe,
            discont: std::mem::take(&mut self.video_discont),
            cut,
        })
    }

    /// An audio frame of time `pts`, with `queued` frames waiting in the audio input queue.
    pub(crate) fn audio(&mut self, pts: MediaTime, queued: u64) -> Decision {
        // Audio frames are shorter than video frames; allow proportionally more.
        if queued >= self.max_queued.saturating_mul(2) {
            self.audio_discont = true;
            return Decision::Drop(Dropped::QueueFull);
        }
        let offset = *self.offset.get_or_insert(pts.as_nanos());
        let pts = pts.as_nanos() - offset;
        if pts < 0 {
            return Decision::Drop(Dropped::BeforeStart);
        }
        let pts = (pts as u64).max(self.last_audio_pts);
        self.last_audio_pts = pts;
        Decision::Push(Stamp {
            pts,
            dts: pts,
            delta_unit: false,
            discont: std::mem::take(&mut self.audio_discont),
            cut: false,
        })
    }

    /// Whether the source keyframe at `pts` starts a new segment. The first keyframe starts
    /// the first segment, which needs no cut.
    fn cut(&mut self, pts: u64) -> bool {
        let Some(last) = self.last_cut else {
            self.last_cut = Some(pts);
            return false;
        };
        if pts + CUT_TOLERANCE_NS < last + self.segment_ns {
            return false;
        }
        self.last_cut = Some(pts);
        true
    }
}

#[cfg(test)]
mod cases;
