//! The read seam of playback: a parsed [`Request`], a typed [`Answer`], and the [`Source`] trait
//! that answers one, now or as a held future within a time budget.
//!
//! A local live output (`transcode`) is one source; a stream owned by another pod, a recording
//! and a rewriting layer (signed URLs) are others, and a [`Chain`] tries them in turn. The HTTP
//! layer (`playback`) maps an [`Answer`] to a status and headers and knows no source.
//!
//! What a [`Packager`] can answer is decided here, by a pure function ([`Request::decide`]); a
//! source only supplies the packager, renders playlists through its cache, and waits.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::packager::{Blocking, Packager, ResourceStatus};
use crate::resource::Resource;

/// One playback request for a stream, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The master playlist (`index.m3u8`).
    Master,
    /// A rung's media playlist (`RUNG/index.m3u8`), as a delta update with `skip`.
    Playlist {
        /// The rung.
        rung: String,
        /// `_HLS_skip=YES` (or `v2`): a delta update.
        skip: bool,
        /// A plain reload, or a blocking one.
        block: Block,
    },
    /// An init segment, a segment or a part.
    Media(Resource),
}

/// The blocking part of a media playlist request (LL-HLS, RFC 8216bis 6.2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// A plain reload: serve once the rung has a segment.
    No,
    /// `_HLS_msn=msn[&_HLS_part=part]`: hold until that segment or part exists.
    At {
        /// `_HLS_msn`.
        msn: u64,
        /// `_HLS_part`.
        part: Option<u32>,
    },
    /// `_HLS_part` without `_HLS_msn`: a bad request.
    PartWithoutMsn,
}

impl Request {
    /// The request for `resource` (a parsed path) with the LL-HLS query parameters, which only a
    /// media playlist reads.
    pub fn new(resource: Resource, msn: Option<u64>, part: Option<u32>, skip: bool) -> Request {
        match resource {
            Resource::Master => Request::Master,
            Resource::Media(rung) => Request::Playlist {
                rung,
                skip,
                block: match (msn, part) {
                    (Some(msn), part) => Block::At { msn, part },
                    (None, Some(_)) => Block::PartWithoutMsn,
                    (None, None) => Block::No,
                },
            },
            other => Request::Media(other),
        }
    }

    /// True for the playlists (the held-request gauge counts them apart from media).
    pub fn is_playlist(&self) -> bool {
        !matches!(self, Request::Media(_))
    }

    /// What `packager` (none while the stream's ladder starts) can do for this request now.
    pub fn decide(&self, packager: Option<&Packager>) -> Decision {
        if let Request::Playlist {
            block: Block::PartWithoutMsn,
            ..
        } = self
        {
            return Decision::Answer(Answer::BadRequest);
        }
        let Some(p) = packager else {
            return Decision::Wait;
        };
        let over = p.ended_at().is_some();
        match self {
            Request::Master => {
                let ready = p.variants().all(|v| p.is_ready(&v.name).unwrap_or(false));
                if ready || over {
                    Decision::Render {
                        rung: None,
                        skip: false,
                        cache: Cache::Reload,
                    }
                } else {
                    Decision::Wait
                }
            }
            Request::Playlist {
                block: Block::PartWithoutMsn,
                ..
            } => unreachable!("answered above"),
            Request::Playlist {
                rung,
                skip,
                block: Block::No,
            } => match p.is_ready(rung) {
                Ok(ready) if ready || over => Decision::Render {
                    rung: Some(rung.clone()),
                    skip: *skip,
                    cache: Cache::Reload,
                },
                // An unknown rung waits too: a reconnect may bring a ladder that has it.
                _ => Decision::Wait,
            },
            Request::Playlist {
                rung,
                skip,
                block: Block::At { msn, part },
            } => match p.playlist_request(rung, *msn, *part) {
                Ok(Blocking::Ready) => Decision::Render {
                    rung: Some(rung.clone()),
                    skip: *skip,
                    cache: Cache::Blocking,
                },
                Ok(Blocking::Wait) => Decision::Wait,
                Ok(Blocking::TooFarAhead) => {
                    Decision::Answer(Answer::TooFarAhead(Subject::Playlist))
                }
                Err(_) => Decision::Answer(Answer::NoSuchRendition),
            },
            Request::Media(resource) => match p.resource_status(resource) {
                Ok(ResourceStatus::Available) => match p.fetch(resource) {
                    Some(bytes) => Decision::Answer(Answer::Body {
                        bytes,
                        init: matches!(resource, Resource::Init(..)),
                    }),
                    None => Decision::Wait,
                },
                Ok(ResourceStatus::Pending) => Decision::Wait,
                Ok(ResourceStatus::Gone) | Err(_) => Decision::Answer(Answer::Gone),
                Ok(ResourceStatus::TooFarAhead) => {
                    Decision::Answer(Answer::TooFarAhead(Subject::Media))
                }
            },
        }
    }

