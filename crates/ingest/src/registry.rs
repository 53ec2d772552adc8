//! The stream registry: which streams exist, who publishes each, and the takeover rule.
//!
//! Ingest drivers call [`StreamRegistry::publish`] with the key a publisher presented. The registry
//! maps it to the public stream name, enforces one publisher per name, and hands back a
//! [`PublishHandle`]. Media frames go through the handle into the publish's bounded queue
//! ([`crate::frames`]), whose other end the consumer (the transcoder) was given; dropping the
//! handle is the unpublish, so a closed socket always ends the stream, whatever the client sent
//! before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use media::{MediaFrame, StreamName};
use tokio::sync::watch;

use crate::auth::{Authorizer, PublishAttempt, PublishOptions, Refused, Unpublished};
use crate::config::StreamConfig;
use crate::end::{EndReason, EndSignal};
use crate::error::PublishError;
use crate::frames::{self, FrameReceiver, FrameSender};
use crate::metrics::{IngestMetrics, TrackCounters};
use crate::outcome::Protocol;
use crate::ownership::{Ownership, OwnershipClaim, PublishWatch};
use crate::snapshot::{rfc3339, AudioInfo, PublisherSnapshot, StreamSnapshot, VideoInfo};

/// Starts the consumer of a new publish: the stream's name, what the authorizer decided for it
/// (the renditions), the signal through which the consumer can end the publish (its pipeline
/// failed, promised hardware is missing, a rendition asked for is not configured), saying why,
/// and the receiving end of the publish's frames. It is called on the ingest's task, so it must
/// return at once: the consumer does its work on a thread of its own. The publish is over for
/// the consumer when the receiver reports [`frames::RecvError::Closed`].
pub type ConsumerFactory =
    Arc<dyn Fn(&StreamName, &PublishOptions, EndSignal, FrameReceiver) + Send + Sync>;

/// The live publishes, by stream name.
type LiveMap = BTreeMap<StreamName, Arc<LiveStream>>;

/// All streams and their publishers.
pub struct StreamRegistry {
    streams: Vec<StreamConfig>,
    live: Mutex<LiveMap>,
    /// The number of live publishers, for whoever waits for them all to end.
    live_count: watch::Sender<usize>,
    metrics: Arc<IngestMetrics>,
    publisher_timeout: Duration,
    draining: AtomicBool,
    next_id: AtomicU64,
    consumers: OnceLock<ConsumerFactory>,
    /// Cluster mode: who else may hold a stream.
    ownership: OnceLock<Arc<dyn Ownership>>,
    /// Who decides keys that name no configured stream (the webhook).
    authorizer: OnceLock<Arc<dyn Authorizer>>,
    /// The consumer's rendition names, which an authorizer may choose from.
    renditions: OnceLock<Vec<String>>,
}

/// A publish allowed to go live under `name`, by a configured key or by the authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The public stream name.
    pub name: StreamName,
    /// What the authorizer decided for it beyond the name.
    pub options: PublishOptions,
    /// The authorizer allowed it, and hears when it ends.
    by_authorizer: bool,
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
struct LiveStream {
    id: u64,
    name: StreamName,
    protocol: Protocol,
    remote: SocketAddr,
    started_at: SystemTime,
    started: Instant,
    /// Nanoseconds after `started` of the last frame.
    last_activity_ns: AtomicU64,
    stats: Mutex<Stats>,
    cancel: EndSignal,
    /// Its consumer has started: until then (in cluster mode, while the stream is claimed) it
    /// holds the name here but is not shown as live.
    started_consumer: AtomicBool,
    /// The authorizer allowed it, and hears when it ends.
    by_authorizer: bool,
    /// What the authorizer decided for it, for its consumer.
    options: PublishOptions,
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

/// Proof of being a stream's publisher. Dropping it unpublishes.
pub struct PublishHandle {
    registry: Arc<StreamRegistry>,
    stream: Arc<LiveStream>,
    frames: Option<FrameSender>,
    counters: TrackCounters,
    /// Cluster mode: the stream's claim, released with the handle.
    claim: Option<OwnershipClaim>,
}

impl StreamRegistry {
    /// A registry for these streams; publishers that send nothing for `publisher_timeout` may be
    /// taken over.
    pub fn new(
        streams: Vec<StreamConfig>,
        publisher_timeout: Duration,
        metrics: Arc<IngestMetrics>,
    ) -> Arc<StreamRegistry> {
        Arc::new(StreamRegistry {
            streams,
            live: Mutex::new(BTreeMap::new()),
            live_count: watch::channel(0).0,
            metrics,
            publisher_timeout,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            consumers: OnceLock::new(),
            ownership: OnceLock::new(),
            authorizer: OnceLock::new(),
            renditions: OnceLock::new(),
        })
    }

