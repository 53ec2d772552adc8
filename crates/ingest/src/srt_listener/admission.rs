//! Deciding an SRT caller at the handshake: its streamid, its key, its encryption.
//!
//! Everything here is a pure function of what the handshake carries and what the registry
//! answers, so every refusal is tested without a socket.

use media::StreamName;
use srt::{reject, StreamId};
use srt_tokio::access::{RejectReason, ServerRejectReason};

use crate::auth::PublishAttempt;
use crate::error::PublishError;
use crate::outcome::{Protocol, Rejection};

/// `SRT_REJ_UNSECURE` (1011 on the wire): one side wants encryption and the other does not.
const REJ_UNSECURE: i32 = 1011;

/// What is refused at the handshake, and how the refusal is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rejection sent to the caller.
    pub reason: RejectReason,
    /// How the rejections metric counts it.
    pub metric: Rejection,
    /// For the log: what was wrong and what to do. Never contains the key or a passphrase.
    pub message: String,
}

/// A caller that may be accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct Admission {
    /// The stream key (a secret).
    pub key: String,
    /// The stream it publishes.
    pub name: StreamName,
    /// The AES passphrase the handshake must match, if the stream has one.
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("name", &self.name)
            .field("encrypted", &self.passphrase.is_some())
            .finish_non_exhaustive()
    }
}

/// The SRT rejection for an access-control code of [`srt::reject`].
///
/// On the wire a rejection is `1000 + code`; srt-tokio names the predefined ones. Codes are
/// matched by meaning, so a caller sees the reason libsrt documents (`SRT_REJX_CONFLICT` is
/// 1409 in libsrt).
pub fn reject_reason(code: u16) -> RejectReason {
    use ServerRejectReason as S;
    let reason = match code {
        reject::BAD_REQUEST => S::BadRequest,
        reject::UNAUTHORIZED => S::Unauthorized,
        reject::OVERLOAD => S::Overload,
        reject::FORBIDDEN => S::Forbidden,
        reject::NOT_FOUND => S::Notfound,
        reject::BAD_MODE => S::BadMode,
        reject::UNACCEPTABLE => S::Unacceptable,
        reject::CONFLICT => S::Conflict,
        reject::NOTSUP_MEDIA => S::NotSupMedia,
        reject::INTERNAL_SERVER_ERROR => S::InternalServerError,
        reject::UNAVAILABLE => S::Down,
        other => {
            return RejectReason::try_from(i32::from(other) + 1000)
                .unwrap_or(RejectReason::Server(S::Fallback))
        }
    };
    RejectReason::Server(reason)
}

/// The metric label for a streamid that cannot be served.
fn streamid_metric(e: &srt::StreamIdError) -> Rejection {
    match e.reject_code() {
        reject::UNAUTHORIZED => Rejection::MissingKey,
        reject::BAD_MODE => Rejection::BadMode,
        _ => Rejection::BadStreamid,
    }
}

