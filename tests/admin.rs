//! The admin listener (`listen.admin`): the public listener serves playback only, the API,
//! metrics and probes answer on the admin listener only, `api.token` guards the API, and no
//! public response names a publisher's address or a stream key. A real ffmpeg publish over RTMP
//! into the real binary; every public path fetched while it is live.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::hls::parse_media;
use support::{ffmpeg_publish, http_get, http_get_bytes, require_tool, wait_until, Server};

const STREAM: &str = "adm";
const KEY: &str = "e2e-admin-key-4f1c9d";
const TOKEN: &str = "e2e-admin-token-8b2e";

/// `GET path` with `Authorization: Bearer token` (when given): status and body.
fn get_auth(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn the_admin_listener_keeps_the_api_metrics_and_publishers_off_the_public_one() {
    require_tool("ffmpeg", "-version");
    let stream = format!("{STREAM}={KEY}");
    // Fault injection on (a debug build's test hooks), to show its routes stay off the public
    // listener too.
    let server = Server::start_with_env(
        &[
            "--stream",
            &stream,
            "--set",
            &format!("api.token={TOKEN}"),
            "--set",
            "transcode.preset=ultrafast",
        ],
        &[("TESTING_FERROCAST_FAULTS", "1")],
    );
    let admin = server.admin;
    assert_ne!(admin, server.http);
    assert!(
        !server.banner.iter().any(|l| l.contains(TOKEN)),
        "the banner shows the token: {:?}",
        server.banner
    );
    let _ffmpeg = ffmpeg_publish(&server.dir, "admin", &server.rtmp_url(KEY), "320x240", 40);

    // Live, as the player page sees it: the public list names the stream, and nothing else.
    let list = wait_until(
        Duration::from_secs(30),
        "the stream in /streams.json",
        || {
            let r = server.get("/streams.json");
            (r.status == 200 && r.body.contains(STREAM)).then_some(r.body)
        },
    );
    let v: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(v, serde_json::json!({ "streams": [{ "name": STREAM }] }));
    let master = format!("/live/{STREAM}/index.m3u8");
    let rung_paths: Vec<String> = wait_until(Duration::from_secs(30), "a media playlist", || {
        let r = server.get(&master);
        (r.status == 200).then(|| {
            r.body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| format!("/live/{STREAM}/{l}"))
                .collect()
        })
    });
    let media = wait_until(Duration::from_secs(30), "a segment", || {
        let r = server.get(&rung_paths[0]);
        (r.status == 200 && r.body.contains("#EXTINF")).then_some(r.body)
    });

    // The admin API, with the token, knows the publisher's address.
    let (status, body) = get_auth(admin, &format!("/api/v1/streams/{STREAM}"), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let remote = api["publisher"]["remote_addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no publisher.remote_addr: {api:#}"))
        .to_owned();
    assert!(remote.starts_with("127.0.0.1:"), "{remote}");
    // Without it, or with another, 401; probes and metrics need none.
    for token in [None, Some("wrong-token"), Some("e2e-admin-token-8b2")] {
        for path in ["/api/v1/streams", "/api/v1/capabilities"] {
            let (status, body) = get_auth(admin, path, token);
            assert_eq!(status, 401, "GET {path} with {token:?}: {body}");
            assert!(!body.contains(TOKEN), "{body}");
        }
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, body) = get_auth(admin, path, None);
        assert_eq!(status, 200, "admin GET {path}: {body}");
    }

    // Each path on one listener only.
    for path in [
        "/api/v1/streams",
        "/api/v1/capabilities",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        let (status, body) = get_auth(server.http, path, Some(TOKEN));
        assert_eq!(status, 404, "public GET {path}: {body}");
        assert!(!body.contains(&admin.to_string()), "{body}");
    }
    // A Prometheus job or a probe still pointed at the public listener: the log says, once,
    // where those paths went.
    let logs = wait_until(
        Duration::from_secs(5),
        "the log line on the moved paths",
        || {
            let logs = server.logs();
            logs.contains("moved to the admin listener").then_some(logs)
        },
    );
    assert_eq!(
        logs.matches("moved to the admin listener").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains(&admin.to_string()), "{logs}");
    // The test-only fault hooks: on the admin listener (a bad name gets the hook's own 404), not
    // on the public one (the router's 404).
    let post = |addr: SocketAddr, path: &str| {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    };
    let hook = "/testing/faults/listener/nope";
    let on_admin = post(admin, hook);
    assert!(on_admin.contains("no such listener"), "{on_admin}");
    let on_public = post(server.http, hook);
    assert!(
        on_public.starts_with("HTTP/1.1 404") && !on_public.contains("no such listener"),
        "{on_public}"
    );
    let watch = format!("/watch/{STREAM}");
    for path in ["/", "/streams.json", watch.as_str(), master.as_str()] {
        assert_eq!(server.get(path).status, 200, "public GET {path}");
        assert_eq!(http_get(admin, path).status, 404, "admin GET {path}");
    }

    // Every public path: nothing names the publisher's address or the key.
    let mut texts = vec![
        ("/".to_owned(), server.get("/").body),
        ("/streams.json".to_owned(), server.get("/streams.json").body),
        (watch.clone(), server.get(&watch).body),
        (master.clone(), server.get(&master).body),
    ];
    for asset in ["/assets/watch.js", "/assets/player.css"] {
        texts.push((asset.to_owned(), server.get(asset).body));
    }
    for path in &rung_paths {
        texts.push((path.clone(), server.get(path).body));
        texts.push((
            format!("{path}?_HLS_skip=YES"),
            server.get(&format!("{path}?_HLS_skip=YES")).body,
        ));
    }
    let dir = rung_paths[0]
        .rsplit_once('/')
        .map_or("", |(d, _)| d)
        .to_owned();
    let segment = parse_media(&media)
        .segments
        .last()
        .map(|s| s.uri.clone())
        .expect("a segment");
    let mut binaries = Vec::new();
    for file in ["init.mp4".to_owned(), segment] {
        let path = format!("{dir}/{file}");
        let r = http_get_bytes(server.http, &path);
        assert_eq!(r.status, 200, "public GET {path}");
        binaries.push((path, r.body));
    }
    for (path, text) in &texts {
        for secret in [remote.as_str(), KEY, TOKEN, "remote_addr"] {
            assert!(
                !text.contains(secret),
                "public GET {path} contains {secret:?}:\n{text}"
            );
        }
    }
    for (path, bytes) in &binaries {
        for secret in [remote.as_str(), KEY, TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "public GET {path} contains {secret:?}"
            );
        }
    }
}
