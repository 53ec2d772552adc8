//! Passthrough density: the CPU Ferrocast spends per stream when it only repackages (no decode,
//! no encode), against nginx-rtmp doing the same job, same input, same run.
//!
//! `cargo bench -p ferrocast --bench passthrough_density` (see benches/README.md for the knobs).
//!
//! 1. Generates a noisy 1080p30 H.264 (6 Mb/s, a keyframe a second) + AAC FLV once, long enough
//!    for the warm-up and the measure (no loop, so no timestamp wraps in the window).
//! 2. For each stream count N in `BENCH_STREAMS` (default 1, 4, 8, 32), `BENCH_RUNS` times (default
//!    3), one server after the other:
//!    - Ferrocast (the bench binary) with a passthrough-only ladder (`source`), default LL-HLS
//!      (fMP4, 2 s segments, parts of `hls.part_duration`), N configured streams: once
//!      repackaging in GStreamer, once with `transcode.direct_passthrough` (Ferrocast's own fMP4
//!      writer, the default);
//!    - nginx with Debian's nginx-rtmp module (`libnginx-mod-rtmp`), configured as its users do:
//!      one worker, `live on`, `hls on`, `hls_fragment 1s`, `hls_playlist_length 6s`, nested
//!      per-stream directories under a temporary prefix.
//!
//!    N ffmpeg publishers send the input with `-re -c copy` over RTMP on loopback. After
//!    `BENCH_WARMUP` (default 5 s), the server's CPU seconds (user + system, from
//!    `/proc/PID/stat`; nginx: master and worker) are taken over `BENCH_SECONDS` (default 20).
//!    Every stream must have gone on producing segments through the window (and every publisher
//!    still be running), or the run is rejected. RSS at the end of the window is recorded too.
//! 3. Prints, per N, each side's CPU seconds per second per stream and RSS per stream, and the
//!    ratios Ferrocast / nginx-rtmp (target ≤ 1.0) for both engines; medians over the runs.
//! 4. Writes the medians to `benches/results/passthrough_density.csv` and plots them, CPU per
//!    stream against N, to `benches/results/passthrough_density.png` (`benches/plot.py`, with
//!    Debian's python3-matplotlib; without it the CSV alone is written, and the run says so).
//!
//! What differs: nginx-rtmp writes MPEG-TS segments to files (no LL-HLS parts), Ferrocast keeps
//! fMP4 segments and their LL-HLS parts in memory. Both receive the same RTMP bytes.

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_seconds, median, Nginx, PASSTHROUGH_ONLY};
use support::{env_or, http_get, wait_until, ChildGuard, Server, TempDir};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("passthrough_density: bench");
        return;
    }
    let counts: Vec<usize> = std::env::var("BENCH_STREAMS")
        .unwrap_or_else(|_| "1,4,8,32".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    let runs: usize = env_or("BENCH_RUNS", 3);
    let warmup: u64 = env_or("BENCH_WARMUP", 5);
    let seconds: u64 = env_or("BENCH_SECONDS", 20);
    let module = Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
    assert!(
        Command::new("nginx").arg("-v").output().is_ok() && module.is_file(),
        "nginx with the RTMP module is required by this benchmark; install it with \
         `apt-get install nginx-light libnginx-mod-rtmp`"
    );

    let work = TempDir::new("passthrough-density");
    let input = work.file("input.flv");
    let media = warmup + seconds + 10;
    eprintln!("generating {media} s of noisy 1080p30 at 6 Mb/s ...");
    common::noisy_1080p30(&input, media, 30);

    let mut summary = Vec::new();
    let mut points = vec!["x,series,y,rss_mib".to_owned()];
    for &n in &counts {
        let mut ours = Vec::new();
        let mut direct = Vec::new();
        let mut theirs = Vec::new();
        for run in 1..=runs {
            let f = run_ferrocast(&input, n, warmup, seconds, false);
            let d = run_ferrocast(&input, n, warmup, seconds, true);
            let g = run_nginx(&work, module, &input, n, warmup, seconds);
            println!(
                "N={n} run {run}: ferrocast {:.4} CPU s/s per stream, {:.1} MiB per stream | direct {:.4}, {:.1} MiB | nginx-rtmp {:.4}, {:.1} MiB | ratios {:.2} and direct {:.2}",
                f.cpu_per_stream,
                f.rss_mib_per_stream,
                d.cpu_per_stream,
                d.rss_mib_per_stream,
                g.cpu_per_stream,
                g.rss_mib_per_stream,
                f.cpu_per_stream / g.cpu_per_stream,
                d.cpu_per_stream / g.cpu_per_stream
            );
            ours.push(f);
            direct.push(d);
            theirs.push(g);
        }
        let med = |v: &[Measure], f: fn(&Measure) -> f64| median(v.iter().map(f).collect());
        let (fc, dc, gc) = (
            med(&ours, |m| m.cpu_per_stream),
            med(&direct, |m| m.cpu_per_stream),
            med(&theirs, |m| m.cpu_per_stream),
        );
        let (fr, dr, gr) = (
            med(&ours, |m| m.rss_mib_per_stream),
            med(&direct, |m| m.rss_mib_per_stream),
            med(&theirs, |m| m.rss_mib_per_stream),
        );
        summary.push(format!(
            "  N={n:<3} ferrocast {fc:.4} CPU s/s per stream ({fr:.1} MiB) | direct {dc:.4} ({dr:.1} MiB) | nginx-rtmp {gc:.4} ({gr:.1} MiB) | ratio {:.2}, direct {:.2}",
            fc / gc,
            dc / gc
        ));
        for (series, cpu, rss) in [
            ("Ferrocast direct (default)", dc, dr),
            ("Ferrocast in GStreamer", fc, fr),
            ("nginx-rtmp hls on", gc, gr),
        ] {
            points.push(format!("{n},{series},{cpu:.5},{rss:.1}"));
        }
    }
    println!();
    println!(
        "passthrough_density (1080p30 6 Mb/s + AAC over RTMP, {seconds} s measured after {warmup} s, {runs} runs, medians)"
    );
    for line in summary {
        println!("{line}");
    }
    plot(
        &points,
        &format!("Passthrough density: 1080p30 6 Mb/s + AAC over RTMP, medians of {runs} runs"),
    );
}

