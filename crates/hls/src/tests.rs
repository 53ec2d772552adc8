//! Tests of the packager and playlist model against the rules of RFC 8216bis.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use media::cmaf::{ChunkKind, CmafChunk};
use media::MediaTime;
use proptest::prelude::*;

use crate::cases::path_cases;
use crate::*;

const T0: u64 = 1_714_564_800; // 2024-05-01T12:00:00Z

fn variant(name: &str, kbps: Option<u32>) -> Variant {
    Variant {
        name: name.into(),
        width: 1280,
        height: 720,
        frame_rate: Some(30.0),
        video_codec: "avc1.64001f".into(),
        audio_codec: Some("mp4a.40.2".into()),
        bitrate_kbps: kbps,
    }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_millis(ms)
}

fn ms(n: i64) -> MediaTime {
    MediaTime::from_millis(n)
}

fn chunk(kind: ChunkKind, pts_ms: i64, dur_ms: i64, size: usize) -> CmafChunk {
    CmafChunk {
        kind,
        data: Bytes::from(vec![kind as u8; size]),
        pts: ms(pts_ms),
        duration: ms(dur_ms),
        independent: kind != ChunkKind::Continuation,
    }
}

/// Feeds one rung: init, then segments given as lists of part durations (ms), with PTS and PDT
/// advancing together from zero.
struct Feed {
    rung: String,
    pts: i64,
}

impl Feed {
    fn new<S: SegmentStore>(p: &mut Packager<S>, rung: &str) -> Feed {
        p.push(rung, chunk(ChunkKind::Init, 0, 0, 100), at(0))
            .unwrap();
        Feed {
            rung: rung.into(),
            pts: 0,
        }
    }

    fn part<S: SegmentStore>(&mut self, p: &mut Packager<S>, start: bool, dur: i64, size: usize) {
        let kind = if start {
            ChunkKind::SegmentStart
        } else {
            ChunkKind::Continuation
        };
        let pdt = at(u64::try_from(self.pts).unwrap());
        p.push(&self.rung, chunk(kind, self.pts, dur, size), pdt)
            .unwrap();
        self.pts += dur;
    }

    fn segment<S: SegmentStore>(&mut self, p: &mut Packager<S>, parts: &[i64], size: usize) {
        for (i, d) in parts.iter().enumerate() {
            self.part(p, i == 0, *d, size);
        }
    }
}

/// What a test needs to read back from rendered playlist text.
#[derive(Debug, Default)]
struct Parsed {
    version: Option<u32>,
    target_duration: Option<u64>,
    media_sequence: Option<u64>,
    discontinuity_sequence: u64,
    part_target: Option<f64>,
    can_skip_until: Option<f64>,
    part_hold_back: Option<f64>,
    skipped: u64,
    /// (uri, EXTINF seconds, PDT text, discontinuity before it)
    segments: Vec<(String, f64, Option<String>, bool)>,
    /// (uri, duration)
    parts: Vec<(String, f64)>,
    preload_hint: Option<String>,
    reports: Vec<String>,
    endlist: bool,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(&[':', ','][..])
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_owned()
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"));
    let (mut extinf, mut pdt, mut disc) = (None, None, false);
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            p.version = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            p.discontinuity_sequence = v.parse().unwrap();
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = Some(attr(line, "PART-TARGET").unwrap().parse().unwrap());
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.can_skip_until = Some(attr(line, "CAN-SKIP-UNTIL").unwrap().parse().unwrap());
            p.part_hold_back = Some(attr(line, "PART-HOLD-BACK").unwrap().parse().unwrap());
        } else if line.starts_with("#EXT-X-SKIP:") {
            p.skipped = attr(line, "SKIPPED-SEGMENTS").unwrap().parse().unwrap();
        } else if line.starts_with("#EXT-X-PART:") {
            p.parts.push((
                unquote(attr(line, "URI").unwrap()),
                attr(line, "DURATION").unwrap().parse().unwrap(),
            ));
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.preload_hint = Some(unquote(attr(line, "URI").unwrap()));
        } else if line.starts_with("#EXT-X-RENDITION-REPORT:") {
            p.reports.push(line.to_owned());
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(v.to_owned());
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if line == "#EXT-X-ENDLIST" {
            p.endlist = true;
        } else if !line.starts_with('#') {
            p.segments
                .push((line.to_owned(), extinf.take().unwrap(), pdt.take(), disc));
            disc = false;
        }
    }
    p
}

