//! The crate's one error enum (convention 7 in ARCHITECTURE.md): what could not be built or
//! run, with the names of the elements and pads involved.

/// Why a pipeline could not be built or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// GStreamer could not be initialised, or the fMP4 plugin could not be registered.
    #[error("GStreamer could not be initialised: {0}; check the GStreamer installation")]
    Init(String),
    /// A GStreamer element the pipeline needs is not installed.
    #[error("GStreamer element {0:?} is missing; install the plugin that provides it")]
    MissingElement(String),
    /// The input uses a codec the pipeline cannot handle.
    #[error("unsupported input codec: {0}")]
    UnsupportedCodec(String),
    /// The input's codec configuration is unusable.
    #[error("invalid codec configuration: {0}")]
    InvalidCodecConfig(String),
    /// The ladder configuration is invalid.
    #[error("invalid ladder configuration: {0}")]
    InvalidConfig(String),
    /// No rung is left after planning the ladder against the source.
    #[error(
        "no rung of the ladder fits a {0}x{1} source; add a passthrough rung or a smaller one"
    )]
    EmptyLadder(u32, u32),
    /// The factory is installed, but creating an element from it failed (a plugin that cannot
    /// load its libraries, for instance).
    #[error(
        "GStreamer could not create element {name:?} from {factory}: {reason}; \
         check that the plugin providing {factory} loads (gst-inspect-1.0 {factory})"
    )]
    CreateElement {
        /// The factory asked for.
        factory: String,
        /// The name the element was to have.
        name: String,
        /// GStreamer's message.
        reason: String,
    },
    /// An element could not be put into its bin (the pipeline, or the bin of a compound
    /// element): the bin already holds one of that name, or the element has a parent.
    #[error(
        "GStreamer could not add element {element:?} to {bin:?}: {reason}; this is a bug in \
         Ferrocast, please report it"
    )]
    AddElement {
        /// The element.
        element: String,
        /// The bin it was to join.
        bin: String,
        /// GStreamer's message.
        reason: String,
    },
    /// Two elements could not be linked: no pads of theirs fit together (their caps differ, or
    /// the pads are already linked).
    #[error(
        "GStreamer could not link {src:?} to {sink:?}: no compatible pads; check the installed \
         plugins' versions"
    )]
    Link {
        /// The upstream element.
        src: String,
        /// The downstream element.
        sink: String,
    },
    /// Two pads could not be linked.
    #[error(
        "GStreamer could not link pad {src_element}:{src_pad} to {sink_element}:{sink_pad}: \
         {reason}; check the installed plugins' versions"
    )]
    LinkPads {
        /// The element of the source pad.
        src_element: String,
        /// The source pad.
        src_pad: String,
        /// The element of the sink pad.
        sink_element: String,
        /// The sink pad.
        sink_pad: String,
        /// Why GStreamer refused.
        reason: String,
    },
    /// An element lacks a pad that its kind always has: an installed plugin of another version
    /// than the one Ferrocast was written against.
    #[error(
        "GStreamer element {element:?} has no {pad:?} pad; check the version of the plugin \
         providing it"
    )]
    NoStaticPad {
        /// The element.
        element: String,
        /// The pad's name.
        pad: String,
    },
    /// An element gave no pad for a request pad template (a tee's `src_%u`, a muxer's
    /// `sink_%u`).
    #[error(
        "GStreamer element {element:?} gave no pad for template {template:?}; check the \
         version of the plugin providing it"
    )]
    NoRequestPad {
        /// The element.
        element: String,
        /// The pad template.
        template: String,
    },
    /// A bin could not expose an inner element's pad as its own (ghost pad).
    #[error(
        "GStreamer could not expose pad {pad:?} on bin {bin:?}: {reason}; this is a bug in \
         Ferrocast, please report it"
    )]
    GhostPad {
        /// The bin.
        bin: String,
        /// The inner pad's name.
        pad: String,
        /// GStreamer's message.
        reason: String,
    },
    /// A pipeline description (`gst-launch-1.0` syntax) could not be turned into a pipeline:
    /// an element is missing or a property value is wrong.
    #[error(
        "GStreamer could not build the pipeline {description:?}: {reason}; install the \
         plugins it names"
    )]
    Launch {
        /// The description.
        description: String,
        /// GStreamer's message.
        reason: String,
    },
    /// A pipeline has no element of the name the code looks for.
    #[error("GStreamer pipeline {bin:?} has no element named {element:?}")]
    NoSuchElement {
        /// The pipeline (or bin).
        bin: String,
        /// The element's name.
        element: String,
    },
    /// An element or pipeline refused to change state (most often: an element could not
    /// open its device or its input).
    #[error(
        "GStreamer element {element:?} could not change to state {state}; run with \
         GST_DEBUG=3 to see which element refused"
    )]
    StateChange {
        /// The element or pipeline.
        element: String,
        /// The state asked for (`Playing`, `Null`, ...).
        state: String,
    },
    /// The pipeline has no bus to watch.
    #[error("GStreamer pipeline {pipeline:?} has no bus")]
    NoBus {
        /// The pipeline.
        pipeline: String,
    },
    /// A thread could not be started (the process is at its thread or memory limit).
    #[error("could not start thread {thread:?}: {reason}; check the process's thread limit")]
    SpawnThread {
        /// The thread's name.
        thread: String,
        /// The operating system's error.
        reason: String,
    },
    /// An element posted an error while running.
    #[error("GStreamer element {element} failed: {message}")]
    Element {
        /// The element's path in the pipeline.
        element: String,
        /// Its error.
        message: String,
    },
    /// An element's output lacks a caps field the code reads (`codec_data`, `rate`, ...), or
    /// has no caps at all (`field` is then `caps`).
    #[error("the output of {element:?} has no {field}")]
    MissingCaps {
        /// The element whose output it is (or the pipeline description ending in it).
        element: String,
        /// The field (or `caps`).
        field: String,
    },
    /// A buffer could not be mapped for reading.
    #[error("a buffer from {element:?} could not be read")]
    UnreadableBuffer {
        /// The element it came from (or the pipeline description ending in it).
        element: String,
    },
    /// The graph being built lacks a part the ladder plan needs for a rung (a transcoded rung
    /// without a decoder or an encoder choice): a bug in Ferrocast, not in the input or the
    /// configuration.
    #[error(
        "rung {rung:?} has no {missing} in the pipeline; this is a bug in Ferrocast, please \
         report it"
    )]
    Inconsistent {
        /// The rung's name.
        rung: String,
        /// What is missing (`decoder`, `encoder`).
        missing: &'static str,
    },
    /// Hardware the accelerator policy promised is not available (no device, no free encoder
    /// session) and `on_accelerator_failure = "fail"` forbids going on in software.
    #[error("accelerator unavailable: {0}")]
    Accelerator(String),
}
