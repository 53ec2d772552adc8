//! The Ferrocast service, wired: the top of the data flow's crates.
//!
//! [`App::bind`] probes the hardware, builds every part ([`wire`]: the ingest's registry, the
//! transcoder, playback, each registering its own metrics and gauges) and opens every listener,
//! so the real bound addresses are known before anything is printed. [`App::run`] serves until
//! the shutdown token fires, then drains in order: refuse new work and turn readiness to 503, end
//! live publishes, let the pipelines write their last segments and `EXT-X-ENDLIST`, then let HTTP
//! finish, all bounded by `shutdown_grace`. The configuration ([`Config`]) assembles every part's
//! section; [`sources`] layers the file, the environment and the flags.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrocast::{App, Config};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = Config::from_toml("[listen]\nhttp = \"127.0.0.1:0\"\nrtmp = \"127.0.0.1:0\"\n", "inline")?;
//! let (streams, _generated) = config.streams_or_default();
//! let app = App::bind(config, streams).await?;
//! println!("http on {}", app.http_addr());
//! let shutdown = CancellationToken::new();
//! app.run(shutdown).await?;
//! # Ok(())
//! # }
//! ```

mod app;
pub mod cluster;
pub mod config;
pub mod health;
pub mod http;
mod listener;
pub mod metrics;
pub mod sources;
pub mod supervise;

pub use app::{wire, App, BindError, RunError, Wired};
pub use config::Config;
pub use listener::{LimitedListener, LimitedStream};
