//! The transcoder's configuration sections: `[transcode]` (the ladder and the accelerator
//! policy), `[nvidia]` and `[hls]` (packaging), and what the pipeline and the packager make of
//! them.

use std::collections::HashSet;
use std::time::Duration;

use media::StreamName;
use serde::{Deserialize, Serialize};
use settings::Invalid;

/// The transcoding ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Transcode {
    /// x264 speed preset (`ultrafast` … `veryslow`): faster presets cost less CPU per rung.
    pub preset: String,
    /// Frames queued towards the pipeline before ingest starts dropping (to the next keyframe).
    pub max_queued_frames: usize,
    /// The rungs. Rungs taller than the source are skipped.
    pub renditions: Vec<RenditionConfig>,
    /// `auto` (NVIDIA, then VA-API, then CPU, per stage), `nvidia` (promised: GPU decode and
    /// scale, NVENC where the GPU has one) or `software`.
    pub accelerator: Accelerator,
    /// When promised hardware is missing, out of encoder sessions, or fails mid-stream:
    /// `fallback` (go on with the CPU) or `fail` (refuse the publish, end the stream).
    pub on_accelerator_failure: OnAcceleratorFailure,
    /// What happens when the machine cannot keep up: rungs are shed (`[transcode.overload]`).
    pub overload: Overload,
    /// Testing knob, never for production: `identity-fail` (or `identity-fail:N`) makes every
    /// rung's encoder a stand-in "hardware" encoder that fails after N frames (default 60).
    /// Honoured only when the environment variable `TESTING_FERROCAST_FAULTS=1` is set too.
    pub test_fault_encoder: String,
    /// Repackage a stream whose ladder keeps only the passthrough rung (a `passthrough`-only
    /// ladder, or a source no taller than the other rungs' skip) in Ferrocast's own fMP4
    /// writer instead of GStreamer: no pipeline, no threads, and a frame's bytes copied once,
    /// into its fragment.
    /// Applies to one video track of H.264, HEVC or AV1 with AAC-LC audio or none; other
    /// publishes run in GStreamer. On by default: `false` runs every stream in GStreamer.
    pub direct_passthrough: bool,
}

/// `[transcode.overload]`: shedding rungs when the encoders fall behind, and bringing them back
/// when there is headroom again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Overload {
    /// Shed rungs under overload. Off: rungs fall behind, and the input drops frames.
    pub shed: bool,
    /// A rung whose realtime factor is below this share of the input's own rate is behind.
    pub behind_below: f64,
    /// A stream behind (a rung behind, or frames dropped at its input) for this long sheds one
    /// rung, then waits as long again before it sheds another.
    #[serde(with = "settings::duration")]
    pub shed_after: Duration,
    /// One shed rung comes back once the process's CPU use has stayed below this share of the
    /// CPUs it may use...
    pub restore_cpu_below: f64,
    /// ...for this long, and nothing was behind meanwhile. Doubled (up to 8 times) each time a
    /// rung that came back had to be shed again within 5 minutes.
    #[serde(with = "settings::duration")]
    pub restore_after: Duration,
}

impl Default for Overload {
    fn default() -> Self {
        Overload {
            shed: true,
            behind_below: 0.9,
            shed_after: Duration::from_secs(8),
            restore_cpu_below: 0.6,
            restore_after: Duration::from_secs(30),
        }
    }
}

/// `transcode.accelerator`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// Best usable element per stage.
    Auto,
    /// NVIDIA promised.
    Nvidia,
    /// CPU only.
    Software,
}

/// `transcode.on_accelerator_failure`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnAcceleratorFailure {
    /// Go on in software, with a log line and a metric.
    Fallback,
    /// Refuse the publish (or end the stream) with the reason.
    Fail,
}

