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
pub mod playback;
pub mod registry;
pub mod rtmp;
pub mod srt_ingest;
pub mod transcode;

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
    srt: tokio::net::UdpSocket,
    /// For the SRT ingest's per-stream passphrases.
    streams: Vec<StreamConfig>,
    demo_key: Option<String>,
}

impl App {
    /// Builds the state and binds every listener.
    pub async fn bind(config: Config, streams: Vec<StreamConfig>) -> anyhow::Result<App> {
        pipeline::init().context(
            "cannot initialise GStreamer; install the GStreamer runtime and plugins (see README)",
        )?;
        let metrics = Metrics::new();
        let registry = StreamRegistry::new(
            streams.clone(),
            config.ingest.publisher_timeout,
            metrics.clone(),
        );
        let outputs = transcode::Outputs::new(config.hls.keep_ended);
        metrics.watch_outputs(&outputs);
        let transcoder = transcode::Transcoder::new(&config, outputs.clone(), metrics.clone());
        registry.set_consumer_factory(transcoder.factory());
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
            outputs,
            segment_duration: config.hls.segment_duration,
        };
        let http = TcpListener::bind(config.listen.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", config.listen.http))?;
        let rtmp = TcpListener::bind(config.listen.rtmp)
            .await
            .with_context(|| format!("cannot listen for RTMP on {}", config.listen.rtmp))?;
        let srt = srt_ingest::bind(config.listen.srt)
            .await
            .with_context(|| format!("cannot listen for SRT on UDP {}", config.listen.srt))?;
        Ok(App {
            config,
            state,
            http,
            rtmp,
            srt,
            streams,
            demo_key: None,
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

    /// The bound SRT address (UDP).
    pub fn srt_addr(&self) -> SocketAddr {
        self.srt.local_addr().expect("bound socket has an address")
    }

    /// Publishes the built-in test pattern to our own RTMP ingest with `key` once running.
    pub fn enable_demo(&mut self, key: String) {
        self.demo_key = Some(key);
    }

    /// The URL the demo publishes to: our RTMP listener, reached over loopback when it listens
    /// on every interface.
    fn demo_url(&self, key: &str) -> String {
        let addr = self.rtmp_addr();
        let host = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_owned(),
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("rtmp://{host}:{}/live/{key}", addr.port())
    }

    /// Handler state (for tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` fires, then drains within `shutdown_grace`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let demo_url = self.demo_key.as_deref().map(|k| self.demo_url(k));
        let App {
            config,
            state,
            http,
            rtmp,
            srt,
            streams,
            ..
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
        let srt_ingest = srt_ingest::SrtIngest::new(
            config.srt.clone(),
            &streams,
            state.registry.clone(),
            state.metrics.clone(),
        );
        drop(streams);
        let srt_task =
            tokio::spawn(srt_ingest.serve(srt, ingest_stop.clone(), ingest_tasks.clone()));

        let router = http::router(state.clone());
        let listener = LimitedListener::new(http, config.http.max_connections);
        let http_stop_wait = http_stop.clone();
        let mut http_task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_stop_wait.cancelled().await })
                .await
        });

        let demo = match demo_url {
            Some(url) => match pipeline::demo::DemoSource::start(&url, Default::default()) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the demo publisher");
                    None
                }
            },
            None => None,
        };

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
        // Viewers of streams live now get their final segments and ENDLIST while we drain.
        let had_live = state.registry.live_count() > 0;
        // The demo must not reconnect while we drain; stopping it joins a thread, so not here.
        if let Some(d) = demo {
            let _ = tokio::task::spawn_blocking(move || drop(d)).await;
        }
        state.registry.drain();
        ingest_stop.cancel();
        ingest_tasks.close();
        let _ = rtmp_task.await;
        // The SRT listener rejects newcomers while its publishers close, then goes.
        let _ = tokio::time::timeout_at(deadline.into(), srt_task).await;
        if tokio::time::timeout_at(deadline.into(), ingest_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ingest connections still open at the end of the grace period");
        }
        while state.registry.live_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Pipelines flush their last segment and the playlists get ENDLIST.
        if !state.outputs.wait_finished(deadline.into()).await {
            tracing::warn!("pipelines still flushing at the end of the grace period");
        }
        // Players that were watching keep fetching the last parts, segments and the ENDLIST
        // playlist; HTTP keeps serving them until the grace period is nearly over.
        if had_live {
            // A second is left for HTTP's own graceful close within the grace period.
            let linger_until = deadline
                .checked_sub(Duration::from_secs(1))
                .unwrap_or(deadline);
            tracing::info!("serving the ended streams' playlists until the grace period ends");
            tokio::time::sleep_until(linger_until.into()).await;
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
