//! A publisher for quirks no stock client produces on demand: it replays an FLV file that ffmpeg
//! wrote (real x264 and AAC), tag by tag over RTMP, each tag sent when a schedule says. Dropping
//! audio tags makes an audio gap; sending audio before its time makes audio arrive ahead of
//! video. The RTMP messages come from the `rtmp` crate's test client (what OBS sends).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rtmp::chunk::msg_type;
use rtmp::testing::TestClient;

use super::{require_tool, TempDir};

/// One FLV tag.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    /// 8 audio, 9 video, 18 script data.
    pub(crate) kind: u8,
    /// Timestamp, ms.
    pub(crate) ts: u32,
    pub(crate) body: Vec<u8>,
}

impl Tag {
    pub(crate) fn is_audio(&self) -> bool {
        self.kind == msg_type::AUDIO
    }

    /// A codec configuration (AVC or AAC sequence header): sent first, whatever the schedule.
    pub(crate) fn is_config(&self) -> bool {
        match self.kind {
            8 => self.body.first().is_some_and(|b| b >> 4 == 10) && self.body.get(1) == Some(&0),
            9 => self.body.first().is_some_and(|b| b & 0x0f == 7) && self.body.get(1) == Some(&0),
            _ => false,
        }
    }
}

/// ffmpeg's 640x360 test pattern and 48 kHz sine (x264 with a keyframe a second, AAC), `seconds`
/// long, as an FLV file in `dir`; its tags.
pub(crate) fn ffmpeg_flv(dir: &TempDir, seconds: u32) -> Vec<Tag> {
    ffmpeg_flv_sized(dir, "source", "640x360", seconds)
}

/// [`ffmpeg_flv`] at `size` (`WxH`), written to `NAME.flv`.
pub(crate) fn ffmpeg_flv_sized(dir: &TempDir, name: &str, size: &str, seconds: u32) -> Vec<Tag> {
    ffmpeg_flv_gop(dir, name, size, seconds, 30)
}

/// [`ffmpeg_flv_sized`] with a keyframe every `gop` frames.
pub(crate) fn ffmpeg_flv_gop(
    dir: &TempDir,
    name: &str,
    size: &str,
    seconds: u32,
    gop: u32,
) -> Vec<Tag> {
    require_tool("ffmpeg", "-version");
    let path = dir.file(&format!("{name}.flv"));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
        ])
        .args(["-f", "flv", "-y"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("run ffmpeg");
    assert!(
        status.success(),
        "ffmpeg could not write {}",
        path.display()
    );
    read_flv(&path)
}

/// The tags of an FLV file.
pub(crate) fn read_flv(path: &Path) -> Vec<Tag> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(data.starts_with(b"FLV"), "{} is not FLV", path.display());
    let header = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize;
    let mut at = header + 4;
    let mut tags = Vec::new();
    while at + 11 <= data.len() {
        let kind = data[at] & 0x1f;
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let body = &data[at + 11..(at + 11 + size).min(data.len())];
        tags.push(Tag {
            kind,
            ts,
            body: body.to_vec(),
        });
        at += 11 + size + 4;
    }
    tags
}

/// A replay under way; joining it says how it went.
pub(crate) struct Replay {
    thread: Option<JoinHandle<Result<usize, String>>>,
}