/// NVIDIA GPUs. The defaults: no session limit, device 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Nvidia {
    /// Most NVENC sessions at once, counted per rung (every hardware-encoded rung is one
    /// session); 0 means no limit. Consumer GPUs cap sessions in the driver.
    pub max_encode_sessions: usize,
    /// CUDA device index on multi-GPU machines (nvcodec's per-device elements, e.g.
    /// `nvh264device1enc`, and the CUDA filters' `cuda-device-id`).
    pub device: u32,
}

impl Transcode {
    /// Frames after which the test-only fault encoder fails, when `test_fault_encoder` is set.
    pub fn fault_encoder_after(&self) -> Option<u32> {
        match self.test_fault_encoder.split_once(':') {
            None if self.test_fault_encoder == "identity-fail" => Some(60),
            Some(("identity-fail", n)) => n.parse().ok().filter(|n| *n > 0),
            _ => None,
        }
    }
}

/// One rung of the ladder, as configured (`[[transcode.renditions]]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RenditionConfig {
    /// Name used in URLs (`720p`).
    pub name: StreamName,
    /// Output height; width follows the aspect ratio, rounded to even. Ignored for passthrough.
    #[serde(default)]
    pub height: u32,
    /// Video bitrate in kb/s (CBR). Ignored for passthrough.
    #[serde(default)]
    pub video_kbps: u32,
    /// Frame-rate cap; frames above it are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Repackage the source video without re-encoding.
    #[serde(default)]
    pub passthrough: bool,
    /// Under overload, rungs of lower priority are shed first (among equals, the tallest first,
    /// as it costs the most). A passthrough rung is never shed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shed_priority: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// HLS packaging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Hls {
    /// Target segment duration; keyframes are forced on this cadence.
    #[serde(with = "settings::duration")]
    pub segment_duration: Duration,
    /// Segments listed in each media playlist. Above `CAN-SKIP-UNTIL` (6 target durations) so
    /// LL-HLS delta updates have segments to skip.
    pub window: usize,
    /// How long an ended stream's playlists (with ENDLIST) stay served.
    #[serde(with = "settings::duration")]
    pub keep_ended: Duration,
    /// Serve Low-Latency HLS: parts, preload hints, blocking reload, delta updates.
    pub low_latency: bool,
    /// LL-HLS part (CMAF chunk) duration.
    #[serde(with = "settings::duration")]
    pub part_duration: Duration,
}

impl Default for Transcode {
    fn default() -> Self {
        let rung = |name: &str, height, video_kbps| RenditionConfig {
            name: name.parse().expect("valid literal"),
            height,
            video_kbps,
            fps: Some(30),
            passthrough: false,
            shed_priority: 0,
        };
        Transcode {
            preset: "veryfast".into(),
            max_queued_frames: 90,
            // Suits a 1080p30 OBS stream on a small machine: the source is repackaged, and three
            // lower rungs are encoded from one decode.
            renditions: vec![
                RenditionConfig {
                    name: "source".parse().expect("valid literal"),
                    height: 0,
                    video_kbps: 0,
                    fps: None,
                    passthrough: true,
                    shed_priority: 0,
                },
                rung("720p", 720, 2800),
                rung("480p", 480, 1200),
                rung("360p", 360, 700),
            ],
            accelerator: Accelerator::Auto,
            on_accelerator_failure: OnAcceleratorFailure::Fallback,
            direct_passthrough: true,
            overload: Overload::default(),
            test_fault_encoder: String::new(),
        }
    }
}

impl Default for Hls {
    fn default() -> Self {
        Hls {
            segment_duration: Duration::from_secs(2),
            window: 10,
            keep_ended: Duration::from_secs(60),
            low_latency: true,
            part_duration: Duration::from_millis(334),
        }
    }
}

