//! The publish command sequence and the session's limits, driven by a test client.

use bytes::BytesMut;
use rtmp::amf0::{self, Value};
use rtmp::chunk::{msg_type, ChunkDecoder, ChunkLimits, Message};
use rtmp::testing::TestClient;
use rtmp::{Error, Event, ServerConfig, ServerSession};

/// A session after the handshake, with the server's S0/S1/S2 drained.
fn connected_session() -> (ServerSession, TestClient, ServerReader) {
    let mut s = ServerSession::new(ServerConfig::default(), [1; 32]);
    s.handle_input(&TestClient::handshake()).unwrap();
    let mut reader = ServerReader::new();
    reader.skip_handshake(&mut s);
    assert_eq!(s.poll_event(), Some(Event::HandshakeDone));
    (s, TestClient::new(), reader)
}

/// Decodes what the server sends, the way a client would.
struct ServerReader {
    dec: ChunkDecoder,
    buf: BytesMut,
}

impl ServerReader {
    fn new() -> Self {
        ServerReader {
            dec: ChunkDecoder::new(ChunkLimits::default()),
            buf: BytesMut::new(),
        }
    }

    fn skip_handshake(&mut self, s: &mut ServerSession) {
        let mut n = 0;
        while let Some(b) = s.poll_transmit() {
            n += b.len();
        }
        assert_eq!(n, 3073);
    }

    fn messages(&mut self, s: &mut ServerSession) -> Vec<Message> {
        while let Some(b) = s.poll_transmit() {
            self.buf.extend_from_slice(&b);
        }
        let mut out = Vec::new();
        while let Some(m) = self.dec.decode(&mut self.buf).unwrap() {
            out.push(m);
        }
        out
    }
}

fn command_values(m: &Message) -> Vec<Value> {
    assert_eq!(m.type_id, msg_type::COMMAND_AMF0);
    amf0::decode_all(&m.payload).unwrap()
}

fn status_code(m: &Message) -> (String, String) {
    let v = command_values(m);
    assert_eq!(v[0].as_str(), Some("onStatus"));
    let info = &v[3];
    (
        info.get("level")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned(),
        info.get("code").and_then(Value::as_str).unwrap().to_owned(),
    )
}

fn events(s: &mut ServerSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn connect_sequence() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.connect("live")).unwrap();
    let msgs = r.messages(&mut s);
    let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
    assert_eq!(
        types,
        [
            msg_type::WINDOW_ACK_SIZE,
            msg_type::SET_PEER_BANDWIDTH,
            msg_type::SET_CHUNK_SIZE,
            msg_type::COMMAND_AMF0
        ]
    );
    assert_eq!(msgs[2].payload[..], 4096u32.to_be_bytes());
    let v = command_values(&msgs[3]);
    assert_eq!(v[0].as_str(), Some("_result"));
    assert_eq!(v[1], Value::Number(1.0));
    assert_eq!(
        v[3].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(
        events(&mut s),
        [Event::Connect {
            app: "live".into(),
            tc_url: Some("rtmp://localhost/live".into()),
            flash_ver: Some("FMLE/3.0 (compatible; FMSc/1.0)".into()),
            fourccs: Vec::new(),
        }]
    );
    assert_eq!(
        v[2].get("fourCcList"),
        None,
        "a legacy client hears nothing of it"
    );
}

