//! Conformance of every playlist the packager renders with the LL-HLS rules of RFC 8216bis, in
//! virtual time, over the chunk orders a real pipeline produces.
//!
//! A model of the pipeline (frames on a fixed rate, the muxer's chunk and fragment cuts, rungs
//! whose chunks arrive interleaved in any order) feeds a packager, with shedding, gaps,
//! discontinuities, resolution changes and pauses mixed in. After every event, every rung's
//! playlist is rendered plain, blocking and as delta updates (`_HLS_skip=YES` and `v2` render the
//! same: there are no date ranges to drop), and checked:
//! - every part lasts at most `PART-TARGET`, and at least 85% of it unless it is the last part of
//!   its segment; in the open segment, a listed part is the last only when no preload hint
//!   follows it (a client reads the hint as the open segment's next part);
//! - `PART-HOLD-BACK` is at least 3 × `PART-TARGET`, `HOLD-BACK` at least 3 × target duration;
//! - parts are listed only within the last 3 target durations;
//! - the preload hint names the part that comes next, or the next part of the open segment,
//!   which turns Gone (404) when that segment closes without it; never a part that later comes
//!   as another part, and never one beyond the next;
//! - media sequence, discontinuity sequence and `EXT-X-SKIP` agree between plain and delta
//!   renders, and the delta lists exactly the plain render's tail;
//! - program-date-times are in step with the durations (within a discontinuity-free run);
//! - a blocking request for the hinted part waits, and one for the newest listed part is ready.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use media::cmaf::{ChunkKind, CmafChunk};
use media::MediaTime;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use crate::strict_reader::{pdt_ms, Playlist};
use crate::*;

const RUNGS: [&str; 3] = ["720p", "480p", "source"];

fn base() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

fn variant(name: &str, height: u32) -> Variant {
    Variant {
        name: name.into(),
        width: height * 16 / 9,
        height,
        frame_rate: Some(30.0),
        video_codec: "avc1.64001f".into(),
        audio_codec: Some("mp4a.40.2".into()),
        bitrate_kbps: Some(1000),
    }
}

/// One chunk as the muxer emits it: start and duration on the stream's timeline, in ns.
#[derive(Debug, Clone, Copy)]
struct ModelChunk {
    start: i64,
    duration: i64,
    segment_start: bool,
}

/// The muxer's cuts for frames every `frame` ns: fragments of at least `segment` ns that end at
/// the first keyframe at or after their nominal end (the keyframe comes `late[i]` frames after
/// that for fragment `i`), chunks cut on the nominal `part` grid from each fragment's start (a
/// chunk's duration runs to the next chunk's first frame, so the last chunk of a fragment can
/// be short).
fn mux_cuts(frame: i64, part: i64, segment: i64, late: &[u8], fragments: usize) -> Vec<ModelChunk> {
    let mut out = Vec::new();
    let mut start = 0i64;
    for i in 0..fragments {
        let frames_min = (segment + frame - 1) / frame;
        let frames = frames_min + i64::from(late.get(i % late.len().max(1)).copied().unwrap_or(0));
        let end = start + frames * frame;
        // Frame k of the fragment is at start + k*frame; chunk j holds the frames whose offset
        // lies in [j*part, (j+1)*part).
        let mut k = 0i64;
        let mut first = true;
        while k < frames {
            let j = (k * frame) / part;
            let mut n = 0;
            while k + n < frames && ((k + n) * frame) / part == j {
                n += 1;
            }
            let chunk_start = start + k * frame;
            let chunk_end = (start + (k + n) * frame).min(end);
            out.push(ModelChunk {
                start: chunk_start,
                duration: chunk_end - chunk_start,
                segment_start: first,
            });
            first = false;
            k += n;
        }
        start = end;
    }
    out
}

/// Whether the muxer's chunk grid gives parts that keep the 85% rule inside a segment: the
/// chunks of a fragment, but its last, last at least 85% of the longest. A part duration that is
/// not near a whole number of frames breaks it (200 ms at 24 fps: chunks of 5 and 4 frames, 80%),
/// and nothing downstream of the muxer can mend a part once it is listed; those settings are
/// left out here (README, Known issues).
fn grid_fits(frame: i64, part_ms: u64, seg_s: u64) -> bool {
    let part = i64::try_from(part_ms).unwrap_or(i64::MAX) * 1_000_000;
    let segment = seg_s * 1_000_000_000;
    let chunks = mux_cuts(
        frame,
        part,
        i64::try_from(segment).unwrap_or(i64::MAX),
        &[0],
        1,
    );
    let inner = &chunks[..chunks.len().saturating_sub(1)];
    let longest = chunks.iter().map(|c| c.duration).max().unwrap_or(0);
    inner.iter().all(|c| c.duration * 100 >= longest * 85)
}

