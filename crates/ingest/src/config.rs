//! The ingest's configuration sections: `[ingest]`, `[rtmp]`, `[srt]` and the `[[streams]]` list.
//!
//! Each section validates itself; the binary assembles the sections into one file and checks
//! each of them.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use media::StreamName;
use serde::{Deserialize, Serialize};
use settings::{Invalid, Redacted};

/// Rules shared by RTMP and SRT ingest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// A live publisher that has sent nothing for this long may be replaced by a new one with the
    /// same key (an OBS reconnect); before that a second publisher is refused.
    #[serde(with = "settings::duration")]
    pub publisher_timeout: Duration,
    /// A publisher that comes back within this long (a reconnect, a takeover, a new publish with
    /// the same key) continues the stream's playlists after an `EXT-X-DISCONTINUITY`, and players
    /// keep playing; until then the playlists stay open. `0s` ends them at once.
    #[serde(with = "settings::duration")]
    pub reconnect_window: Duration,
}

/// RTMP ingest limits. All are always on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rtmp {
    /// Most concurrent RTMP connections; more are closed at accept.
    pub max_connections: usize,
    /// Time allowed from accept to an accepted `publish`.
    #[serde(with = "settings::duration")]
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed.
    #[serde(with = "settings::duration")]
    pub idle_timeout: Duration,
    /// Largest chunk size a peer may set (bytes).
    pub max_chunk_size: u32,
    /// Largest message a peer may send (bytes).
    pub max_message_size: u32,
    /// Of a multitrack publish (Enhanced RTMP v2), tracks 1 to this are served besides track 0,
    /// each passed through on a rung of its own (`track1`, ...); 0: track 0 only. At most
    /// [`flv::MAX_SERVED_TRACKS`].
    pub multitrack_passthrough: u8,
}

/// RTMPS: RTMP over TLS, on `listen.rtmps` (off unless that is set). The `[rtmp]` limits apply
/// to it as well, counted apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rtmps {
    /// PEM certificate chain, leaf first. Read again on SIGHUP and when the file changes.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key_file: String,
}

/// Publish authorisation beyond the `[[streams]]` keys: a webhook (off unless `webhook_url` is
/// set). A key that names a configured stream publishes without asking it.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// `http://` or `https://` URL that every other publish attempt is POSTed to; empty: off.
    pub webhook_url: String,
    /// The HMAC-SHA256 key of the `x-ferrocast-signature` header (at least 16 characters;
    /// required with a URL). A secret: never logged or shown.
    pub webhook_secret: String,
    /// How long the webhook may take to answer (connect included).
    #[serde(with = "settings::duration")]
    pub webhook_timeout: Duration,
    /// Allow publishes (under the name they ask for) while the webhook cannot be asked. Off:
    /// they are refused (fail closed).
    pub webhook_fail_open: bool,
    /// PEM file of CA certificates an `https://` webhook's certificate may chain to, besides
    /// the public roots built in (Mozilla's); empty: the public roots only.
    pub webhook_ca_file: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("webhook_host", &self.webhook_host())
            .field("webhook_secret", &Redacted(&self.webhook_secret))
            .field("webhook_timeout", &self.webhook_timeout)
            .field("webhook_fail_open", &self.webhook_fail_open)
            .field("webhook_ca_file", &self.webhook_ca_file)
            .finish()
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            webhook_url: String::new(),
            webhook_secret: String::new(),
            webhook_timeout: Duration::from_secs(3),
            webhook_fail_open: false,
            webhook_ca_file: String::new(),
        }
    }
}

