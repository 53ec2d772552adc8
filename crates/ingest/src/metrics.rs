//! The ingest's counters, registered at construction and recorded where each event happens.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use telemetry::{names, stream_counter, StreamCounter};

use crate::outcome::{ConnectionOutcome, Protocol, Rejection};

/// Labels of ingest connection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    protocol: &'static str,
    result: &'static str,
}

/// Labels of ingest rejection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    protocol: &'static str,
    reason: &'static str,
}

/// Labels of per-track ingest counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrackLabels {
    stream: String,
    kind: &'static str,
}

/// The ingest's counters. The wiring makes one, registered into the service's registry, and
/// hands it to the registry and the listeners.
#[derive(Debug)]
pub struct IngestMetrics {
    connections: Family<ConnectionLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    bytes: Family<TrackLabels, Counter>,
    frames: Family<TrackLabels, Counter>,
    pub(crate) srt_packets_received: StreamCounter,
    pub(crate) srt_packets_lost: StreamCounter,
    pub(crate) srt_packets_retransmitted: StreamCounter,
    pub(crate) srt_packets_dropped: StreamCounter,
    pub(crate) ts_cc_errors: StreamCounter,
    pub(crate) ts_pes_dropped: StreamCounter,
}

/// One stream's ingest counters, taken once per publish.
#[derive(Debug, Clone)]
pub(crate) struct TrackCounters {
    pub(crate) video_bytes: Counter,
    pub(crate) video_frames: Counter,
    pub(crate) audio_bytes: Counter,
    pub(crate) audio_frames: Counter,
}

impl IngestMetrics {
    /// Creates the ingest's counters and registers them into `registry`.
    pub fn new(registry: &mut Registry) -> IngestMetrics {
        let connections = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            names::INGEST_CONNECTIONS,
            "Ingest connections by protocol and how they ended",
            connections.clone(),
        );
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            names::INGEST_REJECTIONS,
            "Refused ingest attempts by protocol and reason",
            rejections.clone(),
        );
        let bytes = Family::<TrackLabels, Counter>::default();
        registry.register(
            names::INGEST_BYTES,
            "Media payload bytes received, by stream and track kind",
            bytes.clone(),
        );
        let frames = Family::<TrackLabels, Counter>::default();
        registry.register(
            names::INGEST_FRAMES,
            "Media frames received, by stream and track kind",
            frames.clone(),
        );
        IngestMetrics {
            connections,
            rejections,
            bytes,
            frames,
            srt_packets_received: stream_counter(
                registry,
                names::SRT_PACKETS_RECEIVED,
                "SRT data packets received (retransmissions included), by stream",
            ),
            srt_packets_lost: stream_counter(
                registry,
                names::SRT_PACKETS_LOST,
                "SRT data packets lost on the link (recovered by retransmission or given up), by stream",
            ),
            srt_packets_retransmitted: stream_counter(
                registry,
                names::SRT_PACKETS_RETRANSMITTED,
                "Retransmitted SRT data packets received, by stream",
            ),
            srt_packets_dropped: stream_counter(
                registry,
                names::SRT_PACKETS_DROPPED,
                "SRT data packets dropped by the receiver (too late or never recovered), by stream",
            ),
            ts_cc_errors: stream_counter(
                registry,
                names::INGEST_TS_CC_ERRORS,
                "MPEG-TS continuity-counter errors (lost transport packets), by stream",
            ),
            ts_pes_dropped: stream_counter(
                registry,
                names::INGEST_TS_PES_DROPPED,
                "MPEG-TS PES packets dropped as damaged, by stream",
            ),
        }
    }

    /// Counts a refused ingest attempt.
    pub fn reject(&self, protocol: Protocol, reason: Rejection) {
        self.rejections
            .get_or_create(&RejectionLabels {
                protocol: protocol.label(),
                reason: reason.label(),
            })
            .inc();
    }

    /// Counts an ended ingest connection.
    pub fn connection(&self, protocol: Protocol, outcome: ConnectionOutcome) {
        self.connections
            .get_or_create(&ConnectionLabels {
                protocol: protocol.label(),
                result: outcome.label(),
            })
            .inc();
    }

    /// The byte and frame counters of `stream`'s tracks.
    pub(crate) fn tracks(&self, stream: &str) -> TrackCounters {
        let track = |kind| TrackLabels {
            stream: stream.to_owned(),
            kind,
        };
        // Each `get_or_create` guard must be released before the next call on the same family,
        // hence one statement per counter.
        let video_bytes = self.bytes.get_or_create(&track("video")).clone();
        let audio_bytes = self.bytes.get_or_create(&track("audio")).clone();
        let video_frames = self.frames.get_or_create(&track("video")).clone();
        let audio_frames = self.frames.get_or_create(&track("audio")).clone();
        TrackCounters {
            video_bytes,
            video_frames,
            audio_bytes,
            audio_frames,
        }
    }
}
