//! Configuration: one TOML file, overridden by `FERROCAST_*` environment variables, overridden by
//! command-line flags.
//!
//! Every key has a default, so an empty file (or none) is a valid configuration. Unknown keys are
//! rejected: in the file with the key's name and line, in the environment with the variable's name.
//! Overrides are applied to the parsed TOML table *before* it is turned into [`Config`], so a value
//! from any source goes through the same validation.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use media::StreamName;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable Ferrocast reads.
pub const ENV_PREFIX: &str = "FERROCAST_";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "FERROCAST_CONFIG";
/// Environment variable listing streams as `name=key,name2=key2`.
pub const ENV_STREAMS: &str = "FERROCAST_STREAMS";

/// The whole service configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How long a graceful shutdown may take (drain of ingest and HTTP) before the process exits.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Listen addresses.
    pub listen: Listen,
    /// Logging.
    pub log: Log,
    /// Rules shared by every ingest protocol.
    pub ingest: Ingest,
    /// RTMP ingest limits.
    pub rtmp: Rtmp,
    /// SRT ingest: latency, limits and the listener-wide passphrase.
    pub srt: Srt,
    /// HTTP serving.
    pub http: Http,
    /// The transcoding ladder.
    pub transcode: Transcode,
    /// NVIDIA GPUs: which device, how many encoder sessions.
    pub nvidia: Nvidia,
    /// HLS packaging.
    pub hls: Hls,
    /// Publishable streams. Empty means: one stream named `main` with a random key.
    pub streams: Vec<StreamConfig>,
}

/// Listen addresses. Port 0 picks a free port; the bound address is printed at start-up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// HTTP (playlists, segments, player, API, metrics).
    pub http: SocketAddr,
    /// RTMP ingest (TCP).
    pub rtmp: SocketAddr,
    /// SRT ingest (UDP).
    pub srt: SocketAddr,
    /// Host name put in the URLs printed at start-up. Empty: the bound IP, or `localhost` when
    /// bound to all interfaces.
    pub public_host: String,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A level (`info`) or a tracing filter (`info,server::rtmp=debug`).
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Rules shared by RTMP and SRT ingest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// A live publisher that has sent nothing for this long may be replaced by a new one with the
    /// same key (an OBS reconnect); before that a second publisher is refused.
    #[serde(with = "duration")]
    pub publisher_timeout: Duration,
}

/// RTMP ingest limits. All are always on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rtmp {
    /// Most concurrent RTMP connections; more are closed at accept.
    pub max_connections: usize,
    /// Time allowed from accept to an accepted `publish`.
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Largest chunk size a peer may set (bytes).
    pub max_chunk_size: u32,
    /// Largest message a peer may send (bytes).
    pub max_message_size: u32,
}

/// SRT ingest. All limits are always on.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Srt {
    /// Receive latency (TSBPD): how long SRT may spend recovering lost packets. The link uses the
    /// larger of this and the caller's own latency.
    #[serde(with = "duration")]
    pub latency: Duration,
    /// Most concurrent SRT callers; more are rejected at the handshake (overloaded).
    pub max_connections: usize,
    /// Time allowed from a caller's connection request to its first media frame (handshake,
    /// then the transport stream's tables and codec configuration).
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// A publisher that delivers no media for this long is closed.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// AES passphrase every SRT caller must use (10 to 79 characters); empty means none. A
    /// stream's own `passphrase` replaces it for that stream. A secret: never logged or shown.
    pub passphrase: String,
}

impl fmt::Debug for Srt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Srt")
            .field("latency", &self.latency)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("passphrase", &Redacted(&self.passphrase))
            .finish()
    }
}

/// Stands in for a secret in `Debug` output: says whether one is set, never what it is.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<none>"
        } else {
            "<redacted>"
        })
    }
}

/// HTTP serving.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// `Access-Control-Allow-Origin` for playback and API responses; empty disables CORS.
    pub cors_allow_origin: String,
    /// Most concurrent HTTP connections.
    pub max_connections: usize,
    /// Folder holding `hls.min.js` for the player page (installed from npm at build time).
    pub assets_dir: String,
}

