//! The read seam between pods (cluster mode): a [`Request`] as the path and query an edge pod
//! asks the stream's owner for, and an [`Answer`] as the owner sends it back, its kind in one
//! header ([`ANSWER_HEADER`]) and its bytes as the body. The edge turns it back into the very
//! answer the owner's source gave, so its own playback maps it to the same status, headers
//! and body as the owner would.

use bytes::Bytes;

use crate::resource::Resource;
use crate::source::{Answer, Block, Cache, Request, Subject};

/// The response header that carries an answer's kind.
pub const ANSWER_HEADER: &str = "x-ferrocast-answer";

impl Request {
    /// The path tail and query that ask for this request (`720p/index.m3u8?_HLS_msn=3&_HLS_part=1`);
    /// [`Resource::parse`] and [`Request::new`] read them back.
    pub fn to_path_and_query(&self) -> String {
        match self {
            Request::Master => Resource::Master.to_string(),
            Request::Media(r) => r.to_string(),
            Request::Playlist { rung, skip, block } => {
                let mut query = Vec::new();
                match block {
                    Block::No => {}
                    Block::At { msn, part } => {
                        query.push(format!("_HLS_msn={msn}"));
                        if let Some(p) = part {
                            query.push(format!("_HLS_part={p}"));
                        }
                    }
                    // Passed on as it came, for the owner to refuse.
                    Block::PartWithoutMsn => query.push("_HLS_part=0".to_owned()),
                }
                if *skip {
                    query.push("_HLS_skip=YES".to_owned());
                }
                let path = Resource::Media(rung.clone()).to_string();
                match query.is_empty() {
                    true => path,
                    false => format!("{path}?{}", query.join("&")),
                }
            }
        }
    }
}

impl Answer {
    /// Its kind, as [`ANSWER_HEADER`] carries it.
    pub fn wire_kind(&self) -> &'static str {
        match self {
            Answer::Playlist {
                cache: Cache::Reload,
                ..
            } => "playlist",
            Answer::Playlist {
                cache: Cache::Blocking,
                ..
            } => "playlist-blocking",
            Answer::Body { init: true, .. } => "init",
            Answer::Body { init: false, .. } => "media",
            Answer::NotLive => "not-live",
            Answer::Starting => "starting",
            Answer::NoSuchRendition => "no-such-rendition",
            Answer::Gone => "gone",
            Answer::TooFarAhead(Subject::Playlist) => "too-far-ahead-playlist",
            Answer::TooFarAhead(Subject::Media) => "too-far-ahead-media",
            Answer::NotInTime(Subject::Playlist) => "not-in-time-playlist",
            Answer::NotInTime(Subject::Media) => "not-in-time-media",
            Answer::BadRequest => "bad-request",
            Answer::Unreachable => "unreachable",
        }
    }

    /// Its bytes: the playlist's text or the media; empty for the others.
    pub fn wire_body(&self) -> Bytes {
        match self {
            Answer::Playlist { text, .. } => text.clone(),
            Answer::Body { bytes, .. } => bytes.clone(),
            _ => Bytes::new(),
        }
    }

    /// The answer of kind `kind` with `body`; `None` for a kind this version does not know.
    pub fn from_wire(kind: &str, body: Bytes) -> Option<Answer> {
        Some(match kind {
            "playlist" => Answer::Playlist {
                text: body,
                cache: Cache::Reload,
            },
            "playlist-blocking" => Answer::Playlist {
                text: body,
                cache: Cache::Blocking,
            },
            "init" => Answer::Body {
                bytes: body,
                init: true,
            },
            "media" => Answer::Body {
                bytes: body,
                init: false,
            },
            "not-live" => Answer::NotLive,
            "starting" => Answer::Starting,
            "no-such-rendition" => Answer::NoSuchRendition,
            "gone" => Answer::Gone,
            "too-far-ahead-playlist" => Answer::TooFarAhead(Subject::Playlist),
            "too-far-ahead-media" => Answer::TooFarAhead(Subject::Media),
            "not-in-time-playlist" => Answer::NotInTime(Subject::Playlist),
            "not-in-time-media" => Answer::NotInTime(Subject::Media),
            "bad-request" => Answer::BadRequest,
            "unreachable" => Answer::Unreachable,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_reads_back_from_its_path_and_query() {
        let requests = [
            Request::Master,
            Request::Playlist {
                rung: "720p".into(),
                skip: false,
                block: Block::No,
            },
            Request::Playlist {
                rung: "source".into(),
                skip: true,
                block: Block::At {
                    msn: 12,
                    part: Some(3),
                },
            },
            Request::Playlist {
                rung: "240p".into(),
                skip: false,
                block: Block::At { msn: 7, part: None },
            },
            Request::Playlist {
                rung: "240p".into(),
                skip: false,
                block: Block::PartWithoutMsn,
            },
            Request::Media(Resource::Init("720p".into(), 0)),
            Request::Media(Resource::Init("720p".into(), 2)),
            Request::Media(Resource::Segment("720p".into(), 41)),
            Request::Media(Resource::Part("720p".into(), 41, 5)),
        ];
        for request in requests {
            let wire = request.to_path_and_query();
            let (path, query) = wire.split_once('?').unwrap_or((&wire, ""));
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            };
            let back = Request::new(
                Resource::parse(path).unwrap_or_else(|_| panic!("{wire}")),
                param("_HLS_msn").map(|v| v.parse().unwrap()),
                param("_HLS_part").map(|v| v.parse().unwrap()),
                param("_HLS_skip") == Some("YES"),
            );
            assert_eq!(back, request, "{wire}");
        }
    }

    #[test]
    fn every_answer_reads_back_from_its_kind_and_body() {
        let text = Bytes::from_static(b"#EXTM3U\n");
        let answers = [
            Answer::Playlist {
                text: text.clone(),
                cache: Cache::Reload,
            },
            Answer::Playlist {
                text: text.clone(),
                cache: Cache::Blocking,
            },
            Answer::Body {
                bytes: text.clone(),
                init: true,
            },
            Answer::Body {
                bytes: text,
                init: false,
            },
            Answer::NotLive,
            Answer::Starting,
            Answer::NoSuchRendition,
            Answer::Gone,
            Answer::TooFarAhead(Subject::Playlist),
            Answer::TooFarAhead(Subject::Media),
            Answer::NotInTime(Subject::Playlist),
            Answer::NotInTime(Subject::Media),
            Answer::BadRequest,
            Answer::Unreachable,
        ];
        let mut kinds = std::collections::HashSet::new();
        for answer in answers {
            assert!(kinds.insert(answer.wire_kind()), "{answer:?}");
            let back = Answer::from_wire(answer.wire_kind(), answer.wire_body());
            assert_eq!(back.as_ref(), Some(&answer));
        }
        assert_eq!(Answer::from_wire("teapot", Bytes::new()), None);
    }
}
