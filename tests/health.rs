//! `/healthz` and `/readyz` against real failures: the listener tasks are killed through the
//! fault hook (debug builds with `TESTING_FERROCAST_FAULTS=1` only), while real publishers
//! (ffmpeg over RTMP and over SRT) show that live connections outlast their listener's task and
//! that a listener which comes back accepts callers again.

#[path = "support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{ffmpeg_publish, ffmpeg_srt, srt_addr, srt_url, video_frames, wait_until, Server};

const LIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Status and JSON body of a health endpoint.
fn health(server: &Server, path: &str) -> (u16, Value) {
    let r = server.get_admin(path);
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    (r.status, serde_json::from_str(&r.body).expect("JSON body"))
}

fn wait_health(server: &Server, what: &str, want: impl Fn(u16, &Value) -> bool) -> Value {
    wait_until(Duration::from_secs(15), what, || {
        let (status, body) = health(server, "/healthz");
        want(status, &body).then_some(body)
    })
}

#[test]
fn a_killed_listener_fails_health_until_it_is_back_and_live_publishes_survive() {
    let server = Server::start_with_env(
        &[
            "--stream",
            "rtmp-stream=e2e-health-rtmp",
            "--stream",
            "srt-stream=e2e-health-srt",
        ],
        &[("TESTING_FERROCAST_FAULTS", "1")],
    );
    let (status, body) = health(&server, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for l in ["http", "rtmp", "srt"] {
        assert_eq!(body["listeners"][l]["state"], "up", "{body}");
        assert_eq!(body["listeners"][l]["restarts"], 0, "{body}");
    }
    let (status, body) = health(&server, "/readyz");
    assert_eq!((status, &body["status"]), (200, &Value::from("ready")));

    // A live RTMP publish, which must outlast both kills.
    let mut rtmp_pub = ffmpeg_publish(
        &server.dir,
        "rtmp",
        &server.rtmp_url("e2e-health-rtmp"),
        "320x240",
        40,
    );
    let publisher = server.wait_live("rtmp-stream", LIVE_TIMEOUT, |p| p["video"]["width"] == 320);
    let (status, body) = health(&server, "/readyz");
    assert_eq!(status, 200, "{body}");
    wait_until(LIVE_TIMEOUT, "a running pipeline in the report", || {
        (health(&server, "/readyz").1["pipelines"]["running"] == 1).then_some(())
    });

    // SRT's task dies and stays down for 3 s: both endpoints fail and name it.
    assert_eq!(
        server.post("/testing/faults/listener/srt?down_for_ms=3000"),
        202
    );
    let down = wait_health(&server, "/healthz to fail with srt down", |s, b| {
        s == 503 && b["listeners"]["srt"]["state"] == "down"
    });
    assert_eq!(down["status"], "listener down");
    assert_eq!(down["listeners"]["rtmp"]["state"], "up", "{down}");
    let (status, body) = health(&server, "/readyz");
    assert_eq!(status, 503, "{body}");
    // It comes back by itself, and counts the restart.
    let back = wait_health(&server, "/healthz to pass again", |s, _| s == 200);
    assert_eq!(back["listeners"]["srt"]["restarts"], 1, "{back}");
    assert_eq!(health(&server, "/readyz").0, 200);
    // An SRT caller is accepted again.
    let srt = srt_addr(&server);
    let _srt_pub = ffmpeg_srt(
        &server.dir,
        "srt",
        &srt_url(srt, "e2e-health-srt", ""),
        "320x240",
        20,
    );
    server.wait_live("srt-stream", LIVE_TIMEOUT, |p| p["protocol"] == "srt");

    // RTMP's task dies for 2 s: new connections are refused meanwhile, the live publish is not
    // touched (its connection is a task of its own), and the port serves again afterwards.
    assert_eq!(
        server.post("/testing/faults/listener/rtmp?down_for_ms=2000"),
        202
    );
    wait_health(&server, "/healthz to fail with rtmp down", |s, b| {
        s == 503 && b["listeners"]["rtmp"]["state"] == "down"
    });
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        refused = TcpStream::connect_timeout(&server.rtmp, Duration::from_millis(200)).is_err();
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        refused,
        "the RTMP port accepted while its listener was down"
    );
    let back = wait_health(
        &server,
        "/healthz to pass after the rtmp restart",
        |s, _| s == 200,
    );
    assert_eq!(back["listeners"]["rtmp"]["restarts"], 1, "{back}");
    TcpStream::connect_timeout(&server.rtmp, Duration::from_secs(2))
        .expect("the RTMP port accepts again");

    let frames = video_frames(&server, "rtmp-stream");
    wait_until(
        Duration::from_secs(5),
        "the RTMP publish still sending",
        || (video_frames(&server, "rtmp-stream") > frames).then_some(()),
    );
    assert_eq!(
        server.stream("rtmp-stream")["publisher"]["remote_addr"],
        publisher["remote_addr"],
        "the RTMP publish was replaced"
    );
    assert!(
        rtmp_pub.try_wait().is_none(),
        "the RTMP publisher was dropped: {}",
        rtmp_pub.stderr()
    );
}

#[test]
fn without_the_environment_there_is_no_fault_hook() {
    let server = Server::start(&[]);
    assert_eq!(
        server.post("/testing/faults/listener/rtmp?down_for_ms=1000"),
        404
    );
    let (status, body) = health(&server, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["listeners"]["rtmp"]["restarts"], 0);
}
