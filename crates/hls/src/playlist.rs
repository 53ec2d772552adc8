//! Playlists as plain data (convention 3 in ARCHITECTURE.md): structs with add/trim methods, and
//! rendering as a pure function of the struct. The LL-HLS rules (PART-TARGET, hold-backs, part
//! window, preload hint, skip boundary) live here and are tested here; the [`crate::Packager`]
//! only feeds the model.

use std::collections::VecDeque;
use std::fmt::Write;
use std::time::{Duration, SystemTime};

use media::MediaTime;

use crate::resource::{InitFile, PartFile, SegmentFile};
use crate::time::rfc3339_millis;

/// `EXT-X-VERSION` of playlists without LL-HLS tags (`EXT-X-MAP` without I-frames needs 6).
pub const VERSION: u8 = 7;
/// `EXT-X-VERSION` of LL-HLS playlists: delta updates (`EXT-X-SKIP`) need 9, and full and delta
/// renders of one playlist keep one version.
pub const VERSION_LOW_LATENCY: u8 = 9;

/// Hold-backs and the skip boundary are these multiples of the (part) target duration: the
/// spec's recommended minimums (RFC 8216bis 4.4.3.8).
const HOLD_BACK_TARGETS: i64 = 3;
const PART_HOLD_BACK_PARTS: i64 = 3;
const CAN_SKIP_UNTIL_TARGETS: i64 = 6;

/// One LL-HLS partial segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Media duration.
    pub duration: MediaTime,
    /// True when the part starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Size in bytes.
    pub size: u64,
}

/// One media segment (complete, or the open one of an LL-HLS playlist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// Duration (`EXTINF`). For the open segment, the sum of its parts so far.
    pub duration: MediaTime,
    /// Wall-clock time of the first sample (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: SystemTime,
    /// True when an `EXT-X-DISCONTINUITY` precedes this segment.
    pub discontinuity: bool,
    /// The version of the init segment it needs (`EXT-X-MAP`, written where it changes).
    pub init: u32,
    /// The segment's parts, in order (every CMAF chunk is one).
    pub parts: Vec<Part>,
    /// Size in bytes.
    pub size: u64,
    /// `EXT-X-GAP`: the rung has no media for this time (it was shed under overload); players
    /// take the segment from another variant. Its URI answers 404.
    pub gap: bool,
}

/// LL-HLS settings of a media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowLatency {
    /// `PART-TARGET`: at least every part duration ever listed. It starts at the configured
    /// chunk duration and only grows, when a longer part shows up.
    pub part_target: MediaTime,
    /// Parts are listed for this many of the newest segments, the open one included.
    pub part_segments: usize,
}

/// A rendition report: where another rung of the same stream is (`EXT-X-RENDITION-REPORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// The other rung's name.
    pub rung: String,
    /// `LAST-MSN`: its newest segment with media (the open one included).
    pub last_msn: u64,
    /// `LAST-PART`: its newest part in that segment, when it lists parts.
    pub last_part: Option<u32>,
}

/// Per-request rendering choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Render a delta update (`_HLS_skip=YES`): segments before the skip boundary become one
    /// `EXT-X-SKIP`. Ignored unless the playlist is LL-HLS.
    pub skip: bool,
    /// Rendition reports for the stream's other rungs (LL-HLS only).
    pub rendition_reports: Vec<RenditionReport>,
}

