//! Secrets in configuration: shown as whether one is set, never as what it is.

use std::fmt;

/// Stands in for a secret in `Debug` output: says whether one is set, never what it is.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<none>"
        } else {
            "<redacted>"
        })
    }
}