    /// The renditions an authorizer may choose from (the configured ladder's names): a choice
    /// of others is refused before the publish takes its stream. Only the first call takes
    /// effect.
    pub fn set_renditions(&self, names: Vec<String>) {
        let _ = self.renditions.set(names);
    }

    /// Keys that name no configured stream are asked of `authorizer` (the webhook)
    /// ([`StreamRegistry::authorize`]). Only the first call takes effect.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        let _ = self.authorizer.set(authorizer);
    }

    /// Which stream `attempt` may publish: a configured key's, else the authorizer's answer.
    /// Not counted as a rejection here: the caller counts what it refuses.
    pub async fn authorize(&self, attempt: &PublishAttempt) -> Result<Authorization, PublishError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(PublishError::Draining);
        }
        if attempt.oversized {
            return Err(PublishError::BadKey);
        }
        if let Some(name) = self.lookup_key(&attempt.key) {
            return Ok(Authorization {
                name: name.clone(),
                options: PublishOptions::default(),
                by_authorizer: false,
            });
        }
        let Some(authorizer) = self.authorizer.get() else {
            return Err(PublishError::BadKey);
        };
        match authorizer.authorize(attempt).await {
            // A configured stream is published with its own key only.
            Ok(allowed) if self.streams.iter().any(|s| s.name == allowed.name) => {
                Err(PublishError::Denied(format!(
                    "stream {} is published with its own key",
                    allowed.name
                )))
            }
            Ok(allowed) => {
                if let Some(why) = self
                    .renditions
                    .get()
                    .and_then(|known| allowed.options.unknown_rendition(known))
                {
                    return Err(PublishError::Denied(why));
                }
                Ok(Authorization {
                    name: allowed.name,
                    options: allowed.options,
                    by_authorizer: true,
                })
            }
            Err(Refused::Denied(reason)) => Err(PublishError::Denied(reason)),
            Err(Refused::Unavailable) => Err(PublishError::AuthUnavailable),
        }
    }

    /// What [`publish_authorized`](Self::publish_authorized) would answer for `authorization`
    /// now, by the local rules, without publishing or counting (the SRT handshake's check).
    pub fn check_authorized(&self, authorization: &Authorization) -> Result<(), PublishError> {
        self.admit_name(&authorization.name, Instant::now())
            .map(|_| ())
    }

    /// [`authorize`](Self::authorize), then [`publish_authorized`](Self::publish_authorized);
    /// a refusal is counted.
    pub async fn publish_attempt(
        self: &Arc<Self>,
        attempt: &PublishAttempt,
    ) -> Result<PublishHandle, PublishError> {
        let authorization = self.authorize(attempt).await.inspect_err(|e| {
            self.metrics.reject(attempt.protocol, e.rejection());
        })?;
        self.publish_authorized(authorization, attempt.protocol, attempt.remote)
            .await
    }

    /// Sets what receives every future publish's media. Only the first call takes effect.
    pub fn set_consumer_factory(&self, factory: ConsumerFactory) {
        let _ = self.consumers.set(factory);
    }

    /// Cluster mode: every publish also claims its stream from `ownership`
    /// ([`StreamRegistry::publish_owned`]). Only the first call takes effect.
    pub fn set_ownership(&self, ownership: Arc<dyn Ownership>) {
        let _ = self.ownership.set(ownership);
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

    /// What [`publish`](Self::publish) would answer for `key` at `now`, without publishing or
    /// counting a rejection: for ingest that must decide before it accepts a connection (SRT
    /// accepts or rejects at the handshake). `publish` still has the last word.
    pub fn check_publish(&self, key: &str, now: Instant) -> Result<StreamName, PublishError> {
        let name = self.lookup_key(key).ok_or(PublishError::BadKey)?.clone();
        self.admit_name(&name, now).map(|_| name)
    }

    /// Whether `name` may go live at `now`, with the live map locked: not while draining, not
    /// while the stream's publisher is still sending.
    fn admit_name(
        &self,
        name: &StreamName,
        now: Instant,
    ) -> Result<MutexGuard<'_, LiveMap>, PublishError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(PublishError::Draining);
        }
        let live = self.live.lock().expect("registry lock");
        match live.get(name) {
            Some(current) if current.idle_for(now) < self.publisher_timeout => {
                Err(PublishError::AlreadyLive(name.clone()))
            }
            _ => Ok(live),
        }
    }

    /// Starts a publish for `key` at `now`. A live publisher idle for `publisher_timeout` is
    /// replaced (its handle's [`PublishHandle::cancelled`] fires); a sending one makes this fail.
    /// Local rules only: ingest drivers call [`StreamRegistry::publish_owned`], which adds the
    /// cluster's in cluster mode.
    pub fn publish(
        self: &Arc<Self>,
        key: &str,
        protocol: Protocol,
        remote: SocketAddr,
        now: Instant,
    ) -> Result<PublishHandle, PublishError> {
        let name = self
            .lookup_key(key)
            .cloned()
            .ok_or(PublishError::BadKey)
            .inspect_err(|e| self.metrics.reject(protocol, e.rejection()))?;
        let authorization = Authorization {
            name,
            options: PublishOptions::default(),
            by_authorizer: false,
        };
        let mut handle = self.enter(authorization, protocol, remote, now)?;
        self.start_consumer(&mut handle);
        Ok(handle)
    }

    /// Whether `name` may go live here as far as the cluster knows (the SRT handshake's check;
    /// [`StreamRegistry::publish_owned`] has the last word). Always yes outside cluster mode.
    pub async fn check_owned(&self, name: &StreamName) -> Result<(), PublishError> {
        let Some(ownership) = self.ownership.get() else {
            return Ok(());
        };
        ownership.check(name).await.map_err(|d| d.error(name))
    }

    /// Starts an authorized publish: the local rules first (a local takeover is decided here),
    /// then in cluster mode the stream's claim cluster-wide, and only then does the consumer
    /// start. A refusal is counted; a refused claim unpublishes at once.
    pub async fn publish_authorized(
        self: &Arc<Self>,
        authorization: Authorization,
        protocol: Protocol,
        remote: SocketAddr,
    ) -> Result<PublishHandle, PublishError> {
        let mut handle = self.enter(authorization, protocol, remote, Instant::now())?;
        let Some(ownership) = self.ownership.get().cloned() else {
            self.start_consumer(&mut handle);
            return Ok(handle);
        };
        let stream = handle.stream.clone();
        let watch = PublishWatch {
            name: stream.name.clone(),
            id: stream.id,
            end: stream.cancel.clone(),
            idle: Arc::new(move || stream.idle_for(Instant::now())),
            takeover_after: self.publisher_timeout,
        };
        match ownership.claim(watch).await {
            Ok(claim) => {
                handle.claim = Some(claim);
                self.start_consumer(&mut handle);
                Ok(handle)
            }
            Err(disowned) => {
                let e = disowned.error(handle.name());
                self.metrics.reject(protocol, e.rejection());
                Err(e)
            }
        }
    }

    /// Enters a publish into the live map (the local rules), without starting its consumer.
    fn enter(
        self: &Arc<Self>,
        authorization: Authorization,
        protocol: Protocol,
        remote: SocketAddr,
        now: Instant,
    ) -> Result<PublishHandle, PublishError> {
        let Authorization {
            name,
            options,
            by_authorizer,
        } = authorization;
        let mut live = self.admit_name(&name, now).inspect_err(|e| {
            self.metrics.reject(protocol, e.rejection());
        })?;
        if let Some(current) = live.get(&name) {
            tracing::info!(
                stream = %name,
                idle_ms = current.idle_for(now).as_millis() as u64,
                old = %current.remote,
                new = %remote,
                "publisher taken over after silence"
            );
            current.cancel.end(EndReason::TakenOver);
        }
        let stream = Arc::new(LiveStream {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.clone(),
            protocol,
            remote,
            started_at: SystemTime::now(),
            started: now,
            last_activity_ns: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
            cancel: EndSignal::default(),
            started_consumer: AtomicBool::new(false),
            by_authorizer,
            options,
        });
        live.insert(name.clone(), stream.clone());
        self.live_count.send_replace(live.len());
        drop(live);
        Ok(PublishHandle {
            registry: self.clone(),
            frames: None,
            counters: self.metrics.tracks(name.as_str()),
            stream,
            claim: None,
        })
    }

    /// Starts the consumer of an entered publish, which gets its frames from now on.
    fn start_consumer(&self, handle: &mut PublishHandle) {
        handle.stream.started_consumer.store(true, Ordering::SeqCst);
        handle.frames = self.consumers.get().map(|start| {
            let (tx, rx) = frames::channel(frames::CAPACITY);
            let stream = &handle.stream;
            start(&stream.name, &stream.options, stream.cancel.clone(), rx);
            tx
        });
    }

    /// Refuses new publishes and tells every live publisher to stop.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        for s in self.live.lock().expect("registry lock").values() {
            s.cancel.end(EndReason::Draining);
        }
    }

    /// Number of live publishers.
    pub fn live_count(&self) -> usize {
        *self.live_count.borrow()
    }

    /// Waits until no publisher is live, or `deadline`; true when none is.
    pub async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.live_count.subscribe();
        tokio::time::timeout_at(deadline, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Every configured stream with its live state, in configuration order, then the live
    /// streams the authorizer allowed, by name.
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let live = self.live.lock().expect("registry lock");
        let publisher = |name: &StreamName| {
            live.get(name)
                .filter(|l| l.started_consumer.load(Ordering::SeqCst))
                .map(|l| l.snapshot())
        };
        let configured = self.streams.iter().map(|s| &s.name);
        let others = live
            .keys()
            .filter(|name| !self.streams.iter().any(|s| &s.name == *name));
        configured
            .chain(others)
            .map(|name| {
                let publisher = publisher(name);
                StreamSnapshot {
                    name: name.clone(),
                    live: publisher.is_some(),
                    publisher,
                }
            })
            .filter(|s| s.live || self.streams.iter().any(|c| c.name == s.name))
            .collect()
    }

    fn unpublish(&self, stream: &LiveStream) {
        let mut live = self.live.lock().expect("registry lock");
        if live.get(&stream.name).map(|s| s.id) == Some(stream.id) {
            live.remove(&stream.name);
            self.live_count.send_replace(live.len());
        }
        drop(live);
        // Only a publish that went live: not one refused at its start (by the cluster, or by
        // its consumer).
        let went_live = stream.started_consumer.load(Ordering::SeqCst)
            && !matches!(stream.cancel.reason(), Some(EndReason::Refused(_)));
        if stream.by_authorizer && went_live {
            if let Some(authorizer) = self.authorizer.get() {
                authorizer.unpublished(Unpublished {
                    name: stream.name.clone(),
                    id: stream.id,
                    protocol: stream.protocol,
                    remote: stream.remote,
                    duration: stream.started.elapsed(),
                    reason: stream
                        .cancel
                        .reason()
                        .map_or_else(|| "publisher left".to_owned(), |r| r.to_string()),
                });
            }
        }
    }
}

