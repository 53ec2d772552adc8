//! Seam 2 in ARCHITECTURE.md: a publish's frames go from the ingest task to its consumer (the
//! transcoder) through a bounded queue, so nothing the consumer does (building a GStreamer
//! pipeline, flushing one) ever runs on, or waits in, a network task.
//!
//! The ingest side never blocks: [`FrameSender::send`] queues the frame or drops it. When the
//! queue is full, media frames are dropped and counted, and video then waits for its next
//! keyframe (a decoder cannot use frames after a gap). A codec configuration is never dropped: it
//! flushes the queued media instead (those frames are stale by then), keeping only the newest
//! video and audio configuration, so the queue stays bounded whatever a publisher sends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use media::MediaFrame;

/// Frames a publish may have queued towards its consumer: about 13 s of 30 fps video with 48 kHz
/// AAC, far more than a pipeline takes to start.
pub(crate) const CAPACITY: usize = 1024;

/// A bounded queue of one publish's frames.
pub(crate) fn channel(capacity: usize) -> (FrameSender, FrameReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity.min(CAPACITY)),
            capacity: capacity.max(1),
            sender_gone: false,
            receiver_gone: false,
            wait_keyframe: false,
            tracks_wait_keyframe: 0,
            overflowing: false,
            receiver_waiting: false,
        }),
        ready: Condvar::new(),
        dropped: DropCounter::default(),
    });
    (
        FrameSender {
            shared: shared.clone(),
        },
        FrameReceiver { shared },
    )
}

/// What became of a frame handed to [`FrameSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued for the consumer.
    Queued,
    /// Dropped and counted: the queue was full, or video waits for a keyframe after a drop.
    Dropped,
    /// The consumer is gone.
    Closed,
}

/// Why [`FrameReceiver::recv_timeout`] returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time; the publish goes on.
    Timeout,
    /// The publish ended (its sender is gone) and every frame it sent was received.
    Closed,
}

/// Frames dropped at the queue, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dropped {
    /// Video frames.
    pub video: u64,
    /// Audio frames.
    pub audio: u64,
}

/// Counts of frames dropped at a publish's queue; cheap to clone and read from anywhere.
#[derive(Debug, Clone, Default)]
pub struct DropCounter(Arc<[AtomicU64; 2]>);

impl DropCounter {
    /// Frames dropped so far.
    pub fn get(&self) -> Dropped {
        Dropped {
            video: self.0[0].load(Ordering::Relaxed),
            audio: self.0[1].load(Ordering::Relaxed),
        }
    }

