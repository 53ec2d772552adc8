//! End-to-end SRT ingest: real libsrt callers (ffmpeg, GStreamer's srtsink, srt-live-transmit)
//! against the real binary, in every streamid dialect, several at once on one port, next to an
//! RTMP publisher; wrong keys, wrong passphrases and busy streams refused at the handshake; and
//! the HLS ladder an SRT publish gets.
//!
//! The tools are required: a missing ffmpeg, ffprobe, gst-launch-1.0 or srt-live-transmit fails
//! the test with a message (CI installs them with `scripts/install-deps.sh`).

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use support::{
    ffmpeg_srt, gst_aac_encoder, gst_has, has_video, require_ffmpeg_srt, require_tool, srt_addr,
    srt_url, video_frames, wait_until, ChildGuard, Server, TempDir,
};

const LIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The machines have two cores: one encoder-heavy test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A one-rung ladder (the source, repackaged) keeps the server's CPU low.
const LADDER: &str = r#"
[transcode]
preset = "ultrafast"
[[transcode.renditions]]
name = "source"
passthrough = true
"#;

/// Starts the server with `LADDER`, `extra` TOML and these `name=key` streams (each optionally
/// with a passphrase); returns it with the SRT address from its banner.
fn start(
    streams: &[(&str, &str, &str)],
    extra: &str,
    args: &[&str],
) -> (Server, SocketAddr, TempDir) {
    let dir = TempDir::new("srt-config");
    let mut toml = String::from(LADDER);
    toml.push_str(extra);
    for (name, key, passphrase) in streams {
        toml.push_str(&format!(
            "[[streams]]\nname = \"{name}\"\nkey = \"{key}\"\n"
        ));
        if !passphrase.is_empty() {
            toml.push_str(&format!("passphrase = \"{passphrase}\"\n"));
        }
    }
    let path = dir.file("ferrocast.toml");
    std::fs::write(&path, toml).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    let srt = srt_addr(&server);
    (server, srt, dir)
}

fn rejections(server: &Server, reason: &str) -> f64 {
    server.metrics().value(
        "ferrocast_ingest_rejections_total",
        &[("protocol", "srt"), ("reason", reason)],
    )
}

/// A plain HTTP GET returning the raw body (segments are binary), bounded by 10 s.
fn get_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let timeout = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, timeout).expect("connect for GET");
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    out
}

