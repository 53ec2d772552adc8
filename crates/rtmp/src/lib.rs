//! Sans-IO RTMP server protocol core: the handshake, the chunk stream, AMF0 and the publish
//! command sequence, for ingesting streams from OBS, FFmpeg, GStreamer and hardware encoders.
//!
//! A [`ServerSession`] takes the bytes a TCP connection reads and returns the bytes to write
//! and [`Event`]s for the application. It has no socket, no clock, no tokio and no randomness
//! of its own, so the async driver around it is a short loop and every test is a replay.
//! Media comes out as FLV tag bodies (`Bytes`), which the `flv` crate parses.
//!
//! Everything the peer controls is bounded by [`ServerConfig`]: the chunk size, the message
//! size (checked before any allocation), the number of chunk streams and the bytes held for
//! partially received messages. No input makes it panic; bad input is an [`Error`], and a
//! short input is simply "need more bytes".
//!
//! # Drive loop
//!
//! ```
//! use rtmp::{Event, ServerConfig, ServerSession};
//!
//! # fn read_socket() -> Option<Vec<u8>> { None }
//! # fn write_socket(_: &[u8]) {}
//! // Fresh random bytes per connection in a real server.
//! let mut session = ServerSession::new(ServerConfig::default(), [7; 32]);
//! while let Some(data) = read_socket() {
//!     if let Err(e) = session.handle_input(&data) {
//!         eprintln!("closing: {e}");
//!         break;
//!     }
//!     while let Some(bytes) = session.poll_transmit() {
//!         write_socket(&bytes);
//!     }
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             Event::Publish { name, .. } if name == "secret-key" => session.accept_publish(),
//!             Event::Publish { .. } => {
//!                 session.reject_publish("NetStream.Publish.BadName", "Unknown stream key.")
//!             }
//!             Event::Video { timestamp, data } => { /* to the flv crate */ let _ = (timestamp, data); }
//!             _ => {}
//!         }
//!     }
//!     // Transmits produced by accept/reject go out on the next round (or flush them here).
//!     while let Some(bytes) = session.poll_transmit() {
//!         write_socket(&bytes);
//!     }
//!     if session.is_closed() {
//!         break;
//!     }
//! }
//! ```

pub mod amf0;
pub mod chunk;
mod error;
pub mod fuzz;
pub mod handshake;
mod session;
#[doc(hidden)]
pub mod testing;

pub use error::Error;
pub use session::{Event, ServerConfig, ServerSession};
