//! Which GStreamer element does each stage: decode, scale + convert, encode.
//!
//! Three steps, each testable on its own:
//! 1. [`probe`] asks an [`ElementRegistry`] which candidate factories exist and which actually
//!    open (registered is not usable: nvcodec registers `nvh264enc` on a GPU whose NVENC sessions
//!    are all taken, and a container without `NVIDIA_DRIVER_CAPABILITIES=video` has no codec).
//!    The result, [`Capabilities`], is plain data for the start-up log, the API and the metrics.
//! 2. [`select`] turns capabilities and the [`AcceleratorPolicy`] into a [`Selection`]: one
//!    choice per stage, the reason for every software fallback, and what the policy promised but
//!    the machine cannot give ([`Selection::unmet`]).
//! 3. [`encoder_properties`] maps a rung's settings onto the chosen encoder's own properties.
//!
//! NVIDIA stages run in CUDA memory (`video/x-raw(memory:CUDAMemory)`) between NVIDIA elements,
//! with `cudaupload`/`cudadownload` at the edges. A GPU with NVDEC and CUDA but no NVENC (H100,
//! H200) gets the hybrid chain: GPU decode and scale, x264 encode.
//!
//! Multi-GPU: in GStreamer 1.22 the codec elements' `cuda-device-id` is read-only; nvcodec
//! registers one element per device instead (`nvh264dec`, `nvh264device1dec`, `nvh264enc`,
//! `nvh264device1enc`, `nvcudah264enc`, `nvcudah264device1enc`). The CUDA filters
//! (`cudaupload`, `cudascale`, `cudaconvert`, `cudadownload`) take a writable `cuda-device-id`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// How long one "can this element open a session" probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// `transcode.accelerator`: which hardware to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceleratorPolicy {
    /// Every stage uses the best usable element: NVIDIA, then VA-API (encode), then software.
    #[default]
    Auto,
    /// NVIDIA is promised: decode and scale on the GPU, and NVENC where the GPU has one.
    Nvidia,
    /// CPU only: `avdec_h264`, `videoscale`, `x264enc`.
    Software,
}

impl AcceleratorPolicy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AcceleratorPolicy::Auto => "auto",
            AcceleratorPolicy::Nvidia => "nvidia",
            AcceleratorPolicy::Software => "software",
        }
    }
}

/// `transcode.on_accelerator_failure`: what happens when promised hardware is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Go on in software, say so in the log and the metrics.
    #[default]
    Fallback,
    /// Refuse the publish (or end the stream) with the reason.
    Fail,
}

impl FailurePolicy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fallback => "fallback",
            FailurePolicy::Fail => "fail",
        }
    }
}

/// A stage of the video chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// H.264 decoding, once per stream.
    Decode,
    /// Scaling and colour conversion, per rung.
    Scale,
    /// H.264 encoding, per rung (one encoder session each).
    Encode,
}

impl Stage {
    /// Label value (`decode`, `scale`, `encode`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Scale => "scale",
            Stage::Encode => "encode",
        }
    }

    /// Every stage, in chain order.
    pub const ALL: [Stage; 3] = [Stage::Decode, Stage::Scale, Stage::Encode];
}

/// Who does the work of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// The CPU.
    Software,
    /// An NVIDIA GPU (NVDEC, CUDA, NVENC).
    Nvidia,
    /// VA-API (Intel, AMD).
    Vaapi,
}

impl Backend {
    /// Label value (`software`, `nvidia`, `vaapi`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Software => "software",
            Backend::Nvidia => "nvidia",
            Backend::Vaapi => "vaapi",
        }
    }

    /// True for anything but the CPU.
    pub fn is_hardware(self) -> bool {
        self != Backend::Software
    }

    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::Software, Backend::Nvidia, Backend::Vaapi];
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where elements come from: the running GStreamer ([`GstRegistry`]) or a test's fake
/// ([`FakeRegistry`]).
pub trait ElementRegistry: Send + Sync {
    /// The factory is registered.
    fn has(&self, factory: &str) -> bool;
    /// An element of the factory can actually process a frame (opens a session, finds a device).
    fn can_open(&self, factory: &str) -> bool;
}

