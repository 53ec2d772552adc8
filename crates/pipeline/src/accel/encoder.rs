//! Step 3: the encoder kinds, and a rung's settings mapped onto each one's own properties.

use gst::prelude::*;

use crate::accel::stage::Backend;
use crate::config::X264_PRESETS;
use crate::error::Error;

/// Which H.264 encoder element, and so which property names apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncoderKind {
    /// `x264enc`.
    X264,
    /// `nvh264enc` / `nvh264deviceNenc` (nvcodec's NvBaseEnc, the 1.22 default).
    NvEnc,
    /// `nvcudah264enc` / `nvcudah264deviceNenc` (nvcodec's newer GstNvEncoder).
    NvCudaEnc,
    /// `vah264enc` (the `va` plugin).
    Va,
    /// `vaapih264enc` (gstreamer-vaapi).
    Vaapi,
    /// Test only: `identity error-after=N ! x264enc` in a bin that pretends to be NVENC and fails
    /// on purpose. See [`crate::accel::Selection::with_fault_encoder`].
    Fault {
        /// Buffers before the error.
        error_after: u32,
    },
}

impl EncoderKind {
    /// Who does the work.
    pub fn backend(self) -> Backend {
        match self {
            EncoderKind::X264 => Backend::Software,
            EncoderKind::NvEnc | EncoderKind::NvCudaEnc | EncoderKind::Fault { .. } => {
                Backend::Nvidia
            }
            EncoderKind::Va | EncoderKind::Vaapi => Backend::Vaapi,
        }
    }

    /// Whether the encoder takes CUDA memory directly (no `cudadownload` in front).
    pub fn takes_cuda_memory(self) -> bool {
        matches!(self, EncoderKind::NvEnc | EncoderKind::NvCudaEnc)
    }

    /// The raw format the encoder is fed: I420 for x264 (4:2:0 that browsers decode; x264
    /// would otherwise pick 4:4:4), NV12 for the hardware encoders.
    pub fn input_format(self) -> &'static str {
        match self {
            EncoderKind::X264 | EncoderKind::Fault { .. } => "I420",
            _ => "NV12",
        }
    }
}

/// A rung's encoder settings, before mapping to one encoder's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Target bitrate, kbit/s (constant bitrate).
    pub kbps: u32,
    /// Longest GOP in frames. Segment IDRs are forced by force-key-unit events; this only bounds
    /// the encoder's own keyframes.
    pub key_int_max: u32,
    /// x264 speed preset name; other encoders get the nearest equivalent.
    pub preset: String,
    /// No frame reordering (no B-frames, no lookahead): each frame leaves the encoder before the
    /// next enters, which LL-HLS parts and cuts on forced IDRs need.
    pub low_latency: bool,
}

/// Position of an x264 preset from fastest (0) to slowest (9).
fn preset_rank(preset: &str) -> usize {
    X264_PRESETS.iter().position(|p| *p == preset).unwrap_or(2)
}

