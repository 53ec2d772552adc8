//! HLS over HTTP: master and media playlists, init segments, segments and parts, with blocking
//! waits on the stream's `watch` cursor (never a poll loop or a thread per request).
//!
//! Every wait is bounded: a playlist or resource that does not appear in time is a 503/404, and
//! an ended stream answers at once.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hls::{Blocking, Resource, ResourceStatus};
use serde::Deserialize;

use std::sync::Arc;

use transcode::StreamOutput;

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
    let Some(output) = state.outputs.get(&name) else {
        return not_live();
    };
    note_viewer(&state, &name, &query, &headers);
    master_playlist(&state, &output).await
}

async fn master_playlist(state: &Playback, output: &StreamOutput) -> Response {
    let wait = start_timeout(state);
    let rendered = wait_for(state, output, HeldKind::Playlist, wait, |o| {
        let ready = o.with_packager(|p| {
            p.variants().all(|v| p.is_ready(&v.name).unwrap_or(false)) || p.ended_at().is_some()
        });
        ready?.then(|| o.playlist(None, false))?
    })
    .await;
    match rendered {
        Some(text) => playlist(text, "no-cache"),
        None => starting(),
    }
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
    let Some(output) = state.outputs.get(&name) else {
        return not_live();
    };
    note_viewer(&state, &name, &query, &headers);
    match resource {
        Resource::Master => master_playlist(&state, &output).await,
        Resource::Media(rung) => media_playlist(&state, &output, &rung, query).await,
        other => media(&state, &output, other).await,
    }
}

async fn media_playlist(
    state: &Playback,
    output: &StreamOutput,
    rung: &str,
    q: HlsQuery,
) -> Response {
    let skip = matches!(q.skip.as_deref(), Some("YES") | Some("v2"));
    let Some(msn) = q.msn else {
        if q.part.is_some() {
            return error(StatusCode::BAD_REQUEST, "_HLS_part requires _HLS_msn");
        }
        // A plain reload: serve once the rung has a segment.
        let wait = start_timeout(state);
        let rendered = wait_for(state, output, HeldKind::Playlist, wait, |o| {
            let ready = o
                .with_packager(|p| Some(p.is_ready(rung).ok()? || p.ended_at().is_some()))
                .flatten();
            ready?.then(|| o.playlist(Some(rung), skip))?
        })
        .await;
        let known = output
            .with_packager(|p| p.variants().any(|v| v.name == rung))
            .unwrap_or(true);
        return match rendered {
            Some(text) => playlist(text, "no-cache"),
            None if !known => error(StatusCode::NOT_FOUND, "no such rendition"),
            None => starting(),
        };
    };
    // Blocking reload (LL-HLS): hold until the requested segment/part exists.
    let timeout = blocking_timeout(state);
    let mut too_far = false;
    let mut unknown = false;
    let rendered = wait_for(state, output, HeldKind::Playlist, timeout, |o| {
        match o.with_packager(|p| p.playlist_request(rung, msn, q.part))? {
            Ok(Blocking::Ready) => o.playlist(Some(rung), skip),
            Ok(Blocking::Wait) => None,
            Ok(Blocking::TooFarAhead) => {
                too_far = true;
                Some(bytes::Bytes::new())
            }
            Err(_) => {
                unknown = true;
                Some(bytes::Bytes::new())
            }
        }
    })
    .await;
    match rendered {
        _ if unknown => error(StatusCode::NOT_FOUND, "no such rendition"),
        _ if too_far => error(
            StatusCode::BAD_REQUEST,
            "_HLS_msn is more than two segments ahead",
        ),
        // The URL names one playlist state, so caches may keep it as long as the segment lives.
        Some(text) => playlist(text, "public, max-age=6"),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the requested part did not appear in time",
        ),
    }
}

async fn media(state: &Playback, output: &StreamOutput, resource: Resource) -> Response {
    let timeout = blocking_timeout(state);
    let mut status = ResourceStatus::Pending;
    let bytes = wait_for(state, output, HeldKind::Part, timeout, |o| {
        o.with_packager(|p| match p.resource_status(&resource) {
            Ok(ResourceStatus::Available) => p.fetch(&resource),
            Ok(s) => {
                status = s;
                (s != ResourceStatus::Pending).then(bytes::Bytes::new)
            }
            Err(_) => {
                status = ResourceStatus::Gone;
                Some(bytes::Bytes::new())
            }
        })
        .flatten()
    })
    .await;
    match (bytes, status) {
        (_, ResourceStatus::TooFarAhead) => {
            error(StatusCode::BAD_REQUEST, "more than two segments ahead")
        }
        (_, ResourceStatus::Gone) => error(StatusCode::NOT_FOUND, "not found"),
        (Some(b), _) => {
            let content_type = match resource {
                Resource::Init(..) => INIT_CONTENT_TYPE,
                _ => SEGMENT_CONTENT_TYPE,
            };
            // Init segments can change on a reconnect; media bytes under a name never do.
            let cache = match resource {
                Resource::Init(..) => "no-cache",
                _ => "public, max-age=31536000, immutable",
            };
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                b,
            )
                .into_response()
        }
        (None, _) => error(StatusCode::SERVICE_UNAVAILABLE, "not available in time"),
    }
}

/// Calls `check` now and after every change of the stream, until it returns `Some`, the stream
/// is over (one last check), or `timeout` passes. A request that has to wait counts as held
/// (`kind`) until it is answered.
async fn wait_for<T>(
    state: &Playback,
    output: &StreamOutput,
    kind: HeldKind,
    timeout: Duration,
    mut check: impl FnMut(&StreamOutput) -> Option<T>,
) -> Option<T> {
    let mut rx = output.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut held = None;
    loop {
        rx.borrow_and_update();
        if let Some(v) = check(output) {
            return Some(v);
        }
        if output.is_over() {
            return check(output);
        }
        held.get_or_insert_with(|| state.held.hold(kind));
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return None,
        }
    }
}

/// How long a first playlist request waits for the ladder to produce its first segment.
fn start_timeout(state: &Playback) -> Duration {
    state.segment_duration * 4 + Duration::from_secs(2)
}

/// The spec's bound for blocking requests: three target durations.
fn blocking_timeout(state: &Playback) -> Duration {
    state.segment_duration * 3
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
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stream is starting; retry shortly",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}
