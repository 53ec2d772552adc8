//! SRT access-control rejection reasons (`SRT_REJX_*` in the SRT access-control
//! specification), the codes a listener sends back when it refuses a caller at the handshake.
//!
//! [`StreamIdError::reject_code`](crate::StreamIdError::reject_code) picks one for a streamid
//! that could not be parsed; the others are for the listener's own decisions (an unknown key, a
//! stream already being published).

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
