//! One stream's output: its packaged state ([`Packaged`], one lock and the `watch` cursor held
//! requests wait on), the feeder's typed control queue, and the view of its pipeline that the
//! status reads. The feeder owns the pipeline; the sink and the feeder's lifecycle calls write
//! the packaged state; playback, the gauges and the API only read.

use std::sync::Arc;

use ingest::frames::DropCounter;
use media::StreamName;
use tokio::sync::watch;

use crate::control::{Control, ControlQueue};
use crate::packaged::Packaged;
use crate::status::{PipelineView, Status};

/// One stream's output.
pub struct StreamOutput {
    name: StreamName,
    /// The packager and everything written with it.
    pub(crate) packaged: Packaged,
    /// What the feeder is asked to do from other threads, until it does it.
    pub(crate) control: ControlQueue,
    /// The feeder's pipeline, as the status reads it.
    pub(crate) pipeline: PipelineView,
    /// Frames the publish's queue dropped before they reached the pipeline.
    input_drops: DropCounter,
}

impl std::fmt::Debug for StreamOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOutput")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StreamOutput {
    pub(crate) fn new(
        name: StreamName,
        packager_config: hls::PackagerConfig,
        planned: usize,
        input_drops: DropCounter,
    ) -> Arc<Self> {
        Arc::new(StreamOutput {
            packaged: Packaged::new(name.clone(), packager_config, planned),
            name,
            control: ControlQueue::default(),
            pipeline: PipelineView::default(),
            input_drops,
        })
    }

    /// The stream name.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// One look at the stream, for the gauges, the API and the health report.
    pub fn status(&self) -> Status {
        let (over, paused, rungs) = self.packaged.look();
        let (backends, pipeline) = self.pipeline.read();
        Status {
            over,
            paused,
            rungs,
            backends,
            pipeline,
            input_dropped: self.input_drops.get(),
        }
    }

    /// True once the stream has ended or failed: waiting for more is pointless.
    pub fn is_over(&self) -> bool {
        self.packaged.is_over()
    }

    /// Whether the playlists wait for the publisher to come back.
    pub fn is_paused(&self) -> bool {
        self.packaged.is_paused()
    }

    /// A receiver that changes whenever the packager does (a chunk, the end).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.packaged.subscribe()
    }

    /// Runs `f` on the packager once it exists.
    pub fn with_packager<R>(&self, f: impl FnOnce(&hls::Packager) -> R) -> Option<R> {
        self.packaged.with_packager(f)
    }

    /// The media playlist of `rung` (a delta update with `skip`), or the master playlist for
    /// `None`; `None` before packaging starts or for an unknown rung. Rendered once per change.
    pub fn playlist(&self, rung: Option<&str>, skip: bool) -> Option<bytes::Bytes> {
        self.packaged.playlist(rung, skip)
    }

    /// Asks the feeder to shed rung `rung` (by name), or to bring it back, at once; the test
    /// builds' fault hook calls this.
    pub fn request_shed(&self, rung: &str, shed: bool) -> Result<(), ShedRefusal> {
        let (_, _, rungs) = self.packaged.look();
        let index =
            rungs
                .iter()
                .position(|r| r.name == rung)
                .ok_or_else(|| ShedRefusal::NoSuchRung {
                    stream: self.name.to_string(),
                    rung: rung.to_owned(),
                })?;
        self.control.send(Control::ForceShed { rung: index, shed });
        Ok(())
    }
}

