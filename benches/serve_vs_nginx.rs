//! Side-by-side: Ferrocast serving a media playlist and a segment from its in-memory store, against
//! Debian's nginx serving the same bytes as static files, same machine, same run, same load.
//!
//! `cargo bench -p ferrocast --bench serve_vs_nginx` (see benches/README.md for the knobs).
//!
//! 1. Ferrocast (the release binary) with a small ladder; ffmpeg publishes 640x360 for a few
//!    segments. The 240p media playlist and one of its segments are saved. Then the publisher
//!    stops: the stream ends (`#EXT-X-ENDLIST`) and stays served for `hls.keep_ended`, so neither
//!    server competes with a live transcode while measured, and the playlist no longer changes.
//! 2. nginx gets the same files at the same paths from a temporary prefix with a generated
//!    `nginx.conf` (2 workers, like Ferrocast's 2 tokio workers on this 2-core machine; sendfile,
//!    open_file_cache, access log off) on a free port: `nginx -p DIR -c nginx.conf -g 'daemon
//!    off;'`, stopped by PID.
//! 3. `wrk -t2 -c64 -dBENCH_WRK_SECONDS` (default 10) against both, for the playlist URL and the
//!    segment URL, alternating, `BENCH_RUNS` (default 3) times. Medians of req/s, and the ratio
//!    Ferrocast / nginx (target ≥ 1.0).
//!
//! What differs: nginx reads a static file (from the page cache) and checks its mtime; Ferrocast
//! serves the playlist as rendered once per change of the stream (cached) and segments from memory
//! (`Bytes`).

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Nginx;
use support::hls::parse_media;
use support::{ffmpeg_publish, http_get, http_get_bytes, wait_until, ChildGuard, Server, TempDir};

/// Two rungs: the source repackaged, and one cheap x264 encode.
const LADDER: &str = support::TWO_RUNG_LADDER;

