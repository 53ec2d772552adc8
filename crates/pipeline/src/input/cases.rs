//! One table of input sequences: frames in, each with the level of its queue, and the decision
//! each one gets. Times are in milliseconds; segments are 2 s and the video queue holds 10.

use std::time::Duration;

use bytes::Bytes;
use media::{MediaTime, VideoFrame};

use super::{Decision, Dropped, Input, Stamp};

const SEGMENT: Duration = Duration::from_secs(2);
const MAX_QUEUED: usize = 10;
/// The video configuration record the input starts with.
const RECORD: &[u8] = b"first";

/// What the input is handed.
#[derive(Debug, Clone, Copy)]
enum In {
    /// A video frame: DTS and PTS (ms), keyframe.
    Video(i64, i64, bool),
    /// An audio frame: PTS (ms).
    Audio(i64),
    /// A video configuration with this record.
    Config(&'static [u8]),
}

/// What it should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// This decision (frames).
    Decision(Decision),
    /// Whether the configuration changed (configurations).
    Changed(bool),
}

/// One sequence.
struct Case {
    /// What the case is about.
    name: &'static str,
    /// The offset (ms) the pipeline is started with: a predecessor's.
    offset: Option<i64>,
    /// Each input with its queue's level, and the answer.
    steps: Vec<(In, u64, Out)>,
    /// Media time zero (ms) after the last step.
    offset_after: Option<i64>,
}

// Flags of a pushed frame.
const KEY: u8 = 0;
const DELTA: u8 = 1;
const DISCONT: u8 = 2;
const CUT: u8 = 4;

fn key(dts: i64, pts: i64) -> In {
    In::Video(dts, pts, true)
}

fn delta(dts: i64, pts: i64) -> In {
    In::Video(dts, pts, false)
}

fn audio(pts: i64) -> In {
    In::Audio(pts)
}

fn ns(ms: u64) -> u64 {
    ms * 1_000_000
}

/// Pushed at `pts` and `dts` (ms of media time) with `flags`.
fn push(pts: u64, dts: u64, flags: u8) -> Out {
    Out::Decision(Decision::Push(Stamp {
        pts: ns(pts),
        dts: ns(dts),
        delta_unit: flags & DELTA != 0,
        discont: flags & DISCONT != 0,
        cut: flags & CUT != 0,
    }))
}

fn dropped(why: Dropped) -> Out {
    Out::Decision(Decision::Drop(why))
}

