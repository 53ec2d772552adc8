use proptest::prelude::*;

use crate::{_cases, fuzz, reject, Mode, StreamId, StreamIdError};

#[test]
fn table() {
    let mut failures = Vec::new();
    for case in _cases() {
        let got = StreamId::parse(&case.input);
        if got != case.expect {
            failures.push(format!(
                "{}: {:?}\n   got {got:?}\n  want {:?}",
                case.name, case.input, case.expect
            ));
        }
        // Every accepted streamid round-trips through its canonical form, and the fuzz entry
        // point's own checks hold.
        if let Some(id) = got
            .as_ref()
            .ok()
            .filter(|id| id.to_canonical().len() <= crate::MAX_STREAMID_LEN)
        {
            assert_eq!(
                StreamId::parse(&id.to_canonical()).as_ref(),
                Ok(id),
                "{}",
                case.name
            );
        }
        fuzz::streamid(case.input.as_bytes());
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_dialect_names_the_same_stream() {
    let dialects = [
        "#!::r=live/KEY1,m=publish",
        "#!::m=publish,r=live/KEY1",
        "#!::s=live/KEY1",
        "publish:live/KEY1",
        "publish:live/KEY1:user:pass",
        "live/KEY1",
        "/live/KEY1?x=1",
    ];
    for streamid in dialects {
        let id = StreamId::parse(streamid).unwrap();
        assert_eq!(
            (id.mode, id.app.as_deref(), id.key.as_str()),
            (Mode::Publish, Some("live"), "KEY1"),
            "{streamid}"
        );
    }
    assert_eq!(StreamId::parse("KEY1").unwrap().key, "KEY1");
}

#[test]
fn reject_codes() {
    let code = |s: &str| StreamId::parse(s).unwrap_err().reject_code();
    assert_eq!(code(""), reject::UNAUTHORIZED);
    assert_eq!(code("#!::r=abc,m=request"), reject::BAD_MODE);
    assert_eq!(code("read:abc"), reject::BAD_MODE);
    assert_eq!(code("#!::r=abc,m=nonsense"), reject::BAD_MODE);
    assert_eq!(code("#!::r=abc,t=auth"), reject::UNACCEPTABLE);
    assert_eq!(code("#!::r=abc,junk"), reject::BAD_REQUEST);
    assert_eq!(code("a b"), reject::BAD_REQUEST);
    assert_eq!(code(&"k".repeat(513)), reject::BAD_REQUEST);
    assert_eq!(
        (reject::FORBIDDEN, reject::NOT_FOUND, reject::CONFLICT),
        (1403, 1404, 1409)
    );
}

#[test]
fn debug_and_errors_redact_secrets() {
    let id = StreamId::parse("publish:live/SuperSecretKey:alice:hunter2hunter2").unwrap();
    let debug = format!("{id:?}");
    assert!(!debug.contains("SuperSecretKey"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("alice") && debug.contains("live"), "{debug}");
    assert!(debug.contains("<redacted, 14 bytes>"), "{debug}");
    // Error messages never echo the key either.
    for bad in [
        "SuperSecretKey:x",
        "live/SuperSecretKey!",
        "#!::r=SuperSecretKey,m=request",
        "#!::r=SuperSecretKey,r=x",
    ] {
        let e = StreamId::parse(bad).unwrap_err();
        assert!(
            !format!("{e} {e:?}").contains("SuperSecretKey"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn error_messages_say_what_to_do() {
    let e = StreamId::parse("#!::r=live/abc,m=request").unwrap_err();
    assert!(e.to_string().contains("m=publish"), "{e}");
    let e = StreamId::parse("").unwrap_err();
    assert!(e.to_string().contains("streamid="), "{e}");
}

#[test]
fn canonical_forms() {
    let id = StreamId::parse("#!::u=bob,r=live/abc").unwrap();
    assert_eq!(id.to_canonical(), "#!::r=live/abc,m=publish,u=bob");
    let id = StreamId::parse("publish:abc:bob:pw").unwrap();
    assert_eq!(id.to_canonical(), "publish:abc:bob:pw");
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::streamid(&data);
    }

    #[test]
    fn structured_never_panics(parts in proptest::collection::vec(
        prop_oneof![
            Just("#!::".to_owned()), Just("r=".to_owned()), Just("s=".to_owned()), Just("m=".to_owned()),
            Just("u=".to_owned()), Just(",".to_owned()), Just(":".to_owned()), Just("/".to_owned()),
            Just("publish".to_owned()), Just("?".to_owned()), Just("\0".to_owned()), "[a-z0-9~._-]{0,6}",
        ],
        0..12,
    )) {
        fuzz::streamid(parts.concat().as_bytes());
    }

    #[test]
    fn valid_keys_round_trip(
        app in proptest::option::of("[a-z]{1,5}(/[a-z0-9]{1,4})?"),
        key in "[A-Za-z0-9._~-]{1,40}",
        user in proptest::option::of("[a-z]{1,8}"),
        password in proptest::option::of("[!-+.-9;<>-~]{1,12}"),
    ) {
        let id = StreamId { mode: Mode::Publish, app, key, user, password };
        prop_assert_eq!(StreamId::parse(&id.to_canonical()), Ok(id));
    }
}

#[test]
fn error_variants_are_distinct_codes() {
    // Every variant documents a code; keep the mapping total.
    let all = [
        StreamIdError::TooLong { len: 600 },
        StreamIdError::MissingKey,
        StreamIdError::InvalidKey { ch: '!' },
        StreamIdError::InvalidApp,
        StreamIdError::InvalidCredentials,
        StreamIdError::MalformedPair { index: 0 },
        StreamIdError::DuplicateKey { key: "r".into() },
        StreamIdError::WrongMode(Mode::Request),
        StreamIdError::UnknownMode("x".into()),
        StreamIdError::UnsupportedType("file".into()),
        StreamIdError::UnsupportedSyntax,
        StreamIdError::MalformedMediamtx { fields: 7 },
    ];
    for e in all {
        assert!((1400..1600).contains(&e.reject_code()), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

/// Writes the table's streamids as fuzz seeds under `fuzz/seeds/srt_streamid/`. Run by hand:
/// `cargo test -p srt -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files outside the crate"]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/srt_streamid");
    std::fs::create_dir_all(&dir).unwrap();
    for case in _cases() {
        let name: String = case
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(dir.join(format!("{name}.txt")), &case.input).unwrap();
    }
}