/// Something that happens to the stream between chunks.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// The next chunk of a rung (by index into RUNGS).
    Chunk(usize),
    /// Shed the rung (list gaps instead of its segments) until `Unshed`.
    Shed(usize),
    Unshed(usize),
    /// The publisher's timeline jumps: every rung's next segment carries a discontinuity.
    Discontinuity,
    /// The source changes resolution: every rung gets a new init segment.
    ResolutionChange,
}

/// Checks one rendered playlist; returns it parsed.
fn check_playlist(text: &str, ended: bool) -> Result<Playlist, TestCaseError> {
    check_playlist_with(text, ended, 0.0)
}

/// [`check_playlist`], letting a segment start up to `hole` seconds after its predecessor ends
/// (the rung dropped chunks that ran on past a segment closed at a short part).
fn check_playlist_with(text: &str, ended: bool, hole: f64) -> Result<Playlist, TestCaseError> {
    let pl = Playlist::parse(text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let fail = |what: String| Err(TestCaseError::fail(format!("{what}\n{text}")));
    let Some(part_target) = pl.part_target else {
        return fail("no PART-TARGET".into());
    };
    let td = pl.target_duration as f64;
    if pl.part_hold_back < 3.0 * part_target - 1e-9 {
        return fail(format!(
            "PART-HOLD-BACK {} < 3 × {part_target}",
            pl.part_hold_back
        ));
    }
    if pl.hold_back < 3.0 * td - 1e-9 {
        return fail(format!("HOLD-BACK {} < 3 × {td}", pl.hold_back));
    }
    let groups = pl.segment_groups();
    for (s, g) in groups.iter().enumerate() {
        let open = s == groups.len() - 1 && g.extinf.is_none();
        for (i, part) in g.parts.iter().enumerate() {
            if part.duration > part_target + 1e-9 {
                return fail(format!(
                    "{} lasts {} > PART-TARGET",
                    part.uri, part.duration
                ));
            }
            let last = i == g.parts.len() - 1 && !(open && pl.hint.is_some());
            if !last && part.duration < 0.85 * part_target - 1e-9 {
                return fail(format!(
                    "{} lasts {} < 85% of PART-TARGET {part_target} and is not its segment's last",
                    part.uri, part.duration
                ));
            }
        }
        if let Some(extinf) = g.extinf {
            if extinf.round() as u64 > pl.target_duration {
                return fail(format!("EXTINF {extinf} above the target duration"));
            }
            if !g.parts.is_empty() {
                let sum: f64 = g.parts.iter().map(|p| p.duration).sum();
                if (sum - extinf).abs() > 0.002 {
                    return fail(format!("segment {} lasts {extinf}, its parts {sum}", g.msn));
                }
            }
        }
    }
    // Parts only in the last three segments, counting what follows the last EXTINF (the open
    // segment's parts, or the hint alone) as one, as a client does.
    let trailing_hint_only = pl.hint.is_some() && groups.last().is_none_or(|g| g.extinf.is_some());
    let counted = groups.len() + usize::from(trailing_hint_only);
    for (i, g) in groups.iter().enumerate() {
        if !g.parts.is_empty() && i + 3 < counted {
            return fail(format!(
                "parts of segment {} listed, more than 3 segments back",
                g.msn
            ));
        }
    }
    // Parts only within the last three target durations (measured from each part's start).
    let mut from_end = 0.0;
    for g in groups.iter().rev() {
        let seg_len = g
            .extinf
            .unwrap_or_else(|| g.parts.iter().map(|p| p.duration).sum());
        let seg_start_from_end = from_end + seg_len;
        if let Some(first) = g.parts.first() {
            if seg_start_from_end > 3.0 * td + 1e-4 {
                return fail(format!(
                    "{} starts {seg_start_from_end} s before the end (> 3 target durations)",
                    first.uri
                ));
            }
        }
        from_end = seg_start_from_end;
    }
    // Program-date-times in step with durations.
    for w in groups.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.discontinuity || a.gap {
            continue;
        }
        let (Some(pa), Some(pb), Some(d)) = (a.pdt_ms, b.pdt_ms, a.extinf) else {
            continue;
        };
        let step = (pb - pa) as f64 / 1000.0;
        if step < d - 0.0021 || step > d + hole + 0.0021 {
            return fail(format!(
                "PROGRAM-DATE-TIME of segment {} is {step} s after the previous one, which lasts {d}",
                b.msn
            ));
        }
    }
    if ended != pl.endlist {
        return fail(format!(
            "ENDLIST {} after the stream ended: {ended}",
            pl.endlist
        ));
    }
    if ended && pl.hint.is_some() {
        return fail("a preload hint after the stream ended".into());
    }
    Ok(pl)
}