/// The streamid with `%XX` escapes decoded, as some publishers send it URL-encoded (a key
/// never holds `%`); unchanged when it is not a valid escape sequence.
fn percent_decoded(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return s.into(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_or(s.into(), Into::into)
}

/// How a caller hears that the registry (or the cluster) refused its publish.
pub(crate) fn refusal(e: PublishError) -> Refusal {
    let code = match e {
        PublishError::BadKey | PublishError::Denied(_) => reject::FORBIDDEN,
        PublishError::AlreadyLive(_) | PublishError::LiveElsewhere(_) => reject::CONFLICT,
        PublishError::Draining | PublishError::StoreDown | PublishError::AuthUnavailable => {
            reject::UNAVAILABLE
        }
    };
    Refusal {
        reason: reject_reason(code),
        metric: e.rejection(),
        message: e.to_string(),
    }
}

/// What the caller presents to the registry (and the webhook): `None` when its streamid does
/// not parse, which [`decide`] refuses.
pub(crate) fn attempt(
    streamid: Option<&str>,
    remote: std::net::SocketAddr,
) -> Option<PublishAttempt> {
    let id = StreamId::parse(&percent_decoded(streamid.unwrap_or(""))).ok()?;
    Some(PublishAttempt {
        protocol: Protocol::Srt,
        key: id.key,
        query: Vec::new(),
        app: id.app,
        srt_user: id.user,
        remote,
        oversized: false,
    })
}

/// Decides a caller from what its handshake carries, before anything is accepted.
///
/// `check` answers what a publish would (the registry's
/// [`crate::registry::StreamRegistry::check_publish`]);
/// `passphrase_for` gives the passphrase a stream requires. `caller_key_len` is the AES key
/// length the caller announced (0 when it announced none, which a caller that encrypts may
/// also do).
pub fn decide(
    streamid: Option<&str>,
    caller_key_len: u8,
    check: impl FnOnce(&str) -> Result<StreamName, PublishError>,
    passphrase_for: impl FnOnce(&StreamName) -> Option<String>,
) -> Result<Admission, Refusal> {
    let streamid = percent_decoded(streamid.unwrap_or(""));
    let id = StreamId::parse(&streamid).map_err(|e| Refusal {
        reason: reject_reason(e.reject_code()),
        metric: streamid_metric(&e),
        message: e.to_string(),
    })?;
    let name = check(&id.key).map_err(refusal)?;
    let passphrase = passphrase_for(&name);
    if passphrase.is_none() && caller_key_len != 0 {
        // Refused here, with a message and a metric of our own, as libsrt listeners do. A
        // caller that encrypts without announcing a key length cannot be told apart here; the
        // patched handshake refuses it (SRT_REJ_UNSECURE; see the module docs).
        return Err(Refusal {
            reason: RejectReason::try_from(REJ_UNSECURE)
                .unwrap_or(RejectReason::Server(ServerRejectReason::Unacceptable)),
            metric: Rejection::UnexpectedPassphrase,
            message: format!(
                "the caller encrypts, but stream {name} has no SRT passphrase; remove the \
                 passphrase from the publisher or configure one for the stream"
            ),
        });
    }
    Ok(Admission {
        key: id.key,
        name,
        passphrase,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> StreamName {
        s.parse().unwrap()
    }

    /// The code a libsrt caller reads from `srt_getrejectreason` (the wire value less 1000).
    fn caller_code(reason: RejectReason) -> i32 {
        i32::from(reason) - 1000
    }

    fn known(key: &str) -> Result<StreamName, PublishError> {
        match key {
            "good" => Ok(name("main")),
            "busy" => Err(PublishError::AlreadyLive(name("busy"))),
            "late" => Err(PublishError::Draining),
            _ => Err(PublishError::BadKey),
        }
    }

    fn no_passphrase(_: &StreamName) -> Option<String> {
        None
    }

    #[test]
    fn reject_reasons_are_the_codes_libsrt_documents() {
        for (code, expected) in [
            (reject::BAD_REQUEST, 1400),
            (reject::UNAUTHORIZED, 1401),
            (reject::OVERLOAD, 1402),
            (reject::FORBIDDEN, 1403),
            (reject::NOT_FOUND, 1404),
            (reject::BAD_MODE, 1405),
            (reject::UNACCEPTABLE, 1406),
            // SRT_REJX_CONFLICT is 1409 in libsrt's access_control.h.
            (reject::CONFLICT, 1409),
            (reject::NOTSUP_MEDIA, 1415),
            (reject::INTERNAL_SERVER_ERROR, 1500),
            (reject::UNAVAILABLE, 1503),
            (1499, 1499),
        ] {
            assert_eq!(caller_code(reject_reason(code)), expected, "code {code}");
        }
    }

    /// Every streamid dialect and every refusal, as the handshake sees them.
    #[test]
    fn decisions() {
        type Case = (
            &'static str,
            Option<&'static str>,
            Result<&'static str, (i32, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "access control",
                Some("#!::r=live/good,m=publish"),
                Ok("main"),
            ),
            (
                "access control with user",
                Some("#!::r=live/good,m=publish,u=alice,t=stream"),
                Ok("main"),
            ),
            ("access control, key in s", Some("#!::s=good"), Ok("main")),
            ("mediamtx", Some("publish:live/good"), Ok("main")),
            (
                "mediamtx with credentials",
                Some("publish:live/good:alice:pw"),
                Ok("main"),
            ),
            ("path", Some("live/good"), Ok("main")),
            ("bare key", Some("good"), Ok("main")),
            (
                "url-encoded access control",
                Some("%23%21%3A%3Ar%3Dlive%2Fgood%2Cm%3Dpublish"),
                Ok("main"),
            ),
            (
                "url-encoded mediamtx",
                Some("publish%3Alive%2Fgood"),
                Ok("main"),
            ),
            ("no streamid", None, Err((1401, "missing_key"))),
            ("empty streamid", Some(""), Err((1401, "missing_key"))),
            ("wrong key", Some("live/nope"), Err((1403, "bad_key"))),
            (
                "play mode",
                Some("#!::r=live/good,m=request"),
                Err((1405, "bad_mode")),
            ),
            (
                "mediamtx read",
                Some("read:live/good"),
                Err((1405, "bad_mode")),
            ),
            (
                "unknown mode",
                Some("#!::r=live/good,m=fly"),
                Err((1405, "bad_mode")),
            ),
            (
                "file type",
                Some("#!::r=live/good,t=file"),
                Err((1406, "bad_streamid")),
            ),
            (
                "bad syntax",
                Some("#!:r=live/good"),
                Err((1400, "bad_streamid")),
            ),
            (
                "bad key characters",
                Some("live/go od"),
                Err((1400, "bad_streamid")),
            ),
            (
                "stray percent",
                Some("live/go%zz"),
                Err((1400, "bad_streamid")),
            ),
            (
                "stream busy",
                Some("live/busy"),
                Err((1409, "already_live")),
            ),
            (
                "server draining",
                Some("live/late"),
                Err((1503, "draining")),
            ),
        ];
        for (what, streamid, expected) in cases {
            let got = decide(streamid, 0, known, no_passphrase);
            match (got, expected) {
                (Ok(a), Ok(stream)) => {
                    assert_eq!(a.name.as_str(), stream, "{what}");
                    assert_eq!(a.key, "good", "{what}");
                    assert_eq!(a.passphrase, None, "{what}");
                }
                (Err(r), Err((code, metric))) => {
                    assert_eq!(
                        (caller_code(r.reason), r.metric.label()),
                        (code, metric),
                        "{what}: {r:?}"
                    );
                    assert!(
                        !r.message.contains("good"),
                        "{what}: the key leaks: {}",
                        r.message
                    );
                }
                (got, expected) => panic!("{what}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn passphrases() {
        let secret = |_: &StreamName| Some("0123456789".to_owned());
        // A stream with a passphrase hands it to the handshake, which checks it; whatever the
        // key length the caller announced.
        for len in [0, 16, 24, 32] {
            let a = decide(Some("live/good"), len, known, secret).unwrap();
            assert_eq!(a.passphrase.as_deref(), Some("0123456789"));
        }
        // A caller that encrypts towards a stream without a passphrase is refused as
        // SRT_REJ_UNSECURE (1011 on the wire), like libsrt listeners do.
        let r = decide(Some("live/good"), 16, known, no_passphrase).unwrap_err();
        assert_eq!(i32::from(r.reason), REJ_UNSECURE);
        assert_eq!(r.metric, Rejection::UnexpectedPassphrase);
        // The passphrase never shows in Debug.
        let a = decide(Some("live/good"), 16, known, secret).unwrap();
        assert!(!format!("{a:?}").contains("0123456789"));
        assert!(!format!("{a:?}").contains("good"));
    }
}