fn cases() -> Vec<Case> {
    use Dropped::*;
    let case = |name, offset, steps, offset_after| Case {
        name,
        offset,
        steps,
        offset_after,
    };
    vec![
        case(
            "the first keyframe's smaller time is media time zero",
            None,
            vec![
                (key(1000, 1080), 0, push(80, 0, KEY)),
                (delta(1040, 1040), 0, push(40, 40, DELTA)),
            ],
            Some(1000),
        ),
        case(
            "a video frame with the previous one's time is pushed a millisecond after it",
            None,
            vec![
                (key(0, 0), 0, push(0, 0, KEY)),
                (delta(40, 40), 0, push(40, 40, DELTA)),
                (delta(40, 40), 0, push(41, 41, DELTA)),
                (delta(79, 79), 0, push(79, 79, DELTA)),
                (delta(79, 79), 0, push(80, 80, DELTA)),
                (delta(80, 80), 0, push(81, 81, DELTA)),
                (delta(120, 120), 0, push(120, 120, DELTA)),
            ],
            Some(0),
        ),
        case(
            "video starts on a keyframe; the frames before it set nothing",
            None,
            vec![
                (delta(0, 0), 0, dropped(WaitingForKeyframe)),
                (key(40, 40), 0, push(0, 0, KEY)),
            ],
            Some(40),
        ),
        case(
            "audio first sets the offset both tracks share",
            None,
            vec![
                (audio(500), 0, push(0, 0, KEY)),
                (key(520, 520), 0, push(20, 20, KEY)),
            ],
            Some(500),
        ),
        case(
            "video before audio's zero is dropped, and waits for a keyframe",
            None,
            vec![
                (audio(500), 0, push(0, 0, KEY)),
                (key(480, 480), 0, dropped(BeforeStart)),
                (delta(520, 520), 0, dropped(WaitingForKeyframe)),
                (key(560, 560), 0, push(60, 60, KEY)),
            ],
            Some(500),
        ),
        case(
            "audio before video's zero is dropped",
            None,
            vec![
                (key(1000, 1000), 0, push(0, 0, KEY)),
                (audio(990), 0, dropped(BeforeStart)),
                (audio(1010), 0, push(10, 10, KEY)),
            ],
            Some(1000),
        ),
        case(
            "video DTS never goes back (it moves on by a millisecond), and PTS is never before DTS",
            None,
            vec![
                (key(100, 80), 0, push(20, 20, KEY)),
                (delta(120, 160), 0, push(80, 40, DELTA)),
                (delta(110, 100), 0, push(41, 41, DELTA)),
                (delta(160, 50), 0, push(80, 80, DELTA)),
            ],
            Some(80),
        ),
        case(
            "audio PTS never goes back",
            None,
            vec![
                (audio(0), 0, push(0, 0, KEY)),
                (audio(21), 0, push(21, 21, KEY)),
                (audio(10), 0, push(21, 21, KEY)),
            ],
            Some(0),
        ),
        case(
            "a full video queue drops, then video waits for a keyframe marked DISCONT",
            None,
            vec![
                (key(0, 0), 9, push(0, 0, KEY)),
                (delta(40, 40), 10, dropped(QueueFull)),
                (delta(80, 80), 0, dropped(WaitingForKeyframe)),
                (key(120, 120), 0, push(120, 120, DISCONT)),
                (delta(160, 160), 0, push(160, 160, DELTA)),
            ],
            Some(0),
        ),
        case(
            "audio may queue twice as many frames, and marks DISCONT after a drop",
            None,
            vec![
                (audio(0), 19, push(0, 0, KEY)),
                (audio(21), 20, dropped(QueueFull)),
                (audio(42), 0, push(42, 42, DISCONT)),
                (audio(63), 0, push(63, 63, KEY)),
            ],
            Some(0),
        ),
        case(
            "an audio drop leaves video alone",
            None,
            vec![
                (key(0, 0), 0, push(0, 0, KEY)),
                (audio(0), 20, dropped(QueueFull)),
                (delta(40, 40), 0, push(40, 40, DELTA)),
            ],
            Some(0),
        ),
        case(
            "a changed video configuration waits for the next keyframe",
            None,
            vec![
                (key(0, 0), 0, push(0, 0, KEY)),
                (In::Config(RECORD), 0, Out::Changed(false)),
                (delta(40, 40), 0, push(40, 40, DELTA)),
                (In::Config(b"second"), 0, Out::Changed(true)),
                (delta(80, 80), 0, dropped(WaitingForKeyframe)),
                (key(120, 120), 0, push(120, 120, KEY)),
                (In::Config(b"second"), 0, Out::Changed(false)),
            ],
            Some(0),
        ),
        case(
            "a keyframe at or after the last cut plus a segment, less 50 ms, cuts",
            None,
            vec![
                (key(0, 0), 0, push(0, 0, KEY)),
                (key(1000, 1000), 0, push(1000, 1000, KEY)),
                (key(2000, 2000), 0, push(2000, 2000, CUT)),
                (key(3949, 3949), 0, push(3949, 3949, KEY)),
                (key(3950, 3950), 0, push(3950, 3950, CUT)),
                (delta(6000, 6000), 0, push(6000, 6000, DELTA)),
                (key(6040, 6040), 0, push(6040, 6040, CUT)),
            ],
            Some(0),
        ),
        case(
            "cuts are decided on the presentation time",
            None,
            vec![
                (key(0, 80), 0, push(80, 0, KEY)),
                (key(1990, 2029), 0, push(2029, 1990, KEY)),
                (key(2000, 2030), 0, push(2030, 2000, CUT)),
            ],
            Some(0),
        ),
        case(
            "a keyframe dropped for a full queue does not cut; the next one does",
            None,
            vec![
                (key(0, 0), 0, push(0, 0, KEY)),
                (key(2000, 2000), 10, dropped(QueueFull)),
                (key(2040, 2040), 0, push(2040, 2040, DISCONT | CUT)),
            ],
            Some(0),
        ),
        case(
            "a replacement pipeline continues its predecessor's timeline",
            Some(5000),
            vec![
                (key(7000, 7000), 0, push(2000, 2000, KEY)),
                (audio(6990), 0, push(1990, 1990, KEY)),
                (key(4000, 4000), 0, dropped(BeforeStart)),
            ],
            Some(5000),
        ),
    ]
}

fn ms(v: i64) -> MediaTime {
    MediaTime::from_millis(v)
}

#[test]
fn every_case_decides_as_the_table_says() {
    for case in cases() {
        let mut input = Input::new(
            case.offset.map(|o| o * 1_000_000),
            Bytes::from_static(RECORD),
            SEGMENT,
            MAX_QUEUED,
        );
        for (i, (frame, queued, want)) in case.steps.iter().enumerate() {
            let got = match *frame {
                In::Video(dts, pts, keyframe) => Out::Decision(input.video(
                    &VideoFrame {
                        dts: ms(dts),
                        pts: ms(pts),
                        keyframe,
                        data: Bytes::new(),
                    },
                    *queued,
                )),
                In::Audio(pts) => Out::Decision(input.audio(ms(pts), *queued).1),
                In::Config(record) => Out::Changed(input.video_config(&Bytes::from_static(record))),
            };
            assert_eq!(
                got, *want,
                "{}: step {i} ({frame:?}, {queued} queued)",
                case.name
            );
        }
        assert_eq!(
            input.offset(),
            case.offset_after.map(|o| o * 1_000_000),
            "{}: media time zero",
            case.name
        );
    }
}

