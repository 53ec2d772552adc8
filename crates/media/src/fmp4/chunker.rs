//! Frames in, CMAF chunks out: what `cmafmux` does for a passed-through rung, without
//! GStreamer. A segment starts at the first keyframe at least a segment duration after the
//! previous segment's start; within it, a chunk (an LL-HLS part) ends at the first video frame
//! at or past each multiple of the part duration from the segment's start. A chunk carries the
//! audio frames that start before its end. Without video, audio frames are cut the same way,
//! each one a sync sample. A hole in the video (the input dropped frames up to a keyframe) does
//! not stretch a part: once the audio is a second (or a part, if longer) past a part's end with
//! no video there, or the video comes back a whole part past it, that part ends at its boundary
//! (its last frame lasting until then), and the parts go on with the audio alone until the video
//! comes back, as GStreamer's muxer does with the gap events the pipeline fills such a hole
//! with.

use std::time::Duration;

use bytes::Bytes;

use super::write::{fragment, init_segment, Error, Run, Sample, Track, VIDEO_TIMESCALE};
use crate::cmaf::{ChunkKind, CmafChunk};
use crate::codec::{AudioCodec, AudioConfig, VideoConfig};
use crate::frame::{AudioFrame, MediaFrame, VideoFrame};
use crate::time::MediaTime;

/// How far a publisher's audio may run ahead of its video before a part is closed without the
/// video (a hole): interleaving in RTMP and MPEG-TS stays well within it.
const AUDIO_LEAD: MediaTime = MediaTime::from_millis(1000);

/// Cuts a stream's frames into CMAF chunks ([`CmafChunk`]) for the packager.
#[derive(Debug)]
pub struct Chunker {
    segment: MediaTime,
    part: MediaTime,
    /// The stream has a video track, an audio track: the init segment waits for both.
    tracks: (bool, bool),
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    init_sent: bool,
    /// Where the current segment and chunk started (decode time of their first sample).
    segment_start: Option<MediaTime>,
    chunk_start: MediaTime,
    /// The current chunk is the first of its segment.
    opens_segment: bool,
    video: Vec<VideoFrame>,
    audio: Vec<AudioFrame>,
    sequence: u32,
    /// The duration of the last video (or audio) sample of a chunk that ends the stream.
    last_duration: MediaTime,
}

fn ticks(t: MediaTime, timescale: u32) -> i64 {
    i64::try_from(i128::from(t.as_nanos()) * i128::from(timescale) / 1_000_000_000)
        .unwrap_or(i64::MAX)
}