/// The transcoding ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Transcode {
    /// x264 speed preset (`ultrafast` … `veryslow`): faster presets cost less CPU per rung.
    pub preset: String,
    /// Frames queued towards the pipeline before ingest starts dropping (to the next keyframe).
    pub max_queued_frames: usize,
    /// The rungs. Rungs taller than the source are skipped.
    pub renditions: Vec<Rendition>,
    /// `auto` (NVIDIA, then VA-API, then CPU, per stage), `nvidia` (promised: GPU decode and
    /// scale, NVENC where the GPU has one) or `software`.
    pub accelerator: Accelerator,
    /// When promised hardware is missing, out of encoder sessions, or fails mid-stream:
    /// `fallback` (go on with the CPU) or `fail` (refuse the publish, end the stream).
    pub on_accelerator_failure: OnAcceleratorFailure,
    /// Testing knob, never for production: `identity-fail` (or `identity-fail:N`) makes every
    /// rung's encoder a stand-in "hardware" encoder that fails after N frames (default 60).
    /// Honoured only when the environment variable `TESTING_FERROCAST_FAULTS=1` is set too.
    pub test_fault_encoder: String,
}

/// `transcode.accelerator`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// Best usable element per stage.
    Auto,
    /// NVIDIA promised.
    Nvidia,
    /// CPU only.
    Software,
}

/// `transcode.on_accelerator_failure`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnAcceleratorFailure {
    /// Go on in software, with a log line and a metric.
    Fallback,
    /// Refuse the publish (or end the stream) with the reason.
    Fail,
}

/// NVIDIA GPUs. The defaults: no session limit, device 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Nvidia {
    /// Most NVENC sessions at once, counted per rung (every hardware-encoded rung is one
    /// session); 0 means no limit. Consumer GPUs cap sessions in the driver.
    pub max_encode_sessions: usize,
    /// CUDA device index on multi-GPU machines (nvcodec's per-device elements, e.g.
    /// `nvh264device1enc`, and the CUDA filters' `cuda-device-id`).
    pub device: u32,
}

impl Transcode {
    /// Frames after which the test-only fault encoder fails, when `test_fault_encoder` is set.
    pub fn fault_encoder_after(&self) -> Option<u32> {
        match self.test_fault_encoder.split_once(':') {
            None if self.test_fault_encoder == "identity-fail" => Some(60),
            Some(("identity-fail", n)) => n.parse().ok().filter(|n| *n > 0),
            _ => None,
        }
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Name used in URLs (`720p`).
    pub name: StreamName,
    /// Output height; width follows the aspect ratio, rounded to even. Ignored for passthrough.
    #[serde(default)]
    pub height: u32,
    /// Video bitrate in kb/s (CBR). Ignored for passthrough.
    #[serde(default)]
    pub video_kbps: u32,
    /// Frame-rate cap; frames above it are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Repackage the source video without re-encoding.
    #[serde(default)]
    pub passthrough: bool,
}

/// HLS packaging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Hls {
    /// Target segment duration; keyframes are forced on this cadence.
    #[serde(with = "duration")]
    pub segment_duration: Duration,
    /// Segments listed in each media playlist. Above `CAN-SKIP-UNTIL` (6 target durations) so
    /// LL-HLS delta updates have segments to skip.
    pub window: usize,
    /// How long an ended stream's playlists (with ENDLIST) stay served.
    #[serde(with = "duration")]
    pub keep_ended: Duration,
    /// Serve Low-Latency HLS: parts, preload hints, blocking reload, delta updates.
    pub low_latency: bool,
    /// LL-HLS part (CMAF chunk) duration.
    #[serde(with = "duration")]
    pub part_duration: Duration,
}

/// One publishable stream.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Public name, used in playback URLs, metrics and the API.
    pub name: StreamName,
    /// Secret publish key. Never logged or shown.
    pub key: String,
    /// AES passphrase SRT publishers of this stream must use (10 to 79 characters), replacing
    /// `srt.passphrase`; empty means the listener-wide one applies. Never logged or shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub passphrase: String,
}