/// Silence fill, frame by frame: 20 ms audio frames, video at 100 ms steps.
#[test]
fn audio_gaps_are_filled_with_silence() {
    use super::{Silence, SILENCE_AFTER_NS};
    let frame = 20_000_000;
    let mut input = Input::new(None, Bytes::from_static(RECORD), SEGMENT, MAX_QUEUED);
    input.fill_audio_gaps(Duration::from_nanos(frame));
    let video = |input: &mut Input, t: i64| {
        let d = input.video(
            &VideoFrame {
                dts: ms(t),
                pts: ms(t),
                keyframe: true,
                data: Bytes::new(),
            },
            0,
        );
        let Decision::Push(s) = d else {
            panic!("video at {t} ms: {d:?}")
        };
        input.silence_for_video(s.dts)
    };
    // Audio and video together up to 500 ms: nothing to fill.
    for t in (0..=500).step_by(100) {
        assert_eq!(video(&mut input, t), None, "video at {t} ms");
        for a in (t..t + 100).step_by(20) {
            assert!(matches!(input.audio(ms(a), 0), (None, Decision::Push(_))));
        }
    }
    // Audio ends at 600 ms. Video within the bound fills nothing...
    let bound_ms = (SILENCE_AFTER_NS / 1_000_000) as i64;
    for t in (600..600 + bound_ms).step_by(100) {
        assert_eq!(video(&mut input, t), None, "video at {t} ms");
    }
    // ...then silence up to the video's DTS, and on every video frame after.
    let s = video(&mut input, 600 + bound_ms).expect("silence at the bound");
    assert_eq!((s.start, s.frame_ns), (ns(600), frame));
    assert_eq!(s.start + s.count * frame, ns(600 + bound_ms as u64));
    let s = video(&mut input, 700 + bound_ms).expect("silence goes on");
    assert_eq!(
        s,
        Silence {
            start: ns(600 + bound_ms as u64),
            count: 5,
            frame_ns: frame
        }
    );
    // Real audio that silence already covered is late; the next one is pushed, and video stops
    // filling.
    let filled = 700 + bound_ms;
    assert_eq!(
        input.audio(ms(filled - 40), 0),
        (None, Decision::Drop(Dropped::Late))
    );
    let (silence, d) = input.audio(ms(filled), 0);
    assert_eq!(silence, None);
    assert!(matches!(d, Decision::Push(s) if s.pts == ns(filled as u64)));
    assert_eq!(video(&mut input, filled), None);
    // A hole between two real frames longer than the bound is filled before the second.
    let after = filled + 20 + bound_ms + 100;
    let (silence, d) = input.audio(ms(after), 0);
    let silence = silence.expect("hole filled");
    assert_eq!(silence.start, ns(filled as u64 + 20));
    assert_eq!(silence.start + silence.count * frame, ns(after as u64));
    assert!(matches!(d, Decision::Push(s) if s.pts == ns(after as u64)));
}

/// A stream whose audio never comes is filled from the first video frame, and a huge jump is
/// filled a bounded amount at a time.
#[test]
fn audio_that_never_comes_is_silence() {
    let frame = 20_000_000;
    let mut input = Input::new(None, Bytes::from_static(RECORD), SEGMENT, MAX_QUEUED);
    input.fill_audio_gaps(Duration::from_nanos(frame));
    let mut total = 0;
    for t in (0..3000).step_by(100) {
        let d = input.video(
            &VideoFrame {
                dts: ms(t),
                pts: ms(t),
                keyframe: t == 0,
                data: Bytes::new(),
            },
            0,
        );
        let Decision::Push(s) = d else { panic!() };
        if let Some(silence) = input.silence_for_video(s.dts) {
            assert_eq!(silence.start, total * frame);
            total += silence.count;
        }
    }
    assert_eq!(total * frame, ns(2900));
    let d = input.video(
        &VideoFrame {
            dts: ms(3_600_000),
            pts: ms(3_600_000),
            keyframe: false,
            data: Bytes::new(),
        },
        0,
    );
    assert!(matches!(d, Decision::Push(_)));
    let s = input.silence_for_video(ns(3_600_000)).unwrap();
    assert_eq!(s.count * frame, super::SILENCE_MAX_NS);
}

