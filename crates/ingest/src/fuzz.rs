//! Fuzz entry points (convention 9): always compiled, so the `fuzz/` crate and the tests run
//! the same code.
//!
//! [`srt_handshake`] drives srt-protocol's sans-IO [`MultiplexListener`] — the state machine
//! srt-tokio's listener task runs for every caller of the port — the way that task does, and the
//! [`DuplexConnection`] of every caller it accepts the way a socket task does. Whatever the
//! datagrams are, nothing may panic: in srt-tokio a panic in the listener drops every caller.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use srt_protocol::connection::{self, DuplexConnection};
use srt_protocol::listener::{
    AccessControlRequest, AccessControlResponse, Action, Input, MultiplexListener,
    NextInputContext, SessionId,
};
use srt_protocol::packet::{
    ControlTypes, Packet, ReceivePacketError, RejectReason, ServerRejectReason, ShakeType,
};
use srt_protocol::settings::{ConnInitSettings, KeySettings};

/// The passphrase the fuzz listener hands to every other accepted caller; the seeds of
/// encrypting callers (`fuzz/seeds/srt_handshake/`) use it too.
pub const FUZZ_PASSPHRASE: &str = "fuzz-passphrase-1";

/// Most actions driven for one input, so that a cycle in the state machine cannot hang a run.
const MAX_ACTIONS: usize = 256;

/// What one [`srt_handshake`] run did, for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HandshakeReport {
    /// The reject code of every rejection the listener sent, in order (`SRT_REJ_*` and
    /// `SRT_REJX_*` numbers: 1010 bad secret, 1011 unsecure, 1013 congestion, ...).
    pub rejections: Vec<i32>,
    /// Connections the listener opened.
    pub opened: usize,
    /// Access requests it asked for (connection requests a real listener hands to us).
    pub requests: usize,
    /// Datagrams it sent (serialized, as srt-tokio does).
    pub sent: usize,
    /// Payload messages the accepted connections released.
    pub released: usize,
}

/// Feeds `data` to a listener as UDP datagrams and drives every action it returns.
///
/// `data` is a sequence of records: a flag byte, a big-endian `u16` length, then that many
/// bytes (the last record may be short), each parsed as one datagram by
/// [`Packet::parse`]. Flag bits: 0–1 pick one of four caller addresses; 2 feeds a timer tick
/// after the datagram; 3 holds this round's access requests back (they are answered, in turn
/// accepted without encryption, accepted with [`FUZZ_PASSPHRASE`] and the caller's key size,
/// and rejected, after a later record without it); 4 leaves a handshake's SYN cookie as sent
/// (otherwise it is set to the cookie the listener handed that address, so that conclusions
/// get past the cookie check); 5–7 step the clock by that many quarter seconds first.
pub fn srt_handshake(data: &[u8]) -> HandshakeReport {
    let mut run = Run::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let (datagram, tail) = rest[3..].split_at(len.min(rest.len() - 3));
        rest = tail;
        run.now += Duration::from_millis(250 * u64::from(flags >> 5));
        let from = SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(flags & 3)));
        let input = match Packet::parse(&mut Cursor::new(datagram), false) {
            Ok(mut packet) => {
                if flags & 0x10 == 0 {
                    run.fix_cookie(from, &mut packet);
                }
                Input::Packet(Ok((packet, from)))
            }
            Err(e) => Input::Packet(Err(ReceivePacketError::Parse(e))),
        };
        run.drive(input);
        if flags & 4 != 0 {
            run.drive(Input::Timer);
            run.tick_connections();
        }
        if flags & 8 == 0 {
            run.answer_requests();
        }
    }
    run.answer_requests();
    run.drive(Input::AccessResponse(None));
    run.report
}

struct Run {
    now: Instant,
    listener: MultiplexListener,
    connections: HashMap<SessionId, DuplexConnection>,
    pending: Vec<(SessionId, AccessControlRequest)>,
    cookies: HashMap<SocketAddr, i32>,
    decisions: usize,
    buffer: BytesMut,
    report: HandshakeReport,
}

impl Run {
    fn new() -> Run {
        let now = Instant::now();
        let local = SocketAddr::from(([127, 0, 0, 1], 9000));
        Run {
            now,
            listener: MultiplexListener::new(now, local, ConnInitSettings::default()),
            connections: HashMap::new(),
            pending: Vec::new(),
            cookies: HashMap::new(),
            decisions: 0,
            buffer: BytesMut::with_capacity(2048),
            report: HandshakeReport::default(),
        }
    }

