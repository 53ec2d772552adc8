//! The per-stream packager: CMAF chunks in, playlists and stored segments out.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use media::cmaf::{ChunkKind, CmafChunk};
use media::MediaTime;

use crate::error::Error;
use crate::playlist::{
    LowLatency, MasterPlaylist, MediaPlaylist, Part, RenderOptions, RenditionReport, Segment,
    VariantStream, VERSION, VERSION_LOW_LATENCY,
};
use crate::resource::{is_valid_rung_name, Resource};
use crate::store::{MemoryStore, SegmentStore};

/// Assumed audio bitrate (bits/s) added to nominal video bitrates before bitrates are measured.
pub const NOMINAL_AUDIO_BITRATE: u64 = 128_000;

/// A part shorter than this percentage of the part target can only be the last of its segment
/// (RFC 8216bis 4.4.4.9 asks every other part to last at least 85% of `PART-TARGET`).
pub const SHORT_PART_PERCENT: i64 = 85;

/// Segments shorter than this do not count towards the measured peak bitrate: a stub segment
/// (the last one of a stream, one cut short by a discontinuity) says little about the peak and
/// its ratio of bytes to time is noisy.
const MIN_PEAK_SEGMENT: MediaTime = MediaTime::from_millis(500);

/// One rung of the ladder, as the master playlist describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Rung name: the URL path segment (`720p`, `source`). 1 to 64 ASCII letters, digits, `_`
    /// or `-`.
    pub name: String,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second, when known.
    pub frame_rate: Option<f64>,
    /// RFC 6381 video codec string, e.g. `avc1.64001f`.
    pub video_codec: String,
    /// RFC 6381 audio codec string, e.g. `mp4a.40.2`, when the rung carries audio.
    pub audio_codec: Option<String>,
    /// Nominal video bitrate in kbit/s (the encoder's target); `None` for passthrough.
    pub bitrate_kbps: Option<u32>,
}

