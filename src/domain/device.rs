use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{AccountId, CredentialLimits, DeviceName, Timestamp};
use crate::credential::DeviceId;

/// The type every device gets whose client sent no type, or one this server
/// does not know.
pub const UNKNOWN_DEVICE_TYPE: &str = "unknown";

/// Device types known out of the box; operators replace the list with
/// `--device-types`.
pub const DEFAULT_DEVICE_TYPES: &[&str] = &[
    "android", "ios", "macos", "windows", "linux", "web", "script", "calendar", "contacts",
];

/// One device password. The token itself is never part of it.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub account_id: AccountId,
    pub name: DeviceName,
    pub device_type: std::sync::Arc<str>,
    pub created_at: Timestamp,
    pub last_used: Option<LastUse>,
    pub limits: CredentialLimits,
    /// When the current token was issued: created, or changed last.
    pub token_issued_at: Timestamp,
    /// Until when the token before the last "Change password" still works.
    pub previous_token_until: Option<Timestamp>,
}

/// How many distinct addresses "last used" remembers per credential.
pub const RECENT_ADDRESSES: usize = 5;

/// The last few distinct client addresses, newest first; fixed size, so
/// noting a use allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecentAddresses([Option<IpAddr>; RECENT_ADDRESSES]);

impl RecentAddresses {
    /// Puts `ip` first; returns whether that changed anything.
    pub fn note(&mut self, ip: IpAddr) -> bool {
        if self.0[0] == Some(ip) {
            return false;
        }
        let at = self
            .0
            .iter()
            .position(|known| *known == Some(ip))
            .unwrap_or(RECENT_ADDRESSES - 1);
        self.0.copy_within(0..at, 1);
        self.0[0] = Some(ip);
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.0.iter().flatten().copied()
    }

    /// Addresses as stored: comma-separated, newest first.
    pub fn from_stored(stored: Option<&str>) -> Self {
        let mut recent = Self::default();
        let parsed: Vec<IpAddr> = stored
            .unwrap_or_default()
            .split(',')
            .filter_map(|ip| ip.trim().parse().ok())
            .take(RECENT_ADDRESSES)
            .collect();
        for ip in parsed.into_iter().rev() {
            recent.note(ip);
        }
        recent
    }

    pub fn to_stored(&self) -> Option<String> {
        let joined = self
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(",");
        (!joined.is_empty()).then_some(joined)
    }
}

/// When, from where and by what a device password was last used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastUse {
    pub at: Timestamp,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<Arc<str>>,
    /// The last distinct addresses it was used from, newest first.
    pub recent: RecentAddresses,
}

/// Longest user agent kept, in characters; the rest is cut off.
pub const MAX_USER_AGENT_CHARS: usize = 256;

impl LastUse {
    /// Keeps a user agent only as printable text of bounded length: without
    /// control characters, line separators or invisible format characters
    /// (bidirectional overrides among them), which could disguise it where
    /// it is shown. Bytes that were not UTF-8 arrive as U+FFFD and stay.
    pub fn clean_user_agent(raw: &str) -> Option<String> {
        let cleaned: String = raw
            .chars()
            .filter(|&c| {
                !c.is_control()
                    && !matches!(c, '\u{2028}' | '\u{2029}')
                    && c.general_category() != GeneralCategory::Format
            })
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        let trimmed = cleaned.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

/// The configured set of device type ids.
#[derive(Clone, Debug)]
pub struct DeviceTypes(BTreeSet<String>);

impl DeviceTypes {
    pub fn new<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(
            types
                .into_iter()
                .map(|t| t.as_ref().trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// The type to store for what a client sent: a known type as itself,
    /// anything else as `unknown`.
    pub fn resolve(&self, requested: Option<&str>) -> String {
        let requested = requested.map(|t| t.trim().to_ascii_lowercase());
        match requested {
            Some(t) if self.0.contains(&t) => t,
            _ => UNKNOWN_DEVICE_TYPE.to_owned(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Default for DeviceTypes {
    fn default() -> Self {
        Self::new(DEFAULT_DEVICE_TYPES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_become_unknown() {
        let types = DeviceTypes::default();
        assert_eq!(types.resolve(Some("de.fivepoint.other")), "unknown");
        assert_eq!(types.resolve(None), "unknown");
        assert_eq!(types.resolve(Some("")), "unknown");
        assert_eq!(types.resolve(Some(" iOS ")), "ios");
        let custom = DeviceTypes::new(["de.fivepoint.other", " "]);
        assert_eq!(
            custom.resolve(Some("de.fivepoint.other")),
            "de.fivepoint.other"
        );
        assert_eq!(custom.resolve(Some("ios")), "unknown");
    }

    #[test]
    fn recent_addresses_keep_the_last_five_distinct() {
        let mut recent = RecentAddresses::default();
        for i in [1u8, 2, 1, 3, 4, 5, 6, 6] {
            recent.note(IpAddr::from([192, 0, 2, i]));
        }
        let shown: Vec<String> = recent.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(
            shown,
            [
                "192.0.2.6",
                "192.0.2.5",
                "192.0.2.4",
                "192.0.2.3",
                "192.0.2.1"
            ]
        );
        assert_eq!(
            RecentAddresses::from_stored(recent.to_stored().as_deref()),
            recent
        );
    }

    #[test]
    fn user_agents_are_cleaned() {
        assert_eq!(
            LastUse::clean_user_agent("curl/8.0\r\n"),
            Some("curl/8.0".into())
        );
        assert_eq!(LastUse::clean_user_agent(" \t "), None);
        // Text beyond ASCII stays; what is not UTF-8 was replaced on the way in.
        assert_eq!(
            LastUse::clean_user_agent("Kalender/2.0 (Büro; 日本語) \u{FFFD}"),
            Some("Kalender/2.0 (Büro; 日本語) \u{FFFD}".into())
        );
        assert_eq!(
            LastUse::clean_user_agent("evil\u{202E}gnp.exe\u{200B}\u{2028}x"),
            Some("evilgnp.exex".into())
        );
        let long = "a".repeat(1000);
        assert_eq!(
            LastUse::clean_user_agent(&long).unwrap().len(),
            MAX_USER_AGENT_CHARS
        );
    }
}