/// The running GStreamer. `can_open` runs a one-frame test pipeline through the element, under
/// a timeout, once per factory.
#[derive(Debug, Default)]
pub struct GstRegistry {
    opened: Mutex<HashMap<String, bool>>,
}

impl GstRegistry {
    /// A registry over the process's GStreamer (initialising it if needed).
    pub fn new() -> GstRegistry {
        let _ = crate::init();
        GstRegistry::default()
    }
}

impl ElementRegistry for GstRegistry {
    fn has(&self, factory: &str) -> bool {
        crate::init().is_ok() && gst::ElementFactory::find(factory).is_some()
    }

    fn can_open(&self, factory: &str) -> bool {
        if !self.has(factory) {
            return false;
        }
        if let Some(&v) = self
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(factory).copied())
            .as_ref()
        {
            return v;
        }
        let result = match probe_launch_line(factory, |f| self.has(f)) {
            Some(line) => match run_probe(&line) {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(factory, "probe failed: {e}");
                    false
                }
            },
            // Nothing to probe with (a filter we do not know): registered is all we can say.
            None => true,
        };
        if let Ok(mut m) = self.opened.lock() {
            m.insert(factory.to_owned(), result);
        }
        result
    }
}

/// The one-frame pipeline that shows whether `factory` works, or `None` to trust registration.
fn probe_launch_line(factory: &str, has: impl Fn(&str) -> bool) -> Option<String> {
    const RAW: &str =
        "videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240,framerate=30/1";
    let cuda = ["cudaupload", "cudascale", "cudaconvert", "cudadownload"];
    if cuda.contains(&factory) {
        return Some(format!(
            "{RAW} ! cudaupload ! cudascale ! cudaconvert ! \
             video/x-raw(memory:CUDAMemory),width=160,height=120,format=NV12 ! cudadownload ! fakesink"
        ));
    }
    if factory.ends_with("dec") {
        // A decoder needs H.264 to chew on; without an encoder here, registration must do.
        if !has("x264enc") {
            return None;
        }
        return Some(format!(
            "{RAW},format=I420 ! x264enc speed-preset=ultrafast tune=zerolatency ! h264parse ! {factory} ! fakesink"
        ));
    }
    if factory.ends_with("enc") {
        return Some(format!("{RAW},format=NV12 ! {factory} ! fakesink"));
    }
    None
}

fn run_probe(line: &str) -> Result<(), String> {
    let pipeline = gst::parse::launch(line).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(e.to_string());
    }
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(PROBE_TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
        _ => Err(format!("no frame within {PROBE_TIMEOUT:?}")),
    }
}

/// A registry that says what a test tells it to.
#[derive(Debug, Clone, Default)]
pub struct FakeRegistry {
    present: HashSet<String>,
    broken: HashSet<String>,
}

impl FakeRegistry {
    /// Nothing registered.
    pub fn empty() -> FakeRegistry {
        FakeRegistry::default()
    }

    /// The software elements every Ferrocast machine has.
    pub fn software() -> FakeRegistry {
        FakeRegistry::empty().with(&["avdec_h264", "videoscale", "videoconvert", "x264enc"])
    }

    /// Adds registered, working factories.
    pub fn with(mut self, factories: &[&str]) -> FakeRegistry {
        self.present
            .extend(factories.iter().map(|f| (*f).to_owned()));
        self
    }

    /// Adds factories that are registered but fail to open.
    pub fn with_broken(mut self, factories: &[&str]) -> FakeRegistry {
        for f in factories {
            self.present.insert((*f).to_owned());
            self.broken.insert((*f).to_owned());
        }
        self
    }
}

impl ElementRegistry for FakeRegistry {
    fn has(&self, factory: &str) -> bool {
        self.present.contains(factory)
    }

    fn can_open(&self, factory: &str) -> bool {
        self.present.contains(factory) && !self.broken.contains(factory)
    }
}

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
    /// on purpose. See [`Selection::with_fault_encoder`].
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

/// The nvcodec factory names for CUDA device `device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaFactories {
    /// NVDEC H.264 decoder.
    pub decoder: String,
    /// NVENC H.264 encoder (NvBaseEnc).
    pub encoder: String,
    /// NVENC H.264 encoder (CUDA mode, GstNvEncoder).
    pub cuda_encoder: String,
}