/// Why [`StreamOutput::request_shed`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShedRefusal {
    /// The stream's ladder has no such rung now.
    #[error("stream {stream} has no rung {rung:?} now")]
    NoSuchRung {
        /// The stream.
        stream: String,
        /// The rung asked for.
        rung: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use media::cmaf::{ChunkKind, CmafChunk};
    use media::MediaTime;
    use pipeline::RungInfo;

    use super::*;
    use crate::rate::RateMeter;

    pub(crate) fn source_rung() -> RungInfo {
        RungInfo {
            index: 0,
            name: "source".into(),
            width: 640,
            height: 360,
            frame_rate: Some(30.0),
            video_kbps: None,
            video_codec: "avc1.42c01e".into(),
            audio_codec: None,
            passthrough: true,
        }
    }

    pub(crate) fn chunk(kind: ChunkKind, pts_ms: i64, ms: i64) -> CmafChunk {
        CmafChunk {
            kind,
            data: bytes::Bytes::from(vec![0u8; 64]),
            pts: MediaTime::from_millis(pts_ms),
            duration: MediaTime::from_millis(ms),
            independent: kind != ChunkKind::Continuation,
        }
    }

    /// A live single-rung output, low-latency or not, with its init segment in.
    pub(crate) fn live_output(low_latency: bool) -> Arc<StreamOutput> {
        let config = hls::PackagerConfig {
            low_latency,
            whole_segments: !low_latency,
            ..hls::PackagerConfig::default()
        };
        let o = StreamOutput::new("s".parse().unwrap(), config, 1, DropCounter::default());
        o.packaged.on_rung_ready(source_rung());
        let now = SystemTime::now();
        assert!(o
            .packaged
            .on_chunk(0, chunk(ChunkKind::Init, 0, 0), now, &[])
            .is_some());
        o
    }

    #[test]
    fn a_forced_shed_names_a_rung_of_the_ladder() {
        let o = live_output(true);
        assert_eq!(
            o.request_shed("nope", true),
            Err(ShedRefusal::NoSuchRung {
                stream: "s".into(),
                rung: "nope".into()
            })
        );
        o.request_shed("source", true).unwrap();
        assert_eq!(o.control.take_forced(), [(0, true)]);
    }

    #[test]
    fn a_paused_output_is_continued_by_a_new_publish_or_ends_after_the_window() {
        let o = live_output(true);
        let now = SystemTime::now();
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 500, 500), now, &[]);
        assert!(!o.is_paused());
        // The publisher leaves: the open segment closes, the playlist stays open.
        let closed = o.packaged.pause();
        assert_eq!(closed.len(), 1, "the open segment closed: {closed:?}");
        assert!(o.is_paused() && !o.is_over());
        assert!(
            o.status().rungs.iter().all(|r| r.realtime_factor.is_none()),
            "a paused stream reports no rates"
        );
        o.packaged.end_if_paused_for(Duration::from_secs(30));
        assert!(!o.is_over(), "within the window");
        // A ladder with other rungs cannot continue it; the same one can, once.
        assert!(!o.packaged.resume(&["source", "240p"]));
        assert!(o.packaged.resume(&["source"]));
        assert!(!o.is_paused());
        assert!(!o.packaged.resume(&["source"]), "not paused any more");
        o.packaged
            .on_chunk(0, chunk(ChunkKind::Init, 0, 0), now, &[]);
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 500, 500), now, &[]);
        let text = o.playlist(Some("source"), false).expect("a playlist");
        let text = std::str::from_utf8(&text).unwrap();
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
        // Gone again, and nobody comes back within the window: the playlist ends.
        o.packaged.pause();
        o.packaged.end_if_paused_for(Duration::ZERO);
        assert!(o.is_over() && !o.is_paused());
        let text = o.playlist(Some("source"), false).expect("a playlist");
        assert!(std::str::from_utf8(&text)
            .unwrap()
            .contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn a_shed_rung_leaves_the_master_lists_gaps_reports_no_rate_and_comes_back() {
        let config = hls::PackagerConfig {
            low_latency: true,
            ..hls::PackagerConfig::default()
        };
        let o = StreamOutput::new("s".parse().unwrap(), config, 2, DropCounter::default());
        o.packaged.on_rung_ready(source_rung());
        o.packaged.on_rung_ready(RungInfo {
            index: 1,
            name: "240p".into(),
            passthrough: false,
            video_kbps: Some(400),
            ..source_rung()
        });
        let now = SystemTime::now();
        for rung in 0..2 {
            o.packaged
                .on_chunk(rung, chunk(ChunkKind::Init, 0, 0), now, &[]);
            o.packaged
                .on_chunk(rung, chunk(ChunkKind::SegmentStart, 0, 1000), now, &[]);
            o.packaged
                .on_chunk(rung, chunk(ChunkKind::Continuation, 1000, 1000), now, &[]);
        }
        // Two rates a second apart, as chunks would leave them.
        o.packaged.with_rates(|rates| {
            for m in rates {
                let t0 = Instant::now() - Duration::from_secs(1);
                *m = RateMeter::new(Duration::from_millis(334));
                m.record(t0, MediaTime::ZERO);
                m.record(Instant::now(), MediaTime::from_millis(1000));
            }
        });
        let factors = |o: &StreamOutput| -> Vec<usize> {
            (o.status().rungs.iter().enumerate())
                .filter(|(_, r)| r.realtime_factor.is_some())
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(factors(&o), [0, 1]);
        assert_eq!(
            o.packaged
                .set_shed(1, Some(crate::overload::ShedReason::BehindRealtime))
                .as_deref(),
            Some("240p")
        );
        let master = o.playlist(None, false).unwrap();
        assert!(!std::str::from_utf8(&master).unwrap().contains("240p/"));
        o.packaged.on_gap(
            1,
            MediaTime::from_millis(2000),
            MediaTime::from_millis(2000),
            now,
        );
        let media = o.playlist(Some("240p"), false).unwrap();
        assert!(std::str::from_utf8(&media)
            .unwrap()
            .contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg-1.m4s"));
        let rungs = o.status().rungs;
        assert_eq!((rungs[0].name.as_str(), rungs[0].shed), ("source", None));
        assert_eq!(
            rungs[1].shed.map(|s| s.reason),
            Some(crate::overload::ShedReason::BehindRealtime)
        );
        assert_eq!(factors(&o), [0], "no rate for a shed rung");
        o.packaged.clear_shed();
        assert!(o.status().rungs.iter().all(|r| r.shed.is_none()));
        let master = o.playlist(None, false).unwrap();
        assert!(std::str::from_utf8(&master).unwrap().contains("240p/"));
    }

    #[test]
    fn an_output_that_never_packaged_ends_instead_of_pausing() {
        let config = hls::PackagerConfig::default();
        let o = StreamOutput::new("s".parse().unwrap(), config, 1, DropCounter::default());
        o.packaged.pause();
        assert!(!o.is_paused());
        assert!(o.is_over());
    }

    #[test]
    fn playlists_render_once_per_change() {
        let o = live_output(true);
        let now = SystemTime::now();
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 500), now, &[]);
        let a = o.playlist(Some("source"), false).expect("a playlist");
        let b = o.playlist(Some("source"), false).expect("a playlist");
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second request is served the cached text"
        );
        let master = o.playlist(None, false).expect("the master playlist");
        assert!(std::str::from_utf8(&master)
            .unwrap()
            .contains("#EXT-X-STREAM-INF"));
        assert!(o.playlist(Some("nope"), false).is_none());

        o.packaged
            .on_chunk(0, chunk(ChunkKind::Continuation, 500, 500), now, &[]);
        let c = o.playlist(Some("source"), false).expect("a playlist");
        assert_ne!(a, c, "a new part renders a new playlist");
        assert!(std::str::from_utf8(&c).unwrap().contains("part-"), "{c:?}");
        o.packaged.end();
        let ended = o.playlist(Some("source"), false).expect("a playlist");
        assert!(std::str::from_utf8(&ended)
            .unwrap()
            .contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn a_cached_playlist_is_never_older_than_the_state_a_request_saw() {
        // A blocking request checks the packager, then asks for the (cached) playlist: the
        // playlist must list everything the check saw, while parts keep coming.
        let o = live_output(true);
        let now = SystemTime::now();
        o.packaged
            .on_chunk(0, chunk(ChunkKind::SegmentStart, 0, 100), now, &[]);
        // The writer starts with the reader, so that a busy machine does not let it finish
        // before the first check (CI once read no check at all).
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writer = {
            let o = o.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 1..400i64 {
                    let kind = if i % 20 == 0 {
                        ChunkKind::SegmentStart
                    } else {
                        ChunkKind::Continuation
                    };
                    o.packaged.on_chunk(0, chunk(kind, i * 100, 100), now, &[]);
                }
            })
        };
        // (msn, index) of the newest listed part.
        let last_part = |text: &str| {
            let line = text.lines().rfind(|l| l.starts_with("#EXT-X-PART:"))?;
            let name = line.split("URI=\"part-").nth(1)?.split(".m4s").next()?;
            let (msn, index) = name.split_once('.')?;
            Some((msn.parse::<u64>().ok()?, index.parse::<u32>().ok()?))
        };
        let mut checked = 0;
        start.wait();
        // Checks while parts come, and at least once (after the last part, if the writer was
        // that quick).
        let deadline = Instant::now() + Duration::from_secs(10);
        while (!writer.is_finished() || checked == 0) && Instant::now() < deadline {
            let seen = o
                .with_packager(|p| p.media_playlist("source", false).ok())
                .flatten()
                .and_then(|t| last_part(&t));
            let served = o.playlist(Some("source"), false).expect("a playlist");
            let served = std::str::from_utf8(&served).expect("utf-8");
            if let Some(seen) = seen {
                assert!(
                    last_part(served) >= Some(seen),
                    "saw part {seen:?} but was served:\n{served}"
                );
                checked += 1;
            }
        }
        writer.join().expect("writer");
        assert!(checked > 0);
    }

    #[test]
    fn frames_count_as_published_when_their_part_or_segment_is_listed() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let now = SystemTime::now();
        // LL-HLS: a part is listed as it comes.
        let ll = live_output(true);
        let listed = ll
            .packaged
            .on_chunk(
                0,
                chunk(ChunkKind::SegmentStart, 0, 500),
                now,
                &[at(0), at(33)],
            )
            .expect("listed");
        assert!(listed.part);
        assert_eq!(listed.arrivals, [at(0), at(33)]);

        // Plain HLS: each chunk is a whole segment, complete and listed as it comes.
        let plain = live_output(false);
        let first = plain
            .packaged
            .on_chunk(
                0,
                chunk(ChunkKind::SegmentStart, 0, 2000),
                now,
                &[at(0), at(33)],
            )
            .expect("listed");
        assert_eq!(first.completed, Some(MediaTime::from_millis(2000)));
        assert_eq!(first.arrivals, [at(0), at(33)]);
        assert!(plain.packaged.end().is_empty(), "nothing was left open");
    }
}
