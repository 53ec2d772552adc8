//! Handshake, chunk stream and AMF0 tests.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rtmp::amf0::{self, Value};
use rtmp::chunk::{msg_type, ChunkDecoder, ChunkEncoder, ChunkLimits, Message};
use rtmp::handshake::{client, HANDSHAKE_SIZE};
use rtmp::{Error, Event, ServerConfig, ServerSession};

fn session() -> ServerSession {
    ServerSession::new(ServerConfig::default(), [9; 32])
}

fn drain(s: &mut ServerSession) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = s.poll_transmit() {
        v.extend_from_slice(&b);
    }
    v
}

// ---------------------------------------------------------------- handshake

#[test]
fn simple_handshake_echoes_c1() {
    let mut s = session();
    let c0c1 = client::simple_c0c1(0xab);
    s.handle_input(&c0c1).unwrap();
    let out = drain(&mut s);
    assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
    assert_eq!(out[0], 3);
    assert_eq!(
        out[5..9],
        [0, 0, 0, 0],
        "simple S1 has a zero version field"
    );
    assert_eq!(out[1 + HANDSHAKE_SIZE..], c0c1[1..], "S2 echoes C1");
    assert!(!s.is_handshake_done());
    s.handle_input(&[0u8; HANDSHAKE_SIZE]).unwrap();
    assert!(s.is_handshake_done());
    assert_eq!(s.poll_event(), Some(Event::HandshakeDone));
    assert_eq!(s.bytes_received(), (1 + 2 * HANDSHAKE_SIZE) as u64);
}

#[test]
fn complex_handshake_both_schemes() {
    for scheme in [0u8, 1] {
        let c1 = client::digest_c1(scheme, 3 + scheme);
        assert_eq!(
            rtmp::handshake::find_client_digest(&c1).map(|d| d.0),
            Some(scheme)
        );
        let mut s = session();
        let mut input = vec![3u8];
        input.extend_from_slice(&c1);
        s.handle_input(&input).unwrap();
        let out = drain(&mut s);
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        let s1: [u8; HANDSHAKE_SIZE] = out[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
        let s2: [u8; HANDSHAKE_SIZE] = out[1 + HANDSHAKE_SIZE..].try_into().unwrap();
        assert_ne!(s1[4..8], [0, 0, 0, 0], "digest S1 carries a version");
        assert!(
            client::s1_digest_valid(&s1, scheme),
            "S1 digest, scheme {scheme}"
        );
        assert!(client::s2_valid(&c1, &s2), "S2 signature, scheme {scheme}");
        // A simple C1 does not validate as digest.
        assert!(!client::s2_valid(&c1, &[0; HANDSHAKE_SIZE]));
    }
}

#[test]
fn handshake_is_deterministic() {
    let run = || {
        let mut s = session();
        s.handle_input(&client::simple_c0c1(1)).unwrap();
        drain(&mut s)
    };
    assert_eq!(run(), run());
}

#[test]
fn truncated_handshake_needs_more() {
    let c0c1 = client::simple_c0c1(0);
    let mut s = session();
    s.handle_input(&c0c1[..700]).unwrap();
    assert!(s.poll_transmit().is_none());
    assert!(s.poll_event().is_none());
    s.handle_input(&c0c1[700..]).unwrap();
    assert!(s.poll_transmit().is_some());
    s.handle_input(&[0; 100]).unwrap();
    assert!(!s.is_handshake_done());
}

#[test]
fn bad_c0_is_an_error() {
    let mut s = session();
    assert_eq!(
        s.handle_input(b"GET / HTTP/1.1\r\n"),
        Err(Error::BadVersion { version: b'G' })
    );
    assert_eq!(s.handle_input(&[3]), Err(Error::SessionFailed));
    let mut s = session();
    assert_eq!(
        s.handle_input(&[6]),
        Err(Error::EncryptedHandshake { version: 6 })
    );
}

// ---------------------------------------------------------------- chunk stream

fn limits() -> ChunkLimits {
    ChunkLimits::default()
}

fn decode_all(dec: &mut ChunkDecoder, bytes: &[u8]) -> Result<Vec<Message>, Error> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn msg(csid: u32, ts: u32, type_id: u8, sid: u32, len: usize) -> Message {
    Message {
        csid,
        timestamp: ts,
        type_id,
        stream_id: sid,
        payload: Bytes::from((0..len).map(|i| (i * 7 + len) as u8).collect::<Vec<u8>>()),
    }
}

#[test]
fn chunk_round_trip_all_formats_and_sizes() {
    // Same csid: fmt 0, then fmt 1 (length change), fmt 2 (delta change), fmt 3 (same delta),
    // across chunk sizes that split messages and big csids (2- and 3-byte basic headers).
    let mut msgs = Vec::new();
    for csid in [3u32, 4, 64, 319, 320, 65599] {
        msgs.push(msg(csid, 1000, 9, 1, 300));
        msgs.push(msg(csid, 1033, 9, 1, 50));
        msgs.push(msg(csid, 1066, 9, 1, 50));
        msgs.push(msg(csid, 1099, 9, 1, 50));
        msgs.push(msg(csid, 1120, 8, 1, 50));
        msgs.push(msg(csid, 1120, 8, 1, 0));
        msgs.push(msg(csid, 5, 8, 1, 10)); // backwards: fmt 0
        msgs.push(msg(csid, 5, 8, 2, 10)); // other stream: fmt 0
    }
    for chunk_size in [1u32, 7, 128, 300, 4096, 65536] {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(chunk_size);
        let mut dec = ChunkDecoder::new(limits());
        dec.set_chunk_size(chunk_size).unwrap();
        let mut wire = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut wire).unwrap();
        }
        let got = decode_all(&mut dec, &wire).unwrap();
        assert_eq!(got, msgs, "chunk size {chunk_size}");
    }
}