fn ll_config() -> PackagerConfig {
    PackagerConfig {
        low_latency: true,
        ..PackagerConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Golden texts

#[test]
fn golden_master() {
    let mut p = Packager::in_memory(
        PackagerConfig::default(),
        vec![
            variant("720p", Some(3000)),
            Variant {
                name: "360p".into(),
                width: 640,
                height: 360,
                frame_rate: Some(30_000.0 / 1001.0),
                video_codec: "avc1.4d401e".into(),
                audio_codec: None,
                bitrate_kbps: Some(800),
            },
            variant("source", None),
        ],
    )
    .unwrap();
    // The source rung gets measured: 2 s segments of 1_000_000 and 1_500_000 bytes.
    let mut f = Feed::new(&mut p, "source");
    f.segment(&mut p, &[2000], 1_000_000);
    f.segment(&mut p, &[2000], 1_500_000);
    f.segment(&mut p, &[2000], 1);
    assert_eq!(
        p.master_playlist(),
        "#EXTM3U\n\
         #EXT-X-VERSION:7\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH=960000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,FRAME-RATE=29.970,CODECS=\"avc1.4d401e\"\n\
         360p/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=3728000,AVERAGE-BANDWIDTH=3128000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
         720p/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=6000000,AVERAGE-BANDWIDTH=5000000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
         source/index.m3u8\n"
    );
}

#[test]
fn golden_master_audio_only() {
    let mut p = Packager::in_memory(
        PackagerConfig::default(),
        vec![Variant {
            name: "source".into(),
            width: 0,
            height: 0,
            frame_rate: None,
            video_codec: String::new(),
            audio_codec: Some("mp4a.40.2".into()),
            bitrate_kbps: None,
        }],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "source");
    f.segment(&mut p, &[2000], 32_000);
    f.segment(&mut p, &[2000], 32_000);
    let master = p.master_playlist();
    assert!(
        master.contains("AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\nsource/index.m3u8\n"),
        "{master}"
    );
    assert!(!master.contains("RESOLUTION"), "{master}");
}

#[test]
fn golden_media() {
    let mut p = Packager::in_memory(
        PackagerConfig {
            window: 3,
            ..PackagerConfig::default()
        },
        vec![variant("720p", Some(3000))],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "720p");
    f.segment(&mut p, &[1000, 1000], 10);
    f.segment(&mut p, &[1001, 1001], 10);
    p.discontinuity("720p").unwrap();
    f.segment(&mut p, &[2500], 10);
    f.segment(&mut p, &[1000, 1000], 10);
    f.segment(&mut p, &[500], 10); // open: not listed
    assert_eq!(
        p.media_playlist("720p", false).unwrap(),
        "#EXTM3U\n\
         #EXT-X-VERSION:7\n\
         #EXT-X-TARGETDURATION:3\n\
         #EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n\
         #EXTINF:2.00200,\n\
         seg-1.m4s\n\
         #EXT-X-DISCONTINUITY\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.002Z\n\
         #EXTINF:2.50000,\n\
         seg-2.m4s\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.502Z\n\
         #EXTINF:2.00000,\n\
         seg-3.m4s\n"
    );
    p.end(at(9000));
    let text = p.media_playlist("720p", false).unwrap();
    assert!(text.ends_with(
        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.502Z\n#EXTINF:0.50000,\nseg-4.m4s\n#EXT-X-ENDLIST\n"
    ));
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2\n"));
}

#[test]
fn golden_low_latency_media() {
    let mut p = Packager::in_memory(
        PackagerConfig {
            window: 2,
            part_segments: 2,
            ..ll_config()
        },
        vec![variant("720p", Some(3000)), variant("360p", Some(800))],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "720p");
    for _ in 0..3 {
        f.segment(&mut p, &[500, 500, 500, 500], 10);
    }
    f.segment(&mut p, &[500, 500], 10);
    let mut g = Feed::new(&mut p, "360p");
    g.segment(&mut p, &[500, 500, 500], 10);
    assert_eq!(
        p.media_playlist("720p", false).unwrap(),
        "#EXTM3U\n\
         #EXT-X-VERSION:9\n\
         #EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12,CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,HOLD-BACK=6\n\
         #EXT-X-PART-INF:PART-TARGET=0.5\n\
         #EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n\
         #EXTINF:2.00000,\n\
         seg-1.m4s\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-2.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-2.1.m4s\"\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-2.2.m4s\"\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-2.3.m4s\"\n\
         #EXTINF:2.00000,\n\
         seg-2.m4s\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-3.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"part-3.1.m4s\"\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-3.2.m4s\"\n\
         #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=0,LAST-PART=2\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Playlist rules

#[test]
fn target_duration_rounds_the_extinf_as_written() {
    // 1.499999999 s is written 1.50000, which a client rounds to 2 (found by the conformance
    // test: a gap of that length under TARGETDURATION:1).
    let mut p = Packager::in_memory(
        PackagerConfig {
            segment_duration: Duration::from_secs(1),
            ..PackagerConfig::default()
        },
        vec![variant("a", None)],
    )
    .unwrap();
    p.push("a", chunk(ChunkKind::Init, 0, 0, 10), at(0))
        .unwrap();
    let seg = CmafChunk {
        duration: MediaTime::from_nanos(1_499_999_999),
        ..chunk(ChunkKind::SegmentStart, 0, 0, 10)
    };
    p.push("a", seg, at(0)).unwrap();
    let next = CmafChunk {
        pts: MediaTime::from_nanos(1_499_999_999),
        ..chunk(ChunkKind::SegmentStart, 0, 1000, 10)
    };
    p.push("a", next, at(1500)).unwrap();
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.segments[0].1, 1.5);
    assert_eq!(pl.target_duration, Some(2));
}

#[test]
fn target_duration_covers_every_extinf_and_never_decreases() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    let mut last_target = 0;
    for d in [
        2000, 2000, 4200, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 1000,
    ] {
        f.segment(&mut p, &[d], 10);
        let pl = parse(&p.media_playlist("a", false).unwrap());
        let target = pl.target_duration.unwrap();
        assert!(target >= last_target, "target duration went down");
        for (uri, extinf, _, _) in &pl.segments {
            assert!(extinf.round() as u64 <= target, "{uri} {extinf} > {target}");
        }
        last_target = target;
    }
    // 4.2 s rounds to 4 (the spec's rule); the segment has long left the window, the target stays.
    assert_eq!(last_target, 4);
}

#[test]
fn media_sequence_slides_forward_with_the_window() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    let mut last = 0;
    for n in 0..20u64 {
        f.segment(&mut p, &[1000, 1000], 10);
        let pl = parse(&p.media_playlist("a", false).unwrap());
        let seq = pl.media_sequence.unwrap();
        assert!(seq >= last);
        last = seq;
        // n + 1 segments started, n complete; at most `window` listed, ending at n - 1.
        assert_eq!(pl.segments.len() as u64, n.min(6));
        for (i, (uri, ..)) in pl.segments.iter().enumerate() {
            assert_eq!(*uri, format!("seg-{}.m4s", seq + i as u64));
        }
    }
    assert_eq!(last, 13);
}

#[test]
fn program_date_time_on_every_segment_and_increasing() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    for _ in 0..10 {
        f.segment(&mut p, &[700, 700, 600], 10);
    }
    let pl = parse(&p.media_playlist("a", false).unwrap());
    let pdts: Vec<String> = pl.segments.iter().map(|s| s.2.clone().unwrap()).collect();
    assert_eq!(pdts.len(), 6);
    // RFC 3339 with fixed widths sorts as text.
    assert!(pdts.windows(2).all(|w| w[0] < w[1]), "{pdts:?}");
    assert_eq!(pdts[0], "2024-05-01T12:00:06.000Z");
}

#[test]
fn whole_segments_are_listed_as_they_are_pushed() {
    let mut p = Packager::in_memory(
        PackagerConfig {
            whole_segments: true,
            ..PackagerConfig::default()
        },
        vec![variant("a", None)],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[2000], 10);
    // Listed at once, not when the next segment starts.
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.segments.len(), 1);
    assert_eq!(pl.segments[0].1, 2.0);
    assert_eq!(p.stats("a").unwrap().segments, 1);
    f.segment(&mut p, &[1900], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.segments.len(), 2);
    assert_eq!(pl.segments[1].1, 1.9);
    // A segment in pieces is not what this mode is for.
    assert_eq!(
        p.push("a", chunk(ChunkKind::Continuation, 3900, 500, 1), at(0)),
        Err(Error::NoOpenSegment("a".into()))
    );
    p.end(at(5000));
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert!(pl.endlist);
    assert_eq!(pl.segments.len(), 2, "ending adds no empty segment");
}