/// The first URI line (not a tag) of a playlist.
fn first_uri(playlist: &str) -> Option<String> {
    playlist
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

/// Waits for the master playlist of `name`, then for one segment of its first rung, and checks
/// with ffprobe that init + segment hold H.264 video and AAC audio.
fn check_hls(server: &Server, name: &str) {
    require_tool("ffprobe", "-version");
    let master = wait_until(
        Duration::from_secs(30),
        &format!("the master playlist of {name}"),
        || {
            let (status, body) = get_bytes(server.http, &format!("/live/{name}/index.m3u8"));
            (status == 200).then(|| String::from_utf8_lossy(&body).to_string())
        },
    );
    assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
    let media_uri = first_uri(&master).expect("a variant in the master playlist");
    let rung_dir = media_uri.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let base = format!("/live/{name}/{rung_dir}");
    let (media, segment) = wait_until(
        Duration::from_secs(30),
        &format!("a segment of {name}/{rung_dir}"),
        || {
            let (status, body) = get_bytes(server.http, &format!("/live/{name}/{media_uri}"));
            let text = String::from_utf8_lossy(&body).to_string();
            let seg = first_uri(&text)?;
            (status == 200).then_some((text, seg))
        },
    );
    assert!(media.contains("#EXT-X-MAP:URI="), "{media}");
    let init = media
        .split("#EXT-X-MAP:URI=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let mut file = Vec::new();
    for uri in [&init, &segment] {
        let (status, body) = get_bytes(server.http, &format!("{base}/{uri}"));
        assert_eq!(status, 200, "GET {base}/{uri}");
        file.extend_from_slice(&body);
    }
    let path = server.dir.file(&format!("{name}-probe.mp4"));
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    let codecs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && codecs.contains("h264") && codecs.contains("aac"),
        "ffprobe of {name}'s init + {segment}: {codecs:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A publisher that must be refused: it exits non-zero soon, saying it was rejected.
fn expect_rejected(publisher: &mut ChildGuard, server: &Server, stream: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        assert_eq!(
            server.stream(stream)["live"],
            false,
            "a refused publisher went live"
        );
        if let Some(s) = publisher.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{} still running 15 s after a refusal\n{}\nserver log:\n{}",
            publisher.name,
            publisher.stderr(),
            server.logs()
        );
        thread::sleep(Duration::from_millis(100));
    };
    let stderr = publisher.stderr();
    assert!(!status.success(), "{} exited 0", publisher.name);
    assert!(
        stderr.to_ascii_lowercase().contains("reject"),
        "{}'s error does not mention a rejection: {stderr}",
        publisher.name
    );
    stderr
}

#[test]
fn ffmpeg_publishes_in_every_streamid_dialect_at_once_with_hls() {
    let _serial = serial();
    require_ffmpeg_srt();
    let (server, srt, _config) = start(
        &[
            ("ac", "e2e-srt-ac", ""),
            ("mtx", "e2e-srt-mtx", ""),
            ("path", "e2e-srt-path", ""),
            ("bare", "e2e-srt-bare", ""),
        ],
        "",
        &[],
    );
    // One port, four callers at once, each in its own dialect and picture size.
    let dialects = [
        ("ac", "#!::r=live/e2e-srt-ac,m=publish", "320x240"),
        ("mtx", "publish:live/e2e-srt-mtx", "256x144"),
        ("path", "live/e2e-srt-path", "352x288"),
        ("bare", "e2e-srt-bare", "384x216"),
    ];
    let mut publishers: Vec<ChildGuard> = dialects
        .iter()
        .map(|(name, streamid, size)| {
            ffmpeg_srt(
                &server.dir,
                name,
                &srt_url(srt, streamid, "&latency=200000"),
                size,
                12,
            )
        })
        .collect();
    for (name, _, size) in dialects {
        let (w, h) = size.split_once('x').unwrap();
        let (w, h) = (w.parse().unwrap(), h.parse().unwrap());
        let p = server.wait_live(name, LIVE_TIMEOUT, |p| {
            has_video(p, w, h) && p["audio"]["codec"] == "aac"
        });
        assert_eq!(p["protocol"], "srt", "{name}: {p}");
        assert_eq!(p["video"]["codec"], "h264", "{name}: {p}");
        assert_eq!(p["audio"]["sample_rate"], 48000, "{name}: {p}");
        assert!(
            p["remote_addr"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.1:"),
            "{p}"
        );
    }
    let m = server.metrics();
    assert_eq!(
        m.value("ferrocast_active_publishers", &[("protocol", "srt")]),
        4.0,
        "{}",
        m.text
    );
    check_hls(&server, "ac");

    // Link statistics arrive once a second.
    let m = wait_until(Duration::from_secs(5), "SRT link metrics", || {
        let m = server.metrics();
        (m.value(
            "ferrocast_srt_packets_received_total",
            &[("stream", "path")],
        ) > 0.0
            && m.value(
                "ferrocast_srt_receive_bitrate_bits_per_second",
                &[("stream", "path")],
            ) > 0.0)
            .then_some(m)
    });
    assert!(
        m.text
            .contains("ferrocast_srt_rtt_seconds{stream=\"path\"}"),
        "{}",
        m.text
    );

    for p in &mut publishers {
        let status = p.expect_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "{} failed: {status:?}\n{}",
            p.name,
            p.stderr()
        );
    }
    for (name, _, _) in dialects {
        server.wait_not_live(name, Duration::from_secs(15));
        assert!(
            video_frames(&server, name) >= 200.0,
            "{name}: {}",
            server.metrics().text
        );
    }
    let m = server.metrics();
    assert_eq!(
        m.value("ferrocast_ingest_ts_continuity_errors_total", &[]),
        0.0,
        "a loopback link lost packets?\n{}",
        m.text
    );
    assert!(
        m.value(
            "ferrocast_ingest_connections_total",
            &[("protocol", "srt"), ("result", "published")]
        ) >= 4.0,
        "{}",
        m.text
    );
    let logs = server.logs();
    assert!(
        !logs.contains("e2e-srt-"),
        "keys must never be logged:\n{logs}"
    );
}

#[test]
fn gstreamer_srtsink_publish_goes_live() {
    let _serial = serial();
    require_tool("gst-launch-1.0", "--version");
    for el in [
        "videotestsrc",
        "x264enc",
        "h264parse",
        "mpegtsmux",
        "aacparse",
        "srtsink",
    ] {
        assert!(
            gst_has(el),
            "GStreamer element {el} is missing; install the plugins with `make deps`"
        );
    }
    let (server, srt, _config) = start(&[("cam", "e2e-srt-gst", "")], "", &[]);
    let aac = gst_aac_encoder();
    let pipeline = format!(
        "videotestsrc num-buffers=240 is-live=true ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! mpegtsmux name=m alignment=7 \
         ! srtsink uri=srt://127.0.0.1:{}?mode=caller streamid=publish:live/e2e-srt-gst:alice:pw latency=200 \
         audiotestsrc is-live=true num-buffers=400 ! audioconvert ! {aac} ! aacparse ! m.",
        srt.port()
    );
    let stderr = server.dir.file("gst.stderr");
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-e")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stdout(File::create(server.dir.file("gst.stdout")).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let mut gst = ChildGuard::spawn("gst-launch-1.0 srtsink", &mut cmd, Some(stderr));
    let p = server.wait_live("cam", LIVE_TIMEOUT, |p| {
        has_video(p, 640, 360) && p["audio"]["codec"] == "aac"
    });
    assert_eq!(p["protocol"], "srt", "{p}");
    assert_eq!(p["video"]["codec"], "h264", "{p}");
    let status = gst.expect_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "srtsink publish failed: {status:?}\n{}",
        gst.stderr()
    );
    server.wait_not_live("cam", Duration::from_secs(15));
    assert!(
        video_frames(&server, "cam") >= 200.0,
        "{}",
        server.metrics().text
    );
}