impl NvidiaFactories {
    /// Device 0 has the plain names; device N registers `nvh264deviceNdec` and so on.
    pub fn for_device(device: u32) -> NvidiaFactories {
        if device == 0 {
            NvidiaFactories {
                decoder: "nvh264dec".into(),
                encoder: "nvh264enc".into(),
                cuda_encoder: "nvcudah264enc".into(),
            }
        } else {
            NvidiaFactories {
                decoder: format!("nvh264device{device}dec"),
                encoder: format!("nvh264device{device}enc"),
                cuda_encoder: format!("nvcudah264device{device}enc"),
            }
        }
    }
}

/// The CUDA filters, device-independent names (the device is their `cuda-device-id`).
pub const CUDA_FILTERS: [&str; 4] = ["cudaupload", "cudascale", "cudaconvert", "cudadownload"];

/// One candidate element as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementCapability {
    /// The stage it would serve.
    pub stage: Stage,
    /// Who does the work.
    pub backend: Backend,
    /// GStreamer factory name.
    pub factory: String,
    /// The factory is registered.
    pub registered: bool,
    /// It processed a test frame (only probed when registered).
    pub usable: bool,
}

/// What the machine offers, from [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// CUDA device the NVIDIA candidates were probed on.
    pub device: u32,
    /// Every candidate, in preference order within each stage.
    pub elements: Vec<ElementCapability>,
}

impl Capabilities {
    /// Whether some element of `backend` is usable for `stage` (the
    /// `ferrocast_accelerator_available{stage,kind}` gauge).
    pub fn available(&self, stage: Stage, backend: Backend) -> bool {
        match (stage, backend) {
            // Scaling on the GPU needs all four CUDA filters.
            (Stage::Scale, Backend::Nvidia) => CUDA_FILTERS.iter().all(|f| self.usable(f)),
            _ => self
                .elements
                .iter()
                .any(|e| e.stage == stage && e.backend == backend && e.usable),
        }
    }

    /// The factory is registered and opened.
    pub fn usable(&self, factory: &str) -> bool {
        self.elements
            .iter()
            .any(|e| e.factory == factory && e.usable)
    }

    /// The factory is registered.
    pub fn registered(&self, factory: &str) -> bool {
        self.elements
            .iter()
            .any(|e| e.factory == factory && e.registered)
    }