impl fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConfig")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("passphrase", &Redacted(&self.passphrase))
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            shutdown_grace: Duration::from_secs(10),
            listen: Listen::default(),
            log: Log::default(),
            ingest: Ingest::default(),
            rtmp: Rtmp::default(),
            srt: Srt::default(),
            http: Http::default(),
            transcode: Transcode::default(),
            nvidia: Nvidia::default(),
            hls: Hls::default(),
            streams: Vec::new(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            http: ([0, 0, 0, 0], 8080).into(),
            rtmp: ([0, 0, 0, 0], 1935).into(),
            srt: ([0, 0, 0, 0], 9000).into(),
            public_host: String::new(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            publisher_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Rtmp {
    fn default() -> Self {
        Rtmp {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_chunk_size: 64 * 1024,
            max_message_size: 8 * 1024 * 1024,
        }
    }
}

impl Default for Srt {
    fn default() -> Self {
        Srt {
            // Above libsrt's 120 ms default, so callers on ordinary internet links recover
            // their losses without asking; the caller can raise it, never lower it.
            latency: Duration::from_millis(200),
            max_connections: 64,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            passphrase: String::new(),
        }
    }
}

impl Default for Transcode {
    fn default() -> Self {
        let rung = |name: &str, height, video_kbps| Rendition {
            name: name.parse().expect("valid literal"),
            height,
            video_kbps,
            fps: Some(30),
            passthrough: false,
        };
        Transcode {
            preset: "veryfast".into(),
            max_queued_frames: 90,
            // Suits a 1080p30 OBS stream on a small machine: the source is repackaged, and three
            // lower rungs are encoded from one decode.
            renditions: vec![
                Rendition {
                    name: "source".parse().expect("valid literal"),
                    height: 0,
                    video_kbps: 0,
                    fps: None,
                    passthrough: true,
                },
                rung("720p", 720, 2800),
                rung("480p", 480, 1200),
                rung("360p", 360, 700),
            ],
            accelerator: Accelerator::Auto,
            on_accelerator_failure: OnAcceleratorFailure::Fallback,
            test_fault_encoder: String::new(),
        }
    }
}

impl Default for Hls {
    fn default() -> Self {
        Hls {
            segment_duration: Duration::from_secs(2),
            window: 10,
            keep_ended: Duration::from_secs(60),
            low_latency: true,
            part_duration: Duration::from_millis(334),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            cors_allow_origin: "*".into(),
            max_connections: 10_000,
            assets_dir: "player/node_modules/hls.js/dist".into(),
        }
    }
}

/// Why a configuration was refused. The message names the key, variable or flag at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type (the message
    /// carries the line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from (file path, variable or flag).
        origin: String,
        /// The parser's message, with line and column for files.
        message: String,
    },
    /// An environment variable or flag names a key that does not exist.
    #[error("{origin}: unknown configuration key `{key}`")]
    UnknownKey {
        /// The variable or flag.
        origin: String,
        /// The key it maps to.
        key: String,
    },
    /// A value is syntactically fine but not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// An override of one key: from an environment variable or a flag.
#[derive(Debug, Clone)]
pub struct Override {
    /// Where it came from, for error messages: `FERROCAST_LISTEN_HTTP` or `--set listen.http`.
    pub origin: String,
    /// Dotted key path, e.g. `listen.http`.
    pub key: String,
    /// The raw value; its type is taken from the key's default.
    pub value: String,
}

/// The sources of a configuration, in increasing precedence.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Config file text and its name, if any.
    pub file: Option<(String, String)>,
    /// Environment variables (all of them; only `FERROCAST_*` are read).
    pub env: Vec<(String, String)>,
    /// Key overrides from flags, already mapped to key paths.
    pub flags: Vec<Override>,
    /// Streams from `--stream NAME=KEY` flags, replacing all others when non-empty.
    pub flag_streams: Vec<(String, String)>,
}

