//! The HLS routes against a made-up [`Source`]: how each answer becomes a response, what reaches
//! the source, and the requests held meanwhile. Nothing here links the transcoder or GStreamer
//! (`scripts/check-layers.py` checks that playback cannot reach them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request as HttpRequest, StatusCode};
use axum::Router;
use bytes::Bytes;
use hls::{Answer, Block, Budget, Cache, Reply, Request, Resource, Source, Subject};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use tower::ServiceExt;

use crate::{routes, HeldKind, Playback};

/// Answers each stream with its fixed answer, or holds the stream `held` until the test sends
/// its answer; records every request.
#[derive(Debug, Default)]
struct Fake {
    answers: Mutex<HashMap<String, Answer>>,
    held: Mutex<Option<oneshot::Receiver<Answer>>>,
    asked: Mutex<Vec<(String, Request, Budget)>>,
}

impl Source for Fake {
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply {
        self.asked
            .lock()
            .unwrap()
            .push((stream.to_owned(), request, budget));
        if stream == "held" {
            let rx = self.held.lock().unwrap().take().expect("one held request");
            return Reply::Held(Box::pin(async move { rx.await.unwrap_or(Answer::Gone) }));
        }
        Reply::Now(
            self.answers
                .lock()
                .unwrap()
                .get(stream)
                .cloned()
                .unwrap_or(Answer::NotLive),
        )
    }

    fn live_streams(&self) -> Vec<String> {
        let mut names: Vec<String> = self.answers.lock().unwrap().keys().cloned().collect();
        names.push("unconfigured".into());
        names
    }
}

fn app(fake: &Arc<Fake>) -> (Router, Arc<Playback>) {
    let playback = Playback::new(
        fake.clone(),
        ["s", "held", "other"],
        Duration::from_secs(2),
        "/nonexistent",
    );
    (routes(playback.clone()), playback)
}