#[test]
fn chunk_header_formats_are_used() {
    let mut enc = ChunkEncoder::new();
    let mut fmts = Vec::new();
    for m in [
        msg(4, 0, 9, 1, 10),
        msg(4, 40, 9, 1, 20),
        msg(4, 90, 9, 1, 20),
        msg(4, 140, 9, 1, 20),
    ] {
        let mut out = BytesMut::new();
        enc.encode(&m, &mut out).unwrap();
        fmts.push(out[0] >> 6);
    }
    assert_eq!(fmts, [0, 1, 2, 3]);
}

#[test]
fn extended_timestamps_round_trip() {
    for chunk_size in [16u32, 128, 4096] {
        let msgs = vec![
            msg(5, 0xFF_FFFF, 9, 1, 100),      // fmt 0, extended, fmt 3 repeats it
            msg(5, 0xFF_FFFF + 10, 9, 1, 100), // fmt 2, small delta
            msg(5, 0x7FFF_FFFF, 9, 1, 40),     // fmt 2, extended delta
            msg(5, 0xFFFF_FFF0, 9, 1, 300),    // fmt 2, extended delta
            msg(6, 0xFFFF_FFFF, 8, 1, 300),    // fmt 0, max
            msg(6, 0xFFFF_FFFF, 8, 1, 300),    // fmt 2, delta 0
        ];
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(chunk_size);
        let mut dec = ChunkDecoder::new(limits());
        dec.set_chunk_size(chunk_size).unwrap();
        let mut wire = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut wire).unwrap();
        }
        assert_eq!(decode_all(&mut dec, &wire).unwrap(), msgs);
    }
}

#[test]
fn fmt3_extended_repeat_rule_on_the_wire() {
    // Hand-built: fmt 0 with extended timestamp 0x01000000, 200 bytes at chunk size 128: the
    // fmt 3 continuation carries the 4-byte timestamp again.
    let mut wire = vec![0x04, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 1, 0, 0, 0];
    wire.extend_from_slice(&[0xaa; 128]);
    wire.extend_from_slice(&[0xc4, 1, 0, 0, 0]);
    wire.extend_from_slice(&[0xbb; 72]);
    let mut dec = ChunkDecoder::new(limits());
    let got = decode_all(&mut dec, &wire).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, 0x0100_0000);
    assert_eq!(got[0].payload.len(), 200);
    assert_eq!(got[0].payload[127..129], [0xaa, 0xbb]);
}

#[test]
fn fmt3_new_message_reuses_delta() {
    let mut wire = vec![0x03, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 1, 2]; // fmt 0 ts 100
    wire.extend_from_slice(&[0x83, 0, 0, 20, 3, 4]); // fmt 2 delta 20 -> 120
    wire.extend_from_slice(&[0xc3, 5, 6]); // fmt 3 new message -> 140
    let mut dec = ChunkDecoder::new(limits());
    let got = decode_all(&mut dec, &wire).unwrap();
    let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, [100, 120, 140]);
    assert_eq!(got[2].payload[..], [5, 6]);
}