fn plain_part_target(text: &str) -> f64 {
    Playlist::parse(text)
        .ok()
        .and_then(|p| p.part_target)
        .unwrap_or(0.0)
}

/// Plain and delta renders of one rung agree.
fn check_delta(plain: &Playlist, delta: &Playlist, text: &str) -> Result<(), TestCaseError> {
    let ok = delta.media_sequence == plain.media_sequence
        && delta.discontinuity_sequence == plain.discontinuity_sequence
        && delta.skipped as usize + delta.segments().len() == plain.segments().len()
        && plain.segments()[delta.skipped as usize..] == delta.segments()[..]
        && plain.parts() == delta.parts()
        && plain.hint == delta.hint;
    prop_assert!(
        ok,
        "delta update disagrees with the full playlist\n{}",
        text
    );
    Ok(())
}

struct Run {
    packager: Packager,
    chunks: Vec<ModelChunk>,
    /// Next chunk index per rung.
    next: [usize; 3],
    /// Per rung: (segment number, part index) of each chunk pushed, in order.
    produced: [Vec<(u64, u32)>; 3],
    /// Per rung: the hints rendered, each with how many parts had been produced then.
    hints: [Vec<(usize, (u64, u32))>; 3],
    shed: [bool; 3],
    /// Per rung, what happens at its next segment start (the pipeline changes rungs at cuts).
    pending: [Pending; 3],
    inits: [u8; 3],
}

#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    shed: Option<bool>,
    discontinuity: bool,
    resolution: bool,
}

impl Run {
    fn new(config: PackagerConfig, chunks: Vec<ModelChunk>) -> Run {
        let variants = vec![
            variant(RUNGS[0], 720),
            variant(RUNGS[1], 480),
            variant(RUNGS[2], 1080),
        ];
        let mut packager = Packager::in_memory(config, variants).unwrap();
        for r in RUNGS {
            packager.push(r, init_chunk(0), base()).unwrap();
        }
        Run {
            packager,
            chunks,
            next: [0; 3],
            produced: Default::default(),
            hints: Default::default(),
            shed: [false; 3],
            pending: Default::default(),
            inits: [0; 3],
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Chunk(r) => self.chunk(r),
            Event::Shed(r) => self.pending[r].shed = Some(true),
            Event::Unshed(r) => self.pending[r].shed = Some(false),
            Event::Discontinuity => {
                for p in &mut self.pending {
                    p.discontinuity = true;
                }
            }
            Event::ResolutionChange => {
                for p in &mut self.pending {
                    p.resolution = true;
                }
            }
        }
    }

