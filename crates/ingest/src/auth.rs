//! Publish authorisation beyond the static keys: the wiring plugs in an [`Authorizer`] (the
//! webhook, [`crate::webhook`]), which the registry asks about every publish whose key names no
//! configured stream, and tells when a publish it allowed ends.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use media::StreamName;
use serde::Serialize;

use crate::outcome::Protocol;

/// Decides publishes that the static keys do not.
pub trait Authorizer: Send + Sync {
    /// Whether `attempt` may publish, and as which stream.
    fn authorize<'a>(
        &'a self,
        attempt: &'a PublishAttempt,
    ) -> BoxFuture<'a, Result<Allowed, Refused>>;

    /// A publish this authorizer allowed has ended. Returns at once; the notice goes out on a
    /// task of its own.
    fn unpublished(&self, ended: Unpublished);
}

/// What a publisher presented.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PublishAttempt {
    /// The ingest protocol.
    pub protocol: Protocol,
    /// The stream key or name as sent, without any query string (RTMP: the `publish` name
    /// before `?`; SRT: the streamid's key). A secret for static keys.
    pub key: String,
    /// The RTMP publish name's query parameters (`NAME?token=...`), in order.
    pub query: Vec<(String, String)>,
    /// The RTMP application (`live` in `rtmp://host/live`), or the SRT streamid's path.
    pub app: Option<String>,
    /// The SRT streamid's user (`u=`), when given.
    pub srt_user: Option<String>,
    /// The publisher's address.
    pub remote: SocketAddr,
    /// The publish name or its query was longer than any key or query this server takes: the
    /// attempt is refused without asking anyone (and its query was not read).
    #[serde(skip)]
    pub(crate) oversized: bool,
}

/// The longest publish name read: a key is at most 128 characters (`config::validate_key`).
const MAX_KEY_BYTES: usize = 128;
/// The longest query string read.
const MAX_QUERY_BYTES: usize = 4096;
/// The most query parameters read.
const MAX_QUERY_PARAMS: usize = 32;

impl std::fmt::Debug for PublishAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishAttempt")
            .field("protocol", &self.protocol)
            .field("key", &"<redacted>")
            .field("query", &format_args!("<{} parameters>", self.query.len()))
            .field("app", &self.app)
            .field("srt_user", &self.srt_user)
            .field("remote", &self.remote)
            .finish()
    }
}

impl PublishAttempt {
    /// An RTMP attempt from its `publish` name (`KEY`), the name's query string (`a=1&b=2`,
    /// not decoded) and the application.
    pub fn rtmp(
        protocol: Protocol,
        name: &str,
        query: &str,
        app: &str,
        remote: SocketAddr,
    ) -> PublishAttempt {
        let oversized = name.len() > MAX_KEY_BYTES
            || query.len() > MAX_QUERY_BYTES
            || query.split('&').filter(|p| !p.is_empty()).count() > MAX_QUERY_PARAMS;
        PublishAttempt {
            protocol,
            key: if oversized {
                String::new()
            } else {
                name.to_owned()
            },
            query: if oversized {
                Vec::new()
            } else {
                parse_query(query)
            },
            oversized,
            app: (!app.is_empty()).then(|| app.to_owned()),
            srt_user: None,
            remote,
        }
    }

    /// The name the publisher asked for: the key, when it is a valid stream name. With a
    /// webhook, publishers send `NAME?token=SECRET`, so the name before `?` is public and the
    /// secret stays in the query.
    pub fn requested_name(&self) -> Option<StreamName> {
        self.key.parse().ok()
    }
}

/// `a=1&b=x%20y` as pairs, percent-decoded (`+` is a space); a bare `a` is `("a", "")`.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An allowed publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The public stream name it publishes as.
    pub name: StreamName,
    /// What else the authorizer decided for this publish.
    pub options: PublishOptions,
}

/// What an authorizer may decide for one publish beyond its name; the consumer (the
/// transcoder) applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The configured renditions (by name) this publish is transcoded into, in place of all of
    /// them; `None`: all.
    pub renditions: Option<Vec<String>>,
}

impl PublishOptions {
    /// Why these options cannot be met when `known` are the configured renditions: the first
    /// rendition asked for that is not among them, in a reason fit for the publisher.
    pub fn unknown_rendition(&self, known: &[String]) -> Option<String> {
        let unknown = self
            .renditions
            .iter()
            .flatten()
            .find(|r| !known.contains(r))?;
        let unknown: String = unknown
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        Some(format!(
            "the publish webhook asked for rendition {unknown:?}, which is not configured"
        ))
    }
}

/// Why an authorizer refused a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It said no; the reason is passed to the publisher.
    Denied(String),
    /// It could not be asked (unreachable, too slow, an answer that makes no sense), and
    /// publishes fail closed.
    Unavailable,
}

/// A publish that an authorizer allowed, now over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpublished {
    /// The stream.
    pub name: StreamName,
    /// The publish's number on this server (as in the API).
    pub id: u64,
    /// The ingest protocol.
    pub protocol: Protocol,
    /// The publisher's address.
    pub remote: SocketAddr,
    /// How long it was live.
    pub duration: Duration,
    /// Why it ended (`publisher left`, `taken over`, `draining`, ...).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rtmp_query_is_decoded_into_pairs() {
        let remote = "127.0.0.1:1".parse().unwrap();
        let a = PublishAttempt::rtmp(
            Protocol::Rtmp,
            "alice",
            "token=a%2Bb+c&flag&=x&",
            "live",
            remote,
        );
        assert_eq!(a.key, "alice");
        assert_eq!(
            a.query,
            [
                ("token".to_owned(), "a+b c".to_owned()),
                ("flag".to_owned(), String::new()),
                (String::new(), "x".to_owned()),
            ]
        );
        assert_eq!(a.app.as_deref(), Some("live"));
        assert_eq!(a.requested_name().unwrap().as_str(), "alice");
        let plain = PublishAttempt::rtmp(Protocol::Rtmp, "k", "", "", remote);
        assert!(plain.query.is_empty() && plain.app.is_none());
        assert!(!format!("{a:?}").contains("token") && !format!("{a:?}").contains("alice"));
    }

    #[test]
    fn an_oversized_name_or_query_is_not_read() {
        let remote = "127.0.0.1:1".parse().unwrap();
        let long = "k".repeat(129);
        assert!(PublishAttempt::rtmp(Protocol::Rtmp, &long, "", "", remote).oversized);
        let query = "a=1&".repeat(33);
        let a = PublishAttempt::rtmp(Protocol::Rtmp, "k", &query, "", remote);
        assert!(a.oversized && a.query.is_empty() && a.key.is_empty());
        let big = format!("t={}", "x".repeat(5000));
        assert!(PublishAttempt::rtmp(Protocol::Rtmp, "k", &big, "", remote).oversized);
        assert!(!PublishAttempt::rtmp(Protocol::Rtmp, "k", "a=1", "", remote).oversized);
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