/// Writes `points` (CSV lines, header first) to benches/results/passthrough_density.csv and
/// plots them next to it.
fn plot(points: &[String], title: &str) {
    let dir = support::repo_root().join("benches/results");
    std::fs::create_dir_all(&dir).expect("benches/results");
    let csv = dir.join("passthrough_density.csv");
    std::fs::write(&csv, points.join("\n") + "\n").expect("write the CSV");
    let png = dir.join("passthrough_density.png");
    // Debian's matplotlib belongs to Debian's python3, which another one on PATH (pyenv) may hide.
    let plotted = ["python3", "/usr/bin/python3"].iter().any(|python| {
        Command::new(python)
            .arg(support::repo_root().join("benches/plot.py"))
            .args([&csv, &png])
            .arg(title)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    match plotted {
        true => println!("wrote {} and {}", csv.display(), png.display()),
        false => println!(
            "wrote {}; no plot (benches/plot.py needs python3-matplotlib: apt-get install python3-matplotlib)",
            csv.display()
        ),
    }
}

struct Measure {
    cpu_per_stream: f64,
    rss_mib_per_stream: f64,
}

/// `n` ffmpeg publishers of `input` to `url(i)`.
fn publish(dir: &Path, input: &Path, n: usize, url: impl Fn(usize) -> String) -> Vec<ChildGuard> {
    (0..n)
        .map(|i| {
            let stderr = dir.join(format!("publisher-{i}.stderr"));
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
                .arg(input)
                .args(["-c", "copy", "-f", "flv", &url(i)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&stderr).expect("publisher stderr"));
            ChildGuard::spawn("ffmpeg publisher", &mut cmd, Some(stderr))
        })
        .collect()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `pid` and its children (nginx's master and workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent's PID is the second field after the command.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// Measures `pids`' CPU over `seconds` after `warmup`, checking with `producing` (called at the
/// start and the end of the window) that every stream went on.
fn measure(
    pids: impl Fn() -> Vec<u32>,
    publishers: &mut [ChildGuard],
    n: usize,
    (warmup, seconds): (u64, u64),
    producing: impl Fn() -> Vec<u64>,
) -> Measure {
    std::thread::sleep(Duration::from_secs(warmup));
    let before_counts = producing();
    let watched = pids();
    let before: f64 = watched.iter().map(|&p| cpu_seconds(p)).sum();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let after: f64 = watched.iter().map(|&p| cpu_seconds(p)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let rss: u64 = watched.iter().map(|&p| rss_kib(p)).sum();
    let after_counts = producing();
    for (i, p) in publishers.iter_mut().enumerate() {
        assert!(
            p.try_wait().is_none(),
            "publisher {i} stopped: {}",
            p.stderr()
        );
    }
    for (i, (b, a)) in before_counts.iter().zip(&after_counts).enumerate() {
        assert!(
            a > b,
            "stream {i} produced no segment in the window ({b} then {a})"
        );
    }
    assert_eq!(after_counts.len(), n, "streams seen");
    Measure {
        cpu_per_stream: (after - before) / elapsed / n as f64,
        rss_mib_per_stream: rss as f64 / 1024.0 / n as f64,
    }
}

/// Ferrocast with `n` streams; `direct`: with `transcode.direct_passthrough` (else without).
fn run_ferrocast(input: &Path, n: usize, warmup: u64, seconds: u64, direct: bool) -> Measure {
    let config = TempDir::new("passthrough-ferrocast");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, PASSTHROUGH_ONLY).expect("write config");
    let path = path.display().to_string();
    let streams: Vec<String> = (0..n).map(|i| format!("s{i}=bench-key-{i}")).collect();
    let mut args = vec!["--config", &path, "--log-level", "warn"];
    args.extend([
        "--set",
        if direct {
            "transcode.direct_passthrough=true"
        } else {
            "transcode.direct_passthrough=false"
        },
    ]);
    for s in &streams {
        args.extend(["--stream", s.as_str()]);
    }
    let server = Server::start(&args);
    let mut publishers = publish(config.path(), input, n, |i| {
        server.rtmp_url(&format!("bench-key-{i}"))
    });
    let http = server.http;
    // A stream's newest media sequence number: it grows with each segment.
    let producing = || {
        (0..n)
            .map(|i| {
                let r = http_get(http, &format!("/live/s{i}/source/index.m3u8"));
                let pl = support::hls::parse_media(&r.body);
                if r.status == 200 {
                    pl.last_msn().unwrap_or(0)
                } else {
                    0
                }
            })
            .collect()
    };
    let pid = server.process.pid();
    measure(
        || vec![pid],
        &mut publishers,
        n,
        (warmup, seconds),
        producing,
    )
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

/// nginx-rtmp as its users set it up for HLS: one worker (nginx-rtmp's live streams do not span
/// workers without `rtmp_auto_push`), `hls on` with 1 s fragments and a 6 s playlist.
fn nginx_config(prefix: &Path, module: &Path, hls: &Path, port: u16) -> String {
    let p = prefix.display();
    format!(
        r#"load_module {module};
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/nginx-error.log warn;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            hls on;
            hls_path {hls};
            hls_nested on;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}
"#,
        module = module.display(),
        hls = hls.display()
    )
}

fn run_nginx(
    work: &TempDir,
    module: &Path,
    input: &Path,
    n: usize,
    warmup: u64,
    seconds: u64,
) -> Measure {
    let prefix = work.path().join(format!("nginx-{n}-{}", free_port()));
    let hls: PathBuf = prefix.join("hls");
    std::fs::create_dir_all(&hls).expect("nginx prefix");
    // The worker may run as another user (nobody, when started as root): let it write.
    let _ = Command::new("chmod").arg("0777").arg(&hls).status();
    let port = free_port();
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, nginx_config(&prefix, module, &hls, port)).expect("nginx.conf");
    let stderr = prefix.join("nginx.stderr");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("nginx stderr"));
    let nginx = Nginx(ChildGuard::spawn("nginx", &mut cmd, Some(stderr)));
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_until(Duration::from_secs(10), "nginx-rtmp to listen", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    });
    let mut publishers = publish(&prefix, input, n, |i| {
        format!("rtmp://127.0.0.1:{port}/live/bench-key-{i}")
    });
    // A stream's fragments written so far: nginx-rtmp deletes old ones, so count the numbers
    // in the names (`N.ts`): the highest grows with each fragment.
    let producing = || {
        (0..n)
            .map(|i| {
                std::fs::read_dir(hls.join(format!("bench-key-{i}")))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".ts")?
                            .parse::<u64>()
                            .ok()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    };
    let master = nginx.0.pid();
    measure(
        || with_children(master),
        &mut publishers,
        n,
        (warmup, seconds),
        producing,
    )
}
