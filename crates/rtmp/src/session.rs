//! The server session: handshake, chunk stream and the publish command sequence.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::amf0::{self, Value};
use crate::chunk::{msg_type, ChunkDecoder, ChunkEncoder, ChunkLimits, Message};
use crate::error::Error;
use crate::handshake::{self, HANDSHAKE_SIZE};

/// Limits and settings of a [`ServerSession`]. The limits are always on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest chunk size the peer may announce with Set Chunk Size. Default 64 KiB.
    pub max_chunk_size: u32,
    /// Largest message the peer may send, checked against the chunk header before any
    /// allocation. It is also the budget for all partially received messages together.
    /// Default 8 MiB.
    pub max_message_size: u32,
    /// The chunk size this server sends with, announced after `connect` (values below 128
    /// are raised to 128). Default 4096.
    pub out_chunk_size: u32,
    /// The Window Acknowledgement Size and peer bandwidth announced to the client.
    /// Default 2 500 000 bytes.
    pub window_ack_size: u32,
    /// Most chunk stream ids the peer may use. Default 64.
    pub max_chunk_streams: usize,
    /// The Enhanced RTMP video FourCCs the application takes (decodes, and passes through),
    /// announced to a client whose `connect` lists its own (`fourCcList`, v1) or maps them
    /// (`videoFourCcInfoMap`, v2). Default `avc1`, `hvc1`, `av01`.
    pub video_fourccs: Vec<String>,
}

/// The most FourCCs read from a client's `connect`.
const MAX_ANNOUNCED: usize = 16;

/// The first [`MAX_ANNOUNCED`] names that can be FourCCs: a client's list is bounded by the
/// message size only, so a hostile one costs nothing.
fn first_fourccs<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names
        .filter(|f| f.len() <= 4)
        .take(MAX_ANNOUNCED)
        .map(str::to_owned)
        .collect()
}
/// `videoFourCcInfoMap` bits (Enhanced RTMP v2): the server can decode the codec.
const FOURCC_CAN_DECODE: f64 = 1.0;
/// `videoFourCcInfoMap` bits (Enhanced RTMP v2): the server can forward the codec as it is.
const FOURCC_CAN_FORWARD: f64 = 4.0;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_chunk_size: 64 * 1024,
            max_message_size: 8 * 1024 * 1024,
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            max_chunk_streams: 64,
            video_fourccs: ["avc1", "hvc1", "av01"].map(String::from).to_vec(),
        }
    }
}

/// What a [`ServerSession`] tells the application, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished (C2 received).
    HandshakeDone,
    /// The client connected to an application (the `connect` command, already answered).
    Connect {
        /// The `app` property, e.g. `live`.
        app: String,
        /// The `tcUrl` property, e.g. `rtmp://host:1935/live`.
        tc_url: Option<String>,
        /// The `flashVer` property, e.g. `FMLE/3.0 (compatible; FMSc/1.0)`.
        flash_ver: Option<String>,
        /// The Enhanced RTMP video FourCCs the client announced (`fourCcList`, or the keys of
        /// `videoFourCcInfoMap`); empty for a legacy client.
        fourccs: Vec<String>,
    },
    /// The client wants to publish. Answer with
    /// [`accept_publish`](ServerSession::accept_publish) or
    /// [`reject_publish`](ServerSession::reject_publish); media events may follow before the
    /// answer, because clients do not always wait for it.
    Publish {
        /// Message stream id the media will arrive on.
        stream_id: u32,
        /// The application from `connect`.
        app: String,
        /// The publishing name (the stream key), without any `?query`.
        name: String,
        /// The publishing name's query string (after `?`, not decoded), empty when none.
        query: String,
        /// The publishing type, usually `live`.
        publish_type: String,
    },
    /// Stream metadata (`@setDataFrame onMetaData` or `onMetaData`).
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// The metadata, usually an ECMA array or an object.
        values: Value,
    },
    /// An audio message: an FLV audio tag body.
    Audio {
        /// Absolute timestamp in milliseconds (wraps at 2^32).
        timestamp: u32,
        /// The FLV audio tag body.
        data: Bytes,
    },
    /// A video message: an FLV video tag body.
    Video {
        /// Absolute timestamp in milliseconds (wraps at 2^32).
        timestamp: u32,
        /// The FLV video tag body.
        data: Bytes,
    },
    /// The client stopped publishing (`FCUnpublish`, `deleteStream` or `closeStream`).
    Unpublish {
        /// Message stream id that was published on.
        stream_id: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    C0C1,
    C2,
    Chunks,
    /// Publish rejected: input is ignored, only transmits remain.
    Closed,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Publishing {
    stream_id: u32,
    accepted: bool,
}

/// Chunk stream ids this server sends on (the ones nginx-rtmp uses).
const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_STATUS: u32 = 5;

/// Most `createStream` calls a connection may make.
const MAX_STREAMS: u32 = 16;

/// A sans-IO RTMP server session for one TCP connection.
///
/// Feed it what the socket reads with [`handle_input`](Self::handle_input), then write out
/// everything [`poll_transmit`](Self::poll_transmit) returns and handle everything
/// [`poll_event`](Self::poll_event) returns. It never blocks and never reads a clock.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    seed: [u8; 32],
    phase: Phase,
    input: BytesMut,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: BytesMut,
    events: VecDeque<Event>,
    bytes_received: u64,
    acked: u64,
    peer_window: u32,
    app: Option<String>,
    next_stream_id: u32,
    publishing: Option<Publishing>,
}

