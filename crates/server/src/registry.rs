//! The stream registry: which streams exist, who publishes each, and the takeover rule.
//!
//! Ingest drivers call [`StreamRegistry::publish`] with the key a publisher presented. The registry
//! maps it to the public stream name, enforces one publisher per name, and hands back a
//! [`PublishHandle`]. Media frames go through the handle; dropping the handle is the unpublish, so
//! a closed socket always ends the stream, whatever the client sent before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use media::{AudioCodec, MediaFrame, StreamName, VideoCodec};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::StreamConfig;
use crate::metrics::{Metrics, TrackLabels};

/// Why a publish was refused. The `Display` text is safe to send to the publisher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// No configured stream has this key.
    #[error("unknown stream key")]
    BadKey,
    /// The stream already has a publisher that is still sending.
    #[error("stream {0} is already being published; retry after the current publisher stops")]
    AlreadyLive(StreamName),
    /// The server is shutting down.
    #[error("server is shutting down")]
    Draining,
}

impl PublishError {
    /// Short reason for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::BadKey => "bad_key",
            PublishError::AlreadyLive(_) => "already_live",
            PublishError::Draining => "draining",
        }
    }
}

/// Receives a publish's media frames. The transcoder implements it; the registry does not know
/// what is behind it. Dropping it ends the stream's output.
pub trait MediaConsumer: Send + Sync {
    /// One frame, in arrival order. Must not block.
    fn push(&mut self, frame: &MediaFrame);
}

/// Makes the consumer for a new publish. Through the [`EndSignal`] the consumer can end the
/// publish (its pipeline failed, promised hardware is missing), saying why.
pub type ConsumerFactory =
    Arc<dyn Fn(&StreamName, EndSignal) -> Box<dyn MediaConsumer> + Send + Sync>;

/// Ends a publish, optionally with a reason the ingest can pass on to the publisher.
#[derive(Debug, Clone, Default)]
pub struct EndSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl EndSignal {
    /// Ends the publish without a reason (takeover, drain).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Ends the publish; the first reason given is the one the publisher hears.
    pub fn end(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock().expect("end reason lock");
        if r.is_none() && !self.token.is_cancelled() {
            *r = Some(reason.into());
        }
        drop(r);
        self.token.cancel();
    }

    /// True once ended.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it ended, when a reason was given.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().expect("end reason lock").clone()
    }
}

/// All streams and their publishers.
pub struct StreamRegistry {
    streams: Vec<StreamConfig>,
    live: Mutex<BTreeMap<StreamName, Arc<LiveStream>>>,
    metrics: Arc<Metrics>,
    publisher_timeout: Duration,
    draining: AtomicBool,
    next_id: AtomicU64,
    consumers: std::sync::OnceLock<ConsumerFactory>,
}

impl std::fmt::Debug for StreamRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRegistry")
            .field("streams", &self.streams.len())
            .field("live", &self.live_count())
            .finish_non_exhaustive()
    }
}

/// One live publish session.
#[derive(Debug)]
pub struct LiveStream {
    id: u64,
    name: StreamName,
    protocol: &'static str,
    remote: SocketAddr,
    started_at: SystemTime,
    started: Instant,
    /// Nanoseconds after `started` of the last frame.
    last_activity_ns: AtomicU64,
    stats: Mutex<Stats>,
    cancel: EndSignal,
}

#[derive(Debug, Default)]
struct Stats {
    video: Option<VideoInfo>,
    audio: Option<AudioInfo>,
    window_start_ns: u64,
    window_bytes: u64,
    window_video_frames: u64,
    bitrate_bps: u64,
    measured_fps: Option<f64>,
}

/// Video track description, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// Codec.
    pub codec: VideoCodec,
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate: signalled in the bitstream, else measured.
    pub frame_rate: Option<f64>,
}

/// Audio track description, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioInfo {
    /// Codec.
    pub codec: AudioCodec,
    /// RFC 6381 codec string.
    pub codec_string: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u8,
}

/// A stream as the API shows it. Never carries the key.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    /// Public name.
    pub name: StreamName,
    /// True while a publisher is live.
    pub live: bool,
    /// The live publisher, if any.
    pub publisher: Option<PublisherSnapshot>,
}

/// A live publisher as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherSnapshot {
    /// `rtmp` or `srt`.
    pub protocol: &'static str,
    /// Publisher's address.
    pub remote_addr: String,
    /// When the publish started, RFC 3339 UTC.
    pub started_at: String,
    /// Seconds since the publish started.
    pub uptime_seconds: f64,
    /// Video track, once its configuration arrived.
    pub video: Option<VideoInfo>,
    /// Audio track, once its configuration arrived.
    pub audio: Option<AudioInfo>,
    /// Ingest media bitrate over about the last second.
    pub bitrate_bps: u64,
}

