//! The RTMP chunk stream: messages cut into chunks and interleaved on chunk stream ids.
//!
//! [`ChunkDecoder`] reassembles messages from chunks and [`ChunkEncoder`] cuts messages into
//! chunks. Both work on their own (the fuzz target drives the decoder alone) and neither knows
//! about commands or media. The decoder applies Set Chunk Size and Abort itself, because they
//! change how the next chunk is read, and still returns them.
//!
//! Timestamp rules, as nginx-rtmp applies them: a type 0 header carries an absolute timestamp
//! and resets the chunk stream's delta to 0; types 1 and 2 carry a delta that is added (with
//! wrapping) to the previous timestamp; a type 3 header that starts a new message adds the
//! previous delta again. A 24-bit field of `0xFFFFFF` means a 32-bit extended timestamp
//! follows, and every type 3 chunk on that chunk stream repeats it until the next header of
//! type 0, 1 or 2.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::Error;

/// RTMP message type ids.
pub mod msg_type {
    /// Set Chunk Size (protocol control).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (protocol control).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (protocol control).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (protocol control).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (protocol control).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (an FLV audio tag body).
    pub const AUDIO: u8 = 8;
    /// Video data (an FLV video tag body).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 flavour.
    pub const DATA_AMF3: u8 = 15;
    /// Shared object message, AMF3 flavour.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 flavour.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (`@setDataFrame`, `onMetaData`).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object message, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0 (`connect`, `publish`, ...).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message: FLV tags back to back.
    pub const AGGREGATE: u8 = 22;
}

/// RTMP's default chunk size, before any Set Chunk Size.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// The largest message length a chunk header can express (24 bits).
pub const MAX_ENCODABLE_LENGTH: u32 = 0xFF_FFFF;

const EXTENDED: u32 = 0xFF_FFFF;

/// One complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream id it travelled on (2..=65599).
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (see [`msg_type`]).
    pub type_id: u8,
    /// Message stream id (0 for control and NetConnection commands).
    pub stream_id: u32,
    /// The payload.
    pub payload: Bytes,
}

/// The decoder's limits; see [`ServerConfig`](crate::ServerConfig) for their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest chunk size the peer may set.
    pub max_chunk_size: u32,
    /// Largest message the peer may send; also the budget for all partially received messages.
    pub max_message_size: u32,
    /// Most chunk stream ids the peer may use.
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: 64 * 1024,
            max_message_size: 8 * 1024 * 1024,
            max_chunk_streams: 64,
        }
    }
}

#[derive(Debug, Default)]
struct InState {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last type 0/1/2 header used an extended timestamp, so type 3 chunks carry one too.
    extended: bool,
    /// Bytes of the current message still to come; 0 when between messages.
    remaining: u32,
    partial: BytesMut,
}

/// Reassembles messages from a chunk stream.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    streams: HashMap<u32, InState>,
    /// Sum of the declared lengths of partially received messages.
    in_flight: u64,
}

/// A parsed chunk header, not yet committed.
struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
}

fn be24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

