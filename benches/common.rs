//! What several benches share: a process's CPU time, the noisy 1080p30 input, nginx stopped the
//! way it must be, the passthrough-only ladder and medians. Included with `#[path = "common.rs"] mod common;` next to `support`.

#![allow(dead_code)] // each bench uses a different subset

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::ChildGuard;

/// A ladder of the source alone, repackaged (no decode, no encode).
pub(crate) const PASSTHROUGH_ONLY: &str = r#"
[[transcode.renditions]]
name = "source"
passthrough = true
"#;

/// The median of `v` (the upper one of an even count; NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// CPU seconds (user and system) a process has used.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; USER_HZ is 100.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// Writes `seconds` of 1080p30 H.264 (6 Mb/s, high profile, a keyframe every `gop` frames) and
/// AAC to `path` (the container from its extension). Noise over a moving pattern, so that the
/// encoders work as on camera input and the bitrate is a camera's.
pub(crate) fn noisy_1080p30(path: &Path, seconds: u64, gop: u32) {
    let gop = gop.to_string();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-vf", "noise=alls=20:allf=t+u,format=yuv420p"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-b:v", "6000k"])
        .args([
            "-maxrate",
            "6000k",
            "-bufsize",
            "12000k",
            "-profile:v",
            "high",
        ])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "128k"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg must be installed to run this benchmark");
    assert!(status.success(), "generating the input failed");
}

/// nginx, stopped with SIGQUIT (graceful: the master stops its workers) before the guard's
/// SIGKILL: a SIGKILLed master leaves its workers behind.
pub(crate) struct Nginx(pub(crate) ChildGuard);

impl Drop for Nginx {
    fn drop(&mut self) {
        self.0.signal("QUIT");
        if self.0.wait_timeout(Duration::from_secs(5)).is_none() {
            self.0.signal("TERM");
            let _ = self.0.wait_timeout(Duration::from_secs(5));
        }
    }
}
