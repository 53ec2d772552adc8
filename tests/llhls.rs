//! End-to-end Low-Latency HLS: a real ffmpeg publish over RTMP into the real binary, checked the
//! way an LL-HLS player and a CDN see it: the playlist tags and their rules, blocking playlist
//! reloads timed against the moment the part appears, `400` for requests too far ahead, blocking
//! part requests, delta updates consistent with the full playlist, cache headers, and hls.js in
//! low-latency mode playing in Debian's headless Chromium without a stall.
//!
//! The ladder is small on purpose (a 640x360 publish, a passthrough `source` rung and one 240p
//! x264 rung): the tests time requests to within a part, and a saturated 2-core machine would
//! make them measure the machine. Tests in this file run one at a time (see [`serial`]).
//!
//! Needs ffmpeg; the browser test also needs node with `npm ci --prefix tests/browser`, hls.js
//! from `npm ci --prefix player` and `/usr/bin/chromium` (or `CHROMIUM`). A missing tool fails
//! with what to run.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::hls::{parse_attributes, parse_media, MediaPlaylist};
use support::{
    browser_report, ffmpeg_publish, player_assets_arg, require_browser_tools, require_tool,
    wait_until, ChildGuard, Server, TempDir,
};

const STREAM: &str = "ll";
const KEY: &str = "e2e-llhls-key";
/// The transcoded rung most checks look at, and the passthrough rung next to it.
const RUNG: &str = "240p";
const OTHER: &str = "source";
const RUNGS: [&str; 2] = [RUNG, OTHER];

/// Two rungs: the source repackaged, and one cheap x264 encode.
const LADDER: &str = support::TWO_RUNG_LADDER;

/// Slack for a loaded 2-core machine on top of a part duration when timing blocking answers.
const SLACK: Duration = Duration::from_millis(250);

/// One LL-HLS test at a time in this binary; a failed test must not block the others.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live stream: the server and its publisher (both killed by PID on drop, publisher first).
struct Live {
    _ffmpeg: ChildGuard,
    server: Server,
    _config: TempDir,
}

impl Live {
    /// Starts the server with the small ladder plus `args`, publishes for `seconds`, and waits
    /// until both rungs list a segment and a part.
    fn start(tag: &str, seconds: u32, args: &[&str]) -> Live {
        require_tool("ffmpeg", "-version");
        let config = TempDir::new(&format!("llhls-{tag}"));
        let path = config.file("ferrocast.toml");
        std::fs::write(&path, LADDER).expect("write config");
        let path = path.display().to_string();
        let stream = format!("{STREAM}={KEY}");
        let mut all = vec![
            "--config",
            &path,
            "--stream",
            &stream,
            "--set",
            "transcode.preset=ultrafast",
            "--set",
            "hls.segment_duration=2s",
            "--set",
            "hls.low_latency=true",
        ];
        all.extend_from_slice(args);
        let server = Server::start(&all);
        let ffmpeg = ffmpeg_publish(&server.dir, tag, &server.rtmp_url(KEY), "640x360", seconds);
        let live = Live {
            _ffmpeg: ffmpeg,
            server,
            _config: config,
        };
        for rung in RUNGS {
            let path = live.path(rung, "index.m3u8");
            wait_until(
                Duration::from_secs(40),
                &format!("{path} with a segment and parts"),
                || {
                    let r = get(live.addr(), &path, &[]);
                    (r.status == 200 && r.text().contains("#EXT-X-PART:")).then_some(())
                },
            );
        }
        live
    }

    fn addr(&self) -> SocketAddr {
        self.server.http
    }

    /// `/live/ll/RUNG/FILE`.
    fn path(&self, rung: &str, file: &str) -> String {
        format!("/live/{STREAM}/{rung}/{file}")
    }

    /// The rung's plain playlist, parsed; asserts 200.
    fn playlist(&self, rung: &str) -> Ll {
        let path = self.path(rung, "index.m3u8");
        let r = get(self.addr(), &path, &[]);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        Ll::parse(&r.text())
    }

