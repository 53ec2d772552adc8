//! Accelerator policy end to end on a machine without a GPU (this one, and CI): `nvidia` with
//! `fail` refuses publishes with the reason; `auto` plays in software and says so in the API and
//! the metrics; a "hardware" encoder that fails mid-stream (the test-only fault encoder, enabled
//! by `TESTING_FERROCAST_FAULTS=1`) is replaced by software and the playlist continues with a
//! discontinuity, or the stream ends, as `on_accelerator_failure` says.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::Value;
use support::{ffmpeg_publish, wait_until, Server};

const KEY: &str = "gpu-policy-key-0123456789";

fn server(extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = vec![
        "--stream",
        "cam=gpu-policy-key-0123456789",
        "--set",
        "transcode.preset=ultrafast",
        "--set",
        "hls.segment_duration=1s",
        "--set",
        "hls.part_duration=250ms",
    ];
    args.extend_from_slice(extra);
    Server::start_with_env(&args, env)
}

/// The 360p rung's media playlist URI, from the master playlist, once the ladder is up.
fn media_uri(s: &Server) -> String {
    let master = wait_until(Duration::from_secs(30), "the master playlist", || {
        let r = s.get("/live/cam/index.m3u8");
        (r.status == 200).then_some(r.body)
    });
    let uri = master
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("360p"))
        .unwrap_or_else(|| panic!("no 360p rung in the master playlist:\n{master}"))
        .to_owned();
    format!("/live/cam/{uri}")
}

#[test]
fn nvidia_with_fail_refuses_the_publish_with_the_reason() {
    let s = server(
        &[
            "--set",
            "transcode.accelerator=nvidia",
            "--set",
            "transcode.on_accelerator_failure=fail",
        ],
        &[],
    );
    let caps = s.get_json("/api/v1/capabilities");
    assert_eq!(caps["policy"], "nvidia");
    assert_eq!(caps["on_failure"], "fail");
    let refusal = caps["refusal"]
        .as_str()
        .expect("a standing refusal")
        .to_owned();
    assert!(refusal.contains("nvh264dec"), "{refusal}");

    let mut ffmpeg = ffmpeg_publish(&s.dir, "refused", &s.rtmp_url(KEY), "640x360", 8);
    let status = ffmpeg
        .wait_timeout(Duration::from_secs(15))
        .expect("the publisher is disconnected, not left streaming");
    assert!(!status.success(), "ffmpeg should see the publish fail");
    // The publisher hears why (an onStatus error that ffmpeg prints as "Server error: ...").
    let said = std::fs::read_to_string(s.dir.file("ffmpeg-refused.stderr")).unwrap_or_default();
    assert!(
        said.contains("Refused") && said.contains("nvh264dec"),
        "the publisher should be told the reason: {said}"
    );
    let logs = s.logs();
    assert!(logs.contains("publish refused"), "{logs}");
    assert!(logs.contains("nvh264dec is not registered"), "{logs}");
    assert_ne!(
        s.get("/live/cam/index.m3u8").status,
        200,
        "nothing was transcoded"
    );
    let m = s.metrics();
    assert!(
        m.value(
            "ferrocast_accelerator_refusals_total",
            &[("reason", "unavailable")]
        ) >= 1.0
    );
    assert_eq!(
        m.value(
            "ferrocast_accelerator_available",
            &[("stage", "decode"), ("kind", "nvidia")]
        ),
        0.0
    );
}

