//! Publish authorisation by webhook, end to end: the real binary asks a real HTTP server (axum,
//! started by this test) about every publish whose key names no configured stream. The server
//! checks each call's HMAC signature and allows, renames or refuses; ffmpeg publishes over RTMP
//! and SRT; a static key keeps working without asking; an allowed publish that ends is notified;
//! the token never reaches the server's logs.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::{ffmpeg_publish, ffmpeg_srt, has_video, srt_addr, srt_url, wait_until, Server};

const SECRET: &str = "webhook-test-secret-0123456789";
const LIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// What the webhook server received: each call's body, and whether its signature held.
type Calls = Arc<Mutex<Vec<(serde_json::Value, bool)>>>;

fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some((t, v1)) = headers
        .get("x-ferrocast-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.split_once(','))
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

/// The operator's service: `alice` with `token=good` may publish as herself, `bob` is renamed
/// `renamed-bob` and gets the 360p rendition only, `dave` asks for a rendition that is not
/// configured, the SRT user `cam1` may publish, everyone else is refused with a reason.
fn answer(body: &serde_json::Value) -> (StatusCode, String) {
    let key = body["key"].as_str().unwrap_or("");
    match (
        key,
        body["query"]["token"].as_str(),
        body["srt_user"].as_str(),
    ) {
        ("alice", Some("good"), _) => (StatusCode::OK, String::new()),
        ("bob", _, _) => (
            StatusCode::OK,
            r#"{"name": "renamed-bob", "renditions": ["360p"]}"#.into(),
        ),
        ("dave", _, _) => (StatusCode::OK, r#"{"renditions": ["4k"]}"#.into()),
        (_, _, Some("cam1")) => (StatusCode::NO_CONTENT, String::new()),
        _ => (
            StatusCode::FORBIDDEN,
            r#"{"reason": "not on the guest list"}"#.into(),
        ),
    }
}

/// Runs the webhook server on a thread of its own until the test ends.
fn webhook_server() -> (SocketAddr, Calls) {
    let calls: Calls = Arc::default();
    let log = calls.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/hooks/publish",
                post(move |headers: HeaderMap, body: Bytes| {
                    let log = log.clone();
                    async move {
                        let json: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        log.lock()
                            .unwrap()
                            .push((json.clone(), signed(&headers, &body)));
                        answer(&json)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("webhook server address");
    (addr, calls)
}

/// Waits until `name` is live with 320x180 video: a stream the webhook allowed is unknown to
/// the API (404) until then.
fn wait_live(server: &Server, name: &str) -> serde_json::Value {
    wait_live_sized(server, name, (320, 180))
}

fn wait_live_sized(server: &Server, name: &str, (w, h): (u64, u64)) -> serde_json::Value {
    wait_until(LIVE_TIMEOUT, &format!("{name} live"), || {
        let r = server.get_admin(&format!("/api/v1/streams/{name}"));
        let s: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        (r.status == 200 && s["live"] == true && has_video(&s["publisher"], w, h))
            .then(|| s["publisher"].clone())
    })
}

fn calls_where(calls: &Calls, f: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(body, _)| f(body))
        .map(|(body, _)| body.clone())
        .collect()
}

#[test]
fn the_webhook_allows_renames_and_refuses_publishes_over_rtmp_and_srt() {
    let (hook, calls) = webhook_server();
    let url = format!("auth.webhook_url=http://{hook}/hooks/publish");
    let secret = format!("auth.webhook_secret={SECRET}");
    let server = Server::start(&[
        "--stream",
        "main=static-key-main",
        "--set",
        &url,
        "--set",
        &secret,
    ]);

    // Allowed under the name it asked for; the token stays in the query.
    let alice = ffmpeg_publish(
        &server.dir,
        "alice",
        &server.rtmp_url("alice?token=good"),
        "320x180",
        30,
    );
    let p = wait_live(&server, "alice");
    assert_eq!(p["protocol"], "rtmp", "{p}");
    let asked = calls_where(&calls, |b| b["key"] == "alice");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["event"], "publish");
    assert_eq!(asked[0]["app"], "live");
    assert!(asked[0]["remote_addr"]
        .as_str()
        .unwrap_or("")
        .starts_with("127.0.0.1:"));

    // A configured key publishes without asking.
    let main = ffmpeg_publish(
        &server.dir,
        "main",
        &server.rtmp_url("static-key-main"),
        "320x180",
        30,
    );
    wait_live(&server, "main");
    assert!(calls_where(&calls, |b| b["key"] == "static-key-main").is_empty());
    drop(main);

    // Renamed by the answer, and given one rendition of the configured ladder (source, 360p).
    let bob = ffmpeg_publish(&server.dir, "bob", &server.rtmp_url("bob"), "640x360", 30);
    wait_live_sized(&server, "renamed-bob", (640, 360));
    let master = wait_until(LIVE_TIMEOUT, "renamed-bob's master playlist", || {
        let r = server.get("/live/renamed-bob/index.m3u8");
        (r.status == 200).then_some(r.body)
    });
    let uris: Vec<String> = support::hls::parse_master(&master)
        .into_iter()
        .map(|v| v.uri)
        .collect();
    assert_eq!(uris, ["360p/index.m3u8"], "{master}");
    assert_eq!(
        server.get("/live/bob/index.m3u8").status,
        404,
        "the asked-for name is not served"
    );
    drop(bob);

    // A rendition that is not configured: refused, with the reason.
    let mut dave = ffmpeg_publish(&server.dir, "dave", &server.rtmp_url("dave"), "320x180", 30);
    assert!(!dave.expect_exit(Duration::from_secs(15)).success());
    let said = dave.stderr();
    assert!(said.contains("not configured"), "ffmpeg hears why:\n{said}");

    // Refused: ffmpeg is told why and gives up; counted.
    let mut eve = ffmpeg_publish(
        &server.dir,
        "eve",
        &server.rtmp_url("eve?token=bad"),
        "320x180",
        30,
    );
    let status = eve.expect_exit(Duration::from_secs(15));
    assert!(!status.success(), "a refused publish fails");
    let said = eve.stderr();
    assert!(
        said.contains("not on the guest list"),
        "ffmpeg hears the reason:\n{said}"
    );
    let m = server.metrics();
    // Eve's, and dave's rendition that is not configured.
    assert_eq!(
        m.value(
            "ferrocast_ingest_rejections_total",
            &[("protocol", "rtmp"), ("reason", "webhook_denied")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "ferrocast_ingest_webhook_calls_total",
            &[("event", "publish"), ("result", "denied")]
        ),
        1.0
    );

    // SRT: the streamid's user goes to the webhook.
    let srt = srt_url(srt_addr(&server), "#!::r=live/carol,u=cam1,m=publish", "");
    let carol = ffmpeg_srt(&server.dir, "carol", &srt, "320x180", 30);
    let p = wait_live(&server, "carol");
    assert_eq!(p["protocol"], "srt", "{p}");
    let asked = calls_where(&calls, |b| b["key"] == "carol");
    assert_eq!(asked[0]["srt_user"], "cam1", "{asked:?}");
    assert_eq!(asked[0]["protocol"], "srt");
    drop(carol);

    // Alice stops: the webhook hears it.
    drop(alice);
    let ended = wait_until(Duration::from_secs(15), "alice's unpublish notice", || {
        let v = calls_where(&calls, |b| {
            b["event"] == "unpublish" && b["stream"] == "alice"
        });
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(ended[0]["protocol"], "rtmp");
    assert!(
        ended[0]["duration_ms"].as_u64().unwrap_or(0) > 0,
        "{ended:?}"
    );
    assert!(
        calls_where(&calls, |b| b["event"] == "unpublish"
            && b["stream"] == "main")
        .is_empty(),
        "a static key's publish is not the webhook's"
    );

    assert!(
        calls.lock().unwrap().iter().all(|(_, ok)| *ok),
        "every call is signed"
    );
    let log = server.logs();
    assert!(
        !log.contains("token=good") && !log.contains("static-key-main"),
        "{log}"
    );
}
