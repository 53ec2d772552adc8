//! Shared helpers for the pipeline's integration tests: a recording sink and an MP4 box walker.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use media::cmaf::{ChunkKind, CmafChunk};
use pipeline::{ChunkSink, Failure, RungInfo};

/// Everything a pipeline reported.
#[derive(Default)]
pub struct Recorded {
    pub infos: Vec<RungInfo>,
    /// (rung, chunk), in arrival order.
    pub chunks: Vec<(usize, CmafChunk)>,
    /// (rung, video frames whose arrival the chunk reported), per non-init chunk.
    pub arrivals: Vec<(usize, usize)>,
    pub errors: Vec<String>,
    /// Failures as reported, with their accelerator classification.
    pub failures: Vec<Failure>,
    pub eos: bool,
    /// Order of events per rung: "ready" before the first chunk.
    pub ready_before_chunk: Vec<(usize, bool)>,
    /// (rung, start, duration, how many chunks of that rung came before it), per gap.
    pub gaps: Vec<(usize, media::MediaTime, media::MediaTime, usize)>,
    /// (rung, cut, how many chunks of that rung and how many gaps came before it), per shed.
    pub sheds: Vec<(usize, media::MediaTime, usize, usize)>,
}

/// A sink that records, optionally sleeping in `on_chunk` to simulate a slow consumer.
#[derive(Default)]
pub struct RecordingSink {
    pub rec: Mutex<Recorded>,
    pub cond: Condvar,
    pub delay: Mutex<Duration>,
}

impl RecordingSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn with_delay(d: Duration) -> Arc<Self> {
        let s = Self::default();
        *s.delay.lock().unwrap() = d;
        Arc::new(s)
    }

    /// Waits until `pred` holds or `timeout` passes; returns whether it held.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Recorded) -> bool) -> bool {
        let guard = self.rec.lock().unwrap();
        let (g, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |r| !pred(r))
            .unwrap();
        pred(&g)
    }

    pub fn chunks_of(&self, rung: usize) -> Vec<CmafChunk> {
        self.rec
            .lock()
            .unwrap()
            .chunks
            .iter()
            .filter(|(r, _)| *r == rung)
            .map(|(_, c)| c.clone())
            .collect()
    }
}

impl ChunkSink for RecordingSink {
    fn on_rung_ready(&self, info: RungInfo) {
        let mut r = self.rec.lock().unwrap();
        let idx = info.index;
        let had_chunk = r.chunks.iter().any(|(i, _)| *i == idx);
        r.ready_before_chunk.push((idx, !had_chunk));
        r.infos.push(info);
        self.cond.notify_all();
    }

    fn on_chunk(&self, rung: usize, chunk: CmafChunk, arrivals: &[std::time::Instant]) {
        let d = *self.delay.lock().unwrap();
        if !d.is_zero() {
            std::thread::sleep(d);
        }
        let mut r = self.rec.lock().unwrap();
        if chunk.kind != ChunkKind::Init {
            assert!(arrivals
                .iter()
                .all(|a| a.elapsed() < Duration::from_secs(60)));
            r.arrivals.push((rung, arrivals.len()));
        }
        r.chunks.push((rung, chunk));
        drop(r);
        self.cond.notify_all();
    }

    fn on_shed(&self, rung: usize, at: media::MediaTime) {
        let mut r = self.rec.lock().unwrap();
        let before = r.chunks.iter().filter(|(i, _)| *i == rung).count();
        let gaps = r.gaps.len();
        r.sheds.push((rung, at, before, gaps));
        drop(r);
        self.cond.notify_all();
    }

    fn on_gap(&self, rung: usize, start: media::MediaTime, duration: media::MediaTime) {
        let mut r = self.rec.lock().unwrap();
        let before = r.chunks.iter().filter(|(i, _)| *i == rung).count();
        r.gaps.push((rung, start, duration, before));
        drop(r);
        self.cond.notify_all();
    }

    fn on_failure(&self, failure: Failure) {
        let mut r = self.rec.lock().unwrap();
        r.errors.push(failure.message.clone());
        r.failures.push(failure);
        self.cond.notify_all();
    }

    fn on_eos(&self) {
        self.rec.lock().unwrap().eos = true;
        self.cond.notify_all();
    }
}

/// One MP4 box: type and the payload after the header.
#[derive(Debug, Clone)]
pub struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub body: &'a [u8],
}

impl Mp4Box<'_> {
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

/// Top-level boxes of `data`; panics on malformed sizes (tests want to know).
pub fn boxes(mut data: &[u8]) -> Vec<Mp4Box<'_>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 8, "truncated box header");
        let size32 = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[4..8].try_into().unwrap();
        let (header, size) = match size32 {
            1 => (
                16,
                u64::from_be_bytes(data[8..16].try_into().unwrap()) as usize,
            ),
            0 => (8, data.len()),
            n => (8, n),
        };
        assert!(
            size >= header && size <= data.len(),
            "bad box size {size} for {kind:?}"
        );
        out.push(Mp4Box {
            kind,
            body: &data[header..size],
        });
        data = &data[size..];
    }
    out
}

/// Box names at the top level.
pub fn names(data: &[u8]) -> Vec<String> {
    boxes(data).iter().map(Mp4Box::name).collect()
}

/// Finds the first box of `kind` at top level.
pub fn find<'a>(data: &'a [u8], kind: &str) -> Option<Mp4Box<'a>> {
    boxes(data).into_iter().find(|b| b.kind == kind.as_bytes())
}

/// `mfhd` sequence number of a fragment (`moof` → `mfhd`).
pub fn sequence_number(chunk: &[u8]) -> u32 {
    let moof = find(chunk, "moof").expect("moof");
    let mfhd = find(moof.body, "mfhd").expect("mfhd");
    u32::from_be_bytes(mfhd.body[4..8].try_into().unwrap())
}

/// Number of `trak` boxes in an init segment's `moov`.
pub fn trak_count(init: &[u8]) -> usize {
    let moov = find(init, "moov").expect("moov");
    boxes(moov.body)
        .iter()
        .filter(|b| b.kind == *b"trak")
        .count()
}

pub fn kinds(chunks: &[CmafChunk]) -> Vec<ChunkKind> {
    chunks.iter().map(|c| c.kind).collect()
}

/// A ladder of `renditions` at x264 `ultrafast`, 2 s segments (and parts of `part`), with a
/// queue bound large enough that pushing a whole clip at once drops nothing.
pub fn ladder_of(
    renditions: Vec<pipeline::Rendition>,
    part: Option<Duration>,
) -> pipeline::LadderConfig {
    pipeline::LadderConfig {
        renditions,
        preset: "ultrafast".into(),
        segment_duration: Duration::from_secs(2),
        part_duration: part,
        max_queued_frames: 10_000,
    }
}

/// `seconds` of generated 320x180 H.264 + AAC (the default source otherwise).
pub fn small_input(seconds: u32) -> pipeline::testing::Generated {
    pipeline::testing::generate(&pipeline::testing::Source {
        width: 320,
        height: 180,
        seconds,
        ..pipeline::testing::Source::default()
    })
    .expect("test media")
}