impl Auth {
    /// The webhook's host, for logs: a URL's path or query may carry a token of its own.
    pub fn webhook_host(&self) -> Option<String> {
        let uri: hyper::Uri = self.webhook_url.parse().ok()?;
        uri.host().map(str::to_owned)
    }

    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.webhook_url.is_empty() {
            return Ok(());
        }
        let uri: Result<hyper::Uri, _> = self.webhook_url.parse();
        match uri {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => {
                return Err(Invalid(format!(
                    "auth.webhook_url {:?} is not an http:// or https:// URL",
                    self.webhook_url
                )))
            }
        }
        if self.webhook_secret.chars().count() < 16 {
            return Err(Invalid::new(
                "auth.webhook_secret must be at least 16 characters when auth.webhook_url is set: \
                 the receiver checks every call's signature with it",
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(30)).contains(&self.webhook_timeout) {
            return Err(Invalid::new(
                "auth.webhook_timeout must be between 100ms and 30s",
            ));
        }
        Ok(())
    }
}

/// SRT ingest. All limits are always on.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Srt {
    /// Receive latency (TSBPD): how long SRT may spend recovering lost packets. The link uses the
    /// larger of this and the caller's own latency.
    #[serde(with = "settings::duration")]
    pub latency: Duration,
    /// Most concurrent SRT callers; more are rejected at the handshake (overloaded).
    pub max_connections: usize,
    /// Time allowed from a caller's connection request to its first media frame (handshake,
    /// then the transport stream's tables and codec configuration).
    #[serde(with = "settings::duration")]
    pub handshake_timeout: Duration,
    /// A publisher that delivers no media for this long is closed.
    #[serde(with = "settings::duration")]
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

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            publisher_timeout: Duration::from_secs(5),
            reconnect_window: Duration::from_secs(30),
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
            multitrack_passthrough: 0,
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

impl Ingest {
    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        settings::nonzero(&[("ingest.publisher_timeout", self.publisher_timeout)])
    }
}

impl Rtmp {
    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_connections == 0 {
            return Err(Invalid::new("rtmp.max_connections must be above 0"));
        }
        if !(128..=16 * 1024 * 1024).contains(&self.max_chunk_size) {
            return Err(Invalid::new(
                "rtmp.max_chunk_size must be between 128 and 16777216",
            ));
        }
        if !(64 * 1024..=16 * 1024 * 1024 - 1).contains(&self.max_message_size) {
            return Err(Invalid::new(
                "rtmp.max_message_size must be between 65536 and 16777215",
            ));
        }
        if self.multitrack_passthrough > flv::MAX_SERVED_TRACKS {
            return Err(Invalid::new(format!(
                "rtmp.multitrack_passthrough must be between 0 and {}",
                flv::MAX_SERVED_TRACKS
            )));
        }
        settings::nonzero(&[
            ("rtmp.handshake_timeout", self.handshake_timeout),
            ("rtmp.idle_timeout", self.idle_timeout),
        ])
    }
}

impl Rtmps {
    /// Checks the section; `listening` says whether `listen.rtmps` is set.
    pub fn validate(&self, listening: bool) -> Result<(), Invalid> {
        if listening && (self.cert_file.is_empty() || self.key_file.is_empty()) {
            return Err(Invalid::new(
                "listen.rtmps is set, so rtmps.cert_file and rtmps.key_file must name a PEM certificate and its key",
            ));
        }
        Ok(())
    }
}

impl Srt {
    /// Checks what the types alone do not express.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_passphrase(&self.passphrase)
            .map_err(|why| Invalid(format!("srt.passphrase {why}")))?;
        if self.max_connections == 0 {
            return Err(Invalid::new("srt.max_connections must be above 0"));
        }
        if self.latency > Duration::from_secs(10) {
            return Err(Invalid::new("srt.latency must be at most 10s"));
        }
        settings::nonzero(&[
            ("srt.handshake_timeout", self.handshake_timeout),
            ("srt.idle_timeout", self.idle_timeout),
        ])
    }
}

/// Checks the `[[streams]]` list: names and keys unique, keys and passphrases well formed.
pub fn validate_streams(streams: &[StreamConfig]) -> Result<(), Invalid> {
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    for (i, s) in streams.iter().enumerate() {
        if !names.insert(&s.name) {
            return Err(Invalid(format!(
                "duplicate stream name {:?} (streams entry {})",
                s.name.as_str(),
                i + 1
            )));
        }
        validate_key(&s.key)
            .map_err(|why| Invalid(format!("stream {:?}: key {why}", s.name.as_str())))?;
        if !keys.insert(&s.key) {
            return Err(Invalid(format!(
                "stream {:?} reuses the key of another stream; every stream needs its own key",
                s.name.as_str()
            )));
        }
        validate_passphrase(&s.passphrase)
            .map_err(|why| Invalid(format!("stream {:?}: passphrase {why}", s.name.as_str())))?;
    }
    Ok(())
}

/// Keys are URL-path and SRT-streamid safe, so one key works in every publish dialect.
pub fn validate_key(key: &str) -> Result<(), &'static str> {
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
