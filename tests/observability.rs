//! End-to-end observability: the metric catalogue in the README checked against a live
//! `/metrics` (every row present with its documented type and exactly its documented labels,
//! nothing undocumented shipped) while an RTMP and an SRT publish are live and a player session
//! watches; and a real Prometheus (Debian's `/usr/bin/prometheus`) scraping the server: `up`,
//! live publishers coming and going, and one realtime factor per rung of the ladder.
//!
//! The ladder is the small one (a passthrough `source` rung and one 240p x264 rung) and the
//! publishes are 640x360: the machines have two cores and the tests run in a debug build. The
//! tests in this file run one at a time (see [`serial`]).
//!
//! Needs ffmpeg (with libsrt), python3 with prometheus_client (the reference OpenMetrics parser)
//! and Prometheus; a missing tool fails with what to run (`make deps`).

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hls::{parse_master, parse_media};
use support::{
    ffmpeg_publish, ffmpeg_srt, repo_root, require_ffmpeg_srt, require_tool, srt_addr, srt_url,
    ChildGuard, Server, TempDir,
};

/// The RTMP-published stream of the catalogue test, and the one Prometheus watches.
const RTMP_STREAM: (&str, &str) = ("cam", "e2e-obs-cam-key");
/// The SRT-published stream of the catalogue test.
const SRT_STREAM: (&str, &str) = ("field", "e2e-obs-field-key");
/// What both publishers send: small, so the server's transcode stays cheap.
const PUBLISH_SIZE: &str = "640x360";
/// Publishers run this long at most; the tests end them (by PID) well before.
const PUBLISH_SECONDS: u32 = 180;

const LIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Until every rung of a stream lists a segment.
const SEGMENTS_TIMEOUT: Duration = Duration::from_secs(45);
/// How long the catalogue test keeps scraping until everything holds (values such as the
/// latency histogram's count need a part listed after the player's requests).
const SCRAPE_SETTLE: Duration = Duration::from_secs(15);

/// One test at a time in this binary (each runs a transcode); a failed test must not block the
/// other.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The catalogue (README.md, between the metrics-catalogue markers)
// ---------------------------------------------------------------------------------------------

/// One row of the README's metric table.
#[derive(Debug, Clone)]
struct Row {
    /// 1-based line in README.md, for failure messages.
    line: usize,
    /// The name as documented (what a query uses: `_total` for counters, `_info` for info).
    name: String,
    /// `counter`, `gauge`, `histogram` or `info`.
    kind: String,
    /// Label names, `le` of histogram buckets not included.
    labels: BTreeSet<String>,
}

impl Row {
    /// The family name of the `# TYPE` line: OpenMetrics names counter families without
    /// `_total` and info families without `_info` (the samples carry the suffix).
    fn family(&self) -> &str {
        let suffix = match self.kind.as_str() {
            "counter" => "_total",
            "info" => "_info",
            _ => "",
        };
        self.name.strip_suffix(suffix).unwrap_or(&self.name)
    }

    /// `` `name` (README.md line N) `` for messages.
    fn at(&self) -> String {
        format!("`{}` (README.md line {})", self.name, self.line)
    }
}

const CATALOGUE_BEGIN: &str = "<!-- metrics-catalogue:begin -->";
const CATALOGUE_END: &str = "<!-- metrics-catalogue:end -->";
const TYPES: [&str; 4] = ["counter", "gauge", "histogram", "info"];