    /// Polls the plain playlist every 20 ms until its preload hint moves, which means a part
    /// has just been added: returns that playlist.
    fn fresh_part(&self, rung: &str) -> Ll {
        let first = self.playlist(rung).hint();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pl = self.playlist(rung);
            if pl.hint() != first {
                return pl;
            }
            assert!(
                Instant::now() < deadline,
                "{rung}: no new part within 10 s:\n{}\nserver log:\n{}",
                pl.text,
                self.server.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP with timing and extra headers (the shared helpers send fixed headers only).

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    /// Names lower-cased.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// When the request was written, and when the whole response had been read.
    sent: Instant,
    received: Instant,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn elapsed(&self) -> Duration {
        self.received - self.sent
    }
}

/// `GET path` over a fresh connection (`Connection: close`), bounded by 15 s (longer than the
/// server's blocking timeout of three target durations).
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let timeout = Duration::from_secs(15);
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .unwrap_or_else(|e| panic!("connect to {addr} for GET {path}: {e}"));
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let sent = Instant::now();
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("send GET {path}: {e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read response to GET {path}: {e}"));
    let received = Instant::now();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no header end: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: bad status line in {head:?}"));
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).unwrap_or_else(|| panic!("GET {path}: bad chunked body"));
    }
    Resp {
        status,
        headers,
        body,
        sent,
        received,
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The LL-HLS side of a media playlist (the shared parser skips these tags).

#[derive(Debug, Clone, PartialEq)]
struct Part {
    msn: u64,
    index: u32,
    duration: f64,
    independent: bool,
    uri: String,
    /// The segment line this part was listed under (`None` for the open segment's parts).
    parent: Option<String>,
}

#[derive(Debug, Clone)]
struct Ll {
    media: MediaPlaylist,
    target_duration: f64,
    server_control: Option<BTreeMap<String, String>>,
    part_target: Option<f64>,
    parts: Vec<Part>,
    hint: Option<BTreeMap<String, String>>,
    reports: Vec<BTreeMap<String, String>>,
    skipped: Option<u64>,
    text: String,
}

/// `part-MSN.I.m4s` → (MSN, I).
fn part_name(uri: &str) -> Option<(u64, u32)> {
    let (msn, i) = uri
        .strip_prefix("part-")?
        .strip_suffix(".m4s")?
        .split_once('.')?;
    Some((msn.parse().ok()?, i.parse().ok()?))
}

impl Ll {
    fn parse(text: &str) -> Ll {
        let media = parse_media(text);
        let mut ll = Ll {
            target_duration: media.target_duration.unwrap_or(0) as f64,
            media,
            server_control: None,
            part_target: None,
            parts: Vec::new(),
            hint: None,
            reports: Vec::new(),
            skipped: None,
            text: text.to_owned(),
        };
        let mut pending: Vec<Part> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                ll.server_control = Some(parse_attributes(v));
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                ll.part_target = parse_attributes(v)
                    .get("PART-TARGET")
                    .and_then(|p| p.parse().ok());
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let a = parse_attributes(v);
                let uri = a.get("URI").cloned().unwrap_or_default();
                let (msn, index) = part_name(&uri)
                    .unwrap_or_else(|| panic!("part URI {uri:?} is not part-MSN.I.m4s:\n{text}"));
                pending.push(Part {
                    msn,
                    index,
                    duration: a
                        .get("DURATION")
                        .and_then(|d| d.parse().ok())
                        .unwrap_or_else(|| panic!("EXT-X-PART without DURATION: {line}")),
                    independent: a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
                    uri,
                    parent: None,
                });
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                ll.hint = Some(parse_attributes(v));
            } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
                ll.reports.push(parse_attributes(v));
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                ll.skipped = parse_attributes(v)
                    .get("SKIPPED-SEGMENTS")
                    .and_then(|n| n.parse().ok());
            } else if !line.starts_with('#') {
                for mut p in pending.drain(..) {
                    p.parent = Some(line.to_owned());
                    ll.parts.push(p);
                }
            }
        }
        ll.parts.append(&mut pending);
        ll
    }

    /// The preload hint's part, as (MSN, index).
    fn hint(&self) -> Option<(u64, u32)> {
        let uri = self.hint.as_ref()?.get("URI")?;
        part_name(uri)
    }

    /// The newest listed part, as (MSN, index).
    fn newest_part(&self) -> Option<(u64, u32)> {
        self.parts.last().map(|p| (p.msn, p.index))
    }

    fn lists_part(&self, msn: u64, index: u32) -> bool {
        self.parts.iter().any(|p| p.msn == msn && p.index == index)
    }

    fn control(&self, name: &str) -> Option<&str> {
        self.server_control.as_ref()?.get(name).map(String::as_str)
    }

    fn control_secs(&self, name: &str) -> Option<f64> {
        self.control(name)?.parse().ok()
    }
}

