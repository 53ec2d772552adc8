//! SRT ingest, sans-IO: what Ferrocast needs to know about an SRT caller before it accepts the
//! connection.
//!
//! An SRT caller names what it wants in the handshake's `streamid`, and publishers write it in
//! several dialects. [`StreamId::parse`] accepts all of them and returns one typed
//! [`StreamId`], or a [`StreamIdError`] whose [`reject_code`](StreamIdError::reject_code) is the
//! SRT access-control rejection reason to send back, so the caller's log says why.
//!
//! | dialect                         | example                                       |
//! |---------------------------------|-----------------------------------------------|
//! | SRT access control              | `#!::r=live/KEY,m=publish,u=alice`            |
//! | access control, key in `s`      | `#!::s=KEY`                                   |
//! | MediaMTX                        | `publish:live/KEY` or `publish:live/KEY:user:pass` |
//! | a path                          | `live/KEY`, `/live/KEY?foo=bar`               |
//! | a bare key                      | `KEY`                                         |
//!
//! The crate touches no socket. The network side (an `srt-tokio` listener) reads the streamid of
//! each caller, calls [`StreamId::parse`], looks the key up, and accepts or rejects with a code
//! from [`reject`]. The drive loop, as that listener runs it:
//!
//! ```
//! use srt::{reject, Mode, StreamId};
//!
//! // What the listener does with each caller's streamid at the handshake.
//! fn decide(streamid: &str, known_key: &str) -> Result<StreamId, u16> {
//!     let id = StreamId::parse(streamid).map_err(|e| e.reject_code())?;
//!     if id.key != known_key {
//!         return Err(reject::FORBIDDEN);
//!     }
//!     Ok(id)
//! }
//!
//! let id = decide("#!::r=live/s3cret,m=publish", "s3cret").unwrap();
//! assert_eq!((id.mode, id.app.as_deref()), (Mode::Publish, Some("live")));
//! // The key never shows in logs.
//! assert!(!format!("{id:?}").contains("s3cret"));
//!
//! assert_eq!(decide("publish:live/s3cret:alice:pw", "s3cret").unwrap().user.as_deref(), Some("alice"));
//! assert_eq!(decide("live/wrong", "s3cret"), Err(reject::FORBIDDEN));
//! assert_eq!(decide("#!::r=live/s3cret,m=request", "s3cret"), Err(reject::BAD_MODE));
//! assert_eq!(decide("", "s3cret"), Err(reject::UNAUTHORIZED));
//! ```

mod streamid;

#[doc(hidden)]
pub mod cases;

#[doc(hidden)]
pub use cases::_cases;
pub use streamid::{Mode, StreamId, StreamIdError, MAX_STREAMID_LEN};

/// SRT access-control rejection reasons (`SRT_REJX_*` in the SRT access-control
/// specification), the codes a listener sends back when it refuses a caller at the handshake.
///
/// [`StreamIdError::reject_code`] picks one for a streamid that could not be parsed; the others
/// are for the listener's own decisions (an unknown key, a stream already being published).
pub mod reject {
    /// `SRT_REJX_BAD_REQUEST`: a syntax error in the streamid (also the fallback code).
    pub const BAD_REQUEST: u16 = 1400;
    /// `SRT_REJX_UNAUTHORIZED`: no credentials, or authentication failed.
    pub const UNAUTHORIZED: u16 = 1401;
    /// `SRT_REJX_OVERLOAD`: the server is too heavily loaded.
    pub const OVERLOAD: u16 = 1402;
    /// `SRT_REJX_FORBIDDEN`: access to the resource is denied (e.g. an unknown stream key).
    pub const FORBIDDEN: u16 = 1403;
    /// `SRT_REJX_NOTFOUND`: the resource was not found at this time.
    pub const NOT_FOUND: u16 = 1404;
    /// `SRT_REJX_BAD_MODE`: the mode (`m=`) is not supported for this request.
    pub const BAD_MODE: u16 = 1405;
    /// `SRT_REJX_UNACCEPTABLE`: the requested parameters cannot be satisfied.
    pub const UNACCEPTABLE: u16 = 1406;
    /// `SRT_REJX_CONFLICT` (1409, as HTTP 409): the resource is already locked for modification (someone else is
    /// publishing it).
    pub const CONFLICT: u16 = 1409;
    /// `SRT_REJX_NOTSUP_MEDIA`: the media type is not supported.
    pub const NOTSUP_MEDIA: u16 = 1415;
    /// `SRT_REJX_ISE`: an internal server error.
    pub const INTERNAL_SERVER_ERROR: u16 = 1500;
    /// `SRT_REJX_UNAVAILABLE`: the service is unavailable (e.g. shutting down).
    pub const UNAVAILABLE: u16 = 1503;
}

/// Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
/// code.
pub mod fuzz {
    use crate::StreamId;

    /// Parses `data` (lossily decoded as UTF-8) as a streamid. Never panics. When parsing
    /// succeeds, the canonical form must parse back to the same value, and the `Debug` form
    /// must not show the key.
    pub fn streamid(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        match StreamId::parse(&text) {
            Ok(id) => {
                let canonical = id.to_canonical();
                if canonical.len() <= crate::MAX_STREAMID_LEN {
                    let again = StreamId::parse(&canonical);
                    assert_eq!(
                        again.as_ref(),
                        Ok(&id),
                        "canonical form does not round-trip"
                    );
                }
                // Redaction: the Debug form depends on the secrets' lengths only.
                let mut other = id.clone();
                other.key = "x".repeat(id.key.len());
                other.password = id.password.as_ref().map(|p| "x".repeat(p.len()));
                assert_eq!(
                    format!("{id:?}"),
                    format!("{other:?}"),
                    "Debug shows a secret"
                );
            }
            Err(e) => {
                let _ = (e.to_string(), e.reject_code());
            }
        }
    }
}

#[cfg(test)]
mod tests;
