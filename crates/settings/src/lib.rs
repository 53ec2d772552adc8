//! Building blocks of Ferrocast's configuration.
//!
//! Each part of the service owns its configuration section next to its code (the ingest its
//! `[rtmp]` and `[srt]` sections, the transcoder `[transcode]` and `[hls]`, ...), and the binary
//! assembles them into one file. What those sections share lives here: the duration format every
//! timeout uses, secrets kept out of `Debug` output, and the error a section's `validate` returns.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Section {
//!     #[serde(with = "settings::duration")]
//!     idle_timeout: Duration,
//! }
//!
//! let s: Section = toml::from_str("idle_timeout = \"1.5s\"").unwrap();
//! assert_eq!(s.idle_timeout, Duration::from_millis(1500));
//! assert!(settings::nonzero(&[("x.idle_timeout", s.idle_timeout)]).is_ok());
//! assert_eq!(format!("{:?}", settings::Redacted("hunter2")), "<redacted>");
//! ```

pub mod duration;
mod invalid;
mod secret;

pub use invalid::{nonzero, Invalid};
pub use secret::Redacted;
