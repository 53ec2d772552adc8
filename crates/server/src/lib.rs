//! Ferrocast's service: the tokio side of everything.
//!
//! [`App::bind`] opens every listener (so the real bound addresses are known before anything is
//! printed), and [`App::run`] serves until the shutdown token fires, then drains in order: refuse
//! new work and turn readiness to 503, end live publishes, then let HTTP finish, all bounded by
//! `shutdown_grace`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use server::{config::Config, App};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = Config::from_toml("[listen]\nhttp = \"127.0.0.1:0\"\nrtmp = \"127.0.0.1:0\"\n", "inline")?;
//! let (streams, _generated) = config.streams_or_default();
//! let app = App::bind(config, streams).await?;
//! println!("http on {}", app.http_addr());
//! let shutdown = CancellationToken::new();
//! app.run(shutdown).await
//! # }
//! ```

pub mod config;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod rtmp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::HeaderValue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StreamConfig};
use crate::http::{AppState, LimitedListener};
use crate::metrics::Metrics;
use crate::registry::StreamRegistry;

/// A bound, not yet running service.
#[derive(Debug)]
pub struct App {
    config: Config,
    state: AppState,
    http: TcpListener,
    rtmp: TcpListener,
}

impl App {
    /// Builds the state and binds every listener.
    pub async fn bind(config: Config, streams: Vec<StreamConfig>) -> anyhow::Result<App> {
        let metrics = Metrics::new();
        let registry =
            StreamRegistry::new(streams, config.ingest.publisher_timeout, metrics.clone());
        let cors_allow_origin = match config.http.cors_allow_origin.as_str() {
            "" => None,
            o => Some(
                HeaderValue::from_str(o)
                    .context("http.cors_allow_origin is not a valid header value")?,
            ),
        };
        let state = AppState {
            registry,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            cors_allow_origin,
            assets: Arc::new(http::Assets::load(&config.http.assets_dir)),
        };
        let http = TcpListener::bind(config.listen.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", config.listen.http))?;
        let rtmp = TcpListener::bind(config.listen.rtmp)
            .await
            .with_context(|| format!("cannot listen for RTMP on {}", config.listen.rtmp))?;
        Ok(App {
            config,
            state,
            http,
            rtmp,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound RTMP address.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Handler state (for tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` fires, then drains within `shutdown_grace`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            config,
            state,
            http,
            rtmp,
        } = self;
        let grace = config.shutdown_grace;
        let ingest_tasks = TaskTracker::new();
        let ingest_stop = CancellationToken::new();
        let http_stop = CancellationToken::new();

        let rtmp_ingest = rtmp::RtmpIngest::new(
            config.rtmp.clone(),
            state.registry.clone(),
            state.metrics.clone(),
        );
        let rtmp_task =
            tokio::spawn(rtmp_ingest.serve(rtmp, ingest_stop.clone(), ingest_tasks.clone()));

        let router = http::router(state.clone());
        let listener = LimitedListener::new(http, config.http.max_connections);
        let http_stop_wait = http_stop.clone();
        let mut http_task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_stop_wait.cancelled().await })
                .await
        });

        tokio::select! {
            _ = shutdown.cancelled() => {}
            res = &mut http_task => {
                res.context("HTTP server task panicked")?.context("HTTP server failed")?;
                anyhow::bail!("HTTP server stopped unexpectedly");
            }
        }

        let deadline = Instant::now() + grace;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining"
        );
        state.ready.store(false, Ordering::SeqCst);
        state.registry.drain();
        ingest_stop.cancel();
        ingest_tasks.close();
        let _ = rtmp_task.await;
        if tokio::time::timeout_at(deadline.into(), ingest_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ingest connections still open at the end of the grace period");
        }
        while state.registry.live_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        http_stop.cancel();
        match tokio::time::timeout_at(deadline.into(), http_task).await {
            Ok(res) => res
                .context("HTTP server task panicked")?
                .context("HTTP server failed")?,
            Err(_) => tracing::warn!("HTTP connections still open at the end of the grace period"),
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}
