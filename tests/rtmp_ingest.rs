//! End-to-end RTMP ingest: real publishers (ffmpeg, GStreamer's rtmp2sink and librtmp's
//! rtmpsink) against the real binary, wrong keys, publisher takeover, and hostile connections
//! next to a live stream.
//!
//! The tools are required: a missing ffmpeg or gst-launch-1.0 fails the test with a message
//! (CI installs them with `scripts/install-deps.sh`).

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    ffmpeg_publish, gst_aac_encoder, gst_has, has_video, require_tool, video_frames, wait_until,
    ChildGuard, Server, TempDir,
};

const LIVE_TIMEOUT: Duration = Duration::from_secs(15);

fn rejections(server: &Server, reason: &str) -> f64 {
    server.metrics().value(
        "ferrocast_ingest_rejections_total",
        &[("protocol", "rtmp"), ("reason", reason)],
    )
}

#[test]
fn ffmpeg_publish_goes_live_with_media_details_then_ends() {
    let server = Server::start(&["--stream", "main=e2e-key-main", "--log-format", "json"]);
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        "main",
        &server.rtmp_url("e2e-key-main"),
        "1280x720",
        8,
    );

    let p = server.wait_live("main", LIVE_TIMEOUT, |p| {
        has_video(p, 1280, 720)
            && p["audio"]["sample_rate"] == 48000
            && p["bitrate_bps"].as_f64().unwrap_or(0.0) > 0.0
    });
    assert_eq!(p["protocol"], "rtmp", "{p}");
    assert!(
        p["remote_addr"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:"),
        "{p}"
    );
    assert!(
        p["started_at"].as_str().is_some_and(|s| s.contains('T')),
        "{p}"
    );
    let v = &p["video"];
    assert_eq!(v["codec"], "h264", "{p}");
    assert!(
        v["codec_string"]
            .as_str()
            .unwrap_or("")
            .starts_with("avc1."),
        "{p}"
    );
    let fps = v["frame_rate"].as_f64().unwrap_or(0.0);
    assert!((29.0..=31.0).contains(&fps), "frame_rate {fps}: {p}");
    let a = &p["audio"];
    assert_eq!(a["codec"], "aac", "{p}");
    assert_eq!(a["codec_string"], "mp4a.40.2", "{p}");
    // lavfi's sine source is mono.
    assert_eq!(a["channels"], 1, "{p}");
    assert!(!server
        .get_admin("/api/v1/streams")
        .body
        .contains("e2e-key-main"));

    let m = server.metrics();
    assert_eq!(m.value("ferrocast_stream_live", &[("stream", "main")]), 1.0);
    assert_eq!(
        m.value("ferrocast_active_publishers", &[("protocol", "rtmp")]),
        1.0
    );

    let status = ffmpeg.expect_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "ffmpeg failed: {status:?}\n{}",
        ffmpeg.stderr()
    );
    server.wait_not_live("main", Duration::from_secs(10));

    let m = server.metrics();
    let frames = m.value(
        "ferrocast_ingest_frames_total",
        &[("stream", "main"), ("kind", "video")],
    );
    assert!(
        frames > 100.0,
        "only {frames} video frames counted\n{}",
        m.text
    );
    assert!(
        m.value(
            "ferrocast_ingest_frames_total",
            &[("stream", "main"), ("kind", "audio")]
        ) > 100.0
    );
    assert!(
        m.value(
            "ferrocast_ingest_bytes_total",
            &[("stream", "main"), ("kind", "video")]
        ) > 10_000.0
    );
    assert_eq!(m.value("ferrocast_stream_live", &[("stream", "main")]), 0.0);
    assert_eq!(
        m.value("ferrocast_active_publishers", &[("protocol", "rtmp")]),
        0.0
    );
    assert!(
        m.value(
            "ferrocast_ingest_connections_total",
            &[("protocol", "rtmp")]
        ) >= 1.0,
        "{}",
        m.text
    );

    // JSON log lines of the connection and of the stream's pipeline carry the stream name in
    // their spans; no line carries the key. The pipeline flushes on its own thread after the
    // publisher has gone (bounded by its EOS timeout).
    let logs = wait_until(
        Duration::from_secs(15),
        "the `transcoding finished` line",
        || {
            let logs = server.logs();
            logs.contains("transcoding finished").then_some(logs)
        },
    );
    assert!(
        !logs.contains("e2e-key-main"),
        "the key is in the log:\n{logs}"
    );
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let in_span = |span: &str, message: &str| {
        lines.iter().any(|l| {
            l["message"] == message
                && l["spans"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["name"] == span && s["stream"] == "main"))
        })
    };
    assert!(
        in_span("rtmp", "publish started"),
        "no `publish started` line in an rtmp span with stream=main:\n{logs}"
    );
    assert!(
        in_span("stream", "transcoding finished"),
        "no `transcoding finished` line in a stream span with stream=main:\n{logs}"
    );
}

