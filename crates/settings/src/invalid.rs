//! The error of a section's `validate`.

/// A value that parses but is not acceptable. The message names the key (`rtmp.idle_timeout
/// must be above 0`) and says what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid(message.into())
    }
}

/// Fails with `KEY must be above 0` for the first zero duration among `durations`.
pub fn nonzero(durations: &[(&str, std::time::Duration)]) -> Result<(), Invalid> {
    match durations.iter().find(|(_, d)| d.is_zero()) {
        Some((key, _)) => Err(Invalid(format!("{key} must be above 0"))),
        None => Ok(()),
    }
}
