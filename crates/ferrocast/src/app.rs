//! The service, wired: every part constructed with its metrics, the listeners bound, and the
//! ordered, bounded shutdown (convention 6 in ARCHITECTURE.md).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use ingest::rtmp_listener::RtmpIngest;
use ingest::srt_listener::{self, SrtIngest};
use ingest::tls::ServerTls;
use ingest::{
    IngestMetrics, ListenerHealth, PublisherGauges, SrtLinkGauges, SrtLinks, StreamConfig,
    StreamRegistry,
};
use playback::{Playback, PlaybackGauges};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use transcode::{Hardware, HardwareGauges, OutputGauges, Outputs, TranscodeMetrics, Transcoder};

use crate::config::Config;
use crate::health::Health;
use crate::http::{self, AppState};
use crate::listener::LimitedListener;
use crate::metrics::{self as service_metrics, HttpMetrics, Metrics};
use crate::supervise::{supervise, Faults, Listener};

/// Why the service could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// GStreamer (or its fMP4 plugin) could not be initialised.
    #[error("cannot initialise GStreamer; install the GStreamer runtime and plugins (see README)")]
    Gstreamer(#[source] pipeline::Error),
    /// `http.cors_allow_origin` cannot be sent as a header.
    #[error("http.cors_allow_origin {0:?} is not a valid header value")]
    CorsOrigin(String),
    /// Cluster mode cannot start (its address, or its Redis URL).
    #[error("cluster mode: {0}")]
    Cluster(String),
    /// The publish webhook cannot be set up (its CA file).
    #[error("publish webhook: {0}")]
    Webhook(String),
    /// RTMPS cannot start: its address, or its certificate or key.
    #[error("RTMPS: {0}")]
    Rtmps(String),
    /// A listen address could not be bound (in use, not ours, no permission).
    #[error("cannot listen for {what} {addr}")]
    Listen {
        /// `HTTP on`, `RTMP on` or `SRT on UDP`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why the service stopped other than by a shutdown request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The HTTP server failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
    /// The HTTP server's task panicked.
    #[error("HTTP server task panicked")]
    HttpPanicked,
    /// The HTTP server stopped without being asked to.
    #[error("HTTP server stopped unexpectedly")]
    HttpStopped,
}

/// Every part of the service, constructed and connected, before anything listens.
#[derive(Debug)]
pub struct Wired {
    /// What the HTTP handlers share.
    pub state: AppState,
    /// The ingest's counters, for the listeners.
    pub ingest_metrics: Arc<IngestMetrics>,
    /// The live SRT links, kept by the SRT listener.
    pub srt_links: Arc<SrtLinks>,
}

/// Builds every part for `config` (with these `streams` publishable, on this `hardware`), each
/// registering its metrics, and connects them: the registry's publishes feed the transcoder,
/// whose outputs playback serves. In cluster mode, publishes also claim their stream's lease;
/// `admin` (the admin listener's bound address) is what the other pods reach when
/// `cluster.advertise` is empty.
pub fn wire(
    config: &Config,
    streams: Vec<StreamConfig>,
    hardware: Hardware,
    admin: SocketAddr,
) -> Result<Wired, BindError> {
    let mut registry = Registry::default();
    service_metrics::register_process(&mut registry);
    let http_metrics = Arc::new(HttpMetrics::new(&mut registry));
    let ingest_metrics = Arc::new(IngestMetrics::new(&mut registry));
    let names: Vec<String> = streams.iter().map(|s| s.name.to_string()).collect();
    let transcode_metrics = Arc::new(TranscodeMetrics::new(
        &mut registry,
        names.iter().map(String::as_str),
    ));

    let streams_registry = StreamRegistry::new(
        streams,
        config.ingest.publisher_timeout,
        ingest_metrics.clone(),
    );
    let outputs =
        Outputs::with_reconnect_window(config.hls.keep_ended, config.ingest.reconnect_window);
    let health = Health::new(outputs.clone());
    let hardware = Arc::new(hardware);
    let transcoder = Transcoder::new(
        &config.transcode,
        &config.hls,
        hardware.clone(),
        outputs.clone(),
        transcode_metrics,
    );
    streams_registry.set_consumer_factory(transcoder.consumer_factory());
    streams_registry.set_renditions(
        config
            .transcode
            .renditions
            .iter()
            .map(|r| r.name.to_string())
            .collect(),
    );
    if let Some(webhook) =
        ingest::webhook::Webhook::new(&config.auth, &mut registry).map_err(BindError::Webhook)?
    {
        tracing::info!(
            host = config.auth.webhook_host().as_deref().unwrap_or(""),
            fail_open = config.auth.webhook_fail_open,
            "keys that name no configured stream are asked of the publish webhook"
        );
        streams_registry.set_authorizer(Arc::new(webhook));
    }
    let cluster = match config.cluster.enabled() {
        true => Some(
            crate::cluster::ClusterNode::new(&config.cluster, admin, &mut registry)
                .map_err(BindError::Cluster)?,
        ),
        false => None,
    };
    if let Some(node) = &cluster {
        streams_registry.set_ownership(node.ownership());
        health.set_cluster(node.leases.store().clone());
        // A publish that comes back on another pod within the window continues the playlists.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !config.ingest.reconnect_window.is_zero() => {
                transcoder.set_continuity(node.continuity_store(
                    config.ingest.reconnect_window,
                    config.cluster.lease_ttl,
                    runtime,
                ));
                // A drain hands the streams over: no ENDLIST for what goes on elsewhere.
                outputs.hand_over_on_drain();
            }
            _ => {}
        }
    }
    // Playback asks this pod's streams first, then (cluster mode) the pod that has the stream.
    let source: Arc<dyn hls::Source> = match &cluster {
        Some(node) => Arc::new(crate::cluster::ClusterSource::new(
            outputs.clone(),
            node.proxy.clone(),
        )),
        None => outputs.clone(),
    };
    let playback = Playback::new(
        source,
        names.iter().map(String::as_str),
        config.hls.segment_duration,
        &config.http.assets_dir,
    );
    let srt_links = Arc::new(SrtLinks::default());

    registry.register_collector(Box::new(PublisherGauges::new(&streams_registry)));
    registry.register_collector(Box::new(SrtLinkGauges::new(&srt_links)));
    registry.register_collector(Box::new(OutputGauges::new(&outputs)));
    registry.register_collector(Box::new(HardwareGauges::new(&hardware, &outputs)));
    registry.register_collector(Box::new(PlaybackGauges::new(
        playback.held().clone(),
        playback.viewers().clone(),
    )));

    let cors_allow_origin = match config.http.cors_allow_origin.as_str() {
        "" => None,
        o => Some(HeaderValue::from_str(o).map_err(|_| BindError::CorsOrigin(o.to_owned()))?),
    };
    Ok(Wired {
        state: AppState {
            registry: streams_registry,
            transcoder,
            playback,
            metrics: Arc::new(Metrics::new(registry)),
            http_metrics,
            health,
            faults: Faults::from_env(),
            cors_allow_origin,
            api_token: http::ApiToken::new(&config.api.token),
            cluster,
        },
        ingest_metrics,
        srt_links,
    })
}