use support::env_or;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("serve_vs_nginx: bench");
        return;
    }
    let runs: usize = env_or("BENCH_RUNS", 3);
    let secs: u32 = env_or("BENCH_WRK_SECONDS", 10);
    let conns: u32 = env_or("BENCH_WRK_CONNECTIONS", 64);
    // `wrk -v` exits non-zero after printing its version: only check that it starts.
    assert!(
        Command::new("wrk").arg("-v").output().is_ok(),
        "`wrk` is required by this benchmark; install it with `apt-get install wrk`"
    );
    assert!(
        Command::new("nginx").arg("-v").output().is_ok(),
        "`nginx` is required by this benchmark; install it with `apt-get install nginx-light`"
    );

    let config = TempDir::new("serve-vs-nginx");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, LADDER).expect("write config");
    let path = path.display().to_string();
    let server = Server::start(&[
        "--config",
        &path,
        "--log-level",
        "warn",
        "--stream",
        "bench=bench-nginx-key",
        "--set",
        "hls.keep_ended=30m",
        "--set",
        "ingest.reconnect_window=0s",
    ]);
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        "nginx",
        &server.rtmp_url("bench-nginx-key"),
        "640x360",
        14,
    );
    let playlist = "/live/bench/240p/index.m3u8";
    // Wait for the publish to end and the playlist to say so.
    ffmpeg.expect_exit(Duration::from_secs(60));
    let text = wait_until(Duration::from_secs(30), "the ended 240p playlist", || {
        let r = http_get(server.http, playlist);
        (r.status == 200 && r.body.contains("#EXT-X-ENDLIST")).then_some(r.body)
    });
    let pl = parse_media(&text);
    let seg = pl
        .segments
        .get(pl.segments.len() / 2)
        .expect("a segment")
        .uri
        .clone();
    let seg_path = format!("/live/bench/240p/{seg}");
    let seg_bytes = http_get_bytes(server.http, &seg_path);
    assert_eq!(seg_bytes.status, 200, "GET {seg_path}");

    // The same files at the same paths for nginx.
    let root = config.file("www");
    let dir = root.join("live/bench/240p");
    std::fs::create_dir_all(&dir).expect("www dir");
    std::fs::write(dir.join("index.m3u8"), &text).expect("playlist file");
    std::fs::write(dir.join(&seg), &seg_bytes.body).expect("segment file");
    let nginx_port = free_port();
    let nginx_conf = config.file("nginx.conf");
    std::fs::write(&nginx_conf, nginx_config(config.path(), &root, nginx_port)).expect("conf");
    let _nginx = Nginx(start_nginx(config.path(), &nginx_conf, nginx_port));

    let ours = format!("http://{}", server.http);
    let theirs = format!("http://127.0.0.1:{nginx_port}");
    // Same bytes from both before measuring.
    let check = http_get(server.http, playlist);
    let other = http_get(
        format!("127.0.0.1:{nginx_port}").parse().expect("addr"),
        playlist,
    );
    assert_eq!(check.body, other.body, "the playlists differ");
    println!(
        "serve_vs_nginx: wrk -t2 -c{conns} -d{secs}s, {runs} runs; playlist {} bytes, segment {} bytes; {}",
        text.len(),
        seg_bytes.body.len(),
        nginx_version()
    );

    let mut table: Vec<(&str, &str, Vec<f64>, Vec<f64>)> = vec![
        ("playlist", playlist, Vec::new(), Vec::new()),
        ("segment", &seg_path, Vec::new(), Vec::new()),
    ];
    for run in 1..=runs {
        for (what, url, f, n) in &mut table {
            let a = wrk(&format!("{ours}{url}"), conns, secs);
            let b = wrk(&format!("{theirs}{url}"), conns, secs);
            println!(
                "  run {run} {what:>8}: ferrocast {a:>10.0} req/s | nginx {b:>10.0} req/s | ratio {:.3}",
                a / b
            );
            f.push(a);
            n.push(b);
        }
    }
    let mut summary = Vec::new();
    for (what, _, f, n) in &mut table {
        let (a, b) = (median(f), median(n));
        println!(
            "  {what:>8} (median): ferrocast {a:.0} req/s, nginx {b:.0} req/s, ratio ferrocast/nginx {:.3} (target >= 1.0)",
            a / b
        );
        summary.push(format!("{what} {:.3}", a / b));
    }
    println!(
        "serve_vs_nginx: ratio ferrocast/nginx (median req/s): {}",
        summary.join(", ")
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

fn nginx_config(prefix: &Path, root: &Path, port: u16) -> String {
    let p = prefix.display();
    format!(
        r#"worker_processes 2;
pid {p}/nginx.pid;
error_log {p}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    open_file_cache max=100 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {p}/tmp-body;
    proxy_temp_path {p}/tmp-proxy;
    fastcgi_temp_path {p}/tmp-fastcgi;
    uwsgi_temp_path {p}/tmp-uwsgi;
    scgi_temp_path {p}/tmp-scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
        video/mp4 mp4;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \.m3u8$ {{ add_header Cache-Control "no-cache"; }}
        location ~ \.m4s$ {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
    }}
}}
"#,
        root = root.display()
    )
}

fn start_nginx(prefix: &Path, conf: &Path, port: u16) -> ChildGuard {
    let stderr = prefix.join("nginx.stderr");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("nginx stderr"));
    let nginx = ChildGuard::spawn("nginx", &mut cmd, Some(stderr));
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_until(Duration::from_secs(10), "nginx to listen", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    });
    nginx
}

fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default()
}

/// Requests per second from one wrk run; panics on socket errors or non-2xx answers.
fn wrk(url: &str, conns: u32, secs: u32) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{secs}s"), url])
        .stdin(Stdio::null())
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk {url} failed:\n{text}");
    assert!(
        !text.contains("Non-2xx"),
        "wrk {url}: error answers:\n{text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}
