//! Ferrocast's ingest: where publishers come in, and the registry that decides who may publish.
//!
//! - [`rtmp_listener`] and [`srt_listener`] are thin tokio drivers around the sans-IO `rtmp`
//!   session and `mpegts` demuxer: they read, feed the protocol core, write what it returns, and
//!   turn the media into typed [`media::MediaFrame`]s. Every limit (connections, handshake and
//!   idle timeouts, message sizes) is always on.
//! - [`StreamRegistry`] maps a stream key to the public stream name, keeps one publisher per
//!   name (with takeover after silence), and hands each publish's frames to its consumer through
//!   a bounded queue ([`frames`]; seam 2 in ARCHITECTURE.md). The consumer (the transcoder) is
//!   plugged in by the wiring as a [`ConsumerFactory`]; this crate knows nothing of what is behind
//!   it, and nothing here imports GStreamer.
//! - Counters are recorded through [`IngestMetrics`], registered into the service's metrics
//!   registry at construction; the gauges ([`PublisherGauges`], [`SrtLinkGauges`]) read this
//!   crate's state at scrape time.
//!
//! The drive loop of a publish, as an ingest driver sees it:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use ingest::{IngestMetrics, Protocol, StreamConfig, StreamRegistry};
//!
//! let mut metrics = prometheus_client::registry::Registry::default();
//! let metrics = Arc::new(IngestMetrics::new(&mut metrics));
//! let streams = vec![StreamConfig {
//!     name: "main".parse().unwrap(),
//!     key: "secret".into(),
//!     passphrase: String::new(),
//! }];
//! let registry = StreamRegistry::new(streams, Duration::from_secs(5), metrics);
//! registry.set_consumer_factory(Arc::new(|name, _options, _end, frames| {
//!     // A real consumer moves `frames` to a thread of its own and reads until it closes.
//!     println!("{name} is live");
//!     drop(frames);
//! }));
//! let remote = "127.0.0.1:50000".parse().unwrap();
//! let handle = registry.publish("secret", Protocol::Rtmp, remote, Instant::now()).unwrap();
//! assert_eq!(handle.name().as_str(), "main");
//! // ... handle.push(frame) for every frame the publisher sends ...
//! drop(handle); // the unpublish
//! assert_eq!(registry.live_count(), 0);
//! ```

pub mod auth;
pub mod config;
mod end;
mod error;
pub mod frames;
pub mod fuzz;
mod gauges;
mod health;
mod metrics;
mod outcome;
mod ownership;
mod registry;
pub mod rtmp_listener;
mod snapshot;
pub mod srt_listener;
pub mod tls;
pub mod webhook;

pub use auth::{Allowed, Authorizer, PublishAttempt, PublishOptions, Refused, Unpublished};
pub use config::{Auth, Ingest, Rtmp, Rtmps, Srt, StreamConfig};
pub use end::{EndReason, EndSignal};
pub use error::PublishError;
pub use gauges::PublisherGauges;
pub use health::ListenerHealth;
pub use metrics::IngestMetrics;
pub use outcome::{ConnectionOutcome, Protocol, Rejection};
pub use ownership::{Disowned, Ownership, OwnershipClaim, PublishWatch};
pub use registry::{ConsumerFactory, PublishHandle, StreamRegistry};
pub use snapshot::{rfc3339, AudioInfo, PublisherSnapshot, StreamSnapshot, VideoInfo};
pub use srt_listener::{SrtLinkGauges, SrtLinks};
