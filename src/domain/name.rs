use std::fmt;

/// Longest device or display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// Parses a human-chosen label: trimmed, 1 to 100 characters, no control
/// characters and no bidirectional overrides (which can make one name look
/// like another in a list).
fn parse_label(raw: &str, what: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError(format!("The {what} is empty.")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError(format!(
            "The {what} is longer than {MAX_NAME_CHARS} characters."
        )));
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(NameError(format!(
            "The {what} contains a control character."
        )));
    }
    Ok(name.to_owned())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

macro_rules! label_type {
    ($name:ident, $what:literal) => {
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                parse_label(raw, $what).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

label_type!(DeviceName, "device name");
label_type!(DisplayName, "name");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for (raw, want) in [
            ("Accounting import script", "Accounting import script"),
            ("  padded  ", "padded"),
            ("Kalender – Büro 📅", "Kalender – Büro 📅"),
            ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ] {
            assert_eq!(DeviceName::parse(raw).unwrap().as_str(), want);
        }
        let longest = "é".repeat(MAX_NAME_CHARS);
        assert!(DeviceName::parse(&longest).is_ok());
    }

    #[test]
    fn rejects_bad_names() {
        let too_long = "x".repeat(MAX_NAME_CHARS + 1);
        for raw in [
            "",
            "   ",
            "tab\there",
            "new\nline",
            "nul\u{0}",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}x",
            "evil\u{202E}gnp.exe",
            too_long.as_str(),
        ] {
            assert!(DeviceName::parse(raw).is_err(), "accepted {raw:?}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            DisplayName::parse("").unwrap_err().to_string(),
            "The name is empty."
        );
        assert_eq!(
            DeviceName::parse("a\nb").unwrap_err().to_string(),
            "The device name contains a control character."
        );
    }
}