/// `2026-11-28T17:13:03.419Z` (or with `+00:00`) → the time it names. Enough of RFC 3339 for
/// what the server writes: UTC, optional fraction.
fn parse_pdt(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_secs_f64(frac))
}

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn live_playlist_has_the_low_latency_tags() {
    let _serial = serial();
    let live = Live::start("tags", 60, &[]);
    // Two complete segments, so parts of a complete segment and of the open one are both listed.
    wait_until(Duration::from_secs(20), "three segments", || {
        (live.playlist(RUNG).media.segments.len() >= 3).then_some(())
    });
    for rung in RUNGS {
        let pl = live.playlist(rung);
        let ctx = || format!("{rung}:\n{}", pl.text);
        let td = pl.target_duration;
        assert!(td >= 2.0, "TARGETDURATION {td}: {}", ctx());

        let pt = pl
            .part_target
            .unwrap_or_else(|| panic!("no #EXT-X-PART-INF:PART-TARGET: {}", ctx()));
        assert!(
            pt > 0.0 && pt < td,
            "PART-TARGET {pt} not in (0, {td}): {}",
            ctx()
        );
        assert!(pl.server_control.is_some(), "no SERVER-CONTROL: {}", ctx());
        assert_eq!(
            pl.control("CAN-BLOCK-RELOAD"),
            Some("YES"),
            "CAN-BLOCK-RELOAD: {}",
            ctx()
        );
        let phb = pl
            .control_secs("PART-HOLD-BACK")
            .unwrap_or_else(|| panic!("no PART-HOLD-BACK: {}", ctx()));
        assert!(
            phb >= 3.0 * pt - 1e-3,
            "PART-HOLD-BACK {phb} < 3 × PART-TARGET {pt}: {}",
            ctx()
        );
        let hb = pl
            .control_secs("HOLD-BACK")
            .unwrap_or_else(|| panic!("no HOLD-BACK: {}", ctx()));
        assert!(
            hb >= 3.0 * td - 1e-3,
            "HOLD-BACK {hb} < 3 × TARGETDURATION {td}: {}",
            ctx()
        );
        let skip = pl
            .control_secs("CAN-SKIP-UNTIL")
            .unwrap_or_else(|| panic!("no CAN-SKIP-UNTIL: {}", ctx()));
        assert!(
            skip >= 6.0 * td - 1e-3,
            "CAN-SKIP-UNTIL {skip} < 6 × TARGETDURATION {td}: {}",
            ctx()
        );

        assert!(pl.parts.len() >= 6, "few parts listed: {}", ctx());
        for (i, p) in pl.parts.iter().enumerate() {
            assert!(
                p.duration > 0.0 && p.duration <= pt + 1e-6,
                "{}: DURATION {} > PART-TARGET {pt}: {}",
                p.uri,
                p.duration,
                ctx()
            );
            // Parts of one segment are numbered from 0 in order; a segment begins with part 0,
            // which must be independent (it starts with the segment's keyframe).
            if let Some(prev) = i.checked_sub(1).map(|j| &pl.parts[j]) {
                let expected = if prev.msn == p.msn {
                    (prev.msn, prev.index + 1)
                } else {
                    (prev.msn + 1, 0)
                };
                assert_eq!(
                    (p.msn, p.index),
                    expected,
                    "{} out of order: {}",
                    p.uri,
                    ctx()
                );
            }
            if p.index == 0 {
                assert!(
                    p.independent,
                    "{} begins a segment without INDEPENDENT=YES: {}",
                    p.uri,
                    ctx()
                );
            }
            if let Some(parent) = &p.parent {
                assert_eq!(
                    parent,
                    &format!("seg-{}.m4s", p.msn),
                    "{} listed under another segment: {}",
                    p.uri,
                    ctx()
                );
            }
            // RFC 8216bis 4.4.4.9: every part but a segment's last (and independent ones) lasts
            // at least 85 % of PART-TARGET. Only complete segments know their last part.
            let last_of_segment = pl.parts.get(i + 1).is_none_or(|n| n.msn != p.msn);
            if p.parent.is_some() && !last_of_segment && !p.independent {
                assert!(
                    p.duration >= 0.85 * pt - 1e-3,
                    "{} lasts {} < 85 % of PART-TARGET {pt}: {}",
                    p.uri,
                    p.duration,
                    ctx()
                );
            }
        }
        // The parts of a complete segment add up to its EXTINF.
        for seg in &pl.media.segments {
            let parts: Vec<&Part> = pl.parts.iter().filter(|p| p.msn == seg.msn).collect();
            if !parts.is_empty() {
                let sum: f64 = parts.iter().map(|p| p.duration).sum();
                assert!(
                    (sum - seg.duration).abs() < 0.01,
                    "parts of {} sum to {sum}, EXTINF {}: {}",
                    seg.uri,
                    seg.duration,
                    ctx()
                );
            }
        }

        let hint = pl
            .hint
            .as_ref()
            .unwrap_or_else(|| panic!("no EXT-X-PRELOAD-HINT: {}", ctx()));
        assert_eq!(
            hint.get("TYPE").map(String::as_str),
            Some("PART"),
            "{}",
            ctx()
        );
        let (hm, hi) = pl.hint().expect("hint URI part-MSN.I.m4s");
        let (nm, ni) = pl.newest_part().expect("parts");
        assert!(
            (hm, hi) == (nm, ni + 1) || (hm, hi) == (nm + 1, 0),
            "the hint part-{hm}.{hi} does not follow the newest part part-{nm}.{ni}: {}",
            ctx()
        );

        // One report per other rung, pointing at it, near this rung's newest part.
        let others: Vec<&str> = RUNGS.iter().copied().filter(|r| *r != rung).collect();
        assert_eq!(
            pl.reports.len(),
            others.len(),
            "RENDITION-REPORTs: {}",
            ctx()
        );
        for other in others {
            let uri = format!("../{other}/index.m3u8");
            let report = pl
                .reports
                .iter()
                .find(|r| r.get("URI") == Some(&uri))
                .unwrap_or_else(|| panic!("no RENDITION-REPORT for {uri}: {}", ctx()));
            let last_msn: u64 = report
                .get("LAST-MSN")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("report without LAST-MSN: {}", ctx()));
            assert!(
                report
                    .get("LAST-PART")
                    .is_some_and(|v| v.parse::<u32>().is_ok()),
                "report without LAST-PART: {}",
                ctx()
            );
            assert!(
                last_msn.abs_diff(nm) <= 1,
                "{other} reported at {last_msn}, this rung is at {nm}: {}",
                ctx()
            );
        }

        // Media sequence numbers continue per stream from a clock-derived start, so only the
        // playlist says where they begin; the first segment has a date near now.
        let first = &pl.media.segments[0];
        assert_eq!(first.msn, pl.media.media_sequence);
        let pdt = first
            .pdt
            .as_deref()
            .unwrap_or_else(|| panic!("no PROGRAM-DATE-TIME on the first segment: {}", ctx()));
        let date = parse_pdt(pdt).unwrap_or_else(|| panic!("bad PDT {pdt}: {}", ctx()));
        let age = secs_between(SystemTime::now(), date);
        assert!(
            (0.0..60.0).contains(&age),
            "first segment dated {age:.1} s ago: {}",
            ctx()
        );
        // Dates advance with the media: each segment's date is its predecessor's plus EXTINF.
        for w in pl.media.segments.windows(2) {
            if let (Some(a), Some(b)) = (
                w[0].pdt.as_deref().and_then(parse_pdt),
                w[1].pdt.as_deref().and_then(parse_pdt),
            ) {
                let gap = secs_between(b, a);
                assert!(
                    (gap - w[0].duration).abs() < 0.1,
                    "PDT of {} is {gap:.3} s after {}'s, which lasts {}: {}",
                    w[1].uri,
                    w[0].uri,
                    w[0].duration,
                    ctx()
                );
            }
        }
    }
}

/// Records, every 20 ms, whether the plain playlist lists part (msn, index) yet.
fn watch_for_part(addr: SocketAddr, path: String, msn: u64, index: u32) -> mpsc::Receiver<Resp> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let r = get(addr, &path, &[]);
            let seen = r.status == 200 && Ll::parse(&r.text()).newest_part() >= Some((msn, index));
            if tx.send(r).is_err() || seen {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    rx
}

