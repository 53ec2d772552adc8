//! The `ferrocast` binary: command line, configuration, logging, signals, and the start-up banner.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use ferrocast::config::{Config, LogFormat};
use ferrocast::sources::{self, Override, Sources};
use ingest::StreamConfig;
use tokio_util::sync::CancellationToken;

/// Ferrocast: a live-streaming transcoder. Publish over RTMP or SRT, watch adaptive HLS.
#[derive(Debug, Parser)]
#[command(name = "ferrocast", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Validate a configuration file (with environment and flag overrides) and exit.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

/// Options shared by every command. Each maps to a configuration key and beats the file and the
/// environment.
#[derive(Debug, Args)]
struct Opts {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// HTTP listen address (listen.http).
    #[arg(long, global = true, value_name = "ADDR")]
    http: Option<String>,
    /// Admin HTTP listen address for the API, metrics and probes (listen.admin; default
    /// 127.0.0.1:9091).
    #[arg(long, global = true, value_name = "ADDR")]
    admin: Option<String>,
    /// RTMP listen address (listen.rtmp).
    #[arg(long, global = true, value_name = "ADDR")]
    rtmp: Option<String>,
    /// RTMPS listen address (listen.rtmps; off unless set, needs rtmps.cert_file and
    /// rtmps.key_file).
    #[arg(long, global = true, value_name = "ADDR")]
    rtmps: Option<String>,
    /// SRT listen address (listen.srt).
    #[arg(long, global = true, value_name = "ADDR")]
    srt: Option<String>,
    /// A publishable stream as NAME=KEY; repeat for more. Replaces the file's streams.
    #[arg(long = "stream", global = true, value_name = "NAME=KEY")]
    streams: Vec<String>,
    /// Log level or filter, e.g. `debug` or `info,ingest=debug` (log.level).
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log format: text or json (log.format).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Drain timeout on SIGTERM, e.g. `10s` (shutdown_grace).
    #[arg(long, global = true, value_name = "DURATION")]
    shutdown_grace: Option<String>,
    /// Publish a built-in test pattern (clock and tone) as the stream `demo`, through the RTMP
    /// ingest, so there is something to watch at once.
    #[arg(long, global = true)]
    demo: bool,
    /// Any key as KEY=VALUE with a dotted key, e.g. `rtmp.idle_timeout=60s`; repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl Opts {
    fn sources(&self, file: Option<&PathBuf>) -> anyhow::Result<Sources> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let path = file.cloned().or_else(|| self.config.clone()).or_else(|| {
            env.iter()
                .find(|(k, _)| k == sources::ENV_CONFIG)
                .map(|(_, v)| PathBuf::from(v))
        });
        let file = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(&p).map_err(|source| sources::ConfigError::Read {
                        path: p.display().to_string(),
                        source,
                    })?;
                Some((p.display().to_string(), text))
            }
            None => None,
        };
        let mut flags = Vec::new();
        let mut flag = |origin: &str, key: &str, value: &Option<String>| {
            if let Some(v) = value {
                flags.push(Override {
                    origin: origin.into(),
                    key: key.into(),
                    value: v.clone(),
                });
            }
        };
        flag("--http", "listen.http", &self.http);
        flag("--admin", "listen.admin", &self.admin);
        flag("--rtmp", "listen.rtmp", &self.rtmp);
        flag("--rtmps", "listen.rtmps", &self.rtmps);
        flag("--srt", "listen.srt", &self.srt);
        flag("--log-level", "log.level", &self.log_level);
        flag("--log-format", "log.format", &self.log_format);
        flag("--shutdown-grace", "shutdown_grace", &self.shutdown_grace);
        for s in &self.set {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
            flags.push(Override {
                origin: format!("--set {k}"),
                key: k.trim().into(),
                value: v.into(),
            });
        }
        let flag_streams = self
            .streams
            .iter()
            .map(|s| sources::parse_stream_pair(s, "--stream"))
            .collect::<Result<_, _>>()?;
        Ok(Sources {
            file,
            env,
            flags,
            flag_streams,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { ref file }) => {
            match cli
                .opts
                .sources(Some(file))
                .and_then(|s| Ok(Config::load(s)?))
            {
                Ok(c) => {
                    println!(
                        "{}: ok ({} stream(s) configured)",
                        file.display(),
                        c.streams.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Serve) | None => match serve(&cli.opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(opts: &Opts) -> anyhow::Result<()> {
    let config = Config::load(opts.sources(None)?)?;
    init_logging(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrocast")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        // Handlers first: a SIGTERM that arrives right after the banner must drain, not kill.
        let shutdown = CancellationToken::new();
        let handlers = Signals::install()?;
        tokio::spawn(handlers.wait(shutdown.clone()));
        let (mut streams, generated) = config.streams_or_default();
        let demo_key = opts.demo.then(|| demo_stream(&mut streams));
        let public_host = config.listen.public_host.clone();
        let mut app = ferrocast::App::bind(config, streams.clone()).await?;
        print_banner(&app, &streams, generated, &public_host);
        if let Some(key) = demo_key {
            let http = app.http_addr();
            println!(
                "Demo:    the stream \"demo\" is publishing a test pattern; watch it at http://{}:{}/watch/demo",
                url_host(http, &public_host),
                http.port()
            );
            app.enable_demo(key);
        }
        Ok(app.run(shutdown).await?)
    });
    // Tasks still running after the drain (idle keep-alive connections) must not hold up the
    // exit beyond the grace period.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?} is not a valid filter", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    Ok(())
}

/// SIGTERM and SIGINT streams, registered before anything is bound.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// First SIGTERM or SIGINT starts the drain; a second one exits at once.
    async fn wait(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = self.int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
        shutdown.cancel();
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::warn!("second signal: exiting without waiting for the drain");
        std::process::exit(130);
    }
}

/// The `demo` stream's key: its configured one, or a fresh stream with a random key.
fn demo_stream(streams: &mut Vec<StreamConfig>) -> String {
    if let Some(s) = streams.iter().find(|s| s.name.as_str() == "demo") {
        return s.key.clone();
    }
    let key = ingest::config::random_key();
    streams.push(StreamConfig {
        name: "demo".parse().expect("valid literal"),
        key: key.clone(),
        passphrase: String::new(),
    });
    key
}

fn url_host(addr: SocketAddr, public_host: &str) -> String {
    if !public_host.is_empty() {
        return public_host.to_owned();
    }
    match addr.ip() {
        ip if ip.is_unspecified() => "localhost".into(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// What a user needs to start streaming, on stdout (logs go to stderr). Tests read the
/// `... listening on ADDR` lines to find ports bound as 0.
fn print_banner(
    app: &ferrocast::App,
    streams: &[StreamConfig],
    generated: bool,
    public_host: &str,
) {
    let http = app.http_addr();
    let rtmp = app.rtmp_addr();
    let http_host = url_host(http, public_host);
    let rtmp_host = url_host(rtmp, public_host);
    let srt = app.srt_addr();
    let srt_host = url_host(srt, public_host);
    println!("ferrocast {} ready", env!("CARGO_PKG_VERSION"));
    println!("http listening on {http}");
    let admin = app.admin_addr();
    println!("admin listening on {admin}");
    println!("rtmp listening on {rtmp}");
    if let Some(rtmps) = app.rtmps_addr() {
        println!("rtmps listening on {rtmps}");
    }
    println!("srt listening on {srt}");
    println!();
    println!("Player:  http://{http_host}:{}/", http.port());
    println!(
        "Admin:   http://{}:{}/api/v1/streams (metrics, healthz, readyz; keep it internal)",
        url_host(admin, ""),
        admin.port()
    );
    println!("OBS:     Settings → Stream → Service \"Custom...\"");
    println!("         Server: rtmp://{rtmp_host}:{}/live", rtmp.port());
    if let Some(rtmps) = app.rtmps_addr() {
        println!(
            "         or RTMPS: Server rtmps://{}:{}/live",
            url_host(rtmps, public_host),
            rtmps.port()
        );
    }
    println!(
        "         or SRT: Server srt://{srt_host}:{}?streamid=#!::r=live/KEY,m=publish&latency=200000 (Stream Key empty)",
        srt.port()
    );
    for s in streams
        .iter()
        .filter(|s| s.name.as_str() != "demo" || !generated)
    {
        if generated {
            println!(
                "         Stream Key: {}   (generated at start; configure [[streams]] to keep one)",
                s.key
            );
        } else {
            println!(
                "         Stream Key for {:?}: as configured",
                s.name.as_str()
            );
        }
        println!(
            "Stream {:?} plays at http://{http_host}:{}/live/{}/index.m3u8",
            s.name.as_str(),
            http.port(),
            s.name
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}