#[test]
fn an_enhanced_client_is_answered_in_kind() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.command(
        0,
        &[
            Value::string("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", Value::string("live")),
                (
                    "fourCcList",
                    Value::StrictArray(["av01", "vp09", "hvc1"].map(Value::string).to_vec()),
                ),
                (
                    "videoFourCcInfoMap",
                    Value::EcmaArray(vec![("vp09".into(), Value::Number(1.0))]),
                ),
            ]),
        ],
    ))
    .unwrap();
    let msgs = r.messages(&mut s);
    let v = command_values(&msgs[3]);
    assert_eq!(
        v[2].get("fourCcList"),
        Some(&Value::StrictArray(
            ["hvc1", "av01"].map(Value::string).to_vec()
        )),
        "the codecs both sides know, VP9 left out"
    );
    let map = v[2]
        .get("videoFourCcInfoMap")
        .and_then(Value::as_properties)
        .unwrap();
    let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["avc1", "hvc1", "av01"]);
    assert!(
        map.iter().all(|(_, v)| *v == Value::Number(5.0)),
        "decode and forward"
    );
    match &events(&mut s)[0] {
        Event::Connect { fourccs, .. } => assert_eq!(fourccs, &["av01", "vp09", "hvc1"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_accept_media_unpublish() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.connect("live")).unwrap();
    for cmd in ["releaseStream", "FCPublish"] {
        s.handle_input(&c.command(
            0,
            &[
                Value::string(cmd),
                Value::Number(2.0),
                Value::Null,
                Value::string("k"),
            ],
        ))
        .unwrap();
    }
    // Media before publish is dropped.
    s.handle_input(&c.message(4, 5, msg_type::VIDEO, 1, &[0x17, 0]))
        .unwrap();
    s.handle_input(&c.create_and_publish("secret?token=abc&x=1"))
        .unwrap();
    let msgs = r.messages(&mut s);
    let results: Vec<Value> = msgs
        .iter()
        .filter(|m| m.type_id == msg_type::COMMAND_AMF0)
        .map(|m| command_values(m)[3].clone())
        .collect();
    // connect, releaseStream, FCPublish, createStream -> stream id 1.
    assert_eq!(results.len(), 4);
    assert_eq!(results[3], Value::Number(1.0));
    let ev = events(&mut s);
    assert_eq!(
        ev[1],
        Event::Publish {
            stream_id: 1,
            app: "live".into(),
            name: "secret".into(),
            query: "token=abc&x=1".into(),
            publish_type: "live".into(),
        }
    );
    assert_eq!(ev.len(), 2);

    s.accept_publish();
    let msgs = r.messages(&mut s);
    assert_eq!(msgs[0].type_id, msg_type::USER_CONTROL);
    assert_eq!(msgs[0].payload[..], [0, 0, 0, 0, 0, 1], "Stream Begin 1");
    assert_eq!(msgs[1].stream_id, 1);
    assert_eq!(
        status_code(&msgs[1]),
        ("status".into(), "NetStream.Publish.Start".into())
    );
    s.accept_publish(); // twice: nothing more
    assert!(r.messages(&mut s).is_empty());

    let mut meta = BytesMut::new();
    amf0::encode_all(
        &[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray(vec![("width".into(), Value::Number(640.0))]),
        ],
        &mut meta,
    );
    s.handle_input(&c.message(4, 0, msg_type::DATA_AMF0, 1, &meta))
        .unwrap();
    s.handle_input(&c.message(4, 0, msg_type::VIDEO, 1, &[0x17, 0, 1]))
        .unwrap();
    s.handle_input(&c.message(4, 0xFF_FFFF, msg_type::AUDIO, 1, &[0xaf, 1]))
        .unwrap();
    s.handle_input(&c.message(4, 0x0100_0020, msg_type::AUDIO, 1, &[0xaf, 1, 2]))
        .unwrap();
    // OBS stops with FCUnpublish then deleteStream: one Unpublish.
    s.handle_input(&c.command(
        0,
        &[
            Value::string("FCUnpublish"),
            Value::Number(6.0),
            Value::Null,
            Value::string("secret"),
        ],
    ))
    .unwrap();
    s.handle_input(&c.command(
        0,
        &[
            Value::string("deleteStream"),
            Value::Number(7.0),
            Value::Null,
            Value::Number(1.0),
        ],
    ))
    .unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], Event::Metadata { stream_id: 1, values } if values.get("width") == Some(&Value::Number(640.0)))
    );
    assert!(matches!(&ev[1], Event::Video { timestamp: 0, data } if data[..] == [0x17, 0, 1]));
    assert!(matches!(
        &ev[2],
        Event::Audio {
            timestamp: 0xFF_FFFF,
            ..
        }
    ));
    assert!(matches!(
        &ev[3],
        Event::Audio {
            timestamp: 0x0100_0020,
            ..
        }
    ));
    assert_eq!(ev[4], Event::Unpublish { stream_id: 1 });
    assert_eq!(ev.len(), 5);
    let msgs = r.messages(&mut s);
    assert_eq!(
        status_code(&msgs[0]),
        ("status".into(), "NetStream.Unpublish.Success".into())
    );
}