    fn fix_cookie(&self, from: SocketAddr, packet: &mut Packet) {
        if let (Packet::Control(control), Some(cookie)) = (packet, self.cookies.get(&from)) {
            if let ControlTypes::Handshake(hs) = &mut control.control_type {
                if hs.shake_type == ShakeType::Conclusion {
                    hs.syn_cookie = *cookie;
                }
            }
        }
    }

    /// Serializes `packet` as srt-tokio's socket does before sending it.
    fn send(&mut self, packet: &Packet, to: SocketAddr) {
        self.buffer.clear();
        packet.serialize(&mut self.buffer);
        self.report.sent += 1;
        if let Packet::Control(control) = packet {
            if let ControlTypes::Handshake(hs) = &control.control_type {
                match hs.shake_type {
                    ShakeType::Induction => {
                        self.cookies.insert(to, hs.syn_cookie);
                    }
                    ShakeType::Rejection(reason) => self.report.rejections.push(reason.into()),
                    _ => {}
                }
            }
        }
    }

    fn drive(&mut self, mut input: Input) {
        for _ in 0..MAX_ACTIONS {
            let action = self.listener.handle_input(self.now, input);
            let next = NextInputContext::for_action(&action);
            let ok = Ok::<(), ()>(());
            input = match action {
                Action::SendPacket((packet, to)) => {
                    self.send(&packet, to);
                    next.input_from(ok)
                }
                Action::RequestAccess(id, request) => {
                    self.report.requests += 1;
                    self.pending.push((id, request));
                    next.input_from(ok)
                }
                Action::RejectConnection(id, packet) => {
                    if let Some((packet, to)) = packet {
                        self.send(&packet, to);
                    }
                    self.pending.retain(|(p, _)| *p != id);
                    next.input_from(ok)
                }
                Action::OpenConnection(id, opened) => {
                    let (packet, connection) = *opened;
                    if let Some((packet, to)) = packet {
                        self.send(&packet, to);
                    }
                    self.report.opened += 1;
                    self.connections
                        .insert(id, DuplexConnection::new(connection));
                    next.input_from(ok)
                }
                Action::DelegatePacket(id, packet) => {
                    self.drive_connection(id, connection::Input::Packet(Ok(packet)));
                    next.input_from(ok)
                }
                Action::DropConnection(id) => {
                    self.connections.remove(&id);
                    next.input_from(ok)
                }
                Action::UpdateStatistics(_) => next.input_from(ok),
                Action::WaitForInput | Action::Close => return,
            };
        }
    }

    fn answer_requests(&mut self) {
        for (id, request) in std::mem::take(&mut self.pending) {
            self.decisions += 1;
            let response = match self.decisions % 3 {
                1 => AccessControlResponse::Accepted(None),
                2 => AccessControlResponse::Accepted(Some(KeySettings {
                    key_size: request.key_size,
                    passphrase: FUZZ_PASSPHRASE.into(),
                })),
                _ => AccessControlResponse::Rejected(RejectReason::Server(
                    ServerRejectReason::Forbidden,
                )),
            };
            self.drive(Input::AccessResponse(Some((id, response))));
        }
    }

    fn tick_connections(&mut self) {
        let ids: Vec<SessionId> = self.connections.keys().copied().collect();
        for id in ids {
            self.drive_connection(id, connection::Input::Timer);
        }
    }