    fn chunk(&mut self, r: usize) {
        let Some(c) = self.chunks.get(self.next[r]).copied() else {
            return;
        };
        self.next[r] += 1;
        let pdt = base() + Duration::from_nanos(u64::try_from(c.start).unwrap());
        let rung = RUNGS[r];
        let start = MediaTime::from_nanos(c.start);
        if c.segment_start {
            let pending = std::mem::take(&mut self.pending[r]);
            match pending.shed {
                Some(true) if !self.shed[r] => {
                    self.shed[r] = true;
                    self.packager.set_shed(rung, true).unwrap();
                    self.packager.end_segment(rung, start).unwrap();
                }
                Some(false) if self.shed[r] => {
                    self.shed[r] = false;
                    self.packager.set_shed(rung, false).unwrap();
                }
                _ => {}
            }
            if pending.resolution {
                self.inits[r] += 1;
                let mut v = variant(rung, 360 + 120 * u32::from(self.inits[r]) + r as u32);
                v.frame_rate = Some(25.0);
                self.packager.update_variant(v).unwrap();
                self.packager
                    .push(rung, init_chunk(self.inits[r]), pdt)
                    .unwrap();
            }
            if pending.discontinuity {
                self.packager.discontinuity(rung).unwrap();
            }
            if self.shed[r] {
                // A shed rung lists a gap for each segment the others start.
                let len = MediaTime::from_nanos(self.segment_len(self.next[r] - 1));
                self.packager.gap(rung, start, len, pdt).unwrap();
                return;
            }
        } else if self.shed[r] {
            return;
        }
        let kind = if c.segment_start {
            ChunkKind::SegmentStart
        } else {
            ChunkKind::Continuation
        };
        let chunk = CmafChunk {
            kind,
            data: Bytes::from(vec![r as u8; 100]),
            pts: start,
            duration: MediaTime::from_nanos(c.duration),
            independent: c.segment_start,
        };
        let dropped = self.packager.stats(rung).unwrap().run_on_parts_dropped;
        self.packager.push(rung, chunk, pdt).unwrap();
        // A chunk that ran on past a segment closed at a short part is dropped: nothing new.
        if self.packager.stats(rung).unwrap().run_on_parts_dropped > dropped {
            return;
        }
        let c = self.packager.cursor(rung).unwrap().unwrap();
        self.produced[r].push((c.msn, c.part));
    }

    /// The duration of the segment that chunk `i` starts.
    fn segment_len(&self, i: usize) -> i64 {
        let start = self.chunks[i].start;
        let end = self.chunks[i + 1..]
            .iter()
            .find(|c| c.segment_start)
            .map_or_else(
                || self.chunks.last().map_or(start, |c| c.start + c.duration),
                |c| c.start,
            );
        end - start
    }

    /// Renders and checks every rung's playlist in every form.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let ended = self.packager.ended_at().is_some();
        for (r, rung) in RUNGS.iter().enumerate() {
            let plain_text = self.packager.media_playlist(rung, false).unwrap();
            // A rung that dropped chunks running on past an early close may have holes of less
            // than a part before the next segment (never an overlap).
            let stats = self.packager.stats(rung).unwrap();
            let hole = if stats.run_on_parts_dropped > 0 {
                plain_part_target(&plain_text)
            } else {
                0.0
            };
            let plain = check_playlist_with(&plain_text, ended, hole)?;
            let delta_text = self.packager.media_playlist(rung, true).unwrap();
            let delta = check_playlist_with(&delta_text, ended, hole)?;
            check_delta(&plain, &delta, &delta_text)?;
            if let Some(h) = plain.hint {
                self.hints[r].push((self.produced[r].len(), h));
                // A blocking request for the hinted part waits for it.
                prop_assert_eq!(
                    self.packager
                        .playlist_request(rung, h.0, Some(h.1))
                        .unwrap(),
                    Blocking::Wait,
                    "{}",
                    plain_text
                );
            }
            if let Some(&(msn, part)) = plain.parts().last() {
                // One for the newest listed part is answered at once, with this playlist.
                prop_assert_eq!(
                    self.packager
                        .playlist_request(rung, msn, Some(part))
                        .unwrap(),
                    Blocking::Ready
                );
            }
        }
        Ok(())
    }

    /// Every hint named the part that came next, or the open segment's next part, which is now
    /// gone (its segment closed without it); never a part that came later.
    fn check_hints(&self) -> Result<(), TestCaseError> {
        for (r, rung) in RUNGS.iter().enumerate() {
            let produced = &self.produced[r];
            for &(at, (msn, part)) in &self.hints[r] {
                let Some(&next) = produced.get(at) else {
                    continue;
                };
                if next == (msn, part) {
                    continue;
                }
                prop_assert!(
                    !produced[at..].contains(&(msn, part)),
                    "{}: hint part-{}.{} came after {:?}",
                    rung,
                    msn,
                    part,
                    next
                );
                let status = self
                    .packager
                    .resource_status(&Resource::Part((*rung).into(), msn, part))
                    .unwrap();
                prop_assert_eq!(
                    status,
                    ResourceStatus::Gone,
                    "{}: hint part-{}.{} is not what came next ({:?})",
                    rung,
                    msn,
                    part,
                    next
                );
            }
        }
        Ok(())
    }
}