#[test]
fn end_closes_the_open_segment_and_renders_endlist() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[500, 500, 500, 500], 10);
    f.segment(&mut p, &[500], 10);
    assert!(!parse(&p.media_playlist("a", false).unwrap()).endlist);
    assert_eq!(p.ended_at(), None);
    p.end(at(5000));
    p.end(at(9000));
    assert_eq!(p.ended_at(), Some(at(5000)));
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert!(pl.endlist);
    assert_eq!(pl.preload_hint, None);
    assert_eq!(pl.segments.len(), 2);
    assert_eq!(pl.segments[1].1, 0.5);
    assert_eq!(
        p.push("a", chunk(ChunkKind::Continuation, 0, 500, 1), at(0)),
        Err(Error::Ended)
    );
    // Nothing more will come: blocking requests are answered at once, future parts are gone.
    assert_eq!(p.playlist_request("a", 2, Some(0)), Ok(Blocking::Ready));
    assert_eq!(
        p.resource_status(&Resource::Part("a".into(), 2, 0)),
        Ok(ResourceStatus::Gone)
    );
}

#[test]
fn end_without_media_adds_nothing() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    p.end(at(0));
    let text = p.media_playlist("a", false).unwrap();
    assert!(
        text.ends_with("#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-ENDLIST\n"),
        "{text}"
    );
}

#[test]
fn discontinuity_sequence_counts_trimmed_discontinuities() {
    let mut p = Packager::in_memory(
        PackagerConfig {
            window: 2,
            ..PackagerConfig::default()
        },
        vec![variant("a", None)],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[2000], 10);
    p.discontinuity("a").unwrap();
    // The PTS jumps across the discontinuity: segment 0 keeps its summed duration.
    f.pts += 1_000_000;
    f.segment(&mut p, &[2000], 10);
    f.segment(&mut p, &[2000], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.segments[0].1, 2.0);
    assert!(pl.segments[1].3);
    assert_eq!(pl.discontinuity_sequence, 0);
    f.segment(&mut p, &[2000], 10);
    f.segment(&mut p, &[2000], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.discontinuity_sequence, 1);
    assert!(pl.segments.iter().all(|s| !s.3));
}

#[test]
fn new_init_segment_marks_a_discontinuity() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[2000], 10);
    // Same init again: nothing to tell players.
    p.push("a", chunk(ChunkKind::Init, 0, 0, 100), at(0))
        .unwrap();
    f.segment(&mut p, &[2000], 10);
    p.push("a", chunk(ChunkKind::Init, 0, 0, 120), at(0))
        .unwrap();
    f.segment(&mut p, &[2000], 10);
    f.segment(&mut p, &[2000], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    let disc: Vec<bool> = pl.segments.iter().map(|s| s.3).collect();
    assert_eq!(disc, [false, false, true]);
    // The new init has a URI of its own, named where it takes effect; the old one stays.
    assert_eq!(p.fetch(&Resource::Init("a".into(), 0)).unwrap().len(), 100);
    assert_eq!(p.fetch(&Resource::Init("a".into(), 1)).unwrap().len(), 120);
    let text = p.media_playlist("a", false).unwrap();
    let maps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP:"))
        .collect();
    assert_eq!(
        maps,
        [
            "#EXT-X-MAP:URI=\"init.mp4\"",
            "#EXT-X-MAP:URI=\"init-1.mp4\""
        ],
        "{text}"
    );
    let after_disc = text.split("#EXT-X-DISCONTINUITY\n").nth(1).unwrap();
    assert!(
        after_disc.starts_with("#EXT-X-MAP:URI=\"init-1.mp4\"\n"),
        "{text}"
    );
    assert_eq!(
        p.resource_status(&Resource::Init("a".into(), 1)).unwrap(),
        ResourceStatus::Available
    );
    // Once the old segments slide out, the playlist starts with the new init.
    for _ in 0..8 {
        f.segment(&mut p, &[2000], 10);
    }
    let text = p.media_playlist("a", false).unwrap();
    assert!(text.contains("#EXT-X-MAP:URI=\"init-1.mp4\""), "{text}");
    assert!(!text.contains("\"init.mp4\""), "{text}");
}

#[test]
fn segment_duration_prefers_the_pts_difference() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    p.push("a", chunk(ChunkKind::Init, 0, 0, 1), at(0)).unwrap();
    // Chunk durations say 1.999 s; the next segment starts 2.002 s later.
    p.push("a", chunk(ChunkKind::SegmentStart, 0, 1999, 1), at(0))
        .unwrap();
    p.push("a", chunk(ChunkKind::SegmentStart, 2002, 2000, 1), at(2002))
        .unwrap();
    let m = p.media("a").unwrap();
    assert_eq!(m.segments[0].duration, ms(2002));
    // A wild PTS jump without a declared discontinuity falls back to the sum.
    p.push(
        "a",
        chunk(ChunkKind::SegmentStart, 90_000, 2000, 1),
        at(4002),
    )
    .unwrap();
    assert_eq!(p.media("a").unwrap().segments[1].duration, ms(2000));
}

#[test]
fn master_lists_every_rung_with_its_attributes() {
    let names = ["1080p", "720p", "480p", "source"];
    let variants: Vec<Variant> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Variant {
            width: 1920 / (i as u32 + 1),
            height: 1080 / (i as u32 + 1),
            bitrate_kbps: (i < 3).then_some(6000 / (i as u32 + 1)),
            ..variant(n, None)
        })
        .collect();
    let p = Packager::in_memory(PackagerConfig::default(), variants.clone()).unwrap();
    let text = p.master_playlist();
    let mut bandwidths = Vec::new();
    for v in &variants {
        let uri = format!("{}/index.m3u8", v.name);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == uri).expect("listed");
        let inf = lines[at - 1];
        assert!(inf.starts_with("#EXT-X-STREAM-INF:"));
        let res = format!("RESOLUTION={}x{}", v.width, v.height);
        assert!(inf.contains(&res), "{inf}");
        assert!(inf.contains("FRAME-RATE=30.000"));
        assert!(inf.contains("CODECS=\"avc1.64001f,mp4a.40.2\""));
        let bw: u64 = attr(inf, "BANDWIDTH").unwrap().parse().unwrap();
        let avg: u64 = attr(inf, "AVERAGE-BANDWIDTH").unwrap().parse().unwrap();
        assert!(bw >= avg);
        if let Some(k) = v.bitrate_kbps {
            assert_eq!(bw, u64::from(k) * 1200 + 128_000);
            assert_eq!(avg, u64::from(k) * 1000 + 128_000);
        }
        bandwidths.push((at, bw));
    }
    bandwidths.sort();
    assert!(bandwidths.windows(2).all(|w| w[0].1 <= w[1].1), "ascending");
    assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), names.len());
}

// ---------------------------------------------------------------------------------------------
// Window, store, memory