#[test]
fn wrong_key_is_rejected() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.connect("live")).unwrap();
    let mut input = c.create_and_publish("wrong-key");
    input.extend(c.message(4, 0, msg_type::VIDEO, 1, &[0x17, 0]));
    s.handle_input(&input).unwrap();
    let _ = r.messages(&mut s);
    let ev = events(&mut s);
    assert!(matches!(&ev[1], Event::Publish { name, .. } if name == "wrong-key"));
    // The video that arrived with the publish is still queued... (it was polled above)
    s.handle_input(&c.message(4, 33, msg_type::VIDEO, 1, &[0x27, 1]))
        .unwrap();
    s.reject_publish("NetStream.Publish.BadName", "Unknown stream key.");
    assert!(s.is_closed());
    assert_eq!(s.poll_event(), None, "queued media is dropped on reject");
    let msgs = r.messages(&mut s);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].stream_id, 1);
    assert_eq!(
        status_code(&msgs[0]),
        ("error".into(), "NetStream.Publish.BadName".into())
    );
    // Later input is ignored.
    s.handle_input(&c.message(4, 66, msg_type::VIDEO, 1, &[0x27, 1]))
        .unwrap();
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn play_unknown_and_status_errors() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.connect("live")).unwrap();
    let _ = r.messages(&mut s);
    let _ = events(&mut s);
    s.handle_input(&c.command(
        0,
        &[
            Value::string("createStream"),
            Value::Number(2.0),
            Value::Null,
        ],
    ))
    .unwrap();
    s.handle_input(&c.command(
        1,
        &[
            Value::string("play"),
            Value::Number(0.0),
            Value::Null,
            Value::string("x"),
        ],
    ))
    .unwrap();
    s.handle_input(&c.command(
        0,
        &[Value::string("noSuchCall"), Value::Number(9.0), Value::Null],
    ))
    .unwrap();
    // Publishing on a stream that was never created is refused.
    s.handle_input(&c.command(
        7,
        &[
            Value::string("publish"),
            Value::Number(0.0),
            Value::Null,
            Value::string("k"),
        ],
    ))
    .unwrap();
    assert_eq!(events(&mut s), []);
    let msgs = r.messages(&mut s);
    assert_eq!(msgs.len(), 4);
    assert_eq!(
        status_code(&msgs[1]),
        ("error".into(), "NetStream.Play.Failed".into())
    );
    let v = command_values(&msgs[2]);
    assert_eq!(
        (v[0].as_str(), &v[1]),
        (Some("_error"), &Value::Number(9.0))
    );
    assert_eq!(status_code(&msgs[3]).0, "error");
    s.send_status_error("NetStream.Publish.Failed", "H.265 is not supported.");
    let msgs = r.messages(&mut s);
    assert_eq!(
        status_code(&msgs[0]),
        ("error".into(), "NetStream.Publish.Failed".into())
    );
    assert!(!s.is_closed());
}

#[test]
fn ping_and_acknowledgement() {
    let (mut s, mut c, mut r) = connected_session();
    s.handle_input(&c.message(2, 0, msg_type::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes()))
        .unwrap();
    s.handle_input(&c.message(2, 0, msg_type::USER_CONTROL, 0, &[0, 6, 0, 0, 0x12, 0x34]))
        .unwrap();
    let msgs = r.messages(&mut s);
    // The handshake alone passed the 1000-byte window: an ack, then the ping response.
    assert_eq!(msgs[0].type_id, msg_type::ACKNOWLEDGEMENT);
    assert_eq!(msgs[1].type_id, msg_type::USER_CONTROL);
    assert_eq!(
        msgs[1].payload[..],
        [0, 7, 0, 0, 0x12, 0x34],
        "PingResponse"
    );
    s.handle_input(&c.connect("live")).unwrap();
    let _ = r.messages(&mut s);
    // Padding data messages until the window is passed.
    for _ in 0..10 {
        s.handle_input(&c.message(6, 0, msg_type::DATA_AMF0, 0, &[0x05; 100]))
            .unwrap();
    }
    let acks: Vec<u32> = r
        .messages(&mut s)
        .iter()
        .filter(|m| m.type_id == msg_type::ACKNOWLEDGEMENT)
        .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
        .collect();
    assert!(!acks.is_empty());
    for w in acks.windows(2) {
        assert!(
            w[1] - w[0] >= 1000,
            "acks at most once per window: {acks:?}"
        );
    }
    assert!(u64::from(*acks.last().unwrap()) + 1000 > s.bytes_received());
}

