//! Every stream's HLS output, by name: what the HTTP side serves and the metrics read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::StreamName;
use tokio::sync::watch;

use crate::output::StreamOutput;

/// Every stream's HLS output, for the HTTP side.
#[derive(Debug)]
pub struct Outputs {
    map: Mutex<HashMap<StreamName, Arc<StreamOutput>>>,
    keep_ended: Duration,
    /// How long a stream whose publisher left stays open for it to come back.
    reconnect_window: Duration,
    /// Set by the drain: publishes that end now end their playlists, and open ones are ended.
    draining: std::sync::atomic::AtomicBool,
    /// A drain leaves the ended publishes' playlists open ([`Outputs::hand_over_on_drain`]).
    hand_over: std::sync::atomic::AtomicBool,
    /// Feeders running and pipelines finishing: the drain waits for none to be left.
    busy: watch::Sender<usize>,
}

impl Outputs {
    /// An empty set of outputs; ended streams are kept for `keep_ended`. A stream's playlists
    /// end as soon as its publisher leaves.
    pub fn new(keep_ended: Duration) -> Arc<Outputs> {
        Outputs::with_reconnect_window(keep_ended, Duration::ZERO)
    }

    /// Like [`Outputs::new`], but a stream whose publisher leaves keeps its playlists open for
    /// `reconnect_window`, for a publisher that comes back to continue them.
    pub fn with_reconnect_window(keep_ended: Duration, reconnect_window: Duration) -> Arc<Outputs> {
        Arc::new(Outputs {
            map: Mutex::new(HashMap::new()),
            keep_ended,
            reconnect_window,
            draining: std::sync::atomic::AtomicBool::new(false),
            hand_over: std::sync::atomic::AtomicBool::new(false),
            busy: watch::channel(0).0,
        })
    }

    /// How long a stream whose publisher left waits for it; zero while draining.
    pub(crate) fn reconnect_window(&self) -> Duration {
        if self.ends_on_drain() {
            Duration::ZERO
        } else {
            self.reconnect_window
        }
    }

