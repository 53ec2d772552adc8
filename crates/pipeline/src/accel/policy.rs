//! The two settings that steer the accelerator choice: `transcode.accelerator` and
//! `transcode.on_accelerator_failure`.

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
