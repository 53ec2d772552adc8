//! Ferrocast's metric catalogue, shared by every part of the service.
//!
//! Each part registers its own counters and histograms into the `prometheus-client` registry it
//! is given at construction, and records them where the event happens. Gauges are read from
//! snapshots at scrape time: each part offers a collector over its own state, and the wiring
//! registers it. This crate holds only what they must agree on: the names ([`names`]), so that a
//! name is written once, and the per-stream label. It depends on nothing of ours, so any part
//! can use it without reaching another part's state.
//!
//! ```
//! use prometheus_client::registry::Registry;
//! use telemetry::{names, stream_counter};
//!
//! let mut registry = Registry::default();
//! let errors = stream_counter(&mut registry, names::PIPELINE_ERRORS, "Pipeline failures");
//! telemetry::add(&errors, "main", 1);
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains(r#"ferrocast_pipeline_errors_total{stream="main"} 1"#));
//! ```

pub mod names;
mod per_stream;
pub mod process;

pub use per_stream::{add, stream_counter, StreamCounter, StreamLabel};