    /// Whether the drain has begun and ends the playlists of the publishes it ends (it does
    /// unless it hands the streams over: [`Outputs::hand_over_on_drain`]).
    pub(crate) fn ends_on_drain(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
            && !self.hand_over.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A drain hands the streams over: the publishes it ends leave their playlists open
    /// (paused: no ENDLIST), since their publishers go on on
    /// another pod, which continues the playlists (cluster mode with continuity). Players
    /// polling through other pods never see an end that is not one.
    pub fn hand_over_on_drain(&self) {
        self.hand_over
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The drain begins: streams waiting for their publisher end now (ENDLIST), and publishes
    /// that end from now on end their playlists at once (unless the drain hands them over:
    /// [`Outputs::hand_over_on_drain`]).
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for o in self.all() {
            o.packaged.end_if_paused_for(Duration::ZERO);
        }
    }

    /// The output of a stream, if it has one (live, starting, or ended but still kept).
    /// On the request path, so it looks at one output only; ended outputs past `keep_ended` are
    /// dropped here when asked for, and all at once in [`Outputs::all`] (each scrape).
    pub fn get(&self, name: &str) -> Option<Arc<StreamOutput>> {
        let mut map = self.map.lock().expect("outputs lock");
        let (key, output) = map.iter().find(|(n, _)| n.as_str() == name)?;
        output.packaged.end_if_paused_for(self.reconnect_window());
        if output.packaged.expired(self.keep_ended) {
            let key = key.clone();
            map.remove(&key);
            return None;
        }
        Some(output.clone())
    }

    /// All outputs still served, for metrics.
    pub fn all(&self) -> Vec<Arc<StreamOutput>> {
        let mut map = self.map.lock().expect("outputs lock");
        let keep = self.keep_ended;
        let window = self.reconnect_window();
        map.retain(|_, o| {
            o.packaged.end_if_paused_for(window);
            !o.packaged.expired(keep)
        });
        map.values().cloned().collect()
    }

    /// Where a new publish of `name` starts its media sequence numbers. Segments are served as
    /// immutable, so a URI must never name two contents: not after a reconnect (continue after
    /// the previous publish) and not after a restart of the process (start from the clock, in
    /// units of the shortest allowed segment, 500 ms, which no real-time publish can outrun).
    pub(crate) fn first_msn(&self, name: &StreamName) -> u64 {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_millis() / 500) as u64)
            .unwrap_or(0);
        clock.max(self.previous_msn(name).unwrap_or(0))
    }

    /// The media sequence number the previous publish of `name` on this server would have
    /// given its next segment, if there was one.
    pub(crate) fn previous_msn(&self, name: &StreamName) -> Option<u64> {
        self.map
            .lock()
            .expect("outputs lock")
            .get(name)
            .and_then(|o| o.with_packager(|p| p.next_msn()))
    }

    /// The media sequence number the previous publish of `name` on this server would have
    /// given `rung`'s next segment (the stream's, if it had no such rung), if there was one.
    pub(crate) fn previous_msn_of(&self, name: &StreamName, rung: &str) -> Option<u64> {
        self.map
            .lock()
            .expect("outputs lock")
            .get(name)
            .and_then(|o| o.with_packager(|p| p.next_msn_of(rung).unwrap_or(p.next_msn())))
    }

    /// Where a new publish of `name` starts its discontinuity sequence: after the previous
    /// publish's, so that a player that watched it sees a new timeline. A new process starts at
    /// 0: deriving it from the clock, as the media sequence is, would make it huge, and hls.js
    /// 1.x walks every discontinuity number below the current one on each playlist load (40 ms
    /// a load at a million).
    pub(crate) fn first_discontinuity_sequence(&self, name: &StreamName) -> u64 {
        self.map
            .lock()
            .expect("outputs lock")
            .get(name)
            .and_then(|o| o.with_packager(|p| p.next_discontinuity_sequence()))
            .unwrap_or(0)
    }

    /// Where a new publish of `name` starts its init segment versions: above the previous
    /// publish's, so that an init URI never names two contents.
    pub(crate) fn first_init_version(&self, name: &StreamName) -> u32 {
        self.map
            .lock()
            .expect("outputs lock")
            .get(name)
            .and_then(|o| o.with_packager(|p| p.next_init_version()))
            .unwrap_or(0)
    }

    pub(crate) fn replace(&self, output: Arc<StreamOutput>) {
        self.map
            .lock()
            .expect("outputs lock")
            .insert(output.name().clone(), output);
    }

    /// Counts one piece of work that the drain must wait for (a feeder, a finishing pipeline)
    /// until the guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.send_modify(|n| *n += 1);
        Busy(self.clone())
    }

    /// Waits until every feeder has ended and every finishing pipeline has flushed (ENDLIST
    /// written), or the deadline.
    pub async fn wait_finished(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.busy.subscribe();
        tokio::time::timeout_at(deadline, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Work the drain waits for, counted until dropped.
pub(crate) struct Busy(Arc<Outputs>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::{chunk, live_output, source_rung};

    #[test]
    fn ended_outputs_are_kept_for_keep_ended_then_dropped() {
        let name: StreamName = "s".parse().unwrap();
        let ready = |outputs: &Arc<Outputs>| {
            let o = StreamOutput::new(
                name.clone(),
                hls::PackagerConfig::default(),
                1,
                ingest::frames::DropCounter::default(),
            );
            o.packaged.on_rung_ready(source_rung());
            outputs.replace(o.clone());
            o
        };
        let kept = Outputs::new(Duration::from_secs(60));
        ready(&kept).packaged.end();
        assert!(
            kept.get("s").is_some(),
            "an ended stream stays served for keep_ended"
        );
        let gone = Outputs::new(Duration::ZERO);
        ready(&gone).packaged.end();
        std::thread::sleep(Duration::from_millis(5));
        assert!(gone.get("s").is_none());
        assert!(gone.all().is_empty());
        assert!(gone.get("other").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_waits_for_busy_work() {
        let outputs = Outputs::new(Duration::from_secs(60));
        let soon = || tokio::time::Instant::now() + Duration::from_secs(1);
        assert!(outputs.wait_finished(soon()).await, "nothing to wait for");
        let busy = outputs.busy();
        assert!(!outputs.wait_finished(soon()).await, "a feeder is running");
        let waiter = {
            let outputs = outputs.clone();
            tokio::spawn(async move { outputs.wait_finished(soon()).await })
        };
        tokio::task::yield_now().await;
        drop(busy);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_reconnect_window_runs_out_in_virtual_time_and_a_drain_ends_it_at_once() {
        let window = Duration::from_secs(10);
        let outputs = Outputs::with_reconnect_window(Duration::from_secs(60), window);
        let o = live_output(true);
        let now = std::time::SystemTime::now();
        let segment = media::cmaf::ChunkKind::SegmentStart;
        o.packaged.on_chunk(0, chunk(segment, 0, 500), now, &[]);
        outputs.replace(o.clone());
        o.packaged.pause();
        tokio::time::advance(window - Duration::from_millis(1)).await;
        let o = outputs.get("s").expect("served while paused");
        assert!(o.is_paused() && !o.is_over(), "within the window");
        tokio::time::advance(Duration::from_millis(1)).await;
        let o = outputs
            .get("s")
            .expect("an ended stream is kept for keep_ended");
        assert!(o.is_over() && !o.is_paused(), "the window ran out");
        let text = o.playlist(Some("source"), false).expect("a playlist");
        assert!(text.ends_with(b"#EXT-X-ENDLIST\n"));

        // Paused again in a new output: a drain ends it without waiting for the window.
        let o = live_output(true);
        o.packaged.on_chunk(0, chunk(segment, 0, 500), now, &[]);
        outputs.replace(o.clone());
        o.packaged.pause();
        assert_eq!(outputs.reconnect_window(), window);
        outputs.drain();
        assert!(o.is_over() && !o.is_paused());
        assert_eq!(outputs.reconnect_window(), Duration::ZERO);
    }
}