fn media_time(d: Duration) -> MediaTime {
    MediaTime::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Chunker {
    /// A chunker for a stream with video and/or audio (`tracks`), cutting segments of at least
    /// `segment` and parts of `part`.
    pub fn new(tracks: (bool, bool), segment: Duration, part: Duration) -> Chunker {
        Chunker {
            segment: media_time(segment),
            part: media_time(part.max(Duration::from_millis(1))),
            tracks,
            video_config: None,
            audio_config: None,
            init_sent: false,
            segment_start: None,
            chunk_start: MediaTime::ZERO,
            opens_segment: true,
            video: Vec::new(),
            audio: Vec::new(),
            sequence: 0,
            last_duration: MediaTime::from_millis(33),
        }
    }

    /// Takes one frame; returns the chunks it completes (an init segment first, once every
    /// track's configuration is known, and again when one changes).
    pub fn push(&mut self, frame: MediaFrame) -> Result<Vec<CmafChunk>, Error> {
        let mut out = Vec::new();
        match frame {
            MediaFrame::VideoConfig(c) if self.video_config.as_ref() != Some(&c) => {
                self.restart(&mut out)?;
                self.video_config = Some(c);
            }
            MediaFrame::AudioConfig(c) if self.audio_config.as_ref() != Some(&c) => {
                self.restart(&mut out)?;
                self.audio_config = Some(c);
            }
            MediaFrame::Video(v) if self.tracks.0 => self.push_video(v, &mut out)?,
            MediaFrame::Audio(a) if self.tracks.1 => {
                if self.tracks.0 {
                    // Before the first keyframe there is no segment to put it in.
                    if self.segment_start.is_some() {
                        // Audio may run ahead of the video by up to AUDIO_LEAD: only audio
                        // further ahead than that says the video has a hole.
                        let slack = self.part.max(AUDIO_LEAD);
                        self.close_empty_parts(a.pts, slack, &mut out)?;
                        self.audio.push(a);
                    }
                } else {
                    self.push_audio_only(a, &mut out)?;
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Ends the stream: the last chunk, with every pending frame.
    pub fn flush(&mut self) -> Result<Vec<CmafChunk>, Error> {
        let mut out = Vec::new();
        let end = self.pending_end();
        if let Some(end) = end {
            self.emit(end, true, &mut out)?;
        }
        Ok(out)
    }

    /// A configuration changed: what is pending goes out, and the next chunk starts a segment
    /// after a new init segment.
    fn restart(&mut self, out: &mut Vec<CmafChunk>) -> Result<(), Error> {
        out.extend(self.flush()?);
        self.init_sent = false;
        self.segment_start = None;
        self.opens_segment = true;
        Ok(())
    }

    /// The init segment, once every track has its configuration.
    fn init(&mut self, out: &mut Vec<CmafChunk>) -> Result<bool, Error> {
        if self.init_sent {
            return Ok(true);
        }
        let mut tracks = Vec::new();
        match (self.tracks.0, &self.video_config) {
            (true, Some(v)) => tracks.push(Track::Video(v)),
            (true, None) => return Ok(false),
            _ => {}
        }
        match (self.tracks.1, &self.audio_config) {
            (true, Some(a)) => tracks.push(Track::Audio(a)),
            (true, None) => return Ok(false),
            _ => {}
        }
        out.push(CmafChunk {
            kind: ChunkKind::Init,
            data: init_segment(&tracks)?,
            pts: MediaTime::ZERO,
            duration: MediaTime::ZERO,
            independent: true,
        });
        self.init_sent = true;
        Ok(true)
    }

    fn push_video(&mut self, v: VideoFrame, out: &mut Vec<CmafChunk>) -> Result<(), Error> {
        if let Some(last) = self.video.last().filter(|last| v.dts > last.dts) {
            self.last_duration = v.dts - last.dts;
        }
        if self.place(v.dts, v.keyframe, out)? {
            self.video.push(v);
        }
        Ok(())
    }

    fn push_audio_only(&mut self, a: AudioFrame, out: &mut Vec<CmafChunk>) -> Result<(), Error> {
        if let Some(last) = self.audio.last().filter(|last| a.pts > last.pts) {
            self.last_duration = a.pts - last.pts;
        }
        if self.place(a.pts, true, out)? {
            self.audio.push(a);
        }
        Ok(())
    }

    /// Where a sample decoded at `at` goes: the chunk before it is written when it crosses a
    /// part boundary, or starts a segment (a `sync` sample a segment duration or more after the
    /// current one's start). `false`: it is dropped (the configurations are not all known yet,
    /// or no sync sample has started the first segment).
    fn place(
        &mut self,
        at: MediaTime,
        sync: bool,
        out: &mut Vec<CmafChunk>,
    ) -> Result<bool, Error> {
        let Some(segment_start) = self.segment_start else {
            if !sync || !self.init(out)? {
                return Ok(false);
            }
            self.segment_start = Some(at);
            self.chunk_start = at;
            self.opens_segment = true;
            return Ok(true);
        };
        self.close_empty_parts(at, self.part, out)?;
        let new_segment = sync && at - segment_start >= self.segment;
        if new_segment || at >= self.next_boundary(segment_start) {
            self.emit(at, false, out)?;
            self.chunk_start = at;
            if new_segment {
                self.segment_start = Some(at);
                self.opens_segment = true;
            }
        }
        Ok(true)
    }

    /// A hole in the video: while `slack` (a part, or more for audio that may lead the video)
    /// lies between the current part's end and `at` (a sample's time) with no video in it, the
    /// current part ends at its boundary, and the next one starts there.
    fn close_empty_parts(
        &mut self,
        at: MediaTime,
        slack: MediaTime,
        out: &mut Vec<CmafChunk>,
    ) -> Result<(), Error> {
        let Some(segment_start) = self.segment_start else {
            return Ok(());
        };
        loop {
            let boundary = self.next_boundary(segment_start);
            if boundary + slack > at {
                return Ok(());
            }
            self.emit(boundary, false, out)?;
            self.chunk_start = boundary;
        }
    }

    /// The end of the part the current chunk belongs to: the first multiple of the part
    /// duration from the segment's start past the chunk's start.
    fn next_boundary(&self, segment_start: MediaTime) -> MediaTime {
        let into = (self.chunk_start - segment_start).as_nanos().max(0);
        let part = self.part.as_nanos().max(1);
        segment_start + MediaTime::from_nanos((into / part + 1) * part)
    }

    /// Where the pending media ends, if any is pending.
    fn pending_end(&self) -> Option<MediaTime> {
        let video = self.video.last().map(|v| v.dts + self.last_duration);
        let audio = self.audio.last().map(|a| a.pts + self.last_duration);
        video.max(audio)
    }

    /// Writes the pending samples up to `end` as one chunk (`rest`: all of them).
    fn emit(&mut self, end: MediaTime, rest: bool, out: &mut Vec<CmafChunk>) -> Result<(), Error> {
        let video = std::mem::take(&mut self.video);
        let split = self
            .audio
            .iter()
            .position(|a| !rest && self.tracks.0 && a.pts >= end)
            .unwrap_or(self.audio.len());
        let audio: Vec<AudioFrame> = self.audio.drain(..split).collect();
        if video.is_empty() && audio.is_empty() {
            return Ok(());
        }
        let mut runs_samples: Vec<(u32, u64, Vec<Sample>, Vec<Bytes>)> = Vec::new();
        let mut track = 0;
        let mut pts = None::<MediaTime>;
        if self.tracks.0 {
            track += 1;
            let samples = video
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let next = video.get(i + 1).map_or(end, |n| n.dts);
                    let duration = ticks(next, VIDEO_TIMESCALE) - ticks(v.dts, VIDEO_TIMESCALE);
                    Sample {
                        duration: u32::try_from(duration.max(0)).unwrap_or(u32::MAX),
                        composition_offset: i32::try_from(
                            ticks(v.pts, VIDEO_TIMESCALE) - ticks(v.dts, VIDEO_TIMESCALE),
                        )
                        .unwrap_or(0),
                        sync: v.keyframe,
                    }
                })
                .collect();
            pts = video.iter().map(|v| v.pts).min();
            let base = ticks(video.first().map_or(end, |v| v.dts), VIDEO_TIMESCALE);
            runs_samples.push((
                track,
                u64::try_from(base.max(0)).unwrap_or(0),
                samples,
                video.iter().map(|v| v.data.clone()).collect(),
            ));
        }
        if self.tracks.1 {
            track += 1;
            let rate = self
                .audio_config
                .as_ref()
                .map_or(48_000, |a| a.sample_rate.max(1));
            let frame = match self.audio_config.as_ref().map(|a| a.codec) {
                Some(AudioCodec::Mp3) => 1152,
                _ => 1024,
            };
            if !audio.is_empty() {
                let samples = vec![
                    Sample {
                        duration: frame,
                        composition_offset: 0,
                        sync: true,
                    };
                    audio.len()
                ];
                let base = ticks(audio[0].pts, rate);
                runs_samples.push((
                    track,
                    u64::try_from(base.max(0)).unwrap_or(0),
                    samples,
                    audio.iter().map(|a| a.data.clone()).collect(),
                ));
                if !self.tracks.0 {
                    pts = Some(audio[0].pts);
                }
            }
        }
        let runs: Vec<Run<'_>> = runs_samples
            .iter()
            .map(|(track, base, samples, data)| Run {
                track: *track,
                base_decode_time: *base,
                samples,
                data,
            })
            .collect();
        self.sequence += 1;
        let data = fragment(self.sequence, &runs)?;
        let independent = if self.tracks.0 {
            video.first().is_some_and(|v| v.keyframe)
        } else {
            true
        };
        out.push(CmafChunk {
            kind: if std::mem::take(&mut self.opens_segment) {
                ChunkKind::SegmentStart
            } else {
                ChunkKind::Continuation
            },
            data,
            pts: pts.unwrap_or(self.chunk_start),
            duration: end - self.chunk_start,
            independent,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: i64, keyframe: bool) -> MediaFrame {
        MediaFrame::Video(VideoFrame {
            dts: MediaTime::from_nanos(n * 1_000_000_000 / 30),
            pts: MediaTime::from_nanos(n * 1_000_000_000 / 30),
            keyframe,
            data: Bytes::from_static(b"\0\0\0\x01\x65"),
        })
    }

    #[test]
    fn segments_start_at_keyframes_and_parts_on_the_part_grid() {
        let mut c = Chunker::new(
            (true, false),
            Duration::from_secs(1),
            Duration::from_millis(334),
        );
        let mut chunks = c
            .push(MediaFrame::VideoConfig(super::super::write::tests::video()))
            .unwrap();
        // A delta frame before the first keyframe is dropped.
        chunks.extend(c.push(frame(-1, false)).unwrap());
        for n in 0..90 {
            chunks.extend(c.push(frame(n, n % 30 == 0)).unwrap());
        }
        chunks.extend(c.flush().unwrap());
        let kinds: Vec<ChunkKind> = chunks.iter().map(|c| c.kind).collect();
        assert_eq!(kinds[0], ChunkKind::Init);
        let starts = kinds
            .iter()
            .filter(|k| **k == ChunkKind::SegmentStart)
            .count();
        assert_eq!(starts, 3, "{kinds:?}");
        // Three parts a second (334 ms: 11, 10 and 9 frames), each a whole number of frames.
        assert_eq!(chunks.len(), 1 + 9, "{kinds:?}");
        let frames: Vec<i64> = chunks[1..]
            .iter()
            .map(|c| (c.duration.as_nanos() * 30 + 500_000_000) / 1_000_000_000)
            .collect();
        assert_eq!(frames, [11, 10, 9, 11, 10, 9, 11, 10, 9]);
        for c in &chunks[1..] {
            assert_eq!(c.independent, c.kind == ChunkKind::SegmentStart, "{c:?}");
        }
        assert_eq!(chunks[4].pts, MediaTime::from_millis(1000));
    }

    /// Video stops 0.4 s into a segment (the input dropped it up to the next keyframe, at 2 s)
    /// while the audio goes on: the parts stay on the part grid, with the audio alone, and
    /// cover the time without a hole.
    #[test]
    fn a_hole_in_the_video_does_not_stretch_a_part() {
        let mut c = Chunker::new(
            (true, true),
            Duration::from_secs(2),
            Duration::from_millis(500),
        );
        let audio = super::super::write::tests::audio();
        let mut chunks = c
            .push(MediaFrame::VideoConfig(super::super::write::tests::video()))
            .unwrap();
        chunks.extend(c.push(MediaFrame::AudioConfig(audio)).unwrap());
        let video: Vec<i64> = (0..12).chain(60..90).collect();
        let mut next_video = video.iter().peekable();
        // AAC frames of 1024 samples at 48 kHz, interleaved with the video by time.
        for k in 0..140i64 {
            let pts = MediaTime::from_nanos(k * 1024 * 1_000_000_000 / 48_000);
            while let Some(&&n) = next_video.peek() {
                if n * 1_000_000_000 / 30 > pts.as_nanos() {
                    break;
                }
                chunks.extend(c.push(frame(n, n % 60 == 0)).unwrap());
                next_video.next();
            }
            chunks.extend(
                c.push(MediaFrame::Audio(AudioFrame {
                    pts,
                    data: Bytes::from_static(b"\x21"),
                }))
                .unwrap(),
            );
        }
        chunks.extend(c.flush().unwrap());
        let media: Vec<&CmafChunk> = chunks
            .iter()
            .filter(|c| c.kind != ChunkKind::Init)
            .collect();
        let summary: Vec<_> = media.iter().map(|c| (c.kind, c.pts, c.duration)).collect();
        assert!(media.len() >= 6, "{summary:?}");
        for pair in media.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(a.duration <= MediaTime::from_millis(534), "{summary:?}");
            assert_eq!(
                a.pts + a.duration,
                b.pts,
                "a hole between parts: {summary:?}"
            );
        }
        // The segment at the keyframe after the hole starts where the video comes back.
        let second = media
            .iter()
            .filter(|c| c.kind == ChunkKind::SegmentStart)
            .nth(1)
            .expect("a second segment");
        assert_eq!(second.pts, MediaTime::from_millis(2000), "{summary:?}");
    }
}