fn init_chunk(version: u8) -> CmafChunk {
    CmafChunk {
        kind: ChunkKind::Init,
        data: Bytes::from(vec![0xf0 | version; 64]),
        pts: MediaTime::ZERO,
        duration: MediaTime::ZERO,
        independent: true,
    }
}

/// Frame durations (ns) of common rates: 60, 50, 30, 29.97, 25, 24 fps.
const FRAMES: [i64; 6] = [
    16_666_667, 20_000_000, 33_333_333, 33_366_700, 40_000_000, 41_666_667,
];

/// A stream: frame duration, part and segment durations, late keyframes, and the events.
fn arb_run() -> impl Strategy<Value = (i64, u64, u64, Vec<u8>, Vec<Event>)> {
    (
        prop::sample::select(FRAMES.to_vec()),
        prop::sample::select(vec![200u64, 250, 334, 500, 1000]),
        prop::sample::select(vec![1u64, 2, 4, 6]),
        prop::collection::vec(prop::sample::select(vec![0u8, 0, 0, 1, 2]), 1..6),
    )
        .prop_flat_map(|(frame, part_ms, seg_s, late)| {
            let event = prop_oneof![
                40 => (0usize..3).prop_map(Event::Chunk),
                1 => (0usize..2).prop_map(Event::Shed),
                1 => (0usize..2).prop_map(Event::Unshed),
                1 => Just(Event::Discontinuity),
                1 => Just(Event::ResolutionChange),
            ];
            (
                Just(frame),
                Just(part_ms),
                Just(seg_s),
                Just(late),
                prop::collection::vec(event, 50..400),
            )
        })
        .prop_filter(
            "a part at most half a segment",
            |(_, part_ms, seg_s, _, _)| part_ms * 2 <= seg_s * 1000,
        )
        .prop_filter(
            "a chunk grid that fits the frame rate",
            |(frame, part_ms, seg_s, _, _)| grid_fits(*frame, *part_ms, *seg_s),
        )
}

fn config(part_ms: u64, seg_s: u64) -> PackagerConfig {
    PackagerConfig {
        low_latency: true,
        window: 6,
        segment_duration: Duration::from_secs(seg_s),
        part_target: Duration::from_millis(part_ms),
        ..PackagerConfig::default()
    }
}

/// The suite runs the same streams every time: a new seed explores new cases, and a suite whose
/// verdict depends on luck blocks every landing. Explore with `PROPTEST_RNG_SEED=N` (any u64)
/// and `PROPTEST_CASES=M`; a failure prints its minimal stream, and proptest keeps its seed in
/// `proptest-regressions/conformance.txt`, which the suite then replays first.
fn suite_config() -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    ProptestConfig {
        cases: env("PROPTEST_CASES").map_or(96, |c| u32::try_from(c).unwrap_or(u32::MAX)),
        rng_seed: RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(0x2026_1207)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(suite_config())]

    /// Every playlist of every rung, after every event of a live stream, in every form.
    #[test]
    fn every_rendered_playlist_conforms((frame, part_ms, seg_s, late, events) in arb_run()) {
        let chunks = mux_cuts(frame, i64::try_from(part_ms).unwrap() * 1_000_000, i64::try_from(seg_s).unwrap() * 1_000_000_000, &late, 40);
        let mut run = Run::new(config(part_ms, seg_s), chunks);
        run.check()?;
        for e in events {
            run.apply(e);
            run.check()?;
        }
        run.check_hints()?;
        // A pause (the publisher left, may come back) and the end keep every rule too.
        run.packager.pause();
        run.check()?;
        run.packager.end(base() + Duration::from_secs(3600));
        run.check()?;
    }
}

/// A packager with one rung that has its init segment.
fn one_rung(config: PackagerConfig, name: &str) -> Packager {
    let mut p = Packager::in_memory(config, vec![variant(name, 720)]).unwrap();
    p.push(name, init_chunk(0), base()).unwrap();
    p
}

/// A media chunk at `start_ms` lasting `dur_ms`; segment starts are independent.
fn chunk(kind: ChunkKind, start_ms: i64, dur_ms: i64) -> CmafChunk {
    CmafChunk {
        kind,
        data: Bytes::from_static(b"x"),
        pts: MediaTime::from_millis(start_ms),
        duration: MediaTime::from_millis(dur_ms),
        independent: kind == ChunkKind::SegmentStart,
    }
}

