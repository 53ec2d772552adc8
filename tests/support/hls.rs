//! Just enough HLS playlist parsing for the end-to-end tests: master variants with their
//! attributes, media segments with their media sequence numbers, durations and dates.
//!
//! Deliberately independent of the `hls` crate: the tests read what a player reads.

use std::collections::BTreeMap;

/// One `#EXT-X-STREAM-INF` entry of a master playlist.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    /// Attribute names as written (`BANDWIDTH`, `RESOLUTION`, ...), values unquoted.
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) uri: String,
}

impl Variant {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// `RESOLUTION=WxH`.
    pub(crate) fn resolution(&self) -> Option<(u32, u32)> {
        let (w, h) = self.attr("RESOLUTION")?.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    }

    pub(crate) fn number(&self, name: &str) -> Option<f64> {
        self.attr(name)?.parse().ok()
    }
}

/// The variants of a master playlist, in order. Panics on a playlist that does not start with
/// `#EXTM3U` or a `STREAM-INF` without a URI line.
pub(crate) fn parse_master(text: &str) -> Vec<Variant> {
    assert!(text.starts_with("#EXTM3U"), "not a playlist:\n{text}");
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let uri = lines
                .next()
                .unwrap_or_else(|| panic!("STREAM-INF without a URI:\n{text}"));
            assert!(!uri.starts_with('#'), "STREAM-INF without a URI:\n{text}");
            out.push(Variant {
                attrs: parse_attributes(list),
                uri: uri.to_owned(),
            });
        }
    }
    out
}

/// An attribute list (`A=1,B="x,y",C=z`), quotes removed.
pub(crate) fn parse_attributes(list: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(name.trim().to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    out
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub(crate) msn: u64,
    /// `#EXTINF` seconds.
    pub(crate) duration: f64,
    /// The `#EXT-X-PROGRAM-DATE-TIME` written right before it, as written.
    pub(crate) pdt: Option<String>,
    pub(crate) uri: String,
    /// Marked `#EXT-X-GAP`: listed, with no media.
    pub(crate) gap: bool,
}

impl Segment {
    /// Its `#EXT-X-PROGRAM-DATE-TIME` in seconds since the epoch, if it has one.
    pub(crate) fn pdt_seconds(&self) -> Option<f64> {
        self.pdt.as_deref().map(pdt_seconds)
    }
}

/// Seconds since the epoch of an `#EXT-X-PROGRAM-DATE-TIME` as Ferrocast writes it
/// (`2026-12-05T00:32:42.443Z`).
pub(crate) fn pdt_seconds(pdt: &str) -> f64 {
    let (date, time) = pdt
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or_else(|| panic!("PROGRAM-DATE-TIME {pdt:?}"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let t: Vec<f64> = time.split(':').map(|x| x.parse().expect("time")).collect();
    // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's `days_from_civil`.
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// A media playlist.
#[derive(Debug, Clone)]
pub(crate) struct MediaPlaylist {
    pub(crate) media_sequence: u64,
    pub(crate) target_duration: Option<u64>,
    pub(crate) map_uri: Option<String>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) ended: bool,
    pub(crate) text: String,
}

impl MediaPlaylist {
    pub(crate) fn first_msn(&self) -> Option<u64> {
        self.segments.first().map(|s| s.msn)
    }

    pub(crate) fn last_msn(&self) -> Option<u64> {
        self.segments.last().map(|s| s.msn)
    }

    /// The segments with media (not `#EXT-X-GAP`).
    pub(crate) fn media(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| !s.gap)
    }

    pub(crate) fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.msn == msn)
    }
}

/// Parses a media playlist (parts, preload hints and other LL-HLS tags are skipped).
pub(crate) fn parse_media(text: &str) -> MediaPlaylist {
    assert!(text.starts_with("#EXTM3U"), "not a playlist:\n{text}");
    let mut pl = MediaPlaylist {
        media_sequence: 0,
        target_duration: None,
        map_uri: None,
        segments: Vec::new(),
        ended: false,
        text: text.to_owned(),
    };
    let mut duration = None;
    let mut pdt = None;
    let mut gap = false;
    let mut skipped = 0u64;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            pl.media_sequence = v.parse().expect("MEDIA-SEQUENCE");
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            pl.target_duration = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            pl.map_uri = parse_attributes(v).get("URI").cloned();
        } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
            skipped = parse_attributes(v)
                .get("SKIPPED-SEGMENTS")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("");
            duration = Some(d.parse::<f64>().expect("EXTINF duration"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(v.to_owned());
        } else if line == "#EXT-X-ENDLIST" {
            pl.ended = true;
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if !line.starts_with('#') {
            let msn = pl.media_sequence + skipped + pl.segments.len() as u64;
            pl.segments.push(Segment {
                msn,
                duration: duration
                    .take()
                    .unwrap_or_else(|| panic!("segment {line} without EXTINF:\n{text}")),
                pdt: pdt.take(),
                uri: line.to_owned(),
                gap: std::mem::take(&mut gap),
            });
        }
    }
    pl
}