/// Packager settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Complete segments listed in each media playlist.
    pub window: usize,
    /// Segments kept in the store after they leave the playlist, for players that fetch a
    /// just-evicted segment.
    pub grace: usize,
    /// Configured segment duration (the pipeline's keyframe cadence). `EXT-X-TARGETDURATION`
    /// starts at its ceiling, so it only changes if a segment runs longer.
    pub segment_duration: Duration,
    /// Render LL-HLS tags (parts, preload hints, server control, rendition reports).
    pub low_latency: bool,
    /// Configured part (chunk) duration; `PART-TARGET` starts here.
    pub part_target: Duration,
    /// LL-HLS: list parts for this many of the newest segments, the open one included.
    pub part_segments: usize,
    /// Without LL-HLS, each segment comes as one whole chunk (the muxer has no chunk duration):
    /// a segment is complete, and listed, as soon as it is pushed, not when the next one starts.
    /// Continuation chunks are then refused.
    pub whole_segments: bool,
    /// Media sequence number of the first segment. A stream that is published again continues
    /// after its previous publish's last segment, so a segment URI never names two different
    /// contents (segments are served as immutable).
    pub first_msn: u64,
    /// Rungs whose numbering starts elsewhere than `first_msn`: each rung's playlist goes on
    /// from its own last segment when a publish moves to another server (one rung may have
    /// opened a segment the others had not when the previous owner stopped).
    pub first_msn_of: Vec<(String, u64)>,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` of the first segment. A player that watched the stream's
    /// previous playlists (before a restart of the process, say) sees the timeline change only
    /// if this is above what it saw. Keep it small: hls.js 1.x walks every number below it on
    /// each playlist load (40 ms at a million, 90 s at 3.6 billion).
    pub first_discontinuity_sequence: u64,
    /// Version of the first init segment of every rung: a publish that follows another in a
    /// new packager starts above the old one's, so that `init-V.mp4` never names two contents
    /// (players cache init segments by URI).
    pub first_init_version: u32,
    /// Segments a previous server had open when it died, by rung: the first lost number and
    /// where it started on the program-date-time clock. Each number from it up to the rung's
    /// first is listed as an `EXT-X-GAP` of `segment_duration`, and the rung's first segment
    /// is marked `EXT-X-DISCONTINUITY`: a player that had fetched some of the lost segment's
    /// parts skips the rest of it and plays on into this publish, instead of waiting for parts
    /// nobody will make. At most [`MAX_LOST`] numbers a rung; more is not believed.
    pub lost_of: Vec<(String, u64, SystemTime)>,
}

/// The most segments [`PackagerConfig::lost_of`] lists as lost in one rung.
pub const MAX_LOST: u64 = 3;

impl Default for PackagerConfig {
    fn default() -> Self {
        PackagerConfig {
            window: 6,
            grace: 2,
            segment_duration: Duration::from_secs(2),
            low_latency: false,
            part_target: Duration::from_millis(500),
            part_segments: 3,
            whole_segments: false,
            first_msn: 0,
            first_msn_of: Vec::new(),
            first_discontinuity_sequence: 0,
            first_init_version: 0,
            lost_of: Vec::new(),
        }
    }
}

/// Counters for one variant, as plain numbers for the server's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantStats {
    /// Complete segments produced.
    pub segments: u64,
    /// Parts (CMAF chunks) received.
    pub parts: u64,
    /// Media bytes received (init segments included).
    pub bytes: u64,
    /// Duration of the newest complete segment.
    pub last_segment_duration: Option<MediaTime>,
    /// Sum of complete segments' durations.
    pub media_duration: MediaTime,
    /// Sum of complete segments' sizes.
    pub segment_bytes: u64,
    /// Highest bitrate (bits/s) of a complete segment of at least 500 ms.
    pub peak_bitrate: Option<u64>,
    /// Chunks dropped because they came after their segment was closed at a short part (the
    /// muxer ran a fragment on past its end; see [`Packager::push`]).
    pub run_on_parts_dropped: u64,
}

impl VariantStats {
    /// Average bitrate (bits/s) over all complete segments, once there is one.
    pub fn average_bitrate(&self) -> Option<u64> {
        bitrate(self.segment_bytes, self.media_duration)
    }
}

fn bitrate(bytes: u64, duration: MediaTime) -> Option<u64> {
    let ns = u128::try_from(duration.as_nanos())
        .ok()
        .filter(|ns| *ns > 0)?;
    let bps = u128::from(bytes) * 8 * 1_000_000_000 / ns;
    Some(u64::try_from(bps).unwrap_or(u64::MAX))
}

/// Where a rung is: its newest part, for blocking playlist reloads (`_HLS_msn`/`_HLS_part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Newest segment with media: the open one, or the last complete one.
    pub msn: u64,
    /// Index of the newest part of that segment.
    pub part: u32,
    /// Newest complete segment.
    pub last_complete: Option<u64>,
}

/// Answer to a blocking playlist request (`_HLS_msn=M[&_HLS_part=P]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// The playlist already has what was asked for (or the stream has ended): serve it now.
    Ready,
    /// Wait for more chunks (under the server's timeout), then ask again.
    Wait,
    /// More than two segments ahead of the newest: answer 400 Bad Request.
    TooFarAhead,
}

/// Whether a resource can be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceStatus {
    /// Serve it now.
    Available,
    /// It may still appear (a hinted or upcoming part or segment): block until it does or it
    /// turns [`ResourceStatus::Gone`].
    Pending,
    /// Evicted, or never going to exist (a hinted part whose segment closed early, anything after
    /// the stream ended): 404.
    Gone,
    /// More than two segments ahead of the newest: 400.
    TooFarAhead,
}

/// The HLS state of one stream: per rung, the init segment, the segment/part window and the
/// playlist model. Sans-IO: no clock (wall-clock times are arguments), no tasks, no sockets.
#[derive(Debug)]
pub struct Packager<S = MemoryStore> {
    pub(crate) config: PackagerConfig,
    pub(crate) rungs: Vec<Rung>,
    store: S,
    pub(crate) ended_at: Option<SystemTime>,
    /// Paused ([`Packager::pause`]) and no media since: the publisher left, and nothing more
    /// comes of the segments it closed.
    pub(crate) paused: bool,
}