/// The case: a 720p rung whose segment ends on a short part. The segment is listed
/// complete with that part, so no playlist shows the short part followed by a hint.
#[test]
fn a_segment_that_ends_on_a_short_part_is_closed_with_it() {
    let mut p = one_rung(config(334, 2), "720p");
    p.push("720p", chunk(ChunkKind::SegmentStart, 0, 367), base())
        .unwrap();
    for i in 1..5 {
        p.push("720p", chunk(ChunkKind::Continuation, 367 * i, 367), base())
            .unwrap();
    }
    let text = p.media_playlist("720p", false).unwrap();
    assert!(
        text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-0.5.m4s\"\n"),
        "{text}"
    );
    p.push("720p", chunk(ChunkKind::Continuation, 1835, 233), base())
        .unwrap();
    let text = p.media_playlist("720p", false).unwrap();
    assert!(
        text.ends_with(
            "#EXT-X-PART:DURATION=0.23300,URI=\"part-0.5.m4s\"\n#EXTINF:2.06800,\nseg-0.m4s\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-1.0.m4s\"\n"
        ),
        "{text}"
    );
    check_playlist(&text, false).unwrap();
    // The next segment follows as usual.
    p.push("720p", chunk(ChunkKind::SegmentStart, 2068, 367), base())
        .unwrap();
    assert!(p
        .media_playlist("720p", false)
        .unwrap()
        .contains("URI=\"part-1.0.m4s\",INDEPENDENT=YES\n"));
    assert_eq!(p.media("720p").unwrap().segments.len(), 1);
}

