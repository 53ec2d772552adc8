//! The streamid parser: every dialect publishers use, one typed result.

use std::fmt;

use crate::reject;

/// The longest streamid SRT carries, in bytes (`SRT_STREAMID_MAX`).
pub const MAX_STREAMID_LEN: usize = 512;

/// Longest mode, type or key name echoed back in an error.
const ECHO_MAX: usize = 32;

/// What a caller asks to do with the resource (`m=` in SRT access control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Send media to the server (`m=publish`, MediaMTX `publish:`). The only mode Ferrocast
    /// accepts over SRT, and the one assumed when a streamid names none.
    Publish,
    /// Receive media from the server (`m=request`, `m=play`, MediaMTX `read:`).
    Request,
    /// Both directions (`m=bidirectional`).
    Bidirectional,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Publish => "publish",
            Mode::Request => "request (play)",
            Mode::Bidirectional => "bidirectional",
        })
    }
}

/// A parsed SRT streamid: who publishes which stream.
///
/// `Debug` redacts the key and the password, so a `StreamId` can be logged as it is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// Always [`Mode::Publish`]: other modes are refused with [`StreamIdError::WrongMode`].
    pub mode: Mode,
    /// The path before the key (`live` in `live/KEY`), when there is one. Informational: the
    /// key alone selects the stream.
    pub app: Option<String>,
    /// The stream key, a secret: 1 or more characters from `[A-Za-z0-9._~-]`.
    pub key: String,
    /// The user name (`u=` in SRT access control, the third MediaMTX field), when given.
    pub user: Option<String>,
    /// The password (the fourth MediaMTX field), when given. A secret.
    pub password: Option<String>,
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamId")
            .field("mode", &self.mode)
            .field("app", &self.app)
            .field("key", &Redacted(self.key.len()))
            .field("user", &self.user)
            .field(
                "password",
                &self.password.as_ref().map(|p| Redacted(p.len())),
            )
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// Why a streamid was refused. Each variant maps to an SRT rejection reason
/// ([`StreamIdError::reject_code`]); the `Display` text says what to change in the publisher.
///
/// No variant carries the stream key or the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// The streamid is longer than SRT allows ([`MAX_STREAMID_LEN`]).
    #[error("the SRT streamid is {len} bytes long; SRT allows at most 512")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The streamid is empty or names no stream key.
    #[error(
        "the SRT streamid carries no stream key: set streamid to the key, \
         e.g. srt://HOST:PORT?streamid=#!::r=live/KEY,m=publish"
    )]
    MissingKey,
    /// The stream key holds a character outside `[A-Za-z0-9._~-]`.
    #[error(
        "the stream key in the SRT streamid contains {ch:?}; keys may only contain letters, \
         digits and - _ . ~ (check the streamid's syntax)"
    )]
    InvalidKey {
        /// The first offending character.
        ch: char,
    },
    /// The path before the key holds an empty segment or a character outside `[A-Za-z0-9._~-]`.
    #[error(
        "the path in the SRT streamid is invalid: use live/KEY, with letters, digits and - _ . ~ only"
    )]
    InvalidApp,
    /// The user name or password holds a control character, `,`, `:` or `=`, which no
    /// streamid dialect can carry unambiguously.
    #[error("the user name or password in the SRT streamid contains a control character, ',', ':' or '='")]
    InvalidCredentials,
    /// An item of an SRT access-control streamid (`#!::...`) has no `=`.
    #[error(
        "item {index} of the SRT access-control streamid has no '=': write key=value pairs \
         separated by commas, e.g. #!::r=live/KEY,m=publish"
    )]
    MalformedPair {
        /// Position of the item, from 0.
        index: usize,
    },
    /// An SRT access-control key Ferrocast reads (`r`, `m`, `s`, `t`, `u`) appears twice.
    #[error("the SRT access-control streamid sets {key:?} more than once")]
    DuplicateKey {
        /// The key name.
        key: String,
    },
    /// The streamid asks for a mode other than publishing, which Ferrocast does not serve over
    /// SRT.
    #[error(
        "this server only accepts publishers over SRT, but the streamid asks for {0} mode: \
         use m=publish (or publish: in the MediaMTX form); play over HLS instead"
    )]
    WrongMode(Mode),
    /// The mode is not one SRT or MediaMTX defines.
    #[error("unknown mode {0:?} in the SRT streamid: use m=publish")]
    UnknownMode(String),
    /// `t=` names a connection type other than `stream`.
    #[error("the SRT streamid asks for type t={0:?}; only t=stream (the default) is served")]
    UnsupportedType(String),
    /// The streamid starts with `#!` but not with `#!::`, the only access-control syntax SRT
    /// defines.
    #[error(
        "the SRT streamid starts with #! but not #!::, the only access-control syntax SRT defines"
    )]
    UnsupportedSyntax,
    /// A MediaMTX-style streamid (`publish:...`) has the wrong number of `:`-separated fields.
    #[error(
        "the MediaMTX-style SRT streamid has {fields} ':'-separated fields; expected \
         publish:PATH, publish:PATH:QUERY, publish:PATH:USER:PASS or publish:PATH:USER:PASS:QUERY"
    )]
    MalformedMediamtx {
        /// How many fields it has.
        fields: usize,
    },
}

