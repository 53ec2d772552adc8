//! Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
//! code.

use crate::streamid::{StreamId, MAX_STREAMID_LEN};

/// Parses `data` (lossily decoded as UTF-8) as a streamid. Never panics. When parsing
/// succeeds, the canonical form must parse back to the same value, and the `Debug` form
/// must not show the key.
pub fn streamid(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match StreamId::parse(&text) {
        Ok(id) => {
            let canonical = id.to_canonical();
            if canonical.len() <= MAX_STREAMID_LEN {
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