#[test]
fn chunk_decoder_split_invariance_bytewise() {
    let mut enc = ChunkEncoder::new();
    let mut wire = BytesMut::new();
    let msgs = vec![
        msg(3, 1, 20, 0, 500),
        msg(4, 0xFF_FFFF, 9, 1, 300),
        msg(4, 0x100_0010, 9, 1, 300),
    ];
    for m in &msgs {
        enc.encode(m, &mut wire).unwrap();
    }
    let mut dec = ChunkDecoder::new(limits());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.extend_from_slice(&[*b]);
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            got.push(m);
        }
        assert!(buf.len() < 300 + 18, "decoder buffers at most one chunk");
    }
    assert_eq!(got, msgs);
}

#[test]
fn set_chunk_size_is_applied_and_checked() {
    let mut dec = ChunkDecoder::new(limits());
    let set = |size: u32| {
        let mut v = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
        v.extend_from_slice(&size.to_be_bytes());
        v
    };
    decode_all(&mut dec, &set(4096)).unwrap();
    assert_eq!(dec.chunk_size(), 4096);
    let mut dec2 = ChunkDecoder::new(limits());
    assert_eq!(
        decode_all(&mut dec2, &set(0x8000_0000)),
        Err(Error::InvalidChunkSize { size: 0x8000_0000 })
    );
    let mut dec3 = ChunkDecoder::new(limits());
    assert_eq!(
        decode_all(&mut dec3, &set(0)),
        Err(Error::InvalidChunkSize { size: 0 })
    );
    let mut dec4 = ChunkDecoder::new(limits());
    assert_eq!(
        decode_all(&mut dec4, &set(65537)),
        Err(Error::ChunkSizeTooLarge {
            size: 65537,
            max: 65536
        })
    );
}

#[test]
fn oversized_message_header_fails_before_payload() {
    // A header declaring 16 MiB - 1 bytes and no payload at all: an error right away.
    let wire = [0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
    let mut dec = ChunkDecoder::new(limits());
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(Error::MessageTooLarge {
            size: 0xFF_FFFF,
            max: 8 * 1024 * 1024
        })
    );
}

#[test]
fn partial_messages_share_one_budget() {
    // Two 5 MiB messages in flight on two chunk streams exceed the 8 MiB budget.
    let mut wire = Vec::new();
    for csid in [4u8, 5] {
        wire.extend_from_slice(&[csid, 0, 0, 0, 0x50, 0, 0, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(&[0; 128]);
    }
    let mut dec = ChunkDecoder::new(limits());
    assert!(matches!(
        decode_all(&mut dec, &wire),
        Err(Error::BufferLimit { .. })
    ));
}

#[test]
fn too_many_chunk_streams() {
    let mut wire = Vec::new();
    for csid in 2u8..=63 {
        wire.extend_from_slice(&[csid, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0xee]);
    }
    for extra in 0u8..10 {
        wire.extend_from_slice(&[0, extra, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0xee]);
    }
    let mut dec = ChunkDecoder::new(limits());
    assert_eq!(
        decode_all(&mut dec, &wire),
        Err(Error::TooManyChunkStreams { max: 64 })
    );
}

#[test]
fn header_without_history_is_an_error() {
    let mut dec = ChunkDecoder::new(limits());
    let mut buf = BytesMut::from(&[0x43u8, 0, 0, 0, 0, 0, 1, 9][..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(Error::UnknownChunkStream { csid: 3, fmt: 1 })
    );
}

#[test]
fn abort_drops_partial_message() {
    let mut wire = vec![0x04, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0];
    wire.extend_from_slice(&[1; 128]); // 128 of 256 bytes
    wire.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 4]); // abort csid 4
    wire.extend_from_slice(&[0x04, 0, 0, 5, 0, 0, 2, 9, 1, 0, 0, 0, 7, 7]);
    let mut dec = ChunkDecoder::new(limits());
    let got = decode_all(&mut dec, &wire).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].type_id, msg_type::ABORT);
    assert_eq!((got[1].timestamp, &got[1].payload[..]), (5, &[7u8, 7][..]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn chunk_round_trip_prop(
        chunk_size in 1u32..600,
        spec in proptest::collection::vec((2u32..400, any::<u32>(), 1u8..30, 0u32..3, 0usize..1500), 1..20),
    ) {
        let msgs: Vec<Message> = spec.iter().map(|&(c, t, ty, sid, len)| msg(c, t, ty, sid, len)).collect();
        // Types 1 and 2 would change the decoder itself; keep them out of random traffic.
        let msgs: Vec<Message> = msgs.into_iter().filter(|m| m.type_id > 2).collect();
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(chunk_size);
        let mut dec = ChunkDecoder::new(limits());
        dec.set_chunk_size(chunk_size).unwrap();
        let mut wire = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_all(&mut dec, &wire).unwrap(), msgs);
    }

    #[test]
    fn chunk_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        rtmp::fuzz::chunk(&data);
        rtmp::fuzz::session(&data);
        rtmp::fuzz::amf0(&data);
    }
}