/// A stream taken over after its owner died: the segment the owner had open is listed as a
/// gap, in the owner's discontinuity, before the new publish's first segment, which opens the
/// next one. Every render conforms, and a blocking request for a part of the lost segment (a
/// player that had some of it) is answered with the new publish's first part.
#[test]
fn segments_lost_with_a_dead_owner_are_listed_as_gaps() {
    let lost_start = base() + Duration::from_secs(100);
    let taken = PackagerConfig {
        first_msn: 42,
        first_discontinuity_sequence: 3,
        lost_of: vec![("720p".into(), 41, lost_start)],
        ..config(500, 2)
    };
    let mut p = one_rung(taken.clone(), "720p");
    let text = p.media_playlist("720p", false).unwrap();
    check_playlist(&text, false).unwrap();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:41\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"), "{text}");
    assert!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:01:40.000Z\n#EXT-X-GAP\n#EXTINF:2.00000,\nseg-41.m4s\n"),
        "{text}"
    );
    assert_eq!(
        p.playlist_request("720p", 41, Some(3)).unwrap(),
        Blocking::Wait
    );
    assert_eq!(
        p.resource_status(&Resource::Part("720p".into(), 41, 3))
            .unwrap(),
        ResourceStatus::Gone
    );
    assert_eq!(
        p.incomplete(),
        vec![(
            "720p".to_owned(),
            42,
            lost_start + Duration::from_secs(2),
            3
        )]
    );
    // The new publish's media, seconds later on the clock.
    let resumed = base() + Duration::from_secs(109);
    for (i, start) in [0, 500, 1000, 1500, 2000].into_iter().enumerate() {
        let kind = if start % 2000 == 0 {
            ChunkKind::SegmentStart
        } else {
            ChunkKind::Continuation
        };
        let pdt = resumed + Duration::from_millis(start as u64);
        p.push("720p", chunk(kind, start, 500), pdt).unwrap();
        let text = p.media_playlist("720p", false).unwrap();
        check_playlist(&text, false).unwrap();
        check_playlist(&p.media_playlist("720p", true).unwrap(), false).unwrap();
        assert_eq!(
            p.playlist_request("720p", 41, Some(3)).unwrap(),
            Blocking::Ready
        );
        assert!(
            text.contains("seg-41.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:01:49.000Z\n"),
            "part {i}: {text}"
        );
    }
    assert_eq!(
        p.incomplete(),
        vec![("720p".to_owned(), 43, resumed + Duration::from_secs(2), 3)]
    );
    assert_eq!(p.next_discontinuity_sequence(), 4);
    // A discontinuity pending for the next segment: a server taking over would number its own
    // first segment two above the open one's, which one EXT-X-DISCONTINUITY cannot say (it
    // lists no gap then).
    p.discontinuity("720p").unwrap();
    assert_eq!(p.incomplete()[0].3, 3);
    assert_eq!(p.next_discontinuity_sequence(), 5);
    // A rung not named, or a claim of more lost segments than a death loses, lists no gap.
    for lost_of in [
        vec![("480p".to_owned(), 41, lost_start)],
        vec![("720p".to_owned(), 42 - MAX_LOST - 1, lost_start)],
    ] {
        let p = one_rung(
            PackagerConfig {
                lost_of,
                ..taken.clone()
            },
            "720p",
        );
        let text = p.media_playlist("720p", false).unwrap();
        assert!(!text.contains("#EXT-X-GAP"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:42\n"), "{text}");
    }
}

/// A short part that turns out not to be the last (the muxer ran the fragment on past its end):
/// the segment stays as listed, and the chunks after it are dropped until the next keyframe, so
/// no segment starts without one and the rung's sequence numbers stay in step with the others'.
#[test]
fn a_continuation_after_an_early_close_is_dropped() {
    let mut p = one_rung(config(500, 2), "a");
    p.push("a", chunk(ChunkKind::SegmentStart, 0, 500), base())
        .unwrap();
    // A short part before the segment's configured end is a cut on the frame grid: it stays.
    p.push("a", chunk(ChunkKind::Continuation, 500, 400), base())
        .unwrap();
    p.push("a", chunk(ChunkKind::Continuation, 900, 500), base())
        .unwrap();
    assert!(p.media("a").unwrap().segments.is_empty());
    // One at the configured end closes the segment; the fragment then runs on one more chunk.
    p.push("a", chunk(ChunkKind::Continuation, 1400, 400), base())
        .unwrap();
    assert_eq!(p.media("a").unwrap().segments.len(), 1);
    p.push("a", chunk(ChunkKind::Continuation, 1800, 100), base())
        .unwrap();
    let media = p.media("a").unwrap();
    assert_eq!(media.segments.len(), 1);
    assert_eq!(media.segments[0].duration, MediaTime::from_millis(1800));
    assert!(media.partial.is_none());
    assert_eq!(p.stats("a").unwrap().run_on_parts_dropped, 1);
    let text = p.media_playlist("a", false).unwrap();
    assert!(
        text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-1.0.m4s\"\n"),
        "{text}"
    );
    p.push("a", chunk(ChunkKind::SegmentStart, 1900, 500), base())
        .unwrap();
    let open = p.media("a").unwrap().partial.as_ref().unwrap();
    assert_eq!((open.msn, open.parts[0].independent), (1, true));
    // Before any segment started, a continuation is still refused.
    let mut q = one_rung(config(500, 2), "a");
    assert!(matches!(
        q.push("a", chunk(ChunkKind::Continuation, 0, 500), base()),
        Err(Error::NoOpenSegment(_))
    ));
}

#[test]
fn the_reader_groups_parts_as_a_client_does() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,HOLD-BACK=6\n\
        #EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n#EXT-X-PART:DURATION=0.5,URI=\"part-7.0.m4s\"\n\
        #EXT-X-PART:DURATION=0.2,URI=\"part-7.1.m4s\"\n#EXTINF:0.7,\nseg-7.m4s\n\
        #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.700Z\n#EXT-X-PART:DURATION=0.5,URI=\"part-8.0.m4s\"\n\
        #EXT-X-PART:DURATION=0.2,URI=\"part-8.1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-8.2.m4s\"\n";
    let pl = Playlist::parse(text).unwrap();
    let groups = pl.segment_groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].msn, groups[0].extinf, groups[0].parts.len()),
        (7, Some(0.7), 2)
    );
    assert_eq!(
        (groups[1].msn, groups[1].extinf, groups[1].pdt_ms),
        (8, None, Some(pdt_ms("2024-05-01T12:00:00.700Z").unwrap()))
    );
    // The open segment's 0.2 s part is followed by a hint: not its last, and too short.
    let err = check_playlist(text, false).unwrap_err().to_string();
    assert!(err.contains("part-8.1.m4s lasts 0.2 < 85%"), "{err}");
    // Without the hint it is the last part so far, and the playlist passes.
    let without = text.replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-8.2.m4s\"\n", "");
    check_playlist(&without, false).unwrap();
}
