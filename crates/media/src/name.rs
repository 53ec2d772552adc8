use std::fmt;
use std::str::FromStr;

/// A public stream name: what appears in playback URLs, metrics labels and the API.
///
/// 1 to 64 characters from `[A-Za-z0-9_-]`, so a name is always safe in a URL path, a file name
/// and a Prometheus label, and can never traverse paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct StreamName(String);

/// Why a string is not a valid [`StreamName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamNameError {
    /// The name was empty.
    #[error("stream name is empty")]
    Empty,
    /// The name was longer than 64 characters.
    #[error("stream name is longer than 64 characters")]
    TooLong,
    /// The name held a character outside `[A-Za-z0-9_-]`.
    #[error("stream name {0:?} may only contain letters, digits, '-' and '_'")]
    BadChar(String),
}

impl StreamName {
    /// Longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(StreamNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(StreamNameError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(StreamNameError::BadChar(s.to_owned()));
        }
        Ok(StreamName(s.to_owned()))
    }
}

impl<'de> serde::Deserialize<'de> for StreamName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!("main".parse::<StreamName>().is_ok());
        assert!("a-b_C9".parse::<StreamName>().is_ok());
        assert_eq!("".parse::<StreamName>(), Err(StreamNameError::Empty));
        assert!(matches!(
            "../etc".parse::<StreamName>(),
            Err(StreamNameError::BadChar(_))
        ));
        assert!(matches!(
            "a b".parse::<StreamName>(),
            Err(StreamNameError::BadChar(_))
        ));
        assert_eq!(
            "x".repeat(65).parse::<StreamName>(),
            Err(StreamNameError::TooLong)
        );
    }
}