impl Config {
    /// Parses and validates a file's text alone.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file: Some((origin.to_owned(), text.to_owned())),
            ..Sources::default()
        })
    }

    /// Builds the configuration from all sources: file, then environment, then flags.
    pub fn load(sources: Sources) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        if let Some((origin, text)) = &sources.file {
            // Deserialize the file on its own first: that is where serde reports unknown keys and
            // wrong types with a line and column.
            toml::from_str::<Config>(text).map_err(|e| ConfigError::Parse {
                origin: origin.clone(),
                message: e.to_string().trim_end().to_owned(),
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
        }

        let known = known_keys();
        let mut overrides = Vec::new();
        let mut env_streams = None;
        for (var, value) in &sources.env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if var == ENV_CONFIG {
                continue;
            }
            if var == ENV_STREAMS {
                env_streams = Some(parse_stream_list(value, var)?);
                continue;
            }
            let flat = rest.to_ascii_lowercase();
            let key = known
                .keys()
                .find(|k| k.replace('.', "_") == flat)
                .ok_or_else(|| ConfigError::UnknownKey {
                    origin: var.clone(),
                    key: flat.clone(),
                })?;
            overrides.push(Override {
                origin: var.clone(),
                key: key.clone(),
                value: value.clone(),
            });
        }
        overrides.extend(sources.flags.iter().cloned());

        for o in &overrides {
            let kind = known.get(&o.key).ok_or_else(|| ConfigError::UnknownKey {
                origin: o.origin.clone(),
                key: o.key.clone(),
            })?;
            let value = typed_value(kind, &o.value).map_err(|message| ConfigError::Parse {
                origin: o.origin.clone(),
                message,
            })?;
            set_path(&mut table, &o.key, value);
        }

        let streams = if !sources.flag_streams.is_empty() {
            Some(sources.flag_streams.clone())
        } else {
            env_streams
        };
        if let Some(streams) = streams {
            let list = streams
                .into_iter()
                .map(|(name, key)| {
                    let mut t = toml::Table::new();
                    t.insert("name".into(), toml::Value::String(name));
                    t.insert("key".into(), toml::Value::String(key));
                    toml::Value::Table(t)
                })
                .collect();
            table.insert("streams".into(), toml::Value::Array(list));
        }

        let origin = if overrides.is_empty() {
            sources
                .file
                .as_ref()
                .map(|(o, _)| o.clone())
                .unwrap_or_else(|| "configuration".into())
        } else {
            "configuration (after environment and flag overrides)".into()
        };
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
                origin,
                message: e.to_string().trim_end().to_owned(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks rules that types alone do not express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for (i, s) in self.streams.iter().enumerate() {
            if !names.insert(&s.name) {
                return Err(ConfigError::Invalid(format!(
                    "duplicate stream name {:?} (streams entry {})",
                    s.name.as_str(),
                    i + 1
                )));
            }
            validate_key(&s.key).map_err(|why| {
                ConfigError::Invalid(format!("stream {:?}: key {why}", s.name.as_str()))
            })?;
            if !keys.insert(&s.key) {
                return Err(ConfigError::Invalid(format!(
                    "stream {:?} reuses the key of another stream; every stream needs its own key",
                    s.name.as_str()
                )));
            }
            validate_passphrase(&s.passphrase).map_err(|why| {
                ConfigError::Invalid(format!("stream {:?}: passphrase {why}", s.name.as_str()))
            })?;
        }
        validate_passphrase(&self.srt.passphrase)
            .map_err(|why| ConfigError::Invalid(format!("srt.passphrase {why}")))?;
        if self.srt.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "srt.max_connections must be above 0".into(),
            ));
        }
        if self.srt.latency > Duration::from_secs(10) {
            return Err(ConfigError::Invalid(
                "srt.latency must be at most 10s".into(),
            ));
        }
        if self.shutdown_grace.is_zero() {
            return Err(ConfigError::Invalid(
                "shutdown_grace must be above 0".into(),
            ));
        }
        let r = &self.rtmp;
        if r.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "rtmp.max_connections must be above 0".into(),
            ));
        }
        if !(128..=16 * 1024 * 1024).contains(&r.max_chunk_size) {
            return Err(ConfigError::Invalid(
                "rtmp.max_chunk_size must be between 128 and 16777216".into(),
            ));
        }
        if !(64 * 1024..=16 * 1024 * 1024 - 1).contains(&r.max_message_size) {
            return Err(ConfigError::Invalid(
                "rtmp.max_message_size must be between 65536 and 16777215".into(),
            ));
        }
        for (k, d) in [
            ("rtmp.handshake_timeout", r.handshake_timeout),
            ("rtmp.idle_timeout", r.idle_timeout),
            ("srt.handshake_timeout", self.srt.handshake_timeout),
            ("srt.idle_timeout", self.srt.idle_timeout),
            ("ingest.publisher_timeout", self.ingest.publisher_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid(format!("{k} must be above 0")));
            }
        }
        self.validate_ladder()?;
        if self.http.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections must be above 0".into(),
            ));
        }
        Ok(())
    }

    fn validate_ladder(&self) -> Result<(), ConfigError> {
        let t = &self.transcode;
        if !pipeline::X264_PRESETS.contains(&t.preset.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "transcode.preset {:?} is not an x264 preset; use one of {}",
                t.preset,
                pipeline::X264_PRESETS.join(", ")
            )));
        }
        if t.renditions.is_empty() {
            return Err(ConfigError::Invalid(
                "transcode.renditions is empty: configure at least one rung".into(),
            ));
        }
        if !t.test_fault_encoder.is_empty() && t.fault_encoder_after().is_none() {
            return Err(ConfigError::Invalid(format!(
                "transcode.test_fault_encoder {:?} is not `identity-fail` or `identity-fail:N`",
                t.test_fault_encoder
            )));
        }
        if t.max_queued_frames == 0 {
            return Err(ConfigError::Invalid(
                "transcode.max_queued_frames must be above 0".into(),
            ));
        }
        let mut names = HashSet::new();
        for r in &t.renditions {
            if !names.insert(&r.name) {
                return Err(ConfigError::Invalid(format!(
                    "duplicate rendition name {:?}",
                    r.name.as_str()
                )));
            }
            if !r.passthrough {
                if !(64..=4320).contains(&r.height) {
                    return Err(ConfigError::Invalid(format!(
                        "rendition {:?}: height must be between 64 and 4320",
                        r.name.as_str()
                    )));
                }
                if !(50..=100_000).contains(&r.video_kbps) {
                    return Err(ConfigError::Invalid(format!(
                        "rendition {:?}: video_kbps must be between 50 and 100000",
                        r.name.as_str()
                    )));
                }
            }
            if r.fps == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "rendition {:?}: fps must be above 0",
                    r.name.as_str()
                )));
            }
        }
        let h = &self.hls;
        if h.segment_duration < Duration::from_millis(500)
            || h.segment_duration > Duration::from_secs(20)
        {
            return Err(ConfigError::Invalid(
                "hls.segment_duration must be between 500ms and 20s".into(),
            ));
        }
        if h.part_duration < Duration::from_millis(100) || h.part_duration * 2 > h.segment_duration
        {
            return Err(ConfigError::Invalid(
                "hls.part_duration must be at least 100ms and at most half of hls.segment_duration"
                    .into(),
            ));
        }
        if !(2..=100).contains(&h.window) {
            return Err(ConfigError::Invalid(
                "hls.window must be between 2 and 100 segments".into(),
            ));
        }
        Ok(())
    }

    /// The configured streams, or one named `main` with a fresh random key when none is
    /// configured. The flag tells whether the key was generated.
    pub fn streams_or_default(&self) -> (Vec<StreamConfig>, bool) {
        if !self.streams.is_empty() {
            return (self.streams.clone(), false);
        }
        let stream = StreamConfig {
            name: "main".parse().expect("valid literal"),
            key: random_key(),
            passphrase: String::new(),
        };
        (vec![stream], true)
    }
}

