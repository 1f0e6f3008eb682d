//! What a new main password must be (NIST SP 800-63B): long enough, not
//! absurdly long, not a common password, not the account's own email. No
//! composition rules and no expiry. Every way of setting one (the web, the
//! CLI, an administrator's reset, a new account) goes through
//! [`PasswordPolicy::check`]; signing in does not, so passwords set under
//! older rules keep working.

use std::collections::HashSet;
use std::sync::LazyLock;

use zeroize::Zeroizing;

use super::Email;
use crate::credential::{MainPassword, Secret, MAX_PASSWORD_BYTES};

/// Lowest and highest `--min-password-length` an operator may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_MIN_PASSWORD_CHARS: usize = 256;

/// Generated passwords are at least this long (20 letters and digits are
/// about 119 bits).
const GENERATED_CHARS: usize = 20;

/// An email local part shorter than this is too likely to occur by chance
/// ("bob" in "bobsleigh") to refuse passwords for it.
const MIN_EMAIL_PART_CHARS: usize = 4;

/// The top million of Mark Burnett's list, only its entries of
/// [`MIN_PASSWORD_CHARS`] or more (no shorter one can pass the length rule),
/// lowercased; `data/README.md` says how it was made.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty())
        .collect()
});

/// Which rule a new main password breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("The password must have at least {min} characters.")]
    TooShort { min: usize },
    #[error("The password must not be longer than {MAX_PASSWORD_BYTES} bytes.")]
    TooLong,
    #[error("This password is on a list of commonly used passwords. Choose another one.")]
    Common,
    #[error("The password must not contain the part of the email address before '@'.")]
    ContainsEmail,
}

impl PasswordRejection {
    /// The stable error code the API, the web and the CLI report it with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong => "password_too_long",
            Self::Common => "password_too_common",
            Self::ContainsEmail => "password_contains_email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the minimum password length must be between {MIN_PASSWORD_CHARS} and {MAX_MIN_PASSWORD_CHARS} characters, not {0}")]
pub struct MinLengthOutOfRange(pub usize);

/// The rules for new main passwords, with the operator's minimum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: MIN_PASSWORD_CHARS,
        }
    }
}

impl PasswordPolicy {
    pub fn with_min_chars(min_chars: usize) -> Result<Self, MinLengthOutOfRange> {
        if (MIN_PASSWORD_CHARS..=MAX_MIN_PASSWORD_CHARS).contains(&min_chars) {
            Ok(Self { min_chars })
        } else {
            Err(MinLengthOutOfRange(min_chars))
        }
    }

    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// The rules in one sentence, for the forms that set a password.
    pub fn describe(&self) -> String {
        format!(
            "At least {} characters; spaces and any other characters are allowed. Not a commonly used password, and not containing the part of the email address before '@'.",
            self.min_chars
        )
    }