#[test]
fn blocking_reload_answers_when_the_part_appears_and_not_before() {
    let _serial = serial();
    let live = Live::start("block", 60, &[]);
    let plain = live.path(RUNG, "index.m3u8");
    let mut good = 0;
    let mut report = Vec::new();
    for attempt in 0..8 {
        if good == 3 {
            break;
        }
        // Right after a fresh part, so the next one is about a part duration away.
        let pl = live.fresh_part(RUNG);
        let pt = Duration::from_secs_f64(pl.part_target.expect("PART-TARGET"));
        let (msn, index) = pl.hint().expect("a preload hint");
        let polls = watch_for_part(live.addr(), plain.clone(), msn, index);
        let blocking = get(
            live.addr(),
            &format!("{plain}?_HLS_msn={msn}&_HLS_part={index}"),
            &[],
        );
        let polls: Vec<Resp> = polls.iter().collect();
        assert_eq!(blocking.status, 200, "blocking reload: {}", blocking.text());
        let answer = Ll::parse(&blocking.text());
        if !answer.lists_part(msn, index) {
            // The hint guessed a part of a segment that closed instead; the request is rightly
            // answered with the next segment's first part. Not what this test times.
            assert!(
                answer.newest_part() > Some((msn, index)),
                "the answer to _HLS_msn={msn}&_HLS_part={index} lists neither that part nor a later one:\n{}",
                answer.text
            );
            eprintln!("attempt {attempt}: hinted part-{msn}.{index} never came; retrying");
            continue;
        }
        // Where the part appeared: after the last poll that did not list it was sent, and
        // before the first poll that did was answered.
        let first_with = polls
            .iter()
            .position(|r| Ll::parse(&r.text()).newest_part() >= Some((msn, index)))
            .unwrap_or_else(|| panic!("the plain playlist never listed part-{msn}.{index}"));
        let absent_at = (first_with > 0).then(|| polls[first_with - 1].sent);
        let seen_at = polls[first_with].received;
        let waited = blocking.elapsed();
        report.push(format!(
            "part-{msn}.{index}: blocked {waited:?}; answered {:?} after the last poll without it, {:?} after the first poll with it",
            absent_at.map(|a| blocking.received.saturating_duration_since(a)),
            blocking.received.checked_duration_since(seen_at).map_or_else(
                || format!("-{:?}", seen_at - blocking.received),
                |d| format!("{d:?}")
            ),
        ));
        eprintln!("{}", report.last().expect("pushed"));
        assert!(
            waited > Duration::from_millis(50),
            "a request right after a fresh part for the next one returned in {waited:?}: it did not block"
        );
        if let Some(absent_at) = absent_at {
            assert!(
                blocking.received > absent_at,
                "answered before a poll that still lacked part-{msn}.{index} was even sent"
            );
            assert!(
                blocking.received - absent_at <= pt + SLACK,
                "answered {:?} after the part was last seen missing (part target {pt:?}, slack {SLACK:?}): {report:#?}",
                blocking.received - absent_at
            );
        }
        assert!(
            blocking.received <= seen_at + pt + SLACK,
            "answered {:?} after the plain playlist already listed the part: {report:#?}",
            blocking.received - seen_at
        );
        good += 1;
    }
    assert_eq!(
        good, 3,
        "fewer than 3 of 8 hinted parts appeared as hinted: {report:#?}"
    );
}

#[test]
fn requests_too_far_ahead_get_400_at_once() {
    let _serial = serial();
    let live = Live::start("ahead", 60, &[]);
    let pl = live.fresh_part(RUNG);
    let (newest, _) = pl.newest_part().expect("parts");
    let plain = live.path(RUNG, "index.m3u8");
    // Within two segments is not too far: the server holds it until the next segment starts.
    let near = format!("{plain}?_HLS_msn={}&_HLS_part=0", newest + 1);
    let r = get(live.addr(), &near, &[]);
    assert_eq!(r.status, 200, "GET {near}: {}", r.text());
    assert!(r.elapsed() > Duration::from_millis(50), "{:?}", r.elapsed());
    let (newest, _) = Ll::parse(&r.text()).newest_part().expect("parts");
    for query in [
        format!("_HLS_msn={}", newest + 5),
        format!("_HLS_msn={}&_HLS_part=0", newest + 5),
        format!("_HLS_msn={}&_HLS_part=0&_HLS_skip=YES", newest + 5),
    ] {
        let r = get(live.addr(), &format!("{plain}?{query}"), &[]);
        assert_eq!(r.status, 400, "?{query}: {}", r.text());
        assert!(
            r.elapsed() < Duration::from_millis(500),
            "?{query}: 400 took {:?}",
            r.elapsed()
        );
    }
    let part = live.path(RUNG, &format!("part-{}.0.m4s", newest + 5));
    let r = get(live.addr(), &part, &[]);
    assert_eq!(r.status, 400, "GET {part}: {}", r.text());
    assert!(
        r.elapsed() < Duration::from_millis(500),
        "{:?}",
        r.elapsed()
    );

    // Requests for media two segments ahead are held (a segment and more) and counted while
    // they wait: a playlist reload and a part.
    let (newest, _) = live.playlist(RUNG).newest_part().expect("parts");
    let addr = live.addr();
    let held: Vec<_> = [
        format!("{plain}?_HLS_msn={}&_HLS_part=0", newest + 2),
        live.path(RUNG, &format!("part-{}.0.m4s", newest + 2)),
    ]
    .into_iter()
    .map(|path| thread::spawn(move || get(addr, &path, &[])))
    .collect();
    let metrics = wait_until(
        Duration::from_secs(2),
        "both requests counted as held",
        || {
            let m = live.server.metrics();
            (m.value("ferrocast_http_held_requests", &[("kind", "playlist")]) >= 1.0
                && m.value("ferrocast_http_held_requests", &[("kind", "part")]) >= 1.0)
                .then_some(m)
        },
    );
    eprintln!(
        "held: {} playlist, {} part",
        metrics.value("ferrocast_http_held_requests", &[("kind", "playlist")]),
        metrics.value("ferrocast_http_held_requests", &[("kind", "part")])
    );
    for h in held {
        // Answered within the blocking bound: with the media (200), or 503 when it took longer
        // than three target durations on a loaded machine; either way no longer held.
        let r = h.join().expect("request thread");
        assert!(
            r.status == 200 || r.status == 503,
            "a held request: {} {}",
            r.status,
            r.text()
        );
    }
    let m = live.server.metrics();
    for kind in ["playlist", "part"] {
        assert_eq!(
            m.value("ferrocast_http_held_requests", &[("kind", kind)]),
            0.0,
            "{kind} requests still counted as held after their answers"
        );
    }
}

