//! Snapshots of a pipeline's counters, for the metrics and the API.

/// Counters of one rung.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RungStats {
    /// The rendition's name.
    pub name: String,
    /// Video frames out of the encoder (for passthrough: frames repackaged).
    pub frames: u64,
    /// Bytes handed to the sink.
    pub bytes: u64,
    /// Chunks handed to the sink (init, segment starts and continuations).
    pub chunks: u64,
    /// Segments started.
    pub segments: u64,
    /// Shed under overload: its frames are dropped before its encoder
    /// ([`crate::StreamPipeline::shed`]); set from the cut it applies at.
    pub shed: bool,
    /// End (pts + duration) of the newest chunk, in media time; divide its growth by wall time
    /// for the realtime factor.
    pub media_time: Option<media::MediaTime>,
}

/// A snapshot of a pipeline's counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineStats {
    /// Video frames accepted by `push`.
    pub video_frames_in: u64,
    /// Audio frames accepted by `push`.
    pub audio_frames_in: u64,
    /// Video frames dropped at the input (queue full, or waiting for a keyframe after a drop).
    pub video_dropped: u64,
    /// Audio frames dropped at the input.
    pub audio_dropped: u64,
    /// Of the frames dropped at the input, those dropped because its queue was full (and video
    /// waiting for a keyframe after such a drop): the pipeline could not keep up.
    pub overflow_dropped: u64,
    /// Silent audio frames pushed where the publisher's audio was missing (README, "Audio
    /// gaps").
    pub audio_silence_frames: u64,
    /// Video frames waiting in the input queue now.
    pub video_queued: u64,
    /// Audio frames waiting in the input queue now.
    pub audio_queued: u64,
    /// Per rung, in rung order.
    pub rungs: Vec<RungStats>,
}