impl Transcode {
    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        let t = self;
        if !pipeline::X264_PRESETS.contains(&t.preset.as_str()) {
            return Err(Invalid(format!(
                "transcode.preset {:?} is not an x264 preset; use one of {}",
                t.preset,
                pipeline::X264_PRESETS.join(", ")
            )));
        }
        if t.renditions.is_empty() {
            return Err(Invalid(
                "transcode.renditions is empty: configure at least one rung".into(),
            ));
        }
        if !t.test_fault_encoder.is_empty() && t.fault_encoder_after().is_none() {
            return Err(Invalid(format!(
                "transcode.test_fault_encoder {:?} is not `identity-fail` or `identity-fail:N`",
                t.test_fault_encoder
            )));
        }
        if t.max_queued_frames == 0 {
            return Err(Invalid(
                "transcode.max_queued_frames must be above 0".into(),
            ));
        }
        let o = &t.overload;
        if !(o.behind_below > 0.0 && o.behind_below <= 1.0) {
            return Err(Invalid(
                "transcode.overload.behind_below must be above 0 and at most 1".into(),
            ));
        }
        if !(o.restore_cpu_below > 0.0 && o.restore_cpu_below < 1.0) {
            return Err(Invalid(
                "transcode.overload.restore_cpu_below must be between 0 and 1".into(),
            ));
        }
        if o.shed_after < Duration::from_secs(1) || o.restore_after < Duration::from_secs(1) {
            return Err(Invalid(
                "transcode.overload.shed_after and restore_after must be at least 1s".into(),
            ));
        }
        let mut names = HashSet::new();
        for r in &t.renditions {
            if !names.insert(&r.name) {
                return Err(Invalid(format!(
                    "duplicate rendition name {:?}",
                    r.name.as_str()
                )));
            }
            if !r.passthrough {
                if !(64..=4320).contains(&r.height) {
                    return Err(Invalid(format!(
                        "rendition {:?}: height must be between 64 and 4320",
                        r.name.as_str()
                    )));
                }
                if !(50..=100_000).contains(&r.video_kbps) {
                    return Err(Invalid(format!(
                        "rendition {:?}: video_kbps must be between 50 and 100000",
                        r.name.as_str()
                    )));
                }
            }
            if r.fps == Some(0) {
                return Err(Invalid(format!(
                    "rendition {:?}: fps must be above 0",
                    r.name.as_str()
                )));
            }
        }
        Ok(())
    }
}

impl Hls {
    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        let h = self;
        if h.segment_duration < Duration::from_millis(500)
            || h.segment_duration > Duration::from_secs(20)
        {
            return Err(Invalid(
                "hls.segment_duration must be between 500ms and 20s".into(),
            ));
        }
        if h.part_duration < Duration::from_millis(100) || h.part_duration * 2 > h.segment_duration
        {
            return Err(Invalid(
                "hls.part_duration must be at least 100ms and at most half of hls.segment_duration"
                    .into(),
            ));
        }
        if !(2..=100).contains(&h.window) {
            return Err(Invalid(
                "hls.window must be between 2 and 100 segments".into(),
            ));
        }
        Ok(())
    }
}

impl Transcode {
    /// The pipeline's ladder for this configuration, cut into segments (and parts) as `hls`
    /// says.
    pub fn ladder(&self, hls: &Hls) -> pipeline::LadderConfig {
        pipeline::LadderConfig {
            renditions: self
                .renditions
                .iter()
                .map(|r| pipeline::Rendition {
                    name: r.name.to_string(),
                    height: r.height,
                    video_kbps: r.video_kbps,
                    fps: r.fps,
                    passthrough: r.passthrough,
                })
                .collect(),
            preset: self.preset.clone(),
            segment_duration: hls.segment_duration,
            part_duration: hls.low_latency.then_some(hls.part_duration),
            max_queued_frames: self.max_queued_frames,
        }
    }
}

impl Hls {
    /// The packager's settings for this configuration.
    pub fn packager(&self) -> hls::PackagerConfig {
        hls::PackagerConfig {
            window: self.window,
            segment_duration: self.segment_duration,
            low_latency: self.low_latency,
            part_target: self.part_duration,
            // Without LL-HLS the muxer has no chunk duration: each segment is one chunk.
            whole_segments: !self.low_latency,
            ..hls::PackagerConfig::default()
        }
    }
}
