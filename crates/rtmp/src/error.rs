//! The crate's one error type.

/// Everything that can go wrong while decoding or driving an RTMP session.
///
/// Every error returned by [`ServerSession::handle_input`](crate::ServerSession::handle_input)
/// is fatal for the connection: the driver should flush what
/// [`poll_transmit`](crate::ServerSession::poll_transmit) still returns, log the error and close
/// the socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// C0 carried an RTMP version other than 3.
    #[error("unsupported RTMP version {version} in C0 (only plain RTMP version 3 is supported; the peer may not speak RTMP at all)")]
    BadVersion {
        /// The version byte the peer sent.
        version: u8,
    },
    /// C0 asked for RTMPE (version 6, 8 or 9), the encrypted handshake.
    #[error("the peer asked for an encrypted RTMPE handshake (C0 = {version}), which is not supported; publish with plain rtmp://")]
    EncryptedHandshake {
        /// The version byte the peer sent.
        version: u8,
    },
    /// A Set Chunk Size message carried 0 or a value with the high bit set.
    #[error("invalid chunk size {size} in Set Chunk Size (must be 1..=2^31-1)")]
    InvalidChunkSize {
        /// The declared chunk size.
        size: u32,
    },
    /// A Set Chunk Size message asked for chunks larger than this server accepts.
    #[error("peer chunk size {size} exceeds the configured maximum of {max} bytes")]
    ChunkSizeTooLarge {
        /// The declared chunk size.
        size: u32,
        /// The configured maximum ([`ServerConfig::max_chunk_size`](crate::ServerConfig::max_chunk_size)).
        max: u32,
    },
    /// A chunk message header declared a message longer than the configured maximum.
    #[error("message of {size} bytes exceeds the configured maximum of {max} bytes")]
    MessageTooLarge {
        /// The declared message length.
        size: u32,
        /// The configured maximum ([`ServerConfig::max_message_size`](crate::ServerConfig::max_message_size)).
        max: u32,
    },
    /// Messages being reassembled at the same time would need more memory than allowed.
    #[error("partially received messages would hold {needed} bytes, more than the limit of {max}")]
    BufferLimit {
        /// Total declared length of all partially received messages, including the new one.
        needed: u64,
        /// The limit (the configured maximum message size).
        max: u32,
    },
    /// The peer used more chunk stream ids than allowed.
    #[error("the peer opened more than {max} chunk streams")]
    TooManyChunkStreams {
        /// The configured maximum ([`ServerConfig::max_chunk_streams`](crate::ServerConfig::max_chunk_streams)).
        max: usize,
    },
    /// A chunk stream id outside 2..=65599 was given to the encoder.
    #[error("chunk stream id {csid} cannot be encoded (valid ids are 2..=65599)")]
    InvalidChunkStreamId {
        /// The chunk stream id.
        csid: u32,
    },
    /// A type 1, 2 or 3 chunk header arrived on a chunk stream that never had a type 0 header.
    #[error("chunk header type {fmt} on chunk stream {csid}, which has no previous header (the input is not an RTMP chunk stream or is out of sync)")]
    UnknownChunkStream {
        /// The chunk stream id.
        csid: u32,
        /// The chunk header type (1, 2 or 3).
        fmt: u8,
    },
    /// A protocol control or user control message was too short or otherwise malformed.
    #[error("malformed control message (type {type_id}, {len} bytes)")]
    InvalidControlMessage {
        /// The RTMP message type id.
        type_id: u8,
        /// Payload length.
        len: usize,
    },
    /// AMF0 data ended in the middle of a value.
    #[error("AMF0 data is truncated")]
    Amf0Truncated,
    /// AMF0 data contained a type marker this decoder does not know.
    #[error("unknown or unsupported AMF0 type marker 0x{marker:02x}")]
    Amf0UnknownMarker {
        /// The marker byte.
        marker: u8,
    },
    /// AMF0 values were nested deeper than [`amf0::MAX_DEPTH`](crate::amf0::MAX_DEPTH).
    #[error("AMF0 values nested deeper than {max} levels")]
    Amf0TooDeep {
        /// The depth limit.
        max: usize,
    },
    /// AMF0 data held more values than [`amf0::MAX_VALUES`](crate::amf0::MAX_VALUES).
    #[error("AMF0 data holds more than {max} values")]
    Amf0TooManyValues {
        /// The limit.
        max: usize,
    },
    /// An AMF0 object-end marker appeared where a value was expected.
    #[error("unexpected AMF0 object-end marker")]
    Amf0UnexpectedObjectEnd,
    /// A command message did not start with a command name and a transaction id.
    #[error("malformed command message: {reason}")]
    InvalidCommand {
        /// What was wrong.
        reason: &'static str,
    },
    /// A command other than `connect` arrived before `connect`.
    #[error("command {name:?} received before connect")]
    CommandBeforeConnect {
        /// The command name.
        name: String,
    },
    /// An aggregate message (type 22) did not hold well-formed FLV tags.
    #[error("malformed aggregate message: {reason}")]
    InvalidAggregate {
        /// What was wrong.
        reason: &'static str,
    },
    /// Input arrived after an earlier fatal error.
    #[error("the session already failed with an earlier error; close the connection")]
    SessionFailed,
}