    fn count(&self, frame: &MediaFrame) {
        match frame {
            MediaFrame::Video(_) | MediaFrame::TrackVideo(..) => {
                self.0[0].fetch_add(1, Ordering::Relaxed)
            }
            MediaFrame::Audio(_) => self.0[1].fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    dropped: DropCounter,
}

struct State {
    queue: VecDeque<MediaFrame>,
    capacity: usize,
    sender_gone: bool,
    receiver_gone: bool,
    /// Video was dropped: later video frames are useless until a keyframe.
    wait_keyframe: bool,
    /// The same for the other tracks of a multitrack publish, a bit per track id.
    tracks_wait_keyframe: u64,
    /// Full since the last warning: warn once per overflow, not once per frame.
    overflowing: bool,
    /// The receiver waits for a frame: only then does a sender wake it.
    receiver_waiting: bool,
}

impl State {
    /// Queues `frame` or drops it (counting it in `dropped`), by the policy in the module docs;
    /// also says whether the queue has just overflowed.
    fn offer(&mut self, frame: MediaFrame, dropped: &DropCounter) -> (Sent, bool) {
        if self.receiver_gone {
            return (Sent::Closed, false);
        }
        let is_config = matches!(
            frame,
            MediaFrame::VideoConfig(_) | MediaFrame::AudioConfig(_) | MediaFrame::TrackConfig(..)
        );
        let waits = match &frame {
            MediaFrame::Video(v) => self.wait_keyframe && !v.keyframe,
            MediaFrame::TrackVideo(id, v) => {
                self.tracks_wait_keyframe & track_bit(*id) != 0 && !v.keyframe
            }
            _ => false,
        };
        if waits {
            dropped.count(&frame);
            return (Sent::Dropped, false);
        }
        let mut overflowed = false;
        if self.queue.len() >= self.capacity {
            overflowed = !std::mem::replace(&mut self.overflowing, true);
            if !is_config {
                match &frame {
                    MediaFrame::Video(_) => self.wait_keyframe = true,
                    MediaFrame::TrackVideo(id, _) => self.tracks_wait_keyframe |= track_bit(*id),
                    _ => {}
                }
                dropped.count(&frame);
                return (Sent::Dropped, overflowed);
            }
            self.flush_media(dropped);
        } else if self.queue.len() < self.capacity / 2 {
            self.overflowing = false;
        }
        match &frame {
            MediaFrame::Video(v) if v.keyframe => self.wait_keyframe = false,
            MediaFrame::TrackVideo(id, v) if v.keyframe => {
                self.tracks_wait_keyframe &= !track_bit(*id)
            }
            _ => {}
        }
        self.queue.push_back(frame);
        (Sent::Queued, overflowed)
    }

    /// Drops every queued media frame and all but the newest configuration of each track.
    fn flush_media(&mut self, dropped: &DropCounter) {
        let mut video_config = None;
        let mut audio_config = None;
        let mut track_configs = std::collections::BTreeMap::new();
        for f in self.queue.drain(..) {
            match f {
                MediaFrame::VideoConfig(_) => video_config = Some(f),
                MediaFrame::AudioConfig(_) => audio_config = Some(f),
                MediaFrame::TrackConfig(id, _) => {
                    track_configs.insert(id, f);
                }
                other => dropped.count(&other),
            }
        }
        self.queue.extend(
            video_config
                .into_iter()
                .chain(audio_config)
                .chain(track_configs.into_values()),
        );
        self.wait_keyframe = true;
        self.tracks_wait_keyframe = u64::MAX;
    }
}

/// The bit of track `id` in [`State::tracks_wait_keyframe`] (ids past 63 share the last).
fn track_bit(id: u8) -> u64 {
    1 << id.min(63)
}

/// The ingest's end of a publish's queue. Dropping it ends the publish for the consumer, once
/// the consumer has received what was queued.
pub(crate) struct FrameSender {
    shared: Arc<Shared>,
}

impl FrameSender {
    /// Queues a frame for the consumer; never blocks.
    pub(crate) fn send(&self, frame: MediaFrame) -> Sent {
        let Ok(mut state) = self.shared.state.lock() else {
            return Sent::Closed;
        };
        let (sent, overflowed) = state.offer(frame, &self.shared.dropped);
        let wake = sent == Sent::Queued && state.receiver_waiting;
        let capacity = state.capacity;
        drop(state);
        if wake {
            self.shared.ready.notify_one();
        }
        if overflowed {
            tracing::warn!(
                capacity,
                "the transcoder is not taking this stream's frames; dropping them"
            );
        }
        sent
    }
}

impl Drop for FrameSender {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.sender_gone = true;
        }
        self.shared.ready.notify_all();
    }
}

impl std::fmt::Debug for FrameSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSender").finish_non_exhaustive()
    }
}

/// The consumer's end of a publish's queue.
pub struct FrameReceiver {
    shared: Arc<Shared>,
}

impl FrameReceiver {
    /// The next frame, waiting at most `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<MediaFrame, RecvError> {
        let Ok(mut state) = self.shared.state.lock() else {
            return Err(RecvError::Closed);
        };
        state.receiver_waiting = true;
        let (mut state, _) = self
            .shared
            .ready
            .wait_timeout_while(state, timeout, |s| s.queue.is_empty() && !s.sender_gone)
            .map_err(|_| RecvError::Closed)?;
        state.receiver_waiting = false;
        match state.queue.pop_front() {
            Some(frame) => Ok(frame),
            None if state.sender_gone => Err(RecvError::Closed),
            None => Err(RecvError::Timeout),
        }
    }

    /// The counts of frames this queue dropped.
    pub fn drop_counter(&self) -> DropCounter {
        self.shared.dropped.clone()
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.receiver_gone = true;
            state.queue.clear();
        }
    }
}

