//! Publish authorisation by webhook (`[auth]`): every publish whose key names no configured
//! stream is POSTed to `auth.webhook_url` as JSON, signed with HMAC-SHA256; a 2xx answer allows
//! it (and may name the stream), anything else refuses it with the answer's reason. A webhook
//! that cannot be asked within `auth.webhook_timeout` refuses (fail closed), unless
//! `auth.webhook_fail_open` is set. When an allowed publish ends, the same URL gets an
//! `unpublish` notice.
//!
//! The signature header is `x-ferrocast-signature: t=UNIX_SECONDS,v1=HEX`, where `HEX` is
//! HMAC-SHA256 with `auth.webhook_secret` over `UNIX_SECONDS.BODY`: a receiver recomputes it,
//! compares in constant time and refuses old timestamps, so a replayed or forged call is refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;
use sha2::Sha256;
use telemetry::names;

use crate::auth::{Allowed, Authorizer, PublishAttempt, PublishOptions, Refused, Unpublished};
use crate::config::Auth;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-ferrocast-signature";
/// The event header (`publish` or `unpublish`), also in the body.
pub const EVENT_HEADER: &str = "x-ferrocast-event";
/// The longest answer body read.
const MAX_ANSWER: usize = 16 * 1024;
/// The longest reason passed on to a publisher.
const MAX_REASON: usize = 200;

/// The webhook client; clones share one connection pool.
#[derive(Clone)]
pub struct Webhook(Arc<Inner>);

struct Inner {
    url: hyper::Uri,
    secret: Vec<u8>,
    timeout: Duration,
    fail_open: bool,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    calls: Family<CallLabels, Counter>,
}

/// Labels of the calls counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    event: &'static str,
    result: &'static str,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The host only: a URL's path or query may carry a token of its own.
        f.debug_struct("Webhook")
            .field("host", &self.0.url.host())
            .field("timeout", &self.0.timeout)
            .field("fail_open", &self.0.fail_open)
            .finish_non_exhaustive()
    }
}

/// The publish event's body.
#[derive(Serialize)]
struct PublishEvent<'a> {
    event: &'static str,
    protocol: &'static str,
    key: &'a str,
    query: BTreeMap<&'a str, &'a str>,
    app: Option<&'a str>,
    srt_user: Option<&'a str>,
    remote_addr: String,
}

/// The unpublish event's body.
#[derive(Serialize)]
struct UnpublishEvent<'a> {
    event: &'static str,
    stream: &'a str,
    publish_id: u64,
    protocol: &'static str,
    remote_addr: String,
    duration_ms: u64,
    reason: &'a str,
}

/// How a call went.
enum Outcome {
    Answered(hyper::StatusCode, Bytes),
    Failed(String),
    TimedOut,
}

impl Webhook {
    /// The webhook `auth` configures, its counter registered into `registry`; `None` when
    /// `auth.webhook_url` is empty. The section is validated already (an http or https URL, a
    /// secret); an `auth.webhook_ca_file` that cannot be read is an error.
    pub fn new(auth: &Auth, registry: &mut Registry) -> Result<Option<Webhook>, String> {
        if auth.webhook_url.is_empty() {
            return Ok(None);
        }
        let url = auth
            .webhook_url
            .parse()
            .map_err(|e| format!("auth.webhook_url: {e}"))?;
        let tls = client_tls(&auth.webhook_ca_file)?;
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            names::INGEST_WEBHOOK_CALLS,
            "Publish webhook calls by event and result",
            calls.clone(),
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(auth.webhook_timeout));
        // The http connector hands https URLs on to TLS only when told it may.
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Some(Webhook(Arc::new(Inner {
            url,
            secret: auth.webhook_secret.as_bytes().to_vec(),
            timeout: auth.webhook_timeout,
            fail_open: auth.webhook_fail_open,
            client,
            calls,
        }))))
    }

    /// `t=UNIX_SECONDS,v1=HEX` for `body` at `at`.
    pub fn signature(secret: &[u8], at: SystemTime, body: &[u8]) -> String {
        let t = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn count(&self, event: &'static str, result: &'static str) {
        self.0
            .calls
            .get_or_create(&CallLabels { event, result })
            .inc();
    }

    /// POSTs `body` as `event`, bounded by the timeout.
    async fn call(&self, event: &'static str, body: Vec<u8>) -> Outcome {
        let this = &self.0;
        let signature = Self::signature(&this.secret, SystemTime::now(), &body);
        let request = hyper::Request::post(this.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("ferrocast/", env!("CARGO_PKG_VERSION")),
            )
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_HEADER, event)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let exchange = async {
            let response = this
                .client
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(this.timeout, exchange).await {
            Ok(Ok((status, body))) => Outcome::Answered(status, body),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::TimedOut,
        }
    }

    async fn decide(&self, attempt: &PublishAttempt) -> Result<Allowed, Refused> {
        let this = &self.0;
        let event = PublishEvent {
            event: "publish",
            protocol: attempt.protocol.label(),
            key: &attempt.key,
            query: attempt
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            app: attempt.app.as_deref(),
            srt_user: attempt.srt_user.as_deref(),
            remote_addr: attempt.remote.to_string(),
        };
        let body = serde_json::to_vec(&event).expect("the event serialises");
        let outcome = self.call("publish", body).await;
        let unavailable = |why: String| {
            if this.fail_open {
                tracing::warn!("publish webhook unavailable ({why}); allowed, as auth.webhook_fail_open is set");
                allowed_as_requested(attempt)
            } else {
                tracing::warn!("publish webhook unavailable ({why}); refused (fail closed)");
                Err(Refused::Unavailable)
            }
        };
        match outcome {
            Outcome::Answered(status, body) if status.is_success() => {
                let (name, options) = match answer(&body) {
                    Ok(answer) => answer,
                    Err(why) => {
                        self.count("publish", "error");
                        tracing::error!("publish webhook answered {status} with {why}");
                        return Err(Refused::Unavailable);
                    }
                };
                self.count("publish", "allowed");
                match name {
                    Some(name) => Ok(Allowed { name, options }),
                    None => allowed_as_requested(attempt).map(|a| Allowed { options, ..a }),
                }
            }
            Outcome::Answered(status, body) => {
                self.count("publish", "denied");
                Err(Refused::Denied(reason(status, &body)))
            }
            Outcome::Failed(e) => {
                self.count("publish", "error");
                unavailable(e)
            }
            Outcome::TimedOut => {
                self.count("publish", "timeout");
                unavailable(format!("no answer within {:?}", this.timeout))
            }
        }
    }
}

