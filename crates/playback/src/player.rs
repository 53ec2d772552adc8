//! The player page: the stream list, the watch page with hls.js (or native HLS), and their
//! script and style.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::response::error;
use crate::state::Playback;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const WATCH_HTML: &str = include_str!("../assets/watch.html");
const WATCH_JS: &str = include_str!("../assets/watch.js");
const PLAYER_CSS: &str = include_str!("../assets/player.css");

pub(crate) async fn index_page() -> Response {
    page(INDEX_HTML)
}

pub(crate) async fn watch_page(
    State(state): State<Arc<Playback>>,
    Path(name): Path<String>,
) -> Response {
    if state.streams.contains(&name) {
        page(WATCH_HTML)
    } else {
        error(StatusCode::NOT_FOUND, "no such stream")
    }
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// `GET /streams.json`: `{"streams":[{"name":"..."}]}`, the configured streams that are live now,
/// by name, for the player page. Publishers' addresses, keys and the streams that are not live
/// stay on the admin listener's API.
pub(crate) async fn live_streams(State(state): State<Arc<Playback>>) -> Response {
    let mut names: Vec<String> = state
        .source
        .live_streams()
        .into_iter()
        .filter(|n| state.streams.contains(n))
        .collect();
    names.sort();
    names.dedup();
    let streams: Vec<serde_json::Value> = names
        .into_iter()
        .map(|name| serde_json::json!({ "name": name }))
        .collect();
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(serde_json::json!({ "streams": streams })),
    )
        .into_response()
}

pub(crate) async fn asset(
    State(state): State<Arc<Playback>>,
    Path(file): Path<String>,
) -> Response {
    let (content_type, body): (&str, bytes::Bytes) = match file.as_str() {
        "watch.js" => ("text/javascript; charset=utf-8", WATCH_JS.into()),
        "player.css" => ("text/css; charset=utf-8", PLAYER_CSS.into()),
        "hls.min.js" => match state.assets.hls_js() {
            Some(b) => ("text/javascript; charset=utf-8", b.clone()),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "hls.js is not installed on this server",
                )
            }
        },
        _ => return error(StatusCode::NOT_FOUND, "not found"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