#[test]
fn memory_stays_bounded_over_1000_segments() {
    let config = PackagerConfig {
        low_latency: true,
        ..PackagerConfig::default()
    };
    let (window, grace) = (config.window, config.grace);
    let mut p = Packager::in_memory(config, vec![variant("a", None), variant("b", None)]).unwrap();
    let mut fa = Feed::new(&mut p, "a");
    let mut fb = Feed::new(&mut p, "b");
    let seg_bytes = 4 * 1000;
    for _ in 0..1000 {
        fa.segment(&mut p, &[500, 500, 500, 500], 1000);
        fb.segment(&mut p, &[1000, 1000], 10);
        let held = p.store().bytes_held("a");
        assert!(held <= (window + grace + 1) * seg_bytes + 100, "{held}");
    }
    assert_eq!(p.store().stored_msns("a"), (991..=999).collect::<Vec<_>>());
    // The open segment 999 has all four parts; nothing else is held twice.
    assert_eq!(
        p.store().bytes_held("a"),
        (window + grace + 1) * seg_bytes + 100
    );
    assert_eq!(p.media("a").unwrap().segments.len(), window);
    // Just evicted from the playlist, still served; past the grace, gone.
    let listed_first = p.media("a").unwrap().media_sequence;
    assert_eq!(listed_first, 993);
    let grace_seg = Resource::Segment("a".into(), 991);
    assert_eq!(p.resource_status(&grace_seg), Ok(ResourceStatus::Available));
    assert_eq!(p.fetch(&grace_seg).unwrap().len(), seg_bytes);
    let gone = Resource::Segment("a".into(), 990);
    assert_eq!(p.resource_status(&gone), Ok(ResourceStatus::Gone));
    assert_eq!(p.fetch(&gone), None);
    assert_eq!(p.fetch(&Resource::Part("a".into(), 990, 0)), None);
}

#[test]
fn segments_are_their_parts_concatenated() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    p.push("a", chunk(ChunkKind::Init, 0, 0, 3), at(0)).unwrap();
    let parts: Vec<CmafChunk> = (0..4)
        .map(|i| CmafChunk {
            data: Bytes::from(vec![i as u8; 10 + i]),
            ..chunk(
                if i == 0 {
                    ChunkKind::SegmentStart
                } else {
                    ChunkKind::Continuation
                },
                500 * i as i64,
                500,
                0,
            )
        })
        .collect();
    for c in &parts {
        p.push("a", c.clone(), at(0)).unwrap();
    }
    assert_eq!(p.fetch(&Resource::Segment("a".into(), 0)), None);
    assert_eq!(
        p.resource_status(&Resource::Segment("a".into(), 0)),
        Ok(ResourceStatus::Pending)
    );
    p.push("a", chunk(ChunkKind::SegmentStart, 2000, 500, 7), at(2000))
        .unwrap();
    let whole: Vec<u8> = parts.iter().flat_map(|c| c.data.to_vec()).collect();
    assert_eq!(p.fetch(&Resource::Segment("a".into(), 0)).unwrap(), whole);
    for (i, c) in parts.iter().enumerate() {
        assert_eq!(
            p.fetch(&Resource::Part("a".into(), 0, i as u32)).unwrap(),
            c.data
        );
    }
    assert_eq!(p.fetch(&Resource::Init("a".into(), 0)).unwrap().len(), 3);
    assert_eq!(p.fetch(&Resource::Master), None);
    let s = p.stats("a").unwrap();
    assert_eq!((s.segments, s.parts), (1, 5));
    assert_eq!(s.bytes, 3 + 46 + 7);
    assert_eq!(s.last_segment_duration, Some(ms(2000)));
    assert_eq!(s.average_bitrate(), Some(46 * 8 / 2));
    assert_eq!(s.peak_bitrate, Some(46 * 8 / 2));
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn errors() {
    let v = variant("a", None);
    assert_eq!(
        Packager::in_memory(PackagerConfig::default(), vec![]).unwrap_err(),
        Error::NoVariants
    );
    assert_eq!(
        Packager::in_memory(PackagerConfig::default(), vec![v.clone(), v.clone()]).unwrap_err(),
        Error::DuplicateRung("a".into())
    );
    for bad in ["", "../x", "a/b", "a.b", "ü"] {
        assert_eq!(
            Packager::in_memory(PackagerConfig::default(), vec![variant(bad, None)]).unwrap_err(),
            Error::InvalidRungName(bad.into())
        );
    }
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![v]).unwrap();
    let seg = chunk(ChunkKind::SegmentStart, 0, 1000, 1);
    let cont = chunk(ChunkKind::Continuation, 0, 1000, 1);
    assert_eq!(
        p.push("b", seg.clone(), at(0)),
        Err(Error::UnknownRung("b".into()))
    );
    assert_eq!(
        p.push("a", seg.clone(), at(0)),
        Err(Error::MissingInit("a".into()))
    );
    assert_eq!(
        p.push("a", cont.clone(), at(0)),
        Err(Error::MissingInit("a".into()))
    );
    p.push("a", chunk(ChunkKind::Init, 0, 0, 1), at(0)).unwrap();
    assert_eq!(
        p.push("a", cont.clone(), at(0)),
        Err(Error::NoOpenSegment("a".into()))
    );
    p.push("a", seg, at(0)).unwrap();
    p.push("a", cont, at(0)).unwrap();
    assert_eq!(
        p.media_playlist("zz", false),
        Err(Error::UnknownRung("zz".into()))
    );
    assert!(p.discontinuity("zz").is_err());
    assert!(p.resource_status(&Resource::Init("zz".into(), 0)).is_err());
    // Messages say what to do.
    assert!(Error::MissingInit("a".into()).to_string().contains("init"));
}

// ---------------------------------------------------------------------------------------------
// Blocking reload and resource status

#[test]
fn blocking_requests() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    assert_eq!(p.cursor("a"), Ok(None));
    assert_eq!(p.playlist_request("a", 0, None), Ok(Blocking::Wait));
    assert_eq!(p.playlist_request("a", 3, None), Ok(Blocking::TooFarAhead));
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[500, 500, 500, 500], 10);
    f.segment(&mut p, &[500, 500], 10);
    assert_eq!(
        p.cursor("a"),
        Ok(Some(Cursor {
            msn: 1,
            part: 1,
            last_complete: Some(0)
        }))
    );
    use Blocking::{Ready, Wait};
    let cases = [
        (0, None, Ready),
        (1, None, Wait),
        (1, Some(0), Ready),
        (1, Some(1), Ready),
        (1, Some(2), Wait),
        (0, Some(9), Ready), // a later segment's part satisfies it
        (2, Some(0), Wait),
        (3, None, Wait),
        (3, Some(5), Wait),
        (4, None, Blocking::TooFarAhead),
        (u64::MAX, Some(u32::MAX), Blocking::TooFarAhead),
    ];
    for (msn, part, want) in cases {
        assert_eq!(
            p.playlist_request("a", msn, part),
            Ok(want),
            "{msn} {part:?}"
        );
    }
    use ResourceStatus::*;
    let r = |m, i| Resource::Part("a".into(), m, i);
    let statuses = [
        (Resource::Master, Available),
        (Resource::Media("a".into()), Available),
        (Resource::Init("a".into(), 0), Available),
        (Resource::Segment("a".into(), 0), Available),
        (Resource::Segment("a".into(), 1), Pending),
        (Resource::Segment("a".into(), 3), Pending),
        (Resource::Segment("a".into(), 4), TooFarAhead),
        (r(0, 3), Available),
        (r(0, 4), Gone),
        (r(1, 1), Available),
        (r(1, 2), Pending),
        (r(2, 0), Pending),
        (r(9, 0), TooFarAhead),
    ];
    for (res, want) in statuses {
        assert_eq!(p.resource_status(&res), Ok(want), "{res}");
    }
}

