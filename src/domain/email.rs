use std::fmt;

/// An account's email address, normalised to lower case so that uniqueness
/// is case-insensitive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(&'static str);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(EmailError("The email address is empty."));
        }
        if email.len() > MAX_LEN {
            return Err(EmailError(
                "The email address is longer than 254 characters.",
            ));
        }
        let (local, domain) = email
            .rsplit_once('@')
            .ok_or(EmailError("The email address has no '@'."))?;
        if local.is_empty() || local.len() > MAX_LOCAL_LEN {
            return Err(EmailError(
                "The part before '@' must have 1 to 64 characters.",
            ));
        }
        if !local.chars().all(is_local_char)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(EmailError(
                "The part before '@' contains a character that is not allowed.",
            ));
        }
        if !is_domain(domain) {
            return Err(EmailError("The part after '@' is not a valid domain name."));
        }
        Ok(Self(email.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before '@', a fallback display name.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c)
}

fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        for (raw, want) in [
            ("test@5point.de", "test@5point.de"),
            ("  Test@5Point.DE ", "test@5point.de"),
            (
                "first.last+tag@example.co.uk",
                "first.last+tag@example.co.uk",
            ),
            ("admin@localhost", "admin@localhost"),
            ("o'brien@example.org", "o'brien@example.org"),
        ] {
            assert_eq!(Email::parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let long_local = format!("{}@example.org", "a".repeat(65));
        let long_total = format!("a@{}.org", "b.".repeat(130));
        for raw in [
            "",
            "   ",
            "plainaddress",
            "@example.org",
            "user@",
            "user@@example.org",
            "us er@example.org",
            "user@exa mple.org",
            ".user@example.org",
            "user.@example.org",
            "us..er@example.org",
            "user@-example.org",
            "user@example..org",
            "user@example.org.",
            "user\u{0}@example.org",
            "user@exämple.org",
            "<user>@example.org",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(Email::parse(raw).is_err(), "accepted {raw:?}");
        }
    }

    #[test]
    fn local_part() {
        assert_eq!(Email::parse("jo@x.org").unwrap().local_part(), "jo");
    }
}
