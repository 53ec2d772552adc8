//! Side-by-side: Ferrocast's ladder against one naive ffmpeg process, same input, same run.
//!
//! `cargo bench -p ferrocast --bench ladder_vs_ffmpeg` (or `make bench-ladder`).
//!
//! 1. Generates a high-detail 1080p30 H.264 + AAC input (`BENCH_SECONDS`, default 20 s) once.
//! 2. Ferrocast (release build) on loopback ports; ffmpeg publishes the input with `-re -c copy`
//!    over RTMP, so Ferrocast sees a real-time publish. Its CPU seconds come from
//!    `/proc/PID/stat` before and after; peak RSS from `VmHWM`.
//! 3. One ffmpeg process transcodes the same input to the same ladder (source copy + 720p, 480p,
//!    360p, same x264 preset and bitrates) with `-filter_complex split/scale ... -f hls`, as fast as
//!    it can; its CPU seconds and peak RSS are sampled from `/proc/PID/stat` and `VmHWM` every
//!    20 ms until it exits (the last sample misses at most one interval).
//!
//! Both sides are reported as CPU seconds per media second; the ratio is Ferrocast / ffmpeg.
//! The machine is shared and noisy: `BENCH_RUNS` (default 3) runs, medians reported.

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PRESET: &str = "veryfast";
const LADDER: [(&str, u32, u32); 3] =
    [("720p", 720, 2800), ("480p", 480, 1200), ("360p", 360, 700)];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("ladder_vs_ffmpeg: bench");
        return;
    }
    let seconds: u32 = env_or("BENCH_SECONDS", 20);
    let runs: usize = env_or("BENCH_RUNS", 3);
    let work = tempdir();
    let input = work.join("input.mp4");
    common::noisy_1080p30(&input, u64::from(seconds), 60);

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 1..=runs {
        let f = run_ferrocast(&work, &input, seconds);
        let g = run_ffmpeg(&work, &input);
        println!(
            "run {run}: ferrocast {:.3} cpu-s/media-s (peak RSS {} MiB) | ffmpeg {:.3} cpu-s/media-s (peak RSS {} MiB)",
            f.cpu / seconds as f64,
            f.peak_rss_kib / 1024,
            g.cpu / seconds as f64,
            g.peak_rss_kib / 1024
        );
        ours.push(f);
        theirs.push(g);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let ours_cpu = med(&mut ours.iter().map(|m| m.cpu / seconds as f64).collect());
    let theirs_cpu = med(&mut theirs.iter().map(|m| m.cpu / seconds as f64).collect());
    let ours_rss = med(&mut ours
        .iter()
        .map(|m| m.peak_rss_kib as f64 / 1024.0)
        .collect());
    let theirs_rss = med(&mut theirs
        .iter()
        .map(|m| m.peak_rss_kib as f64 / 1024.0)
        .collect());
    println!();
    println!("ladder_vs_ffmpeg ({seconds} s of 1080p30, ladder source+720p+480p+360p, x264 {PRESET}, {runs} runs, medians)");
    println!("  ferrocast: {ours_cpu:.3} CPU s per media s, peak RSS {ours_rss:.0} MiB");
    println!("  ffmpeg:    {theirs_cpu:.3} CPU s per media s, peak RSS {theirs_rss:.0} MiB");
    println!("  ratio (ferrocast / ffmpeg): {:.3}", ours_cpu / theirs_cpu);
    let _ = std::fs::remove_dir_all(&work);
}

struct Measure {
    cpu: f64,
    peak_rss_kib: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrocast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime (fields 14, 15) plus waited-for children (16, 17); USER_HZ is 100.
    let sum: u64 = [11, 12, 13, 14]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
        .sum();
    Some(sum as f64 / 100.0)
}