#[test]
fn srt_live_transmit_relays_a_transport_stream() {
    let _serial = serial();
    require_tool("ffmpeg", "-version");
    require_tool("srt-live-transmit", "-version");
    let (server, srt, _config) = start(&[("relay", "e2e-srt-slt", "")], "", &[]);
    // ffmpeg writes TS to stdout; srt-live-transmit reads stdin (file://con) and calls us.
    // It does not exit at the end of its input, hence -t (seconds).
    let stderr = server.dir.file("slt.stderr");
    let script = format!(
        "ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30 \
         -f lavfi -i sine=frequency=440:sample_rate=48000 -t 8 -c:v libx264 -preset ultrafast -tune zerolatency \
         -g 30 -pix_fmt yuv420p -c:a aac -b:a 96k -f mpegts - \
         | srt-live-transmit -q -t:14 file://con '{}'",
        srt_url(srt, "live/e2e-srt-slt", "")
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap());
    let mut relay = ChildGuard::spawn("ffmpeg | srt-live-transmit", &mut cmd, Some(stderr));
    let p = server.wait_live("relay", LIVE_TIMEOUT, |p| {
        has_video(p, 320, 240) && p["audio"]["codec"] == "aac"
    });
    assert_eq!(p["protocol"], "srt", "{p}");
    // srt-live-transmit gives up after -t; the stream ends then.
    relay.expect_exit(Duration::from_secs(30));
    server.wait_not_live("relay", Duration::from_secs(15));
    assert!(
        video_frames(&server, "relay") >= 200.0,
        "{}",
        server.metrics().text
    );
}

