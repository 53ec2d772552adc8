//! Metric names (without the `_total` suffix that counters get when encoded). Alerts, the
//! dashboard and the README catalogue use these names; `scripts/k8s-check.sh` checks that every
//! name they use is defined here.

/// Info: version and build details.
pub const BUILD: &str = "ferrocast_build";
/// Counter: HTTP requests by route template, method and status.
pub const HTTP_REQUESTS: &str = "ferrocast_http_requests";
/// Histogram: HTTP request duration in seconds by route template and method.
pub const HTTP_REQUEST_DURATION: &str = "ferrocast_http_request_duration";
/// Counter: ingest connections by protocol and result.
pub const INGEST_CONNECTIONS: &str = "ferrocast_ingest_connections";
/// Counter: refused ingest attempts by protocol and reason.
pub const INGEST_REJECTIONS: &str = "ferrocast_ingest_rejections";
/// Counter: publish webhook calls by event (`publish`, `unpublish`) and result (`allowed`,
/// `denied`, `delivered`, `error`, `timeout`).
pub const INGEST_WEBHOOK_CALLS: &str = "ferrocast_ingest_webhook_calls";
/// Counter: media payload bytes received by stream and track kind.
pub const INGEST_BYTES: &str = "ferrocast_ingest_bytes";
/// Counter: media frames received by stream and track kind.
pub const INGEST_FRAMES: &str = "ferrocast_ingest_frames";
/// Gauge: live publishers by protocol.
pub const ACTIVE_PUBLISHERS: &str = "ferrocast_active_publishers";
/// Gauge: ingest bitrate by stream, bits per second over the last second or so.
pub const INGEST_BITRATE: &str = "ferrocast_ingest_bitrate_bits_per_second";
/// Gauge: 1 for each configured stream, with `live` 0 or 1.
pub const STREAM_LIVE: &str = "ferrocast_stream_live";
/// Counter: pipeline failures by stream.
pub const PIPELINE_ERRORS: &str = "ferrocast_pipeline_errors";
/// Counter: video frames out of each rung's encoder (or repackaged, for passthrough).
pub const PIPELINE_FRAMES_ENCODED: &str = "ferrocast_pipeline_frames_encoded";
/// Counter: frames dropped at the pipeline input because it fell behind, by stream and kind.
pub const PIPELINE_FRAMES_DROPPED: &str = "ferrocast_pipeline_frames_dropped";
/// Counter: silent audio frames pushed into the pipeline where the publisher's audio was missing
/// (a gap of more than 1 s behind video), by stream.
pub const PIPELINE_AUDIO_SILENCE: &str = "ferrocast_pipeline_audio_silence_frames";
/// Gauge: media seconds produced per wall second over the last 5 s, by stream and rung.
pub const PIPELINE_REALTIME_FACTOR: &str = "ferrocast_pipeline_realtime_factor";
/// Gauge: 1 when some element of `kind` (nvidia, vaapi, software) is usable for `stage`
/// (decode, scale, encode), from the start-up probe.
pub const ACCELERATOR_AVAILABLE: &str = "ferrocast_accelerator_available";
/// Gauge: hardware encoder sessions in use (one per hardware-encoded rung).
pub const ENCODER_SESSIONS: &str = "ferrocast_encoder_sessions";
/// Gauge: the hardware encoder session limit (`nvidia.max_encode_sessions`; 0 = none).
pub const ENCODER_SESSIONS_LIMIT: &str = "ferrocast_encoder_sessions_limit";
/// Gauge: 1 per stream, rung and stage for the backend doing the work now.
pub const STREAM_BACKEND: &str = "ferrocast_stream_backend";
/// Counter: falls back to software by reason (`unavailable`, `session_limit`,
/// `runtime_error`).
pub const ACCELERATOR_FALLBACKS: &str = "ferrocast_accelerator_fallbacks";
/// Counter: publishes refused or streams ended for want of promised hardware, by reason.
pub const ACCELERATOR_REFUSALS: &str = "ferrocast_accelerator_refusals";
/// Counter: HLS segments completed, by stream and rung.
pub const HLS_SEGMENTS: &str = "ferrocast_hls_segments";
/// Counter: bytes packaged (init, segments), by stream and rung.
pub const HLS_BYTES: &str = "ferrocast_hls_bytes";
/// Histogram: completed segment durations, by stream and rung.
pub const HLS_SEGMENT_DURATION: &str = "ferrocast_hls_segment_duration";
/// Counter: SRT data packets received (retransmissions included), by stream.
pub const SRT_PACKETS_RECEIVED: &str = "ferrocast_srt_packets_received";
/// Counter: SRT data packets lost on the link (recovered by retransmission or given up), by
/// stream.
pub const SRT_PACKETS_LOST: &str = "ferrocast_srt_packets_lost";
/// Counter: retransmitted SRT data packets received, by stream.
pub const SRT_PACKETS_RETRANSMITTED: &str = "ferrocast_srt_packets_retransmitted";
/// Counter: SRT data packets dropped by the receiver (too late to play, or never recovered),
/// by stream.
pub const SRT_PACKETS_DROPPED: &str = "ferrocast_srt_packets_dropped";
/// Gauge: round-trip time of each live SRT publisher's link, by stream (the handshake's while
/// srt-tokio does not report its smoothed RTT).
pub const SRT_RTT: &str = "ferrocast_srt_rtt_seconds";
/// Gauge: bits per second received on each live SRT publisher's link (SRT payload), by
/// stream.
pub const SRT_RECEIVE_BITRATE: &str = "ferrocast_srt_receive_bitrate_bits_per_second";
/// Counter: MPEG-TS continuity-counter errors (lost transport packets), by stream.
pub const INGEST_TS_CC_ERRORS: &str = "ferrocast_ingest_ts_continuity_errors";
/// Counter: MPEG-TS PES packets (frames) dropped as damaged, by stream.
pub const INGEST_TS_PES_DROPPED: &str = "ferrocast_ingest_ts_pes_dropped";
/// Counter: frames accepted into the pipeline input, by stream and kind.
pub const PIPELINE_FRAMES_IN: &str = "ferrocast_pipeline_frames_in";
/// Gauge: frames waiting in the pipeline's input queue, by stream and kind.
pub const PIPELINE_QUEUE_DEPTH: &str = "ferrocast_pipeline_queue_depth";
/// Counter: pipelines rebuilt mid-publish, by stream and reason (`config_change`,
/// `hardware_fallback`, `timestamp_jump`).
pub const PIPELINE_RESTARTS: &str = "ferrocast_pipeline_restarts";
/// Gauge: 1 while a rung is shed under overload, else 0, by stream and rung.
pub const RUNG_SHED: &str = "ferrocast_rung_shed";
/// Counter: rungs shed under overload, by stream and reason (`behind_realtime`,
/// `input_dropping`).
pub const RUNG_SHEDS: &str = "ferrocast_rung_sheds";
/// Counter: LL-HLS parts (CMAF chunks) listed, by stream and rung.
pub const HLS_PARTS: &str = "ferrocast_hls_parts";
/// Histogram: per video frame, seconds from its arrival to the listing of the part (or
/// segment, without LL-HLS) that holds it, by stream and rung.
pub const INGEST_TO_PUBLISH_LATENCY: &str = "ferrocast_ingest_to_publish_latency";
/// Counter: HTTP response body bytes by route template.
pub const HTTP_RESPONSE_BYTES: &str = "ferrocast_http_response_bytes";
/// Gauge: requests held waiting for media now, by kind (`playlist`, `part`).
pub const HTTP_HELD_REQUESTS: &str = "ferrocast_http_held_requests";
/// Gauge: distinct playback sessions seen in the last 30 s, by stream.
pub const STREAM_VIEWERS: &str = "ferrocast_stream_viewers";
/// Counter: process CPU time.
pub const PROCESS_CPU: &str = "process_cpu_seconds";
/// Gauge: resident memory.
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
/// Gauge: open file descriptors.
pub const PROCESS_FDS: &str = "process_open_fds";
/// Gauge: start time, seconds since the epoch.
pub const PROCESS_START: &str = "process_start_time_seconds";
/// Gauge: 1 while this pod reaches the cluster store (Redis), 0 while it does not; absent
/// outside cluster mode.
pub const CLUSTER_STORE_UP: &str = "ferrocast_cluster_store_up";
/// Histogram: round-trip time of cluster store (Redis) commands, in seconds (registered with
/// the unit, so exposed as `ferrocast_cluster_store_rtt_seconds`).
pub const CLUSTER_STORE_RTT: &str = "ferrocast_cluster_store_rtt";
/// Gauge: stream leases this pod holds (streams it publishes cluster-wide).
pub const CLUSTER_LEASES: &str = "ferrocast_cluster_leases";
/// Counter: lease renewals that failed, by reason (`store_down`, `lost`).
pub const CLUSTER_LEASE_RENEW_FAILURES: &str = "ferrocast_cluster_lease_renew_failures";
/// Counter: playback requests proxied to the stream's owner pod, by kind (`playlist`,
/// `media`) and outcome (`ok`, `not_found`, `unavailable`, `error`).
pub const CLUSTER_PROXY_REQUESTS: &str = "ferrocast_cluster_proxy_requests";
/// Counter: body bytes fetched from owner pods, by kind and outcome.
pub const CLUSTER_PROXY_BYTES: &str = "ferrocast_cluster_proxy_bytes";
/// Counter: edge cache lookups of immutable objects (init segments, segments, parts), by result
/// (`hit`, `miss`, `coalesced`: a request that waited on another's fetch).
pub const CLUSTER_EDGE_CACHE: &str = "ferrocast_cluster_edge_cache";