/// A rung's media playlist: the sliding window of complete segments, plus (LL-HLS) the open
/// segment's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// Complete segments listed (older ones are trimmed).
    pub window: usize,
    /// `EXT-X-TARGETDURATION` in seconds: the longest segment ever listed rounded to the nearest
    /// second (RFC 8216bis 4.4.3.1 compares EXTINF *rounded* against it), never
    /// decreasing (the spec forbids changing it; starting it at the configured segment duration
    /// keeps it constant in practice).
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE`: the msn of the first listed segment (of the next one when none
    /// is listed).
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities trimmed off the front so far.
    pub discontinuity_sequence: u64,
    /// Complete segments, oldest first, at most `window`.
    pub segments: VecDeque<Segment>,
    /// The open segment (listed through its parts in LL-HLS only).
    pub partial: Option<Segment>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
    /// LL-HLS settings; `None` renders a plain HLS playlist.
    pub low_latency: Option<LowLatency>,
    /// `EXT-X-PRELOAD-HINT`: (msn, part) of the part expected next.
    pub preload_hint: Option<(u64, u32)>,
}

impl MediaPlaylist {
    /// An empty playlist. `min_target_duration` is the configured segment duration: the target
    /// duration starts at its ceiling.
    pub fn new(
        window: usize,
        min_target_duration: Duration,
        low_latency: Option<LowLatency>,
    ) -> Self {
        let secs = ceil_secs(MediaTime::from_nanos(
            i64::try_from(min_target_duration.as_nanos()).unwrap_or(i64::MAX),
        ));
        MediaPlaylist {
            window: window.max(1),
            target_duration: secs.max(1),
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: VecDeque::new(),
            partial: None,
            ended: false,
            low_latency,
            preload_hint: None,
        }
    }

    /// Appends a complete segment, raises the target duration (and part target) if it needs to,
    /// and trims the window. Returns the segments trimmed off the front.
    pub fn push_segment(&mut self, segment: Segment) -> Vec<Segment> {
        if self.segments.is_empty() {
            self.media_sequence = segment.msn;
        }
        self.target_duration = self.target_duration.max(round_secs(segment.duration));
        for p in &segment.parts {
            self.observe_part(p.duration);
        }
        self.segments.push_back(segment);
        self.trim()
    }

    /// Raises `PART-TARGET` to cover a part of `duration`.
    pub fn observe_part(&mut self, duration: MediaTime) {
        if let Some(ll) = &mut self.low_latency {
            ll.part_target = ll.part_target.max(duration);
        }
    }

    /// Drops segments beyond the window from the front, keeping `EXT-X-MEDIA-SEQUENCE` and
    /// `EXT-X-DISCONTINUITY-SEQUENCE` right. Returns what was dropped.
    pub fn trim(&mut self) -> Vec<Segment> {
        let mut gone = Vec::new();
        while self.segments.len() > self.window {
            if let Some(s) = self.segments.pop_front() {
                if s.discontinuity {
                    self.discontinuity_sequence += 1;
                }
                gone.push(s);
            }
        }
        if let Some(first) = self.segments.front() {
            self.media_sequence = first.msn;
        }
        gone
    }

    /// `EXT-X-VERSION` this playlist renders with.
    pub fn version(&self) -> u8 {
        if self.low_latency.is_some() {
            VERSION_LOW_LATENCY
        } else {
            VERSION
        }
    }

    /// `HOLD-BACK`: three target durations.
    pub fn hold_back(&self) -> MediaTime {
        target_time(self.target_duration, HOLD_BACK_TARGETS)
    }

    /// `CAN-SKIP-UNTIL`: six target durations (LL-HLS only).
    pub fn can_skip_until(&self) -> Option<MediaTime> {
        self.low_latency
            .map(|_| target_time(self.target_duration, CAN_SKIP_UNTIL_TARGETS))
    }

    /// `PART-TARGET` as rendered (rounded up to the 10 µs the playlist shows), LL-HLS only.
    pub fn part_target(&self) -> Option<MediaTime> {
        self.low_latency.map(|ll| {
            let ns = ceil_10us(ll.part_target).saturating_mul(10_000);
            MediaTime::from_nanos(i64::try_from(ns).unwrap_or(i64::MAX))
        })
    }

    /// `PART-HOLD-BACK`: three part targets (LL-HLS only).
    pub fn part_hold_back(&self) -> Option<MediaTime> {
        self.part_target()
            .map(|pt| MediaTime::from_nanos(pt.as_nanos().saturating_mul(PART_HOLD_BACK_PARTS)))
    }

    /// How many of the oldest segments a delta update replaces with `EXT-X-SKIP`: those that
    /// end at least `CAN-SKIP-UNTIL` before the end of the last complete segment. Zero for plain
    /// HLS.
    pub fn skippable_segments(&self) -> usize {
        let Some(until) = self.can_skip_until() else {
            return 0;
        };
        // `after` is the duration of the segments after segment `i`.
        let mut after = self
            .segments
            .iter()
            .fold(MediaTime::ZERO, |acc, s| acc + s.duration);
        let mut n = 0;
        for s in &self.segments {
            after = after - s.duration;
            if after < until {
                break;
            }
            n += 1;
        }
        n
    }

    /// Index of the oldest complete segment whose parts are listed: parts are listed for the
    /// newest `part_segments` segments, the open one included, and only for segments that start
    /// within three target durations of the playlist's end (RFC 8216bis 4.4.4.9: older parts
    /// are removed). `usize::MAX` for plain HLS.
    fn first_segment_with_parts(&self) -> usize {
        let Some(ll) = self.low_latency else {
            return usize::MAX;
        };
        let open = self.partial.as_ref().filter(|p| !p.parts.is_empty());
        // After the last EXTINF, the open segment's parts, or the preload hint alone, make one
        // more segment as a client counts them.
        let trailing = open.is_some() || (self.preload_hint.is_some() && !self.ended);
        let complete_with_parts = ll.part_segments.saturating_sub(usize::from(trailing));
        let by_count = self.segments.len().saturating_sub(complete_with_parts);
        let limit = target_time(self.target_duration, 3);
        let mut from_end = open.map_or(MediaTime::ZERO, |p| p.duration);
        let mut first = self.segments.len();
        for (i, s) in self.segments.iter().enumerate().rev() {
            from_end = from_end + s.duration;
            if from_end > limit {
                break;
            }
            first = i;
        }
        by_count.max(first)
    }

    /// Renders the playlist text. Pure: the same playlist and options give the same text.
    pub fn render(&self, opts: &RenderOptions) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 160);
        let ll = self.low_latency;
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version());
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if let (Some(until), Some(phb)) = (self.can_skip_until(), self.part_hold_back()) {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL={},CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={},HOLD-BACK={}",
                Decimal(until),
                Decimal(phb),
                Decimal(self.hold_back())
            );
        }
        if let Some(pt) = self.part_target() {
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", Decimal(pt));
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        // The init segment in effect for the first segment (skipped ones included); later ones
        // get their own EXT-X-MAP where the version changes.
        let mut init = self
            .segments
            .front()
            .or(self.partial.as_ref())
            .map_or(0, |s| s.init);
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", InitFile(init));

        let skipped = if opts.skip {
            self.skippable_segments()
        } else {
            0
        };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let part_from = self.first_segment_with_parts();
        if let Some(last_skipped) = skipped.checked_sub(1).and_then(|i| self.segments.get(i)) {
            init = last_skipped.init;
        }
        for (i, s) in self.segments.iter().enumerate().skip(skipped) {
            segment_head(&mut out, s, &mut init);
            if s.gap {
                out.push_str("#EXT-X-GAP\n");
            } else if i >= part_from {
                parts(&mut out, s);
            }
            let _ = writeln!(out, "#EXTINF:{},", Extinf(s.duration));
            let _ = writeln!(out, "{}", SegmentFile(s.msn));
        }
        if ll.is_some() && !self.ended {
            if let Some(p) = self.partial.as_ref().filter(|p| !p.parts.is_empty()) {
                segment_head(&mut out, p, &mut init);
                parts(&mut out, p);
            }
            if let Some((msn, part)) = self.preload_hint {
                let _ = writeln!(
                    out,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                    PartFile(msn, part)
                );
            }
        }
        if ll.is_some() {
            for r in &opts.rendition_reports {
                let _ = write!(
                    out,
                    "#EXT-X-RENDITION-REPORT:URI=\"../{}/index.m3u8\",LAST-MSN={}",
                    r.rung, r.last_msn
                );
                if let Some(p) = r.last_part {
                    let _ = write!(out, ",LAST-PART={p}");
                }
                out.push('\n');
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// The tags before a segment; `init` is the init version in effect, updated.
fn segment_head(out: &mut String, s: &Segment, init: &mut u32) {
    if s.discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if s.init != *init {
        *init = s.init;
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", InitFile(s.init));
    }
    out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
    rfc3339_millis(s.program_date_time, out);
    out.push('\n');
}

fn parts(out: &mut String, s: &Segment) {
    for (i, p) in s.parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{}\"",
            Extinf(p.duration),
            PartFile(s.msn, u32::try_from(i).unwrap_or(u32::MAX))
        );
        if p.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// One `EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStream {
    /// URI of the media playlist, relative to the master.
    pub uri: String,
    /// `BANDWIDTH`: peak bits per second.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: average bits per second.
    pub average_bandwidth: u64,
    /// `RESOLUTION` width (0, with a height of 0, for audio only: no `RESOLUTION`).
    pub width: u32,
    /// `RESOLUTION` height.
    pub height: u32,
    /// `FRAME-RATE`, when known.
    pub frame_rate: Option<f64>,
    /// `CODECS`, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// The master (multivariant) playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPlaylist {
    /// `EXT-X-VERSION`.
    pub version: u8,
    /// Variants, in the order listed (the first is where players without a start-level rule
    /// begin).
    pub variants: Vec<VariantStream>,
}