impl StreamIdError {
    /// The SRT access-control rejection reason to send back at the handshake (see
    /// [`crate::reject`]).
    pub fn reject_code(&self) -> u16 {
        match self {
            StreamIdError::MissingKey => reject::UNAUTHORIZED,
            StreamIdError::WrongMode(_) | StreamIdError::UnknownMode(_) => reject::BAD_MODE,
            StreamIdError::UnsupportedType(_) => reject::UNACCEPTABLE,
            StreamIdError::TooLong { .. }
            | StreamIdError::InvalidKey { .. }
            | StreamIdError::InvalidApp
            | StreamIdError::InvalidCredentials
            | StreamIdError::MalformedPair { .. }
            | StreamIdError::DuplicateKey { .. }
            | StreamIdError::UnsupportedSyntax
            | StreamIdError::MalformedMediamtx { .. } => reject::BAD_REQUEST,
        }
    }
}

/// A short, printable echo of a value for an error message.
fn echo(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn parse_mode(value: &str) -> Result<Mode, StreamIdError> {
    let mode = match value.to_ascii_lowercase().as_str() {
        "publish" => Mode::Publish,
        "request" | "play" | "read" => Mode::Request,
        "bidirectional" => Mode::Bidirectional,
        _ => return Err(StreamIdError::UnknownMode(echo(value))),
    };
    match mode {
        Mode::Publish => Ok(mode),
        other => Err(StreamIdError::WrongMode(other)),
    }
}

/// `live/KEY`, `/live/KEY`, `a/b/KEY?query` or `KEY`: splits into (app, key) and validates both.
fn parse_path(path: &str) -> Result<(Option<String>, String), StreamIdError> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let path = path.strip_prefix('/').unwrap_or(path);
    let (app, key) = match path.rsplit_once('/') {
        Some((app, key)) => (Some(app), key),
        None => (None, path),
    };
    if key.is_empty() {
        return Err(StreamIdError::MissingKey);
    }
    if let Some(ch) = key
        .chars()
        .find(|c| !c.is_ascii() || !is_key_byte(*c as u8))
    {
        return Err(StreamIdError::InvalidKey { ch });
    }
    if let Some(app) = app {
        if app
            .split('/')
            .any(|seg| seg.is_empty() || !seg.bytes().all(is_key_byte))
        {
            return Err(StreamIdError::InvalidApp);
        }
    }
    Ok((app.map(str::to_owned), key.to_owned()))
}