/// Another track's frames interleaved with track 0's: `true` entries are track 1's. Each
/// answer is whether the frame was pushed (`Ok(false)`; `Ok(true)` once track 1 is
/// misaligned), or why not.
fn run_tracks(frames: &[(bool, i64, bool)]) -> Vec<Result<bool, Dropped>> {
    let mut input = Input::new(None, Bytes::from_static(RECORD), SEGMENT, MAX_QUEUED);
    let mut track = super::TrackInput::new(Bytes::from_static(RECORD));
    frames
        .iter()
        .map(|&(other, ms, keyframe)| {
            let v = VideoFrame {
                dts: MediaTime::from_millis(ms),
                pts: MediaTime::from_millis(ms),
                keyframe,
                data: Bytes::new(),
            };
            let decision = if other {
                track.video(&v, 0, &input)
            } else {
                input.video(&v, 0)
            };
            match decision {
                Decision::Push(_) => Ok(track.is_misaligned()),
                Decision::Drop(why) => Err(why),
            }
        })
        .collect()
}

#[test]
fn another_track_follows_track_0s_cuts_or_is_found_misaligned() {
    use Dropped::{BeforeStart, WaitingForKeyframe};
    const T0: bool = false;
    const T1: bool = true;
    const OK: Result<bool, Dropped> = Ok(false);
    const MISALIGNED: Result<bool, Dropped> = Ok(true);
    // Before track 0 set the timeline, track 1 waits; then it starts on its keyframe.
    assert_eq!(
        run_tracks(&[
            (T1, 1000, true),
            (T0, 1000, true),
            (T1, 1033, false),
            (T1, 1066, true),
            (T1, 1100, false),
        ]),
        [Err(BeforeStart), OK, Err(WaitingForKeyframe), OK, OK]
    );
    // Aligned: track 1's keyframe at each cut (2 s segments), before or after track 0's, or
    // a millisecond after it.
    assert_eq!(
        run_tracks(&[
            (T0, 0, true),
            (T1, 0, true),
            (T1, 1000, true),
            (T0, 1000, true),
            (T1, 2000, true),
            (T0, 2000, true),
            (T1, 2033, false),
            (T0, 4000, true),
            (T1, 4001, true),
            (T1, 4033, false),
        ]),
        [OK; 10]
    );
    // Track 1's keyframes every 1.5 s: the cut at 2 s finds none. So does a keyframe a
    // millisecond before the cut (the muxer would split at the next one).
    assert_eq!(
        run_tracks(&[
            (T0, 0, true),
            (T1, 0, true),
            (T1, 1500, true),
            (T0, 2000, true),
            (T1, 2033, false),
            (T1, 3000, true),
        ]),
        [OK, OK, OK, OK, MISALIGNED, MISALIGNED]
    );
    assert_eq!(
        run_tracks(&[
            (T0, 0, true),
            (T1, 1999, true),
            (T0, 2000, true),
            (T1, 2033, false)
        ]),
        [OK, OK, OK, MISALIGNED]
    );
    // A track that starts mid-segment starts its first segment on its first keyframe.
    assert_eq!(
        run_tracks(&[(T0, 0, true), (T1, 500, true), (T1, 533, false)]),
        [OK, OK, OK]
    );
}

#[test]
fn another_track_that_lost_frames_resumes_on_its_keyframe_without_a_false_misalignment() {
    let mut input = Input::new(None, Bytes::from_static(RECORD), SEGMENT, MAX_QUEUED);
    let mut track = super::TrackInput::new(Bytes::from_static(RECORD));
    let frame = |ms: i64, keyframe: bool| VideoFrame {
        dts: MediaTime::from_millis(ms),
        pts: MediaTime::from_millis(ms),
        keyframe,
        data: Bytes::new(),
    };
    assert!(matches!(input.video(&frame(0, true), 0), Decision::Push(_)));
    assert!(matches!(
        track.video(&frame(0, true), 0, &input),
        Decision::Push(_)
    ));
    // Track 1's keyframe at the cut is lost to a full queue; it waits for the next one.
    assert_eq!(
        track.video(&frame(2000, true), MAX_QUEUED as u64, &input),
        Decision::Drop(Dropped::QueueFull)
    );
    assert!(matches!(
        input.video(&frame(2000, true), 0),
        Decision::Push(_)
    ));
    assert_eq!(
        track.video(&frame(2033, false), 0, &input),
        Decision::Drop(Dropped::WaitingForKeyframe)
    );
    // Its keyframe at 4 s arrives before track 0's: the cut at 2 s, which it had no frames
    // across, is not held against it.
    assert!(matches!(
        track.video(&frame(4000, true), 0, &input),
        Decision::Push(_)
    ));
    assert!(matches!(
        input.video(&frame(4000, true), 0),
        Decision::Push(_)
    ));
    assert!(matches!(
        track.video(&frame(4033, false), 0, &input),
        Decision::Push(_)
    ));
    assert!(!track.is_misaligned());
}