struct Got {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Got {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn get(app: &Router, uri: &str) -> Got {
    let res = app
        .clone()
        .oneshot(HttpRequest::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn each_answer_becomes_its_status_and_headers() {
    let text = Bytes::from_static(b"#EXTM3U\n");
    let bytes = Bytes::from_static(b"moof");
    /// (answer, status, Content-Type, Cache-Control, Retry-After, body)
    type Case = (
        Answer,
        u16,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Answer::Playlist {
                text: text.clone(),
                cache: Cache::Reload,
            },
            200,
            "application/vnd.apple.mpegurl",
            Some("no-cache"),
            None,
            "#EXTM3U\n",
        ),
        (
            Answer::Playlist {
                text: text.clone(),
                cache: Cache::Blocking,
            },
            200,
            "application/vnd.apple.mpegurl",
            Some("public, max-age=6"),
            None,
            "#EXTM3U\n",
        ),
        (
            Answer::Body {
                bytes: bytes.clone(),
                init: true,
            },
            200,
            "video/mp4",
            Some("no-cache"),
            None,
            "moof",
        ),
        (
            Answer::Body {
                bytes: bytes.clone(),
                init: false,
            },
            200,
            "video/iso.segment",
            Some("public, max-age=31536000, immutable"),
            None,
            "moof",
        ),
        (
            Answer::NotLive,
            404,
            "application/json",
            Some("no-store"),
            None,
            "stream is not live",
        ),
        (
            Answer::Starting,
            503,
            "application/json",
            Some("no-store"),
            Some("1"),
            "stream is starting; retry shortly",
        ),
        (
            Answer::NoSuchRendition,
            404,
            "application/json",
            Some("no-store"),
            None,
            "no such rendition",
        ),
        (
            Answer::Gone,
            404,
            "application/json",
            Some("no-store"),
            None,
            "not found",
        ),
        (
            Answer::TooFarAhead(Subject::Playlist),
            400,
            "application/json",
            Some("no-store"),
            None,
            "_HLS_msn is more than two segments ahead",
        ),
        (
            Answer::TooFarAhead(Subject::Media),
            400,
            "application/json",
            Some("no-store"),
            None,
            "more than two segments ahead",
        ),
        (
            Answer::NotInTime(Subject::Playlist),
            503,
            "application/json",
            Some("no-store"),
            None,
            "the requested part did not appear in time",
        ),
        (
            Answer::NotInTime(Subject::Media),
            503,
            "application/json",
            Some("no-store"),
            None,
            "not available in time",
        ),
        (
            Answer::BadRequest,
            400,
            "application/json",
            Some("no-store"),
            None,
            "_HLS_part requires _HLS_msn",
        ),
        (
            Answer::Unreachable,
            503,
            "application/json",
            Some("no-store"),
            Some("1"),
            "the stream's server cannot be reached; retry shortly",
        ),
    ];
    for (answer, status, content_type, cache, retry, body) in cases {
        let fake = Arc::new(Fake::default());
        fake.answers
            .lock()
            .unwrap()
            .insert("s".into(), answer.clone());
        let (app, _) = app(&fake);
        for uri in ["/live/s/index.m3u8", "/live/s/a/seg-1.m4s"] {
            let got = get(&app, uri).await;
            let what = format!("{answer:?} at {uri}");
            assert_eq!(got.status.as_u16(), status, "{what}");
            assert_eq!(
                got.header(header::CONTENT_TYPE),
                Some(content_type),
                "{what}"
            );
            assert_eq!(got.header(header::CACHE_CONTROL), cache, "{what}");
            assert_eq!(got.header(header::RETRY_AFTER), retry, "{what}");
            let text = String::from_utf8_lossy(&got.body);
            assert!(text.contains(body), "{what}: {text}");
        }
    }
}

#[tokio::test]
async fn requests_reach_the_source_parsed_with_their_budget() {
    let fake = Arc::new(Fake::default());
    fake.answers
        .lock()
        .unwrap()
        .insert("s".into(), Answer::Gone);
    let (app, _) = app(&fake);
    for uri in [
        "/live/s/index.m3u8?_HLS_msn=9",
        "/live/s/index.m3u8",
        "/live/s/a/index.m3u8?_HLS_msn=3&_HLS_part=1&_HLS_skip=YES",
        "/live/s/a/index.m3u8?_HLS_skip=v2",
        "/live/s/a/index.m3u8?_HLS_part=1",
        "/live/s/a/part-4.2.m4s?_HLS_msn=1",
        "/live/s/a/init-2.mp4",
    ] {
        get(&app, uri).await;
    }
    // A path that is no resource never reaches the source.
    assert_eq!(
        get(&app, "/live/s/a/../x.m4s").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/live/s/a/seg-01.m4s").await.status,
        StatusCode::NOT_FOUND
    );
    let playlist = |skip, block| Request::Playlist {
        rung: "a".into(),
        skip,
        block,
    };
    let want = [
        Request::Master,
        Request::Master,
        playlist(
            true,
            Block::At {
                msn: 3,
                part: Some(1),
            },
        ),
        playlist(true, Block::No),
        playlist(false, Block::PartWithoutMsn),
        Request::Media(Resource::Part("a".into(), 4, 2)),
        Request::Media(Resource::Init("a".into(), 2)),
    ];
    let asked = fake.asked.lock().unwrap();
    let requests: Vec<&Request> = asked.iter().map(|(_, r, _)| r).collect();
    assert_eq!(requests, want.iter().collect::<Vec<_>>());
    // Two-second segments: a first playlist waits 4 segments and 2 s, a blocking request 3.
    let budget = Budget {
        start: Duration::from_secs(10),
        blocking: Duration::from_secs(6),
    };
    assert!(
        asked.iter().all(|(s, _, b)| s == "s" && *b == budget),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_held_request_is_counted_until_it_is_answered() {
    let fake = Arc::new(Fake::default());
    let (tx, rx) = oneshot::channel();
    *fake.held.lock().unwrap() = Some(rx);
    let (app, playback) = app(&fake);
    let request = tokio::spawn({
        let app = app.clone();
        async move { get(&app, "/live/held/a/index.m3u8?_HLS_msn=5&session=x").await }
    });
    let held = playback.held().clone();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while held.get(HeldKind::Playlist) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the request was never counted as held");
    assert_eq!(held.get(HeldKind::Part), 0);
    assert!(!request.is_finished());
    tx.send(Answer::Playlist {
        text: Bytes::from_static(b"#EXTM3U\n"),
        cache: Cache::Blocking,
    })
    .unwrap();
    let got = request.await.unwrap();
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header(header::CACHE_CONTROL), Some("public, max-age=6"));
    assert_eq!(held.get(HeldKind::Playlist), 0, "counted after the answer");
}

#[tokio::test]
async fn viewers_are_counted_only_for_streams_that_are_there() {
    let fake = Arc::new(Fake::default());
    fake.answers
        .lock()
        .unwrap()
        .insert("s".into(), Answer::Starting);
    let (app, playback) = app(&fake);
    let now = std::time::Instant::now();
    get(&app, "/live/other/index.m3u8?session=v1").await;
    assert_eq!(
        playback.viewers().count("other", now),
        0,
        "not live: no viewer"
    );
    get(&app, "/live/s/index.m3u8?session=v1").await;
    assert_eq!(playback.viewers().count("s", now), 1);
}

#[tokio::test]
async fn the_public_list_names_configured_live_streams_only() {
    let fake = Arc::new(Fake::default());
    fake.answers
        .lock()
        .unwrap()
        .insert("s".into(), Answer::Starting);
    let (app, _) = app(&fake);
    let got = get(&app, "/streams.json").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body[..], br#"{"streams":[{"name":"s"}]}"#);
}