/// Proof of being a stream's publisher. Dropping it unpublishes.
pub struct PublishHandle {
    registry: Arc<StreamRegistry>,
    stream: Arc<LiveStream>,
    consumer: Option<Box<dyn MediaConsumer>>,
    video_bytes: Counter,
    video_frames: Counter,
    audio_bytes: Counter,
    audio_frames: Counter,
}

impl StreamRegistry {
    /// A registry for these streams.
    pub fn new(
        streams: Vec<StreamConfig>,
        publisher_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<StreamRegistry> {
        let registry = Arc::new(StreamRegistry {
            streams,
            live: Mutex::new(BTreeMap::new()),
            metrics: metrics.clone(),
            publisher_timeout,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            consumers: std::sync::OnceLock::new(),
        });
        metrics.watch_streams(&registry);
        registry
    }

    /// Sets what receives every future publish's media. Only the first call takes effect.
    pub fn set_consumer_factory(&self, factory: ConsumerFactory) {
        let _ = self.consumers.set(factory);
    }

    /// The configured stream for a key. Compares every key in constant time, so response timing
    /// does not reveal how much of a key was right.
    pub fn lookup_key(&self, key: &str) -> Option<&StreamName> {
        let mut found = None;
        for s in &self.streams {
            if constant_time_eq(s.key.as_bytes(), key.as_bytes()) {
                found = Some(&s.name);
            }
        }
        found
    }

    /// True when `name` is a configured stream.
    pub fn has_stream(&self, name: &str) -> bool {
        self.streams.iter().any(|s| s.name.as_str() == name)
    }

    /// What [`publish`](Self::publish) would answer for `key` right now, without publishing or
    /// counting a rejection: for ingest that must decide before it accepts a connection (SRT
    /// accepts or rejects at the handshake). `publish` still has the last word.
    pub fn check_publish(&self, key: &str) -> Result<StreamName, PublishError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(PublishError::Draining);
        }
        let name = self.lookup_key(key).ok_or(PublishError::BadKey)?.clone();
        let live = self.live.lock().expect("registry lock");
        match live.get(&name) {
            Some(current) if current.idle_for() < self.publisher_timeout => {
                Err(PublishError::AlreadyLive(name))
            }
            _ => Ok(name),
        }
    }

    /// Starts a publish for `key`. A live publisher idle for `publisher_timeout` is replaced (its
    /// handle's [`PublishHandle::cancelled`] fires); a sending one makes this fail.
    pub fn publish(
        self: &Arc<Self>,
        key: &str,
        protocol: &'static str,
        remote: SocketAddr,
    ) -> Result<PublishHandle, PublishError> {
        let result = self.try_publish(key, protocol, remote);
        if let Err(e) = &result {
            self.metrics.reject(protocol, e.reason());
        }
        result
    }

    fn try_publish(
        self: &Arc<Self>,
        key: &str,
        protocol: &'static str,
        remote: SocketAddr,
    ) -> Result<PublishHandle, PublishError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(PublishError::Draining);
        }
        let name = self.lookup_key(key).ok_or(PublishError::BadKey)?.clone();
        let mut live = self.live.lock().expect("registry lock");
        if let Some(current) = live.get(&name) {
            let idle = current.idle_for();
            if idle < self.publisher_timeout {
                return Err(PublishError::AlreadyLive(name));
            }
            tracing::info!(
                stream = %name,
                idle_ms = idle.as_millis() as u64,
                old = %current.remote,
                new = %remote,
                "publisher taken over after silence"
            );
            current.cancel.cancel();
        }
        let stream = Arc::new(LiveStream {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.clone(),
            protocol,
            remote,
            started_at: SystemTime::now(),
            started: Instant::now(),
            last_activity_ns: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
            cancel: EndSignal::default(),
        });
        live.insert(name.clone(), stream.clone());
        drop(live);
        let track = |kind| TrackLabels {
            stream: name.to_string(),
            kind,
        };
        // Each `get_or_create` guard must be released before the next call on the same family,
        // hence one statement per counter.
        let m = &self.metrics;
        let video_bytes = m.ingest_bytes.get_or_create(&track("video")).clone();
        let audio_bytes = m.ingest_bytes.get_or_create(&track("audio")).clone();
        let video_frames = m.ingest_frames.get_or_create(&track("video")).clone();
        let audio_frames = m.ingest_frames.get_or_create(&track("audio")).clone();
        let consumer = self
            .consumers
            .get()
            .map(|make| make(&name, stream.cancel.clone()));
        Ok(PublishHandle {
            registry: self.clone(),
            consumer,
            video_bytes,
            video_frames,
            audio_bytes,
            audio_frames,
            stream,
        })
    }

    /// Refuses new publishes and tells every live publisher to stop.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        for s in self.live.lock().expect("registry lock").values() {
            s.cancel.cancel();
        }
    }

    /// Number of live publishers.
    pub fn live_count(&self) -> usize {
        self.live.lock().expect("registry lock").len()
    }

    /// Every configured stream with its live state, in configuration order.
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let live = self.live.lock().expect("registry lock");
        self.streams
            .iter()
            .map(|s| {
                let publisher = live.get(&s.name).map(|l| l.snapshot());
                StreamSnapshot {
                    name: s.name.clone(),
                    live: publisher.is_some(),
                    publisher,
                }
            })
            .collect()
    }

    fn unpublish(&self, stream: &LiveStream) {
        let mut live = self.live.lock().expect("registry lock");
        if live.get(&stream.name).map(|s| s.id) == Some(stream.id) {
            live.remove(&stream.name);
        }
    }
}