    /// The answer when the wait is over (its budget spent, or the stream over) and
    /// [`decide`](Self::decide) still says wait.
    pub fn give_up(&self, packager: Option<&Packager>) -> Answer {
        match self {
            Request::Master => Answer::Starting,
            Request::Playlist {
                block: Block::PartWithoutMsn,
                ..
            } => Answer::BadRequest,
            Request::Playlist {
                rung,
                block: Block::No,
                ..
            } => {
                let unknown = packager.is_some_and(|p| !p.variants().any(|v| v.name == *rung));
                if unknown {
                    Answer::NoSuchRendition
                } else {
                    Answer::Starting
                }
            }
            Request::Playlist { .. } => Answer::NotInTime(Subject::Playlist),
            Request::Media(_) => Answer::NotInTime(Subject::Media),
        }
    }
}

/// What a packager can do for a request now ([`Request::decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This is the answer.
    Answer(Answer),
    /// Render this playlist (the master for `rung: None`) and serve it with `cache`; a source
    /// that cannot render it yet waits.
    Render {
        /// The rung, or the master.
        rung: Option<String>,
        /// A delta update.
        skip: bool,
        /// How long caches may keep it.
        cache: Cache,
    },
    /// Wait for the stream to change, then decide again.
    Wait,
}

/// How long a cache may keep a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// A plain reload: the playlist changes under the same URL (`no-cache`).
    Reload,
    /// A blocking reload: its URL names one playlist state, kept as long as its segment lives.
    Blocking,
}

/// What a 400 or a 503 was about: a playlist or media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A (blocking) media playlist.
    Playlist,
    /// An init segment, a segment or a part.
    Media,
}

/// A source's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A playlist.
    Playlist {
        /// Its text.
        text: Bytes,
        /// How long caches may keep it.
        cache: Cache,
    },
    /// An init segment (`init`), a segment or a part.
    Body {
        /// The bytes.
        bytes: Bytes,
        /// An init segment (it can change under its name on a reconnect; media never does).
        init: bool,
    },
    /// No source has the stream.
    NotLive,
    /// The stream's ladder has not produced what the playlist needs yet.
    Starting,
    /// The rung does not exist.
    NoSuchRendition,
    /// Evicted, or never going to exist.
    Gone,
    /// More than two segments ahead of the newest.
    TooFarAhead(Subject),
    /// What a blocking request waited for did not come within its budget.
    NotInTime(Subject),
    /// `_HLS_part` without `_HLS_msn`.
    BadRequest,
    /// Cluster mode: another pod has the stream, and it cannot be reached now.
    Unreachable,
}

/// How long a request may be held: a first playlist waits for the ladder's first segment
/// (`start`); a blocking reload and a pending part or segment for at most `blocking` (the spec's
/// three target durations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// For the master playlist and plain media playlist reloads.
    pub start: Duration,
    /// For blocking reloads and media.
    pub blocking: Duration,
}

impl Budget {
    /// The budget of `request`.
    pub fn of(&self, request: &Request) -> Duration {
        match request {
            Request::Master
            | Request::Playlist {
                block: Block::No, ..
            } => self.start,
            _ => self.blocking,
        }
    }
}

/// A held answer: resolves within the budget it was given.
pub type Held = Pin<Box<dyn Future<Output = Answer> + Send + 'static>>;

/// A source's reply: the answer now, or a future that holds the request until it has one.
pub enum Reply {
    /// Answered at once.
    Now(Answer),
    /// Held: the caller counts it as held until it resolves.
    Held(Held),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Now(a) => f.debug_tuple("Now").field(a).finish(),
            Reply::Held(_) => f.write_str("Held(..)"),
        }
    }
}

