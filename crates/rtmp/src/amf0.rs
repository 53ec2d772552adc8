//! AMF0, the value encoding of RTMP commands and metadata.
//!
//! [`decode`] keeps "need more bytes" (`Ok(None)`, input untouched) apart from invalid input
//! (`Err`). Nesting is limited to [`MAX_DEPTH`] levels and one decode call to [`MAX_VALUES`]
//! values, so hostile input can neither overflow the stack nor make the decoder allocate much
//! more than the input's own size.

use bytes::{Buf, BufMut, BytesMut};

use crate::error::Error;

/// Deepest nesting of objects and arrays that [`decode`] accepts.
pub const MAX_DEPTH: usize = 64;

/// Most values (counting nested ones) that one [`decode`] call accepts.
pub const MAX_VALUES: usize = 65_536;

mod marker {
    pub(super) const NUMBER: u8 = 0x00;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const STRING: u8 = 0x02;
    pub(super) const OBJECT: u8 = 0x03;
    pub(super) const NULL: u8 = 0x05;
    pub(super) const UNDEFINED: u8 = 0x06;
    pub(super) const ECMA_ARRAY: u8 = 0x08;
    pub(super) const OBJECT_END: u8 = 0x09;
    pub(super) const STRICT_ARRAY: u8 = 0x0a;
    pub(super) const DATE: u8 = 0x0b;
    pub(super) const LONG_STRING: u8 = 0x0c;
}

/// One AMF0 value.
///
/// Strings are decoded as UTF-8, replacing invalid sequences with U+FFFD: some encoders put
/// Latin-1 into metadata, and that should not end a publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `0x00`: an IEEE 754 double.
    Number(f64),
    /// `0x01`: a boolean.
    Boolean(bool),
    /// `0x02`: a string of at most 65535 bytes. Longer strings are encoded as long strings.
    String(String),
    /// `0x03`: an anonymous object, its properties in wire order.
    Object(Vec<(String, Value)>),
    /// `0x05`: null.
    Null,
    /// `0x06`: undefined.
    Undefined,
    /// `0x08`: an associative ("ECMA") array, its properties in wire order.
    EcmaArray(Vec<(String, Value)>),
    /// `0x0a`: a dense array.
    StrictArray(Vec<Value>),
    /// `0x0b`: a date.
    Date {
        /// Milliseconds since the Unix epoch (UTC).
        millis: f64,
        /// Time zone offset; reserved, should be 0.
        time_zone: i16,
    },
    /// `0x0c`: a string longer than 65535 bytes (or sent as one).
    LongString(String),
}

impl Value {
    /// The string, for [`Value::String`] and [`Value::LongString`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The number, for [`Value::Number`].
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties, for [`Value::Object`] and [`Value::EcmaArray`].
    pub fn as_properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The value of property `key`, for objects and ECMA arrays (first match).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Shorthand for `Value::String(s.into())`.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Shorthand for an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// Why an internal parse stopped.
enum Stop {
    Incomplete,
    Invalid(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Invalid(e)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    values: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(Stop::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Stop> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Stop> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn short_string(&mut self) -> Result<String, Stop> {
        let len = self.u16()? as usize;
        self.utf8(len)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Stop> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(Error::Amf0TooManyValues { max: MAX_VALUES }.into());
        }
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::OBJECT => Value::Object(self.properties(depth + 1)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is a hint that encoders get wrong; the object-end marker is what
                // ends the array.
                let _count = self.u32()?;
                Value::EcmaArray(self.properties(depth + 1)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()? as usize;
                self.check_depth(depth + 1)?;
                // Every element takes at least one byte: a count beyond the input is "need
                // more", and never an allocation of `count` elements up front.
                if count > self.buf.len().saturating_sub(self.pos) {
                    return Err(Stop::Incomplete);
                }
                let mut items = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let time_zone = self.u16()? as i16;
                Value::Date { millis, time_zone }
            }
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                Value::LongString(self.utf8(len)?)
            }
            marker::OBJECT_END => return Err(Error::Amf0UnexpectedObjectEnd.into()),
            other => return Err(Error::Amf0UnknownMarker { marker: other }.into()),
        })
    }

    fn check_depth(&self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            Err(Error::Amf0TooDeep { max: MAX_DEPTH }.into())
        } else {
            Ok(())
        }
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Stop> {
        self.check_depth(depth)?;
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() {
                // An empty key followed by the object-end marker ends the object.
                let m = self.u8()?;
                if m == marker::OBJECT_END {
                    return Ok(props);
                }
                // Some encoders use empty keys for real properties: put the marker back.
                self.pos -= 1;
            }
            let v = self.value(depth)?;
            props.push((key, v));
        }
    }
}

/// Decodes one value from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` ends before the value does; then nothing is consumed. On
/// success the value's bytes are consumed. Works on any contiguous buffer: `&[u8]`, `Bytes`,
/// `BytesMut`.
///
/// # Errors
/// An unknown marker, a misplaced object end, or nesting or size beyond the limits.
pub fn decode<B: Buf + AsRef<[u8]>>(buf: &mut B) -> Result<Option<Value>, Error> {
    let (res, used) = decode_slice(buf.as_ref());
    if res.as_ref().is_ok_and(Option::is_some) {
        buf.advance(used);
    }
    res
}