#[derive(Debug)]
pub(crate) struct Rung {
    pub(crate) variant: Variant,
    pub(crate) playlist: MediaPlaylist,
    pub(crate) has_init: bool,
    init: Option<Bytes>,
    /// The version of `init`: raised on every change of its content.
    pub(crate) init_version: u32,
    /// Presentation time of the open segment's first chunk, and its chunks' bytes (clones of what
    /// the store holds; the open segment's metadata is `playlist.partial`).
    pub(crate) open: Option<(MediaTime, Vec<Bytes>)>,
    pub(crate) next_msn: u64,
    pub(crate) pending_discontinuity: bool,
    /// The open segment was closed at a short part ([`SHORT_PART_PERCENT`]) and nothing has
    /// started since: a continuation chunk that still comes is dropped (and counted) instead of
    /// being refused.
    pub(crate) closed_early: bool,
    /// Complete segments still in the store (msn, part count), oldest first.
    pub(crate) retained: VecDeque<(u64, u32)>,
    stats: VariantStats,
    /// Shed under overload: left out of the master playlist, its segments listed as gaps.
    pub(crate) shed: bool,
}

impl Rung {
    /// Lists the segments `lost..next_msn` as gaps from `start` (see
    /// [`PackagerConfig::lost_of`]), numbered in the discontinuity before the configured one,
    /// which the rung's first segment opens. Only a new rung, and only a few numbers.
    fn list_lost(&mut self, lost: u64, start: SystemTime, config: &PackagerConfig) {
        let first = self.next_msn;
        if lost >= first || first - lost > MAX_LOST || !self.playlist.segments.is_empty() {
            return;
        }
        self.playlist.media_sequence = lost;
        self.playlist.discontinuity_sequence =
            config.first_discontinuity_sequence.saturating_sub(1);
        let duration = duration_to_media(config.segment_duration);
        for (i, msn) in (lost..first).enumerate() {
            self.playlist.push_segment(Segment {
                msn,
                duration,
                program_date_time: start + config.segment_duration * i as u32,
                discontinuity: false,
                init: self.init_version,
                parts: Vec::new(),
                size: 0,
                gap: true,
            });
        }
        self.pending_discontinuity = true;
    }
}

impl Packager<MemoryStore> {
    /// A packager writing to a fresh [`MemoryStore`].
    pub fn in_memory(config: PackagerConfig, variants: Vec<Variant>) -> Result<Self, Error> {
        Packager::new(config, variants, MemoryStore::new())
    }
}

impl<S: SegmentStore> Packager<S> {
    /// A packager for one stream with these rungs, writing through `store`.
    pub fn new(config: PackagerConfig, variants: Vec<Variant>, store: S) -> Result<Self, Error> {
        if variants.is_empty() {
            return Err(Error::NoVariants);
        }
        let mut rungs: Vec<Rung> = Vec::with_capacity(variants.len());
        for variant in variants {
            if !is_valid_rung_name(&variant.name) {
                return Err(Error::InvalidRungName(variant.name));
            }
            if rungs.iter().any(|r| r.variant.name == variant.name) {
                return Err(Error::DuplicateRung(variant.name));
            }
            let low_latency = config.low_latency.then(|| LowLatency {
                part_target: duration_to_media(config.part_target),
                part_segments: config.part_segments.max(1),
            });
            let first_msn = config
                .first_msn_of
                .iter()
                .find(|(name, _)| *name == variant.name)
                .map_or(config.first_msn, |&(_, msn)| msn);
            rungs.push(Rung {
                variant,
                playlist: {
                    let mut p =
                        MediaPlaylist::new(config.window, config.segment_duration, low_latency);
                    p.media_sequence = first_msn;
                    p.discontinuity_sequence = config.first_discontinuity_sequence;
                    p
                },
                has_init: false,
                init: None,
                init_version: config.first_init_version,
                open: None,
                next_msn: first_msn,
                pending_discontinuity: false,
                closed_early: false,
                retained: VecDeque::new(),
                stats: VariantStats::default(),
                shed: false,
            });
        }
        for rung in &mut rungs {
            if let Some(&(_, lost, start)) = config
                .lost_of
                .iter()
                .find(|(n, ..)| *n == rung.variant.name)
            {
                rung.list_lost(lost, start, &config);
            }
        }
        let mut packager = Packager {
            config,
            rungs,
            store,
            ended_at: None,
            paused: false,
        };
        for r in 0..packager.rungs.len() {
            packager.update_hint(r);
        }
        Ok(packager)
    }

