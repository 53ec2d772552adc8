//! The URL space under a stream's mount point (`/live/NAME/`), as a typed [`Resource`].
//!
//! Every URI the packager writes into a playlist comes from [`Resource`]'s `Display`, and every
//! request path the server receives goes through [`Resource::parse`], so the two cannot drift.

use std::fmt;
use std::str::FromStr;

/// Longest accepted rung name. Names are URL path segments chosen by the operator's ladder
/// (`720p`, `source`); the limit only keeps hostile paths cheap to reject.
pub const MAX_RUNG_NAME_LEN: usize = 64;

/// One thing the server can serve for a stream, addressed by its path below the stream's mount
/// point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `index.m3u8`: the master (multivariant) playlist.
    Master,
    /// `RUNG/index.m3u8`: a rung's media playlist.
    Media(String),
    /// `RUNG/init.mp4`, or `RUNG/init-V.mp4` from the first change on: version `V` (from 0) of
    /// a rung's initialization segment. A new version comes with each change of the codec
    /// configuration (a reconnect, a new resolution), so a player never decodes with a stale one
    /// that it cached under the same URI.
    Init(String, u32),
    /// `RUNG/seg-MSN.m4s`: a complete media segment.
    Segment(String, u64),
    /// `RUNG/part-MSN.I.m4s`: part `I` (from 0) of media segment `MSN`.
    Part(String, u64, u32),
}

/// Why a path is not a [`Resource`]. Deliberately without detail: the server answers 404
/// whatever the reason, and the path itself is untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a stream resource path")]
pub struct BadPath;

impl Resource {
    /// Parses a path tail such as `720p/seg-12.m4s` (no leading `/`, no query string).
    ///
    /// Accepts exactly the forms [`Resource`]'s `Display` writes: rung names of
    /// 1 to [`MAX_RUNG_NAME_LEN`] ASCII letters, digits, `_` or `-`; decimal numbers without sign
    /// or leading zeros that fit their type. Anything else (dot segments, percent escapes, extra
    /// slashes) is [`BadPath`]. Never panics.
    pub fn parse(path: &str) -> Result<Resource, BadPath> {
        if path == "index.m3u8" {
            return Ok(Resource::Master);
        }
        let (rung, file) = path.split_once('/').ok_or(BadPath)?;
        if !is_valid_rung_name(rung) {
            return Err(BadPath);
        }
        let rung = rung.to_owned();
        match file {
            "index.m3u8" => return Ok(Resource::Media(rung)),
            "init.mp4" => return Ok(Resource::Init(rung, 0)),
            _ => {}
        }
        if let Some(v) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            // Version 0 is only ever `init.mp4`: one URI per content.
            return match parse_number(v)? {
                0 => Err(BadPath),
                v => Ok(Resource::Init(rung, v)),
            };
        }
        let stem = file.strip_suffix(".m4s").ok_or(BadPath)?;
        if let Some(msn) = stem.strip_prefix("seg-") {
            return Ok(Resource::Segment(rung, parse_number(msn)?));
        }
        if let Some(rest) = stem.strip_prefix("part-") {
            let (msn, part) = rest.split_once('.').ok_or(BadPath)?;
            return Ok(Resource::Part(
                rung,
                parse_number(msn)?,
                parse_number(part)?,
            ));
        }
        Err(BadPath)
    }

    /// The rung this resource belongs to; `None` for the master playlist.
    pub fn rung(&self) -> Option<&str> {
        match self {
            Resource::Master => None,
            Resource::Media(r)
            | Resource::Init(r, _)
            | Resource::Segment(r, _)
            | Resource::Part(r, _, _) => Some(r),
        }
    }

    /// True for the two playlist resources (served as `application/vnd.apple.mpegurl`);
    /// false for media (served as `video/mp4` / `video/iso.segment`).
    pub fn is_playlist(&self) -> bool {
        matches!(self, Resource::Master | Resource::Media(_))
    }
}

impl FromStr for Resource {
    type Err = BadPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::parse(s)
    }
}

/// Writes the path tail, relative to the stream's mount point; [`Resource::parse`] reads it
/// back.
impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Master => f.write_str("index.m3u8"),
            Resource::Media(r) => write!(f, "{r}/index.m3u8"),
            Resource::Init(r, v) => write!(f, "{r}/{}", InitFile(*v)),
            Resource::Segment(r, msn) => write!(f, "{r}/{}", SegmentFile(*msn)),
            Resource::Part(r, msn, i) => write!(f, "{r}/{}", PartFile(*msn, *i)),
        }
    }
}

/// File name of a segment, relative to its media playlist.
pub(crate) struct SegmentFile(pub(crate) u64);

impl fmt::Display for SegmentFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seg-{}.m4s", self.0)
    }
}

/// File name of a part, relative to its media playlist.
pub(crate) struct PartFile(pub(crate) u64, pub(crate) u32);

impl fmt::Display for PartFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "part-{}.{}.m4s", self.0, self.1)
    }
}

/// File name of version `V` of the init segment, relative to its media playlist.
pub(crate) struct InitFile(pub(crate) u32);

impl fmt::Display for InitFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("init.mp4"),
            v => write!(f, "init-{v}.mp4"),
        }
    }
}

/// True when `name` can be a rung name (and so a URL path segment needing no escaping).
pub fn is_valid_rung_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RUNG_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_number<T: FromStr>(s: &str) -> Result<T, BadPath> {
    // `str::parse` alone accepts `+1` and leading zeros; neither is a URI we write.
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(BadPath);
    }
    s.parse().map_err(|_| BadPath)
}
