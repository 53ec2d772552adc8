//! The vocabulary of the choice: the stages of the video chain and who does their work.

use std::fmt;

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
