//! The service's configuration: every part's section, assembled into one file.
//!
//! Each part owns its section next to its code (`ingest`: `[ingest]`, `[rtmp]`, `[srt]`,
//! `[[streams]]`; `transcode`: `[transcode]`, `[nvidia]`, `[hls]`); the wiring's own sections are
//! here (`[listen]`, `[log]`, `[http]`, `[api]`, `shutdown_grace`). Every key has a default, so an empty
//! file (or none) is a valid configuration; [`crate::sources`] layers the file, the environment
//! and the flags.

use std::net::SocketAddr;
use std::time::Duration;

use ingest::StreamConfig;
use serde::{Deserialize, Serialize};
use settings::Invalid;

use crate::sources::{self, ConfigError, Sources};

/// The whole service configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How long a graceful shutdown may take (drain of ingest and HTTP) before the process exits.
    #[serde(with = "settings::duration")]
    pub shutdown_grace: Duration,
    /// Listen addresses.
    pub listen: Listen,
    /// Logging.
    pub log: Log,
    /// Rules shared by every ingest protocol.
    pub ingest: ingest::Ingest,
    /// RTMP ingest limits.
    pub rtmp: ingest::Rtmp,
    /// RTMPS: the certificate and key for `listen.rtmps`.
    pub rtmps: ingest::Rtmps,
    /// SRT ingest: latency, limits and the listener-wide passphrase.
    pub srt: ingest::Srt,
    /// Publish authorisation beyond the static keys: the webhook.
    pub auth: ingest::Auth,
    /// HTTP serving.
    pub http: Http,
    /// The admin API.
    pub api: Api,
    /// The transcoding ladder.
    pub transcode: transcode::Transcode,
    /// NVIDIA GPUs: which device, how many encoder sessions.
    pub nvidia: transcode::Nvidia,
    /// HLS packaging.
    pub hls: transcode::Hls,
    /// Publishable streams. Empty means: one stream named `main` with a random key.
    pub streams: Vec<StreamConfig>,
    /// Cluster mode: several pods sharing one Redis (off unless `cluster.redis_url` is set).
    pub cluster: cluster::Cluster,
}

/// Listen addresses. Port 0 picks a free port; the bound address is printed at start-up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Public HTTP: playback only (playlists, segments, the player, the live stream names).
    pub http: SocketAddr,
    /// Internal HTTP: the API (`/api/v1`), `/metrics`, `/healthz` and `/readyz`. Each path
    /// answers on one listener only; the other says 404. On the loopback by default: a pod
    /// binds `0.0.0.0:9091` and keeps the port off its public Service.
    pub admin: SocketAddr,
    /// RTMP ingest (TCP).
    pub rtmp: SocketAddr,
    /// RTMPS ingest (RTMP over TLS, TCP), e.g. `0.0.0.0:1936`. Empty (the default): off. Needs
    /// `rtmps.cert_file` and `rtmps.key_file`.
    pub rtmps: String,
    /// SRT ingest (UDP).
    pub srt: SocketAddr,
    /// Host name put in the URLs printed at start-up. Empty: the bound IP, or `localhost` when
    /// bound to all interfaces.
    pub public_host: String,
}

impl Listen {
    /// `rtmps` as an address; `None` when RTMPS is off.
    pub fn rtmps_addr(&self) -> Result<Option<SocketAddr>, Invalid> {
        if self.rtmps.is_empty() {
            return Ok(None);
        }
        self.rtmps.trim().parse().map(Some).map_err(|_| {
            Invalid(format!(
                "listen.rtmps {:?} is not an address like 0.0.0.0:1936 (empty turns RTMPS off)",
                self.rtmps
            ))
        })
    }
}

/// The admin API (`/api/v1`).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// When set, every `/api/v1` request needs `Authorization: Bearer TOKEN` (401 otherwise).
    /// Never logged or shown.
    pub token: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("Api").field("token", &token).finish()
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A level (`info`) or a tracing filter (`info,ingest::rtmp_listener=debug`).
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