    /// Takes one CMAF chunk of `rung`. `program_date_time` is the wall-clock time of the chunk's
    /// first sample; it becomes the segment's `EXT-X-PROGRAM-DATE-TIME` when the chunk starts one.
    pub fn push(
        &mut self,
        rung: &str,
        chunk: CmafChunk,
        program_date_time: SystemTime,
    ) -> Result<(), Error> {
        if self.ended_at.is_some() {
            return Err(Error::Ended);
        }
        let r = self.index(rung)?;
        if chunk.kind != ChunkKind::Init {
            self.paused = false;
        }
        let len = chunk.data.len() as u64;
        let chunk_duration = if chunk.kind == ChunkKind::Init {
            None
        } else {
            Some(chunk.duration)
        };
        match chunk.kind {
            ChunkKind::Init => {
                let rung = &mut self.rungs[r];
                let changed = rung.init.as_ref().is_some_and(|old| *old != chunk.data);
                if changed {
                    // Players must read the new init segment: it gets a URI of its own (they
                    // cache by URI), and the change is a discontinuity.
                    rung.pending_discontinuity = true;
                    rung.init_version += 1;
                }
                rung.has_init = true;
                rung.init = Some(chunk.data.clone());
                rung.stats.bytes += len;
                self.store
                    .put_init(&rung.variant.name, rung.init_version, chunk.data);
            }
            ChunkKind::SegmentStart => {
                if !self.rungs[r].has_init {
                    return Err(Error::MissingInit(rung.to_owned()));
                }
                self.close_open(r, Some(chunk.pts));
                self.open_segment(r, chunk, program_date_time, true);
                if self.config.whole_segments && !self.config.low_latency {
                    self.close_open(r, None);
                }
            }
            ChunkKind::Continuation => {
                let rung = &mut self.rungs[r];
                if !rung.has_init {
                    return Err(Error::MissingInit(rung.variant.name.clone()));
                }
                if self.config.whole_segments && !self.config.low_latency {
                    return Err(Error::NoOpenSegment(rung.variant.name.clone()));
                }
                if rung.playlist.partial.is_none() && rung.closed_early {
                    // The short part was not the segment's last after all: the muxer ran the
                    // fragment on past its end (a late keyframe, on a part duration that does not
                    // fit the frame rate). The segment is listed complete. Opening another one
                    // here would start a segment without a keyframe (the playlists promise
                    // EXT-X-INDEPENDENT-SEGMENTS) and put this rung's sequence numbers ahead of
                    // the other rungs' for the rest of the publish. The chunk is dropped instead,
                    // a hole of less than a part before the next keyframe, and counted.
                    rung.stats.run_on_parts_dropped += 1;
                    self.update_hint(r);
                    return Ok(());
                } else {
                    let (Some(seg), Some((_, chunks))) =
                        (rung.playlist.partial.as_mut(), rung.open.as_mut())
                    else {
                        return Err(Error::NoOpenSegment(rung.variant.name.clone()));
                    };
                    let index = u32::try_from(seg.parts.len()).unwrap_or(u32::MAX);
                    seg.parts.push(Part {
                        duration: chunk.duration,
                        independent: chunk.independent,
                        size: len,
                    });
                    seg.duration = seg.duration + chunk.duration;
                    seg.size += len;
                    let msn = seg.msn;
                    chunks.push(chunk.data.clone());
                    rung.playlist.observe_part(chunk.duration);
                    rung.stats.parts += 1;
                    rung.stats.bytes += len;
                    self.store
                        .put_part(&rung.variant.name, msn, index, chunk.data);
                }
            }
        }
        if self.config.low_latency && chunk_duration.is_some_and(|d| self.ends_segment(r, d)) {
            // Only the last part of a segment may be this short (RFC 8216bis 4.4.4.9: every
            // other part lasts at least 85% of PART-TARGET), and the muxer cuts a chunk short
            // only where its fragment ends: the segment is complete now, not when the next one
            // starts. Listing it now keeps the preload hint consistent with the playlist.
            self.close_open(r, None);
            self.rungs[r].closed_early = true;
        }
        self.update_hint(r);
        Ok(())
    }