/// Publishes 5 s of 640x360 test video and AAC audio through `sink` (gst-launch arguments: the
/// element, then its properties, one argument each, so a value may hold spaces).
fn gst_publish(dir: &TempDir, tag: &str, sink: &[String]) -> ChildGuard {
    require_tool("gst-launch-1.0", "--version");
    for el in [
        "videotestsrc",
        "x264enc",
        "h264parse",
        "flvmux",
        "audiotestsrc",
        "aacparse",
        &sink[0],
    ] {
        assert!(
            gst_has(el),
            "GStreamer element {el} is missing; install the plugins with `make deps`"
        );
    }
    let aac = gst_aac_encoder();
    let video = "videotestsrc num-buffers=150 is-live=true ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
                 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! h264parse ! flvmux name=m streamable=true !";
    let audio =
        format!("audiotestsrc is-live=true num-buffers=250 ! audioconvert ! {aac} ! aacparse ! m.");
    let stderr = dir.file(&format!("gst-{tag}.stderr"));
    let mut cmd = Command::new("gst-launch-1.0");
    // gst-launch escapes the spaces inside each argument, so every token is its own argument.
    cmd.arg("-e")
        .args(video.split_whitespace())
        .args(sink)
        .args(audio.split_whitespace())
        .stdin(Stdio::null())
        .stdout(File::create(dir.file(&format!("gst-{tag}.stdout"))).unwrap())
        .stderr(File::create(&stderr).unwrap());
    ChildGuard::spawn(&format!("gst-launch-1.0 ({tag})"), &mut cmd, Some(stderr))
}

fn gstreamer_publish_goes_live(tag: &str, sink_for: impl Fn(&str) -> Vec<String>) {
    let server = Server::start(&["--stream", "cam=e2e-key-cam"]);
    let sink = sink_for(&server.rtmp_url("e2e-key-cam"));
    let mut gst = gst_publish(&server.dir, tag, &sink);
    let p = server.wait_live("cam", LIVE_TIMEOUT, |p| {
        has_video(p, 640, 360) && p["audio"]["codec"] == "aac"
    });
    assert_eq!(p["video"]["codec"], "h264", "{p}");
    let status = gst.expect_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "{tag} publish failed: {status:?}\n{}\nserver log:\n{}",
        gst.stderr(),
        server.logs()
    );
    server.wait_not_live("cam", Duration::from_secs(10));
    assert!(
        video_frames(&server, "cam") >= 100.0,
        "{}",
        server.metrics().text
    );
}

#[test]
fn gstreamer_rtmp2sink_publish_goes_live() {
    gstreamer_publish_goes_live("rtmp2sink", |url| {
        vec!["rtmp2sink".into(), format!("location={url}")]
    });
}

#[test]
fn gstreamer_librtmp_rtmpsink_publish_goes_live() {
    // librtmp takes its options after the URL, separated by spaces, in the same string.
    gstreamer_publish_goes_live("rtmpsink", |url| {
        vec!["rtmpsink".into(), format!("location={url} live=1")]
    });
}

#[test]
fn wrong_key_is_refused_and_counted() {
    let server = Server::start(&["--stream", "main=e2e-right-key"]);
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        "wrong",
        &server.rtmp_url("e2e-wrong-key"),
        "320x240",
        5,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        assert_eq!(
            server.stream("main")["live"],
            false,
            "a wrong key went live"
        );
        if let Some(s) = ffmpeg.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "ffmpeg with a wrong key still running after 15 s\n{}\nserver log:\n{}",
            ffmpeg.stderr(),
            server.logs()
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "ffmpeg with a wrong key exited 0");
    assert_eq!(server.stream("main")["live"], false);
    assert!(
        rejections(&server, "bad_key") >= 1.0,
        "{}",
        server.metrics().text
    );
    assert!(
        !server.logs().contains("e2e-wrong-key"),
        "keys must never be logged"
    );
}

