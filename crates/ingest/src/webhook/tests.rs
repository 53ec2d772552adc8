//! The webhook client against a real HTTP server on loopback (hyper's), which checks every
//! call's signature and answers by the key it was sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::*;
use crate::outcome::Protocol;

const SECRET: &str = "0123456789abcdef-secret";

/// A call the server received: its event header, its body, and whether its signature held.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    body: serde_json::Value,
    signed: bool,
}

/// Checks `t=..,v1=..` the way a receiver would.
fn verify(header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let fresh = t.parse::<u64>().is_ok_and(|t| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .abs_diff(t)
            < 60
    });
    fresh && hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

/// Starts the server; it answers by the key: `allow`, `rename`, `deny`, `deny-text`, `slow`,
/// `bad-name`, `garbage`.
async fn server() -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    serve(None).await
}

/// [`server`], over TLS with `tls` when given.
async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let event = req
                            .headers()
                            .get(EVENT_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let signature = req
                            .headers()
                            .get(SIGNATURE_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let raw = req.into_body().collect().await.unwrap().to_bytes();
                        let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                        log.lock().unwrap().push(Received {
                            event,
                            body: body.clone(),
                            signed: verify(&signature, &raw),
                        });
                        let (status, answer) = match body["key"].as_str().unwrap_or("") {
                            "allow" => (200, ""),
                            "rename" => (201, r#"{"name": "renamed"}"#),
                            "ladder" => (200, r#"{"renditions": ["720p", "360p"]}"#),
                            "bad-ladder" => (200, r#"{"renditions": []}"#),
                            "deny" => (403, "{\"reason\": \"banned\\r\\nuntil tomorrow\"}"),
                            "deny-text" => (401, "no token"),
                            "slow" => {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                (200, "")
                            }
                            "bad-name" => (200, r#"{"name": "no spaces allowed"}"#),
                            "garbage" => (200, "<html>"),
                            _ => (200, ""),
                        };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(answer)))
                                .unwrap(),
                        )
                    }
                });
                let _ = match tls {
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => {
                            http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Err(_) => return,
                    },
                    None => {
                        http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    (addr, received)
}

fn webhook(url: String, fail_open: bool) -> Webhook {
    let auth = Auth {
        webhook_url: url,
        webhook_secret: SECRET.to_owned(),
        webhook_timeout: Duration::from_millis(500),
        webhook_fail_open: fail_open,
        ..Auth::default()
    };
    auth.validate().unwrap();
    Webhook::new(&auth, &mut prometheus_client::registry::Registry::default())
        .unwrap()
        .unwrap()
}

fn attempt(key: &str) -> PublishAttempt {
    PublishAttempt::rtmp(
        Protocol::Rtmp,
        key,
        "token=t%201&x=y",
        "live",
        "127.0.0.1:5000".parse().unwrap(),
    )
}

fn name(s: &str) -> media::StreamName {
    s.parse().unwrap()
}

#[tokio::test]
async fn allows_renames_and_refuses_with_a_signed_call() {
    let (addr, received) = server().await;
    let hook = webhook(format!("http://{addr}/hooks/publish"), false);

    let allowed = |n: &str| Allowed {
        name: name(n),
        options: PublishOptions::default(),
    };
    assert_eq!(
        hook.authorize(&attempt("allow")).await,
        Ok(allowed("allow"))
    );
    assert_eq!(
        hook.authorize(&attempt("rename")).await,
        Ok(allowed("renamed"))
    );
    assert_eq!(
        hook.authorize(&attempt("ladder")).await,
        Ok(Allowed {
            name: name("ladder"),
            options: PublishOptions {
                renditions: Some(vec!["720p".into(), "360p".into()]),
            },
        })
    );
    assert_eq!(
        hook.authorize(&attempt("bad-ladder")).await,
        Err(Refused::Unavailable)
    );
    assert_eq!(
        hook.authorize(&attempt("deny")).await,
        Err(Refused::Denied("banned until tomorrow".into())),
        "the reason is passed on, on one printable line"
    );
    assert_eq!(
        hook.authorize(&attempt("deny-text")).await,
        Err(Refused::Denied("no token".into()))
    );
    // A 2xx that makes no sense refuses, whatever fail_open says.
    assert_eq!(
        hook.authorize(&attempt("bad-name")).await,
        Err(Refused::Unavailable)
    );
    assert_eq!(
        hook.authorize(&attempt("garbage")).await,
        Err(Refused::Unavailable)
    );

    let calls = received.lock().unwrap().clone();
    assert_eq!(calls.len(), 8);
    assert!(
        calls.iter().all(|c| c.signed && c.event == "publish"),
        "{calls:?}"
    );
    let first = &calls[0].body;
    assert_eq!(first["event"], "publish");
    assert_eq!(first["protocol"], "rtmp");
    assert_eq!(first["key"], "allow");
    assert_eq!(
        first["query"],
        serde_json::json!({"token": "t 1", "x": "y"})
    );
    assert_eq!(first["app"], "live");
    assert_eq!(first["remote_addr"], "127.0.0.1:5000");
    assert_eq!(first["srt_user"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_unreachable_or_slow_webhook_fails_closed_unless_told_otherwise() {
    let (addr, _) = server().await;
    // A port nobody listens on: bind one, note it, close it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let shut = webhook(format!("http://{closed}/"), false);
    assert_eq!(
        shut.authorize(&attempt("allow")).await,
        Err(Refused::Unavailable)
    );
    let slow = webhook(format!("http://{addr}/"), false);
    let started = std::time::Instant::now();
    assert_eq!(
        slow.authorize(&attempt("slow")).await,
        Err(Refused::Unavailable)
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "bounded by the timeout"
    );

    let open = webhook(format!("http://{closed}/"), true);
    assert_eq!(
        open.authorize(&attempt("anyone")).await,
        Ok(Allowed {
            name: name("anyone"),
            options: PublishOptions::default(),
        })
    );
    // Fail open never makes a public name of a key that is not one.
    assert!(matches!(
        open.authorize(&attempt("not a name")).await,
        Err(Refused::Denied(_))
    ));
}

#[tokio::test]
async fn an_allowed_publish_that_ends_is_notified() {
    let (addr, received) = server().await;
    let hook = webhook(format!("http://{addr}/"), false);
    hook.unpublished(Unpublished {
        name: name("alice"),
        id: 7,
        protocol: Protocol::Srt,
        remote: "10.0.0.1:9".parse().unwrap(),
        duration: Duration::from_millis(1500),
        reason: "publisher left".into(),
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let call = loop {
        if let Some(c) = received.lock().unwrap().first().cloned() {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "no unpublish notice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(call.signed);
    assert_eq!(call.event, "unpublish");
    assert_eq!(
        call.body,
        serde_json::json!({
            "event": "unpublish", "stream": "alice", "publish_id": 7, "protocol": "srt",
            "remote_addr": "10.0.0.1:9", "duration_ms": 1500, "reason": "publisher left"
        })
    );
}

#[test]
fn the_signature_is_hmac_sha256_over_the_timestamp_and_the_body() {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let sig = Webhook::signature(b"key", at, b"{}");
    // echo -n '1700000000.{}' | openssl dgst -sha256 -hmac key
    assert_eq!(
        sig,
        "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    );
}

#[test]
fn the_section_refuses_what_cannot_work() {
    let ok = Auth {
        webhook_url: "http://auth.internal:8080/publish".into(),
        webhook_secret: SECRET.into(),
        ..Auth::default()
    };
    ok.validate().unwrap();
    assert!(Auth::default().validate().is_ok(), "off by default");
    let with = |f: fn(&mut Auth)| {
        let mut a = ok.clone();
        f(&mut a);
        a.validate().unwrap_err().to_string()
    };
    assert!(with(|a| a.webhook_secret = "short".into()).contains("at least 16"));
    assert!(with(|a| a.webhook_url = "ftp://x/".into()).contains("not an http:// or https:// URL"));
    assert!(with(|a| a.webhook_url = "auth.internal/publish".into()).contains("not an http://"));
    assert!(with(|a| a.webhook_timeout = Duration::ZERO).contains("webhook_timeout"));
    assert!(!format!("{ok:?}").contains(SECRET));
}

/// A CA, and a certificate for 127.0.0.1 it signed, as PEM; the server's TLS with that pair.
fn tls_pair() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(provider.into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[tokio::test]
async fn an_https_webhook_is_trusted_through_its_ca_file_only() {
    let (ca_pem, acceptor) = tls_pair();
    let (addr, received) = serve(Some(acceptor)).await;
    let dir = std::env::temp_dir().join(format!("ferrocast-webhook-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let auth = |ca: &str| Auth {
        webhook_url: format!("https://127.0.0.1:{}/hook", addr.port()),
        webhook_secret: SECRET.to_owned(),
        webhook_timeout: Duration::from_secs(2),
        webhook_ca_file: ca.to_owned(),
        ..Auth::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();

    // Public roots only: the private CA's certificate is not trusted, and nothing reaches it.
    let public = Webhook::new(&auth(""), &mut registry).unwrap().unwrap();
    assert_eq!(
        public.authorize(&attempt("allow")).await,
        Err(Refused::Unavailable)
    );
    assert!(received.lock().unwrap().is_empty());

    let trusted = Webhook::new(&auth(ca_file.to_str().unwrap()), &mut registry)
        .unwrap()
        .unwrap();
    assert_eq!(
        trusted.authorize(&attempt("rename")).await,
        Ok(Allowed {
            name: name("renamed"),
            options: PublishOptions::default(),
        })
    );
    assert!(received.lock().unwrap()[0].signed);

    let missing = Webhook::new(&auth("/nonexistent/ca.pem"), &mut registry).unwrap_err();
    assert!(missing.contains("auth.webhook_ca_file"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