    /// Opens the next segment of rung `r` with `chunk` as its first part.
    fn open_segment(
        &mut self,
        r: usize,
        chunk: CmafChunk,
        program_date_time: SystemTime,
        independent: bool,
    ) {
        let len = chunk.data.len() as u64;
        let rung = &mut self.rungs[r];
        let msn = rung.next_msn;
        rung.next_msn += 1;
        rung.closed_early = false;
        let discontinuity = std::mem::take(&mut rung.pending_discontinuity);
        rung.playlist.observe_part(chunk.duration);
        rung.playlist.partial = Some(Segment {
            msn,
            duration: chunk.duration,
            program_date_time,
            discontinuity,
            init: rung.init_version,
            parts: vec![Part {
                duration: chunk.duration,
                independent,
                size: len,
            }],
            size: len,
            gap: false,
        });
        rung.open = Some((chunk.pts, vec![chunk.data.clone()]));
        rung.stats.parts += 1;
        rung.stats.bytes += len;
        self.store.put_part(&rung.variant.name, msn, 0, chunk.data);
    }

    /// Whether a part of `duration`, just added to rung `r`'s open segment, is that segment's
    /// last: it is shorter than [`SHORT_PART_PERCENT`] of the rendered `PART-TARGET` (the
    /// measure of the rule), and the segment has reached its configured duration (less half a
    /// part), where the muxer ends fragments. A short part earlier in a segment is a chunk cut
    /// on the frame grid (a part duration that does not fit the frame rate), not an end.
    fn ends_segment(&self, r: usize, duration: MediaTime) -> bool {
        let rung = &self.rungs[r];
        let Some(open) = rung.playlist.partial.as_ref() else {
            return false;
        };
        let target = rung
            .playlist
            .part_target()
            .unwrap_or_else(|| duration_to_media(self.config.part_target));
        let short = duration.as_nanos() < target.as_nanos() / 100 * SHORT_PART_PERCENT;
        let half_part = duration_to_media(self.config.part_target / 2);
        let full = open.duration + half_part >= duration_to_media(self.config.segment_duration);
        short && full
    }

    /// Marks the next segment of `rung` with `EXT-X-DISCONTINUITY` (a timestamp jump, an encoder
    /// change). The open segment's duration is then the sum of its chunks, not a PTS difference.
    pub fn discontinuity(&mut self, rung: &str) -> Result<(), Error> {
        let r = self.index(rung)?;
        self.rungs[r].pending_discontinuity = true;
        Ok(())
    }

    /// Replaces the description of the rung named `variant.name` (a continued publish with a
    /// new size or codec): the master playlist says what the rung is now. Its measured
    /// bitrates start again, since they measured other media.
    pub fn update_variant(&mut self, variant: Variant) -> Result<(), Error> {
        let r = self.index(&variant.name)?;
        let rung = &mut self.rungs[r];
        if rung.variant != variant {
            rung.variant = variant;
            rung.stats.peak_bitrate = None;
            rung.stats.segment_bytes = 0;
            rung.stats.media_duration = MediaTime::ZERO;
        }
        Ok(())
    }

    /// The publisher is gone but may come back: closes every open segment, without
    /// `EXT-X-ENDLIST`, and marks the next segment of every rung with `EXT-X-DISCONTINUITY`, so
    /// that a later publish can continue the same playlists. Players keep reloading meanwhile.
    pub fn pause(&mut self) {
        if self.ended_at.is_some() {
            return;
        }
        for r in 0..self.rungs.len() {
            self.close_open(r, None);
        }
        self.paused = true;
        self.align_gaps();
        for r in 0..self.rungs.len() {
            self.rungs[r].pending_discontinuity = true;
            self.rungs[r].closed_early = false;
            self.update_hint(r);
        }
    }

