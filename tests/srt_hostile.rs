//! SRT that no caller can break (issue 14): while two real publishers (ffmpeg over libsrt) keep
//! a stream each on air, hostile callers try every bad handshake on the same port: ffmpeg with
//! `transtype=file` (a congestion extension) and with a passphrase but no `pbkeylen` towards a
//! stream without one — the two handshakes that panicked srt-tokio 0.4.4's listener task (README,
//! "Why a patched srt-protocol") — a wrong passphrase, and a raw UDP caller sending truncated
//! packets, garbage, handshakes with every extension and flag combination, control packets of
//! every type on an accepted connection, and a flood of induction packets.
//!
//! The good publishers must never notice: their processes keep running, their publishes keep the
//! start time they had, their media playlists keep growing through every phase, the listener
//! never dies and binds again ("the SRT listener task ended unexpectedly" never appears in the
//! server's log), and a new caller can still publish after the storm.
//!
//! Hermetic: free ports chosen at run time, loopback only, every wait bounded, every process
//! stopped by its PID (tests/support).

#[path = "support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use support::hls::parse_media;
use support::{ffmpeg_srt, has_video, require_ffmpeg_srt, srt_url, wait_until, ChildGuard, Server};

/// What the server logs when srt-tokio's listener task dies and the port is bound again.
const LISTENER_DIED: &str = "the SRT listener task ended unexpectedly";

const LADDER: &str = r#"
[transcode]
preset = "ultrafast"
[[transcode.renditions]]
name = "source"
passthrough = true
"#;

fn start() -> (Server, SocketAddr, support::TempDir) {
    let dir = support::TempDir::new("srt-hostile-config");
    let mut toml = String::from(LADDER);
    // Accepted raw callers send no media: free their connections soon.
    toml.push_str("[srt]\nhandshake_timeout = \"3s\"\n");
    for (name, key, passphrase) in [
        ("one", "hostile-one", ""),
        ("two", "hostile-two", ""),
        ("late", "hostile-late", ""),
        ("target", "hostile-target", ""),
        ("raw", "hostile-raw", ""),
        ("secret", "hostile-secret", "secret-passphrase-1"),
    ] {
        toml.push_str(&format!(
            "[[streams]]\nname = \"{name}\"\nkey = \"{key}\"\n"
        ));
        if !passphrase.is_empty() {
            toml.push_str(&format!("passphrase = \"{passphrase}\"\n"));
        }
    }
    let path = dir.file("ferrocast.toml");
    std::fs::write(&path, toml).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let srt = support::srt_addr(&server);
    (server, srt, dir)
}

/// The newest media sequence number of `name`'s first rung, when it has a playlist.
fn last_msn(server: &Server, name: &str) -> Option<u64> {
    let master = server.get(&format!("/live/{name}/index.m3u8"));
    if master.status != 200 {
        return None;
    }
    let uri = master
        .body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?
        .to_owned();
    let media = server.get(&format!("/live/{name}/{uri}"));
    if media.status != 200 {
        return None;
    }
    parse_media(&media.body).last_msn()
}

/// The good publishers, and what must stay true of them.
struct Good<'a> {
    server: &'a Server,
    publishers: Vec<(&'static str, ChildGuard, String, u64)>,
}