/// `` `x` `` → `x`.
fn unquote(cell: &str) -> Option<&str> {
    let inner = cell.trim().strip_prefix('`')?.strip_suffix('`')?;
    (!inner.is_empty() && !inner.contains('`')).then_some(inner)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the table in `readme`. Malformed rows (a name not in backticks, an unknown type, a
/// counter not named `_total`, a duplicate) panic with their line: the catalogue itself is wrong.
fn parse_catalogue(readme: &str) -> Vec<Row> {
    let begin = readme
        .lines()
        .position(|l| l.trim() == CATALOGUE_BEGIN)
        .unwrap_or_else(|| panic!("README.md has no {CATALOGUE_BEGIN} line"));
    let end = readme
        .lines()
        .position(|l| l.trim() == CATALOGUE_END)
        .unwrap_or_else(|| panic!("README.md has no {CATALOGUE_END} line"));
    assert!(
        begin < end,
        "README.md: the catalogue markers are out of order"
    );
    let mut rows: Vec<Row> = Vec::new();
    for (i, text) in readme.lines().enumerate().take(end).skip(begin + 1) {
        let line = i + 1;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let bad = |why: &str| -> ! { panic!("README.md line {line}: {why}: {text}") };
        let Some(body) = text.strip_prefix('|') else {
            bad("not a table row inside the catalogue markers")
        };
        let cells: Vec<&str> = body.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            bad("a catalogue row has four cells: metric, type, labels, meaning");
        }
        // The header and the separator under it.
        if cells[0] == "Metric" || cells[0].chars().all(|c| c == '-' || c == ':') {
            continue;
        }
        let Some(name) = unquote(cells[0]).filter(|n| is_metric_name(n)) else {
            bad("the metric name must be one name in backticks")
        };
        let kind = cells[1];
        if !TYPES.contains(&kind) {
            bad(&format!("type {kind:?} is none of {TYPES:?}"));
        }
        let mut labels = BTreeSet::new();
        for cell in cells[2].split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match unquote(cell).filter(|l| is_metric_name(l) && !l.contains(':')) {
                Some("le") => bad("`le` is implied for histograms, not documented"),
                Some(l) => {
                    if !labels.insert(l.to_owned()) {
                        bad(&format!("label `{l}` listed twice"));
                    }
                }
                None => bad(&format!(
                    "labels are label names in backticks, separated by commas; got {cell:?}"
                )),
            }
        }
        if kind == "counter" && !name.ends_with("_total") {
            bad("a counter is documented by its sample name, which ends in `_total`");
        }
        if kind == "info" && !name.ends_with("_info") {
            bad("an info metric is documented by its sample name, which ends in `_info`");
        }
        let row = Row {
            line,
            name: name.to_owned(),
            kind: kind.to_owned(),
            labels,
        };
        if let Some(other) = rows.iter().find(|r| r.family() == row.family()) {
            bad(&format!(
                "family `{}` already documented by {}",
                row.family(),
                other.at()
            ));
        }
        rows.push(row);
    }
    assert!(
        !rows.is_empty(),
        "README.md: no rows between the catalogue markers"
    );
    rows
}

fn read_catalogue() -> Vec<Row> {
    let path = repo_root().join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_catalogue(&readme)
}

// ---------------------------------------------------------------------------------------------
// The exposition, parsed into families (the support parser keeps samples only, and its label
// splitting does not handle the braces in route templates such as `/live/{name}/{*path}`)
// ---------------------------------------------------------------------------------------------

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// The line as scraped, for messages.
    line: String,
}

/// One metric family: its `# TYPE` line and the samples after it.
#[derive(Debug, Clone)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

/// A scrape, by family name.
#[derive(Debug)]
struct Exposition {
    families: BTreeMap<String, Family>,
    /// Lines that do not fit the format (a sample before any `# TYPE`, a sample that does not
    /// belong to the family above it, a family declared twice, an unparsable line).
    problems: Vec<String>,
    text: String,
}

/// The sample names a family of `kind` may have.
fn sample_suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "info" => &["_info"],
        "gauge" | "unknown" => &[""],
        _ => &[],
    }
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if words.next() == Some("TYPE") {
                    let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                        problems.push(format!("malformed TYPE line: {line}"));
                        continue;
                    };
                    if families.contains_key(name) {
                        problems.push(format!("family `{name}` declared twice"));
                    }
                    families.insert(
                        name.to_owned(),
                        Family {
                            kind: kind.to_owned(),
                            samples: Vec::new(),
                        },
                    );
                    current = Some(name.to_owned());
                }
                continue;
            }
            let Some(sample) = parse_sample(line) else {
                problems.push(format!("unparsable sample line: {line}"));
                continue;
            };
            let Some(family) = current
                .as_ref()
                .and_then(|n| Some((n, families.get_mut(n)?)))
            else {
                problems.push(format!("sample before any # TYPE line: {line}"));
                continue;
            };
            let (fname, family) = family;
            let belongs = sample
                .name
                .strip_prefix(fname.as_str())
                .is_some_and(|suffix| sample_suffixes(&family.kind).contains(&suffix));
            if !belongs {
                problems.push(format!(
                    "sample `{}` does not belong to the family above it (`# TYPE {fname} {}`): {line}",
                    sample.name, family.kind
                ));
            }
            family.samples.push(sample);
        }
        Exposition {
            families,
            problems,
            text: text.to_owned(),
        }
    }

    /// The sum of the samples named `name` whose labels include all of `labels`; `None` when no
    /// sample matches.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for s in self.families.values().flat_map(|f| &f.samples) {
            if s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }
}

