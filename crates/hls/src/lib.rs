//! HLS and Low-Latency HLS packaging for Ferrocast, sans-IO.
//!
//! The pipeline hands over CMAF chunks per rung (seam 3 in ARCHITECTURE.md, pipeline → packager);
//! a [`Packager`] per stream turns them into:
//! - stored bytes, written through an injected [`SegmentStore`] (convention 4 in
//!   ARCHITECTURE.md; [`MemoryStore`] by default): each rung's `init.mp4`, its segments, and
//!   every chunk as an LL-HLS part;
//! - playlists, kept as plain data ([`MediaPlaylist`], [`MasterPlaylist`]) and rendered by pure
//!   functions: the sliding window, `EXT-X-TARGETDURATION` that never decreases,
//!   `EXT-X-PROGRAM-DATE-TIME`, discontinuities, `EXT-X-ENDLIST`, and with
//!   [`PackagerConfig::low_latency`] parts, preload hints, server control, rendition reports
//!   and delta updates;
//! - answers for the HTTP layer: [`Resource::parse`] for request paths, [`Packager::cursor`],
//!   [`Packager::playlist_request`] and [`Packager::resource_status`] for blocking reloads and
//!   blocking part requests, and [`VariantStats`] for metrics;
//! - the read seam of playback: a [`Request`], a typed [`Answer`], what a packager can do for a
//!   request now ([`Request::decide`], a pure function), and the [`Source`] trait that answers
//!   now or holds the request within a [`Budget`], with a [`Chain`] of sources (seam 4 in
//!   ARCHITECTURE.md).
//!
//! No tokio, no GStreamer, no clock: wall-clock times are arguments. The server keeps a packager
//! under a mutex, pushes chunks into it and bumps a `watch` cursor after each push.
//!
//! URIs are relative so the server can mount a stream anywhere (`/live/NAME/`): the master is
//! `index.m3u8`, a rung's playlist `RUNG/index.m3u8`, and inside it `init.mp4`,
//! `seg-MSN.m4s` and `part-MSN.I.m4s`.
//!
//! The drive loop:
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use bytes::Bytes;
//! use hls::{Packager, PackagerConfig, Resource, Variant};
//! use media::cmaf::{ChunkKind, CmafChunk};
//! use media::MediaTime;
//!
//! let variant = Variant {
//!     name: "720p".into(),
//!     width: 1280,
//!     height: 720,
//!     frame_rate: Some(30.0),
//!     video_codec: "avc1.64001f".into(),
//!     audio_codec: Some("mp4a.40.2".into()),
//!     bitrate_kbps: Some(3000),
//! };
//! let config = PackagerConfig { low_latency: true, ..PackagerConfig::default() };
//! let mut packager = Packager::in_memory(config, vec![variant])?;
//!
//! let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let chunk = |kind, ms: i64| CmafChunk {
//!     kind,
//!     data: Bytes::from_static(b"moof+mdat"),
//!     pts: MediaTime::from_millis(ms),
//!     duration: MediaTime::from_millis(if kind == ChunkKind::Init { 0 } else { 500 }),
//!     independent: kind != ChunkKind::Continuation,
//! };
//! packager.push("720p", chunk(ChunkKind::Init, 0), start)?;
//! // Two-second segments of four half-second parts.
//! for i in 0..12_i64 {
//!     let kind = if i % 4 == 0 { ChunkKind::SegmentStart } else { ChunkKind::Continuation };
//!     let pdt = start + Duration::from_millis(500 * i as u64);
//!     packager.push("720p", chunk(kind, 500 * i), pdt)?;
//! }
//!
//! let media = packager.media_playlist("720p", false)?;
//! assert!(media.contains("#EXTINF:2.00000,\nseg-1.m4s"));
//! assert!(media.contains("#EXT-X-PART:DURATION=0.50000,URI=\"part-2.3.m4s\""));
//! // Segment 2 has all four parts, but it is complete only when segment 3 starts (its parts
//! // are full length, so one more could come): the hint names its next part.
//! assert!(media.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.4.m4s\""));
//! assert!(packager.master_playlist().contains("720p/index.m3u8"));
//!
//! // The HTTP side: a request path, then the stored bytes.
//! let part = Resource::parse("720p/part-2.1.m4s").unwrap();
//! assert_eq!(packager.fetch(&part).unwrap(), "moof+mdat");
//!
//! packager.end(start + Duration::from_secs(6));
//! assert!(packager.media_playlist("720p", false)?.ends_with("#EXT-X-ENDLIST\n"));
//! # Ok::<(), hls::Error>(())
//! ```

mod answers;
mod error;
mod packager;
mod playlist;
mod resource;
mod shed;
mod source;
mod store;
mod time;
mod wire;

#[doc(hidden)]
pub mod cases;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod strict_reader;

pub use error::Error;
pub use packager::{
    Blocking, Cursor, Packager, PackagerConfig, ResourceStatus, Variant, VariantStats, MAX_LOST,
    NOMINAL_AUDIO_BITRATE, SHORT_PART_PERCENT,
};
pub use playlist::{
    LowLatency, MasterPlaylist, MediaPlaylist, Part, RenderOptions, RenditionReport, Segment,
    VariantStream, VERSION, VERSION_LOW_LATENCY,
};
pub use resource::{is_valid_rung_name, BadPath, Resource, MAX_RUNG_NAME_LEN};
pub use source::{
    Answer, Block, Budget, Cache, Chain, Decision, Held, Reply, Request, Source, Subject,
};
pub use store::{MemoryStore, SegmentStore, INIT_VERSIONS_KEPT};
pub use wire::ANSWER_HEADER;