#[test]
fn second_publisher_is_refused_then_takes_over_a_silent_one() {
    let server = Server::start(&[
        "--stream",
        "main=e2e-key-takeover",
        "--set",
        "ingest.publisher_timeout=1s",
    ]);
    let url = server.rtmp_url("e2e-key-takeover");
    let mut a = ffmpeg_publish(&server.dir, "a", &url, "320x240", 60);
    let pa = server.wait_live("main", LIVE_TIMEOUT, |p| p["video"]["width"] == 320);
    let addr_a = pa["remote_addr"].as_str().unwrap().to_owned();

    // While A is sending, B is refused.
    let mut b = ffmpeg_publish(&server.dir, "b", &url, "320x240", 5);
    let status = b.expect_exit(Duration::from_secs(15));
    assert!(
        !status.success(),
        "a second publisher was accepted while the first was sending"
    );
    assert!(
        rejections(&server, "already_live") >= 1.0,
        "{}",
        server.metrics().text
    );
    assert_eq!(
        server.stream("main")["publisher"]["remote_addr"],
        addr_a.as_str()
    );

    // A's source playlist is live before A goes silent.
    let before = wait_until(LIVE_TIMEOUT, "a segment in A's source playlist", || {
        source_playlist(&server).filter(|p| !p.ended && p.last_msn().is_some())
    });
    let a_last = before.last_msn().unwrap();

    // A goes silent; after the 1 s publisher timeout, C takes over.
    a.signal("STOP");
    thread::sleep(Duration::from_secs(2));
    let _c = ffmpeg_publish(&server.dir, "c", &url, "320x240", 8);
    let pc = server.wait_live("main", LIVE_TIMEOUT, |p| {
        p["remote_addr"].as_str().is_some_and(|r| r != addr_a) && p["video"]["width"] == 320
    });
    assert!(pc["remote_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    a.signal("CONT");
    // The replaced publisher's connection is closed, so A fails on its next write.
    let status = a.expect_exit(Duration::from_secs(10));
    assert!(!status.success(), "the replaced publisher kept publishing");
    // C keeps the stream.
    let f0 = video_frames(&server, "main");
    wait_until(Duration::from_secs(5), "C's frames to be counted", || {
        (video_frames(&server, "main") > f0).then_some(())
    });
    assert_eq!(
        server.stream("main")["publisher"]["remote_addr"],
        pc["remote_addr"]
    );
    // The same playlist URL now serves C's media: the playlist A left open goes on, with one
    // discontinuity where C begins, sequence numbers without a gap, and segments a player can
    // fetch.
    let after = wait_until(
        LIVE_TIMEOUT,
        "a segment of C in the source playlist",
        || {
            source_playlist(&server).filter(|p| {
                !p.ended
                    && p.text
                        .split("#EXT-X-DISCONTINUITY\n")
                        .nth(1)
                        .is_some_and(|rest| rest.contains("\nseg-"))
            })
        },
    );
    let msns: Vec<u64> = after.segments.iter().map(|s| s.msn).collect();
    assert!(
        msns.windows(2).all(|w| w[1] == w[0] + 1) && msns[0] <= a_last + 1,
        "sequence numbers after the takeover (A's last was {a_last}): {msns:?}\n{}",
        after.text
    );
    let newest = after.segments.last().unwrap();
    let segment = server.get_bytes(&format!("/live/main/source/{}", newest.uri));
    assert_eq!(segment.status, 200, "{}", newest.uri);
    assert!(!segment.body.is_empty(), "{} is empty", newest.uri);
}

/// The stream's source media playlist, when one is served.
fn source_playlist(server: &Server) -> Option<support::hls::MediaPlaylist> {
    let r = server.get("/live/main/source/index.m3u8");
    (r.status == 200).then(|| support::hls::parse_media(&r.body))
}

/// Reads until the server closes the connection (EOF or reset), bounded.
fn expect_closed(mut s: TcpStream, what: &str, timeout: Duration) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return, // reset by the server: closed too
        }
        assert!(
            Instant::now() < deadline,
            "the server did not close the {what} connection within {timeout:?}"
        );
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to rtmp");
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// C0 + a simple-handshake C1: time, zero version, then filler.
fn c0c1() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend((0..1528u32).map(|i| (i * 7 + 1) as u8));
    v
}