#[test]
fn aggregate_is_split() {
    let (mut s, mut c, _r) = connected_session();
    s.handle_input(&c.connect("live")).unwrap();
    s.handle_input(&c.create_and_publish("k")).unwrap();
    let _ = events(&mut s);
    s.accept_publish();
    let mut agg = Vec::new();
    for (ty, ts, body) in [
        (9u8, 1000u32, &[0x17u8, 1, 9][..]),
        (8, 1021, &[0xaf, 1][..]),
    ] {
        agg.extend_from_slice(&[ty, 0, 0, body.len() as u8]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.push((ts >> 24) as u8);
        agg.extend_from_slice(&[0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    s.handle_input(&c.message(4, 500, msg_type::AGGREGATE, 1, &agg))
        .unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[0], Event::Video { timestamp: 500, data } if data[..] == [0x17, 1, 9]));
    assert!(matches!(&ev[1], Event::Audio { timestamp: 521, data } if data[..] == [0xaf, 1]));
    // A truncated aggregate is an error.
    let res = s.handle_input(&c.message(4, 600, msg_type::AGGREGATE, 1, &agg[..13]));
    assert!(matches!(res, Err(Error::InvalidAggregate { .. })));
}

#[test]
fn limits_through_the_session() {
    // Set Chunk Size 2^31.
    let (mut s, mut c, _r) = connected_session();
    let res = s.handle_input(&c.message(
        2,
        0,
        msg_type::SET_CHUNK_SIZE,
        0,
        &0x8000_0000u32.to_be_bytes(),
    ));
    assert_eq!(res, Err(Error::InvalidChunkSize { size: 0x8000_0000 }));
    assert!(s.is_closed());
    assert_eq!(s.handle_input(&[0]), Err(Error::SessionFailed));

    // A header declaring 16 MiB: an error from the 12 header bytes alone.
    let (mut s, _c, _r) = connected_session();
    let res = s.handle_input(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
    assert!(matches!(
        res,
        Err(Error::MessageTooLarge {
            size: 0xFF_FFFF,
            ..
        })
    ));

    // Garbage after the handshake.
    let (mut s, _c, _r) = connected_session();
    let res = s.handle_input(b"\x7fELF garbage garbage garbage");
    assert!(res.is_err(), "{res:?}");

    // Commands before connect.
    let (mut s, mut c, _r) = connected_session();
    let res = s.handle_input(&c.create_and_publish("k"));
    assert!(matches!(res, Err(Error::CommandBeforeConnect { .. })));

    // Too many chunk streams.
    let cfg = ServerConfig {
        max_chunk_streams: 4,
        ..ServerConfig::default()
    };
    let mut s = ServerSession::new(cfg, [0; 32]);
    s.handle_input(&TestClient::handshake()).unwrap();
    let mut c = TestClient::new();
    let mut res = Ok(());
    for csid in 3..10 {
        res = s.handle_input(&c.message(csid, 0, msg_type::DATA_AMF0, 0, &[5]));
        if res.is_err() {
            break;
        }
    }
    assert_eq!(res, Err(Error::TooManyChunkStreams { max: 4 }));
}

#[test]
fn seeds_decode() {
    for (name, bytes) in rtmp::testing::session_cases() {
        let mut s = ServerSession::new(ServerConfig::default(), [0; 32]);
        s.handle_input(&TestClient::handshake()).unwrap();
        s.handle_input(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ev = events(&mut s);
        assert!(ev.len() >= 2, "{name}: {ev:?}");
    }
}