impl Authorizer for Webhook {
    fn authorize<'a>(
        &'a self,
        attempt: &'a PublishAttempt,
    ) -> BoxFuture<'a, Result<Allowed, Refused>> {
        Box::pin(self.decide(attempt))
    }

    fn unpublished(&self, ended: Unpublished) {
        let event = UnpublishEvent {
            event: "unpublish",
            stream: ended.name.as_str(),
            publish_id: ended.id,
            protocol: ended.protocol.label(),
            remote_addr: ended.remote.to_string(),
            duration_ms: ended.duration.as_millis() as u64,
            reason: &ended.reason,
        };
        let body = serde_json::to_vec(&event).expect("the event serialises");
        let this = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let result = match this.call("unpublish", body).await {
                Outcome::Answered(status, _) if status.is_success() => "delivered",
                Outcome::Answered(status, _) => {
                    tracing::warn!(stream = %ended.name, %status, "unpublish webhook answered with an error");
                    "error"
                }
                Outcome::Failed(e) => {
                    tracing::warn!(stream = %ended.name, error = %e, "unpublish webhook failed");
                    "error"
                }
                Outcome::TimedOut => {
                    tracing::warn!(stream = %ended.name, "unpublish webhook did not answer in time");
                    "timeout"
                }
            };
            this.count("unpublish", result);
        });
    }
}

/// TLS for an https webhook: Mozilla's roots, and the CAs of `ca_file` (PEM) when set.
fn client_tls(ca_file: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if !ca_file.is_empty() {
        use rustls::pki_types::pem::PemObject;
        let pem =
            std::fs::read(ca_file).map_err(|e| format!("auth.webhook_ca_file {ca_file}: {e}"))?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("auth.webhook_ca_file {ca_file}: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "auth.webhook_ca_file {ca_file} holds no PEM certificate"
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("auth.webhook_ca_file {ca_file}: {e}"))?;
        }
    }
    // ring, as for RTMPS (see crate::tls).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Ok(rustls::ClientConfig::builder_with_provider(provider.into())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The name the publisher asked for, allowed: the key, when it is a valid stream name.
fn allowed_as_requested(attempt: &PublishAttempt) -> Result<Allowed, Refused> {
    attempt
        .requested_name()
        .map(|name| Allowed {
            name,
            options: PublishOptions::default(),
        })
        .ok_or_else(|| {
            Refused::Denied(
                "the stream key is not a valid stream name; publish as NAME?token=SECRET, or \
                 have the webhook answer with {\"name\": ...}"
                    .to_owned(),
            )
        })
}

/// The most renditions an answer may name.
const MAX_RENDITIONS: usize = 16;

/// A 2xx answer: its stream name (`{"name": "..."}`) and its renditions (`{"renditions":
/// ["720p", "360p"]}`, configured names); an empty body, or no field, decides neither.
fn answer(body: &[u8]) -> Result<(Option<media::StreamName>, PublishOptions), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, PublishOptions::default()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "a body that is not JSON".to_owned())?;
    let name = match value.get("name") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(
            s.parse()
                .map_err(|e| format!("an invalid stream name: {e}"))?,
        ),
        Some(_) => return Err("a name that is not a string".to_owned()),
    };
    let renditions = match value.get("renditions") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Array(list))
            if !list.is_empty() && list.len() <= MAX_RENDITIONS =>
        {
            let names = list
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty() && s.len() <= 64))
                .collect::<Option<Vec<_>>>()
                .ok_or("renditions that are not all short strings")?;
            Some(names.into_iter().map(str::to_owned).collect())
        }
        Some(_) => {
            return Err(format!(
                "renditions that are not a list of 1 to {MAX_RENDITIONS} names"
            ))
        }
    };
    Ok((name, PublishOptions { renditions }))
}

/// The reason a refusal gives the publisher: the answer's `{"reason": ...}`, or its text, in
/// printable ASCII and at most [`MAX_REASON`] characters; the status when it says nothing.
fn reason(status: hyper::StatusCode, body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON)
        .collect();
    if clean.is_empty() {
        format!(
            "publish refused by the authorization service (HTTP {})",
            status.as_u16()
        )
    } else {
        clean
    }
}

/// An error with its causes ("client error (Connect): connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
