//! Step 1: which candidate elements exist and open, as plain data.

use crate::accel::registry::ElementRegistry;
use crate::accel::stage::{Backend, Stage};

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