impl Default for Config {
    fn default() -> Self {
        Config {
            shutdown_grace: Duration::from_secs(10),
            listen: Listen::default(),
            log: Log::default(),
            ingest: ingest::Ingest::default(),
            rtmp: ingest::Rtmp::default(),
            rtmps: ingest::Rtmps::default(),
            srt: ingest::Srt::default(),
            auth: ingest::Auth::default(),
            http: Http::default(),
            api: Api::default(),
            transcode: transcode::Transcode::default(),
            nvidia: transcode::Nvidia::default(),
            hls: transcode::Hls::default(),
            streams: Vec::new(),
            cluster: cluster::Cluster::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            http: ([0, 0, 0, 0], 8080).into(),
            admin: ([127, 0, 0, 1], 9091).into(),
            rtmp: ([0, 0, 0, 0], 1935).into(),
            rtmps: String::new(),
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

impl Default for Http {
    fn default() -> Self {
        Http {
            cors_allow_origin: "*".into(),
            max_connections: 10_000,
            assets_dir: "player/node_modules/hls.js/dist".into(),
        }
    }
}

impl Config {
    /// Parses and validates a file's text alone.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file: Some((origin.to_owned(), text.to_owned())),
            ..Sources::default()
        })
    }

    /// Builds the configuration from all sources (file, then environment, then flags) and
    /// validates it.
    pub fn load(sources: Sources) -> Result<Config, ConfigError> {
        let config: Config = sources::load(&sources)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone do not express, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ingest::config::validate_streams(&self.streams)?;
        self.srt.validate()?;
        if self.shutdown_grace.is_zero() {
            return Err(Invalid::new("shutdown_grace must be above 0").into());
        }
        self.rtmp.validate()?;
        self.listen.rtmps_addr()?;
        self.rtmps.validate(!self.listen.rtmps.is_empty())?;
        self.ingest.validate()?;
        self.auth.validate()?;
        self.transcode.validate()?;
        self.hls.validate()?;
        self.cluster.validate()?;
        if self.http.max_connections == 0 {
            return Err(Invalid::new("http.max_connections must be above 0").into());
        }
        let (admin, http) = (self.listen.admin, self.listen.http);
        if admin.port() == http.port()
            && admin.port() != 0
            && (admin.ip() == http.ip()
                || admin.ip().is_unspecified()
                || http.ip().is_unspecified())
        {
            return Err(Invalid::new(
                "listen.admin must differ from listen.http: the admin listener exists to keep \
                 the API and metrics off the public one",
            )
            .into());
        }
        if self.api.token.chars().any(char::is_whitespace) {
            return Err(Invalid::new("api.token must not contain whitespace").into());
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
            key: ingest::config::random_key(),
            passphrase: String::new(),
        };
        (vec![stream], true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Override;

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
            ("bad admin address", "[listen]\nadmin = \"localhost\"\n", vec![], Expect::Err("invalid socket address")),
            (
                "admin on the public address",
                "[listen]\nhttp = \"127.0.0.1:8088\"\nadmin = \"127.0.0.1:8088\"\n",
                vec![],
                Expect::Err("listen.admin must differ from listen.http"),
            ),
            (
                "admin on the public port of all interfaces",
                "[listen]\nhttp = \"0.0.0.0:8088\"\nadmin = \"127.0.0.1:8088\"\n",
                vec![],
                Expect::Err("listen.admin must differ from listen.http"),
            ),
            ("token with a space", "[api]\ntoken = \"a b\"\n", vec![], Expect::Err("api.token must not contain whitespace")),
            (
                "admin listener and token from the environment",
                "",
                env(&[("FERROCAST_LISTEN_ADMIN", "0.0.0.0:9092"), ("FERROCAST_API_TOKEN", "t0k")]),
                Expect::Ok(|c| {
                    assert_eq!(c.listen.admin, ([0, 0, 0, 0], 9092).into());
                    assert_eq!(c.api.token, "t0k");
                    // Off the public interfaces unless asked.
                    assert_eq!(Config::default().listen.admin, ([127, 0, 0, 1], 9091).into());
                }),
            ),
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
                "auth webhook from the environment",
                "",
                env(&[
                    ("FERROCAST_AUTH_WEBHOOK_URL", "http://auth.internal/publish"),
                    ("FERROCAST_AUTH_WEBHOOK_SECRET", "sixteen-chars-or-more"),
                    ("FERROCAST_AUTH_WEBHOOK_FAIL_OPEN", "true"),
                ]),
                Expect::Ok(|c| {
                    assert_eq!(c.auth.webhook_url, "http://auth.internal/publish");
                    assert!(c.auth.webhook_fail_open);
                    assert_eq!(c.auth.webhook_timeout, Duration::from_secs(3));
                }),
            ),
            ("auth webhook without a secret", "[auth]\nwebhook_url = \"http://a/\"\n", vec![], Expect::Err("auth.webhook_secret")),
            ("rtmps off by default", "", vec![], Expect::Ok(|c| assert_eq!(c.listen.rtmps_addr().unwrap(), None))),
            (
                "rtmps from the environment",
                "",
                env(&[
                    ("FERROCAST_LISTEN_RTMPS", "127.0.0.1:1936"),
                    ("FERROCAST_RTMPS_CERT_FILE", "/tls/tls.crt"),
                    ("FERROCAST_RTMPS_KEY_FILE", "/tls/tls.key"),
                ]),
                Expect::Ok(|c| {
                    assert_eq!(c.listen.rtmps_addr().unwrap(), Some(([127, 0, 0, 1], 1936).into()));
                    assert_eq!(c.rtmps.key_file, "/tls/tls.key");
                }),
            ),
            ("rtmps without a certificate", "[listen]\nrtmps = \"0.0.0.0:1936\"\n", vec![], Expect::Err("rtmps.cert_file")),
            (
                "rtmps with a bad address",
                "[listen]\nrtmps = \"everywhere\"\n[rtmps]\ncert_file = \"c\"\nkey_file = \"k\"\n",
                vec![],
                Expect::Err("listen.rtmps \"everywhere\" is not an address"),
            ),
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
            ("cluster off by default", "", vec![], Expect::Ok(|c| assert!(!c.cluster.enabled()))),
            (
                "cluster from the environment",
                "",
                env(&[
                    ("FERROCAST_CLUSTER_REDIS_URL", "redis://:pw@redis:6379/2"),
                    ("FERROCAST_CLUSTER_LEASE_TTL", "6s"),
                    ("FERROCAST_CLUSTER_ON_STORE_DOWN", "local"),
                    ("FERROCAST_CLUSTER_ADVERTISE", "10.1.2.3:9091"),
                ]),
                Expect::Ok(|c| {
                    assert!(c.cluster.enabled());
                    assert_eq!(c.cluster.lease_ttl, Duration::from_secs(6));
                    assert_eq!(c.cluster.on_store_down, cluster::OnStoreDown::Local);
                    assert_eq!(c.cluster.advertise, "10.1.2.3:9091");
                    assert!(!format!("{c:?}").contains(":pw@"), "the password is redacted");
                }),
            ),
            (
                "cluster ttl too short",
                "[cluster]\nredis_url = \"redis://r:6379\"\nlease_ttl = \"1s\"\n",
                vec![],
                Expect::Err("cluster.lease_ttl"),
            ),
            (
                "cluster store policy unknown",
                "[cluster]\non_store_down = \"pray\"\n",
                vec![],
                Expect::Err("on_store_down"),
            ),
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
        assert!(ingest::config::validate_key(&a[0].key).is_ok());
    }

    #[test]
    fn debug_hides_keys() {
        let c = Config::from_toml("[[streams]]\nname = \"a\"\nkey = \"sekrit\"\n", "t").unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn debug_hides_passphrases() {
        let c = Config::from_toml(
            "[api]\ntoken = \"api-secret\"\n[srt]\npassphrase = \"listener-secret\"\n[[streams]]\nname = \"a\"\nkey = \"k\"\npassphrase = \"stream-secret\"\n",
            "t",
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("listener-secret"), "{debug}");
        assert!(!debug.contains("api-secret"), "{debug}");
        assert!(!debug.contains("stream-secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn stream_without_passphrase_serializes_without_it() {
        let (streams, _) = Config::default().streams_or_default();
        let text = toml::to_string(&streams[0]).unwrap();
        assert!(!text.contains("passphrase"), "{text}");
    }
}
