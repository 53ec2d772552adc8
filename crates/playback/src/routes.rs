//! Playback's routes, for the service's router to merge.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::state::Playback;
use crate::{hls_routes, player};

/// The player page (`/`, `/watch/{name}`, `/assets/{file}`, and `/streams.json`, the live
/// streams' names it lists) and HLS (`/live/{name}/...`), with their state applied, so that any
/// router can merge them. Nothing here says more than a viewer needs: no publisher, no key, no
/// stream that is not live.
pub fn routes<S: Clone + Send + Sync + 'static>(playback: Arc<Playback>) -> Router<S> {
    Router::new()
        .route("/", get(player::index_page))
        .route("/watch/{name}", get(player::watch_page))
        .route("/assets/{file}", get(player::asset))
        .route("/streams.json", get(player::live_streams))
        .route("/live/{name}/index.m3u8", get(hls_routes::master))
        .route("/live/{name}/{*path}", get(hls_routes::resource))
        .with_state(playback)
}

/// Cluster mode: what this pod answers the other pods with, on the admin listener
/// (`/cluster/v1/live/{name}/...`): the answers of `local` (this pod's own streams, never the
/// cluster's proxy, so a request cannot go round in circles), typed ([`hls::ANSWER_HEADER`]),
/// held within `budget`. No viewer is counted here: the edge pod counts its own.
pub fn peer_routes<S: Clone + Send + Sync + 'static>(
    local: Arc<dyn hls::Source>,
    budget: hls::Budget,
) -> Router<S> {
    Router::new()
        .route(
            "/cluster/v1/live/{name}/index.m3u8",
            get(hls_routes::peer_master),
        )
        .route(
            "/cluster/v1/live/{name}/{*path}",
            get(hls_routes::peer_resource),
        )
        .with_state(hls_routes::Peer {
            source: local,
            budget,
        })
}