impl std::fmt::Debug for FrameReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReceiver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::{AudioFrame, MediaTime, VideoFrame};

    fn video(ms: i64, keyframe: bool) -> MediaFrame {
        MediaFrame::Video(VideoFrame {
            pts: MediaTime::from_millis(ms),
            dts: MediaTime::from_millis(ms),
            keyframe,
            data: Bytes::from_static(&[0; 4]),
        })
    }

    fn audio(ms: i64) -> MediaFrame {
        MediaFrame::Audio(AudioFrame {
            pts: MediaTime::from_millis(ms),
            data: Bytes::from_static(&[1; 4]),
        })
    }

    fn track(ms: i64, keyframe: bool) -> MediaFrame {
        match video(ms, keyframe) {
            MediaFrame::Video(v) => MediaFrame::TrackVideo(1, v),
            _ => unreachable!(),
        }
    }

    fn track_config() -> MediaFrame {
        match config() {
            MediaFrame::VideoConfig(c) => MediaFrame::TrackConfig(1, c),
            _ => unreachable!(),
        }
    }

    fn config() -> MediaFrame {
        MediaFrame::VideoConfig(media::VideoConfig {
            codec: media::VideoCodec::H264,
            record: Bytes::from_static(&[1, 0x42, 0, 0x1e]),
            width: 640,
            height: 360,
            frame_rate: None,
            codec_string: "avc1.42001e".into(),
            nal_length_size: 4,
        })
    }

    /// Frames sent into a queue of capacity 3 (nobody receiving), what each send answers, and
    /// what the consumer then receives.
    #[test]
    fn the_queue_drops_to_a_keyframe_and_keeps_configurations() {
        type Case = (
            &'static str,
            Vec<MediaFrame>,
            Vec<Sent>,
            Vec<&'static str>,
            Dropped,
        );
        use Sent::{Dropped as D, Queued as Q};
        let cases: Vec<Case> = vec![
            (
                "within capacity everything is queued in order",
                vec![video(0, true), audio(0), video(33, false)],
                vec![Q, Q, Q],
                vec!["V0k", "A0", "V33"],
                Dropped::default(),
            ),
            (
                "full: media is dropped, video until its next keyframe",
                vec![
                    video(0, true),
                    audio(0),
                    video(33, false),
                    video(66, false),
                    audio(20),
                ],
                vec![Q, Q, Q, D, D],
                vec!["V0k", "A0", "V33"],
                Dropped { video: 1, audio: 1 },
            ),
            (
                "a configuration flushes the stale media and is kept",
                vec![
                    video(0, true),
                    audio(0),
                    video(33, false),
                    config(),
                    video(66, false),
                    video(99, true),
                ],
                vec![Q, Q, Q, Q, D, Q],
                vec!["C", "V99k"],
                Dropped { video: 3, audio: 1 },
            ),
            (
                "another track's configuration is kept too, and its video waits for its own \
                 keyframe",
                vec![
                    video(0, true),
                    track(0, true),
                    track(33, false),
                    track_config(),
                    track(66, false),
                    video(66, false),
                    track(99, true),
                    video(99, true),
                ],
                vec![Q, Q, Q, Q, D, D, Q, Q],
                vec!["C", "T99k", "V99k"],
                Dropped { video: 5, audio: 0 },
            ),
            (
                "a full queue drops another track's video as it drops track 0's",
                vec![video(0, true), audio(0), video(33, false), track(33, true)],
                vec![Q, Q, Q, D],
                vec!["V0k", "A0", "V33"],
                Dropped { video: 1, audio: 0 },
            ),
        ];
        for (what, frames, sent, received, dropped) in cases {
            let (tx, rx) = channel(3);
            let got: Vec<Sent> = frames.into_iter().map(|f| tx.send(f)).collect();
            assert_eq!(got, sent, "{what}");
            drop(tx);
            let mut out = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_millis(10)) {
                    Ok(f) => out.push(match f {
                        MediaFrame::Video(v) if v.keyframe => format!("V{}k", v.pts.as_millis()),
                        MediaFrame::Video(v) => format!("V{}", v.pts.as_millis()),
                        MediaFrame::Audio(a) => format!("A{}", a.pts.as_millis()),
                        MediaFrame::TrackVideo(_, v) if v.keyframe => {
                            format!("T{}k", v.pts.as_millis())
                        }
                        MediaFrame::TrackVideo(_, v) => format!("T{}", v.pts.as_millis()),
                        _ => "C".to_owned(),
                    }),
                    Err(e) => {
                        assert_eq!(e, RecvError::Closed, "{what}");
                        break;
                    }
                }
            }
            assert_eq!(out, received, "{what}");
            assert_eq!(rx.drop_counter().get(), dropped, "{what}");
        }
    }

    #[test]
    fn configuration_floods_stay_bounded() {
        let (tx, rx) = channel(3);
        for _ in 0..100 {
            assert_eq!(tx.send(config()), Sent::Queued);
        }
        drop(tx);
        let mut n = 0;
        while rx.recv_timeout(Duration::from_millis(10)).is_ok() {
            n += 1;
        }
        assert!(n <= 3, "{n} frames queued");
    }

    #[test]
    fn a_waiting_receiver_wakes_on_a_frame_and_on_the_end() {
        let (tx, rx) = channel(8);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(5)).unwrap_err(),
            RecvError::Timeout
        );
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(audio(0));
        });
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
        sender.join().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap_err(),
            RecvError::Closed
        );
    }

    #[test]
    fn a_gone_consumer_closes_the_sender() {
        let (tx, rx) = channel(8);
        drop(rx);
        assert_eq!(tx.send(audio(0)), Sent::Closed);
    }
}
