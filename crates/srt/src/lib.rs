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
pub mod fuzz;
pub mod reject;

#[doc(hidden)]
pub use cases::_cases;
pub use streamid::{Mode, StreamId, StreamIdError, MAX_STREAMID_LEN};

#[cfg(test)]
mod tests;