#[test]
fn wrong_key_wrong_passphrase_and_busy_stream_are_rejected_at_the_handshake() {
    let _serial = serial();
    require_ffmpeg_srt();
    let (server, srt, _config) = start(
        &[
            ("open", "e2e-srt-open", ""),
            ("own", "e2e-srt-own", "stream-passphrase-1"),
        ],
        "[srt]\npassphrase = \"listener-passphrase-1\"\n",
        &[],
    );
    let dir = &server.dir;

    // An unknown key.
    let mut p = ffmpeg_srt(
        dir,
        "badkey",
        &srt_url(srt, "live/e2e-wrong", "&passphrase=listener-passphrase-1"),
        "320x240",
        5,
    );
    expect_rejected(&mut p, &server, "open");
    assert!(
        rejections(&server, "bad_key") >= 1.0,
        "{}",
        server.metrics().text
    );

    // A play request.
    let mut p = ffmpeg_srt(
        dir,
        "mode",
        &srt_url(
            srt,
            "#!::r=live/e2e-srt-open,m=request",
            "&passphrase=listener-passphrase-1",
        ),
        "320x240",
        5,
    );
    expect_rejected(&mut p, &server, "open");
    assert!(
        rejections(&server, "bad_mode") >= 1.0,
        "{}",
        server.metrics().text
    );

    // The listener-wide passphrase, wrong and missing; then the per-stream one, where the
    // listener's is wrong.
    let mut p = ffmpeg_srt(
        dir,
        "badpass",
        &srt_url(srt, "live/e2e-srt-open", "&passphrase=not-the-passphrase"),
        "320x240",
        5,
    );
    expect_rejected(&mut p, &server, "open");
    let mut p = ffmpeg_srt(
        dir,
        "nopass",
        &srt_url(srt, "live/e2e-srt-open", ""),
        "320x240",
        5,
    );
    expect_rejected(&mut p, &server, "open");
    let mut p = ffmpeg_srt(
        dir,
        "listenerpass",
        &srt_url(srt, "live/e2e-srt-own", "&passphrase=listener-passphrase-1"),
        "320x240",
        5,
    );
    expect_rejected(&mut p, &server, "own");
    assert!(
        rejections(&server, "bad_passphrase") >= 3.0,
        "{}",
        server.metrics().text
    );

    // The right passphrases go live, encrypted.
    let open = ffmpeg_srt(
        dir,
        "open",
        &srt_url(
            srt,
            "live/e2e-srt-open",
            "&passphrase=listener-passphrase-1",
        ),
        "320x240",
        20,
    );
    let _own = ffmpeg_srt(
        dir,
        "own",
        &srt_url(
            srt,
            "live/e2e-srt-own",
            "&passphrase=stream-passphrase-1&pbkeylen=32",
        ),
        "256x144",
        20,
    );
    server.wait_live("open", LIVE_TIMEOUT, |p| has_video(p, 320, 240));
    server.wait_live("own", LIVE_TIMEOUT, |p| has_video(p, 256, 144));

    // A second publisher of a stream that is sending is refused (SRT_REJX_CONFLICT).
    let mut p = ffmpeg_srt(
        dir,
        "busy",
        &srt_url(
            srt,
            "live/e2e-srt-open",
            "&passphrase=listener-passphrase-1",
        ),
        "320x240",
        5,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while p.try_wait().is_none() {
        assert!(
            Instant::now() < deadline,
            "the second publisher was not refused\n{}",
            p.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!p.try_wait().unwrap().success());
    assert!(
        p.stderr().to_ascii_lowercase().contains("reject"),
        "{}",
        p.stderr()
    );
    assert!(
        rejections(&server, "already_live") >= 1.0,
        "{}",
        server.metrics().text
    );
    assert_eq!(
        server.stream("open")["live"],
        true,
        "the first publisher was disturbed"
    );
    let f0 = video_frames(&server, "open");
    wait_until(
        Duration::from_secs(5),
        "the first publisher's frames",
        || (video_frames(&server, "open") > f0).then_some(()),
    );
    open.signal("KILL");
    let logs = server.logs();
    for secret in [
        "e2e-wrong",
        "e2e-srt-open",
        "passphrase-1",
        "not-the-passphrase",
    ] {
        assert!(!logs.contains(secret), "{secret:?} was logged:\n{logs}");
    }
}

#[test]
fn rtmp_and_srt_publishers_at_once() {
    let _serial = serial();
    require_ffmpeg_srt();
    let (server, srt, _config) = start(
        &[
            ("viartmp", "e2e-mix-rtmp", ""),
            ("viasrt", "e2e-mix-srt", ""),
        ],
        "",
        &[],
    );
    let mut rtmp = support::ffmpeg_publish(
        &server.dir,
        "rtmp",
        &server.rtmp_url("e2e-mix-rtmp"),
        "320x240",
        12,
    );
    let mut srt_pub = ffmpeg_srt(
        &server.dir,
        "srt",
        &srt_url(srt, "live/e2e-mix-srt", ""),
        "256x144",
        12,
    );
    let a = server.wait_live("viartmp", LIVE_TIMEOUT, |p| has_video(p, 320, 240));
    let b = server.wait_live("viasrt", LIVE_TIMEOUT, |p| has_video(p, 256, 144));
    assert_eq!(a["protocol"], "rtmp", "{a}");
    assert_eq!(b["protocol"], "srt", "{b}");
    let m = server.metrics();
    assert_eq!(
        m.value("ferrocast_active_publishers", &[("protocol", "rtmp")]),
        1.0
    );
    assert_eq!(
        m.value("ferrocast_active_publishers", &[("protocol", "srt")]),
        1.0
    );

    // An SRT caller for the RTMP-published stream is refused at the handshake.
    let mut p = ffmpeg_srt(
        &server.dir,
        "steal",
        &srt_url(srt, "live/e2e-mix-rtmp", ""),
        "320x240",
        5,
    );
    let status = p.expect_exit(Duration::from_secs(15));
    assert!(
        !status.success(),
        "an SRT caller took a stream RTMP is sending"
    );
    assert_eq!(server.stream("viartmp")["publisher"]["protocol"], "rtmp");

    for p in [&mut rtmp, &mut srt_pub] {
        let status = p.expect_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "{} failed: {status:?}\n{}",
            p.name,
            p.stderr()
        );
    }
    server.wait_not_live("viartmp", Duration::from_secs(15));
    server.wait_not_live("viasrt", Duration::from_secs(15));
    for name in ["viartmp", "viasrt"] {
        assert!(
            video_frames(&server, name) >= 250.0,
            "{name}: {}",
            server.metrics().text
        );
    }
}
