//! The ladder: which renditions to make, and how they are planned against a source.
//!
//! Planning is a pure function of the configuration and the source size, so it is tested without
//! GStreamer and the server can show the plan before a pipeline exists.

use std::time::Duration;

use crate::error::Error;

/// One rendition (rung) of the ladder as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Name used in URLs and metrics, e.g. `720p` or `source`.
    pub name: String,
    /// Output height in pixels; the width follows the source's aspect ratio. Ignored for the
    /// passthrough rung.
    pub height: u32,
    /// Video bitrate in kbit/s. Ignored for the passthrough rung.
    pub video_kbps: u32,
    /// Frame rate cap; frames are dropped (never duplicated) to stay at or below it.
    pub fps: Option<u32>,
    /// Repackage the source's compressed video instead of transcoding it.
    pub passthrough: bool,
}

impl Rendition {
    /// A transcoded rung.
    pub fn transcode(name: &str, height: u32, video_kbps: u32, fps: Option<u32>) -> Self {
        Rendition {
            name: name.to_owned(),
            height,
            video_kbps,
            fps,
            passthrough: false,
        }
    }

    /// The passthrough rung (the source's video, repackaged).
    pub fn passthrough(name: &str) -> Self {
        Rendition {
            name: name.to_owned(),
            height: 0,
            video_kbps: 0,
            fps: None,
            passthrough: true,
        }
    }
}

/// The ladder and the knobs shared by every rung of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderConfig {
    /// Rungs, in the order they are reported.
    pub renditions: Vec<Rendition>,
    /// x264 `speed-preset` name: `ultrafast`, `superfast`, `veryfast`, `faster`, `fast`,
    /// `medium`, `slow`, `slower`, `veryslow` or `placebo`.
    pub preset: String,
    /// Target segment duration. Segments start at the first source keyframe at or after the
    /// previous segment start plus this duration, on every rung.
    pub segment_duration: Duration,
    /// When set, segments are emitted as chunks of about this duration (LL-HLS parts).
    pub part_duration: Option<Duration>,
    /// Input frames (per track) that may wait in the pipeline's input queue before `push`
    /// starts dropping.
    pub max_queued_frames: usize,
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig {
            renditions: default_ladder(),
            preset: "veryfast".to_owned(),
            segment_duration: Duration::from_secs(2),
            part_duration: None,
            max_queued_frames: 120,
        }
    }
}

/// x264 speed presets, as the `speed-preset` property names them.
pub const X264_PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

impl LadderConfig {
    /// Checks the values that GStreamer would otherwise reject at run time.
    pub fn validate(&self) -> Result<(), Error> {
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(Error::InvalidConfig(format!(
                "unknown x264 preset {:?}; use one of {}",
                self.preset,
                X264_PRESETS.join(", ")
            )));
        }
        if self.segment_duration < Duration::from_millis(100) {
            return Err(Error::InvalidConfig(
                "segment duration must be at least 100 ms".to_owned(),
            ));
        }
        if let Some(part) = self.part_duration {
            if part.is_zero() || part > self.segment_duration {
                return Err(Error::InvalidConfig(
                    "part duration must be above zero and at most the segment duration".to_owned(),
                ));
            }
        }
        if self.max_queued_frames == 0 {
            return Err(Error::InvalidConfig(
                "max_queued_frames must be at least 1".to_owned(),
            ));
        }
        if self.renditions.is_empty() {
            return Err(Error::InvalidConfig(
                "the ladder has no renditions".to_owned(),
            ));
        }
        for r in &self.renditions {
            if !r.passthrough && (r.height < 2 || r.video_kbps == 0) {
                return Err(Error::InvalidConfig(format!(
                    "rendition {:?} needs a height of at least 2 and a bitrate above zero",
                    r.name
                )));
            }
            if r.fps == Some(0) {
                return Err(Error::InvalidConfig(format!(
                    "rendition {:?} has a frame rate cap of 0",
                    r.name
                )));
            }
        }
        Ok(())
    }
}

/// The default ladder: the source repackaged, plus 720p, 480p and 360p capped at 30 fps.
pub fn default_ladder() -> Vec<Rendition> {
    vec![
        Rendition::passthrough("source"),
        Rendition::transcode("720p", 720, 2800, Some(30)),
        Rendition::transcode("480p", 480, 1200, Some(30)),
        Rendition::transcode("360p", 360, 700, Some(30)),
    ]
}