impl LiveStream {
    fn idle_for(&self) -> Duration {
        let now = self.started.elapsed();
        let last = Duration::from_nanos(self.last_activity_ns.load(Ordering::Relaxed));
        now.saturating_sub(last)
    }

    fn snapshot(&self) -> PublisherSnapshot {
        let stats = self.stats.lock().expect("stats lock");
        let mut video = stats.video.clone();
        if let Some(v) = &mut video {
            if v.frame_rate.is_none() {
                v.frame_rate = stats.measured_fps;
            }
        }
        PublisherSnapshot {
            protocol: self.protocol,
            remote_addr: self.remote.to_string(),
            started_at: rfc3339(self.started_at),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            video,
            audio: stats.audio.clone(),
            bitrate_bps: stats.bitrate_bps,
        }
    }
}

impl PublishHandle {
    /// The public stream name.
    pub fn name(&self) -> &StreamName {
        &self.stream.name
    }

    /// Completes when this publish must end: taken over by a new publisher, or server drain.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stream.cancel.token.cancelled()
    }

    /// Why the server ended this publish, when it said (e.g. a transcoding failure).
    pub fn end_reason(&self) -> Option<String> {
        self.stream.cancel.reason()
    }

    /// True once [`Self::cancelled`] has fired.
    pub fn is_cancelled(&self) -> bool {
        self.stream.cancel.is_cancelled()
    }

    /// Records a frame from the publisher and hands it to the consumer.
    pub fn push(&mut self, frame: &MediaFrame) {
        self.record(frame);
        if let Some(c) = &mut self.consumer {
            c.push(frame);
        }
    }

    fn record(&self, frame: &MediaFrame) {
        let now_ns = self.stream.started.elapsed().as_nanos() as u64;
        self.stream
            .last_activity_ns
            .store(now_ns, Ordering::Relaxed);
        let len = frame.len() as u64;
        let mut stats = self.stream.stats.lock().expect("stats lock");
        match frame {
            MediaFrame::VideoConfig(c) => {
                stats.video = Some(VideoInfo {
                    codec: c.codec,
                    codec_string: c.codec_string.clone(),
                    width: c.width,
                    height: c.height,
                    frame_rate: c.frame_rate,
                });
            }
            MediaFrame::AudioConfig(c) => {
                stats.audio = Some(AudioInfo {
                    codec: c.codec,
                    codec_string: c.codec_string.clone(),
                    sample_rate: c.sample_rate,
                    channels: c.channels,
                });
            }
            MediaFrame::Video(_) => {
                self.video_bytes.inc_by(len);
                self.video_frames.inc();
                stats.window_bytes += len;
                stats.window_video_frames += 1;
            }
            MediaFrame::Audio(_) => {
                self.audio_bytes.inc_by(len);
                self.audio_frames.inc();
                stats.window_bytes += len;
            }
        }
        let elapsed_ns = now_ns.saturating_sub(stats.window_start_ns);
        if elapsed_ns >= 1_000_000_000 {
            let secs = elapsed_ns as f64 / 1e9;
            stats.bitrate_bps = (stats.window_bytes as f64 * 8.0 / secs) as u64;
            if stats.window_video_frames > 0 {
                stats.measured_fps =
                    Some((stats.window_video_frames as f64 / secs * 100.0).round() / 100.0);
            }
            stats.window_start_ns = now_ns;
            stats.window_bytes = 0;
            stats.window_video_frames = 0;
        }
    }
}

impl std::fmt::Debug for PublishHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishHandle")
            .field("stream", &self.stream.name)
            .field("id", &self.stream.id)
            .finish_non_exhaustive()
    }
}