// ---------------------------------------------------------------------------------------------
// Resource paths

#[test]
fn path_table() {
    for case in path_cases() {
        assert_eq!(
            Resource::parse(case.path).ok(),
            case.expect,
            "{:?}",
            case.path
        );
        if let Some(r) = &case.expect {
            assert_eq!(r.to_string(), case.path);
        }
    }
    let long = "a".repeat(MAX_RUNG_NAME_LEN);
    assert!(Resource::parse(&format!("{long}/init.mp4")).is_ok());
    assert!(Resource::parse(&format!("{long}a/init.mp4")).is_err());
    assert!(Resource::Master.is_playlist() && !Resource::Init("a".into(), 0).is_playlist());
    assert_eq!(Resource::Master.rung(), None);
    assert_eq!("a/init.mp4".parse::<Resource>().unwrap().rung(), Some("a"));
}

fn arb_resource() -> impl Strategy<Value = Resource> {
    let rung = "[A-Za-z0-9_-]{1,64}";
    prop_oneof![
        Just(Resource::Master),
        rung.prop_map(Resource::Media),
        (rung, any::<u32>()).prop_map(|(r, v)| Resource::Init(r, v)),
        (rung, any::<u64>()).prop_map(|(r, m)| Resource::Segment(r, m)),
        (rung, any::<u64>(), any::<u32>()).prop_map(|(r, m, i)| Resource::Part(r, m, i)),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = Resource::parse(&s);
    }

    #[test]
    fn parse_never_panics_near_valid(s in "[a-z0-9./%+-]{0,12}(/(index\\.m3u8|init\\.mp4|seg-[0-9+-]{0,22}\\.m4s|part-[0-9.]{0,25}\\.m4s))?") {
        if let Ok(r) = Resource::parse(&s) {
            prop_assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn render_then_parse_round_trips(r in arb_resource()) {
        prop_assert_eq!(Resource::parse(&r.to_string()), Ok(r));
    }
}

// ---------------------------------------------------------------------------------------------
// LL-HLS properties over random part and segment sequences

/// A random stream: per step, (starts a segment?, part duration ms). The first step always
/// starts one.
fn arb_stream() -> impl Strategy<Value = Vec<(bool, i64)>> {
    prop::collection::vec((prop::bool::weighted(0.25), 100i64..1200), 1..80).prop_map(|mut v| {
        v[0].0 = true;
        v
    })
}

fn check_ll_playlist(text: &str) -> Parsed {
    let pl = parse(text);
    let target = pl.target_duration.unwrap();
    let part_target = pl.part_target.unwrap();
    for (uri, d) in &pl.parts {
        assert!(*d <= part_target, "{uri} {d} > PART-TARGET {part_target}");
    }
    for (uri, extinf, pdt, _) in &pl.segments {
        assert!(extinf.round() as u64 <= target, "{uri}");
        assert!(pdt.is_some());
    }
    assert!(pl.part_hold_back.unwrap() >= 3.0 * part_target - 1e-9);
    assert!(pl.can_skip_until.unwrap() >= 6.0 * target as f64);
    assert_eq!(pl.version, Some(9));
    pl
}

proptest! {
    // Each case renders a playlist per chunk; 64 cases keep a debug run to a few seconds.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Part target covers every part; every preload hint names the next part, or the open
    /// segment's next part when that segment ends without it (the part is then Gone at once).
    #[test]
    fn ll_parts_and_hints(stream in arb_stream()) {
        let mut p = Packager::in_memory(ll_config(), vec![variant("a", None), variant("b", None)]).unwrap();
        let mut f = Feed::new(&mut p, "a");
        let mut hints: Vec<Resource> = Vec::new();
        let mut produced: Vec<(u64, u32)> = Vec::new();
        for (start, dur) in &stream {
            let hint = parse(&p.media_playlist("a", false).unwrap()).preload_hint;
            let dropped = p.stats("a").unwrap().run_on_parts_dropped;
            f.part(&mut p, *start, *dur, 5);
            // A continuation after an early close (at a short part) is dropped: nothing was
            // produced.
            if p.stats("a").unwrap().run_on_parts_dropped > dropped {
                continue;
            }
            hints.push(Resource::parse(&format!("a/{}", hint.unwrap())).unwrap());
            let c = p.cursor("a").unwrap().unwrap();
            produced.push((c.msn, c.part));
            let text = p.media_playlist("a", false).unwrap();
            let pl = check_ll_playlist(&text);
            // The newest part produced is the last one listed.
            let (m, i) = *produced.last().unwrap();
            prop_assert_eq!(pl.parts.last().map(|x| x.0.clone()), Some(format!("part-{m}.{i}.m4s")));
            // Rendition reports for the other rung only.
            prop_assert!(pl.reports.is_empty());
        }
        // hints[k] was rendered before produced[k].
        for (k, hint) in hints.iter().enumerate() {
            let Resource::Part(_, hm, hi) = hint.clone() else { unreachable!() };
            let next = produced[k];
            if (hm, hi) == next {
                continue;
            }
            // Never a part that comes later: only the next one, or one that never comes.
            prop_assert!(!produced[k..].contains(&(hm, hi)), "{:?} came later", hint);
            let status = p.resource_status(hint).unwrap();
            prop_assert!(status == ResourceStatus::Gone, "{:?} {:?}", hint, status);
        }
    }

    /// With a regular cadence the hint names the part that comes next, from the first part on,
    /// when each segment ends on a short part (the segment is then closed with it). When a
    /// segment ends on a full-length part, the hint after it names that segment's next part,
    /// which never comes and is Gone once the next segment starts.
    #[test]
    fn ll_hint_on_regular_cadence(parts_per_segment in 1usize..8, part_ms in 200i64..1000, last_short in any::<bool>(), segments in 2usize..12) {
        let last_ms = if last_short { part_ms / 2 } else { part_ms };
        let config = PackagerConfig {
            segment_duration: Duration::from_millis((part_ms * (parts_per_segment as i64 - 1) + last_ms) as u64),
            part_target: Duration::from_millis(part_ms as u64),
            ..ll_config()
        };
        let mut p = Packager::in_memory(config, vec![variant("a", None)]).unwrap();
        let mut f = Feed::new(&mut p, "a");
        for _ in 0..segments {
            for i in 0..parts_per_segment {
                let hint = parse(&p.media_playlist("a", false).unwrap()).preload_hint.unwrap();
                let last = i + 1 == parts_per_segment;
                let dur = if last { last_ms } else { part_ms };
                f.part(&mut p, i == 0, dur, 5);
                let pl = parse(&p.media_playlist("a", false).unwrap());
                let newest = pl.parts.last().unwrap().0.clone();
                if hint == newest {
                    prop_assert!(i > 0 || last_short || f.pts == dur, "{} at a cut", hint);
                } else {
                    prop_assert!(i == 0 && !last_short, "{} {}", hint, newest);
                    let gone = Resource::parse(&format!("a/{hint}")).unwrap();
                    prop_assert_eq!(p.resource_status(&gone).unwrap(), ResourceStatus::Gone);
                }
                // A short last part closes its segment at once.
                prop_assert_eq!(p.media("a").unwrap().partial.is_none(), last && last_short);
            }
        }
    }

    /// A delta update skips only segments that end at least CAN-SKIP-UNTIL before the end,
    /// skips a prefix, and lists the rest exactly as the full playlist does.
    #[test]
    fn skip_honours_can_skip_until(durs in prop::collection::vec(500i64..6000, 1..60), window in 1usize..40) {
        let mut p = Packager::in_memory(PackagerConfig { window, ..ll_config() }, vec![variant("a", None)]).unwrap();
        let mut f = Feed::new(&mut p, "a");
        for d in &durs {
            f.segment(&mut p, &[*d], 5);
        }
        let full = check_ll_playlist(&p.media_playlist("a", false).unwrap());
        let delta = check_ll_playlist(&p.media_playlist("a", true).unwrap());
        prop_assert_eq!(full.skipped, 0);
        let n = delta.skipped as usize;
        prop_assert_eq!(&full.segments[n..], &delta.segments[..]);
        prop_assert_eq!(full.media_sequence, delta.media_sequence);
        let until = delta.can_skip_until.unwrap();
        // Duration from the end of segment i to the end of the last complete segment.
        let after = |i: usize| full.segments[i + 1..].iter().map(|s| s.1).sum::<f64>();
        for i in 0..n {
            prop_assert!(after(i) >= until - 1e-6);
        }
        if n < full.segments.len() {
            prop_assert!(after(n) < until + 1e-6, "could have skipped more");
        }
    }
}

#[test]
fn skip_on_a_long_window() {
    let mut p = Packager::in_memory(
        PackagerConfig {
            window: 20,
            ..ll_config()
        },
        vec![variant("a", None)],
    )
    .unwrap();
    let mut f = Feed::new(&mut p, "a");
    for _ in 0..21 {
        f.segment(&mut p, &[1000, 1000], 5);
    }
    // 20 listed segments of 2 s, CAN-SKIP-UNTIL 12 s: segments 0..14 end ≥ 12 s before the end.
    let text = p.media_playlist("a", true).unwrap();
    assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n"), "{text}");
    let pl = parse(&text);
    assert_eq!(pl.segments.len(), 6);
    assert_eq!(pl.segments[0].0, "seg-14.m4s");
    // Plain HLS ignores skip requests.
    let mut q = Packager::in_memory(
        PackagerConfig {
            window: 20,
            ..PackagerConfig::default()
        },
        vec![variant("a", None)],
    )
    .unwrap();
    let mut g = Feed::new(&mut q, "a");
    for _ in 0..21 {
        g.segment(&mut q, &[1000, 1000], 5);
    }
    assert!(!q.media_playlist("a", true).unwrap().contains("SKIP"));
}

#[test]
fn part_target_grows_with_a_long_part() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[500, 733], 5);
    let pl = check_ll_playlist(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.part_target, Some(0.733));
}

