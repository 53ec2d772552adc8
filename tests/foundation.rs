//! End-to-end tests of the service shell: the real binary on ephemeral ports, its banner, health,
//! readiness, metrics (checked with Python's reference OpenMetrics parser), the JSON API,
//! configuration errors, JSON logs and graceful shutdown on SIGTERM.

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{run_ferrocast, Server, TempDir};

/// The OpenMetrics content type the server must send.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Parses `text` with prometheus_client's OpenMetrics parser and returns every sample name.
fn parse_openmetrics_with_python(dir: &TempDir, text: &str) -> Vec<String> {
    const SCRIPT: &str = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        for f in p(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       print(s.name)\n";
    let input = dir.file("metrics.txt");
    std::fs::write(&input, text).unwrap();
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("python3 is required by this test ({e}); install it with `make deps`"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python package prometheus-client is required by this test; install it with `make deps` (scripts/install-deps.sh)"
    );
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejected /metrics: {stderr}\n--- exposition ---\n{text}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn health_metrics_api_and_graceful_shutdown() {
    let mut server = Server::start(&[
        "--stream",
        "main=e2e-secret-main",
        "--stream",
        "second=e2e-secret-second",
        "--shutdown-grace",
        "3s",
    ]);
    assert!(server.http.ip().is_loopback() && server.http.port() != 0);
    assert!(server.rtmp.ip().is_loopback() && server.rtmp.port() != 0);
    assert_eq!(
        server.banner[0], "ferrocast 0.1.0 ready",
        "banner: {:?}",
        server.banner
    );

    let r = server.get_admin("/healthz");
    assert_eq!(r.status, 200, "{r:?}");
    let r = server.get_admin("/readyz");
    assert_eq!(r.status, 200, "{r:?}");

    let r = server.get_admin("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OPENMETRICS));
    let names = parse_openmetrics_with_python(&server.dir, &r.body);
    for want in [
        "ferrocast_build_info",
        "process_resident_memory_bytes",
        "ferrocast_stream_live",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from the parsed metrics: {names:?}"
        );
    }
    let m = support::Metrics::parse(&r.body);
    assert_eq!(m.value("ferrocast_stream_live", &[("stream", "main")]), 0.0);
    assert!(m.value("process_resident_memory_bytes", &[]) > 0.0);

    let r = server.get_admin("/api/v1/streams");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{r:?}"
    );
    assert!(
        !r.body.contains("e2e-secret"),
        "the API must never show keys: {}",
        r.body
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let streams = v["streams"].as_array().expect("streams array");
    let names: Vec<&str> = streams.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["main", "second"], "{v}");
    for s in streams {
        assert_eq!(s["live"], false, "{s}");
        assert!(s["publisher"].is_null(), "{s}");
    }
    let one = server.stream("second");
    assert_eq!(one["name"], "second");
    assert_eq!(server.get_admin("/api/v1/streams/nope").status, 404);
    assert_eq!(server.get("/no/such/path").status, 404);

    let t0 = Instant::now();
    server.process.signal("TERM");
    let status = server.process.expect_exit(Duration::from_secs(5));
    assert!(
        status.success(),
        "SIGTERM should end in exit 0, got {status:?}; log:\n{}",
        server.logs()
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn check_config_names_unknown_keys_and_accepts_valid_files() {
    let dir = TempDir::new("check-config");
    let bad = dir.file("bad.toml");
    std::fs::write(&bad, "[rtmp]\nidle_timeout = \"45s\"\nmax_conections = 5\n").unwrap();
    let r = run_ferrocast(
        &["check-config", bad.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    assert!(!r.status.success(), "unknown key accepted: {r:?}");
    assert!(
        r.stderr.contains("max_conections"),
        "stderr does not name the key: {}",
        r.stderr
    );

    let good = dir.file("good.toml");
    std::fs::write(
        &good,
        "shutdown_grace = \"3s\"\n\
         [listen]\nhttp = \"127.0.0.1:0\"\nrtmp = \"127.0.0.1:0\"\n\
         [ingest]\npublisher_timeout = \"1500ms\"\n\
         [rtmp]\nidle_timeout = \"1m\"\nmax_message_size = 1048576\n\
         [log]\nformat = \"json\"\n\
         [[streams]]\nname = \"main\"\nkey = \"k-main\"\n",
    )
    .unwrap();
    let r = run_ferrocast(
        &["check-config", good.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    assert!(r.status.success(), "valid file refused: {r:?}");

    // An environment override goes through the same validation.
    let r = run_ferrocast(
        &["check-config", good.to_str().unwrap()],
        &[("FERROCAST_RTMP_MAX_CONNECTIONS", "many")],
        Duration::from_secs(10),
    );
    assert!(!r.status.success(), "bad env value accepted: {r:?}");
    assert!(
        r.stderr.contains("FERROCAST_RTMP_MAX_CONNECTIONS"),
        "{}",
        r.stderr
    );
}

#[test]
fn without_streams_the_banner_shows_a_generated_key_and_playback_url() {
    let server = Server::start(&[]);
    let banner = server.banner.join("\n");
    let key_line = server
        .banner
        .iter()
        .find(|l| l.trim_start().starts_with("Stream Key:"))
        .unwrap_or_else(|| panic!("no generated stream key in the banner:\n{banner}"));
    let key = key_line.trim_start()["Stream Key:".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default();
    assert!(
        key.len() >= 16 && key.chars().all(|c| c.is_ascii_alphanumeric()),
        "generated key looks wrong: {key_line:?}"
    );
    let port = server.http.port();
    assert!(
        banner.contains(&format!(
            "Stream \"main\" plays at http://127.0.0.1:{port}/live/main/index.m3u8"
        )),
        "no playback URL in the banner:\n{banner}"
    );
    assert!(
        banner.contains(&format!("rtmp://127.0.0.1:{}/live", server.rtmp.port())),
        "no OBS server URL in the banner:\n{banner}"
    );
    let streams = server.get_admin("/api/v1/streams").body;
    assert!(streams.contains("\"main\""), "{streams}");
    assert!(
        !streams.contains(key),
        "the API shows the generated key: {streams}"
    );
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let mut server = Server::start(&["--log-format", "json", "--shutdown-grace", "2s"]);
    assert_eq!(server.get_admin("/healthz").status, 200);
    server.process.signal("TERM");
    let status = server.process.expect_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let logs = server.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines at all");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        assert!(v.get("level").is_some(), "no level in {line}");
    }
}

#[test]
fn unknown_environment_variable_is_refused_by_name() {
    let r = run_ferrocast(
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
            "--srt",
            "127.0.0.1:0",
        ],
        &[("FERROCAST_LISTEN_HTPP", "127.0.0.1:0")],
        Duration::from_secs(10),
    );
    assert!(
        !r.status.success(),
        "started despite an unknown variable: {r:?}"
    );
    assert!(
        r.stderr.contains("FERROCAST_LISTEN_HTPP"),
        "stderr does not name the variable: {}",
        r.stderr
    );
    assert!(!r.stdout.contains("ready"), "{}", r.stdout);
}

#[test]
fn environment_configures_streams_and_flags_win() {
    let server = Server::start_with_env(
        &["--set", "ingest.publisher_timeout=2s"],
        &[("FERROCAST_STREAMS", "envcam=k-env-1,envcam2=k-env-2")],
    );
    let v = server.get_json("/api/v1/streams");
    let names: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["envcam", "envcam2"], "{v}");
    assert!(!v.to_string().contains("k-env"), "{v}");

    let server = Server::start_with_env(
        &["--stream", "flagcam=k-flag"],
        &[("FERROCAST_STREAMS", "envcam=k-env-1")],
    );
    let v = server.get_json("/api/v1/streams");
    assert_eq!(v["streams"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["streams"][0]["name"], "flagcam", "{v}");
}