#[test]
fn hostile_connections_are_closed_without_disturbing_a_live_stream() {
    let server = Server::start(&["--stream", "main=e2e-key-live"]);
    let _ffmpeg = ffmpeg_publish(
        &server.dir,
        "live",
        &server.rtmp_url("e2e-key-live"),
        "320x240",
        20,
    );
    server.wait_live("main", LIVE_TIMEOUT, |p| p["video"]["width"] == 320);
    let f0 = video_frames(&server, "main");
    let close_timeout = Duration::from_secs(5);

    // (a) Garbage from the first byte (version 0xFF is not RTMP).
    let mut s = connect(server.rtmp);
    let _ = s.write_all(&[0xFFu8; 4096]);
    expect_closed(s, "garbage", close_timeout);

    // (b) A handshake cut short, then a half-close.
    let mut s = connect(server.rtmp);
    let _ = s.write_all(&c0c1()[..200]);
    let _ = s.shutdown(Shutdown::Write);
    expect_closed(s, "truncated handshake", close_timeout);

    // (c) A good handshake, then a chunk header announcing a 16 MiB - 1 byte command message.
    let mut s = connect(server.rtmp);
    s.write_all(&c0c1()).unwrap();
    s.set_read_timeout(Some(close_timeout)).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    s.read_exact(&mut s0s1s2).expect("S0 S1 S2 from the server");
    assert_eq!(s0s1s2[0], 3, "S0 version");
    s.write_all(&s0s1s2[1..1537]).unwrap(); // C2 echoes S1
    let mut header = vec![0x03]; // fmt 0, chunk stream 3
    header.extend_from_slice(&[0, 0, 0]); // timestamp
    header.extend_from_slice(&[0xFF, 0xFF, 0xFF]); // message length: 16 MiB - 1
    header.push(20); // AMF0 command
    header.extend_from_slice(&[0, 0, 0, 0]); // message stream id
    header.extend_from_slice(&[0x02; 128]); // a first chunk of payload
    let _ = s.write_all(&header);
    expect_closed(s, "oversized message", close_timeout);

    // The live stream did not notice.
    assert_eq!(
        server.stream("main")["live"],
        true,
        "the live stream dropped"
    );
    wait_until(
        Duration::from_secs(5),
        "the live stream's frame counter to grow",
        || (video_frames(&server, "main") > f0).then_some(()),
    );
    let p = server.stream("main")["publisher"].clone();
    assert_eq!(p["protocol"], "rtmp", "{p}");
}

#[test]
fn sigterm_with_a_live_publisher_drains_and_exits_cleanly() {
    let mut server = Server::start(&["--stream", "main=e2e-key-drain", "--shutdown-grace", "3s"]);
    let mut ffmpeg = ffmpeg_publish(
        &server.dir,
        "drain",
        &server.rtmp_url("e2e-key-drain"),
        "320x240",
        30,
    );
    server.wait_live("main", LIVE_TIMEOUT, |p| p["video"]["width"] == 320);
    let t0 = Instant::now();
    server.process.signal("TERM");
    let status = server.process.expect_exit(Duration::from_secs(5));
    assert!(
        status.success(),
        "exit after SIGTERM with a live publisher: {status:?}\nlog:\n{}",
        server.logs()
    );
    assert!(t0.elapsed() <= Duration::from_secs(5));
    // The publisher is told and disconnected, so ffmpeg stops long before its 30 s.
    let status = ffmpeg.expect_exit(Duration::from_secs(10));
    assert!(
        !status.success(),
        "ffmpeg kept running after the server drained"
    );
}

/// A client that publishes and closes the stream again and again on one connection gets four
/// publishes, then a refusal and the close: each attempt may cost a webhook call.
#[test]
fn a_connection_that_keeps_publishing_is_closed_after_four_attempts() {
    use rtmp::amf0::Value;
    use rtmp::testing::TestClient;
    let server = Server::start(&["--stream", "main=e2e-key-loop"]);
    let mut s = TcpStream::connect(server.rtmp).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut heard = Vec::new();
    // Reads until `needle` has been heard `n` times, or the connection closes; false on close.
    let mut wait_for = |s: &mut TcpStream, needle: &str, n: usize| -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if String::from_utf8_lossy(&heard).matches(needle).count() >= n {
                return true;
            }
            let mut buf = [0u8; 4096];
            match s.read(&mut buf) {
                Ok(0) => return false,
                Ok(k) => heard.extend_from_slice(&buf[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return false,
            }
            assert!(Instant::now() < deadline, "no {needle:?} within 10 s");
        }
    };
    let mut client = TestClient::new();
    let mut hello = TestClient::handshake();
    hello.extend(client.connect("live"));
    s.write_all(&hello).unwrap();
    for round in 1..=4 {
        s.write_all(&client.create_and_publish("e2e-key-loop"))
            .unwrap();
        assert!(
            wait_for(&mut s, "NetStream.Publish.Start", round),
            "publish {round}"
        );
        let close = [
            Value::string("closeStream"),
            Value::Number(0.0),
            Value::Null,
        ];
        s.write_all(&client.command(1, &close)).unwrap();
        assert!(
            wait_for(&mut s, "NetStream.Unpublish.Success", round),
            "unpublish {round}"
        );
    }
    s.write_all(&client.create_and_publish("e2e-key-loop"))
        .unwrap();
    assert!(wait_for(&mut s, "Too many publish attempts.", 1));
    assert!(
        !wait_for(&mut s, "never said", 1),
        "the server closes the connection"
    );
    assert!(rejections(&server, "protocol_error") >= 1.0);
}