#[test]
fn hinted_part_request_blocks_until_the_part_exists() {
    let _serial = serial();
    let live = Live::start("part", 60, &[]);
    let mut done = 0;
    for _ in 0..6 {
        if done == 2 {
            break;
        }
        let pl = live.fresh_part(RUNG);
        let pt = Duration::from_secs_f64(pl.part_target.expect("PART-TARGET"));
        let (msn, index) = pl.hint().expect("a preload hint");
        let uri = live.path(RUNG, &format!("part-{msn}.{index}.m4s"));
        let r = get(live.addr(), &uri, &[]);
        if r.status == 404 {
            // A hinted part of a segment that closed early never exists; the spec allows that.
            eprintln!("{uri}: 404 (the segment closed before this part); retrying");
            continue;
        }
        assert_eq!(r.status, 200, "GET {uri}: {}", r.text());
        assert!(
            r.elapsed() > Duration::from_millis(50) && r.elapsed() <= pt + pt + SLACK,
            "GET {uri} right after a fresh part took {:?} (part target {pt:?})",
            r.elapsed()
        );
        assert_eq!(r.header("content-type"), Some("video/iso.segment"));
        assert!(r.body.len() > 100, "{uri}: {} bytes", r.body.len());
        let boxes = [&b"moof"[..], b"styp", b"prft"];
        assert!(
            boxes.contains(&&r.body[4..8]),
            "{uri} does not start with a moof/styp/prft box: {:?}",
            &r.body[..8]
        );
        // Now listed, and the same bytes when fetched again.
        let after = live.playlist(RUNG);
        assert!(
            after.lists_part(msn, index),
            "{uri} not listed:\n{}",
            after.text
        );
        thread::sleep(Duration::from_millis(500));
        let again = get(live.addr(), &uri, &[]);
        assert_eq!(again.status, 200, "GET {uri} again");
        assert!(again.body == r.body, "{uri} changed between fetches");
        done += 1;
    }
    assert_eq!(done, 2, "hinted parts kept turning out not to exist");
}

#[test]
fn delta_update_skips_old_segments_and_matches_the_full_playlist() {
    let _serial = serial();
    let live = Live::start("delta", 90, &[]);
    let plain = live.path(RUNG, "index.m3u8");
    // CAN-SKIP-UNTIL is 12 s; the 10-segment window holds 20 s once full. Wait until a delta
    // update has something to skip.
    wait_until(
        Duration::from_secs(60),
        "a delta update with EXT-X-SKIP",
        || {
            let r = get(live.addr(), &format!("{plain}?_HLS_skip=YES"), &[]);
            (r.status == 200 && Ll::parse(&r.text()).skipped.is_some_and(|n| n > 0)).then_some(())
        },
    );
    // The same playlist state twice, once whole and once as a delta: a blocking request for the
    // newest part is answered at once, and both answers must end with the same part and hint.
    let mut pair = None;
    for _ in 0..20 {
        let pl = live.playlist(RUNG);
        let (msn, index) = pl.newest_part().expect("parts");
        let q = format!("{plain}?_HLS_msn={msn}&_HLS_part={index}");
        let full = get(live.addr(), &q, &[]);
        let delta = get(live.addr(), &format!("{q}&_HLS_skip=YES"), &[]);
        assert_eq!(full.status, 200, "{}", full.text());
        assert_eq!(delta.status, 200, "{}", delta.text());
        let (f, d) = (Ll::parse(&full.text()), Ll::parse(&delta.text()));
        if f.newest_part() == d.newest_part() && f.hint() == d.hint() {
            pair = Some((full, delta, f, d));
            break;
        }
    }
    let (full, delta, f, d) = pair.expect("a full and a delta playlist of the same state");
    let ctx = || format!("full:\n{}\ndelta:\n{}", f.text, d.text);
    assert!(
        delta.body.len() < full.body.len(),
        "delta {} bytes, full {} bytes: {}",
        delta.body.len(),
        full.body.len(),
        ctx()
    );
    let n = d.skipped.expect("EXT-X-SKIP");
    assert!(n > 0, "SKIPPED-SEGMENTS=0: {}", ctx());
    assert!(f.skipped.is_none(), "the full playlist has EXT-X-SKIP");
    assert_eq!(
        d.media.media_sequence,
        f.media.media_sequence,
        "MEDIA-SEQUENCE: {}",
        ctx()
    );
    let n = usize::try_from(n).expect("small");
    assert!(n < f.media.segments.len(), "skipped everything: {}", ctx());
    // What remains is exactly the tail of the full playlist: numbers, URIs, EXTINF, dates.
    assert_eq!(d.media.segments, f.media.segments[n..], "{}", ctx());
    assert_eq!(d.parts, f.parts, "parts differ: {}", ctx());
    assert_eq!(d.reports.len(), f.reports.len(), "{}", ctx());
    // Only segments older than CAN-SKIP-UNTIL before the end went.
    let until = f.control_secs("CAN-SKIP-UNTIL").expect("CAN-SKIP-UNTIL");
    let kept: f64 = d.media.segments.iter().map(|s| s.duration).sum();
    assert!(
        kept >= until - 0.01,
        "the delta keeps {kept} s, less than CAN-SKIP-UNTIL {until}: {}",
        ctx()
    );
    let one_more = kept + f.media.segments[n - 1].duration;
    assert!(
        one_more >= until,
        "skipped segment {} is newer than CAN-SKIP-UNTIL: {}",
        n - 1,
        ctx()
    );
    // The skipped segments' parts are not listed.
    let first_kept = d.media.segments[0].msn;
    assert!(d.parts.iter().all(|p| p.msn >= first_kept), "{}", ctx());
    // The plain (non-blocking) reload honours _HLS_skip too.
    let r = get(live.addr(), &format!("{plain}?_HLS_skip=YES"), &[]);
    assert!(Ll::parse(&r.text()).skipped.is_some_and(|n| n > 0));
}

