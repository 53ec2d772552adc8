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
//!
//! Files: `stage` and `policy` hold the vocabulary, `registry` where elements come from,
//! `capabilities` step 1, `selection` step 2, `encoder` step 3, and `session` the hardware
//! encoder session budget that [`crate::StreamPipeline::start_with`] admits rungs against.
//! Everything is re-exported here: `pipeline::accel::...` is the one public path.

mod capabilities;
mod encoder;
mod policy;
mod registry;
mod selection;
mod session;
mod stage;

pub use capabilities::{probe, Capabilities, ElementCapability, NvidiaFactories, CUDA_FILTERS};
pub(crate) use encoder::set_cuda_device;
pub use encoder::{apply_properties, encoder_properties, EncoderKind, EncoderSettings};
pub use policy::{AcceleratorPolicy, FailurePolicy};
pub use registry::{ElementRegistry, FakeRegistry, GstRegistry};
pub use selection::{select, DecoderChoice, EncoderChoice, Selection};
pub use session::{SessionBudget, SessionLease};
pub use stage::{Backend, Stage};

#[cfg(test)]
mod tests;