impl MasterPlaylist {
    /// Renders the playlist text. Pure.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + self.variants.len() * 160);
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version);
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        for v in &self.variants {
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
                v.bandwidth, v.average_bandwidth
            );
            // An audio-only variant has no picture, so no RESOLUTION.
            if v.width > 0 && v.height > 0 {
                let _ = write!(out, ",RESOLUTION={}x{}", v.width, v.height);
            }
            if let Some(fr) = v.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
                let _ = write!(out, ",FRAME-RATE={fr:.3}");
            }
            let _ = writeln!(out, ",CODECS=\"{}\"", v.codecs);
            let _ = writeln!(out, "{}", v.uri);
        }
        out
    }
}

/// Whole seconds, rounded to the nearest (half up): the spec's rule for EXTINF against
/// `EXT-X-TARGETDURATION`. A 2.006 s segment keeps a target of 2, so a keyframe cadence that
/// lands a few milliseconds late does not inflate the target duration and every hold-back.
pub(crate) fn round_secs(t: MediaTime) -> u64 {
    // Clients round the EXTINF as it is written (five decimals, [`Extinf`]), not the exact time:
    // 1.499999999 s is written 1.50000, which rounds to 2.
    let written = (u64::try_from(t.as_nanos()).unwrap_or(0) + 5_000) / 10_000;
    (written + 50_000) / 100_000
}

