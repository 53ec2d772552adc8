//! End-to-end MP3 audio: an ffmpeg publish with MP3 audio over RTMP is accepted, its audio is
//! encoded to AAC once, and every rung's CMAF carries that AAC (checked with ffprobe on the
//! served init segment plus media segments).

#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::hls::{parse_media, MediaPlaylist};
use support::{require_tool, wait_until, ChildGuard, Server, TempDir};

const STREAM: &str = "mp3";
const KEY: &str = "e2e-mp3-key";

/// Two rungs: the source repackaged, and one cheap x264 encode.
const LADDER: &str = support::TWO_RUNG_LADDER;

/// ffmpeg publishing 640x360 H.264 with 44.1 kHz MP3 audio for 8 s.
fn publish_mp3(dir: &TempDir, url: &str) -> ChildGuard {
    let stderr = dir.file("ffmpeg-mp3.stderr");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine", "-t", "8"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
        .args(["-pix_fmt", "yuv420p"])
        .args(["-c:a", "libmp3lame", "-ar", "44100"])
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("ffmpeg stderr file"));
    ChildGuard::spawn("ffmpeg mp3", &mut cmd, Some(stderr))
}

fn playlist(server: &Server, rung: &str) -> Option<MediaPlaylist> {
    let r = server.get(&format!("/live/{STREAM}/{rung}/index.m3u8"));
    (r.status == 200).then(|| parse_media(&r.body))
}

#[test]
fn mp3_publish_is_served_as_aac_in_every_rung() {
    require_tool("ffmpeg", "-version");
    require_tool("ffprobe", "-version");
    let config = TempDir::new("mp3-config");
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, LADDER).expect("write config");
    let path = path.display().to_string();
    let stream = format!("{STREAM}={KEY}");
    let server = Server::start(&[
        "--config",
        &path,
        "--stream",
        &stream,
        "--set",
        "hls.segment_duration=2s",
    ]);
    let _ffmpeg = publish_mp3(&server.dir, &server.rtmp_url(KEY));

    for rung in ["source", "240p"] {
        let pl = wait_until(
            Duration::from_secs(40),
            &format!("{rung} playlist with a segment"),
            || playlist(&server, rung).filter(|p| p.map_uri.is_some() && !p.segments.is_empty()),
        );
        let mut bytes = Vec::new();
        let init = pl.map_uri.clone().unwrap();
        let r = server.get_bytes(&format!("/live/{STREAM}/{rung}/{init}"));
        assert_eq!(r.status, 200, "{rung}/{init}");
        bytes.extend_from_slice(&r.body);
        let seg = &pl.segments[0].uri;
        let r = server.get_bytes(&format!("/live/{STREAM}/{rung}/{seg}"));
        assert_eq!(r.status, 200, "{rung}/{seg}");
        bytes.extend_from_slice(&r.body);
        let file = server.dir.file(&format!("{rung}.mp4"));
        std::fs::write(&file, &bytes).expect("write media");

        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_streams", "-of", "compact"])
            .arg(&file)
            .output()
            .expect("run ffprobe");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ffprobe {rung}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("codec_name=h264"), "{rung}: {text}");
        assert!(
            text.contains("codec_name=aac") && text.contains("profile=LC"),
            "{rung}: MP3 became AAC-LC: {text}\nserver log:\n{}",
            server.logs()
        );
    }

    let master = server.get(&format!("/live/{STREAM}/index.m3u8"));
    assert_eq!(master.status, 200);
    assert!(
        master.body.contains("mp4a.40.2"),
        "the master playlist names AAC-LC:\n{}",
        master.body
    );
    assert!(
        !server.logs().contains("Unsupported codec"),
        "MP3 is not refused:\n{}",
        server.logs()
    );
}
