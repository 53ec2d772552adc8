//! Test helpers: a minimal client that builds handshakes and chunked commands. Not part of
//! the supported API.

use bytes::{Bytes, BytesMut};

use crate::amf0::{self, Value};
use crate::chunk::{msg_type, ChunkEncoder, Message};
use crate::handshake::{client, HANDSHAKE_SIZE};

/// A client that writes what OBS would, message by message.
#[derive(Debug, Default)]
pub struct TestClient {
    /// The client's chunk encoder.
    pub encoder: ChunkEncoder,
}

impl TestClient {
    /// A client with chunk size 128.
    pub fn new() -> Self {
        Self::default()
    }

    /// C0 + simple C1 + C2.
    pub fn handshake() -> Vec<u8> {
        let mut v = client::simple_c0c1(1);
        v.extend_from_slice(&[2u8; HANDSHAKE_SIZE]);
        v
    }

    /// Any message.
    pub fn message(
        &mut self,
        csid: u32,
        ts: u32,
        type_id: u8,
        sid: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = BytesMut::new();
        let msg = Message {
            csid,
            timestamp: ts,
            type_id,
            stream_id: sid,
            payload: Bytes::copy_from_slice(payload),
        };
        self.encoder
            .encode(&msg, &mut out)
            .expect("encodable test message");
        out.to_vec()
    }

    /// An AMF0 command on csid 3.
    pub fn command(&mut self, sid: u32, values: &[Value]) -> Vec<u8> {
        let mut b = BytesMut::new();
        amf0::encode_all(values, &mut b);
        self.message(3, 0, msg_type::COMMAND_AMF0, sid, &b)
    }

    /// `connect` to `app`.
    pub fn connect(&mut self, app: &str) -> Vec<u8> {
        self.command(
            0,
            &[
                Value::string("connect"),
                Value::Number(1.0),
                Value::object([
                    ("app", Value::string(app)),
                    ("tcUrl", Value::string(format!("rtmp://localhost/{app}"))),
                    ("flashVer", Value::string("FMLE/3.0 (compatible; FMSc/1.0)")),
                ]),
            ],
        )
    }

    /// `createStream` then `publish name live` on stream 1.
    pub fn create_and_publish(&mut self, name: &str) -> Vec<u8> {
        let mut v = self.command(
            0,
            &[
                Value::string("createStream"),
                Value::Number(2.0),
                Value::Null,
            ],
        );
        v.extend(self.command(
            1,
            &[
                Value::string("publish"),
                Value::Number(3.0),
                Value::Null,
                Value::string(name),
                Value::string("live"),
            ],
        ));
        v
    }
}

/// Chunk-stream inputs that follow a handshake: the table that seeds the `rtmp_session` and
/// `rtmp_chunk` fuzz targets.
pub fn session_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut publish = TestClient::new();
    let mut p = publish.connect("live");
    p.extend(publish.create_and_publish("key?token=1"));
    let mut meta = BytesMut::new();
    amf0::encode_all(
        &[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray(vec![("width".into(), Value::Number(640.0))]),
        ],
        &mut meta,
    );
    p.extend(publish.message(4, 0, msg_type::DATA_AMF0, 1, &meta));
    p.extend(publish.message(
        4,
        0,
        msg_type::VIDEO,
        1,
        &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f],
    ));
    p.extend(publish.message(4, 0, msg_type::AUDIO, 1, &[0xaf, 0, 0x11, 0x90]));
    p.extend(publish.message(
        4,
        33,
        msg_type::VIDEO,
        1,
        &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41],
    ));
    p.extend(publish.message(4, 0xFF_FFFF, msg_type::VIDEO, 1, &[0x27, 1, 0, 0, 0]));
    p.extend(publish.command(
        0,
        &[
            Value::string("deleteStream"),
            Value::Number(5.0),
            Value::Null,
            Value::Number(1.0),
        ],
    ));

    let mut control = TestClient::new();
    let mut c = control.message(2, 0, msg_type::SET_CHUNK_SIZE, 0, &4096u32.to_be_bytes());
    control.encoder.set_chunk_size(4096);
    c.extend(control.message(2, 0, msg_type::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes()));
    c.extend(control.message(2, 0, msg_type::USER_CONTROL, 0, &[0, 6, 0, 0, 1, 0]));
    c.extend(control.connect("live"));

    vec![("publish", p), ("control", c)]
}