impl Good<'_> {
    /// Both publishers still running, their publishes the same ones, their playlists grown
    /// since the last check (waiting at most a few segments for it), and the listener alive.
    fn check(&mut self, phase: &str) {
        for (name, child, started, msn) in &mut self.publishers {
            assert!(
                child.try_wait().is_none(),
                "{phase}: the publisher of {name} exited\n{}\nserver log:\n{}",
                child.stderr(),
                self.server.logs()
            );
            let s = self.server.stream(name);
            assert_eq!(
                s["live"],
                true,
                "{phase}: {name} went off air: {s}\nserver log:\n{}",
                self.server.logs()
            );
            assert_eq!(
                s["publisher"]["started_at"].as_str(),
                Some(started.as_str()),
                "{phase}: {name} was published again (the SRT connection dropped): {s}\nserver log:\n{}",
                self.server.logs()
            );
            let before = *msn;
            let deadline = Instant::now() + Duration::from_secs(15);
            *msn = loop {
                if let Some(m) = last_msn(self.server, name).filter(|m| *m > before) {
                    break m;
                }
                assert!(
                    Instant::now() < deadline,
                    "{phase}: {name}'s playlist did not grow past {before} in 15 s\npublisher:\n{}\nserver log:\n{}",
                    child.stderr(),
                    self.server.logs()
                );
                thread::sleep(Duration::from_millis(100));
            };
        }
        let logs = self.server.logs();
        assert!(
            !logs.contains(LISTENER_DIED) && !logs.contains("panicked"),
            "{phase}: the SRT listener died:\n{logs}"
        );
    }
}

/// An ffmpeg caller that must be refused at the handshake: it exits non-zero within 15 s,
/// saying it was rejected, and the good publishers did not notice (checked first, so that a
/// listener that died says so).
fn expect_refused(good: &mut Good, phase: &str, mut caller: ChildGuard) -> String {
    let status = caller.expect_exit(Duration::from_secs(15));
    good.check(phase);
    assert!(!status.success(), "{} was not refused", caller.name);
    let stderr = caller.stderr();
    // libsrt logs "REJECT reported from HS processing: <the reason>".
    assert!(
        stderr.to_ascii_lowercase().contains("reject"),
        "{}'s error does not mention a rejection: {stderr}",
        caller.name
    );
    stderr
}

// ---- raw SRT packets ----------------------------------------------------------------------

const HS_INDUCTION: u32 = 1;
const HS_CONCLUSION: u32 = 0xFFFF_FFFF;