impl Replay {
    /// Waits (bounded by `timeout`) for the replay to end: the tags sent, or why it failed.
    pub(crate) fn join(mut self, timeout: Duration) -> Result<usize, String> {
        let t = self.thread.take().expect("joined once");
        let deadline = Instant::now() + timeout;
        while !t.is_finished() {
            if Instant::now() >= deadline {
                return Err(format!("the replay did not end within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
        t.join()
            .map_err(|_| "the replay thread panicked".to_owned())?
    }
}

/// Publishes `tags` as stream `key` of app `live` at `rtmp`: the configurations at timestamp 0
/// first, then each tag (a later configuration too: a change mid-stream) `send_at(tag)` ms
/// after the start (`None` drops it), in that order. The connection closes
/// (the publish ends) after the last tag.
pub(crate) fn replay(
    rtmp: SocketAddr,
    key: &str,
    tags: Vec<Tag>,
    send_at: impl Fn(&Tag) -> Option<i64>,
) -> Replay {
    replay_held(rtmp, key, tags, send_at, None)
}

/// A point in a replay's plan to hold at: before the first tag due at `at_ms` or later, the
/// replay waits until `ready()` (at most `bound`), and every later tag is sent that much later
/// (a publisher that paused). For a test that needs something to have happened before a given
/// part of the media, such as a player playing before a jump, whatever the machine's load.
pub(crate) struct Hold {
    pub(crate) at_ms: i64,
    pub(crate) ready: Box<dyn Fn() -> bool + Send>,
    pub(crate) bound: Duration,
}

/// [`replay`], holding at `hold`.
#[allow(dead_code)] // not every test that includes this module holds
pub(crate) fn replay_held(
    rtmp: SocketAddr,
    key: &str,
    tags: Vec<Tag>,
    send_at: impl Fn(&Tag) -> Option<i64>,
    hold: Option<Hold>,
) -> Replay {
    let mut plan: Vec<(i64, Tag)> = Vec::new();
    for t in tags {
        if t.kind != msg_type::AUDIO && t.kind != msg_type::VIDEO {
            continue;
        }
        let at = if t.is_config() && t.ts == 0 {
            Some(-1)
        } else {
            send_at(&t)
        };
        if let Some(at) = at {
            plan.push((at, t));
        }
    }
    plan.sort_by_key(|(at, _)| *at);
    let key = key.to_owned();
    let thread = thread::spawn(move || run(rtmp, &key, plan, hold));
    Replay {
        thread: Some(thread),
    }
}

fn run(
    rtmp: SocketAddr,
    key: &str,
    plan: Vec<(i64, Tag)>,
    mut hold: Option<Hold>,
) -> Result<usize, String> {
    let timeout = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&rtmp, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    // Everything the server says, read on the side so that it never blocks on us.
    let heard = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut reader = s.try_clone().map_err(|e| e.to_string())?;
    let sink = heard.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut client = TestClient::new();
    let mut hello = TestClient::handshake();
    hello.extend(client.connect("live"));
    hello.extend(client.create_and_publish(key));
    s.write_all(&hello).map_err(|e| format!("publish: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        let h = heard.lock().unwrap().clone();
        if h.windows(23).any(|w| w == b"NetStream.Publish.Start") {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no NetStream.Publish.Start within {timeout:?}: {:?}",
                String::from_utf8_lossy(&h)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut start = Instant::now();
    let mut sent = 0;
    for (at, tag) in &plan {
        if let Some(h) = hold.take_if(|h| *at >= h.at_ms) {
            let due = Duration::from_millis(h.at_ms.max(0) as u64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
            let held = Instant::now();
            while !(h.ready)() {
                if held.elapsed() >= h.bound {
                    return Err(format!(
                        "held at {} ms for {:?}, and what it waited for never came",
                        h.at_ms, h.bound
                    ));
                }
                thread::sleep(Duration::from_millis(50));
            }
            if held.elapsed() >= Duration::from_millis(100) {
                eprintln!("replay: held {:?} at {} ms", held.elapsed(), h.at_ms);
            }
            start += held.elapsed();
        }
        let due = Duration::from_millis((*at).max(0) as u64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
        let csid = if tag.is_audio() { 4 } else { 6 };
        let bytes = client.message(csid, tag.ts, tag.kind, 1, &tag.body);
        s.write_all(&bytes)
            .map_err(|e| format!("send tag at {} ms: {e}", tag.ts))?;
        sent += 1;
    }
    let _ = s.shutdown(Shutdown::Both);
    Ok(sent)
}
