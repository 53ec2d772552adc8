//! Ferrocast's playback: what viewers' players fetch.
//!
//! [`routes`] serves the master and media playlists, init segments, segments and parts of every
//! stream, read from an [`hls::Source`] (seam 4 in ARCHITECTURE.md: the live outputs, and later
//! other pods' streams and recordings), with LL-HLS blocking reloads that the source holds within
//! the [`hls::Budget`] it is given, and the player page. Every wait is bounded: a playlist or
//! resource that does not appear in time is a 503 or 404, and an ended stream answers at once.
//! Playback knows neither the transcoder nor GStreamer.
//!
//! Playback counts what only it sees: requests held waiting for media ([`HeldRequests`]) and
//! distinct playback sessions per stream ([`Viewers`]); [`PlaybackGauges`] reads both at scrape
//! time.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use playback::{routes, Playback};
//!
//! // No source has a stream yet; the server passes its live outputs.
//! let source = Arc::new(hls::Chain::default());
//! let playback = Playback::new(source, ["main"], Duration::from_secs(2), "player/dist");
//! let app: axum::Router = routes(playback);
//! # drop(app);
//! ```

mod assets;
mod gauges;
mod held;
mod hls_routes;
mod player;
mod response;
mod routes;
mod state;
mod viewers;

#[cfg(test)]
mod tests;

pub use assets::Assets;
pub use gauges::PlaybackGauges;
pub use held::{HeldGuard, HeldKind, HeldRequests};
pub use hls_routes::{
    INIT_CONTENT_TYPE, PLAYLIST_CONTENT_TYPE, SEGMENT_CONTENT_TYPE, SESSION_COOKIE,
};
pub use response::error;
pub use routes::{peer_routes, routes};
pub use state::Playback;
pub use viewers::Viewers;