fn decode_slice(buf: &[u8]) -> (Result<Option<Value>, Error>, usize) {
    let mut r = Reader {
        buf,
        pos: 0,
        values: 0,
    };
    match r.value(0) {
        Ok(v) => (Ok(Some(v)), r.pos),
        Err(Stop::Incomplete) => (Ok(None), 0),
        Err(Stop::Invalid(e)) => (Err(e), 0),
    }
}

/// Decodes every value in a complete message payload (a command or data message).
///
/// # Errors
/// Anything [`decode`] rejects, and [`Error::Amf0Truncated`] when the payload ends inside a
/// value.
pub fn decode_all(mut payload: &[u8]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let mut budget = MAX_VALUES;
    while !payload.is_empty() {
        let mut r = Reader {
            buf: payload,
            pos: 0,
            values: MAX_VALUES - budget,
        };
        match r.value(0) {
            Ok(v) => out.push(v),
            Err(Stop::Incomplete) => return Err(Error::Amf0Truncated),
            Err(Stop::Invalid(e)) => return Err(e),
        }
        budget = MAX_VALUES.saturating_sub(r.values);
        payload = &payload[r.pos..];
    }
    Ok(out)
}

/// Appends the encoding of `v` to `out`.
///
/// Strings over 65535 bytes are written as long strings, and property keys over 65535 bytes
/// are cut at a character boundary, since AMF0 cannot carry them.
pub fn encode(v: &Value, out: &mut BytesMut) {
    match v {
        Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(marker::STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            Err(_) => encode_long_string(s, out),
        },
        Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            encode_properties(props, out);
        }
        Value::Null => out.put_u8(marker::NULL),
        Value::Undefined => out.put_u8(marker::UNDEFINED),
        Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            encode_properties(props, out);
        }
        Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode(item, out);
            }
        }
        Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Value::LongString(s) => encode_long_string(s, out),
    }
}

fn encode_long_string(s: &str, out: &mut BytesMut) {
    out.put_u8(marker::LONG_STRING);
    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.put_slice(s.as_bytes());
}

fn encode_properties(props: &[(String, Value)], out: &mut BytesMut) {
    for (k, v) in props {
        let mut end = k.len().min(u16::MAX as usize);
        while !k.is_char_boundary(end) {
            end -= 1;
        }
        out.put_u16(end as u16);
        out.put_slice(&k.as_bytes()[..end]);
        encode(v, out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

/// Encodes several values back to back (a command or data message body).
pub fn encode_all<'a>(values: impl IntoIterator<Item = &'a Value>, out: &mut BytesMut) {
    for v in values {
        encode(v, out);
    }
}

/// The table of AMF0 cases shared by the unit tests and the fuzz seeds: `(name, bytes)` where
/// `bytes` is a valid encoding of one value that re-encodes to the same bytes.
#[doc(hidden)]
pub fn _cases() -> Vec<(&'static str, Vec<u8>)> {
    fn enc(v: &Value) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(v, &mut b);
        b.to_vec()
    }
    let mut deep = Value::Null;
    for _ in 0..MAX_DEPTH {
        deep = Value::object([("a", deep)]);
    }
    vec![
        ("number", vec![0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
        ("number_negative", enc(&Value::Number(-12345.678))),
        ("boolean_true", vec![0x01, 0x01]),
        ("boolean_false", vec![0x01, 0x00]),
        ("string", vec![0x02, 0x00, 0x04, b'l', b'i', b'v', b'e']),
        ("string_empty", vec![0x02, 0x00, 0x00]),
        ("string_utf8", enc(&Value::string("grüße 🎥"))),
        ("null", vec![0x05]),
        ("undefined", vec![0x06]),
        ("object_empty", vec![0x03, 0x00, 0x00, 0x09]),
        (
            "object_connect",
            enc(&Value::object([
                ("app", Value::string("live")),
                ("type", Value::string("nonprivate")),
                ("flashVer", Value::string("FMLE/3.0 (compatible; FMSc/1.0)")),
                ("tcUrl", Value::string("rtmp://127.0.0.1:1935/live")),
                ("supportsGoAway", Value::Boolean(true)),
            ])),
        ),
        (
            "ecma_array_metadata",
            enc(&Value::EcmaArray(vec![
                ("duration".into(), Value::Number(0.0)),
                ("width".into(), Value::Number(640.0)),
                ("height".into(), Value::Number(360.0)),
                ("encoder".into(), Value::string("obs-output module")),
                ("stereo".into(), Value::Boolean(true)),
            ])),
        ),
        (
            "strict_array",
            enc(&Value::StrictArray(vec![
                Value::Number(1.0),
                Value::string("two"),
                Value::Null,
                Value::StrictArray(vec![]),
            ])),
        ),
        (
            "date",
            enc(&Value::Date {
                millis: 1_700_000_000_000.0,
                time_zone: 0,
            }),
        ),
        ("long_string", enc(&Value::LongString("x".repeat(70_000)))),
        ("long_string_short", enc(&Value::LongString("short".into()))),
        (
            "nested",
            enc(&Value::object([
                (
                    "inner",
                    Value::EcmaArray(vec![("k".into(), Value::Undefined)]),
                ),
                (
                    "list",
                    Value::StrictArray(vec![Value::object([("x", Value::Number(2.5))])]),
                ),
            ])),
        ),
        ("deep_max", enc(&deep)),
    ]
}
