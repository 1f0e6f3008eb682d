use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret as it arrived (a main password or token typed or sent, not yet
/// checked): `Debug` never shows it and its memory is wiped on drop, from
/// the moment a request is parsed.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(raw: String) -> Self {
        Self(Zeroizing::new(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text itself, for a type that takes over guarding it.
    pub fn into_inner(self) -> Zeroizing<String> {
        self.0
    }
}

impl From<String> for Secret {
    fn from(raw: String) -> Self {
        Self::new(raw)
    }
}

impl From<&str> for Secret {
    fn from(raw: &str) -> Self {
        Self::new(raw.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::from("hunter2-correct-horse");
        let shown = format!("{secret:?} {:?}", Some(secret.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(secret.expose(), "hunter2-correct-horse");
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let secret: Secret = serde_json::from_str("\"s3cret\"").expect("a JSON string");
        assert_eq!(secret.expose(), "s3cret");
    }
}
