use std::fmt;

use arrayvec::ArrayString;

use rand::rngs::OsRng;
use rand::Rng;

/// Digits in a newly generated id. Random, not sequential, so ids reveal
/// neither how many devices exist nor each other.
const GENERATED_DIGITS: usize = 12;
const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 20;

/// A device id: a string of digits, like the article's `"10001234"`. Kept
/// inline: every authenticated request parses one, and every answer about a
/// device copies it, neither of which should cost an allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(ArrayString<MAX_DIGITS>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("A device id is a string of 8 to 20 digits.")]
pub struct DeviceIdError;

impl DeviceId {
    pub fn generate() -> Self {
        let mut rng = OsRng;
        let mut id = ArrayString::new();
        id.push(char::from(b'1' + rng.gen_range(0..9u8)));
        while id.len() < GENERATED_DIGITS {
            id.push(char::from(b'0' + rng.gen_range(0..10u8)));
        }
        Self(id)
    }

    pub fn parse(raw: &str) -> Result<Self, DeviceIdError> {
        if (MIN_DIGITS..=MAX_DIGITS).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
        {
            ArrayString::from(raw).map(Self).map_err(|_| DeviceIdError)
        } else {
            Err(DeviceIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_digits() {
        for _ in 0..100 {
            let id = DeviceId::generate();
            assert_eq!(id.as_str().len(), GENERATED_DIGITS);
            assert!(!id.as_str().starts_with('0'));
            assert_eq!(DeviceId::parse(id.as_str()), Ok(id));
        }
    }

    #[test]
    fn ids_compare_and_sort_as_their_text() {
        let texts = [
            "10001234",
            "100012345",
            "10001235",
            "99999999",
            "12345678901234567890",
        ];
        for a in texts {
            for b in texts {
                let (x, y) = (DeviceId::parse(a).unwrap(), DeviceId::parse(b).unwrap());
                assert_eq!(x.cmp(&y), a.cmp(b), "{a} {b}");
                assert_eq!(x == y, a == b);
            }
            assert_eq!(DeviceId::parse(a).unwrap().as_str(), a);
            assert_eq!(DeviceId::parse(a).unwrap().to_string(), a);
        }
    }

    #[test]
    fn parses_only_digit_strings() {
        assert!(DeviceId::parse("10001234").is_ok());
        for bad in [
            "",
            "1234567",
            "1000123a",
            " 10001234",
            "１０００１２３４",
            &"1".repeat(21),
        ] {
            assert!(DeviceId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