/// `name{a="x",b="y"} 1.5 [timestamp]`, with quoted values that may hold `{`, `}`, `,` and
/// escapes.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start();
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = body.find('=')?;
            let key = body[..eq].trim();
            let quoted = body[eq + 1..].trim_start().strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let close = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, e) = chars.next()?;
                        value.push(if e == 'n' { '\n' } else { e });
                    }
                    '"' => break i,
                    c => value.push(c),
                }
            };
            if labels.insert(key.to_owned(), value).is_some() {
                return None;
            }
            let after = &quoted[close + 1..];
            body = after.strip_prefix(',').unwrap_or(after);
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    (!name.is_empty()).then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
        line: line.to_owned(),
    })
}

/// Everything wrong between the catalogue and a scrape, one message per problem, each naming
/// the row or family.
fn catalogue_failures(rows: &[Row], scrape: &Exposition) -> Vec<String> {
    let mut out: Vec<String> = scrape
        .problems
        .iter()
        .map(|p| format!("exposition: {p}"))
        .collect();
    for row in rows {
        let family = row.family();
        let Some(f) = scrape.families.get(family) else {
            out.push(format!(
                "row {}: no `# TYPE {family} {}` in the scrape",
                row.at(),
                row.kind
            ));
            continue;
        };
        if f.kind != row.kind {
            out.push(format!(
                "row {}: documented as {}, but the scrape says `# TYPE {family} {}`",
                row.at(),
                row.kind,
                f.kind
            ));
            continue;
        }
        if f.samples.is_empty() {
            out.push(format!(
                "row {}: `# TYPE {family} {}` has no samples",
                row.at(),
                row.kind
            ));
            continue;
        }
        // Every sample of the family carries exactly the documented label names.
        let mut matching = 0;
        for s in &f.samples {
            let mut names: BTreeSet<String> = s.labels.keys().cloned().collect();
            if s.name.ends_with("_bucket") && row.kind == "histogram" && !names.remove("le") {
                out.push(format!(
                    "row {}: bucket without an `le` label: {}",
                    row.at(),
                    s.line
                ));
            }
            if names == row.labels {
                matching += 1;
            } else {
                out.push(format!(
                    "row {}: sample has labels {names:?}, documented {:?}: {}",
                    row.at(),
                    row.labels,
                    s.line
                ));
            }
        }
        if matching == 0 {
            out.push(format!(
                "row {}: no sample with exactly the labels {:?}",
                row.at(),
                row.labels
            ));
        }
        // Each kind's samples, as OpenMetrics names them.
        let wanted: &[&str] = match row.kind.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for suffix in wanted {
            let sample = format!("{family}{suffix}");
            if !f.samples.iter().any(|s| s.name == sample) {
                out.push(format!(
                    "row {}: the {} family has no `{sample}` sample",
                    row.at(),
                    row.kind
                ));
            }
        }
    }
    // Nothing undocumented ships.
    for name in scrape.families.keys() {
        if (name.starts_with("ferrocast_") || name.starts_with("process_"))
            && !rows.iter().any(|r| r.family() == name)
        {
            out.push(format!(
                "family `{name}` (`# TYPE {name} {}`) is in /metrics but not in the README catalogue",
                scrape.families[name].kind
            ));
        }
    }
    out
}

