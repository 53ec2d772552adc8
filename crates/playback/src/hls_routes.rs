//! HLS over HTTP: master and media playlists, init segments, segments and parts, read from the
//! [`hls::Source`] (seam 4): this maps requests to it and its answers to statuses and headers,
//! and counts the viewers and the requests it holds.
//!
//! Every wait is bounded by the [`hls::Budget`] given with the request: a playlist or resource
//! that does not appear in time is a 503/404, and an ended stream answers at once.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hls::{Answer, Cache, Reply, Request, Resource, Subject};
use serde::Deserialize;

use std::sync::Arc;

use crate::held::HeldKind;
use crate::response::error;
use crate::state::Playback;

/// The cookie the player page sets to tell its requests apart from other viewers'.
pub const SESSION_COOKIE: &str = "ferrocast_session";

/// Content type of playlists.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Content type of init segments.
pub const INIT_CONTENT_TYPE: &str = "video/mp4";
/// Content type of media segments and parts.
pub const SEGMENT_CONTENT_TYPE: &str = "video/iso.segment";

/// Query parameters of LL-HLS playlist requests.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HlsQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u32>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
    /// A playback session chosen by the player, for the viewer count.
    session: Option<String>,
}

/// Counts the request's playback session (query parameter, else cookie) as a viewer of `name`.
fn note_viewer(state: &Playback, name: &str, query: &HlsQuery, headers: &HeaderMap) {
    let cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == SESSION_COOKIE)
            .map(|(_, v)| v)
    };
    if let Some(session) = query.session.as_deref().or_else(cookie) {
        state.viewers.seen(name, session, std::time::Instant::now());
    }
}

/// `GET /live/{name}/index.m3u8`.
pub(crate) async fn master(
    State(state): State<Arc<Playback>>,
    Path(name): Path<String>,
    Query(query): Query<HlsQuery>,
    headers: HeaderMap,
) -> Response {
    answer(&state, &name, Request::Master, &query, &headers).await
}

/// `GET /live/{name}/{*path}`: media playlists and media.
pub(crate) async fn resource(
    State(state): State<Arc<Playback>>,
    Path((name, path)): Path<(String, String)>,
    Query(query): Query<HlsQuery>,
    headers: HeaderMap,
) -> Response {
    let Ok(resource) = Resource::parse(&path) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let skip = matches!(query.skip.as_deref(), Some("YES") | Some("v2"));
    let request = Request::new(resource, query.msn, query.part, skip);
    answer(&state, &name, request, &query, &headers).await
}

/// Asks the source, counts the viewer of a stream that is there, and holds the request (counted
/// as held) while the source makes it wait.
async fn answer(
    state: &Playback,
    name: &str,
    request: Request,
    query: &HlsQuery,
    headers: &HeaderMap,
) -> Response {
    let kind = if request.is_playlist() {
        HeldKind::Playlist
    } else {
        HeldKind::Part
    };
    let answer = match state.source.answer(name, request, state.budget()) {
        Reply::Now(Answer::NotLive) => return not_live(),
        Reply::Now(answer) => {
            note_viewer(state, name, query, headers);
            answer
        }
        Reply::Held(held) => {
            note_viewer(state, name, query, headers);
            let _held = state.held.hold(kind);
            held.await
        }
    };
    respond(answer)
}

/// An answer as a response: its status, headers and body.
pub(crate) fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Playlist { text, cache } => playlist(
            text,
            match cache {
                Cache::Reload => "no-cache",
                // The URL names one playlist state, so caches may keep it as long as the
                // segment lives.
                Cache::Blocking => "public, max-age=6",
            },
        ),
        Answer::Body { bytes, init } => {
            // Init segments can change on a reconnect; media bytes under a name never do.
            let (content_type, cache) = if init {
                (INIT_CONTENT_TYPE, "no-cache")
            } else {
                (SEGMENT_CONTENT_TYPE, "public, max-age=31536000, immutable")
            };
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                bytes,
            )
                .into_response()
        }
        Answer::NotLive => not_live(),
        Answer::Starting => starting(),
        Answer::NoSuchRendition => error(StatusCode::NOT_FOUND, "no such rendition"),
        Answer::Gone => error(StatusCode::NOT_FOUND, "not found"),
        Answer::TooFarAhead(Subject::Playlist) => error(
            StatusCode::BAD_REQUEST,
            "_HLS_msn is more than two segments ahead",
        ),
        Answer::TooFarAhead(Subject::Media) => {
            error(StatusCode::BAD_REQUEST, "more than two segments ahead")
        }
        Answer::NotInTime(Subject::Playlist) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the requested part did not appear in time",
        ),
        Answer::NotInTime(Subject::Media) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "not available in time")
        }
        Answer::BadRequest => error(StatusCode::BAD_REQUEST, "_HLS_part requires _HLS_msn"),
        Answer::Unreachable => retry_soon("the stream's server cannot be reached; retry shortly"),
    }
}

fn playlist(text: bytes::Bytes, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        text,
    )
        .into_response()
}

fn not_live() -> Response {
    error(StatusCode::NOT_FOUND, "stream is not live")
}

fn starting() -> Response {
    retry_soon("stream is starting; retry shortly")
}

/// 503 with `Retry-After: 1`.
fn retry_soon(message: &'static str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// What an owner pod answers edge pods with (cluster mode): the local streams only.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) source: Arc<dyn hls::Source>,
    pub(crate) budget: hls::Budget,
}

/// `GET /cluster/v1/live/{name}/index.m3u8` on the admin listener.
pub(crate) async fn peer_master(State(peer): State<Peer>, Path(name): Path<String>) -> Response {
    peer_answer(&peer, &name, Request::Master).await
}

/// `GET /cluster/v1/live/{name}/{*path}` on the admin listener.
pub(crate) async fn peer_resource(
    State(peer): State<Peer>,
    Path((name, path)): Path<(String, String)>,
    Query(query): Query<HlsQuery>,
) -> Response {
    let Ok(resource) = Resource::parse(&path) else {
        return peer_response(Answer::Gone);
    };
    let skip = matches!(query.skip.as_deref(), Some("YES") | Some("v2"));
    peer_answer(
        &peer,
        &name,
        Request::new(resource, query.msn, query.part, skip),
    )
    .await
}

/// The answer, held as long as the local source holds it (within the owner's budget), sent
/// back typed: the edge turns it into the same response as here ([`hls::ANSWER_HEADER`]).
async fn peer_answer(peer: &Peer, name: &str, request: Request) -> Response {
    let answer = match peer.source.answer(name, request, peer.budget) {
        Reply::Now(answer) => answer,
        Reply::Held(held) => held.await,
    };
    peer_response(answer)
}

fn peer_response(answer: Answer) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(hls::ANSWER_HEADER),
                HeaderValue::from_static(answer.wire_kind()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        answer.wire_body(),
    )
        .into_response()
}
