//! Publish to first playable playlists: how long after a publisher connects the master playlist
//! answers 200, and its first variant's media playlist lists media (a part or a segment) that a
//! player can start on. Issue 17 asks for the figure, with a target of one segment duration
//! plus 300 ms.
//!
//! `cargo bench -p ferrocast --bench startup` (`BENCH_RUNS`, default 5).
//!
//! 1. Generates a 640x360 30 fps H.264 (a keyframe a second) + AAC FLV once.
//! 2. For each ladder, the default one (source and 360p, x264) and a passthrough-only one, starts
//!    one server with `BENCH_RUNS` streams, then publishes to each in turn with `ffmpeg -re
//!    -c copy` (each publish ended before the next).
//! 3. For each publish, polls every 5 ms from the publisher's start: the API until it shows the
//!    publisher (admitted), the master playlist until 200, its first variant until it lists a
//!    part or a segment. Times are from the publisher's spawn and from its admission (ffmpeg's
//!    own start-up and the RTMP handshake are in the first, not in the second).
//! 4. Prints each publish and the medians.

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{median, PASSTHROUGH_ONLY};
use support::{env_or, http_get, ChildGuard, Server, TempDir};

/// Times of one publish, in seconds from the publisher's spawn.
struct Startup {
    admitted: f64,
    master: f64,
    playable: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("startup: bench");
        return;
    }
    let runs: usize = env_or("BENCH_RUNS", 5);
    let work = TempDir::new("startup");
    let input = work.file("input.flv");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=640x360:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "30",
        ])
        .args([
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "96k"])
        .arg(&input)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not generate the input");

    let mut summary = Vec::new();
    for (ladder, config) in [("default", None), ("passthrough", Some(PASSTHROUGH_ONLY))] {
        let config_path = work.file(&format!("{ladder}.toml"));
        let config_arg = config_path.display().to_string();
        let streams: Vec<String> = (0..runs).map(|i| format!("s{i}=startup-key-{i}")).collect();
        let mut args: Vec<&str> = Vec::new();
        if let Some(config) = config {
            std::fs::write(&config_path, config).expect("config");
            args.extend(["--config", &config_arg]);
        }
        for s in &streams {
            args.push("--stream");
            args.push(s);
        }
        let server = Server::start(&args);
        let mut results = Vec::new();
        for i in 0..runs {
            let r = publish_and_wait(&server, &work, &input, i);
            println!(
                "{ladder} publish {}: admitted {:.3} s, master 200 {:.3} s, playable {:.3} s after spawn ({:.3} s after admission)",
                i + 1,
                r.admitted,
                r.master,
                r.playable,
                r.playable - r.admitted
            );
            results.push(r);
        }
        let med = |f: fn(&Startup) -> f64| median(results.iter().map(f).collect());
        summary.push(format!(
            "  {ladder:<11} admitted {:.3} s, master 200 {:.3} s, playable {:.3} s after spawn; playable {:.3} s after admission",
            med(|r| r.admitted),
            med(|r| r.master),
            med(|r| r.playable),
            med(|r| r.playable - r.admitted)
        ));
    }
    println!();
    println!("startup (640x360 30 fps + AAC over RTMP, 2 s segments, LL-HLS, {runs} publishes per ladder, medians; target: playable within 2.3 s)");
    for line in summary {
        println!("{line}");
    }
}

/// Publishes `input` to stream `s{i}` of `server` and times its start-up.
fn publish_and_wait(server: &Server, work: &TempDir, input: &std::path::Path, i: usize) -> Startup {
    let stream = format!("s{i}");
    let stderr = work.file(&format!("publisher-{i}.stderr"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "flv"])
        .arg(server.rtmp_url(&format!("startup-key-{i}")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("publisher stderr"));
    let spawned = Instant::now();
    let publisher = ChildGuard::spawn("ffmpeg publisher", &mut cmd, Some(stderr));
    let deadline = spawned + Duration::from_secs(30);
    let (mut admitted, mut master) = (None, None);
    let master_path = format!("/live/{stream}/index.m3u8");
    loop {
        assert!(
            Instant::now() < deadline,
            "{stream}: not playable in 30 s\n{}",
            server.logs()
        );
        let now = spawned.elapsed().as_secs_f64();
        if admitted.is_none() && !server.stream(&stream)["publisher"].is_null() {
            admitted = Some(now);
        }
        if admitted.is_some() {
            let r = http_get(server.http, &master_path);
            if r.status == 200 {
                master.get_or_insert(now);
                let first = r
                    .body
                    .lines()
                    .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                    .map(str::to_owned);
                if let Some(variant) = first {
                    let media = http_get(server.http, &format!("/live/{stream}/{variant}"));
                    if media.status == 200
                        && (media.body.contains("#EXT-X-PART:") || media.body.contains("#EXTINF"))
                    {
                        drop(publisher);
                        return Startup {
                            admitted: admitted.unwrap_or(now),
                            master: master.unwrap_or(now),
                            playable: spawned.elapsed().as_secs_f64(),
                        };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