    /// One line for the start-up log: `decode: nvh264dec=usable avdec_h264=usable; ...`.
    pub fn summary(&self) -> String {
        Stage::ALL
            .iter()
            .map(|&stage| {
                let parts: Vec<String> = self
                    .elements
                    .iter()
                    .filter(|e| e.stage == stage)
                    .map(|e| {
                        let state = match (e.registered, e.usable) {
                            (true, true) => "usable",
                            (true, false) => "registered-but-unusable",
                            _ => "missing",
                        };
                        format!("{}={state}", e.factory)
                    })
                    .collect();
                format!("{}: {}", stage.as_str(), parts.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Asks `registry` about every candidate element. Hardware candidates are opened for real (a
/// one-frame pipeline each), so this takes a moment on a machine with a GPU: call it once at
/// start-up.
pub fn probe(registry: &dyn ElementRegistry, device: u32) -> Capabilities {
    let nv = NvidiaFactories::for_device(device);
    let candidates: Vec<(Stage, Backend, String)> = vec![
        (Stage::Decode, Backend::Nvidia, nv.decoder.clone()),
        (Stage::Decode, Backend::Software, "avdec_h264".into()),
        (Stage::Scale, Backend::Nvidia, "cudaupload".into()),
        (Stage::Scale, Backend::Nvidia, "cudascale".into()),
        (Stage::Scale, Backend::Nvidia, "cudaconvert".into()),
        (Stage::Scale, Backend::Nvidia, "cudadownload".into()),
        (Stage::Scale, Backend::Software, "videoscale".into()),
        (Stage::Scale, Backend::Software, "videoconvert".into()),
        (Stage::Encode, Backend::Nvidia, nv.encoder.clone()),
        (Stage::Encode, Backend::Nvidia, nv.cuda_encoder.clone()),
        (Stage::Encode, Backend::Vaapi, "vah264enc".into()),
        (Stage::Encode, Backend::Vaapi, "vaapih264enc".into()),
        (Stage::Encode, Backend::Software, "x264enc".into()),
    ];
    let elements = candidates
        .into_iter()
        .map(|(stage, backend, factory)| {
            let registered = registry.has(&factory);
            // Software elements are trusted once registered: probing x264 proves nothing.
            let usable = registered && (!backend.is_hardware() || registry.can_open(&factory));
            ElementCapability {
                stage,
                backend,
                factory,
                registered,
                usable,
            }
        })
        .collect();
    Capabilities { device, elements }
}

/// The decoder chosen for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderChoice {
    /// Factory name.
    pub factory: String,
    /// Who does the work.
    pub backend: Backend,
}

/// The encoder chosen for the stream's rungs (each rung may still fall back to x264 when the
/// encoder session budget is spent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderChoice {
    /// Factory name (for [`EncoderKind::Fault`]: a made-up name).
    pub factory: String,
    /// Which property names apply.
    pub kind: EncoderKind,
}

impl EncoderChoice {
    /// Software x264.
    pub fn x264() -> EncoderChoice {
        EncoderChoice {
            factory: "x264enc".into(),
            kind: EncoderKind::X264,
        }
    }
}

/// One stream's chain: what each stage uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Decode, once per stream.
    pub decoder: DecoderChoice,
    /// Scale and convert: `Nvidia` means `cudascale`/`cudaconvert` in CUDA memory, `Software`
    /// means `videoscale`/`videoconvert`.
    pub scale: Backend,
    /// Encode, per rung.
    pub encoder: EncoderChoice,
    /// CUDA device of the NVIDIA elements.
    pub device: u32,
    /// Why a stage is in software although the policy allowed hardware, one line each.
    pub fallbacks: Vec<(Stage, String)>,
    /// What the policy promised but the machine cannot give. Non-empty only with
    /// [`AcceleratorPolicy::Nvidia`]; under [`FailurePolicy::Fail`] publishes are refused with
    /// these reasons.
    pub unmet: Vec<String>,
}

impl Selection {
    /// The all-CPU chain.
    pub fn software() -> Selection {
        Selection {
            decoder: DecoderChoice {
                factory: "avdec_h264".into(),
                backend: Backend::Software,
            },
            scale: Backend::Software,
            encoder: EncoderChoice::x264(),
            device: 0,
            fallbacks: Vec::new(),
            unmet: Vec::new(),
        }
    }

    /// Test only: replaces the encoder by a bin (`identity error-after=N ! x264enc`) that
    /// counts as an NVIDIA encoder (it takes an encoder session and its failure is an
    /// accelerator failure) and posts an error after `error_after` frames. The server honours
    /// it only when a test asks for it explicitly; never reachable from a normal configuration.
    pub fn with_fault_encoder(mut self, error_after: u32) -> Selection {
        self.encoder = EncoderChoice {
            factory: "fault-h264enc".into(),
            kind: EncoderKind::Fault { error_after },
        };
        self
    }

    /// True when any stage uses hardware.
    pub fn uses_hardware(&self) -> bool {
        self.decoder.backend.is_hardware()
            || self.scale.is_hardware()
            || self.encoder.kind.backend().is_hardware()
    }

    /// Who does `stage`.
    pub fn backend(&self, stage: Stage) -> Backend {
        match stage {
            Stage::Decode => self.decoder.backend,
            Stage::Scale => self.scale,
            Stage::Encode => self.encoder.kind.backend(),
        }
    }

    /// One line for logs: `decode=nvh264dec(nvidia) scale=nvidia encode=x264enc(software)`.
    pub fn describe(&self) -> String {
        format!(
            "decode={}({}) scale={} encode={}({})",
            self.decoder.factory,
            self.decoder.backend,
            self.scale,
            self.encoder.factory,
            self.encoder.kind.backend()
        )
    }
}

fn why_not(caps: &Capabilities, factory: &str) -> String {
    if caps.registered(factory) {
        format!("{factory} is registered but could not open a session")
    } else {
        format!("{factory} is not registered")
    }
}

/// Picks each stage's element from what the probe found, under `policy`.
pub fn select(caps: &Capabilities, policy: AcceleratorPolicy) -> Selection {
    let mut sel = Selection::software();
    sel.device = caps.device;
    if policy == AcceleratorPolicy::Software {
        return sel;
    }
    let nv = NvidiaFactories::for_device(caps.device);
    let promised = policy == AcceleratorPolicy::Nvidia;

    // Decode.
    if caps.usable(&nv.decoder) {
        sel.decoder = DecoderChoice {
            factory: nv.decoder.clone(),
            backend: Backend::Nvidia,
        };
    } else {
        let why = why_not(caps, &nv.decoder);
        if promised {
            sel.unmet.push(format!("decode: {why}"));
        }
        sel.fallbacks.push((Stage::Decode, why));
    }

    // Scale and convert.
    if caps.available(Stage::Scale, Backend::Nvidia) {
        sel.scale = Backend::Nvidia;
    } else {
        let why = CUDA_FILTERS
            .iter()
            .find(|f| !caps.usable(f))
            .map(|f| why_not(caps, f))
            .unwrap_or_default();
        if promised {
            sel.unmet.push(format!("scale: {why}"));
        }
        sel.fallbacks.push((Stage::Scale, why));
    }

    // Encode: NVENC, then (auto only) VA-API, then x264.
    let mut candidates = vec![
        (nv.encoder.clone(), EncoderKind::NvEnc),
        (nv.cuda_encoder.clone(), EncoderKind::NvCudaEnc),
    ];
    if !promised {
        candidates.push(("vah264enc".into(), EncoderKind::Va));
        candidates.push(("vaapih264enc".into(), EncoderKind::Vaapi));
    }
    match candidates.iter().find(|(f, _)| caps.usable(f)) {
        Some((factory, kind)) => {
            sel.encoder = EncoderChoice {
                factory: factory.clone(),
                kind: *kind,
            };
        }
        None => {
            let registered_nvenc = [&nv.encoder, &nv.cuda_encoder]
                .into_iter()
                .find(|f| caps.registered(f));
            let why = match registered_nvenc {
                // The driver offers NVENC but it does not open: that is a failure.
                Some(f) => {
                    let why = why_not(caps, f);
                    if promised {
                        sel.unmet.push(format!("encode: {why}"));
                    }
                    why
                }
                // No NVENC at all next to a working NVDEC: a data-centre GPU (H100, H200).
                // The hybrid chain (GPU decode and scale, x264) is what such a GPU offers.
                None if sel.decoder.backend == Backend::Nvidia => format!(
                    "{} is not registered: this GPU has no NVENC; encoding with x264 (hybrid)",
                    nv.encoder
                ),
                None => {
                    let why = why_not(caps, &nv.encoder);
                    if promised {
                        sel.unmet.push(format!("encode: {why}"));
                    }
                    why
                }
            };
            sel.fallbacks.push((Stage::Encode, why));
        }
    }
    sel
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
    crate::X264_PRESETS
        .iter()
        .position(|p| *p == preset)
        .unwrap_or(2)
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
) -> Result<Vec<String>, crate::Error> {
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
            crate::Error::InvalidConfig(format!(
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

/// Hardware encoder sessions admitted at once (`nvidia.max_encode_sessions`), per rung: each
/// hardware-encoded rung holds one [`SessionLease`] for the life of its pipeline.
#[derive(Debug)]
pub struct SessionBudget {
    limit: Option<usize>,
    in_use: AtomicUsize,
}

impl SessionBudget {
    /// `limit` of `None` admits every rung.
    pub fn new(limit: Option<usize>) -> Arc<SessionBudget> {
        Arc::new(SessionBudget {
            limit,
            in_use: AtomicUsize::new(0),
        })
    }

    /// Takes one session, or `None` when all are in use.
    pub fn try_acquire(self: &Arc<Self>) -> Option<SessionLease> {
        let mut current = self.in_use.load(Ordering::SeqCst);
        loop {
            if self.limit.is_some_and(|l| current >= l) {
                return None;
            }
            match self.in_use.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Some(SessionLease {
                        budget: Arc::clone(self),
                    })
                }
                Err(now) => current = now,
            }
        }
    }

    /// Sessions held now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    /// The configured limit, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }
}

/// One admitted hardware encoder session; released on drop.
#[derive(Debug)]
pub struct SessionLease {
    budget: Arc<SessionBudget>,
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        self.budget.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