    /// A password someone wants to set for the account with `email`.
    ///
    /// Length is counted in Unicode scalar values (what `char` is), as typed:
    /// no normalisation, since hashes are made of the password as typed and
    /// old ones must keep verifying. Spaces and any other characters count.
    pub fn check(&self, raw: Secret, email: &Email) -> Result<MainPassword, PasswordRejection> {
        let password = raw.expose();
        // First, so nothing below walks megabytes.
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordRejection::TooLong);
        }
        if password.chars().count() < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min: self.min_chars,
            });
        }
        let lowered = Zeroizing::new(password.to_lowercase());
        if COMMON.contains(lowered.as_str()) {
            return Err(PasswordRejection::Common);
        }
        // Already lowercase: `Email::parse` lowercases.
        let local = email.local_part();
        if local.chars().count() >= MIN_EMAIL_PART_CHARS && lowered.contains(local) {
            return Err(PasswordRejection::ContainsEmail);
        }
        MainPassword::candidate(raw).map_err(|_| PasswordRejection::TooLong)
    }

    /// A random password for the account with `email` that passes
    /// [`check`](Self::check): as long as the minimum, at least 20 characters.
    pub fn generate(&self, email: &Email) -> MainPassword {
        let chars = self.min_chars.max(GENERATED_CHARS);
        loop {
            let password = MainPassword::generate(chars);
            // A random string that happens to be listed or to contain the
            // email (about one in a million for a 4-letter local part) is
            // drawn again rather than handed out.
            if let Ok(password) = self.check(password.expose().into(), email) {
                return password;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).expect("valid email")
    }

    fn check(policy: &PasswordPolicy, password: &str, on: &str) -> Result<(), PasswordRejection> {
        policy.check(password.into(), &email(on)).map(drop)
    }

    const ANN: &str = "ann@example.org";

    #[test]
    fn at_least_twelve_characters_by_default() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            check(&policy, "elevenchars", ANN),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        assert_eq!(check(&policy, "twelve chars", ANN), Ok(()));
        assert_eq!(
            PasswordRejection::TooShort { min: 12 }.to_string(),
            "The password must have at least 12 characters."
        );
    }

    #[test]
    fn the_minimum_is_configurable_upwards_only() {
        let policy = PasswordPolicy::with_min_chars(16).unwrap();
        assert_eq!(
            check(&policy, "fifteen letters", ANN),
            Err(PasswordRejection::TooShort { min: 16 })
        );
        assert_eq!(check(&policy, "sixteen letters!", ANN), Ok(()));
        assert_eq!(
            PasswordPolicy::with_min_chars(11),
            Err(MinLengthOutOfRange(11))
        );
        assert_eq!(
            PasswordPolicy::with_min_chars(257),
            Err(MinLengthOutOfRange(257))
        );
        assert!(PasswordPolicy::with_min_chars(12).is_ok());
        assert!(PasswordPolicy::with_min_chars(256).is_ok());
    }

    #[test]
    fn the_description_names_the_minimum() {
        let policy = PasswordPolicy::with_min_chars(14).unwrap();
        assert!(policy.describe().starts_with("At least 14 characters;"));
    }

    #[test]
    fn spaces_and_any_characters_are_allowed() {
        let policy = PasswordPolicy::default();
        assert_eq!(check(&policy, "            ", ANN), Ok(()));
        assert_eq!(check(&policy, " lead and trail ", ANN), Ok(()));
        assert_eq!(
            check(&policy, "\u{1F511}\u{1F512} \t\u{7}<>&\"'\\/", ANN),
            Ok(())
        );
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        let policy = PasswordPolicy::default();
        // 11 characters, 22 bytes: too short.
        assert_eq!(
            check(&policy, &"é".repeat(11), ANN),
            Err(PasswordRejection::TooShort { min: 12 })
        );
        assert_eq!(check(&policy, &"é".repeat(12), ANN), Ok(()));
        // 12 four-byte characters.
        assert_eq!(check(&policy, &"\u{1F600}".repeat(12), ANN), Ok(()));
        // "e" and a combining accent are two scalar values: counted as two.
        assert_eq!(check(&policy, &"e\u{301}".repeat(6), ANN), Ok(()));
    }

    #[test]
    fn at_most_1024_bytes() {
        let policy = PasswordPolicy::default();
        assert_eq!(check(&policy, &"x".repeat(1024), ANN), Ok(()));
        assert_eq!(
            check(&policy, &"x".repeat(1025), ANN),
            Err(PasswordRejection::TooLong)
        );
        // Bytes, not characters: 342 three-byte characters are 1,026 bytes.
        assert_eq!(
            check(&policy, &"€".repeat(342), ANN),
            Err(PasswordRejection::TooLong)
        );
        assert_eq!(check(&policy, &"€".repeat(341), ANN), Ok(()));
        // Even a huge minimum does not lift the cap.
        let policy = PasswordPolicy::with_min_chars(256).unwrap();
        assert_eq!(
            check(&policy, &"x".repeat(1025), ANN),
            Err(PasswordRejection::TooLong)
        );
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        let policy = PasswordPolicy::default();
        for common in [
            "123456789012",
            "passwordpassword",
            "PasswordPassword",
            "QWERTYUIOPASDFG",
            "1qaz2wsx3edc",
        ] {
            assert_eq!(
                check(&policy, common, ANN),
                Err(PasswordRejection::Common),
                "{common}"
            );
        }
        assert_eq!(check(&policy, "passwordpassword!", ANN), Ok(()));
        // Every listed entry could pass the length rule, so none is dead weight.
        assert!(COMMON.len() > 40_000);
        assert!(COMMON
            .iter()
            .all(|pw| pw.chars().count() >= MIN_PASSWORD_CHARS && pw.to_lowercase() == *pw));
    }

    #[test]
    fn the_email_local_part_is_refused_whatever_its_case() {
        let policy = PasswordPolicy::default();
        let on = "Alice.Smith@example.org";
        assert_eq!(
            check(&policy, "my name is alice.smith", on),
            Err(PasswordRejection::ContainsEmail)
        );
        assert_eq!(
            check(&policy, "ALICE.SMITH is my name", on),
            Err(PasswordRejection::ContainsEmail)
        );
        // Only the local part, as a whole.
        assert_eq!(check(&policy, "alice in example.org land", on), Ok(()));
        assert_eq!(
            check(&policy, "the dave is in the details", "dave@example.org"),
            Err(PasswordRejection::ContainsEmail)
        );
    }

    #[test]
    fn a_local_part_under_four_characters_is_not_applied() {
        let policy = PasswordPolicy::default();
        assert_eq!(check(&policy, "bob the builder", "bob@example.org"), Ok(()));
        assert_eq!(
            check(&policy, "bob1 the builder", "bob1@example.org"),
            Err(PasswordRejection::ContainsEmail)
        );
    }

    #[test]
    fn each_rule_has_its_own_code() {
        let codes = [
            PasswordRejection::TooShort { min: 12 }.code(),
            PasswordRejection::TooLong.code(),
            PasswordRejection::Common.code(),
            PasswordRejection::ContainsEmail.code(),
        ];
        assert_eq!(
            codes,
            [
                "password_too_short",
                "password_too_long",
                "password_too_common",
                "password_contains_email"
            ]
        );
    }

    #[test]
    fn generated_passwords_pass() {
        for min in [12, 20, 21, 256] {
            let policy = PasswordPolicy::with_min_chars(min).unwrap();
            let generated = policy.generate(&email(ANN));
            assert_eq!(generated.expose().chars().count(), min.max(20));
            assert_eq!(check(&policy, generated.expose(), ANN), Ok(()));
        }
    }
}