impl ChunkDecoder {
    /// A decoder with RTMP's initial chunk size of 128.
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            in_flight: 0,
        }
    }

    /// The chunk size the peer currently uses.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Applies a chunk size announced by the peer.
    ///
    /// # Errors
    /// [`Error::InvalidChunkSize`] for 0 or a value with the high bit set,
    /// [`Error::ChunkSizeTooLarge`] above the limit.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        if size == 0 || size & 0x8000_0000 != 0 {
            return Err(Error::InvalidChunkSize { size });
        }
        if size > self.limits.max_chunk_size {
            return Err(Error::ChunkSizeTooLarge {
                size,
                max: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partially received message on `csid`, as an Abort message asks.
    pub fn abort(&mut self, csid: u32) {
        if let Some(st) = self.streams.get_mut(&csid) {
            if st.remaining > 0 {
                self.in_flight = self.in_flight.saturating_sub(u64::from(st.length));
                st.remaining = 0;
                st.partial = BytesMut::new();
            }
        }
    }

    /// Parses the chunk header at the front of `buf` without consuming it. `Ok(None)`: need more.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, Error> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match buf.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(Error::UnknownChunkStream { csid, fmt });
        }
        if prev.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(Error::TooManyChunkStreams {
                max: self.limits.max_chunk_streams,
            });
        }
        let mh_len = [11usize, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = buf.get(pos..pos + mh_len) else {
            return Ok(None);
        };
        pos += mh_len;
        let mut h = Header {
            fmt,
            csid,
            len: 0,
            field: 0,
            length: 0,
            type_id: 0,
            stream_id: 0,
            extended: false,
        };
        if let Some(p) = prev {
            h.length = p.length;
            h.type_id = p.type_id;
            h.stream_id = p.stream_id;
            h.extended = p.extended;
        }
        if fmt <= 2 {
            h.field = be24(&mh[0..3]);
            h.extended = h.field == EXTENDED;
        }
        if fmt <= 1 {
            h.length = be24(&mh[3..6]);
            h.type_id = mh[6];
        }
        if fmt == 0 {
            h.stream_id = u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]]);
        }
        if h.extended {
            let Some(ext) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            if fmt <= 2 {
                h.field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
        }
        if fmt <= 1 && h.length > self.limits.max_message_size {
            return Err(Error::MessageTooLarge {
                size: h.length,
                max: self.limits.max_message_size,
            });
        }
        h.len = pos;
        Ok(Some(h))
    }

    /// Decodes chunks from the front of `buf` until one message is complete.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete message any more; whole chunks have
    /// then been consumed and at most one partial chunk is left in `buf`. Set Chunk Size and
    /// Abort are applied before they are returned.
    ///
    /// # Errors
    /// Any violation of the chunk format or of the limits. The decoder is unusable after an
    /// error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        loop {
            let Some(h) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let prev_remaining = self.streams.get(&h.csid).map_or(0, |s| s.remaining);
            let continuation = h.fmt == 3 && prev_remaining > 0;
            let (length, remaining) = if continuation {
                (h.length, prev_remaining)
            } else {
                (h.length, h.length)
            };
            if !continuation {
                // A new message; a header of type 0-2 in the middle of one drops the old one
                // (as if aborted), which is what lenient servers do.
                let dropped = self
                    .streams
                    .get(&h.csid)
                    .filter(|s| s.remaining > 0)
                    .map_or(0, |s| u64::from(s.length));
                let needed = self.in_flight - dropped + u64::from(length);
                if length > self.chunk_size && needed > u64::from(self.limits.max_message_size) {
                    return Err(Error::BufferLimit {
                        needed,
                        max: self.limits.max_message_size,
                    });
                }
            }
            let n = remaining.min(self.chunk_size) as usize;
            if buf.len() < h.len + n {
                return Ok(None);
            }

            // The whole chunk is here: commit.
            buf.advance(h.len);
            let st = self.streams.entry(h.csid).or_default();
            if !continuation {
                if st.remaining > 0 {
                    self.in_flight -= u64::from(st.length);
                    st.partial = BytesMut::new();
                }
                match h.fmt {
                    0 => {
                        st.timestamp = h.field;
                        st.delta = 0;
                    }
                    1 | 2 => {
                        st.delta = h.field;
                        st.timestamp = st.timestamp.wrapping_add(h.field);
                    }
                    _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
                }
                st.length = h.length;
                st.type_id = h.type_id;
                st.stream_id = h.stream_id;
                st.extended = h.extended;
                if n == length as usize {
                    // The whole message is in this chunk: hand out the input bytes, no copy.
                    st.remaining = 0;
                    let payload = buf.split_to(n).freeze();
                    let msg = Message {
                        csid: h.csid,
                        timestamp: st.timestamp,
                        type_id: st.type_id,
                        stream_id: st.stream_id,
                        payload,
                    };
                    return self.finish(msg).map(Some);
                }
                // Grow with the data rather than trusting the declared length up front.
                st.partial = BytesMut::with_capacity(n.max(4096));
                st.remaining = length;
                self.in_flight += u64::from(length);
            }
            st.partial.extend_from_slice(&buf[..n]);
            buf.advance(n);
            st.remaining -= n as u32;
            if st.remaining == 0 {
                self.in_flight -= u64::from(st.length);
                let payload = std::mem::take(&mut st.partial).freeze();
                let msg = Message {
                    csid: h.csid,
                    timestamp: st.timestamp,
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    payload,
                };
                return self.finish(msg).map(Some);
            }
        }
    }

    /// Applies the chunk-layer control messages.
    fn finish(&mut self, msg: Message) -> Result<Message, Error> {
        match msg.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let size = read_u32(&msg)?;
                self.set_chunk_size(size)?;
            }
            msg_type::ABORT => {
                let csid = read_u32(&msg)?;
                self.abort(csid);
            }
            _ => {}
        }
        Ok(msg)
    }
}

