use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest device or display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// Parses a human-chosen label: trimmed, 1 to 100 characters, at least one
/// of them visible, and nothing that can make one name look like another in
/// a list or break a line:
///
/// - no control characters, line or paragraph separators (U+2028, U+2029)
///   or bidirectional controls, anywhere;
/// - no invisible format characters (Unicode category Cf: zero-width space,
///   word joiner, byte order mark, soft hyphen, invisible operators, …),
///   except the few that visible text needs: the zero-width joiner and
///   non-joiner between two visible characters (emoji sequences such as
///   👩‍💻, Persian and Indic spelling), the tag characters of a subdivision
///   flag such as Scotland's (after U+1F3F4, ending in U+E007F), and the
///   Arabic signs that are drawn (U+0600–U+0605 and the like);
/// - and a name made only of white space, format characters and other
///   default-ignorable characters (variation selectors, Hangul fillers) is
///   refused as having nothing visible.
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
    if name.chars().any(is_control) {
        return Err(NameError(format!(
            "The {what} contains a control character."
        )));
    }
    if name.chars().all(is_invisible) {
        return Err(NameError(format!("The {what} has no visible character.")));
    }
    if has_stray_format_character(name) {
        return Err(NameError(format!(
            "The {what} contains an invisible formatting character."
        )));
    }
    Ok(name.to_owned())
}

/// Refused anywhere in a name.
fn is_control(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// Nothing a reader would see: white space, format characters and the rest
/// of Unicode's default-ignorable code points.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || is_format(c) || is_default_ignorable(c)
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt):
/// characters that render as nothing. Most are format characters; these
/// are the ones that are not.
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{034F}'                     // combining grapheme joiner
        | '\u{115F}'..='\u{1160}'       // Hangul choseong and jungseong fillers
        | '\u{17B4}'..='\u{17B5}'       // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'       // Mongolian variation selectors
        | '\u{2065}'
        | '\u{3164}'                     // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'       // variation selectors
        | '\u{FFA0}'                     // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFF8}'
        | '\u{E0000}'..='\u{E0FFF}'     // tags and variation selectors 17–256
    )
}

/// Signs that are format characters yet drawn: they stand before digits.
fn is_prepended_mark(c: char) -> bool {
    matches!(c,
        '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
        | '\u{08E2}' | '\u{110BD}' | '\u{110CD}'
    )
}

const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..=CANCEL_TAG).contains(&c)
}

/// Whether a format character appears other than where visible text needs
/// it (see [`parse_label`]).
fn has_stray_format_character(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let visible = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|&c| !c.is_whitespace() && !is_format(c))
    };
    let mut in_flag = false;
    for (i, &c) in chars.iter().enumerate() {
        if is_tag(c) {
            let starts = !in_flag && i > 0 && chars[i - 1] == BLACK_FLAG;
            if !(in_flag || starts) {
                return true;
            }
            in_flag = c != CANCEL_TAG;
            continue;
        }
        if in_flag {
            // A flag's tags end with CANCEL TAG.
            return true;
        }
        if !is_format(c) || is_prepended_mark(c) {
            continue;
        }
        let joiner = matches!(c, '\u{200C}' | '\u{200D}');
        if !(joiner && visible(i.checked_sub(1)) && visible(Some(i + 1))) {
            return true;
        }
    }
    in_flag
}

macro_rules! label_type {
    ($name:ident, $what:literal) => {
        /// Shared, not copied, when a record is cloned (each answer about
        /// a cached credential clones it).
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                parse_label(raw, $what).map(|name| Self(name.into()))
            }

            /// A name as the store holds it: checked when it was written,
            /// perhaps under older rules, so not checked again (a rule made
            /// stricter must not make existing records unreadable).
            pub fn from_stored(name: String) -> Self {
                Self(name.into())
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
            // Emoji ZWJ sequences, with skin tones and variation selectors.
            ("Laptop 👩🏽\u{200D}💻", "Laptop 👩🏽\u{200D}💻"),
            ("❤\u{FE0F}\u{200D}🔥", "❤\u{FE0F}\u{200D}🔥"),
            ("👨\u{200D}👩\u{200D}👧", "👨\u{200D}👩\u{200D}👧"),
            // A subdivision flag: tags after the black flag, ended by CANCEL TAG.
            (SCOTLAND, SCOTLAND),
            ("Phone 🏴\u{200D}☠\u{FE0F}", "Phone 🏴\u{200D}☠\u{FE0F}"),
            // Persian spells with the zero-width non-joiner.
            ("گوشی\u{200C}ها", "گوشی\u{200C}ها"),
            // A drawn Arabic sign that is a format character.
            ("\u{0600}123", "\u{0600}123"),
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
            "alm\u{061C}x",
            too_long.as_str(),
            // Line and paragraph separators break lines like a newline.
            "\u{2028}",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert!(DeviceName::parse(raw).is_err(), "accepted {raw:?}");
        }
    }

    const SCOTLAND: &str = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";

    #[test]
    fn rejects_invisible_names() {
        for raw in [
            "\u{200B}",
            "\u{200D}",
            "\u{200C}\u{200D}",
            "\u{FEFF}",
            "\u{2060}",
            "\u{00AD}",
            " \u{200B} \u{200B} ",
            "\u{E0067}\u{E007F}",
            // Not format characters, yet drawn as nothing.
            "\u{3164}",
            "\u{FE0F}",
            "\u{115F}\u{1160}",
        ] {
            for parsed in [
                DeviceName::parse(raw).map(|n| n.to_string()),
                DisplayName::parse(raw).map(|n| n.to_string()),
            ] {
                assert!(parsed.is_err(), "accepted {raw:?}");
            }
        }
        assert_eq!(
            DeviceName::parse("\u{200B}").unwrap_err().to_string(),
            "The device name has no visible character."
        );
    }

    #[test]
    fn rejects_invisible_characters_in_visible_names() {
        for raw in [
            // Invisible characters that only make one name look like another.
            "admin\u{200B}",
            "ad\u{200B}min",
            "\u{FEFF}phone",
            "word\u{2060}joiner",
            "soft\u{00AD}hyphen",
            "x\u{2062}y",
            "mongolian\u{180E}x",
            // Joiners only between two visible characters.
            "\u{200D}phone",
            "phone\u{200D}",
            "a \u{200D} b",
            "a\u{200D}\u{200D}b",
            "a\u{200C}\u{200B}b",
            // Tags only as a flag: after U+1F3F4 and ending in CANCEL TAG.
            "phone\u{E0061}",
            "🏴\u{E0067}\u{E0062}",
            "🏴\u{E0067}\u{E0062}x",
            "x\u{E0067}\u{E007F}",
            "🏴\u{E0067}\u{E007F}\u{E0067}",
            "\u{E0001}en phone",
            // Interlinear annotation, a structure, not a label.
            "a\u{FFF9}b\u{FFFA}c\u{FFFB}",
        ] {
            assert!(DeviceName::parse(raw).is_err(), "accepted {raw:?}");
            assert!(DisplayName::parse(raw).is_err(), "accepted {raw:?}");
        }
        assert_eq!(
            DisplayName::parse("a\u{200B}b").unwrap_err().to_string(),
            "The name contains an invisible formatting character."
        );
    }

    #[test]
    fn stored_names_are_taken_as_they_are() {
        assert_eq!(
            DeviceName::from_stored("old\u{200B}".into()).as_str(),
            "old\u{200B}"
        );
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