#[test]
fn parts_listed_for_the_newest_segments_only() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    for _ in 0..8 {
        f.segment(&mut p, &[500, 500, 500, 500], 5);
    }
    let pl = parse(&p.media_playlist("a", false).unwrap());
    // part_segments = 3: the open segment 7 and complete segments 5 and 6.
    let msns: std::collections::BTreeSet<&str> = pl
        .parts
        .iter()
        .map(|(u, _)| u.split('.').next().unwrap())
        .collect();
    assert_eq!(
        msns.into_iter().collect::<Vec<_>>(),
        ["part-5", "part-6", "part-7"]
    );
}

#[test]
fn rendition_reports_name_the_other_rungs() {
    let mut p = Packager::in_memory(
        ll_config(),
        vec![
            variant("hi", None),
            variant("mid", None),
            variant("lo", None),
        ],
    )
    .unwrap();
    let mut hi = Feed::new(&mut p, "hi");
    let mut lo = Feed::new(&mut p, "lo");
    hi.segment(&mut p, &[500, 500], 5);
    lo.segment(&mut p, &[500, 500, 500, 500], 5);
    lo.segment(&mut p, &[500], 5);
    let pl = parse(&p.media_playlist("hi", false).unwrap());
    // "mid" has nothing yet, so it has no report.
    assert_eq!(
        pl.reports,
        ["#EXT-X-RENDITION-REPORT:URI=\"../lo/index.m3u8\",LAST-MSN=1,LAST-PART=0"]
    );
}

/// A store that records every call, to check what the packager writes through the trait.
#[derive(Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl SegmentStore for Recorder {
    fn put_init(&mut self, rung: &str, version: u32, data: Bytes) {
        self.0
            .lock()
            .unwrap()
            .push(format!("init {rung} {version} {}", data.len()));
    }
    fn put_part(&mut self, rung: &str, msn: u64, part: u32, data: Bytes) {
        let n = data.len();
        self.0
            .lock()
            .unwrap()
            .push(format!("part {rung} {msn}.{part} {n}"));
    }
    fn put_segment(&mut self, rung: &str, msn: u64, data: Bytes) {
        let n = data.len();
        self.0
            .lock()
            .unwrap()
            .push(format!("segment {rung} {msn} {n}"));
    }
    fn evict(&mut self, rung: &str, msn: u64) {
        self.0.lock().unwrap().push(format!("evict {rung} {msn}"));
    }
    fn clear(&mut self, rung: &str) {
        self.0.lock().unwrap().push(format!("clear {rung}"));
    }
    fn init(&self, _: &str, _: u32) -> Option<Bytes> {
        None
    }
    fn segment(&self, _: &str, _: u64) -> Option<Bytes> {
        None
    }
    fn part(&self, _: &str, _: u64, _: u32) -> Option<Bytes> {
        None
    }
}