/// Checks of values that must hold while both streams are live and a player watches `cam`.
fn value_failures(scrape: &Exposition, rtmp_rungs: &[String]) -> Vec<String> {
    let (cam, field) = (RTMP_STREAM.0, SRT_STREAM.0);
    let mut out = Vec::new();
    let mut check = |name: &str, labels: &[(&str, &str)], want: &str, ok: fn(f64) -> bool| {
        let sel = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        match scrape.value(name, labels) {
            Some(v) if ok(v) => {}
            Some(v) => out.push(format!("{name}{{{sel}}} is {v}, want {want}")),
            None => out.push(format!("{name}{{{sel}}}: no such sample, want {want}")),
        }
    };
    let one = |v: f64| v == 1.0;
    let positive = |v: f64| v > 0.0;
    let at_least_one = |v: f64| v >= 1.0;
    check("ferrocast_stream_live", &[("stream", cam)], "1", one);
    check("ferrocast_stream_live", &[("stream", field)], "1", one);
    check(
        "ferrocast_active_publishers",
        &[("protocol", "rtmp")],
        "1",
        one,
    );
    check(
        "ferrocast_active_publishers",
        &[("protocol", "srt")],
        "1",
        one,
    );
    check(
        "ferrocast_stream_viewers",
        &[("stream", cam)],
        ">= 1",
        at_least_one,
    );
    for rung in rtmp_rungs {
        check(
            "ferrocast_ingest_to_publish_latency_seconds_count",
            &[("stream", cam), ("rung", rung)],
            "> 0",
            positive,
        );
    }
    check(
        "ferrocast_hls_parts_total",
        &[("stream", cam)],
        "> 0",
        positive,
    );
    check(
        "ferrocast_http_response_bytes_total",
        &[("route", "/live/{name}/{*path}")],
        "> 0",
        positive,
    );
    check(
        "ferrocast_ingest_rejections_total",
        &[("reason", "bad_key")],
        ">= 1",
        at_least_one,
    );
    out
}

/// Runs prometheus_client's reference OpenMetrics parser over `text`; `Err` with its complaint.
fn python_openmetrics_check(dir: &TempDir, text: &str) -> Result<(), String> {
    const SCRIPT: &str = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        for f in p(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       pass\n";
    let input = dir.file("live-metrics.txt");
    std::fs::write(&input, text).unwrap();
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(File::open(&input).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is required by this test ({e}); install it with `make deps`")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python package prometheus-client is required by this test; install it with `make deps` (scripts/install-deps.sh)"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr.trim().to_owned())
    }
}