/// `max-age=N` of a Cache-Control value.
fn max_age(cc: &str) -> Option<u64> {
    cc.split(',')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("max-age=")?.parse().ok())
}

#[test]
fn cache_headers_suit_a_cdn_and_responses_do_not_vary_unannounced() {
    let _serial = serial();
    let live = Live::start("cache", 60, &[]);
    let plain = live.path(RUNG, "index.m3u8");

    // Plain reloads change every part: a cache must revalidate (or not store) them.
    let r = get(live.addr(), &plain, &[]);
    let cc = r.header("cache-control").unwrap_or_default().to_owned();
    assert!(
        cc.contains("no-cache") || cc.contains("no-store") || max_age(&cc).is_some_and(|a| a <= 1),
        "plain playlist Cache-Control {cc:?}"
    );
    let master = get(live.addr(), &format!("/live/{STREAM}/index.m3u8"), &[]);
    assert_eq!(master.status, 200);
    assert!(
        master.header("cache-control").is_some(),
        "master playlist without Cache-Control"
    );

    // A blocking reload's URL names one playlist state: cacheable, but not for longer than the
    // playlist can stay current-ish (a few target durations).
    let pl = Ll::parse(&r.text());
    let (msn, index) = pl.newest_part().expect("parts");
    let blocking = get(
        live.addr(),
        &format!("{plain}?_HLS_msn={msn}&_HLS_part={index}"),
        &[],
    );
    assert_eq!(blocking.status, 200);
    let cc = blocking.header("cache-control").unwrap_or_default();
    let age = max_age(cc).unwrap_or_else(|| panic!("blocking reload Cache-Control {cc:?}"));
    assert!(
        !cc.contains("no-store") && !cc.contains("private") && (1..=3 * 6).contains(&age),
        "blocking reload Cache-Control {cc:?}"
    );
    assert_eq!(
        blocking.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );

    // Parts and segments never change under their name.
    let part = live.path(RUNG, &pl.parts[0].uri);
    let p = get(live.addr(), &part, &[]);
    assert_eq!(p.status, 200, "GET {part}");
    let cc = p.header("cache-control").unwrap_or_default();
    assert!(
        cc.contains("immutable") || max_age(cc).is_some_and(|a| a >= 60),
        "part Cache-Control {cc:?}"
    );
    let seg = live.path(RUNG, &pl.media.segments[0].uri);
    let s = get(live.addr(), &seg, &[]);
    assert_eq!(s.status, 200, "GET {seg}");
    let cc = s.header("cache-control").unwrap_or_default();
    assert!(
        cc.contains("immutable") || max_age(cc).is_some_and(|a| a >= 60),
        "segment Cache-Control {cc:?}"
    );

    // Vary: a shared cache keys on the URL plus the headers listed in Vary. A response that
    // changes with Accept-Encoding or Origin without saying so gets served to the wrong client.
    // Compare the same URL with and without those headers.
    let fixed = format!("{plain}?_HLS_msn={msn}&_HLS_part={index}");
    for url in [plain.as_str(), fixed.as_str(), part.as_str(), seg.as_str()] {
        let pair = || {
            let bare = get(live.addr(), url, &[]);
            let fancy = get(
                live.addr(),
                url,
                &[
                    ("Accept-Encoding", "gzip, deflate, br"),
                    ("Origin", "http://player.example"),
                ],
            );
            (bare, fancy)
        };
        // A blocking reload for a part that exists is answered with the playlist as it is
        // then: when a part came out between the two requests (a CI run met one), they are
        // asked again, so that the bodies compare one playlist state.
        let moved = |bare: &Resp, fancy: &Resp| {
            bare.status == 200
                && fancy.status == 200
                && Ll::parse(&bare.text()).newest_part() != Ll::parse(&fancy.text()).newest_part()
        };
        let (mut bare, mut fancy) = pair();
        for _ in 0..5 {
            if url != fixed || !moved(&bare, &fancy) {
                break;
            }
            (bare, fancy) = pair();
        }
        assert_eq!(bare.status, 200, "GET {url}");
        assert_eq!(fancy.status, 200, "GET {url} with Accept-Encoding/Origin");
        let vary = fancy
            .header("vary")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if bare.header("content-encoding") != fancy.header("content-encoding") {
            assert!(
                vary.contains("accept-encoding"),
                "GET {url}: Content-Encoding follows Accept-Encoding but Vary is {vary:?}"
            );
        }
        if bare.header("access-control-allow-origin") != fancy.header("access-control-allow-origin")
        {
            assert!(
                vary.contains("origin"),
                "GET {url}: Access-Control-Allow-Origin follows Origin but Vary is {vary:?}"
            );
        }
        assert_eq!(
            bare.header("content-type"),
            fancy.header("content-type"),
            "GET {url}"
        );
        assert_eq!(
            bare.header("cache-control"),
            fancy.header("cache-control"),
            "GET {url}"
        );
        if url != plain {
            // Fixed-state URLs: the same bytes whatever the request headers.
            assert!(
                bare.body == fancy.body,
                "GET {url}: the body depends on request headers"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hls.js in low-latency mode in Chromium.

/// Wall seconds of playback judged.
const PLAY_SECONDS: u32 = 20;

/// Stalls tolerated in 20 s. Zero: measured on the 2-core machine with this ladder at load
/// averages of 7 to 18, none of three runs (20, 25 and 60 s) had one.
const STALL_TOLERANCE: usize = 0;

/// A `waiting` after playback started that `playing` ends within this long is a hiccup of a
/// frame or two that no viewer sees, not a stall: one run (alone on the machine) met a
/// `waiting` 3 ms after the first `playing`, ended 36 ms later, while hls.js caught up to the
/// live edge at 1.3x.
const HICCUP: f64 = 200.0;

/// How long a wait inside a seek hls.js made may last and not count as a stall (ms).
const SEEK_WAIT: f64 = 1000.0;

/// The stalls of a `llhls.mjs` report: each `waiting` after the first `playing` (its `stalls`)
/// that no `playing` ends within [`HICCUP`] ms.
fn stalls_of(r: &Value) -> Vec<Value> {
    let t = |e: &Value| e["t"].as_f64().unwrap_or(0.0);
    let events = r["events"].as_array().cloned().unwrap_or_default();
    r["stalls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|w| {
            let resumed = events
                .iter()
                .find(|e| e["type"] == "playing" && t(e) >= t(w))
                .map(t);
            // A wait that a seek began (`seeking` first, no `seeked` yet) is that seek's: hls.js
            // starts at the first buffered position and then jumps to its live sync point (a
            // CI run met `seeking` and `waiting` at the same millisecond, 31 ms after the first
            // `playing`, resumed 224 ms later). A wait that makes hls.js seek (over a hole)
            // comes before its `seeking`, and still counts.
            let seek_began = events
                .iter()
                .filter(|e| e["type"] == "seeking" && t(e) <= t(w))
                .map(t)
                .next_back()
                .is_some_and(|s| {
                    !events
                        .iter()
                        .any(|e| e["type"] == "seeked" && t(e) >= s && t(e) < t(w))
                });
            let allowed = if seek_began { SEEK_WAIT } else { HICCUP };
            resumed.is_none_or(|p| p - t(w) > allowed)
        })
        .collect()
}

/// `stalls <= STALL_TOLERANCE`, kept as a comparison should the tolerance become non-zero.
fn stalls_tolerated(stalls: usize) -> bool {
    stalls.saturating_sub(STALL_TOLERANCE) == 0
}

/// How far the playhead can have moved by playing in `r` (an llhls.mjs report): each sample's
/// wall time to the next, times its playback rate, from the start of playback.
fn playable_seconds(r: &Value) -> f64 {
    let mut samples = vec![&r["start"]];
    samples.extend(r["samples"].as_array().into_iter().flatten());
    samples
        .windows(2)
        .map(|w| {
            let rate = w[0]["playbackRate"].as_f64().unwrap_or(1.0);
            let ms = w[1]["t"].as_f64().unwrap_or(0.0) - w[0]["t"].as_f64().unwrap_or(0.0);
            rate * ms.max(0.0) / 1000.0
        })
        .sum()
}

/// Runs `tests/browser/llhls.mjs` and returns its report.
fn play_llhls(server: &Server, url: &str, seconds: u32) -> Value {
    browser_report(
        &server.dir,
        "llhls",
        "llhls.mjs",
        &[url, &seconds.to_string()],
        &[],
        Duration::from_secs(u64::from(seconds) + 90),
    )
}

#[test]
fn hlsjs_low_latency_plays_20_s_without_a_stall() {
    require_browser_tools();
    let _serial = serial();
    let assets = player_assets_arg();
    let live = Live::start("hlsjs", 120, &["--set", &assets]);
    let url = format!("http://{}/watch/{STREAM}?engine=hlsjs", live.addr());
    let r = play_llhls(&live.server, &url, PLAY_SECONDS);
    let lat = &r["latency"];
    eprintln!(
        "hls.js LL: started in {} ms, advanced {:.2} s in {:.2} s, stalls {}, latency median {} s (p95 {}, n {}), playlist requests {}",
        r["startMs"],
        r["advanced"].as_f64().unwrap_or(0.0),
        r["wallSeconds"].as_f64().unwrap_or(0.0),
        stalls_of(&r).len(),
        lat["median"],
        lat["p95"],
        lat["n"],
        r["playlistRequests"],
    );
    let ctx = || {
        let mut slim = r.clone();
        slim["samples"] = Value::from(r["samples"].as_array().map_or(0, Vec::len));
        format!("{slim:#}\nserver log:\n{}", live.server.logs())
    };
    assert_eq!(r["started"], true, "playback never started: {}", ctx());
    let end = &r["end"];
    assert_eq!(end["engine"], "hlsjs", "{}", ctx());
    assert_eq!(end["lowLatencyMode"], true, "{}", ctx());
    assert!(
        end["errors"].as_array().is_some_and(Vec::is_empty),
        "window.ferrocast.errors: {}",
        ctx()
    );
    assert!(end["videoError"].is_null(), "video.error: {}", ctx());
    assert!(
        r["playlistRequests"]["blocking"].as_u64().unwrap_or(0) > 0,
        "hls.js never sent a blocking reload (_HLS_msn): {}",
        ctx()
    );
    let wall = r["wallSeconds"].as_f64().unwrap_or(0.0);
    let advanced = r["advanced"].as_f64().unwrap_or(0.0);
    // Chromium's clock ran at 0.93x to 0.99x of real time on the saturated 2-core machine: hence
    // 85 % at least. At most what playing could cover: the watch page lets hls.js play up to
    // 1.5x to catch up with the live edge (maxLiveSyncPlaybackRate), so the bound is the wall
    // time weighted by the playback rate the samples saw; more than that is a skip. (A clean
    // run played 22.64 s in 20 s, catching up from 3.98 s of latency to 1.35 s.)
    let playable = playable_seconds(&r);
    assert!(
        wall >= f64::from(PLAY_SECONDS) - 1.0
            && advanced >= 0.85 * wall
            && advanced <= playable + 1.0,
        "currentTime advanced {advanced:.2} s in {wall:.2} s (playing could cover {playable:.2} s): {}",
        ctx()
    );
    let stalls = stalls_of(&r);
    assert!(
        stalls_tolerated(stalls.len()),
        "{} stalls after playback started ({stalls:?}): {}",
        stalls.len(),
        ctx()
    );
    let median = lat["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("no latency samples (hls.playingDate unset): {}", ctx()));
    assert!(
        median > 0.0 && median < 5.0,
        "median latency {median:.2} s: {}",
        ctx()
    );
}

/// Every playlist the server answers during a live ladder, read by an independent strict parser
/// (the npm package hls-parser with `strictMode`, through `tests/browser/strict.mjs`): the
/// master, and per rung the plain playlist, the blocking reload for its hinted part (answered
/// as that part, or the next segment's first, appears: the moments a segment closes) and delta
/// updates (`_HLS_skip=YES`, and `v2` with a blocking request). Any error fails the test with
/// the request and the playlist text.
#[test]
fn a_strict_parser_accepts_every_playlist() {
    require_tool("node", "--version");
    let parser = support::repo_root().join("tests/browser/node_modules/hls-parser/package.json");
    assert!(
        parser.is_file(),
        "{} is missing; run `npm ci --prefix tests/browser` (make test does)",
        parser.display()
    );
    let _serial = serial();
    let live = Live::start("strict", 60, &[]);
    let fetched = std::cell::RefCell::new(Vec::<(String, String)>::new());
    let fetch = |path: String| -> String {
        let r = get(live.addr(), &path, &[]);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        let text = r.text();
        fetched.borrow_mut().push((path, text.clone()));
        text
    };
    let distinct = || {
        let f = fetched.borrow();
        f.iter()
            .map(|(_, t)| t)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let master = format!("/live/{STREAM}/index.m3u8");
    let mut segments_closed = 0;
    // At least 24 s of the live ladder, and on until the evidence the test asks for is there
    // (two segment closes met, 30 distinct playlists), within 50 s.
    let started = Instant::now();
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(24)
        || ((segments_closed < 2 || distinct() < 30) && started.elapsed() < Duration::from_secs(50))
    {
        fetch(master.clone());
        for (i, rung) in RUNGS.iter().enumerate() {
            let path = live.path(rung, "index.m3u8");
            let before = Ll::parse(&fetch(path.clone()));
            let Some((msn, part)) = before.hint() else {
                continue;
            };
            // A round's blocking reloads wait for six parts in all, one 2 s segment: every
            // round asks each rung for the same part of its segment, which meets a segment's
            // close always or never. So one rung a round asks for the next segment's first
            // part, which is answered as the segment in progress closes.
            let (m, p) = if i == round % RUNGS.len() {
                (msn + 1, 0)
            } else {
                (msn, part)
            };
            let blocked = fetch(format!("{path}?_HLS_msn={m}&_HLS_part={p}"));
            let after = Ll::parse(&blocked);
            segments_closed += after
                .media
                .segments
                .len()
                .saturating_sub(before.media.segments.len())
                .min(1);
            fetch(format!("{path}?_HLS_skip=YES"));
            if let Some((m, p)) = after.hint() {
                fetch(format!("{path}?_HLS_msn={m}&_HLS_part={p}&_HLS_skip=v2"));
            }
        }
        round += 1;
    }
    // Each distinct text once; the name says which request returned it first.
    let fetched = fetched.into_inner();
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<Value> = fetched
        .iter()
        .filter(|(_, text)| seen.insert(text.clone()))
        .map(|(name, text)| serde_json::json!({ "name": name, "text": text }))
        .collect();
    let file = live.server.dir.file("playlists.json");
    std::fs::write(&file, Value::from(unique.clone()).to_string()).expect("write playlists");
    let report = support::browser_report(
        &live.server.dir,
        "strict",
        "strict.mjs",
        &[&file.display().to_string()],
        &[],
        Duration::from_secs(60),
    );
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    eprintln!(
        "strict parser: {} requests, {} distinct playlists, {} segment closes met by a blocking reload, {} errors",
        fetched.len(),
        report["checked"],
        segments_closed,
        errors.len()
    );
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "GET {}: {}\n{}",
                e["name"],
                e["error"],
                e["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        errors.is_empty(),
        "hls-parser (strict) rejected {} of {} playlists:\n{}",
        errors.len(),
        unique.len(),
        shown.join("\n")
    );
    // The check cannot pass on nothing: many playlists, and segment ends among them.
    assert_eq!(report["checked"].as_u64(), Some(unique.len() as u64));
    assert!(
        unique.len() >= 30,
        "only {} distinct playlists",
        unique.len()
    );
    assert!(
        segments_closed >= 2,
        "only {segments_closed} blocking reloads met a segment's close"
    );
}