#[test]
fn writes_go_through_the_injected_store() {
    fn assert_send<T: Send>(_: &T) {}
    let log = std::sync::Arc::default();
    let store: Box<dyn SegmentStore> = Box::new(Recorder(std::sync::Arc::clone(&log)));
    let config = PackagerConfig {
        window: 1,
        grace: 1,
        ..PackagerConfig::default()
    };
    let mut p = Packager::new(config, vec![variant("a", None)], store).unwrap();
    assert_send(&p);
    let mut f = Feed::new(&mut p, "a");
    for _ in 0..3 {
        f.segment(&mut p, &[1000, 1000], 4);
    }
    p.end(at(6000));
    p.clear_store();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "init a 0 100",
            "part a 0.0 4",
            "part a 0.1 4",
            "segment a 0 8",
            "part a 1.0 4",
            "part a 1.1 4",
            "segment a 1 8",
            "part a 2.0 4",
            "part a 2.1 4",
            "segment a 2 8",
            "evict a 0",
            "clear a",
        ]
    );
}

#[test]
fn first_msn_continues_numbering_for_a_new_publish() {
    let config = PackagerConfig {
        first_msn: 100,
        ..PackagerConfig::default()
    };
    let mut p = Packager::in_memory(config, vec![variant("a", None)]).unwrap();
    assert_eq!(p.next_msn(), 100);
    // Nothing yet: the first segment is pending, not "too far ahead".
    assert_eq!(p.playlist_request("a", 100, None).unwrap(), Blocking::Wait);
    assert_eq!(
        p.playlist_request("a", 103, None).unwrap(),
        Blocking::TooFarAhead
    );
    let mut f = Feed::new(&mut p, "a");
    for _ in 0..3 {
        f.segment(&mut p, &[2000], 10);
    }
    let text = p.media_playlist("a", false).unwrap();
    let pl = parse(&text);
    assert_eq!(pl.media_sequence, Some(100));
    assert!(text.contains("seg-100.m4s"), "{text}");
    assert!(!text.contains("seg-0.m4s"), "{text}");
    assert_eq!(p.next_msn(), 103);
}

#[test]
fn each_rung_can_continue_its_own_numbering() {
    let config = PackagerConfig {
        first_msn: 101,
        first_msn_of: vec![("a".into(), 100), ("gone".into(), 7)],
        ..PackagerConfig::default()
    };
    let mut p = Packager::in_memory(config, vec![variant("a", None), variant("b", None)]).unwrap();
    assert_eq!(
        p.next_msns(),
        vec![("a".to_owned(), 100), ("b".to_owned(), 101)]
    );
    assert_eq!(p.next_msn(), 101);
    let mut fa = Feed::new(&mut p, "a");
    fa.segment(&mut p, &[2000], 10);
    let mut fb = Feed::new(&mut p, "b");
    fb.segment(&mut p, &[2000], 10);
    assert_eq!(
        parse(&p.media_playlist("a", false).unwrap()).media_sequence,
        Some(100)
    );
    assert_eq!(
        parse(&p.media_playlist("b", false).unwrap()).media_sequence,
        Some(101)
    );
    assert_eq!(
        p.next_msns(),
        vec![("a".to_owned(), 101), ("b".to_owned(), 102)]
    );
}

#[test]
fn a_paused_stream_continues_the_same_playlist_after_a_discontinuity() {
    let mut p = Packager::in_memory(ll_config(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[500, 500], 10);
    f.segment(&mut p, &[500, 500], 10);
    // The publisher leaves mid-way through segment 1: it is closed, and nothing ends.
    p.pause();
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert!(!pl.endlist, "a pause is not the end");
    assert_eq!(pl.segments.len(), 2, "the open segment was closed");
    assert_eq!(p.ended_at(), None);
    assert_eq!(pl.preload_hint.as_deref(), Some("part-2.0.m4s"));
    // Pausing twice changes nothing.
    p.pause();
    assert_eq!(
        parse(&p.media_playlist("a", false).unwrap()).segments.len(),
        2
    );
    // A player's reload for the closed segment's next part learns at once that the segment is
    // complete (nothing more comes of it); one for the next segment waits for the publisher.
    assert_eq!(
        p.playlist_request("a", 1, Some(2)).unwrap(),
        Blocking::Ready
    );
    assert_eq!(p.playlist_request("a", 2, Some(0)).unwrap(), Blocking::Wait);

    // A new publish: its timeline starts again at zero, with a new init segment.
    p.push("a", chunk(ChunkKind::Init, 0, 0, 120), at(60_000))
        .unwrap();
    let mut g = Feed {
        rung: "a".into(),
        pts: 0,
    };
    g.segment(&mut p, &[500, 500], 10);
    g.segment(&mut p, &[500, 500], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    let msns: Vec<String> = pl.segments.iter().map(|s| s.0.clone()).collect();
    assert_eq!(msns, ["seg-0.m4s", "seg-1.m4s", "seg-2.m4s"]);
    // Media again: no longer paused, a part to come is waited for.
    assert_eq!(p.playlist_request("a", 3, Some(9)).unwrap(), Blocking::Wait);
    let marked: Vec<bool> = pl.segments.iter().map(|s| s.3).collect();
    assert_eq!(
        marked,
        [false, false, true],
        "one discontinuity, before the new publish"
    );
    assert!(!pl.endlist);
}

#[test]
fn discontinuity_sequence_starts_where_configured_and_only_grows() {
    let config = PackagerConfig {
        window: 2,
        first_msn: 500,
        first_discontinuity_sequence: 500,
        ..PackagerConfig::default()
    };
    let mut p = Packager::in_memory(config, vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[2000], 10);
    f.segment(&mut p, &[2000], 10);
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(pl.media_sequence, Some(500));
    assert_eq!(pl.discontinuity_sequence, 500);
    p.discontinuity("a").unwrap();
    for _ in 0..4 {
        f.segment(&mut p, &[2000], 10);
    }
    let pl = parse(&p.media_playlist("a", false).unwrap());
    assert_eq!(
        pl.discontinuity_sequence, 501,
        "the trimmed discontinuity counts"
    );
    assert_eq!(p.next_discontinuity_sequence(), 502);
    p.discontinuity("a").unwrap();
    assert_eq!(
        p.next_discontinuity_sequence(),
        503,
        "a pending one counts too"
    );
}

#[test]
fn a_following_packager_starts_above_the_init_versions_used() {
    let mut p = Packager::in_memory(PackagerConfig::default(), vec![variant("a", None)]).unwrap();
    let mut f = Feed::new(&mut p, "a");
    f.segment(&mut p, &[2000], 10);
    p.push("a", chunk(ChunkKind::Init, 0, 0, 120), at(0))
        .unwrap();
    assert_eq!(p.next_init_version(), 2);
    let config = PackagerConfig {
        first_init_version: p.next_init_version(),
        ..PackagerConfig::default()
    };
    let mut q = Packager::in_memory(config, vec![variant("a", None)]).unwrap();
    let mut g = Feed::new(&mut q, "a");
    g.segment(&mut q, &[2000], 10);
    let text = q.media_playlist("a", false).unwrap();
    assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4\""), "{text}");
    assert!(q.fetch(&Resource::Init("a".into(), 2)).is_some());
    assert!(q.fetch(&Resource::Init("a".into(), 0)).is_none());
}

