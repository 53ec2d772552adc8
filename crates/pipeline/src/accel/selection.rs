//! Step 2: one element per stage from the probe's findings and the policy, with the reason for
//! every fallback.

use crate::accel::capabilities::{Capabilities, NvidiaFactories, CUDA_FILTERS};
use crate::accel::encoder::EncoderKind;
use crate::accel::policy::AcceleratorPolicy;
use crate::accel::stage::{Backend, Stage};

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
    /// [`AcceleratorPolicy::Nvidia`]; under [`crate::accel::FailurePolicy::Fail`] publishes are
    /// refused with these reasons.
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
