//! One table of streamids, accepted and refused, with what [`StreamId::parse`] should make of
//! each. The unit tests run it and the `fuzz/` crate can write the inputs out as seeds.

use crate::streamid::{Mode, StreamId, StreamIdError, MAX_STREAMID_LEN};

/// One streamid and its expected parse.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case shows.
    pub name: &'static str,
    /// The streamid as the caller sends it.
    pub input: String,
    /// What [`StreamId::parse`] must return.
    pub expect: Result<StreamId, StreamIdError>,
}

fn ok(
    app: Option<&str>,
    key: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<StreamId, StreamIdError> {
    Ok(StreamId {
        mode: Mode::Publish,
        app: app.map(str::to_owned),
        key: key.to_owned(),
        user: user.map(str::to_owned),
        password: password.map(str::to_owned),
    })
}

/// The table: every dialect, then every way to get it wrong.
pub fn _cases() -> Vec<Case> {
    use StreamIdError as E;
    let live = Some("live");
    let mut cases = vec![
        // SRT access control.
        (
            "ac: resource and mode",
            "#!::r=live/abc123,m=publish",
            ok(live, "abc123", None, None),
        ),
        (
            "ac: any order, user, type",
            "#!::u=alice,m=publish,t=stream,r=live/k-1",
            ok(live, "k-1", Some("alice"), None),
        ),
        (
            "ac: mode omitted means publish",
            "#!::r=live/abc",
            ok(live, "abc", None, None),
        ),
        (
            "ac: bare key as resource",
            "#!::r=abc.DEF~_-9",
            ok(None, "abc.DEF~_-9", None, None),
        ),
        ("ac: key in s", "#!::s=abc", ok(None, "abc", None, None)),
        (
            "ac: r wins over s",
            "#!::s=session42,r=live/abc",
            ok(live, "abc", None, None),
        ),
        (
            "ac: unknown and host keys ignored",
            "#!::h=example.com,r=live/abc,x-custom=1,m=publish",
            ok(live, "abc", None, None),
        ),
        (
            "ac: mode case-insensitive",
            "#!::r=abc,m=PUBLISH",
            ok(None, "abc", None, None),
        ),
        (
            "ac: trailing comma",
            "#!::r=abc,",
            ok(None, "abc", None, None),
        ),
        (
            "ac: value may hold '='",
            "#!::r=abc,x=a=b",
            ok(None, "abc", None, None),
        ),
        (
            "ac: nested app",
            "#!::r=org/live/abc",
            ok(Some("org/live"), "abc", None, None),
        ),
        (
            "ac: empty user is none",
            "#!::r=abc,u=",
            ok(None, "abc", None, None),
        ),
        (
            "ac: request mode",
            "#!::r=live/abc,m=request",
            Err(E::WrongMode(Mode::Request)),
        ),
        (
            "ac: play mode",
            "#!::r=live/abc,m=play",
            Err(E::WrongMode(Mode::Request)),
        ),
        (
            "ac: bidirectional",
            "#!::r=live/abc,m=bidirectional",
            Err(E::WrongMode(Mode::Bidirectional)),
        ),
        (
            "ac: unknown mode",
            "#!::r=live/abc,m=push",
            Err(E::UnknownMode("push".into())),
        ),
        (
            "ac: file type",
            "#!::r=live/abc,t=file",
            Err(E::UnsupportedType("file".into())),
        ),
        (
            "ac: pair without =",
            "#!::r=live/abc,publish",
            Err(E::MalformedPair { index: 1 }),
        ),
        (
            "ac: duplicate r",
            "#!::r=a,r=b",
            Err(E::DuplicateKey { key: "r".into() }),
        ),
        ("ac: no key", "#!::m=publish,u=alice", Err(E::MissingKey)),
        ("ac: empty", "#!::", Err(E::MissingKey)),
        ("ac: empty resource", "#!::r=", Err(E::MissingKey)),
        ("ac: resource ends in /", "#!::r=live/", Err(E::MissingKey)),
        ("ac: only app slash", "#!::r=/", Err(E::MissingKey)),
        (
            "ac: bad char in key",
            "#!::r=live/ab c",
            Err(E::InvalidKey { ch: ' ' }),
        ),
        ("ac: bad app", "#!::r=li ve/abc", Err(E::InvalidApp)),
        ("ac: empty app segment", "#!::r=a//abc", Err(E::InvalidApp)),
        (
            "ac: bad user",
            "#!::r=abc,u=al:ice",
            Err(E::InvalidCredentials),
        ),
        ("unknown #! syntax", "#!:{r:abc}", Err(E::UnsupportedSyntax)),
        // MediaMTX.
        (
            "mediamtx: publish",
            "publish:live/abc",
            ok(live, "abc", None, None),
        ),
        (
            "mediamtx: credentials",
            "publish:live/abc:alice:pw!#",
            ok(live, "abc", Some("alice"), Some("pw!#")),
        ),
        (
            "mediamtx: query",
            "publish:live/abc:foo=bar",
            ok(live, "abc", None, None),
        ),
        (
            "mediamtx: credentials and query",
            "publish:abc:alice:pw:x=1",
            ok(None, "abc", Some("alice"), Some("pw")),
        ),
        (
            "mediamtx: password only",
            "publish:abc::pw",
            ok(None, "abc", None, Some("pw")),
        ),
        (
            "mediamtx: read",
            "read:live/abc",
            Err(E::WrongMode(Mode::Request)),
        ),
        (
            "mediamtx: too many fields",
            "publish:a:b:c:d:e",
            Err(E::MalformedMediamtx { fields: 6 }),
        ),
        ("mediamtx: no key", "publish:", Err(E::MissingKey)),
        (
            "mediamtx: bad key",
            "publish:live/a%62",
            Err(E::InvalidKey { ch: '%' }),
        ),
        // Paths.
        ("path", "live/abc", ok(live, "abc", None, None)),
        (
            "path with leading slash",
            "/live/abc",
            ok(live, "abc", None, None),
        ),
        (
            "path with query",
            "/live/abc?token=1&x=y",
            ok(live, "abc", None, None),
        ),
        ("path with trailing slash", "live/abc/", Err(E::MissingKey)),
        ("path without key", "live/", Err(E::MissingKey)),
        ("path slash only", "/", Err(E::MissingKey)),
        ("path query only", "?a=b", Err(E::MissingKey)),
        // Bare keys.
        ("bare key", "abc123XYZ", ok(None, "abc123XYZ", None, None)),
        (
            "bare key, trailing NULs",
            "abc\0\0\0",
            ok(None, "abc", None, None),
        ),
        ("empty", "", Err(E::MissingKey)),
        (
            "bare key with colon",
            "abc:def",
            Err(E::InvalidKey { ch: ':' }),
        ),
        (
            "bare key with unicode",
            "ключ",
            Err(E::InvalidKey { ch: 'к' }),
        ),
        (
            "bare key with NUL inside",
            "a\0b",
            Err(E::InvalidKey { ch: '\0' }),
        ),
        (
            "url pasted as streamid",
            "srt://host:9000?streamid=abc",
            Err(E::InvalidKey { ch: ':' }),
        ),
    ]
    .into_iter()
    .map(|(name, input, expect)| Case {
        name,
        input: input.to_owned(),
        expect,
    })
    .collect::<Vec<_>>();
    let longest_key = "k".repeat(MAX_STREAMID_LEN);
    cases.push(Case {
        name: "512 bytes is allowed",
        input: longest_key.clone(),
        expect: ok(None, &longest_key, None, None),
    });
    cases.push(Case {
        name: "over-long",
        input: format!("#!::r=live/{}", "k".repeat(MAX_STREAMID_LEN)),
        expect: Err(E::TooLong { len: 523 }),
    });
    cases
}