impl Drop for PublishHandle {
    fn drop(&mut self) {
        // The consumer goes first, so its output is ended before the name is free again.
        self.consumer = None;
        self.registry.unpublish(&self.stream);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Formats a time as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(timeout: Duration) -> Arc<StreamRegistry> {
        let streams = vec![
            StreamConfig {
                name: "a".parse().unwrap(),
                key: "key-a".into(),
                passphrase: String::new(),
            },
            StreamConfig {
                name: "b".parse().unwrap(),
                key: "key-b".into(),
                passphrase: String::new(),
            },
        ];
        StreamRegistry::new(streams, timeout, Metrics::new())
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn key_maps_to_name_and_drop_unpublishes() {
        let r = registry(Duration::from_secs(5));
        assert_eq!(
            r.publish("nope", "rtmp", addr()).unwrap_err(),
            PublishError::BadKey
        );
        let h = r.publish("key-b", "rtmp", addr()).unwrap();
        assert_eq!(h.name().as_str(), "b");
        assert_eq!(r.live_count(), 1);
        let snap = r.snapshot();
        assert!(!snap[0].live && snap[1].live);
        let json = serde_json::to_string(&snap).unwrap();
        assert!(
            !json.contains("key-b"),
            "keys never leave the registry: {json}"
        );
        drop(h);
        assert_eq!(r.live_count(), 0);
    }

    #[test]
    fn second_publisher_refused_while_first_sends() {
        let r = registry(Duration::from_secs(60));
        let _h = r.publish("key-a", "rtmp", addr()).unwrap();
        assert!(matches!(
            r.publish("key-a", "srt", addr()),
            Err(PublishError::AlreadyLive(_))
        ));
    }

    #[test]
    fn takeover_after_silence() {
        let r = registry(Duration::from_millis(30));
        let old = r.publish("key-a", "rtmp", addr()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let new = r.publish("key-a", "rtmp", addr()).unwrap();
        assert!(old.is_cancelled());
        assert!(!new.is_cancelled());
        // The old handle going away must not unpublish the newcomer.
        drop(old);
        assert_eq!(r.live_count(), 1);
        drop(new);
        assert_eq!(r.live_count(), 0);
    }

    #[test]
    fn drain_refuses_and_cancels() {
        let r = registry(Duration::from_secs(5));
        let h = r.publish("key-a", "rtmp", addr()).unwrap();
        r.drain();
        assert!(h.is_cancelled());
        assert_eq!(
            r.publish("key-b", "rtmp", addr()).unwrap_err(),
            PublishError::Draining
        );
    }

    #[test]
    fn consumer_gets_frames_and_is_dropped_on_unpublish() {
        use std::sync::atomic::AtomicUsize;
        struct Counting(Arc<AtomicUsize>, Arc<AtomicBool>);
        impl MediaConsumer for Counting {
            fn push(&mut self, _frame: &MediaFrame) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        impl Drop for Counting {
            fn drop(&mut self) {
                self.1.store(true, Ordering::SeqCst);
            }
        }
        let frames = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let r = registry(Duration::from_secs(5));
        let (f, d) = (frames.clone(), dropped.clone());
        r.set_consumer_factory(Arc::new(move |name, _ended| {
            assert_eq!(name.as_str(), "a");
            Box::new(Counting(f.clone(), d.clone()))
        }));
        let mut h = r.publish("key-a", "rtmp", addr()).unwrap();
        let frame = MediaFrame::Audio(media::AudioFrame {
            pts: media::MediaTime::ZERO,
            data: bytes::Bytes::from_static(&[1, 2, 3]),
        });
        h.push(&frame);
        h.push(&frame);
        assert_eq!(frames.load(Ordering::SeqCst), 2);
        assert!(!dropped.load(Ordering::SeqCst));
        drop(h);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn end_signal_carries_the_first_reason() {
        let r = registry(Duration::from_secs(5));
        let signals = Arc::new(Mutex::new(Vec::new()));
        let seen = signals.clone();
        struct Nothing;
        impl MediaConsumer for Nothing {
            fn push(&mut self, _frame: &MediaFrame) {}
        }
        r.set_consumer_factory(Arc::new(move |_name, end: EndSignal| {
            seen.lock().unwrap().push(end);
            Box::new(Nothing)
        }));
        let a = r.publish("key-a", "rtmp", addr()).unwrap();
        let end = signals.lock().unwrap()[0].clone();
        assert_eq!(a.end_reason(), None);
        end.end("Transcoding failed: boom");
        end.end("a later reason");
        assert!(a.is_cancelled());
        assert_eq!(a.end_reason().as_deref(), Some("Transcoding failed: boom"));
        // A takeover or drain ends without a reason.
        let b = r.publish("key-b", "rtmp", addr()).unwrap();
        r.drain();
        assert!(b.is_cancelled());
        assert_eq!(b.end_reason(), None);
    }

    #[test]
    fn rfc3339_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