fn proc_peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_ferrocast(work: &Path, input: &Path, seconds: u32) -> Measure {
    let bin = env!("CARGO_BIN_EXE_ferrocast");
    let mut child = Command::new(bin)
        .args([
            "--http",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
            "--srt",
            "127.0.0.1:0",
        ])
        .args(["--stream", "bench=bench-key", "--log-level", "warn"])
        .args(["--set", &format!("transcode.preset={PRESET}")])
        .current_dir(work)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferrocast");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let mut server = Killer(child);
    let mut rtmp = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("read banner");
        if let Some(addr) = line.strip_prefix("rtmp listening on ") {
            rtmp = Some(addr.trim().to_owned());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ferrocast did not print its RTMP address"
        );
    }
    // Keep reading: the server prints more, and a closed pipe would make its println! fail.
    std::thread::spawn(move || lines.for_each(drop));
    let rtmp = rtmp.expect("rtmp address in banner");
    let before = proc_cpu_seconds(pid).unwrap_or(0.0);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(input)
        .args([
            "-c",
            "copy",
            "-f",
            "flv",
            &format!("rtmp://{rtmp}/live/bench-key"),
        ])
        .status()
        .expect("ffmpeg publish");
    assert!(status.success(), "publishing to ferrocast failed");
    // Let the last segments drain through the encoders.
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = proc_cpu_seconds(pid).unwrap_or(0.0) - before;
    let peak_rss_kib = proc_peak_rss_kib(pid).unwrap_or(0);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.0.wait();
    let _ = seconds;
    Measure { cpu, peak_rss_kib }
}

fn run_ffmpeg(work: &Path, input: &Path) -> Measure {
    let out = work.join("ffmpeg-hls");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("out dir");
    let mut filter = String::from("[0:v]split=3");
    for (name, _, _) in LADDER {
        filter.push_str(&format!("[in{name}]"));
    }
    filter.push(';');
    for (name, h, _) in LADDER {
        filter.push_str(&format!("[in{name}]scale=-2:{h},format=yuv420p[v{name}];"));
    }
    filter.pop();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input);
    cmd.args(["-filter_complex", &filter]);
    // Stream 0: the source, copied (the passthrough rung).
    cmd.args(["-map", "0:v", "-map", "0:a", "-c:v:0", "copy"]);
    for (i, (name, _, kbps)) in LADDER.iter().enumerate() {
        let v = i + 1;
        cmd.args(["-map", &format!("[v{name}]"), "-map", "0:a"]);
        cmd.args([
            &format!("-c:v:{v}"),
            "libx264",
            &format!("-preset:v:{v}"),
            PRESET,
            &format!("-tune:v:{v}"),
            "zerolatency",
            &format!("-b:v:{v}"),
            &format!("{kbps}k"),
            &format!("-maxrate:v:{v}"),
            &format!("{kbps}k"),
            &format!("-bufsize:v:{v}"),
            &format!("{}k", kbps * 2),
        ]);
    }
    cmd.args([
        "-c:a",
        "copy",
        "-force_key_frames",
        "expr:gte(t,n_forced*2)",
    ]);
    cmd.args([
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_segment_type",
        "fmp4",
        "-hls_list_size",
        "6",
    ]);
    cmd.args(["-var_stream_map", "v:0,a:0 v:1,a:1 v:2,a:2 v:3,a:3"]);
    cmd.args(["-master_pl_name", "index.m3u8"]);
    cmd.arg(out.join("v%v.m3u8"));
    let child = cmd.stdin(Stdio::null()).spawn().expect("ffmpeg ladder");
    let pid = child.id();
    let mut child = Killer(child);
    // Sample while it runs: the last sample before exit holds (almost) all of its CPU time.
    let mut cpu = 0.0;
    let mut peak = 0;
    loop {
        if let Some(c) = proc_cpu_seconds(pid) {
            cpu = c;
        }
        if let Some(r) = proc_peak_rss_kib(pid) {
            peak = r;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            assert!(status.success(), "ffmpeg ladder failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Measure {
        cpu,
        peak_rss_kib: peak,
    }
}
