//! [`Owner`]: whose memories these are.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most bytes an [`Owner`] may have.
pub const MAX_OWNER_BYTES: usize = 255;

/// The owner of memories: the `sub` claim of a verified OAuth access token.
///
/// A value that exists is valid: non-empty, at most [`MAX_OWNER_BYTES`]
/// bytes, no control characters. Two owners are the same only if their
/// subjects are byte-for-byte equal.
///
/// `Debug` does not print the subject (it can be an e-mail address); use
/// [`Owner::as_str`] where it is really needed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner(String);

impl Owner {
    /// Parses a token subject.
    ///
    /// ```
    /// use mcp_api::store::Owner;
    ///
    /// let owner = Owner::new("auth0|5f7c8ec7c33c6c004bbafe82")?;
    /// assert_eq!(owner.as_str(), "auth0|5f7c8ec7c33c6c004bbafe82");
    /// assert!(Owner::new("").is_err());
    /// assert!(Owner::new("alice\nbob").is_err());
    /// # Ok::<(), mcp_api::store::InvalidOwner>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidOwner`] if the subject is empty, longer than
    /// [`MAX_OWNER_BYTES`] bytes or contains a control character.
    pub fn new(subject: impl Into<String>) -> Result<Self, InvalidOwner> {
        let subject = subject.into();
        if subject.is_empty() {
            return Err(InvalidOwner(OwnerRule::Empty));
        }
        if subject.len() > MAX_OWNER_BYTES {
            return Err(InvalidOwner(OwnerRule::TooLong));
        }
        if subject.chars().any(char::is_control) {
            return Err(InvalidOwner(OwnerRule::ControlCharacter));
        }
        Ok(Self(subject))
    }

    /// The subject.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Owner(..)")
    }
}

impl TryFrom<String> for Owner {
    type Error = InvalidOwner;

    fn try_from(subject: String) -> Result<Self, Self::Error> {
        Self::new(subject)
    }
}

impl From<Owner> for String {
    fn from(owner: Owner) -> Self {
        owner.0
    }
}

/// A token subject that cannot be an [`Owner`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid owner: {0}")]
pub struct InvalidOwner(OwnerRule);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerRule {
    Empty,
    TooLong,
    ControlCharacter,
}

impl fmt::Display for OwnerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the subject is empty",
            Self::TooLong => "the subject is longer than 255 bytes",
            Self::ControlCharacter => "the subject contains a control character",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_longest_allowed_subject() {
        let subject = "é".repeat(127) + "x";
        assert_eq!(subject.len(), MAX_OWNER_BYTES);
        assert!(Owner::new(subject).is_ok());
    }

    #[test]
    fn rejects_one_byte_too_many() {
        let error = Owner::new("x".repeat(MAX_OWNER_BYTES + 1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid owner: the subject is longer than 255 bytes"
        );
    }

    #[test]
    fn rejects_control_characters_anywhere() {
        for subject in ["a\0", "\u{7f}b", "a\tb", "a\u{85}b"] {
            assert!(Owner::new(subject).is_err(), "{subject:?}");
        }
    }

    #[test]
    fn debug_hides_the_subject() {
        let owner = Owner::new("alice@example.com").unwrap();
        assert_eq!(format!("{owner:?}"), "Owner(..)");
    }

    #[test]
    fn deserialising_validates() {
        let parsed: Result<Owner, _> = serde_json::from_str("\"\"");
        assert!(parsed.is_err());
        let owner: Owner = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(serde_json::to_string(&owner).unwrap(), "\"bob\"");
    }
}