/// A user name or password: empty means absent.
fn credential(value: &str) -> Result<Option<String>, StreamIdError> {
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, ',' | ':' | '='))
    {
        return Err(StreamIdError::InvalidCredentials);
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

impl StreamId {
    /// Parses a streamid in any dialect publishers use (see the crate docs).
    ///
    /// Trailing NUL bytes, which some SRT stacks leave from the handshake's 4-byte padding, are
    /// ignored. A streamid that names no mode is taken as a publish request: Ferrocast serves
    /// only publishers over SRT, and encoders (OBS among them) often omit `m=`, although the
    /// SRT access-control specification's default is `request`.
    pub fn parse(streamid: &str) -> Result<StreamId, StreamIdError> {
        if streamid.len() > MAX_STREAMID_LEN {
            return Err(StreamIdError::TooLong {
                len: streamid.len(),
            });
        }
        let s = streamid.trim_end_matches('\0');
        if let Some(rest) = s.strip_prefix("#!") {
            return match rest.strip_prefix("::") {
                Some(body) => Self::parse_access_control(body),
                None => Err(StreamIdError::UnsupportedSyntax),
            };
        }
        if let Some((action, rest)) = s.split_once(':') {
            // Only the actions MediaMTX defines select its dialect: anything else before a
            // ':' could be part of a key, which must not be echoed in an error.
            let known = ["publish", "read", "play", "request"]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action));
            if known {
                return Self::parse_mediamtx(action, rest);
            }
        }
        let (app, key) = parse_path(s)?;
        Ok(StreamId {
            mode: Mode::Publish,
            app,
            key,
            user: None,
            password: None,
        })
    }

    /// `#!::k=v,k=v,...`, after the `#!::`.
    fn parse_access_control(body: &str) -> Result<StreamId, StreamIdError> {
        let (mut r, mut s, mut m, mut t, mut u) = (None, None, None, None, None);
        for (index, item) in body.split(',').enumerate() {
            // A trailing or doubled comma carries nothing; tolerate it.
            if item.is_empty() {
                continue;
            }
            let (name, value) = item
                .split_once('=')
                .ok_or(StreamIdError::MalformedPair { index })?;
            let slot = match name {
                "r" => &mut r,
                "s" => &mut s,
                "m" => &mut m,
                "t" => &mut t,
                "u" => &mut u,
                // The specification lets applications add keys (`h=` host among the standard
                // ones); none of them matter here.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(StreamIdError::DuplicateKey { key: echo(name) });
            }
        }
        let mode = m.map_or(Ok(Mode::Publish), parse_mode)?;
        if let Some(t) = t {
            if !t.eq_ignore_ascii_case("stream") {
                return Err(StreamIdError::UnsupportedType(echo(t)));
            }
        }
        // `s=` is a session id, but some encoders carry the key there; it counts only when no
        // resource is named.
        let resource = r.or(s).ok_or(StreamIdError::MissingKey)?;
        let (app, key) = parse_path(resource)?;
        Ok(StreamId {
            mode,
            app,
            key,
            user: u.map(credential).transpose()?.flatten(),
            password: None,
        })
    }

    /// MediaMTX: `action:path[:query]` or `action:path:user:pass[:query]`.
    fn parse_mediamtx(action: &str, rest: &str) -> Result<StreamId, StreamIdError> {
        let mode = parse_mode(action)?;
        let fields: Vec<&str> = rest.split(':').collect();
        let (path, user, password) = match fields[..] {
            [path] | [path, _] => (path, "", ""),
            [path, user, pass] | [path, user, pass, _] => (path, user, pass),
            _ => {
                return Err(StreamIdError::MalformedMediamtx {
                    fields: fields.len() + 1,
                })
            }
        };
        let (app, key) = parse_path(path)?;
        Ok(StreamId {
            mode,
            app,
            key,
            user: credential(user)?,
            password: credential(password)?,
        })
    }

    /// The resource as a path: `app/key`, or `key` without an app.
    fn resource(&self) -> String {
        match &self.app {
            Some(app) => format!("{app}/{}", self.key),
            None => self.key.clone(),
        }
    }

    /// The canonical streamid for this value, which [`StreamId::parse`] turns back into it:
    /// SRT access control (`#!::r=live/KEY,m=publish[,u=USER]`), or the MediaMTX form when there
    /// is a password, which access control has no key for. It contains the key: do not log it.
    /// It can be longer than [`MAX_STREAMID_LEN`] when the input was a bare key near the limit.
    pub fn to_canonical(&self) -> String {
        match &self.password {
            Some(pass) => format!(
                "publish:{}:{}:{pass}",
                self.resource(),
                self.user.as_deref().unwrap_or("")
            ),
            None => {
                let mut out = format!("#!::r={},m=publish", self.resource());
                if let Some(user) = &self.user {
                    out.push_str(",u=");
                    out.push_str(user);
                }
                out
            }
        }
    }
}
