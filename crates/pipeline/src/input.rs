//! What happens to each input frame, decided without GStreamer or a clock: the timestamps it is
//! pushed with, whether it is dropped, and whether a segment starts on it.
//!
//! [`crate::StreamPipeline::push`] hands every frame here with the level of its appsrc's queue
//! (the direct path, which queues nothing, with 0) and carries out the [`Decision`]: it pushes a
//! buffer with the given times and flags (first telling every encoder and muxer about a cut), or
//! counts a drop.
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
//!   duration (less [`CUT_TOLERANCE_NS`]) starts the next segment on every rung; without video,
//!   the first audio frame there does.
//! - **Silence fill** (when the stream has audio and a silent frame of its codec was made): every
//!   muxer waits for audio as well as video, so audio may not fall behind video by more than
//!   [`SILENCE_AFTER_NS`]. Once video is that far past the end of the audio pushed so far, silent
//!   frames are pushed up to the video's DTS, and on every video frame after that until real audio
//!   arrives again; real audio that overlaps silence already pushed is dropped (late). A hole of
//!   more than [`SILENCE_AFTER_NS`] between two real audio frames is filled too. Audio *ahead* of
//!   video needs nothing: the muxers' audio queues hold it.

use std::time::Duration;

use bytes::Bytes;
use media::{MediaTime, VideoFrame};

/// A source keyframe this close before a segment boundary still cuts there, so that millisecond
/// timestamp rounding does not double a segment.
const CUT_TOLERANCE_NS: u64 = 50_000_000;
/// How far audio may fall behind video (the end of the audio pushed so far against the DTS of
/// the video pushed) before silence fills the gap: above a publisher's usual skew, and well
/// below what the input queues hold (a segment's worth of video waits in the muxers).
pub(crate) const SILENCE_AFTER_NS: u64 = 1_000_000_000;
/// At most this much silence is pushed at once (a timestamp jump is not filled for hours).
const SILENCE_MAX_NS: u64 = 4_000_000_000;

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
    /// An audio frame that overlaps silence already pushed in its place.
    Late,
}

/// Silent audio frames to push before anything else: `count` frames of `frame_ns` each, the
/// first at `start` (ns of media time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Silence {
    /// PTS of the first silent frame.
    pub(crate) start: u64,
    /// How many frames.
    pub(crate) count: u64,
    /// Duration of each.
    pub(crate) frame_ns: u64,
}

impl Silence {
    /// The PTS of each frame, in order.
    pub(crate) fn times(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).map(|i| self.start + i * self.frame_ns)
    }
}

/// The least a video frame's DTS follows the previous one's by (1 ms, the resolution of FLV
/// timestamps).
const MIN_VIDEO_STEP_NS: u64 = 1_000_000;