/// The property values that give `settings` on encoder `kind`, as `(name, value)` strings
/// (parsed against each property's type when applied). Pure, so every encoder's mapping is
/// tested without the element.
pub fn encoder_properties(kind: EncoderKind, s: &EncoderSettings) -> Vec<(&'static str, String)> {
    let kbps = s.kbps.to_string();
    let gop = s.key_int_max.to_string();
    let rank = preset_rank(&s.preset);
    // VA-API quality scale: 1 (best) … 7 (fastest).
    let va_quality = (7usize.saturating_sub(rank * 6 / 9))
        .clamp(1, 7)
        .to_string();
    let nv_preset = match (s.low_latency, rank) {
        (true, 0..=2) => "low-latency-hp",
        (true, 3..=5) => "low-latency",
        (true, _) => "low-latency-hq",
        (false, 0..=2) => "hp",
        (false, 3..=5) => "default",
        (false, _) => "hq",
    };
    let mut p: Vec<(&'static str, String)> = Vec::new();
    match kind {
        EncoderKind::X264 | EncoderKind::Fault { .. } => {
            p.push(("bitrate", kbps));
            p.push(("pass", "cbr".into()));
            // VBV of one second at the target bitrate keeps the stream CBR-ish.
            p.push(("vbv-buf-capacity", "1000".into()));
            p.push(("key-int-max", gop));
            p.push(("speed-preset", s.preset.clone()));
            if s.low_latency {
                p.push(("tune", "zerolatency".into()));
                p.push(("bframes", "0".into()));
            }
            // IDRs only where the cadence forces them, never at scene cuts.
            p.push(("option-string", "scenecut=0".into()));
        }
        EncoderKind::NvEnc | EncoderKind::NvCudaEnc => {
            p.push(("bitrate", kbps.clone()));
            p.push(("rc-mode", "cbr".into()));
            p.push(("vbv-buffer-size", kbps));
            p.push(("gop-size", gop));
            p.push(("preset", nv_preset.into()));
            if s.low_latency {
                // The same settings under the two element generations' names.
                let (no_reorder, bframes) = if kind == EncoderKind::NvEnc {
                    ("zerolatency", "bframes")
                } else {
                    ("zero-reorder-delay", "b-frames")
                };
                p.push((no_reorder, "true".into()));
                p.push((bframes, "0".into()));
                p.push(("rc-lookahead", "0".into()));
            }
        }
        EncoderKind::Va => {
            p.push(("bitrate", kbps.clone()));
            p.push(("rate-control", "cbr".into()));
            p.push(("cpb-size", kbps));
            // vah264enc caps its GOP at 1024 frames.
            p.push(("key-int-max", s.key_int_max.min(1024).to_string()));
            p.push(("target-usage", va_quality));
            if s.low_latency {
                p.push(("b-frames", "0".into()));
            }
        }
        EncoderKind::Vaapi => {
            p.push(("bitrate", kbps));
            p.push(("rate-control", "cbr".into()));
            p.push(("cpb-length", "1000".into()));
            p.push(("keyframe-period", gop));
            p.push(("quality-level", va_quality));
            if s.low_latency {
                p.push(("max-bframes", "0".into()));
            }
        }
    }
    p
}

/// Sets `props` on `element`, each parsed against the property's own type. A property the
/// element lacks (an older plugin) is skipped and returned; a value it refuses is an error.
pub fn apply_properties(
    element: &gst::Element,
    props: &[(&str, String)],
) -> Result<Vec<String>, Error> {
    let mut skipped = Vec::new();
    for (name, value) in props {
        let Some(pspec) = element.find_property(name) else {
            skipped.push((*name).to_owned());
            continue;
        };
        let flags = pspec.flags();
        if !flags.contains(gst::glib::ParamFlags::WRITABLE)
            || flags.contains(gst::glib::ParamFlags::CONSTRUCT_ONLY)
        {
            skipped.push((*name).to_owned());
            continue;
        }
        let v = gst::glib::Value::deserialize_with_pspec(value, &pspec).map_err(|e| {
            Error::InvalidConfig(format!(
                "{}: property {name} does not take {value:?}: {e}",
                element.name()
            ))
        })?;
        element.set_property_from_value(name, &v);
    }
    Ok(skipped)
}

/// Sets `cuda-device-id` where the element has a writable one (the CUDA filters).
pub(crate) fn set_cuda_device(element: &gst::Element, device: u32) {
    if let Some(pspec) = element.find_property("cuda-device-id") {
        if pspec.flags().contains(gst::glib::ParamFlags::WRITABLE)
            && !pspec
                .flags()
                .contains(gst::glib::ParamFlags::CONSTRUCT_ONLY)
        {
            let value = device.to_string();
            if let Ok(v) = gst::glib::Value::deserialize_with_pspec(&value, &pspec) {
                element.set_property_from_value("cuda-device-id", &v);
            }
        }
    }
}