impl LiveStream {
    fn idle_for(&self, now: Instant) -> Duration {
        let since_start = now.saturating_duration_since(self.started);
        let last = Duration::from_nanos(self.last_activity_ns.load(Ordering::Relaxed));
        since_start.saturating_sub(last)
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

    /// Completes when this publish must end: taken over by a new publisher, server drain, or
    /// ended by the consumer.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stream.cancel.cancelled()
    }

    /// Why the server ended this publish; `None` while it has not.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.stream.cancel.reason()
    }

    /// True once [`Self::cancelled`] has fired.
    pub fn is_cancelled(&self) -> bool {
        self.stream.cancel.is_cancelled()
    }

    /// Records a frame from the publisher and queues it for the consumer; never blocks.
    pub fn push(&mut self, frame: MediaFrame) {
        self.push_at(frame, Instant::now());
    }

    /// [`Self::push`], for a frame that arrived at `now`.
    pub fn push_at(&mut self, frame: MediaFrame, now: Instant) {
        self.record(&frame, now);
        if let Some(frames) = &self.frames {
            frames.send(frame);
        }
    }

    fn record(&self, frame: &MediaFrame, now: Instant) {
        let now_ns = now
            .saturating_duration_since(self.stream.started)
            .as_nanos() as u64;
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
                self.counters.video_bytes.inc_by(len);
                self.counters.video_frames.inc();
                stats.window_bytes += len;
                stats.window_video_frames += 1;
            }
            // Another encode of a multitrack publish: its bytes count, its frames do not (the
            // frame rate is track 0's).
            MediaFrame::TrackVideo(..) => {
                self.counters.video_bytes.inc_by(len);
                stats.window_bytes += len;
            }
            MediaFrame::TrackConfig(..) => {}
            MediaFrame::Audio(_) => {
                self.counters.audio_bytes.inc_by(len);
                self.counters.audio_frames.inc();
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
        // The queue closes first, so the consumer's output is ending before the name is free
        // again.
        self.frames = None;
        self.registry.unpublish(&self.stream);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::RecvError;
    use prometheus_client::registry::Registry;

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
        let metrics = Arc::new(IngestMetrics::new(&mut Registry::default()));
        StreamRegistry::new(streams, timeout, metrics)
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    const RTMP: Protocol = Protocol::Rtmp;

    fn audio() -> MediaFrame {
        MediaFrame::Audio(media::AudioFrame {
            pts: media::MediaTime::ZERO,
            data: bytes::Bytes::from_static(&[1, 2, 3]),
        })
    }

    #[test]
    fn key_maps_to_name_and_drop_unpublishes() {
        let r = registry(Duration::from_secs(5));
        let now = Instant::now();
        assert_eq!(
            r.publish("nope", RTMP, addr(), now).unwrap_err(),
            PublishError::BadKey
        );
        let h = r.publish("key-b", RTMP, addr(), now).unwrap();
        assert_eq!(h.name().as_str(), "b");
        assert_eq!(r.live_count(), 1);
        let snap = r.snapshot();
        assert!(!snap[0].live && snap[1].live);
        let json = serde_json::to_string(&snap).unwrap();
        assert!(
            !json.contains("key-b"),
            "keys never leave the registry: {json}"
        );
        assert!(json.contains(r#""protocol":"rtmp""#), "{json}");
        drop(h);
        assert_eq!(r.live_count(), 0);
    }

    /// A registry with `key-a` live since `now`.
    fn live(timeout: Duration, now: Instant) -> (Arc<StreamRegistry>, PublishHandle) {
        let r = registry(timeout);
        let h = r.publish("key-a", RTMP, addr(), now).unwrap();
        (r, h)
    }

    #[test]
    fn second_publisher_refused_while_first_sends() {
        let now = Instant::now();
        let (r, _h) = live(Duration::from_secs(60), now);
        assert!(matches!(
            r.publish("key-a", Protocol::Srt, addr(), now),
            Err(PublishError::AlreadyLive(_))
        ));
    }

    #[test]
    fn takeover_after_silence() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let (r, mut old) = live(Duration::from_millis(30), t0);
        // Sending keeps the publish: 20 ms after its last frame, it is not idle yet.
        old.push_at(audio(), at(50));
        assert!(matches!(
            r.check_publish("key-a", at(70)),
            Err(PublishError::AlreadyLive(_))
        ));
        assert!(r.publish("key-a", RTMP, addr(), at(70)).is_err());
        let new = r.publish("key-a", RTMP, addr(), at(90)).unwrap();
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
        let now = Instant::now();
        let (r, h) = live(Duration::from_secs(5), now);
        r.drain();
        assert!(h.is_cancelled());
        assert_eq!(
            r.publish("key-b", RTMP, addr(), now).unwrap_err(),
            PublishError::Draining
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_idle_ends_with_the_last_publisher() {
        let (r, h) = live(Duration::from_secs(5), Instant::now());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        assert!(!r.wait_idle(deadline).await, "a publisher is still live");
        let waiter = {
            let r = r.clone();
            tokio::spawn(async move {
                r.wait_idle(tokio::time::Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::task::yield_now().await;
        drop(h);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn consumer_gets_frames_and_the_end_of_the_publish() {
        let r = registry(Duration::from_secs(5));
        let (tx, rx) = std::sync::mpsc::channel();
        r.set_consumer_factory(Arc::new(move |name, _options, _ended, frames| {
            assert_eq!(name.as_str(), "a");
            tx.send(frames).unwrap();
        }));
        let mut h = r.publish("key-a", RTMP, addr(), Instant::now()).unwrap();
        let frames = rx.recv().unwrap();
        h.push(audio());
        h.push(audio());
        let wait = Duration::from_secs(1);
        assert!(frames.recv_timeout(wait).is_ok());
        assert!(frames.recv_timeout(wait).is_ok());
        assert_eq!(
            frames.recv_timeout(Duration::from_millis(1)).unwrap_err(),
            RecvError::Timeout
        );
        drop(h);
        assert_eq!(frames.recv_timeout(wait).unwrap_err(), RecvError::Closed);
    }

    #[test]
    fn end_signal_carries_the_first_reason() {
        let r = registry(Duration::from_secs(5));
        let signals = Arc::new(Mutex::new(Vec::new()));
        let seen = signals.clone();
        r.set_consumer_factory(Arc::new(move |_name, _options, end: EndSignal, _frames| {
            seen.lock().unwrap().push(end);
        }));
        let now = Instant::now();
        let a = r.publish("key-a", RTMP, addr(), now).unwrap();
        let end = signals.lock().unwrap()[0].clone();
        assert_eq!(a.end_reason(), None);
        end.end(EndReason::Failed("boom".into()));
        end.end(EndReason::Refused("a later reason".into()));
        assert!(a.is_cancelled());
        assert_eq!(a.end_reason(), Some(EndReason::Failed("boom".into())));
        // A takeover and a drain say so.
        let b = r.publish("key-b", RTMP, addr(), now).unwrap();
        // After the takeover timeout's silence.
        let later = now + Duration::from_secs(6);
        let b2 = r.publish("key-b", RTMP, addr(), later).unwrap();
        assert_eq!(b.end_reason(), Some(EndReason::TakenOver));
        r.drain();
        assert_eq!(b2.end_reason(), Some(EndReason::Draining));
    }

    /// An authorizer that allows keys starting `ok-` as the rest, and records what ended.
    #[derive(Default)]
    struct Recording {
        asked: Mutex<Vec<String>>,
        ended: Mutex<Vec<Unpublished>>,
    }

    impl Authorizer for Recording {
        fn authorize<'a>(
            &'a self,
            attempt: &'a PublishAttempt,
        ) -> futures::future::BoxFuture<'a, Result<crate::auth::Allowed, Refused>> {
            self.asked.lock().unwrap().push(attempt.key.clone());
            let answer = match attempt.key.strip_prefix("ok-") {
                Some(name) => Ok(crate::auth::Allowed {
                    name: name.parse().unwrap(),
                    options: PublishOptions::default(),
                }),
                None if attempt.key == "down" => Err(Refused::Unavailable),
                None if attempt.key == "wide" => Ok(crate::auth::Allowed {
                    name: "wide".parse().unwrap(),
                    options: PublishOptions {
                        renditions: Some(vec!["4k".into()]),
                    },
                }),
                None => Err(Refused::Denied("no".into())),
            };
            Box::pin(async move { answer })
        }

        fn unpublished(&self, ended: Unpublished) {
            self.ended.lock().unwrap().push(ended);
        }
    }

    #[tokio::test]
    async fn configured_keys_publish_without_asking_and_others_ask_the_authorizer() {
        let r = registry(Duration::from_secs(5));
        let auth = Arc::new(Recording::default());
        r.set_authorizer(auth.clone());
        let attempt = |key: &str| PublishAttempt::rtmp(RTMP, key, "", "live", addr());

        let a = r.publish_attempt(&attempt("key-a")).await.unwrap();
        assert_eq!(a.name().as_str(), "a");
        let w = r.publish_attempt(&attempt("ok-web")).await.unwrap();
        assert_eq!(w.name().as_str(), "web");
        assert_eq!(
            *auth.asked.lock().unwrap(),
            ["ok-web"],
            "static keys are not asked"
        );
        assert_eq!(
            r.publish_attempt(&attempt("nope")).await.unwrap_err(),
            PublishError::Denied("no".into())
        );
        assert_eq!(
            r.publish_attempt(&attempt("down")).await.unwrap_err(),
            PublishError::AuthUnavailable
        );
        // A configured stream's name is not the authorizer's to give.
        assert!(matches!(
            r.publish_attempt(&attempt("ok-b")).await.unwrap_err(),
            PublishError::Denied(why) if why.contains("its own key")
        ));
        // A rendition the consumer does not have: refused before the stream is taken.
        r.set_renditions(vec!["source".into(), "360p".into()]);
        assert!(matches!(
            r.publish_attempt(&attempt("wide")).await.unwrap_err(),
            PublishError::Denied(why) if why.contains("\"4k\"")
        ));
        // A name or query longer than any key: refused without asking.
        let asked = auth.asked.lock().unwrap().len();
        let long = PublishAttempt::rtmp(RTMP, &"k".repeat(200), "", "live", addr());
        assert_eq!(
            r.publish_attempt(&long).await.unwrap_err(),
            PublishError::BadKey
        );
        assert_eq!(auth.asked.lock().unwrap().len(), asked, "not asked");
        // The authorizer's stream is one publisher per name too.
        assert_eq!(
            r.publish_attempt(&attempt("ok-web")).await.unwrap_err(),
            PublishError::AlreadyLive("web".parse().unwrap())
        );
        let names: Vec<_> = r
            .snapshot()
            .into_iter()
            .map(|s| (s.name.to_string(), s.live))
            .collect();
        assert_eq!(
            names,
            [
                ("a".into(), true),
                ("b".into(), false),
                ("web".into(), true)
            ]
        );

        drop(a);
        drop(w);
        let ended = auth.ended.lock().unwrap().clone();
        assert_eq!(
            ended.len(),
            1,
            "only what the authorizer allowed is notified"
        );
        assert_eq!(ended[0].name.as_str(), "web");
        assert_eq!(ended[0].reason, "publisher left");
        assert_eq!(
            r.snapshot().len(),
            2,
            "an ended webhook stream leaves the list"
        );
    }
}