/// The first four bytes of a control message, big-endian.
fn read_u32(msg: &Message) -> Result<u32, Error> {
    match msg.payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(Error::InvalidControlMessage {
            type_id: msg.type_id,
            len: msg.payload.len(),
        }),
    }
}

#[derive(Debug)]
struct OutState {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last header was type 0, so the chunk stream's delta is 0.
    after_fmt0: bool,
}

/// Cuts messages into chunks, choosing the smallest header that the decoder rules allow.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    streams: HashMap<u32, OutState>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder with RTMP's initial chunk size of 128.
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
        }
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Switches to chunks of `size` bytes (clamped to 1..=2^31-1). Send a Set Chunk Size
    /// message first, so the peer switches at the same point.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7FFF_FFFF);
    }

    /// Appends `msg`, cut into chunks, to `out`.
    ///
    /// # Errors
    /// [`Error::InvalidChunkStreamId`] for a csid outside 2..=65599,
    /// [`Error::MessageTooLarge`] for a payload over 16 MiB - 1.
    pub fn encode(&mut self, msg: &Message, out: &mut BytesMut) -> Result<(), Error> {
        if !(2..=65599).contains(&msg.csid) {
            return Err(Error::InvalidChunkStreamId { csid: msg.csid });
        }
        let length = u32::try_from(msg.payload.len())
            .ok()
            .filter(|&l| l <= MAX_ENCODABLE_LENGTH)
            .ok_or(Error::MessageTooLarge {
                size: u32::try_from(msg.payload.len()).unwrap_or(u32::MAX),
                max: MAX_ENCODABLE_LENGTH,
            })?;
        let prev = self.streams.get(&msg.csid);
        let (fmt, field) = match prev {
            Some(p) if p.stream_id == msg.stream_id && msg.timestamp >= p.timestamp => {
                let delta = msg.timestamp - p.timestamp;
                if p.length != length || p.type_id != msg.type_id {
                    (1u8, delta)
                } else if p.after_fmt0 || delta != p.delta || delta >= EXTENDED {
                    (2, delta)
                } else {
                    (3, delta)
                }
            }
            _ => (0, msg.timestamp),
        };
        let extended = fmt != 3 && field >= EXTENDED;
        let field24 = if extended { EXTENDED } else { field };

        write_basic_header(out, fmt, msg.csid);
        if fmt <= 2 {
            out.put_uint(u64::from(field24), 3);
        }
        if fmt <= 1 {
            out.put_uint(u64::from(length), 3);
            out.put_u8(msg.type_id);
        }
        if fmt == 0 {
            out.put_u32_le(msg.stream_id);
        }
        if extended {
            out.put_u32(field);
        }
        let mut rest = &msg.payload[..];
        let cs = self.chunk_size as usize;
        let first = rest.len().min(cs);
        out.put_slice(&rest[..first]);
        rest = &rest[first..];
        while !rest.is_empty() {
            write_basic_header(out, 3, msg.csid);
            if extended {
                out.put_u32(field);
            }
            let n = rest.len().min(cs);
            out.put_slice(&rest[..n]);
            rest = &rest[n..];
        }

        let delta = match (fmt, prev) {
            (0, _) | (_, None) => 0,
            (_, Some(p)) => msg.timestamp - p.timestamp,
        };
        self.streams.insert(
            msg.csid,
            OutState {
                timestamp: msg.timestamp,
                delta,
                length,
                type_id: msg.type_id,
                stream_id: msg.stream_id,
                after_fmt0: fmt == 0,
            },
        );
        Ok(())
    }
}

fn write_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let f = fmt << 6;
    if csid < 64 {
        out.put_u8(f | csid as u8);
    } else if csid < 320 {
        out.put_u8(f);
        out.put_u8((csid - 64) as u8);
    } else {
        let v = csid - 64;
        out.put_u8(f | 1);
        out.put_u8((v & 0xff) as u8);
        out.put_u8((v >> 8) as u8);
    }
}
