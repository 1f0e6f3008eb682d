//! Web sessions: what the server remembers about a signed-in browser, and
//! when that stops being good enough to act on.

use std::net::IpAddr;
use std::time::Duration;

use super::{AccountId, Timestamp};
use crate::credential::CsrfSecret;

/// The handle that names a session on the Security tab; not a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub i64);

#[derive(Clone, Debug)]
pub struct WebSession {
    pub id: SessionId,
    pub account_id: AccountId,
    pub csrf: CsrfSecret,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// How long a session lives: `idle` without a request, `absolute` at most.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

impl SessionPolicy {
    pub fn is_live(&self, session: &WebSession, now: Timestamp) -> bool {
        now.millis() < session.last_seen_at.millis() + millis(self.idle)
            && now.millis() < session.created_at.millis() + millis(self.absolute)
    }

    /// Sessions last seen before the first, or started before the second, are dead.
    pub fn cutoffs(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        (
            Timestamp::from_millis(now.millis() - millis(self.idle)),
            Timestamp::from_millis(now.millis() - millis(self.absolute)),
        )
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// What the next page shows once: a message, and perhaps an encrypted
/// secret (a new password) only the session's own browser can decrypt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notice {
    pub flash: Option<String>,
    pub reveal: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: i64, seen: i64) -> WebSession {
        WebSession {
            id: SessionId(1),
            account_id: AccountId(1),
            csrf: CsrfSecret::generate(),
            created_at: Timestamp::from_millis(created),
            last_seen_at: Timestamp::from_millis(seen),
            ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn idle_and_absolute_limits() {
        let policy = SessionPolicy {
            idle: Duration::from_secs(10),
            absolute: Duration::from_secs(100),
        };
        let at = Timestamp::from_millis;
        assert!(policy.is_live(&session(0, 0), at(9_999)));
        assert!(!policy.is_live(&session(0, 0), at(10_000)));
        assert!(policy.is_live(&session(0, 95_000), at(99_999)));
        assert!(!policy.is_live(&session(0, 95_000), at(100_000)));
    }
}