    /// What a srt-tokio socket task does with its connection's actions.
    fn drive_connection(&mut self, id: SessionId, mut input: connection::Input) {
        for _ in 0..MAX_ACTIONS {
            let Some(connection) = self.connections.get_mut(&id) else {
                return;
            };
            let action = connection.handle_input(self.now, input);
            input = match action {
                connection::Action::SendPacket((packet, to)) => {
                    self.send(&packet, to);
                    connection::Input::PacketSent
                }
                connection::Action::ReleaseData(_) => {
                    self.report.released += 1;
                    connection::Input::DataReleased
                }
                connection::Action::UpdateStatistics(_) => connection::Input::StatisticsUpdated,
                connection::Action::WaitForData(_) => return,
                connection::Action::Close => {
                    self.connections.remove(&id);
                    return;
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds, recorded from real callers (scripts/capture-srt-handshakes.py).
    fn seed(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fuzz/seeds/srt_handshake/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    /// Decisions go accept (no passphrase), accept (passphrase), reject; a record with flag
    /// bit 3 set holds them back. `skip` decisions are used up by throw-away callers first.
    fn with_decision(skip: usize, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..skip {
            // An induction and a conclusion from another address, answered in turn.
            let from = 1 + (i as u8 % 3);
            for (flags, d) in frames(&seed("ffmpeg_live")).into_iter().take(2) {
                out.push(flags | from);
                out.extend_from_slice(&(d.len() as u16).to_be_bytes());
                out.extend_from_slice(&d);
            }
        }
        out.extend_from_slice(data);
        out
    }

    fn frames(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = data;
        while rest.len() >= 3 {
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            let end = (3 + len).min(rest.len());
            out.push((rest[0], rest[3..end].to_vec()));
            rest = &rest[end..];
        }
        out
    }

    #[test]
    fn a_plain_caller_is_accepted() {
        let report = srt_handshake(&seed("ffmpeg_live"));
        assert_eq!(report.requests, 1, "{report:?}");
        assert_eq!(report.opened, 1, "{report:?}");
        assert!(report.rejections.is_empty(), "{report:?}");
    }

    #[test]
    fn an_encrypting_caller_with_the_passphrase_is_accepted() {
        for name in [
            "ffmpeg_passphrase_no_pbkeylen",
            "ffmpeg_passphrase_pbkeylen16",
            "ffmpeg_passphrase_pbkeylen32",
            "slt_passphrase_pbkeylen24",
        ] {
            let report = srt_handshake(&with_decision(1, &seed(name)));
            assert_eq!(report.opened, 2, "{name}: {report:?}");
            assert!(report.rejections.is_empty(), "{name}: {report:?}");
        }
    }

    /// README crash 1: an encrypting caller that announced no key length, accepted without a
    /// passphrase, panicked srt-protocol ("expected no secrets"); now SRT_REJ_UNSECURE.
    #[test]
    fn an_encrypting_caller_towards_a_stream_without_passphrase_is_rejected_unsecure() {
        for name in [
            "ffmpeg_passphrase_no_pbkeylen",
            "ffmpeg_passphrase_pbkeylen32",
        ] {
            let report = srt_handshake(&seed(name));
            assert_eq!(report.opened, 0, "{name}: {report:?}");
            assert_eq!(report.rejections, vec![1011], "{name}: {report:?}");
        }
    }

    /// A plain caller towards a stream with a passphrase: SRT_REJ_UNSECURE, as libsrt says.
    #[test]
    fn a_plain_caller_towards_an_encrypted_stream_is_rejected_unsecure() {
        let report = srt_handshake(&with_decision(1, &seed("ffmpeg_live")));
        assert_eq!(report.rejections, vec![1011], "{report:?}");
    }

    /// README crash 2: `transtype=file` sends a congestion extension ("file"), which panicked
    /// srt-protocol's parser ("Implement other kinds"); now SRT_REJ_CONGESTION, as a libsrt
    /// live listener answers. A packet filter (FEC) is SRT_REJ_FILTER.
    #[test]
    fn file_mode_and_packet_filter_callers_are_rejected_cleanly() {
        for (name, code) in [
            ("ffmpeg_transtype_file", 1013),
            ("slt_congestion_file", 1013),
            ("slt_packetfilter_fec", 1014),
        ] {
            let report = srt_handshake(&seed(name));
            assert_eq!(report.opened, 0, "{name}: {report:?}");
            assert_eq!(report.rejections, vec![code], "{name}: {report:?}");
        }
    }

    /// Every seed, every record cut short, and random bytes: no panic.
    #[test]
    fn truncated_seeds_and_garbage_never_panic() {
        use rand::{Rng, SeedableRng};
        let dir = format!(
            "{}/../../fuzz/seeds/srt_handshake",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for (flags, datagram) in frames(&data) {
                for cut in 0..datagram.len() {
                    let mut one = vec![flags];
                    one.extend_from_slice(&(cut as u16).to_be_bytes());
                    one.extend_from_slice(&datagram[..cut]);
                    srt_handshake(&one);
                }
            }
            for _ in 0..200 {
                let mut mutated = data.clone();
                for _ in 0..rng.gen_range(1..8) {
                    let i = rng.gen_range(0..mutated.len());
                    mutated[i] = rng.gen();
                }
                srt_handshake(&mutated);
            }
        }
        for _ in 0..500 {
            let len = rng.gen_range(0..400);
            let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            srt_handshake(&garbage);
        }
    }
}