/// The checker itself, on a made-up catalogue and scrape: each kind of mismatch is reported by
/// row or family, and OpenMetrics naming (`_total`, `_info`, `le`) is not one.
#[test]
fn catalogue_check_names_each_wrong_row() {
    let readme = "intro\n\
        <!-- metrics-catalogue:begin -->\n\
        | Metric | Type | Labels | Meaning |\n\
        |--------|------|--------|---------|\n\
        | `x_build_info` | info | `version` | ok |\n\
        | `x_requests_total` | counter | `route`, `method` | ok, braces in values |\n\
        | `x_duration_seconds` | histogram | `route` | ok, le ignored |\n\
        | `x_up` | gauge | | ok, no labels |\n\
        | `x_missing_total` | counter | `stream` | not in the scrape |\n\
        | `x_kind` | gauge | `stream` | a counter in the scrape |\n\
        | `x_labels` | gauge | `stream`, `rung` | one label short |\n\
        <!-- metrics-catalogue:end -->\n";
    let rows = parse_catalogue(readme);
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert_eq!(rows[0].family(), "x_build");
    assert_eq!(rows[1].family(), "x_requests");
    assert_eq!(rows[1].line, 6);
    let scrape = Exposition::parse(
        "# HELP x_build Build.\n\
         # TYPE x_build info\n\
         x_build_info{version=\"1.0\"} 1\n\
         # TYPE x_requests counter\n\
         x_requests_total{route=\"/live/{name}/{*path}\",method=\"GET\"} 3\n\
         # TYPE x_duration_seconds histogram\n\
         # UNIT x_duration_seconds seconds\n\
         x_duration_seconds_sum{route=\"/a,b\"} 0.5\n\
         x_duration_seconds_count{route=\"/a,b\"} 2\n\
         x_duration_seconds_bucket{le=\"0.1\",route=\"/a,b\"} 1\n\
         x_duration_seconds_bucket{le=\"+Inf\",route=\"/a,b\"} 2\n\
         # TYPE x_up gauge\n\
         x_up 1\n\
         # TYPE x_kind counter\n\
         x_kind_total{stream=\"a\"} 1\n\
         # TYPE x_labels gauge\n\
         x_labels{stream=\"a\"} 1\n\
         # TYPE x_extra gauge\n\
         x_extra 1\n\
         # EOF\n",
    );
    assert!(scrape.problems.is_empty(), "{:?}", scrape.problems);
    assert_eq!(
        scrape.value(
            "x_requests_total",
            &[("route", "/live/{name}/{*path}"), ("method", "GET")]
        ),
        Some(3.0)
    );
    // Undocumented families count with the ferrocast_ and process_ prefixes only.
    let scrape = Exposition::parse(&scrape.text.replace("x_extra", "ferrocast_extra"));
    let failures = catalogue_failures(&rows, &scrape);
    let expect = [
        "row `x_missing_total` (README.md line 9): no `# TYPE x_missing counter`",
        "row `x_kind` (README.md line 10): documented as gauge, but the scrape says `# TYPE x_kind counter`",
        "row `x_labels` (README.md line 11): sample has labels {\"stream\"}",
        "row `x_labels` (README.md line 11): no sample with exactly the labels",
        "family `ferrocast_extra` (`# TYPE ferrocast_extra gauge`) is in /metrics but not in the README catalogue",
    ];
    for e in expect {
        assert!(
            failures.iter().any(|f| f.starts_with(e)),
            "no failure starting {e:?} in {failures:#?}"
        );
    }
    assert_eq!(failures.len(), expect.len(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// Server, publishers, playback
// ---------------------------------------------------------------------------------------------

/// Starts the server with the small ladder and these `(name, key)` streams.
fn start_server(tag: &str, streams: &[(&str, &str)]) -> (Server, TempDir) {
    let config = TempDir::new(&format!("obs-{tag}"));
    let mut toml = String::from(support::TWO_RUNG_LADDER);
    for (name, key) in streams {
        toml.push_str(&format!(
            "\n[[streams]]\nname = \"{name}\"\nkey = \"{key}\"\n"
        ));
    }
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, toml).expect("write config");
    let server = Server::start(&[
        "--config",
        path.to_str().expect("UTF-8 temp path"),
        "--set",
        "transcode.preset=ultrafast",
        "--set",
        "hls.segment_duration=2s",
    ]);
    (server, config)
}

/// The rung names of TWO_RUNG_LADDER, in order.
fn ladder_rungs() -> Vec<String> {
    support::TWO_RUNG_LADDER
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = "))
        .map(|v| v.trim_matches('"').to_owned())
        .collect()
}

/// The rungs of a master playlist (in any order) are the ladder's.
fn assert_ladder(rungs: &[String]) {
    let got: BTreeSet<&String> = rungs.iter().collect();
    let ladder = ladder_rungs();
    let want: BTreeSet<&String> = ladder.iter().collect();
    assert_eq!(
        got, want,
        "the master playlist's rungs are not the ladder's"
    );
}

/// `path` with `?session=ID` (or `&session=ID`) added.
fn with_session(path: &str, session: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}session={session}")
}

/// Waits for the master playlist of `stream` and a segment in every rung; returns the rung
/// directories (`source`, `240p`), in master order.
fn wait_segments(server: &Server, stream: &str, publishers: &[&ChildGuard]) -> Vec<String> {
    let master_path = format!("/live/{stream}/index.m3u8");
    let deadline = Instant::now() + SEGMENTS_TIMEOUT;
    loop {
        let r = server.get(&master_path);
        let last = if r.status == 200 {
            let rungs: Vec<String> = parse_master(&r.body)
                .iter()
                .map(|v| v.uri.split('/').next().unwrap_or_default().to_owned())
                .collect();
            let with_segment = rungs.iter().all(|rung| {
                let r = server.get(&format!("/live/{stream}/{rung}/index.m3u8"));
                r.status == 200 && !parse_media(&r.body).segments.is_empty()
            });
            if !rungs.is_empty() && with_segment {
                return rungs;
            }
            r.body
        } else {
            format!("{} {}", r.status, r.body)
        };
        if Instant::now() >= deadline {
            let logs: Vec<String> = publishers
                .iter()
                .map(|p| format!("{} stderr:\n{}", p.name, p.stderr()))
                .collect();
            panic!(
                "{stream}: no segment in every rung within {SEGMENTS_TIMEOUT:?}; last master answer:\n{last}\n{}\nserver log:\n{}",
                logs.join("\n"),
                server.logs()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// What a player with session `session` fetches: the master playlist, a media playlist and a
/// segment of `rung`.
fn play(server: &Server, stream: &str, rung: &str, session: &str) {
    let master = with_session(&format!("/live/{stream}/index.m3u8"), session);
    let r = server.get(&master);
    assert_eq!(r.status, 200, "GET {master}: {}", r.body);
    let media = with_session(&format!("/live/{stream}/{rung}/index.m3u8"), session);
    let r = server.get(&media);
    assert_eq!(r.status, 200, "GET {media}: {}", r.body);
    let pl = parse_media(&r.body);
    let segment = pl
        .segments
        .last()
        .unwrap_or_else(|| panic!("GET {media}: no segment listed:\n{}", r.body));
    let path = with_session(&format!("/live/{stream}/{rung}/{}", segment.uri), session);
    let r = server.get_bytes(&path);
    assert_eq!(r.status, 200, "GET {path}");
    assert!(!r.body.is_empty(), "GET {path}: empty segment");
}

/// A publish with a wrong key: waits (bounded) until the server counts the refusal.
fn refused_publish(server: &Server) {
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        "wrong-key",
        &server.rtmp_url("e2e-obs-wrong-key"),
        "320x240",
        10,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let refused = Exposition::parse(&server.get_admin("/metrics").body)
            .value(
                "ferrocast_ingest_rejections_total",
                &[("reason", "bad_key")],
            )
            .unwrap_or(0.0);
        if refused >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a publish with a wrong key was not counted in ferrocast_ingest_rejections_total{{reason=\"bad_key\"}} within 20 s\nffmpeg: {}\nserver log:\n{}",
            ffmpeg.stderr(),
            server.logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Refused, so ffmpeg ends on its own; the guard kills it by PID if it lingers.
    let _ = ffmpeg.wait_timeout(Duration::from_secs(5));
}

#[test]
fn metrics_catalogue_matches_a_live_scrape() {
    let _serial = serial();
    require_ffmpeg_srt();
    let rows = read_catalogue();
    let (server, _config) = start_server("catalogue", &[RTMP_STREAM, SRT_STREAM]);
    let srt = srt_addr(&server);

    refused_publish(&server);

    let rtmp = ffmpeg_publish(
        &server.dir,
        "rtmp",
        &server.rtmp_url(RTMP_STREAM.1),
        PUBLISH_SIZE,
        PUBLISH_SECONDS,
    );
    let srt_publisher = ffmpeg_srt(
        &server.dir,
        "srt",
        &srt_url(
            srt,
            &format!("#!::r=live/{},m=publish", SRT_STREAM.1),
            "&latency=200000",
        ),
        PUBLISH_SIZE,
        PUBLISH_SECONDS,
    );
    for (stream, protocol) in [(RTMP_STREAM.0, "rtmp"), (SRT_STREAM.0, "srt")] {
        server.wait_live(stream, LIVE_TIMEOUT, |p| {
            p["protocol"] == protocol && p["video"]["codec"] == "h264"
        });
    }

    let publishers = [&rtmp, &srt_publisher];
    let rtmp_rungs = wait_segments(&server, RTMP_STREAM.0, &publishers);
    wait_segments(&server, SRT_STREAM.0, &publishers);
    assert_ladder(&rtmp_rungs);
    let viewed = rtmp_rungs.last().expect("a rung").clone();
    play(&server, RTMP_STREAM.0, &viewed, "abc123");

    // Scrape until everything holds (a value may need a moment: a part listed, a second of SRT
    // statistics), then report everything that does not, by row and metric.
    let deadline = Instant::now() + SCRAPE_SETTLE;
    let (scrape, failures) = loop {
        let r = server.get_admin("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
        let scrape = Exposition::parse(&r.body);
        let mut failures = catalogue_failures(&rows, &scrape);
        failures.extend(value_failures(&scrape, &rtmp_rungs));
        if failures.is_empty() || Instant::now() >= deadline {
            break (scrape, failures);
        }
        thread::sleep(Duration::from_millis(500));
    };
    println!(
        "checked {} catalogue rows against {} families in a live /metrics",
        rows.len(),
        scrape.families.len()
    );
    let mut failures = failures;
    if let Err(e) = python_openmetrics_check(&server.dir, &scrape.text) {
        failures.push(format!(
            "prometheus_client's OpenMetrics parser rejects the live scrape: {e}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) between the README catalogue ({} rows) and a live /metrics:\n  - {}\n--- /metrics ---\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n  - "),
        scrape.text
    );
    drop(rtmp);
    drop(srt_publisher);
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus
// ---------------------------------------------------------------------------------------------

/// Debian's Prometheus server.
const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMETHEUS_READY_TIMEOUT: Duration = Duration::from_secs(30);
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A free port on 127.0.0.1, chosen now (the listener is dropped at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `application/x-www-form-urlencoded`-safe percent-encoding of a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One series of an instant-query answer.
#[derive(Debug, Clone)]
struct Series {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A Prometheus server scraping one ferrocast, on a free port, its data and log in a temp dir.
struct Prometheus {
    /// Declared before `dir`, so it dies before its data directory goes.
    process: ChildGuard,
    addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    fn binary() -> &'static str {
        let runs = Path::new(PROMETHEUS).is_file()
            && Command::new(PROMETHEUS)
                .arg("--version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            runs,
            "{PROMETHEUS} is required by this test but is missing or does not run; install Debian's `prometheus` package with `make deps` (scripts/install-deps.sh)"
        );
        PROMETHEUS
    }

    /// Starts Prometheus scraping `target` every second and waits until it is ready. The port is
    /// free when picked but could be taken before Prometheus binds it: then it starts again on
    /// another (three tries).
    fn start(target: SocketAddr) -> Prometheus {
        let bin = Prometheus::binary();
        for attempt in 1..=3 {
            let dir = TempDir::new("prometheus");
            let config = dir.file("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: ferrocast\n    static_configs:\n      - targets: ['{target}']\n"
                ),
            )
            .expect("write prometheus.yml");
            let log = dir.file("prometheus.log");
            let out = File::create(&log).expect("prometheus log file");
            let err = out.try_clone().expect("clone log file");
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut cmd = Command::new(bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.file("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            let process = ChildGuard::spawn("prometheus", &mut cmd, Some(log.clone()));
            let mut prometheus = Prometheus {
                process,
                addr,
                log,
                _dir: dir,
            };
            match prometheus.wait_ready() {
                Ok(()) => return prometheus,
                Err(status)
                    if attempt < 3 && prometheus.log().contains("address already in use") =>
                {
                    eprintln!("prometheus: {addr} was taken ({status}); trying another port");
                }
                Err(status) => {
                    panic!("prometheus exited ({status}) before it was ready (its log follows)")
                }
            }
        }
        unreachable!("the third attempt returns or panics")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until `/-/ready` answers 200; `Err` when the process exited first.
    fn wait_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + PROMETHEUS_READY_TIMEOUT;
        let mut last = String::from("no answer");
        loop {
            if let Some(status) = self.process.try_wait() {
                return Err(status);
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                let r = support::http_get(self.addr, "/-/ready");
                if r.status == 200 {
                    return Ok(());
                }
                last = format!("{} {}", r.status, r.body);
            }
            assert!(
                Instant::now() < deadline,
                "prometheus on {} not ready within {PROMETHEUS_READY_TIMEOUT:?} (last /-/ready: {last}; its log follows)",
                self.addr
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// An instant query; `Err` with the answer when it is not a successful vector.
    fn query(&self, promql: &str) -> Result<Vec<Series>, String> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let r = support::http_get(self.addr, &path);
        let v: Value = serde_json::from_str(&r.body)
            .map_err(|e| format!("{} (not JSON: {e}): {}", r.status, r.body))?;
        if r.status != 200 || v["status"] != "success" || v["data"]["resultType"] != "vector" {
            return Err(format!("{}: {}", r.status, r.body));
        }
        let result = v["data"]["result"]
            .as_array()
            .ok_or_else(|| format!("no result array: {}", r.body))?;
        result
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no value in {s}"))?;
                Ok(Series { labels, value })
            })
            .collect()
    }

    /// Polls `promql` every 250 ms until `accept` returns `Some`; on timeout, panics with `what`,
    /// the last answer, the scrape targets' state and Prometheus's log.
    fn poll<T>(
        &self,
        promql: &str,
        what: &str,
        timeout: Duration,
        mut accept: impl FnMut(&[Series]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.query(promql) {
                Ok(series) => {
                    if let Some(v) = accept(&series) {
                        return v;
                    }
                    format!("{series:?}")
                }
                Err(e) => format!("error: {e}"),
            };
            if Instant::now() >= deadline {
                let targets = support::http_get(self.addr, "/api/v1/targets").body;
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nquery: {promql}\nlast answer: {last}\n/api/v1/targets: {targets}\n(prometheus's log follows)"
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Polls until `promql` (an aggregate) answers one series of value `want`.
    fn wait_scalar(&self, promql: &str, want: f64, timeout: Duration) {
        self.poll(promql, &format!("{promql} == {want}"), timeout, |s| {
            (s.len() == 1 && s[0].value == want).then_some(())
        });
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Whatever failed (a query, a playlist, a publisher), Prometheus's log helps.
        if thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log());
        }
    }
}

#[test]
fn prometheus_scrapes_streams_and_realtime_factor() {
    let _serial = serial();
    let _ = Prometheus::binary();
    require_tool("ffmpeg", "-version");
    let (server, _config) = start_server("prometheus", &[RTMP_STREAM]);
    let prometheus = Prometheus::start(server.admin);

    prometheus.wait_scalar("up{job=\"ferrocast\"}", 1.0, QUERY_TIMEOUT);
    // Nothing published yet: once scraped, the sum over both protocols reads 0.
    let idle = prometheus.poll(
        "sum(ferrocast_active_publishers)",
        "a first scrape of ferrocast_active_publishers",
        QUERY_TIMEOUT,
        |s| (s.len() == 1).then(|| s[0].value),
    );
    assert_eq!(
        idle, 0.0,
        "sum(ferrocast_active_publishers) before any publish"
    );

    let ffmpeg = ffmpeg_publish(
        &server.dir,
        "prometheus",
        &server.rtmp_url(RTMP_STREAM.1),
        PUBLISH_SIZE,
        PUBLISH_SECONDS,
    );
    prometheus.wait_scalar("sum(ferrocast_active_publishers)", 1.0, QUERY_TIMEOUT);

    // One realtime factor per rung of the ladder, each producing (a debug build on two cores
    // does not hold 1.0 tightly; more than half of real time says the rung is running).
    let rungs = wait_segments(&server, RTMP_STREAM.0, &[&ffmpeg]);
    assert_ladder(&rungs);
    let want: BTreeSet<&str> = rungs.iter().map(String::as_str).collect();
    let promql = format!(
        "ferrocast_pipeline_realtime_factor{{job=\"ferrocast\",stream=\"{}\"}}",
        RTMP_STREAM.0
    );
    let factors = prometheus.poll(
        &promql,
        &format!("one series per rung {want:?}, each above 0.5"),
        Duration::from_secs(45),
        |series| {
            let got: BTreeSet<&str> = series
                .iter()
                .filter_map(|s| s.labels.get("rung").map(String::as_str))
                .collect();
            (series.len() == want.len() && got == want && series.iter().all(|s| s.value > 0.5))
                .then(|| series.to_vec())
        },
    );
    for s in &factors {
        println!(
            "realtime factor of {}/{}: {:.3}",
            RTMP_STREAM.0, s.labels["rung"], s.value
        );
    }

    // The publisher goes away (killed by its PID): the sum reads 0 again.
    drop(ffmpeg);
    prometheus.wait_scalar("sum(ferrocast_active_publishers)", 0.0, QUERY_TIMEOUT);
    drop(prometheus);
}