/// Keys are URL-path and SRT-streamid safe, so one key works in every publish dialect.
fn validate_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("is empty");
    }
    if key.len() > 128 {
        return Err("is longer than 128 characters");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err("may only contain letters, digits and - _ . ~");
    }
    Ok(())
}

/// SRT passphrases (`SRTO_PASSPHRASE`) are 10 to 79 bytes; empty means none.
fn validate_passphrase(passphrase: &str) -> Result<(), String> {
    match passphrase.len() {
        0 | 10..=79 => Ok(()),
        n => Err(format!(
            "is {n} bytes long; SRT passphrases are 10 to 79 bytes (or empty for none)"
        )),
    }
}

/// A fresh 24-character alphanumeric key (about 142 bits).
pub fn random_key() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Parses `name=key,name2=key2`.
pub fn parse_stream_list(s: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| parse_stream_pair(p, origin))
        .collect()
}

/// Parses one `name=key`.
pub fn parse_stream_pair(p: &str, origin: &str) -> Result<(String, String), ConfigError> {
    match p.split_once('=') {
        Some((n, k)) if !n.is_empty() && !k.is_empty() => Ok((n.to_owned(), k.to_owned())),
        _ => Err(ConfigError::Parse {
            origin: origin.to_owned(),
            message: format!("expected NAME=KEY, got {p:?}"),
        }),
    }
}

/// The type of a scalar key, taken from its default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Float,
    Bool,
}

/// Every overridable scalar key (dotted path) with its type, derived from the defaults so the list
/// can never drift from the struct.
fn known_keys() -> BTreeMap<String, Kind> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, Kind>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let kind = match v {
                toml::Value::Table(t) => {
                    walk(&path, t, out);
                    continue;
                }
                toml::Value::String(_) => Kind::String,
                toml::Value::Integer(_) => Kind::Integer,
                toml::Value::Float(_) => Kind::Float,
                toml::Value::Boolean(_) => Kind::Bool,
                // Arrays (streams) have their own syntax.
                _ => continue,
            };
            out.insert(path, kind);
        }
    }
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    let mut out = BTreeMap::new();
    walk("", &defaults, &mut out);
    out
}