/// A rung as planned against a source: what the pipeline will actually make.
#[derive(Debug, Clone, PartialEq)]
pub struct RungPlan {
    /// Position in the output (the `rung` index of [`crate::ChunkSink::on_chunk`]).
    pub index: usize,
    /// The rendition's name.
    pub name: String,
    /// Output width in pixels (even).
    pub width: u32,
    /// Output height in pixels (even).
    pub height: u32,
    /// Video bitrate in kbit/s; `None` for passthrough.
    pub video_kbps: Option<u32>,
    /// Frame rate cap applied, if any.
    pub fps_cap: Option<u32>,
    /// True for the passthrough rung.
    pub passthrough: bool,
    /// The video track it carries: 0, the publish's main track (every transcoded rung, and the
    /// ladder's passthrough rung), or another track of a multitrack publish, passed through
    /// ([`with_tracks`]).
    pub track: u8,
}

fn even(v: f64) -> u32 {
    let v = (v / 2.0).round() * 2.0;
    if v < 2.0 {
        2
    } else {
        v as u32
    }
}

/// Plans the ladder against a source of `width`×`height`: rungs taller than the source are
/// skipped (no upscaling), widths follow the source aspect ratio rounded to even.
///
/// A source of unknown size (0) keeps every rung, sized as if it were 16:9.
pub fn plan(renditions: &[Rendition], width: u32, height: u32) -> Vec<RungPlan> {
    let aspect = if width > 0 && height > 0 {
        f64::from(width) / f64::from(height)
    } else {
        16.0 / 9.0
    };
    let mut out = Vec::new();
    for r in renditions {
        if r.passthrough {
            out.push(RungPlan {
                index: out.len(),
                name: r.name.clone(),
                width,
                height,
                video_kbps: None,
                fps_cap: None,
                passthrough: true,
                track: 0,
            });
            continue;
        }
        if height > 0 && r.height > height {
            continue;
        }
        let h = even(f64::from(r.height));
        out.push(RungPlan {
            index: out.len(),
            name: r.name.clone(),
            width: even(f64::from(h) * aspect),
            height: h,
            video_kbps: Some(r.video_kbps),
            fps_cap: r.fps,
            passthrough: false,
            track: 0,
        });
    }
    out
}

/// The plan of a publish without video: one rung that carries the audio alone, named after the
/// ladder's passthrough rendition (or `source` when it has none).
pub fn audio_only_plan(renditions: &[Rendition]) -> Vec<RungPlan> {
    let name = renditions
        .iter()
        .find(|r| r.passthrough)
        .map_or("source", |r| r.name.as_str());
    vec![RungPlan {
        index: 0,
        name: name.to_owned(),
        width: 0,
        height: 0,
        video_kbps: None,
        fps_cap: None,
        passthrough: true,
        track: 0,
    }]
}

/// `plan` with a passthrough rung `track<id>` after it for each of a multitrack publish's
/// other video `tracks` (by id), at that track's size. A track whose rung name the ladder
/// already uses is left out.
pub fn with_tracks(mut plan: Vec<RungPlan>, tracks: &[(u8, media::VideoConfig)]) -> Vec<RungPlan> {
    for (id, config) in tracks {
        let name = format!("track{id}");
        if *id == 0 || plan.iter().any(|r| r.name == name) {
            continue;
        }
        plan.push(RungPlan {
            index: plan.len(),
            name,
            width: config.width,
            height: config.height,
            video_kbps: None,
            fps_cap: None,
            passthrough: true,
            track: *id,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_skips_upscales_and_keeps_aspect() {
        let plan = plan(&default_ladder(), 640, 360);
        let names: Vec<_> = plan.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["source", "360p"]);
        assert_eq!((plan[1].width, plan[1].height), (640, 360));
        assert_eq!(plan[1].index, 1);

        let plan = super::plan(&[Rendition::transcode("x", 240, 300, None)], 1920, 1080);
        assert_eq!((plan[0].width, plan[0].height), (426, 240));
        // 4:3 and odd results round to even.
        let plan = super::plan(&[Rendition::transcode("x", 181, 300, None)], 640, 480);
        assert_eq!((plan[0].width, plan[0].height), (242, 182));
    }

    #[test]
    fn validation() {
        let mut c = LadderConfig::default();
        assert!(c.validate().is_ok());
        c.preset = "warp".into();
        assert!(matches!(c.validate(), Err(Error::InvalidConfig(_))));
        c.preset = "veryfast".into();
        c.part_duration = Some(Duration::from_secs(3));
        assert!(c.validate().is_err());
    }
}