/// Whole seconds, rounded up (the starting target duration from the configuration).
pub(crate) fn ceil_secs(t: MediaTime) -> u64 {
    let ns = u64::try_from(t.as_nanos()).unwrap_or(0);
    ns.div_ceil(1_000_000_000)
}

fn ceil_10us(t: MediaTime) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(0).div_ceil(10_000)
}

fn target_time(target_secs: u64, times: i64) -> MediaTime {
    let secs = i64::try_from(target_secs).unwrap_or(i64::MAX / 1_000_000_000);
    MediaTime::from_nanos(secs.saturating_mul(times).saturating_mul(1_000_000_000))
}

/// A duration with exactly five decimals, rounded to nearest (`EXTINF`, part `DURATION`).
struct Extinf(MediaTime);

impl std::fmt::Display for Extinf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = (u64::try_from(self.0.as_nanos()).unwrap_or(0) + 5_000) / 10_000;
        write!(f, "{}.{:05}", units / 100_000, units % 100_000)
    }
}

/// A duration attribute, without trailing zeros (`PART-HOLD-BACK=1.5`), to 10 µs.
struct Decimal(MediaTime);

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = ceil_10us(self.0);
        let (whole, mut frac) = (units / 100_000, units % 100_000);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut digits = 5;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{whole}.{frac:0digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(Extinf(MediaTime::from_millis(2000)).to_string(), "2.00000");
        assert_eq!(
            Extinf(MediaTime::from_nanos(2_002_002_000)).to_string(),
            "2.00200"
        );
        assert_eq!(
            Extinf(MediaTime::from_nanos(33_366_667)).to_string(),
            "0.03337"
        );
        assert_eq!(Decimal(MediaTime::from_millis(1500)).to_string(), "1.5");
        assert_eq!(Decimal(MediaTime::from_millis(12_000)).to_string(), "12");
        assert_eq!(
            Decimal(MediaTime::from_nanos(1_001_000)).to_string(),
            "0.00101"
        );
        assert_eq!(
            Decimal(MediaTime::from_nanos(1_000_001)).to_string(),
            "0.00101"
        );
        assert_eq!(ceil_secs(MediaTime::from_millis(2000)), 2);
        assert_eq!(ceil_secs(MediaTime::from_millis(2001)), 3);
        assert_eq!(ceil_secs(MediaTime::from_millis(-5)), 0);
        assert_eq!(round_secs(MediaTime::from_millis(2006)), 2);
        assert_eq!(round_secs(MediaTime::from_millis(2499)), 2);
        assert_eq!(round_secs(MediaTime::from_millis(2500)), 3);
        assert_eq!(round_secs(MediaTime::from_millis(-5)), 0);
    }
}