/// A deterministic xorshift, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A control packet: header (type, subtype, info, timestamp, destination) and body.
fn control(kind: u16, subtype: u16, info: u32, dest: u32, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + body.len());
    p.extend_from_slice(&(0x8000 | kind).to_be_bytes());
    p.extend_from_slice(&subtype.to_be_bytes());
    p.extend_from_slice(&info.to_be_bytes());
    p.extend_from_slice(&1000u32.to_be_bytes());
    p.extend_from_slice(&dest.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// A handshake: version, encryption field (key length / 8), extension field, type, our socket
/// id, the cookie, then `(type, body)` extensions.
#[allow(clippy::too_many_arguments)]
fn handshake(
    dest: u32,
    version: u32,
    encryption: u16,
    ext_field: u16,
    shake_type: u32,
    socket_id: u32,
    cookie: u32,
    extensions: &[Extension],
) -> Vec<u8> {
    let mut cif = Vec::new();
    cif.extend_from_slice(&version.to_be_bytes());
    cif.extend_from_slice(&encryption.to_be_bytes());
    cif.extend_from_slice(&ext_field.to_be_bytes());
    cif.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // initial sequence number
    cif.extend_from_slice(&1500u32.to_be_bytes());
    cif.extend_from_slice(&8192u32.to_be_bytes());
    cif.extend_from_slice(&shake_type.to_be_bytes());
    cif.extend_from_slice(&socket_id.to_be_bytes());
    cif.extend_from_slice(&cookie.to_be_bytes());
    cif.extend_from_slice(&[1, 0, 0, 127]); // 127.0.0.1, little-endian words
    cif.extend_from_slice(&[0; 12]);
    for (kind, body) in extensions {
        cif.extend_from_slice(&kind.to_be_bytes());
        cif.extend_from_slice(&((body.len().div_ceil(4)) as u16).to_be_bytes());
        cif.extend_from_slice(body);
        cif.resize(cif.len().div_ceil(4) * 4, 0);
    }
    control(0, 0, 0, dest, &cif)
}

/// A string extension body (stream id, congestion, filter): little-endian 32-bit words.
fn le_string(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.resize(b.len().div_ceil(4) * 4, 0);
    b.chunks(4).flat_map(|w| [w[3], w[2], w[1], w[0]]).collect()
}

fn hsreq() -> Vec<u8> {
    [0x0001_0501u32, 0xBF, (120 << 16) | 120]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

/// Keying material: `flags` (1 even, 2 odd, 3 both), keys of `key_len` bytes.
fn kmreq(rng: &mut Rng, flags: u8, key_len: usize) -> Vec<u8> {
    let keys = (flags & 1) as usize + ((flags >> 1) & 1) as usize;
    let mut b = vec![0x12, 0x20, 0x29, flags, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 4];
    b.push((key_len / 4) as u8);
    b.extend(rng.bytes(16 + key_len * keys + 8));
    b
}

/// One UDP socket: one caller address (the listener keeps a session per address).
struct Raw {
    sock: UdpSocket,
    server: SocketAddr,
    id: u32,
}

impl Raw {
    fn new(server: SocketAddr, id: u32) -> Raw {
        // Every caller address stays unique for the whole test: a copy of each socket is kept
        // open until the process ends, so the kernel never hands a closed caller's port to a
        // new one. The listener keeps state per address (a half-open or refused caller), and a
        // new caller on a port it still knows can get no answer to its induction ("the listener
        // stopped answering inductions", seen in a serial run of the whole suite).
        static KEEP: std::sync::Mutex<Vec<UdpSocket>> = std::sync::Mutex::new(Vec::new());
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        KEEP.lock()
            .expect("sockets kept")
            .push(sock.try_clone().expect("clone a UDP socket"));
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        Raw { sock, server, id }
    }

    fn send(&self, datagram: &[u8]) {
        // A full socket buffer drops the datagram, as a network would.
        let _ = self.sock.send_to(datagram, self.server);
    }

    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        self.sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    }

    /// The handshake type of the next handshake received (1 induction, -1 conclusion, a
    /// rejection code), with the server's socket id and cookie.
    fn recv_handshake(&self) -> Option<(i32, u32, u32)> {
        for _ in 0..3 {
            let p = self.recv()?;
            if p.len() >= 64 && p[0] == 0x80 && p[1] == 0 {
                let word = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
                return Some((word(36) as i32, word(40), word(44)));
            }
        }
        None
    }

    /// Sends an induction; returns the cookie the listener answered with. Patient enough (ten
    /// tries, 300 ms each) for a listener on a loaded 2-core machine that is also tearing down
    /// hundreds of half-open callers; a listener that has stopped still fails within 3 s.
    fn induce(&self) -> Option<u32> {
        for _ in 0..10 {
            self.send(&handshake(0, 4, 0, 2, HS_INDUCTION, self.id, 0, &[]));
            if let Some((1, _, cookie)) = self.recv_handshake() {
                return Some(cookie);
            }
        }
        None
    }
}

/// A handshake extension: its type and body.
type Extension = (u16, Vec<u8>);

/// A handshake case: its name, the encryption field, the extensions.
type Case = (&'static str, u16, Vec<Extension>);

/// Every extension a handshake can carry, well-formed and not.
fn extension_cases(rng: &mut Rng) -> Vec<Case> {
    let sid = (5, le_string("live/hostile-target"));
    let mut cases: Vec<Case> = vec![
        ("none", 0, vec![]),
        ("hsreq", 0, vec![(1, hsreq())]),
        ("hsrsp", 0, vec![(2, hsreq()), sid.clone()]),
        ("hsreq short", 0, vec![(1, vec![0; 4]), sid.clone()]),
        ("sid only", 0, vec![sid.clone()]),
        ("sid empty", 0, vec![(1, hsreq()), (5, vec![])]),
        ("sid not utf-8", 0, vec![(1, hsreq()), (5, vec![0xFF; 8])]),
        (
            "congestion file",
            0,
            vec![(1, hsreq()), sid.clone(), (6, le_string("file"))],
        ),
        (
            "congestion live",
            0,
            vec![(1, hsreq()), sid.clone(), (6, le_string("live"))],
        ),
        (
            "congestion empty",
            0,
            vec![(1, hsreq()), sid.clone(), (6, vec![])],
        ),
        (
            "filter fec",
            0,
            vec![
                (1, hsreq()),
                sid.clone(),
                (7, le_string("fec,cols:4,rows:2")),
            ],
        ),
        (
            "filter garbage",
            0,
            vec![(1, hsreq()), sid.clone(), (7, le_string(":,::,a:b:c"))],
        ),
        (
            "group",
            0,
            vec![(1, hsreq()), sid.clone(), (8, vec![1, 0, 0, 0])],
        ),
        (
            "group short",
            0,
            vec![(1, hsreq()), sid.clone(), (8, vec![])],
        ),
        (
            "reject extension",
            0,
            vec![(1, hsreq()), sid.clone(), (0, vec![])],
        ),
        (
            "unknown extension",
            0,
            vec![(1, hsreq()), sid.clone(), (9, vec![0; 4])],
        ),
        (
            "type 0xffff",
            0,
            vec![(1, hsreq()), sid.clone(), (0xFFFF, vec![0; 8])],
        ),
        (
            "kmrsp",
            2,
            vec![(1, hsreq()), sid.clone(), (4, kmreq(rng, 1, 16))],
        ),
        (
            "km no key flag",
            0,
            vec![(1, hsreq()), sid.clone(), (3, kmreq(rng, 0, 16))],
        ),
        (
            "km garbage",
            2,
            vec![(1, hsreq()), sid.clone(), (3, rng.bytes(12))],
        ),
        (
            "two hsreq, two sid",
            0,
            vec![(1, hsreq()), (1, hsreq()), sid.clone(), sid.clone()],
        ),
    ];
    for (flags, key_len) in [(1, 16), (2, 16), (3, 16), (1, 24), (3, 32), (1, 40)] {
        for encryption in [0u16, 2, 3, 4, 7] {
            cases.push((
                "kmreq",
                encryption,
                vec![(1, hsreq()), sid.clone(), (3, kmreq(rng, flags, key_len))],
            ));
        }
    }
    cases
}

/// Conclusions with every extension case under every extension-flag combination, each from a
/// caller address of its own after a real induction; returns (handshakes, rejections seen).
fn every_extension(server: &Server, srt: SocketAddr, rng: &mut Rng) -> (usize, usize) {
    let (mut sent, mut rejected) = (0, 0);
    let cases = extension_cases(rng);
    for (i, (name, encryption, extensions)) in cases.iter().enumerate() {
        for (j, flags) in [0u16, 1, 2, 3, 4, 5, 6, 7, 0xFFFF].into_iter().enumerate() {
            let raw = Raw::new(srt, 0x1000_0000 + (i * 16 + j) as u32);
            let Some(cookie) = raw.induce() else {
                panic!(
                    "the listener stopped answering inductions, after {sent} handshakes \
                     (next: case {name:?}, flags {flags:#x})\nserver log:\n{}",
                    server.logs()
                );
            };
            raw.send(&handshake(
                0,
                5,
                *encryption,
                flags,
                HS_CONCLUSION,
                raw.id,
                cookie,
                extensions,
            ));
            sent += 1;
            if let Some((code, _, _)) = raw.recv_handshake() {
                if code >= 1000 {
                    rejected += 1;
                }
            }
        }
    }
    // The keying-material cases again towards the stream with a passphrase: announced and
    // carried key lengths that differ, a KMRSP instead of a KMREQ, keys that do not unwrap.
    let secret = (5, le_string("live/hostile-secret"));
    for (i, (_, encryption, extensions)) in cases.iter().enumerate() {
        if !extensions.iter().any(|(kind, _)| *kind == 3 || *kind == 4) {
            continue;
        }
        let extensions: Vec<Extension> = extensions
            .iter()
            .map(|e| if e.0 == 5 { secret.clone() } else { e.clone() })
            .collect();
        let raw = Raw::new(srt, 0x1800_0000 + i as u32);
        let Some(cookie) = raw.induce() else {
            panic!(
                "the listener stopped answering inductions, after {sent} handshakes\nserver \
                 log:\n{}",
                server.logs()
            );
        };
        raw.send(&handshake(
            0,
            5,
            *encryption,
            7,
            HS_CONCLUSION,
            raw.id,
            cookie,
            &extensions,
        ));
        sent += 1;
        if let Some((code, _, _)) = raw.recv_handshake() {
            if code >= 1000 {
                rejected += 1;
            }
        }
    }
    (sent, rejected)
}

/// Handshakes out of order and of the wrong version, and every prefix of a full conclusion
/// and of an induction.
fn truncated_and_out_of_order(server: SocketAddr, rng: &mut Rng) {
    let raw = Raw::new(server, 0x2000_0000);
    let full = handshake(
        0,
        5,
        2,
        7,
        HS_CONCLUSION,
        raw.id,
        0,
        &[
            (1, hsreq()),
            (3, kmreq(rng, 3, 16)),
            (5, le_string("live/hostile-target")),
            (7, le_string("fec,cols:4,rows:2")),
        ],
    );
    // A conclusion before any induction, with a wrong cookie, as version 4.
    raw.send(&full);
    let cookie = raw.induce().expect("an induction response");
    let mut wrong = full.clone();
    wrong[44..48].copy_from_slice(&cookie.wrapping_add(1).to_be_bytes());
    raw.send(&wrong);
    let mut v4 = full.clone();
    v4[16..20].copy_from_slice(&4u32.to_be_bytes());
    v4[44..48].copy_from_slice(&cookie.to_be_bytes());
    raw.send(&v4);
    // An induction as version 5 with extensions, and with every handshake type.
    raw.send(&handshake(
        0,
        5,
        0,
        7,
        HS_INDUCTION,
        raw.id,
        0,
        &[(1, hsreq())],
    ));
    for shake_type in [0u32, 2, 3, 1000, 1013, 2000, 0x7FFF_FFFF, 0xFFFF_FFFE] {
        raw.send(&handshake(
            0,
            5,
            0,
            1,
            shake_type,
            raw.id,
            cookie,
            &[(1, hsreq())],
        ));
    }
    // Every prefix, with the right cookie.
    let mut good = full.clone();
    good[44..48].copy_from_slice(&cookie.to_be_bytes());
    let induction = handshake(0, 4, 0, 2, HS_INDUCTION, raw.id, 0, &[]);
    for p in [&good, &induction] {
        for cut in 0..p.len() {
            raw.send(&p[..cut]);
        }
    }
    while raw.recv().is_some() {}
}

/// Random datagrams: half of them with the control bit and a real control type.
fn garbage(server: SocketAddr, rng: &mut Rng, count: usize) {
    let raws: Vec<Raw> = (0..8).map(|i| Raw::new(server, 0x3000_0000 + i)).collect();
    for i in 0..count {
        let len = (rng.next() % 1500) as usize;
        let mut d = rng.bytes(len);
        if i % 2 == 0 && d.len() >= 2 {
            d[0] = 0x80 | (rng.next() % 8) as u8;
            d[1] = [0, 1, 2, 3, 4, 5, 6, 7, 0xFF][(rng.next() % 9) as usize];
        }
        raws[i % raws.len()].send(&d);
        if i % 200 == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A raw caller that the server accepts (stream `raw`), then sends control packets of every
/// type and data packets of every flag on that connection, malformed NAKs included.
fn accepted_connection_abuse(server: SocketAddr, rng: &mut Rng) -> bool {
    let raw = Raw::new(server, 0x4000_0000);
    let Some(cookie) = raw.induce() else {
        return false;
    };
    raw.send(&handshake(
        0,
        5,
        0,
        5,
        HS_CONCLUSION,
        raw.id,
        cookie,
        &[(1, hsreq()), (5, le_string("live/hostile-raw"))],
    ));
    let Some((-1, server_id, _)) = raw.recv_handshake() else {
        return false;
    };
    let bodies = |rng: &mut Rng| vec![vec![], vec![0; 4], rng.bytes(7), rng.bytes(64)];
    for kind in (0u16..=8).chain([0x7FFF]) {
        let subtypes: Vec<u16> = if kind == 0x7FFF {
            (0..=10).collect()
        } else {
            vec![0]
        };
        for subtype in subtypes {
            for body in bodies(rng) {
                raw.send(&control(kind, subtype, rng.next() as u32, server_id, &body));
            }
        }
    }
    // NAKs: a range without its end, ranges going backwards and across the whole space.
    for body in [
        vec![0x8000_0010u32],
        vec![0x8000_0010, 0x5],
        vec![0x8000_0000, 0x7FFF_FFFF],
        vec![0xFFFF_FFFF, 0xFFFF_FFFF, 0x8000_0001],
    ] {
        let b: Vec<u8> = body.iter().flat_map(|w| w.to_be_bytes()).collect();
        raw.send(&control(3, 0, 0, server_id, &b));
    }
    // Data packets with every position, encryption and retransmission flag.
    for flags in 0u8..=255 {
        let mut d = Vec::new();
        d.extend_from_slice(&(0x1234_5678u32 + u32::from(flags)).to_be_bytes());
        d.push(flags);
        d.extend_from_slice(&[0, 0, 1]);
        d.extend_from_slice(&2000u32.to_be_bytes());
        d.extend_from_slice(&server_id.to_be_bytes());
        d.extend(rng.bytes(188));
        raw.send(&d);
    }
    raw.send(&control(5, 0, 0, server_id, &[0; 4])); // shutdown
    true
}

/// `total` induction packets from `sockets` caller addresses, as fast as the socket goes.
fn induction_flood(server: SocketAddr, sockets: u32, total: u32) {
    let raws: Vec<Raw> = (0..sockets)
        .map(|i| Raw::new(server, 0x5000_0000 + i))
        .collect();
    for i in 0..total {
        let raw = &raws[(i % sockets) as usize];
        raw.send(&handshake(0, 4, 0, 2, HS_INDUCTION, raw.id, 0, &[]));
        if i % 1000 == 999 {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn hostile_srt_callers_never_interrupt_live_publishers() {
    require_ffmpeg_srt();
    let (server, srt, _config) = start();
    let dir = &server.dir;
    let began = Instant::now();

    // Two good publishers, long enough to outlast the storm (they are killed at the end).
    let mut publishers = Vec::new();
    for (name, key, size) in [
        ("one", "hostile-one", "192x108"),
        ("two", "hostile-two", "160x90"),
    ] {
        let child = ffmpeg_srt(
            dir,
            name,
            &srt_url(srt, &format!("live/{key}"), ""),
            size,
            240,
        );
        publishers.push((name, child, size));
    }
    let mut good = Good {
        server: &server,
        publishers: Vec::new(),
    };
    for (name, child, size) in publishers {
        let (w, h) = size.split_once('x').unwrap();
        let p = server.wait_live(name, Duration::from_secs(20), |p| {
            has_video(p, w.parse().unwrap(), h.parse().unwrap())
        });
        assert_eq!(p["protocol"], "srt", "{p}");
        let msn = wait_until(
            Duration::from_secs(30),
            &format!("a segment of {name}"),
            || last_msn(&server, name),
        );
        let started = p["started_at"].as_str().unwrap().to_owned();
        good.publishers.push((name, child, started, msn));
    }
    let published_before = server.metrics().value(
        "ferrocast_ingest_connections_total",
        &[("protocol", "srt"), ("result", "published")],
    );
    good.check("before the storm");

    // README crash 2: a congestion extension (transtype=file). Rejected cleanly now.
    let file = ffmpeg_srt(
        dir,
        "file",
        &srt_url(srt, "live/hostile-target", "&transtype=file"),
        "160x90",
        5,
    );
    let stderr = expect_refused(&mut good, "ffmpeg transtype=file", file);
    eprintln!("transtype=file caller: {}", stderr.trim());

    // README crash 1: a passphrase without pbkeylen towards a stream without one.
    let enc = ffmpeg_srt(
        dir,
        "nopbkeylen",
        &srt_url(
            srt,
            "live/hostile-target",
            "&passphrase=caller-passphrase-1",
        ),
        "160x90",
        5,
    );
    let stderr = expect_refused(&mut good, "a passphrase without pbkeylen", enc);
    eprintln!("passphrase without pbkeylen: {}", stderr.trim());
    // The same with pbkeylen (refused by our admission before the handshake), and a wrong
    // passphrase towards a stream with one.
    let enc32 = ffmpeg_srt(
        dir,
        "pbkeylen32",
        &srt_url(
            srt,
            "live/hostile-target",
            "&passphrase=caller-passphrase-1&pbkeylen=32",
        ),
        "160x90",
        5,
    );
    expect_refused(&mut good, "a passphrase with pbkeylen", enc32);
    let wrong = ffmpeg_srt(
        dir,
        "wrongpass",
        &srt_url(srt, "live/hostile-secret", "&passphrase=wrong-passphrase-1"),
        "160x90",
        5,
    );
    expect_refused(&mut good, "a wrong passphrase", wrong);

    let mut rng = Rng(0x14_5EED);
    let (handshakes, rejected) = every_extension(&server, srt, &mut rng);
    eprintln!("{handshakes} raw handshakes, {rejected} answered with a rejection");
    assert!(handshakes > 400, "{handshakes}");
    assert!(
        rejected > 0,
        "no raw handshake was rejected: {rejected}/{handshakes}"
    );
    good.check("every extension and flag combination");

    truncated_and_out_of_order(srt, &mut rng);
    garbage(srt, &mut rng, 5_000);
    good.check("truncated, out-of-order and garbage packets");

    assert!(
        accepted_connection_abuse(srt, &mut rng),
        "a plain raw caller was not accepted\nserver log:\n{}",
        server.logs()
    );
    good.check("every control and data packet on an accepted connection");

    induction_flood(srt, 100, 20_000);
    // The listener still answers a newcomer once it has worked through the flood.
    let fresh = Raw::new(srt, 0x6000_0000);
    wait_until(
        Duration::from_secs(10),
        "an induction answer after the flood",
        || fresh.induce(),
    );
    good.check("an induction flood");

    // No good publisher published again, and the listener never bound again.
    let m = server.metrics();
    assert_eq!(
        m.value(
            "ferrocast_ingest_connections_total",
            &[("protocol", "srt"), ("result", "published")],
        ),
        published_before,
        "an SRT publish ended during the storm\n{}",
        m.text
    );
    assert!(
        m.value(
            "ferrocast_ingest_rejections_total",
            &[("protocol", "srt"), ("reason", "handshake_failed")],
        ) >= 2.0
            && m.value(
                "ferrocast_ingest_rejections_total",
                &[("protocol", "srt"), ("reason", "bad_passphrase")],
            ) >= 1.0,
        "the refusals were not counted\n{}",
        m.text
    );

    // A new good caller can still publish.
    let _late = ffmpeg_srt(
        dir,
        "late",
        &srt_url(srt, "live/hostile-late", ""),
        "160x90",
        20,
    );
    server.wait_live("late", Duration::from_secs(20), |p| has_video(p, 160, 90));
    wait_until(Duration::from_secs(30), "a segment of late", || {
        last_msn(&server, "late")
    });
    good.check("after the storm");
    let logs = server.logs();
    assert!(!logs.contains(LISTENER_DIED), "{logs}");
    eprintln!("hostile phase and checks took {:?}", began.elapsed());
    for (_, child, _, _) in &good.publishers {
        child.signal("KILL");
    }
}
