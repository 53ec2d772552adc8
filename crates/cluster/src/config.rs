//! `[cluster]`: off by default; setting `redis_url` turns it on.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use settings::Invalid;

/// Cluster mode.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// The Redis that holds the stream leases, `redis://[user:password@]host:port[/db]` (or
    /// `rediss://` for TLS). Empty: a single node, no Redis.
    pub redis_url: String,
    /// This pod's address as the other pods reach it (`host:port` of its admin listener, where
    /// pod-to-pod traffic goes). Empty: the admin listener's bound address, when that is not a
    /// wildcard address (as on one machine).
    pub advertise: String,
    /// How long a lease outlives its last renewal; it is renewed every third of this. A pod that
    /// dies holds its streams this long.
    #[serde(with = "settings::duration")]
    pub lease_ttl: Duration,
    /// What a new publish gets while Redis cannot be reached: `refuse` (no stream can go live
    /// on two pods) or `local` (publish here; the lease is taken once Redis is back, and the
    /// publish ends if another pod took it meanwhile). Streams already live go on either way.
    pub on_store_down: OnStoreDown,
    /// Bytes of immutable media (init segments, segments, parts) an edge pod keeps from owner
    /// pods.
    pub edge_cache_bytes: u64,
}

/// `cluster.on_store_down`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreDown {
    /// Refuse new publishes.
    Refuse,
    /// Publish on this pod alone.
    Local,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            redis_url: String::new(),
            advertise: String::new(),
            lease_ttl: Duration::from_secs(10),
            on_store_down: OnStoreDown::Refuse,
            edge_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("redis_url", &redacted(&self.redis_url))
            .field("advertise", &self.advertise)
            .field("lease_ttl", &self.lease_ttl)
            .field("on_store_down", &self.on_store_down)
            .field("edge_cache_bytes", &self.edge_cache_bytes)
            .finish()
    }
}

impl Cluster {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }

    /// `redis_url` with its password hidden, for logs.
    pub fn redis_url_redacted(&self) -> String {
        redacted(&self.redis_url)
    }

    /// Checks what the types alone do not express; errors name the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !self.enabled() {
            if !self.advertise.is_empty() {
                return Err(Invalid::new(
                    "cluster.advertise is set but cluster.redis_url is not: set redis_url to run \
                     in cluster mode",
                ));
            }
            return Ok(());
        }
        let scheme = self.redis_url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err(Invalid::new(format!(
                "cluster.redis_url {:?} is not a redis:// or rediss:// URL",
                self.redis_url_redacted()
            )));
        }
        redis::Client::open(self.redis_url.as_str()).map_err(|e| {
            Invalid::new(format!(
                "cluster.redis_url {:?}: {e}",
                self.redis_url_redacted()
            ))
        })?;
        if !self.advertise.is_empty() && !is_host_port(&self.advertise) {
            return Err(Invalid::new(format!(
                "cluster.advertise {:?} is not host:port",
                self.advertise
            )));
        }
        if self.lease_ttl < Duration::from_secs(3) || self.lease_ttl > Duration::from_secs(300) {
            return Err(Invalid::new(format!(
                "cluster.lease_ttl {} is outside 3s..5m (it is renewed every third of it)",
                settings::duration::format(self.lease_ttl)
            )));
        }
        if self.edge_cache_bytes < 1024 * 1024 {
            return Err(Invalid::new(
                "cluster.edge_cache_bytes must be at least 1 MiB (1048576)",
            ));
        }
        Ok(())
    }
}

/// `host:port` with a port above 0.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// A Redis URL with the password (and user) between `://` and `@` replaced.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://<redacted>{}", &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(url: &str) -> Cluster {
        Cluster {
            redis_url: url.into(),
            ..Cluster::default()
        }
    }

    #[test]
    fn off_by_default_and_each_bad_value_names_its_key() {
        assert!(!Cluster::default().enabled());
        Cluster::default().validate().unwrap();
        on("redis://127.0.0.1:6379/0").validate().unwrap();
        let cases = [
            (on("http://x:1"), "cluster.redis_url"),
            (on("redis://"), "cluster.redis_url"),
            (
                Cluster {
                    advertise: "10.0.0.1:9091".into(),
                    ..Cluster::default()
                },
                "cluster.advertise",
            ),
            (
                Cluster {
                    advertise: "nohost".into(),
                    ..on("redis://r:6379")
                },
                "cluster.advertise",
            ),
            (
                Cluster {
                    lease_ttl: Duration::from_secs(1),
                    ..on("redis://r:6379")
                },
                "cluster.lease_ttl",
            ),
            (
                Cluster {
                    edge_cache_bytes: 10,
                    ..on("redis://r:6379")
                },
                "cluster.edge_cache_bytes",
            ),
        ];
        for (config, key) in cases {
            let e = config.validate().expect_err(key).to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let c = on("redis://user:hunter2@redis:6379/1");
        assert_eq!(c.redis_url_redacted(), "redis://<redacted>@redis:6379/1");
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = Cluster {
            redis_url: "redis://:hunter2@".into(),
            ..Cluster::default()
        }
        .validate()
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(on("redis://r:6379").redis_url_redacted(), "redis://r:6379");
    }
}