/// The input side of one pipeline.
#[derive(Debug)]
pub(crate) struct Input {
    /// Subtracted from every input timestamp, shared by audio and video (ns).
    offset: Option<i64>,
    last_video_dts: u64,
    last_video_pts: u64,
    last_audio_pts: u64,
    video_wait_keyframe: bool,
    video_discont: bool,
    audio_discont: bool,
    last_cut: Option<u64>,
    video_record: Bytes,
    segment_ns: u64,
    max_queued: u64,
    /// Duration of one audio frame, once silence can be pushed.
    audio_frame_ns: Option<u64>,
    /// End of the audio pushed so far, real or silent (ns of media time).
    audio_end: Option<u64>,
    /// End of the last silence pushed: real audio before it is late.
    silence_until: u64,
    /// Silence is being pushed on every video frame until real audio comes back.
    filling: bool,
    /// DTS of the first video frame pushed: where audio that never came is filled from.
    first_video_dts: Option<u64>,
    /// The stream has no video: segments are cut on audio frames.
    audio_only: bool,
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
            last_video_pts: 0,
            last_audio_pts: 0,
            video_wait_keyframe: true,
            video_discont: false,
            audio_discont: false,
            last_cut: None,
            video_record,
            segment_ns: segment.as_nanos() as u64,
            max_queued: max_queued as u64,
            audio_frame_ns: None,
            audio_end: None,
            silence_until: 0,
            filling: false,
            first_video_dts: None,
            audio_only: false,
        }
    }

    /// The stream has no video: every audio frame may start a segment.
    pub(crate) fn audio_only(&mut self) {
        self.audio_only = true;
    }

    /// Lets the input fill audio gaps with silent frames of `frame` each.
    pub(crate) fn fill_audio_gaps(&mut self, frame: Duration) {
        let ns = frame.as_nanos() as u64;
        self.audio_frame_ns = (ns > 0).then_some(ns);
    }

    /// Called after a video frame of DTS `dts` was pushed: the silence to push when audio has
    /// fallen too far behind.
    pub(crate) fn silence_for_video(&mut self, dts: u64) -> Option<Silence> {
        let frame = self.audio_frame_ns?;
        let first = *self.first_video_dts.get_or_insert(dts);
        let end = self.audio_end.unwrap_or(first);
        if !self.filling && dts < end + SILENCE_AFTER_NS {
            return None;
        }
        self.filling = true;
        self.silence(end, dts, frame)
    }

    /// Silence from `end` up to (not past) `until`, at most [`SILENCE_MAX_NS`] of it.
    fn silence(&mut self, end: u64, until: u64, frame: u64) -> Option<Silence> {
        let count = (until.saturating_sub(end) / frame).min(SILENCE_MAX_NS / frame);
        if count == 0 {
            return None;
        }
        let next = end + count * frame;
        self.audio_end = Some(next);
        self.last_audio_pts = self.last_audio_pts.max(next - frame);
        self.silence_until = next;
        Some(Silence {
            start: end,
            count,
            frame_ns: frame,
        })
    }

    /// Where the current segment started (ns of media time), once video or audio started one.
    pub(crate) fn last_cut(&self) -> Option<u64> {
        self.last_cut
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
        // Strictly increasing, and a PTS other than the last frame's: GStreamer's parsers take a
        // DTS or PTS equal to the previous buffer's as unknown, and h264parse then hands on a
        // frame without a PTS, which isofmp4mux refuses with an error that ended the stream (a
        // publisher under load sent two frames with the same millisecond).
        let follows = self.first_video_dts.is_some();
        let dts = if follows {
            (dts as u64).max(self.last_video_dts + MIN_VIDEO_STEP_NS)
        } else {
            dts as u64
        };
        self.first_video_dts.get_or_insert(dts);
        let pts = (v.pts.as_nanos() - offset).max(0) as u64;
        let mut pts = pts.max(dts);
        if follows && pts == self.last_video_pts {
            pts += MIN_VIDEO_STEP_NS;
        }
        self.last_video_dts = dts;
        self.last_video_pts = pts;
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

    /// An audio frame of time `pts`, with `queued` frames waiting in the audio input queue: the
    /// silence to push before it (a long hole since the previous one), and what to do with it.
    pub(crate) fn audio(&mut self, pts: MediaTime, queued: u64) -> (Option<Silence>, Decision) {
        // Audio frames are shorter than video frames; allow proportionally more.
        if queued >= self.max_queued.saturating_mul(2) {
            self.audio_discont = true;
            return (None, Decision::Drop(Dropped::QueueFull));
        }
        let offset = *self.offset.get_or_insert(pts.as_nanos());
        let pts = pts.as_nanos() - offset;
        if pts < 0 {
            return (None, Decision::Drop(Dropped::BeforeStart));
        }
        let pts = pts as u64;
        let mut silence = None;
        if let Some(frame) = self.audio_frame_ns {
            // Real audio is back: video stops pushing silence, whether this frame is late or not.
            self.filling = false;
            if pts + frame / 2 < self.silence_until {
                return (None, Decision::Drop(Dropped::Late));
            }
            if let Some(end) = self.audio_end {
                if pts >= end + SILENCE_AFTER_NS {
                    silence = self.silence(end, pts, frame);
                }
            }
            let end = pts.max(self.last_audio_pts) + frame;
            self.audio_end = Some(self.audio_end.map_or(end, |e| e.max(end)));
        }
        let pts = pts.max(self.last_audio_pts);
        self.last_audio_pts = pts;
        let cut = self.audio_only && self.cut(pts);
        let stamp = Stamp {
            pts,
            dts: pts,
            delta_unit: false,
            discont: std::mem::take(&mut self.audio_discont),
            cut,
        };
        (silence, Decision::Push(stamp))
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

/// How far after track 0's cut another track's keyframe may be and still start the segment
/// (the muxers split at the first keyframe at or after the cut; timestamps are in ms).
const TRACK_ALIGN_NS: u64 = 2_000_000;
/// Keyframe times another track remembers: its keyframes may arrive before track 0's.
const TRACK_KEYFRAMES: usize = 8;

/// The input side of another video track of a multitrack publish, passed through on a rung of
/// its own: its frames on track 0's timeline (the same offset; a frame before track 0 or audio
/// set it is dropped), with its own keyframe gate and bounded queue. Track 0's keyframes decide
/// the cuts, and every muxer splits there, so a segment of this track can only start on a
/// keyframe of it at the cut (or just after): a track whose keyframes miss a cut it had frames
/// across (another GOP than track 0's) is misaligned from then on
/// ([`TrackInput::first_told_misaligned`]; the caller sheds its rung, or drops its frames).
#[derive(Debug)]
pub(crate) struct TrackInput {
    record: Bytes,
    last_dts: Option<u64>,
    last_pts: u64,
    wait_keyframe: bool,
    discont: bool,
    /// PTS of its recent keyframes, newest last.
    keyframes: std::collections::VecDeque<u64>,
    /// The last cut its keyframes were checked against.
    checked: Option<u64>,
    misaligned: bool,
    /// The misalignment was reported.
    told: bool,
}

impl TrackInput {
    /// A track whose configuration record is `record`.
    pub(crate) fn new(record: Bytes) -> TrackInput {
        TrackInput {
            record,
            last_dts: None,
            last_pts: 0,
            wait_keyframe: true,
            discont: false,
            keyframes: std::collections::VecDeque::with_capacity(TRACK_KEYFRAMES),
            checked: None,
            misaligned: false,
            told: false,
        }
    }

    /// Whether the track's keyframes missed one of track 0's cuts (its frames are still
    /// decided as before).
    pub(crate) fn is_misaligned(&self) -> bool {
        self.misaligned
    }

    /// True once, when the track has just been found misaligned: for the caller to say so.
    pub(crate) fn first_told_misaligned(&mut self) -> bool {
        self.misaligned && !std::mem::replace(&mut self.told, true)
    }

    /// A configuration of the track arrived: true when its record differs (the caller sets new
    /// caps; the track waits for its next keyframe).
    pub(crate) fn config(&mut self, record: &Bytes) -> bool {
        if *record == self.record {
            return false;
        }
        self.record = record.clone();
        self.wait_keyframe = true;
        true
    }

    /// A frame of the track, with `queued` frames waiting in its input queue, on the timeline
    /// and cuts of `input`.
    pub(crate) fn video(&mut self, v: &VideoFrame, queued: u64, input: &Input) -> Decision {
        if queued >= input.max_queued {
            self.wait_keyframe = true;
            self.discont = true;
            return Decision::Drop(Dropped::QueueFull);
        }
        if self.wait_keyframe && !v.keyframe {
            return Decision::Drop(Dropped::WaitingForKeyframe);
        }
        let Some(offset) = input.offset() else {
            return Decision::Drop(Dropped::BeforeStart);
        };
        let dts = v.dts.as_nanos() - offset;
        if dts < 0 {
            self.wait_keyframe = true;
            return Decision::Drop(Dropped::BeforeStart);
        }
        // The segment under way started before this track did, or while it waited for a
        // keyframe (after a drop): its keyframe here starts the track's segment wherever it is.
        if self.wait_keyframe {
            self.checked = input.last_cut();
        }
        let dts = match self.last_dts {
            Some(last) => (dts as u64).max(last + MIN_VIDEO_STEP_NS),
            None => dts as u64,
        };
        let mut pts = ((v.pts.as_nanos() - offset).max(0) as u64).max(dts);
        if self.last_dts.is_some() && pts == self.last_pts {
            pts += MIN_VIDEO_STEP_NS;
        }
        if v.keyframe {
            if self.keyframes.len() == TRACK_KEYFRAMES {
                self.keyframes.pop_front();
            }
            self.keyframes.push_back(pts);
        }
        let unchecked = input
            .last_cut()
            .filter(|cut| pts >= *cut && self.checked != Some(*cut) && !self.misaligned);
        if let Some(cut) = unchecked {
            self.checked = Some(cut);
            self.misaligned = !self
                .keyframes
                .iter()
                .any(|k| (cut..=cut + TRACK_ALIGN_NS).contains(k));
        }
        self.last_dts = Some(dts);
        self.last_pts = pts;
        self.wait_keyframe = false;
        Decision::Push(Stamp {
            pts,
            dts,
            delta_unit: !v.keyframe,
            discont: std::mem::take(&mut self.discont),
            cut: false,
        })
    }
}

#[cfg(test)]
mod cases;
