//! API access authorisations: credentials of services and machines (the
//! article's time-clocking terminal), which belong to no person. They carry
//! the same limits as device passwords and are checked by the same
//! [`may_use`](super::limits::may_use), but a person's state never reaches
//! them: disabling or deleting the administrator who made one changes
//! nothing, and only their own `enabled` flag and limits decide.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{CredentialLimits, DeviceName, LastUse, Timestamp};
use crate::credential::DeviceId;

/// An API access authorisation's id: digits, in the same format as a
/// device id (the token's prefix, not the id, says which kind it is).
pub type AccessId = DeviceId;

/// Longest description kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// One API access authorisation. The token itself is never part of it.
#[derive(Clone, Debug)]
pub struct AccessAuthorisation {
    pub id: AccessId,
    pub name: DeviceName,
    pub description: String,
    /// The administrator who made it, as they were named then (the account
    /// may since have been renamed or deleted), or `None` from the command line.
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    /// A disabled one is refused everywhere, and kept.
    pub enabled: bool,
    pub limits: CredentialLimits,
    pub token_issued_at: Timestamp,
    /// Until when the token before the last regeneration still works.
    pub previous_token_until: Option<Timestamp>,
    pub last_used: Option<LastUse>,
}

/// A description as given: line breaks and other control characters become
/// spaces, invisible format characters (bidirectional overrides among them,
/// which could disguise it in a list) are dropped, and it is bounded.
pub fn parse_description(raw: &str) -> Result<String, String> {
    let cleaned: String = raw
        .chars()
        .filter(|&c| c.general_category() != GeneralCategory::Format)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "The description may be at most {MAX_DESCRIPTION_CHARS} characters long."
        ));
    }
    Ok(cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cleaned_and_bounded() {
        assert_eq!(
            parse_description("  Terminal\nat the gate ").unwrap(),
            "Terminal at the gate"
        );
        assert_eq!(parse_description("").unwrap(), "");
        assert_eq!(parse_description("a\u{202e}b").unwrap(), "ab");
        assert!(parse_description(&"x".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(parse_description(&"x".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
    }
}
