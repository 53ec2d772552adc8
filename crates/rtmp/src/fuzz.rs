//! Fuzz entry points, always compiled so that `fuzz/` targets are one-liners and a plain
//! `cargo test` keeps them building. Each must never panic, whatever `data` is.

use bytes::BytesMut;

use crate::amf0;
use crate::chunk::{ChunkDecoder, ChunkLimits};
use crate::session::{Event, ServerConfig, ServerSession};

/// Feeds `data` to a [`ChunkDecoder`] with the default limits until it needs more or fails.
pub fn chunk(data: &[u8]) {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = dec.decode(&mut buf) {}
}

/// A valid simple handshake, then `data` (in two pieces, split at its first byte's value)
/// into a [`ServerSession`] that accepts any publish.
pub fn session(data: &[u8]) {
    let mut s = ServerSession::new(ServerConfig::default(), [0; 32]);
    let mut hs = crate::handshake::client::simple_c0c1(0x5a);
    hs.extend_from_slice(&[0u8; crate::handshake::HANDSHAKE_SIZE]);
    if s.handle_input(&hs).is_err() {
        return;
    }
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        if s.handle_input(piece).is_err() {
            break;
        }
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::Publish { .. }) {
                s.accept_publish();
            }
        }
    }
}

/// Decodes one AMF0 value; if that works, re-encoding and decoding again must give the same
/// bytes. Also runs [`amf0::decode_all`].
pub fn amf0(data: &[u8]) {
    let _ = amf0::decode_all(data);
    let mut input = data;
    if let Ok(Some(v)) = amf0::decode(&mut input) {
        let mut first = BytesMut::new();
        amf0::encode(&v, &mut first);
        let again = match amf0::decode(&mut &first[..]) {
            Ok(Some(again)) => again,
            other => panic!("re-encoded AMF0 does not decode: {other:?}"),
        };
        let mut second = BytesMut::new();
        amf0::encode(&again, &mut second);
        assert_eq!(first, second, "AMF0 re-encoding is not stable");
    }
}