/// An LL-HLS packager of two rungs, `hi` and `lo`, with their init segments in.
fn hi_and_lo() -> (Packager, Feed, Feed) {
    let mut p = Packager::in_memory(
        ll_config(),
        vec![variant("hi", Some(3000)), variant("lo", Some(800))],
    )
    .unwrap();
    let hi = Feed::new(&mut p, "hi");
    let lo = Feed::new(&mut p, "lo");
    (p, hi, lo)
}

#[test]
fn a_shed_rung_lists_gaps_in_step_with_the_others_and_leaves_the_master() {
    let (mut p, mut hi, mut lo) = hi_and_lo();
    hi.segment(&mut p, &[500, 500, 500, 500], 1000);
    lo.segment(&mut p, &[500, 500, 500, 500], 300);
    // `hi` is shed from 2 s on: its open segment ends there at once, then two gap segments,
    // while `lo` goes on.
    p.set_shed("hi", true).unwrap();
    p.end_segment("hi", ms(2000)).unwrap();
    assert_eq!(p.cursor("hi").unwrap().unwrap().last_complete, Some(0));
    assert!(p.is_shed("hi").unwrap());
    assert!(!p.master_playlist().contains("hi/index.m3u8"));
    assert!(p.master_playlist().contains("lo/index.m3u8"));
    for i in 0..2 {
        lo.segment(&mut p, &[500, 500, 500, 500], 300);
        p.gap(
            "hi",
            ms(2000 + i * 2000),
            ms(2000),
            at(2000 + i as u64 * 2000),
        )
        .unwrap();
    }
    let text = p.media_playlist("hi", false).unwrap();
    let parsed = parse(&text);
    // The real segment closed at the gap's start, with its full 2 s.
    assert_eq!(
        parsed.segments[0],
        ("seg-0.m4s".into(), 2.0, parsed.segments[0].2.clone(), false)
    );
    assert_eq!(text.matches("#EXT-X-GAP\n").count(), 2, "{text}");
    assert!(
        text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg-1.m4s\n"),
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg-2.m4s\n"),
        "{text}"
    );
    // No part is hinted while the next segment of a shed rung is a gap.
    assert!(!text.contains("PRELOAD-HINT"), "{text}");
    // A gap's URI is gone; a blocking request for it is answered.
    assert_eq!(
        p.resource_status(&Resource::Segment("hi".into(), 2))
            .unwrap(),
        ResourceStatus::Gone
    );
    assert_eq!(p.playlist_request("hi", 2, None).unwrap(), Blocking::Ready);
    // Rendition reports of `lo` still say where `hi` is.
    assert!(p
        .media_playlist("lo", false)
        .unwrap()
        .contains("URI=\"../hi/index.m3u8\",LAST-MSN=2"));
    // Back: real media continues with the next number, in step with `lo`.
    p.set_shed("hi", false).unwrap();
    hi.pts = 6000;
    hi.segment(&mut p, &[500, 500], 1000);
    lo.segment(&mut p, &[500, 500], 300);
    let hi_text = p.media_playlist("hi", false).unwrap();
    assert!(
        hi_text.contains("seg-2.m4s\n#EXT-X-PROGRAM-DATE-TIME"),
        "{hi_text}"
    );
    assert!(hi_text.contains("URI=\"part-3.0.m4s\""), "{hi_text}");
    assert!(p.master_playlist().contains("hi/index.m3u8"));
    // Gap segments count nothing towards the measured bitrate.
    assert_eq!(p.stats("hi").unwrap().segments, 1);
}

#[test]
fn pause_lists_gaps_in_a_rung_left_behind_so_numbers_stay_in_step() {
    let (mut p, mut hi, mut lo) = hi_and_lo();
    hi.segment(&mut p, &[1000, 1000], 1000);
    lo.segment(&mut p, &[1000, 1000], 300);
    p.set_shed("hi", true).unwrap();
    p.gap("hi", ms(2000), ms(2000), at(2000)).unwrap();
    // `lo` makes its next segment, and a shorter last one; the pipeline ends before `hi`'s last
    // gap is reported.
    lo.segment(&mut p, &[1000, 1000], 300);
    lo.segment(&mut p, &[1000, 500], 300);
    p.pause();
    let text = p.media_playlist("hi", false).unwrap();
    assert_eq!(text.matches("#EXT-X-GAP\n").count(), 2, "{text}");
    assert!(
        text.contains("#EXT-X-GAP\n#EXTINF:1.50000,\nseg-2.m4s\n"),
        "{text}"
    );
    // The next publish starts every rung on the same number.
    p.set_shed("hi", false).unwrap();
    hi.pts = 10_000;
    lo.pts = 10_000;
    hi.segment(&mut p, &[1000], 1000);
    lo.segment(&mut p, &[1000], 300);
    assert_eq!(p.cursor("hi").unwrap().unwrap().msn, 3);
    assert_eq!(p.cursor("lo").unwrap().unwrap().msn, 3);
}

#[test]
fn a_rung_described_anew_is_what_the_master_says() {
    let (mut p, mut hi, _) = hi_and_lo();
    hi.segment(&mut p, &[1000, 1000], 100_000);
    hi.segment(&mut p, &[1000, 1000], 100_000);
    assert!(p.master_playlist().contains("RESOLUTION=1280x720"));
    let before = p.stats("hi").unwrap().peak_bitrate;
    assert!(before.is_some());
    p.update_variant(Variant {
        width: 854,
        height: 480,
        ..variant("hi", Some(3000))
    })
    .unwrap();
    let master = p.master_playlist();
    assert!(master.contains("RESOLUTION=854x480"), "{master}");
    assert_eq!(p.stats("hi").unwrap().peak_bitrate, None, "measured anew");
    assert!(p.update_variant(variant("nope", None)).is_err());
}