#[test]
fn auto_plays_in_software_and_reports_it() {
    let s = server(&[], &[]);
    let mut ffmpeg = ffmpeg_publish(&s.dir, "auto", &s.rtmp_url(KEY), "640x360", 6);
    let uri = media_uri(&s);
    wait_until(Duration::from_secs(20), "segments on the 360p rung", || {
        let r = s.get(&uri);
        (r.status == 200 && r.body.contains("#EXTINF")).then_some(())
    });
    let caps = s.get_json("/api/v1/capabilities");
    assert_eq!(caps["policy"], "auto");
    assert_eq!(caps["selection"]["encode"]["backend"], "software");
    assert_eq!(caps["selection"]["decode"]["factory"], "avdec_h264");
    let reasons: Vec<&str> = caps["selection"]["fallbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("nvh264enc is not registered")),
        "{reasons:?}"
    );
    let stream = &caps["streams"][0];
    assert_eq!(stream["name"], "cam");
    let rung = stream["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "360p")
        .expect("360p rung");
    assert_eq!(rung["backend"], "software");
    assert_eq!(rung["encoder"], "x264enc");
    let m = s.metrics();
    assert_eq!(
        m.value(
            "ferrocast_accelerator_available",
            &[("stage", "encode"), ("kind", "software")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "ferrocast_stream_backend",
            &[
                ("stream", "cam"),
                ("rung", "360p"),
                ("stage", "encode"),
                ("backend", "software")
            ]
        ),
        1.0
    );
    assert_eq!(m.value("ferrocast_encoder_sessions", &[]), 0.0);
    let _ = ffmpeg.wait_timeout(Duration::from_secs(15));
}

fn fallbacks(s: &Server, reason: &str) -> f64 {
    s.metrics().value(
        "ferrocast_accelerator_fallbacks_total",
        &[("reason", reason)],
    )
}

#[test]
fn failing_hardware_encoder_falls_back_and_the_playlist_continues() {
    let s = server(
        &[
            "--set",
            "transcode.test_fault_encoder=identity-fail:60",
            "--set",
            "nvidia.max_encode_sessions=4",
        ],
        &[("TESTING_FERROCAST_FAULTS", "1")],
    );
    let mut ffmpeg = ffmpeg_publish(&s.dir, "fault", &s.rtmp_url(KEY), "640x360", 9);
    let uri = media_uri(&s);
    // The stand-in encoder fails after 2 s of frames; software takes over on the same playlist.
    let playlist = wait_until(
        Duration::from_secs(40),
        "a discontinuity and segments after it",
        || {
            let r = s.get(&uri);
            let body = r.body;
            let after = body.split("#EXT-X-DISCONTINUITY\n").nth(1)?;
            (after.matches("#EXTINF").count() >= 2).then_some(body)
        },
    );
    eprintln!("{playlist}");
    assert!(fallbacks(&s, "runtime_error") >= 1.0);
    let logs = s.logs();
    assert!(logs.contains("rebuilding the stream in software"), "{logs}");
    let caps = s.get_json("/api/v1/capabilities");
    let rung = caps["streams"][0]["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "360p")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(rung["backend"], "software", "{caps}");
    assert!(
        rung["fallback"]
            .as_str()
            .unwrap_or("")
            .contains("runtime fallback"),
        "{rung}"
    );
    assert_eq!(
        caps["encoder_sessions"]["in_use"], 0,
        "the failed pipeline's session is back"
    );
    // The publisher never noticed.
    let status = ffmpeg
        .wait_timeout(Duration::from_secs(20))
        .expect("ffmpeg ends");
    assert!(status.success(), "the publish survived the fallback");
}

#[test]
fn failing_hardware_encoder_ends_the_stream_under_fail() {
    let s = server(
        &[
            "--set",
            "transcode.test_fault_encoder=identity-fail:30",
            "--set",
            "transcode.on_accelerator_failure=fail",
        ],
        &[("TESTING_FERROCAST_FAULTS", "1")],
    );
    let mut ffmpeg = ffmpeg_publish(&s.dir, "fault-fail", &s.rtmp_url(KEY), "640x360", 10);
    let status = ffmpeg
        .wait_timeout(Duration::from_secs(20))
        .expect("the publish is ended by the server");
    assert!(!status.success());
    let logs = s.logs();
    assert!(
        logs.contains("on_accelerator_failure = \"fail\"; ending the stream"),
        "{logs}"
    );
    assert!(
        s.metrics().value(
            "ferrocast_accelerator_refusals_total",
            &[("reason", "runtime_error")]
        ) >= 1.0
    );
    assert_eq!(fallbacks(&s, "runtime_error"), 0.0);
}

#[test]
fn the_fault_knob_is_ignored_without_the_test_environment() {
    let s = server(
        &["--set", "transcode.test_fault_encoder=identity-fail"],
        &[],
    );
    let caps = s.get_json("/api/v1/capabilities");
    assert_eq!(caps["selection"]["encode"]["factory"], "x264enc", "{caps}");
    assert!(s.logs().contains("is ignored: it is a testing knob"));
}