fn typed_value(kind: &Kind, raw: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::String => toml::Value::String(raw.to_owned()),
        Kind::Integer => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected an integer, got {raw:?}"))?,
        ),
        Kind::Float => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("expected true or false, got {raw:?}")),
        }),
    })
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        t = entry.as_table_mut().expect("just made a table");
    }
    t.insert(last.to_owned(), value);
}

/// Durations as human strings: `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `500ms`, `1.5s`, `2m`, `1h` or `10` (seconds).
    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num.parse().map_err(|_| {
            format!("invalid duration {s:?}: expected e.g. \"500ms\", \"10s\", \"2m\"")
        })?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "" | "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            u => {
                return Err(format!(
                    "invalid duration unit {u:?} in {s:?}: use ms, s, m or h"
                ))
            }
        };
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(format!("duration {s:?} out of range"));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// Formats as the shortest exact unit.
    pub fn format(d: Duration) -> String {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(u64),
            F(f64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => parse(&s).map_err(serde::de::Error::custom),
            Raw::I(i) => Ok(Duration::from_secs(i)),
            Raw::F(f) => parse(&f.to_string()).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Expect {
        Ok(fn(&Config)),
        Err(&'static str),
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One table of cases: file text, environment, expectation.
    #[test]
    fn config_cases() {
        type Case = (&'static str, &'static str, Vec<(String, String)>, Expect);
        let cases: Vec<Case> = vec![
            ("empty file is all defaults", "", vec![], Expect::Ok(|c| {
                assert_eq!(*c, Config::default());
            })),
            (
                "full valid file",
                r#"
shutdown_grace = "3s"
[listen]
http = "127.0.0.1:0"
rtmp = "127.0.0.1:0"
[log]
level = "debug"
format = "json"
[rtmp]
idle_timeout = "45s"
[[streams]]
name = "main"
key = "k-1"
[[streams]]
name = "second"
key = "k-2"
"#,
                vec![],
                Expect::Ok(|c| {
                    assert_eq!(c.shutdown_grace, Duration::from_secs(3));
                    assert_eq!(c.listen.http.port(), 0);
                    assert_eq!(c.log.format, LogFormat::Json);
                    assert_eq!(c.rtmp.idle_timeout, Duration::from_secs(45));
                    assert_eq!(c.streams.len(), 2);
                    assert_eq!(c.streams[1].name.as_str(), "second");
                }),
            ),
            (
                "unknown key names the key and the line",
                "[listen]\nhttp = \"127.0.0.1:0\"\nhtpp_port = 5\n",
                vec![],
                Expect::Err("line 3"),
            ),
            ("unknown key name appears", "[rtmp]\nmax_conections = 5\n", vec![], Expect::Err("max_conections")),
            ("unknown section", "[rtpm]\n", vec![], Expect::Err("rtpm")),
            ("bad address", "[listen]\nhttp = \"localhost:http\"\n", vec![], Expect::Err("invalid socket address")),
            (
                "duplicate stream name",
                "[[streams]]\nname = \"a\"\nkey = \"k1\"\n[[streams]]\nname = \"a\"\nkey = \"k2\"\n",
                vec![],
                Expect::Err("duplicate stream name \"a\""),
            ),
            (
                "duplicate key",
                "[[streams]]\nname = \"a\"\nkey = \"k1\"\n[[streams]]\nname = \"b\"\nkey = \"k1\"\n",
                vec![],
                Expect::Err("reuses the key"),
            ),
            ("bad stream name", "[[streams]]\nname = \"../x\"\nkey = \"k\"\n", vec![], Expect::Err("may only contain")),
            ("stream without key", "[[streams]]\nname = \"a\"\n", vec![], Expect::Err("missing field `key`")),
            ("key with slash", "[[streams]]\nname = \"a\"\nkey = \"x/y\"\n", vec![], Expect::Err("key may only contain")),
            ("bad duration", "shutdown_grace = \"ten seconds\"\n", vec![], Expect::Err("invalid duration")),
            ("bad log format", "[log]\nformat = \"xml\"\n", vec![], Expect::Err("unknown variant `xml`")),
            (
                "environment overrides the file",
                "[listen]\nhttp = \"127.0.0.1:1111\"\n",
                env(&[("FERROCAST_LISTEN_HTTP", "127.0.0.1:2222"), ("FERROCAST_RTMP_MAX_CONNECTIONS", "7"), ("PATH", "/bin")]),
                Expect::Ok(|c| {
                    assert_eq!(c.listen.http.port(), 2222);
                    assert_eq!(c.rtmp.max_connections, 7);
                }),
            ),
            (
                "environment top-level key with underscores",
                "",
                env(&[("FERROCAST_SHUTDOWN_GRACE", "250ms"), ("FERROCAST_INGEST_PUBLISHER_TIMEOUT", "2s")]),
                Expect::Ok(|c| {
                    assert_eq!(c.shutdown_grace, Duration::from_millis(250));
                    assert_eq!(c.ingest.publisher_timeout, Duration::from_secs(2));
                }),
            ),
            (
                "environment streams replace the file's",
                "[[streams]]\nname = \"a\"\nkey = \"k1\"\n",
                env(&[("FERROCAST_STREAMS", "x=kx, y=ky")]),
                Expect::Ok(|c| {
                    let names: Vec<_> = c.streams.iter().map(|s| s.name.as_str()).collect();
                    assert_eq!(names, ["x", "y"]);
                }),
            ),
            ("unknown environment variable", "", env(&[("FERROCAST_LISTEN_HTPP", "x")]), Expect::Err("FERROCAST_LISTEN_HTPP")),
            ("environment value of wrong type", "", env(&[("FERROCAST_RTMP_MAX_CONNECTIONS", "many")]), Expect::Err("expected an integer")),
            ("environment bad address", "", env(&[("FERROCAST_LISTEN_RTMP", "nope")]), Expect::Err("invalid socket address")),
            (
                "custom ladder",
                "[transcode]\npreset = \"ultrafast\"\n[[transcode.renditions]]\nname = \"src\"\npassthrough = true\n[[transcode.renditions]]\nname = \"low\"\nheight = 240\nvideo_kbps = 400\nfps = 15\n",
                vec![],
                Expect::Ok(|c| {
                    assert_eq!(c.transcode.renditions.len(), 2);
                    assert_eq!(c.transcode.renditions[1].fps, Some(15));
                }),
            ),
            ("bad preset", "[transcode]\npreset = \"warp\"\n", vec![], Expect::Err("not an x264 preset")),
            (
                "duplicate rendition",
                "[[transcode.renditions]]\nname = \"a\"\npassthrough = true\n[[transcode.renditions]]\nname = \"a\"\npassthrough = true\n",
                vec![],
                Expect::Err("duplicate rendition name"),
            ),
            ("rendition without height", "[[transcode.renditions]]\nname = \"a\"\nvideo_kbps = 500\n", vec![], Expect::Err("height must be")),
            ("environment overrides hls", "", env(&[("FERROCAST_HLS_SEGMENT_DURATION", "4s"), ("FERROCAST_TRANSCODE_PRESET", "ultrafast")]), Expect::Ok(|c| {
                assert_eq!(c.hls.segment_duration, Duration::from_secs(4));
                assert_eq!(c.transcode.preset, "ultrafast");
            })),
            ("zero limit refused", "[rtmp]\nmax_connections = 0\n", vec![], Expect::Err("rtmp.max_connections")),
            (
                "srt section",
                "[srt]\nlatency = \"120ms\"\nmax_connections = 8\nhandshake_timeout = \"3s\"\nidle_timeout = \"15s\"\npassphrase = \"0123456789ab\"\n",
                vec![],
                Expect::Ok(|c| {
                    assert_eq!(c.srt.latency, Duration::from_millis(120));
                    assert_eq!(c.srt.max_connections, 8);
                    assert_eq!(c.srt.handshake_timeout, Duration::from_secs(3));
                    assert_eq!(c.srt.idle_timeout, Duration::from_secs(15));
                    assert_eq!(c.srt.passphrase, "0123456789ab");
                }),
            ),
            ("srt defaults", "", vec![], Expect::Ok(|c| {
                assert_eq!(c.srt.latency, Duration::from_millis(200));
                assert!(c.srt.passphrase.is_empty());
                assert!(c.streams.iter().all(|s| s.passphrase.is_empty()));
            })),
            (
                "per-stream passphrase",
                "[[streams]]\nname = \"a\"\nkey = \"k1\"\npassphrase = \"stream-secret-1\"\n[[streams]]\nname = \"b\"\nkey = \"k2\"\n",
                vec![],
                Expect::Ok(|c| {
                    assert_eq!(c.streams[0].passphrase, "stream-secret-1");
                    assert_eq!(c.streams[1].passphrase, "");
                }),
            ),
            ("srt passphrase too short", "[srt]\npassphrase = \"short\"\n", vec![], Expect::Err("srt.passphrase is 5 bytes long")),
            ("srt passphrase too long", "[srt]\npassphrase = \"pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\"\n", vec![], Expect::Err("srt.passphrase is 80 bytes long")),
            (
                "stream passphrase too short",
                "[[streams]]\nname = \"a\"\nkey = \"k1\"\npassphrase = \"123\"\n",
                vec![],
                Expect::Err("stream \"a\": passphrase is 3 bytes"),
            ),
            ("srt zero connections", "[srt]\nmax_connections = 0\n", vec![], Expect::Err("srt.max_connections")),
            ("srt zero handshake timeout", "[srt]\nhandshake_timeout = \"0s\"\n", vec![], Expect::Err("srt.handshake_timeout")),
            ("srt latency too high", "[srt]\nlatency = \"30s\"\n", vec![], Expect::Err("srt.latency")),
            ("srt unknown key", "[srt]\nlatencyy = \"1s\"\n", vec![], Expect::Err("latencyy")),
            (
                "environment overrides srt",
                "",
                env(&[("FERROCAST_SRT_LATENCY", "500ms"), ("FERROCAST_SRT_PASSPHRASE", "from-the-environment"), ("FERROCAST_SRT_MAX_CONNECTIONS", "3")]),
                Expect::Ok(|c| {
                    assert_eq!(c.srt.latency, Duration::from_millis(500));
                    assert_eq!(c.srt.passphrase, "from-the-environment");
                    assert_eq!(c.srt.max_connections, 3);
                }),
            ),
        ];
        for (name, text, env, expect) in cases {
            let got = Config::load(Sources {
                file: Some(("test.toml".into(), text.into())),
                env,
                ..Sources::default()
            });
            match (expect, got) {
                (Expect::Ok(check), Ok(c)) => check(&c),
                (Expect::Err(needle), Err(e)) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(needle),
                        "{name}: error {msg:?} lacks {needle:?}"
                    );
                }
                (Expect::Ok(_), Err(e)) => panic!("{name}: unexpected error: {e}"),
                (Expect::Err(needle), Ok(_)) => {
                    panic!("{name}: accepted, expected error with {needle:?}")
                }
            }
        }
    }

    #[test]
    fn flags_override_environment() {
        let c = Config::load(Sources {
            file: None,
            env: env(&[
                ("FERROCAST_LOG_LEVEL", "debug"),
                ("FERROCAST_STREAMS", "e=ke"),
            ]),
            flags: vec![Override {
                origin: "--log-level".into(),
                key: "log.level".into(),
                value: "warn".into(),
            }],
            flag_streams: vec![("f".into(), "kf".into())],
        })
        .unwrap();
        assert_eq!(c.log.level, "warn");
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].name.as_str(), "f");
    }

    #[test]
    fn unknown_flag_key() {
        let e = Config::load(Sources {
            flags: vec![Override {
                origin: "--set".into(),
                key: "listen.nope".into(),
                value: "1".into(),
            }],
            ..Sources::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("listen.nope"), "{e}");
    }

    #[test]
    fn default_stream_has_random_key() {
        let (a, generated) = Config::default().streams_or_default();
        let (b, _) = Config::default().streams_or_default();
        assert!(generated);
        assert_eq!(a[0].name.as_str(), "main");
        assert_eq!(a[0].key.len(), 24);
        assert_ne!(a[0].key, b[0].key);
        assert!(validate_key(&a[0].key).is_ok());
    }

    #[test]
    fn debug_hides_keys() {
        let c = Config::from_toml("[[streams]]\nname = \"a\"\nkey = \"sekrit\"\n", "t").unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn debug_hides_passphrases() {
        let c = Config::from_toml(
            "[srt]\npassphrase = \"listener-secret\"\n[[streams]]\nname = \"a\"\nkey = \"k\"\npassphrase = \"stream-secret\"\n",
            "t",
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("listener-secret"), "{debug}");
        assert!(!debug.contains("stream-secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn stream_without_passphrase_serializes_without_it() {
        let (streams, _) = Config::default().streams_or_default();
        let text = toml::to_string(&streams[0]).unwrap();
        assert!(!text.contains("passphrase"), "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!(
            duration::parse("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            duration::parse("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(duration::parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration::parse("7").unwrap(), Duration::from_secs(7));
        assert!(duration::parse("-1s").is_err());
        assert!(duration::parse("5 parsecs").is_err());
        assert_eq!(duration::format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration::format(Duration::from_secs(10)), "10s");
    }
}