/// Where playback reads streams from.
pub trait Source: Send + Sync + fmt::Debug {
    /// Answers `request` for `stream`, now or held within `budget`. A source without the stream
    /// answers [`Answer::NotLive`] now.
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply;

    /// The names of the streams live now, in no particular order.
    fn live_streams(&self) -> Vec<String>;
}

/// Sources tried in order: the first that has the stream answers.
#[derive(Debug, Default, Clone)]
pub struct Chain {
    sources: Vec<Arc<dyn Source>>,
}

impl Chain {
    /// A chain of `sources`, tried in this order.
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Chain {
        Chain { sources }
    }
}

impl Source for Chain {
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply {
        for source in &self.sources {
            match source.answer(stream, request.clone(), budget) {
                Reply::Now(Answer::NotLive) => continue,
                reply => return reply,
            }
        }
        Reply::Now(Answer::NotLive)
    }

    fn live_streams(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sources.iter().flat_map(|s| s.live_streams()).collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use media::cmaf::{ChunkKind, CmafChunk};
    use media::MediaTime;

    use super::*;
    use crate::{PackagerConfig, Variant};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_714_564_800) + Duration::from_millis(ms)
    }

    fn chunk(kind: ChunkKind, pts_ms: i64) -> CmafChunk {
        CmafChunk {
            kind,
            data: Bytes::from(vec![kind as u8; 10]),
            pts: MediaTime::from_millis(pts_ms),
            duration: MediaTime::from_millis(if kind == ChunkKind::Init { 0 } else { 500 }),
            independent: kind != ChunkKind::Continuation,
        }
    }

    /// Rungs `a` and `b`, low latency, init segments in.
    fn starting() -> Packager {
        let variant = |name: &str| Variant {
            name: name.into(),
            width: 640,
            height: 360,
            frame_rate: Some(30.0),
            video_codec: "avc1.64001f".into(),
            audio_codec: None,
            bitrate_kbps: Some(800),
        };
        let config = PackagerConfig {
            low_latency: true,
            ..PackagerConfig::default()
        };
        let mut p = Packager::in_memory(config, vec![variant("a"), variant("b")]).unwrap();
        for rung in ["a", "b"] {
            p.push(rung, chunk(ChunkKind::Init, 0), at(0)).unwrap();
        }
        p
    }

    /// [`starting`], then per rung: segment 0 complete (two parts), segment 1 open with part 0.
    fn live() -> Packager {
        let mut p = starting();
        for rung in ["a", "b"] {
            for (kind, ms) in [
                (ChunkKind::SegmentStart, 0),
                (ChunkKind::Continuation, 500),
                (ChunkKind::SegmentStart, 1000),
            ] {
                p.push(rung, chunk(kind, ms), at(ms as u64)).unwrap();
            }
        }
        p
    }

    fn playlist(rung: &str, block: Block) -> Request {
        Request::Playlist {
            rung: rung.into(),
            skip: false,
            block,
        }
    }

    fn blocking(rung: &str, msn: u64, part: Option<u32>) -> Request {
        playlist(rung, Block::At { msn, part })
    }

    fn render(rung: Option<&str>, cache: Cache) -> Decision {
        Decision::Render {
            rung: rung.map(str::to_owned),
            skip: false,
            cache,
        }
    }

    fn body(p: &Packager, r: Resource) -> Decision {
        let init = matches!(r, Resource::Init(..));
        Decision::Answer(Answer::Body {
            bytes: p.fetch(&r).expect("stored"),
            init,
        })
    }

    #[test]
    fn what_a_packager_can_do_for_each_request() {
        use Decision::{Answer as Now, Wait};
        let media = |r| Request::Media(r);
        let seg = |msn| Resource::Segment("a".into(), msn);
        let part = |msn, i| Resource::Part("a".into(), msn, i);
        let mut ended = live();
        let (starting, live) = (starting(), live());
        ended.end(at(1500));
        let cases: Vec<(&str, Option<&Packager>, Request, Decision)> = vec![
            // The ladder has no packager yet: everything waits but a bad request.
            ("no packager, master", None, Request::Master, Wait),
            ("no packager, reload", None, playlist("a", Block::No), Wait),
            ("no packager, blocking", None, blocking("a", 0, None), Wait),
            ("no packager, media", None, media(seg(0)), Wait),
            (
                "no packager, part without msn",
                None,
                playlist("a", Block::PartWithoutMsn),
                Now(Answer::BadRequest),
            ),
            // Starting: init segments only.
            ("starting, master", Some(&starting), Request::Master, Wait),
            (
                "starting, reload",
                Some(&starting),
                playlist("a", Block::No),
                Wait,
            ),
            (
                "starting, unknown rung reload",
                Some(&starting),
                playlist("zz", Block::No),
                Wait,
            ),
            (
                "starting, unknown rung blocking",
                Some(&starting),
                blocking("zz", 0, None),
                Now(Answer::NoSuchRendition),
            ),
            (
                "starting, too far ahead",
                Some(&starting),
                blocking("a", 3, None),
                Now(Answer::TooFarAhead(Subject::Playlist)),
            ),
            (
                "starting, first segment",
                Some(&starting),
                blocking("a", 0, None),
                Wait,
            ),
            (
                "starting, init",
                Some(&starting),
                media(Resource::Init("a".into(), 0)),
                body(&starting, Resource::Init("a".into(), 0)),
            ),
            // Live: segment 0 complete, part 0 of segment 1.
            (
                "live, master",
                Some(&live),
                Request::Master,
                render(None, Cache::Reload),
            ),
            (
                "live, reload",
                Some(&live),
                playlist("a", Block::No),
                render(Some("a"), Cache::Reload),
            ),
            (
                "live, delta reload",
                Some(&live),
                Request::Playlist {
                    rung: "b".into(),
                    skip: true,
                    block: Block::No,
                },
                Decision::Render {
                    rung: Some("b".into()),
                    skip: true,
                    cache: Cache::Reload,
                },
            ),
            (
                "live, complete segment",
                Some(&live),
                blocking("a", 0, None),
                render(Some("a"), Cache::Blocking),
            ),
            (
                "live, open segment",
                Some(&live),
                blocking("a", 1, None),
                Wait,
            ),
            (
                "live, part available",
                Some(&live),
                blocking("a", 1, Some(0)),
                render(Some("a"), Cache::Blocking),
            ),
            (
                "live, part pending",
                Some(&live),
                blocking("a", 1, Some(1)),
                Wait,
            ),
            (
                "live, msn too far",
                Some(&live),
                blocking("a", 4, None),
                Now(Answer::TooFarAhead(Subject::Playlist)),
            ),
            (
                "live, part without msn",
                Some(&live),
                playlist("a", Block::PartWithoutMsn),
                Now(Answer::BadRequest),
            ),
            (
                "live, segment",
                Some(&live),
                media(seg(0)),
                body(&live, seg(0)),
            ),
            (
                "live, part",
                Some(&live),
                media(part(1, 0)),
                body(&live, part(1, 0)),
            ),
            ("live, next part", Some(&live), media(part(1, 1)), Wait),
            (
                "live, segment too far",
                Some(&live),
                media(seg(9)),
                Now(Answer::TooFarAhead(Subject::Media)),
            ),
            (
                "live, unknown rung media",
                Some(&live),
                media(Resource::Segment("zz".into(), 0)),
                Now(Answer::Gone),
            ),
            // Ended: playlists are ready, what would have come never will.
            (
                "ended, master",
                Some(&ended),
                Request::Master,
                render(None, Cache::Reload),
            ),
            (
                "ended, blocking",
                Some(&ended),
                blocking("a", 2, None),
                render(Some("a"), Cache::Blocking),
            ),
            (
                "ended, next part",
                Some(&ended),
                media(part(1, 1)),
                Now(Answer::Gone),
            ),
            (
                "ended, next segment",
                Some(&ended),
                media(seg(2)),
                Now(Answer::Gone),
            ),
            (
                "ended, unknown rung reload",
                Some(&ended),
                playlist("zz", Block::No),
                Wait,
            ),
        ];
        for (what, p, request, want) in cases {
            assert_eq!(request.decide(p), want, "{what}");
        }
    }

    #[test]
    fn what_a_request_gets_when_its_wait_is_over() {
        let live = live();
        let cases: Vec<(&str, Option<&Packager>, Request, Answer)> = vec![
            ("master", Some(&live), Request::Master, Answer::Starting),
            (
                "reload, no packager",
                None,
                playlist("zz", Block::No),
                Answer::Starting,
            ),
            (
                "reload, known rung",
                Some(&live),
                playlist("a", Block::No),
                Answer::Starting,
            ),
            (
                "reload, unknown rung",
                Some(&live),
                playlist("zz", Block::No),
                Answer::NoSuchRendition,
            ),
            (
                "blocking",
                Some(&live),
                blocking("a", 2, None),
                Answer::NotInTime(Subject::Playlist),
            ),
            (
                "media",
                None,
                Request::Media(Resource::Part("a".into(), 1, 1)),
                Answer::NotInTime(Subject::Media),
            ),
        ];
        for (what, p, request, want) in cases {
            assert_eq!(request.give_up(p), want, "{what}");
        }
    }

    #[test]
    fn requests_from_paths_and_their_budgets() {
        let budget = Budget {
            start: Duration::from_secs(10),
            blocking: Duration::from_secs(6),
        };
        let media = Resource::Media("a".into());
        let cases = [
            (
                Resource::Master,
                Some(3),
                Some(1),
                true,
                Request::Master,
                budget.start,
            ),
            (
                media.clone(),
                None,
                None,
                true,
                Request::Playlist {
                    rung: "a".into(),
                    skip: true,
                    block: Block::No,
                },
                budget.start,
            ),
            (
                media.clone(),
                Some(3),
                None,
                false,
                blocking("a", 3, None),
                budget.blocking,
            ),
            (
                media.clone(),
                Some(3),
                Some(2),
                false,
                blocking("a", 3, Some(2)),
                budget.blocking,
            ),
            (
                media,
                None,
                Some(2),
                false,
                playlist("a", Block::PartWithoutMsn),
                budget.blocking,
            ),
            (
                Resource::Segment("a".into(), 1),
                Some(3),
                None,
                true,
                Request::Media(Resource::Segment("a".into(), 1)),
                budget.blocking,
            ),
        ];
        for (resource, msn, part, skip, want, wait) in cases {
            let r = Request::new(resource.clone(), msn, part, skip);
            assert_eq!(r, want, "{resource:?}");
            assert_eq!(budget.of(&r), wait, "{resource:?}");
            assert_eq!(r.is_playlist(), !matches!(r, Request::Media(_)));
        }
    }

    /// A source that has `streams` and answers each request with `answer`.
    #[derive(Debug)]
    struct Fixed {
        streams: Vec<&'static str>,
        answer: Answer,
    }

    impl Source for Fixed {
        fn answer(&self, stream: &str, _: Request, _: Budget) -> Reply {
            if self.streams.contains(&stream) {
                Reply::Now(self.answer.clone())
            } else {
                Reply::Now(Answer::NotLive)
            }
        }

        fn live_streams(&self) -> Vec<String> {
            self.streams.iter().map(|s| s.to_string()).collect()
        }
    }

    #[test]
    fn a_chain_asks_each_source_until_one_has_the_stream() {
        let chain = Chain::new(vec![
            Arc::new(Fixed {
                streams: vec!["one", "both"],
                answer: Answer::Starting,
            }),
            Arc::new(Fixed {
                streams: vec!["two", "both"],
                answer: Answer::Gone,
            }),
        ]);
        let budget = Budget {
            start: Duration::ZERO,
            blocking: Duration::ZERO,
        };
        let ask = |stream| match chain.answer(stream, Request::Master, budget) {
            Reply::Now(a) => a,
            Reply::Held(_) => panic!("held"),
        };
        assert_eq!(ask("one"), Answer::Starting);
        assert_eq!(ask("two"), Answer::Gone);
        assert_eq!(ask("both"), Answer::Starting, "the first source wins");
        assert_eq!(ask("none"), Answer::NotLive);
        assert_eq!(chain.live_streams(), ["both", "one", "two"]);
        assert_eq!(Chain::default().live_streams(), Vec::<String>::new());
    }
}