    /// The publish is over: closes every open segment and renders `EXT-X-ENDLIST` from now on.
    /// Idempotent; the first `now` is kept as [`Packager::ended_at`].
    pub fn end(&mut self, now: SystemTime) {
        if self.ended_at.is_some() {
            return;
        }
        for r in 0..self.rungs.len() {
            self.close_open(r, None);
            let rung = &mut self.rungs[r];
            rung.playlist.ended = true;
            rung.playlist.preload_hint = None;
        }
        self.ended_at = Some(now);
    }

    /// When [`Packager::end`] was called, if it was. The caller drops the packager a configured
    /// time after this.
    pub fn ended_at(&self) -> Option<SystemTime> {
        self.ended_at
    }

    /// The configuration.
    pub fn config(&self) -> &PackagerConfig {
        &self.config
    }

    /// The rungs, in the order given to [`Packager::new`].
    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        self.rungs.iter().map(|r| &r.variant)
    }

    /// The store, for reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Drops everything this stream put in the store (call before dropping an ended packager
    /// whose store outlives it).
    pub fn clear_store(&mut self) {
        for r in &mut self.rungs {
            self.store.clear(&r.variant.name);
            r.retained.clear();
        }
    }

    /// A variant's counters.
    pub fn stats(&self, rung: &str) -> Result<&VariantStats, Error> {
        Ok(&self.rungs[self.index(rung)?].stats)
    }

    /// A rung's playlist model.
    pub fn media(&self, rung: &str) -> Result<&MediaPlaylist, Error> {
        Ok(&self.rungs[self.index(rung)?].playlist)
    }

    /// True once `rung` lists a complete segment (before that its playlist is empty, and the
    /// server may prefer to wait or answer 404).
    pub fn is_ready(&self, rung: &str) -> Result<bool, Error> {
        Ok(!self.rungs[self.index(rung)?].playlist.segments.is_empty())
    }

    /// Renders `rung`'s media playlist; `skip` asks for a delta update (`_HLS_skip=YES`).
    pub fn media_playlist(&self, rung: &str, skip: bool) -> Result<String, Error> {
        let r = self.index(rung)?;
        let rendition_reports = if self.config.low_latency {
            self.rungs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != r)
                .filter_map(|(i, other)| {
                    let c = self.cursor_of(i)?;
                    Some(RenditionReport {
                        rung: other.variant.name.clone(),
                        last_msn: c.msn,
                        last_part: Some(c.part),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(self.rungs[r].playlist.render(&RenderOptions {
            skip,
            rendition_reports,
        }))
    }

    /// The master playlist model: one variant per rung that is not shed, ordered by `BANDWIDTH`
    /// ascending (so players that start on the first entry start low and climb).
    pub fn master(&self) -> MasterPlaylist {
        let mut variants: Vec<VariantStream> = self
            .rungs
            .iter()
            .filter(|r| !r.shed)
            .map(variant_stream)
            .collect();
        variants.sort_by_key(|v| v.bandwidth);
        MasterPlaylist {
            version: if self.config.low_latency {
                VERSION_LOW_LATENCY
            } else {
                VERSION
            },
            variants,
        }
    }

    /// Renders the master playlist.
    pub fn master_playlist(&self) -> String {
        self.master().render()
    }

    /// The media sequence number the next segment of any rung will get: where a following
    /// publish of the same stream should start ([`PackagerConfig::first_msn`]).
    pub fn next_msn(&self) -> u64 {
        self.rungs
            .iter()
            .map(|r| r.next_msn)
            .max()
            .unwrap_or(self.config.first_msn)
    }

    /// The media sequence number `rung`'s next segment will get.
    pub fn next_msn_of(&self, rung: &str) -> Option<u64> {
        self.rungs
            .iter()
            .find(|r| r.variant.name == rung)
            .map(|r| r.next_msn)
    }

    /// Each rung's next media sequence number, by name, in ladder order: where a following
    /// publish continues that rung's playlist ([`PackagerConfig::first_msn_of`]).
    pub fn next_msns(&self) -> Vec<(String, u64)> {
        self.rungs
            .iter()
            .map(|r| (r.variant.name.clone(), r.next_msn))
            .collect()
    }

    /// Where each rung's complete media ends: the first segment not complete (the open one,
    /// or the next to open), its start on the program-date-time clock (the open segment's
    /// date, or the end of the last complete one) and its discontinuity number. Rungs with
    /// neither are left out. What a server that takes the stream over after this one died
    /// lists as lost ([`PackagerConfig::lost_of`]).
    pub fn incomplete(&self) -> Vec<(String, u64, SystemTime, u64)> {
        self.rungs
            .iter()
            .filter_map(|r| {
                let pl = &r.playlist;
                let listed = pl.segments.iter().filter(|s| s.discontinuity).count() as u64;
                let (msn, start, tagged) = match (&pl.partial, pl.segments.back()) {
                    (Some(open), _) => (open.msn, open.program_date_time, open.discontinuity),
                    (None, Some(last)) => (
                        r.next_msn,
                        last.program_date_time + media_to_duration(last.duration),
                        r.pending_discontinuity,
                    ),
                    (None, None) => return None,
                };
                let discontinuity = pl.discontinuity_sequence + listed + u64::from(tagged);
                Some((r.variant.name.clone(), msn, start, discontinuity))
            })
            .collect()
    }

    /// The discontinuity sequence a following publish should start at
    /// ([`PackagerConfig::first_discontinuity_sequence`]): one above every discontinuity this
    /// packager has numbered, listed or trimmed.
    pub fn next_discontinuity_sequence(&self) -> u64 {
        self.rungs
            .iter()
            .map(|r| {
                let pl = &r.playlist;
                let listed = pl
                    .segments
                    .iter()
                    .chain(&pl.partial)
                    .filter(|s| s.discontinuity)
                    .count();
                pl.discontinuity_sequence + listed as u64 + u64::from(r.pending_discontinuity) + 1
            })
            .max()
            .unwrap_or(self.config.first_discontinuity_sequence + 1)
    }

    /// The init version a following publish should start at
    /// ([`PackagerConfig::first_init_version`]): above every version this packager used.
    pub fn next_init_version(&self) -> u32 {
        self.rungs
            .iter()
            .map(|r| r.init_version.saturating_add(1))
            .max()
            .unwrap_or(self.config.first_init_version)
    }

    pub(crate) fn index(&self, rung: &str) -> Result<usize, Error> {
        self.rungs
            .iter()
            .position(|r| r.variant.name == rung)
            .ok_or_else(|| Error::UnknownRung(rung.to_owned()))
    }

    /// Closes the open segment of rung `r`. `next_start` is the PTS of the segment that follows,
    /// if one does.
    pub(crate) fn close_open(&mut self, r: usize, next_start: Option<MediaTime>) {
        let rung = &mut self.rungs[r];
        let (Some(mut seg), Some((start, chunks))) =
            (rung.playlist.partial.take(), rung.open.take())
        else {
            return;
        };
        // A PTS difference is exact where summed chunk durations accumulate rounding, but across
        // a discontinuity, or when the two disagree wildly, the timeline is not to be trusted.
        let summed = seg.duration;
        if let Some(next) = next_start.filter(|_| !rung.pending_discontinuity) {
            let diff = next - start;
            let plausible = if summed > MediaTime::ZERO {
                diff.as_nanos() >= summed.as_nanos() / 2
                    && diff.as_nanos() <= summed.as_nanos().saturating_mul(2)
            } else {
                diff > MediaTime::ZERO && diff < MediaTime::from_millis(60_000)
            };
            if plausible {
                seg.duration = diff;
            }
        }
        let mut data = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in &chunks {
            data.extend_from_slice(c);
        }
        self.store
            .put_segment(&rung.variant.name, seg.msn, data.freeze());

        let stats = &mut rung.stats;
        stats.segments += 1;
        stats.last_segment_duration = Some(seg.duration);
        stats.media_duration = stats.media_duration + seg.duration;
        stats.segment_bytes += seg.size;
        if seg.duration >= MIN_PEAK_SEGMENT {
            let b = bitrate(seg.size, seg.duration);
            stats.peak_bitrate = stats.peak_bitrate.max(b);
        }

        let parts = u32::try_from(seg.parts.len()).unwrap_or(u32::MAX);
        rung.retained.push_back((seg.msn, parts));
        rung.playlist.push_segment(seg);
        let keep = self.config.window.max(1) + self.config.grace;
        while rung.retained.len() > keep {
            if let Some((msn, _)) = rung.retained.pop_front() {
                self.store.evict(&rung.variant.name, msn);
            }
        }
    }

    /// Sets `EXT-X-PRELOAD-HINT` to the part that comes next as far as the playlist shows:
    /// the next part of the open segment, or the first part of the next segment once the last
    /// one is complete.
    ///
    /// The hint never names a part of another segment while one is open. A client reads every
    /// part after the last `EXTINF`, and the hinted one too, as parts of the open segment
    /// (RFC 8216bis 4.4.4.9, 4.4.5.3), so hinting the next segment's first part early would
    /// make the open segment's last part look like a middle one (and break the 85% rule when it
    /// is short). A segment is closed as soon as its last part is known: at once when that part
    /// is short, otherwise when the next segment starts. In the second case the hinted part of
    /// the closed segment never comes: it turns [`ResourceStatus::Gone`], a request held for it
    /// is answered 404, and the client reloads the playlist, whose blocking request for that
    /// part is answered by the next segment's first part ("that part or a later one",
    /// RFC 8216bis 6.2.5.2).
    pub(crate) fn update_hint(&mut self, r: usize) {
        let rung = &mut self.rungs[r];
        // A shed rung's next segment is a gap: no part to hint.
        if rung.shed {
            rung.playlist.preload_hint = None;
            return;
        }
        let pl = &rung.playlist;
        if pl.low_latency.is_none() || pl.ended {
            return;
        }
        let hint = match &pl.partial {
            None => (rung.next_msn, 0),
            Some(open) => (
                open.msn,
                u32::try_from(open.parts.len()).unwrap_or(u32::MAX),
            ),
        };
        rung.playlist.preload_hint = Some(hint);
    }
}

fn variant_stream(rung: &Rung) -> VariantStream {
    let v = &rung.variant;
    let audio = if v.audio_codec.is_some() {
        NOMINAL_AUDIO_BITRATE
    } else {
        0
    };
    let nominal = v.bitrate_kbps.map(|k| u64::from(k) * 1000);
    // Without a nominal bitrate (passthrough) and before anything is measured, guess from the
    // picture: 0.1 bit per pixel per frame is a typical H.264 live encode.
    let guess = || {
        let fps = v
            .frame_rate
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(30.0);
        (f64::from(v.width) * f64::from(v.height) * fps * 0.1) as u64
    };
    let peak = rung
        .stats
        .peak_bitrate
        .unwrap_or_else(|| nominal.map_or_else(guess, |n| n * 6 / 5) + audio);
    let average = rung
        .stats
        .average_bitrate()
        .unwrap_or_else(|| nominal.unwrap_or_else(guess) + audio);
    // A rung without video (an audio-only publish) names its audio codec alone.
    let codecs = match &v.audio_codec {
        Some(a) if v.video_codec.is_empty() => a.clone(),
        Some(a) => format!("{},{a}", v.video_codec),
        None => v.video_codec.clone(),
    };
    VariantStream {
        uri: Resource::Media(v.name.clone()).to_string(),
        bandwidth: peak.max(average).max(1),
        average_bandwidth: average.max(1),
        width: v.width,
        height: v.height,
        frame_rate: v.frame_rate,
        codecs,
    }
}

pub(crate) fn duration_to_media(d: Duration) -> MediaTime {
    MediaTime::from_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn media_to_duration(t: MediaTime) -> Duration {
    Duration::from_nanos(u64::try_from(t.as_nanos()).unwrap_or(0))
}