// ---------------------------------------------------------------- AMF0

#[test]
fn amf0_cases_round_trip() {
    for (name, bytes) in amf0::_cases() {
        let mut input = &bytes[..];
        let v = amf0::decode(&mut input)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: incomplete"));
        assert!(input.is_empty(), "{name}: trailing bytes");
        let mut out = BytesMut::new();
        amf0::encode(&v, &mut out);
        assert_eq!(out[..], bytes[..], "{name}: re-encoding differs");
        // Every strict prefix is "need more", never an error, and consumes nothing.
        for cut in 0..bytes.len() {
            let mut prefix = &bytes[..cut];
            assert_eq!(amf0::decode(&mut prefix), Ok(None), "{name} cut at {cut}");
            assert_eq!(prefix.len(), cut);
        }
        rtmp::fuzz::amf0(&bytes);
    }
}

#[test]
fn amf0_values() {
    let mut input: &[u8] = &[0x02, 0, 4, b'l', b'i', b'v', b'e', 0x05];
    assert_eq!(amf0::decode(&mut input), Ok(Some(Value::string("live"))));
    assert_eq!(amf0::decode(&mut input), Ok(Some(Value::Null)));
    assert_eq!(amf0::decode(&mut input), Ok(None));
    let mut b = Bytes::from_static(&[0x01, 0x01, 0x06]);
    assert_eq!(amf0::decode(&mut b), Ok(Some(Value::Boolean(true))));
    assert_eq!(b.len(), 1);
}

#[test]
fn amf0_errors() {
    assert_eq!(
        amf0::decode(&mut &[0x0d][..]),
        Err(Error::Amf0UnknownMarker { marker: 0x0d })
    );
    assert_eq!(
        amf0::decode(&mut &[0x09][..]),
        Err(Error::Amf0UnexpectedObjectEnd)
    );
    // 65 nested objects: too deep, long before the input ends.
    let mut deep = vec![0x03];
    for _ in 0..100 {
        deep.extend_from_slice(&[0, 1, b'a', 0x03]);
    }
    assert_eq!(
        amf0::decode(&mut &deep[..]),
        Err(Error::Amf0TooDeep {
            max: amf0::MAX_DEPTH
        })
    );
    // Strict arrays nest too.
    let arrays: Vec<u8> = std::iter::repeat_n([0x0a, 0, 0, 0, 1], 100)
        .flatten()
        .collect();
    assert_eq!(
        amf0::decode(&mut &arrays[..]),
        Err(Error::Amf0TooDeep {
            max: amf0::MAX_DEPTH
        })
    );
    // A strict array claiming 4 billion elements is "need more", not an allocation.
    assert_eq!(
        amf0::decode(&mut &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x05][..]),
        Ok(None)
    );
    assert_eq!(
        amf0::decode_all(&[0x02, 0, 9, b'x']),
        Err(Error::Amf0Truncated)
    );
    // Many tiny values hit the value limit.
    let mut many = vec![0x0a, 0, 2, 0, 0];
    many.extend(std::iter::repeat_n(0x05, 0x20000));
    assert_eq!(
        amf0::decode(&mut &many[..]),
        Err(Error::Amf0TooManyValues {
            max: amf0::MAX_VALUES
        })
    );
}

#[test]
fn amf0_lossy_strings_and_empty_keys() {
    let mut input: &[u8] = &[0x02, 0, 2, 0xff, b'a'];
    assert_eq!(
        amf0::decode(&mut input),
        Ok(Some(Value::string("\u{fffd}a")))
    );
    // An empty key that is not followed by object-end is a property.
    let mut obj: &[u8] = &[0x03, 0, 0, 0x05, 0, 0, 0x09];
    assert_eq!(
        amf0::decode(&mut obj),
        Ok(Some(Value::Object(vec![(String::new(), Value::Null)])))
    );
}

/// Writes the fuzz seed corpus under `fuzz/seeds/`. Run with
/// `cargo test -p rtmp -- --ignored write_fuzz_seeds` after changing the cases.
#[test]
#[ignore = "writes fuzz/seeds/; run by hand"]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (name, bytes) in amf0::_cases() {
        // Keep the committed corpus small.
        if bytes.len() <= 4096 {
            write("amf0", name, &bytes);
        }
    }
    for (name, bytes) in rtmp::testing::session_cases() {
        write("rtmp_session", name, &bytes);
        write("rtmp_chunk", name, &bytes);
    }
}