/// The bound sockets.
#[derive(Debug)]
struct Listeners {
    http: TcpListener,
    /// `listen.admin`: the API, metrics and probes, off the public listener.
    admin: TcpListener,
    rtmp: TcpListener,
    /// `listen.rtmps`, with its certificate.
    rtmps: Option<(TcpListener, Arc<ServerTls>)>,
    srt: tokio::net::UdpSocket,
}

/// A bound, not yet running service.
#[derive(Debug)]
pub struct App {
    config: Config,
    wired: Wired,
    listeners: Listeners,
    /// For the SRT ingest's per-stream passphrases.
    streams: Vec<StreamConfig>,
    demo_key: Option<String>,
}

impl App {
    /// Probes the hardware, builds every part and binds every listener (so the real bound
    /// addresses are known before anything is printed).
    pub async fn bind(config: Config, streams: Vec<StreamConfig>) -> Result<App, BindError> {
        pipeline::init().map_err(BindError::Gstreamer)?;
        let hardware = Hardware::probe(&config.transcode, &config.nvidia);
        hardware.log();
        let listen = |what, addr| move |source| BindError::Listen { what, addr, source };
        let http = TcpListener::bind(config.listen.http)
            .await
            .map_err(listen("HTTP on", config.listen.http))?;
        let admin = TcpListener::bind(config.listen.admin)
            .await
            .map_err(listen("the admin HTTP on", config.listen.admin))?;
        let rtmp = TcpListener::bind(config.listen.rtmp)
            .await
            .map_err(listen("RTMP on", config.listen.rtmp))?;
        let rtmps = match config
            .listen
            .rtmps_addr()
            .map_err(|e| BindError::Rtmps(e.to_string()))?
        {
            Some(addr) => {
                let tls = ServerTls::load(
                    Path::new(&config.rtmps.cert_file),
                    Path::new(&config.rtmps.key_file),
                )
                .map_err(|e| BindError::Rtmps(e.to_string()))?;
                let socket = TcpListener::bind(addr)
                    .await
                    .map_err(listen("RTMPS on", addr))?;
                Some((socket, Arc::new(tls)))
            }
            None => None,
        };
        let srt = srt_listener::bind(config.listen.srt)
            .await
            .map_err(listen("SRT on UDP", config.listen.srt))?;
        let admin_addr = admin
            .local_addr()
            .map_err(listen("the admin HTTP on", config.listen.admin))?;
        let wired = wire(&config, streams.clone(), hardware, admin_addr)?;
        if let Some(node) = &wired.state.cluster {
            node.start();
        }
        Ok(App {
            config,
            wired,
            listeners: Listeners {
                http,
                admin,
                rtmp,
                rtmps,
                srt,
            },
            streams,
            demo_key: None,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.listeners
            .http
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound admin address (`listen.admin`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners
            .admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound RTMP address.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.listeners
            .rtmp
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound RTMPS address, when `listen.rtmps` is set.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .rtmps
            .as_ref()
            .map(|(l, _)| l.local_addr().expect("bound listener has an address"))
    }

    /// The bound SRT address (UDP).
    pub fn srt_addr(&self) -> SocketAddr {
        self.listeners
            .srt
            .local_addr()
            .expect("bound socket has an address")
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
        &self.wired.state
    }

    /// Serves until `shutdown` fires, then drains within `shutdown_grace`: refuse new work and
    /// turn readiness to 503, end live publishes, let the pipelines write their last segments
    /// and ENDLIST, keep serving them, then let HTTP finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let demo_url = self.demo_key.as_deref().map(|k| self.demo_url(k));
        // A listener whose task dies is bound again on the address it got.
        let (rtmp_addr, srt_addr) = (self.rtmp_addr(), self.srt_addr());
        let rtmps_addr = self.rtmps_addr();
        let App {
            config,
            wired,
            listeners:
                Listeners {
                    http,
                    admin,
                    rtmp,
                    rtmps,
                    srt,
                },
            streams,
            ..
        } = self;
        let state = wired.state;
        let grace = config.shutdown_grace;
        let ingest_tasks = TaskTracker::new();
        let ingest_stop = CancellationToken::new();
        let http_stop = CancellationToken::new();

        let rtmp_ingest = RtmpIngest::new(
            config.rtmp.clone(),
            state.registry.clone(),
            wired.ingest_metrics.clone(),
        );
        let rtmp_task = tokio::spawn(supervise(
            Listener::Rtmp,
            state.health.rtmp.clone(),
            rtmp,
            move || TcpListener::bind(rtmp_addr),
            {
                let (stop, tasks) = (ingest_stop.clone(), ingest_tasks.clone());
                move |socket| {
                    rtmp_ingest
                        .clone()
                        .serve(socket, stop.clone(), tasks.clone())
                }
            },
            ingest_stop.clone(),
            state.faults.clone(),
        ));
        let tls = rtmps.as_ref().map(|(_, tls)| tls.clone());
        tokio::spawn(reload_tls_on_request(tls, ingest_stop.clone()));
        let rtmps_task = rtmps.zip(rtmps_addr).map(|((socket, tls), addr)| {
            let ingest = RtmpIngest::with_tls(
                config.rtmp.clone(),
                tls,
                state.registry.clone(),
                wired.ingest_metrics.clone(),
            );
            let health = Arc::new(ListenerHealth::default());
            state.health.set_rtmps(health.clone());
            tokio::spawn(supervise(
                Listener::Rtmps,
                health,
                socket,
                move || TcpListener::bind(addr),
                {
                    let (stop, tasks) = (ingest_stop.clone(), ingest_tasks.clone());
                    move |socket| ingest.clone().serve(socket, stop.clone(), tasks.clone())
                },
                ingest_stop.clone(),
                state.faults.clone(),
            ))
        });
        let srt_ingest = SrtIngest::new(
            config.srt.clone(),
            &streams,
            state.registry.clone(),
            wired.ingest_metrics,
            wired.srt_links,
        );
        drop(streams);
        let srt_health = state.health.srt.clone();
        let srt_task = tokio::spawn(supervise(
            Listener::Srt,
            srt_health.clone(),
            srt,
            move || srt_listener::bind(srt_addr),
            {
                let (stop, tasks) = (ingest_stop.clone(), ingest_tasks.clone());
                move |socket| {
                    srt_ingest.clone().serve(
                        socket,
                        stop.clone(),
                        tasks.clone(),
                        srt_health.clone(),
                    )
                }
            },
            ingest_stop.clone(),
            state.faults.clone(),
        ));

        // The public listener serves playback only, the admin one the API, metrics and probes.
        // Prometheus and probes set up before the admin listener existed get 404 on the public
        // one, and the log says where those paths went (http::public_router logs it too, once,
        // when one is asked for there).
        let admin_addr = admin.local_addr().map_err(RunError::Http)?;
        tracing::info!(
            admin = %admin_addr,
            "the API, /metrics, /healthz and /readyz are served on the admin listener \
             (listen.admin), not on listen.http: point Prometheus and probes there"
        );
        let mut http_task = serve_http(
            LimitedListener::new(http, config.http.max_connections),
            http::public_router(state.clone(), admin_addr),
            http_stop.clone(),
        );
        let mut admin_task = serve_http(
            LimitedListener::new(admin, config.http.max_connections),
            http::admin_router(state.clone()),
            http_stop.clone(),
        );

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
                res.map_err(|_| RunError::HttpPanicked)?.map_err(RunError::Http)?;
                return Err(RunError::HttpStopped);
            }
            res = &mut admin_task => {
                res.map_err(|_| RunError::HttpPanicked)?.map_err(RunError::Http)?;
                return Err(RunError::HttpStopped);
            }
        }

        let deadline = Instant::now() + grace;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining"
        );
        state.health.start_drain();
        // Viewers of streams live now get their final segments and ENDLIST while we drain.
        let had_live = state.registry.live_count() > 0;
        // The demo must not reconnect while we drain; stopping it joins a thread, so not here.
        if let Some(d) = demo {
            let _ = tokio::task::spawn_blocking(move || drop(d)).await;
        }
        // Streams waiting for their publisher end now, and so do the ones the drain ends.
        state.transcoder.outputs().drain();
        state.registry.drain();
        ingest_stop.cancel();
        ingest_tasks.close();
        let _ = tokio::time::timeout_at(deadline.into(), rtmp_task).await;
        if let Some(task) = rtmps_task {
            let _ = tokio::time::timeout_at(deadline.into(), task).await;
        }
        // The SRT listener rejects newcomers while its publishers close, then goes.
        let _ = tokio::time::timeout_at(deadline.into(), srt_task).await;
        if tokio::time::timeout_at(deadline.into(), ingest_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ingest connections still open at the end of the grace period");
        }
        if !state.registry.wait_idle(deadline.into()).await {
            tracing::warn!("publishes still live at the end of the grace period");
        }
        // Pipelines flush their last segment and the playlists get ENDLIST.
        if !state
            .transcoder
            .outputs()
            .wait_finished(deadline.into())
            .await
        {
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
        for task in [http_task, admin_task] {
            match tokio::time::timeout_at(deadline.into(), task).await {
                Ok(res) => res
                    .map_err(|_| RunError::HttpPanicked)?
                    .map_err(RunError::Http)?,
                Err(_) => {
                    tracing::warn!("HTTP connections still open at the end of the grace period")
                }
            }
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Serves `router` on `listener` until `stop` fires, then lets open requests finish.
fn serve_http(
    listener: LimitedListener,
    router: axum::Router,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    })
}

/// Reads the RTMPS certificate again on SIGHUP, and when its files change (checked every
/// [`TLS_POLL`]), until `stop`. Without RTMPS, SIGHUP is logged and otherwise ignored (it must not
/// end the process, as its default action would).
async fn reload_tls_on_request(tls: Option<Arc<ServerTls>>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())
        .inspect_err(|e| {
            tracing::warn!(error = %e, "cannot handle SIGHUP; certificates reload on file changes only");
        })
        .ok();
    let mut poll = tokio::time::interval(TLS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hangup = async {
            match &mut hup {
                Some(hup) => hup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hangup => match &tls {
                Some(tls) => tls.reload_logged("SIGHUP"),
                None => tracing::info!("SIGHUP: nothing to reload (listen.rtmps is off)"),
            },
            _ = poll.tick() => {
                if let Some(tls) = &tls {
                    tls.reload_if_changed_logged();
                }
            }
        }
    }
}

/// How often the RTMPS certificate files are looked at.
const TLS_POLL: Duration = Duration::from_secs(5);