impl ServerSession {
    /// A session waiting for C0/C1. `seed` supplies the random bytes of S1/S2: pass fresh
    /// random bytes per connection (the session itself has no randomness and no clock).
    pub fn new(config: ServerConfig, seed: [u8; 32]) -> Self {
        let decoder = ChunkDecoder::new(ChunkLimits {
            max_chunk_size: config.max_chunk_size,
            max_message_size: config.max_message_size,
            max_chunk_streams: config.max_chunk_streams,
        });
        ServerSession {
            config,
            seed,
            phase: Phase::C0C1,
            input: BytesMut::new(),
            decoder,
            encoder: ChunkEncoder::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            bytes_received: 0,
            acked: 0,
            peer_window: 0,
            app: None,
            next_stream_id: 1,
            publishing: None,
        }
    }

    /// Feeds bytes read from the socket. Any split of the input gives the same events.
    ///
    /// After [`reject_publish`](Self::reject_publish) input is ignored.
    ///
    /// # Errors
    /// Errors are fatal for the connection: flush the transmits, then close it. Later calls
    /// return [`Error::SessionFailed`].
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), Error> {
        match self.phase {
            Phase::Failed => return Err(Error::SessionFailed),
            Phase::Closed => return Ok(()),
            _ => {}
        }
        self.bytes_received += data.len() as u64;
        self.input.extend_from_slice(data);
        let res = self.process();
        if res.is_err() {
            self.phase = Phase::Failed;
            self.input = BytesMut::new();
        }
        res
    }

    fn process(&mut self) -> Result<(), Error> {
        loop {
            match self.phase {
                Phase::C0C1 => {
                    let Some(&c0) = self.input.first() else {
                        return Ok(());
                    };
                    handshake::check_c0(c0)?;
                    let Some(c1) = self.input.get(1..1 + HANDSHAKE_SIZE) else {
                        return Ok(());
                    };
                    let mut c1_arr = [0u8; HANDSHAKE_SIZE];
                    c1_arr.copy_from_slice(c1);
                    // S1's time field: the seed stands in for a clock, so use 0.
                    let resp = handshake::server_response(&c1_arr, 0, &self.seed);
                    self.out.extend_from_slice(&resp);
                    let _ = self.input.split_to(1 + HANDSHAKE_SIZE);
                    self.phase = Phase::C2;
                }
                Phase::C2 => {
                    // C2 is not checked: many clients send anything there.
                    if self.input.len() < HANDSHAKE_SIZE {
                        return Ok(());
                    }
                    let _ = self.input.split_to(HANDSHAKE_SIZE);
                    self.phase = Phase::Chunks;
                    self.events.push_back(Event::HandshakeDone);
                }
                Phase::Chunks => {
                    while let Some(msg) = self.decoder.decode(&mut self.input)? {
                        self.on_message(msg, true)?;
                        if self.phase != Phase::Chunks {
                            self.input = BytesMut::new();
                            return Ok(());
                        }
                    }
                    self.maybe_ack();
                    return Ok(());
                }
                Phase::Closed | Phase::Failed => return Ok(()),
            }
        }
    }

    fn maybe_ack(&mut self) {
        let window = u64::from(self.peer_window);
        if window > 0 && self.bytes_received - self.acked >= window {
            self.acked = self.bytes_received;
            let seq = self.bytes_received as u32; // wraps, as the spec intends
            self.send(
                CSID_CONTROL,
                msg_type::ACKNOWLEDGEMENT,
                0,
                Bytes::copy_from_slice(&seq.to_be_bytes()),
            );
        }
    }

    /// Next event for the application, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to write to the socket; call until `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Accepts the pending publish: sends Stream Begin and `NetStream.Publish.Start`.
    /// Does nothing if no publish is pending.
    pub fn accept_publish(&mut self) {
        let Some(p) = self.publishing.as_mut().filter(|p| !p.accepted) else {
            return;
        };
        p.accepted = true;
        let sid = p.stream_id;
        let mut uc = BytesMut::with_capacity(6);
        uc.put_u16(0); // Stream Begin
        uc.put_u32(sid);
        self.send(CSID_CONTROL, msg_type::USER_CONTROL, 0, uc.freeze());
        self.send_on_status(sid, "status", "NetStream.Publish.Start", "Start publishing");
    }

    /// Rejects the publish with an `onStatus` error, e.g. `NetStream.Publish.BadName`, and
    /// ends the session: events still queued are dropped, later input is ignored, and once
    /// [`poll_transmit`](Self::poll_transmit) is drained the connection should be closed.
    pub fn reject_publish(&mut self, code: &str, description: &str) {
        let sid = self.publishing.map_or(0, |p| p.stream_id);
        self.send_on_status(sid, "error", code, description);
        self.publishing = None;
        self.events.clear();
        self.input = BytesMut::new();
        if self.phase != Phase::Failed {
            self.phase = Phase::Closed;
        }
    }

    /// Sends an `onStatus` error (e.g. for an unsupported codec) on the publishing stream, or
    /// on stream 0 if there is none. The session goes on.
    pub fn send_status_error(&mut self, code: &str, description: &str) {
        let sid = self.publishing.map_or(0, |p| p.stream_id);
        self.send_on_status(sid, "error", code, description);
    }

    /// Bytes received so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Whether C2 has arrived.
    pub fn is_handshake_done(&self) -> bool {
        !matches!(self.phase, Phase::C0C1 | Phase::C2)
    }

    /// Whether the session ended (publish rejected or a fatal error): drain the transmits and
    /// close the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Failed)
    }

    fn send(&mut self, csid: u32, type_id: u8, stream_id: u32, payload: Bytes) {
        let msg = Message {
            csid,
            timestamp: 0,
            type_id,
            stream_id,
            payload,
        };
        // Only fails for payloads over 16 MiB or a bad csid, neither of which we build.
        let res = self.encoder.encode(&msg, &mut self.out);
        debug_assert!(res.is_ok(), "{res:?}");
    }

    fn send_command(&mut self, csid: u32, stream_id: u32, values: &[Value]) {
        let mut b = BytesMut::new();
        amf0::encode_all(values, &mut b);
        self.send(csid, msg_type::COMMAND_AMF0, stream_id, b.freeze());
    }

    fn send_on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.send_command(
            CSID_STATUS,
            stream_id,
            &[
                Value::string("onStatus"),
                Value::Number(0.0),
                Value::Null,
                Value::object([
                    ("level", Value::string(level)),
                    ("code", Value::string(code)),
                    ("description", Value::string(description)),
                ]),
            ],
        );
    }

    fn send_result(&mut self, txn: f64, props: Value, info: Value) {
        self.send_command(
            CSID_COMMAND,
            0,
            &[Value::string("_result"), Value::Number(txn), props, info],
        );
    }

    fn send_error(&mut self, txn: f64, code: &str, description: &str) {
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                Value::string("_error"),
                Value::Number(txn),
                Value::Null,
                Value::object([
                    ("level", Value::string("error")),
                    ("code", Value::string(code)),
                    ("description", Value::string(description)),
                ]),
            ],
        );
    }

    fn on_message(&mut self, msg: Message, allow_aggregate: bool) -> Result<(), Error> {
        match msg.type_id {
            // Applied by the chunk decoder; acknowledgements and bandwidth need no answer.
            msg_type::SET_CHUNK_SIZE
            | msg_type::ABORT
            | msg_type::ACKNOWLEDGEMENT
            | msg_type::SET_PEER_BANDWIDTH => {}
            msg_type::WINDOW_ACK_SIZE => {
                self.peer_window = control_u32(&msg, 0)?;
            }
            msg_type::USER_CONTROL => {
                let invalid = || Error::InvalidControlMessage {
                    type_id: msg.type_id,
                    len: msg.payload.len(),
                };
                let kind = msg.payload.get(..2).ok_or_else(invalid)?;
                // PingRequest (6) gets a PingResponse (7) with the same timestamp.
                if kind == [0, 6] {
                    let ts = control_u32(&msg, 2)?;
                    let mut b = BytesMut::with_capacity(6);
                    b.put_u16(7);
                    b.put_u32(ts);
                    self.send(CSID_CONTROL, msg_type::USER_CONTROL, 0, b.freeze());
                }
            }
            // Media only counts once a publish is pending or accepted.
            msg_type::AUDIO | msg_type::VIDEO if self.publishing.is_some() => {
                let (timestamp, data) = (msg.timestamp, msg.payload);
                self.events.push_back(if msg.type_id == msg_type::AUDIO {
                    Event::Audio { timestamp, data }
                } else {
                    Event::Video { timestamp, data }
                });
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => self.on_data(&msg),
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let body = strip_amf3_prefix(&msg);
                let values = amf0::decode_all(body)?;
                self.on_command(msg.stream_id, values)?;
            }
            msg_type::AGGREGATE if allow_aggregate => self.on_aggregate(&msg)?,
            msg_type::AGGREGATE => {
                return Err(Error::InvalidAggregate {
                    reason: "aggregate nested in an aggregate",
                })
            }
            // Shared objects and unknown types: nothing a publisher needs.
            _ => {}
        }
        Ok(())
    }

    fn on_data(&mut self, msg: &Message) {
        if self.publishing.is_none() {
            return;
        }
        // Undecodable data messages are dropped rather than ending the publish: they only
        // carry metadata and cue points.
        let Ok(values) = amf0::decode_all(strip_amf3_prefix(msg)) else {
            return;
        };
        let mut it = values.into_iter().peekable();
        if it.peek().and_then(Value::as_str) == Some("@setDataFrame") {
            it.next();
        }
        if it.next().as_ref().and_then(Value::as_str) == Some("onMetaData") {
            if let Some(values) = it.next() {
                self.events.push_back(Event::Metadata {
                    stream_id: msg.stream_id,
                    values,
                });
            }
        }
    }

    /// Splits an aggregate message into its FLV tags (11-byte header, body, 4-byte back
    /// pointer). Sub-message timestamps keep their offsets from the first tag, rebased on the
    /// aggregate's own timestamp.
    fn on_aggregate(&mut self, msg: &Message) -> Result<(), Error> {
        let p = &msg.payload;
        let mut pos = 0usize;
        let mut first_ts = None;
        while pos < p.len() {
            let hdr = p.get(pos..pos + 11).ok_or(Error::InvalidAggregate {
                reason: "truncated FLV tag header",
            })?;
            let type_id = hdr[0] & 0x1f;
            let size =
                (usize::from(hdr[1]) << 16) | (usize::from(hdr[2]) << 8) | usize::from(hdr[3]);
            let ts = u32::from_be_bytes([hdr[7], hdr[4], hdr[5], hdr[6]]);
            let body_start = pos + 11;
            let body_end = body_start + size;
            if body_end > p.len() {
                return Err(Error::InvalidAggregate {
                    reason: "FLV tag body runs past the message",
                });
            }
            let base = *first_ts.get_or_insert(ts);
            let sub = Message {
                csid: msg.csid,
                timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(base)),
                type_id,
                stream_id: msg.stream_id,
                payload: p.slice(body_start..body_end),
            };
            if matches!(
                type_id,
                msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0
            ) {
                self.on_message(sub, false)?;
            }
            // The back pointer (previous tag size) may be missing after the last tag.
            pos = (body_end + 4).min(p.len());
        }
        Ok(())
    }

    fn on_command(&mut self, stream_id: u32, values: Vec<Value>) -> Result<(), Error> {
        let mut it = values.into_iter();
        let name = match it.next() {
            Some(Value::String(s) | Value::LongString(s)) => s,
            _ => {
                return Err(Error::InvalidCommand {
                    reason: "the first value is not a command name",
                })
            }
        };
        let txn = it.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let cmd_obj = it.next().unwrap_or(Value::Null);
        let args: Vec<Value> = it.collect();

        if name == "connect" {
            return self.on_connect(txn, &cmd_obj);
        }
        let Some(app) = self.app.clone() else {
            return Err(Error::CommandBeforeConnect { name });
        };
        match name.as_str() {
            "releaseStream" | "FCPublish" => {
                if txn != 0.0 {
                    self.send_result(txn, Value::Null, Value::Undefined);
                }
            }
            "createStream" => {
                if self.next_stream_id > MAX_STREAMS {
                    self.send_error(txn, "NetConnection.Call.Failed", "Too many streams.");
                } else {
                    let id = self.next_stream_id;
                    self.next_stream_id += 1;
                    self.send_result(txn, Value::Null, Value::Number(f64::from(id)));
                }
            }
            "publish" => self.on_publish(stream_id, app, &args),
            "play" | "play2" => self.send_on_status(
                stream_id,
                "error",
                "NetStream.Play.Failed",
                "Playback over RTMP is not supported; play over HLS.",
            ),
            "FCUnpublish" => {
                if let Some(p) = self.publishing {
                    self.unpublish(p.stream_id);
                }
            }
            "deleteStream" => {
                let sid = args.first().and_then(Value::as_number).unwrap_or(-1.0);
                if let Some(p) = self.publishing.filter(|p| f64::from(p.stream_id) == sid) {
                    self.unpublish(p.stream_id);
                }
            }
            "closeStream" => {
                if let Some(p) = self.publishing.filter(|p| p.stream_id == stream_id) {
                    self.unpublish(p.stream_id);
                }
            }
            // Answers to our own calls, and notifications: nothing to do.
            "_result" | "_error" | "onStatus" | "onBWDone" | "_checkbw" | "getStreamLength" => {}
            other => {
                if txn != 0.0 {
                    let desc = format!("Method not found ({other}).");
                    self.send_error(txn, "NetConnection.Call.Failed", &desc);
                }
            }
        }
        Ok(())
    }

    fn on_connect(&mut self, txn: f64, cmd_obj: &Value) -> Result<(), Error> {
        if self.app.is_some() {
            self.send_error(txn, "NetConnection.Connect.Rejected", "Already connected.");
            return Ok(());
        }
        let get_str = |k: &str| cmd_obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let app = get_str("app").unwrap_or_default();
        let tc_url = get_str("tcUrl");
        let flash_ver = get_str("flashVer");
        let object_encoding = cmd_obj
            .get("objectEncoding")
            .and_then(Value::as_number)
            .unwrap_or(0.0);

        let window = self.config.window_ack_size;
        self.send(
            CSID_CONTROL,
            msg_type::WINDOW_ACK_SIZE,
            0,
            Bytes::copy_from_slice(&window.to_be_bytes()),
        );
        let mut bw = BytesMut::with_capacity(5);
        bw.put_u32(window);
        bw.put_u8(2); // dynamic
        self.send(CSID_CONTROL, msg_type::SET_PEER_BANDWIDTH, 0, bw.freeze());
        let chunk = self.config.out_chunk_size.clamp(128, 0x7FFF_FFFF);
        self.send(
            CSID_CONTROL,
            msg_type::SET_CHUNK_SIZE,
            0,
            Bytes::copy_from_slice(&chunk.to_be_bytes()),
        );
        self.encoder.set_chunk_size(chunk);
        let (fourccs, answer) = self.enhanced_answer(cmd_obj);
        let mut props = vec![
            ("fmsVer".to_owned(), Value::string("FMS/3,0,1,123")),
            ("capabilities".to_owned(), Value::Number(31.0)),
        ];
        props.extend(answer);
        self.send_result(
            txn,
            Value::Object(props),
            Value::object([
                ("level", Value::string("status")),
                ("code", Value::string("NetConnection.Connect.Success")),
                ("description", Value::string("Connection succeeded.")),
                ("objectEncoding", Value::Number(object_encoding)),
            ]),
        );
        self.app = Some(app.clone());
        self.events.push_back(Event::Connect {
            app,
            tc_url,
            flash_ver,
            fourccs,
        });
        Ok(())
    }

    /// What an Enhanced RTMP client announced in `connect`, and the properties that answer it
    /// in kind: `fourCcList` (v1) with the codecs both sides know (`*` from the client means
    /// any), `videoFourCcInfoMap` (v2) with what this server decodes and forwards. A legacy
    /// client announces nothing and gets neither.
    fn enhanced_answer(&self, cmd_obj: &Value) -> (Vec<String>, Vec<(String, Value)>) {
        let ours = &self.config.video_fourccs;
        let mut announced = Vec::new();
        let mut answer = Vec::new();
        if let Some(Value::StrictArray(list)) = cmd_obj.get("fourCcList") {
            announced = first_fourccs(list.iter().filter_map(Value::as_str));
            let any = announced.iter().any(|f| f == "*");
            let both = ours
                .iter()
                .filter(|f| any || announced.contains(f))
                .map(|f| Value::string(f.as_str()))
                .collect();
            answer.push(("fourCcList".to_owned(), Value::StrictArray(both)));
        }
        if let Some(map) = cmd_obj
            .get("videoFourCcInfoMap")
            .and_then(Value::as_properties)
        {
            for fourcc in first_fourccs(map.iter().map(|(k, _)| k.as_str())) {
                if !announced.contains(&fourcc) {
                    announced.push(fourcc);
                }
            }
            let info = ours
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        Value::Number(FOURCC_CAN_DECODE + FOURCC_CAN_FORWARD),
                    )
                })
                .collect();
            answer.push(("videoFourCcInfoMap".to_owned(), Value::EcmaArray(info)));
        }
        announced.truncate(MAX_ANNOUNCED);
        (announced, answer)
    }

    fn on_publish(&mut self, stream_id: u32, app: String, args: &[Value]) {
        if stream_id == 0 || stream_id >= self.next_stream_id {
            self.send_on_status(
                stream_id,
                "error",
                "NetStream.Publish.BadConnection",
                "Publish on a stream that createStream did not return.",
            );
            return;
        }
        if self.publishing.is_some() {
            self.send_on_status(
                stream_id,
                "error",
                "NetStream.Publish.BadConnection",
                "This connection is already publishing.",
            );
            return;
        }
        let raw = args.first().and_then(Value::as_str).unwrap_or("");
        let (name, query) = raw.split_once('?').unwrap_or((raw, ""));
        let (name, query) = (name.to_owned(), query.to_owned());
        let publish_type = args
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or("live")
            .to_owned();
        self.publishing = Some(Publishing {
            stream_id,
            accepted: false,
        });
        self.events.push_back(Event::Publish {
            stream_id,
            app,
            name,
            query,
            publish_type,
        });
    }

    fn unpublish(&mut self, stream_id: u32) {
        self.publishing = None;
        self.send_on_status(
            stream_id,
            "status",
            "NetStream.Unpublish.Success",
            "Stop publishing.",
        );
        self.events.push_back(Event::Unpublish { stream_id });
    }
}

/// AMF3 command and data messages start with a format byte of 0, then AMF0 values.
fn strip_amf3_prefix(msg: &Message) -> &[u8] {
    let p = &msg.payload[..];
    match (msg.type_id, p.first()) {
        (msg_type::COMMAND_AMF3 | msg_type::DATA_AMF3, Some(0)) => &p[1..],
        _ => p,
    }
}

fn control_u32(msg: &Message, at: usize) -> Result<u32, Error> {
    match msg.payload.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(Error::InvalidControlMessage {
            type_id: msg.type_id,
            len: msg.payload.len(),
        }),
    }
}
