//! Who must have a second factor, and by when; and the clock the rules
//! read, which tests can move instead of sleeping.

use std::time::Duration;

use super::{rules, Account, Timestamp};

/// `--require-two-factor`: which accounts must have a second factor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Requirement {
    #[default]
    None,
    Admins,
    All,
}

impl Requirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::None => "none",
            Requirement::Admins => "admins",
            Requirement::All => "all",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Requirement::None, Requirement::Admins, Requirement::All]
            .into_iter()
            .find(|level| level.as_str() == raw)
    }

    pub fn covers(self, account: &Account) -> bool {
        match self {
            Requirement::None => false,
            Requirement::Admins => rules::is_administrator(account).is_ok(),
            Requirement::All => true,
        }
    }
}

/// The requirement in force: its level, how long accounts get, and since
/// when it has been in force (recorded in the database, so every node and
/// every restart counts from the same moment).
#[derive(Clone, Copy, Debug)]
pub struct TwoFactorPolicy {
    pub requirement: Requirement,
    pub grace: Duration,
    pub since: Timestamp,
}

/// Where an account stands with the requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not covered, or it has a second factor.
    Fine,
    /// Covered without a second factor; may still act until then.
    Grace { until: Timestamp },
    /// Covered without a second factor, and the grace period is over: it
    /// may do nothing but enrol.
    Overdue,
}

impl TwoFactorPolicy {
    /// The one rule every path asks: the grace period runs from when the
    /// setting took effect or the account was created, whichever is later.
    pub fn standing(&self, account: &Account, now: Timestamp) -> Standing {
        if account.two_factor_enabled || !self.requirement.covers(account) {
            return Standing::Fine;
        }
        let start = self.since.max(account.created_at);
        let until =
            Timestamp::from_millis(start.millis().saturating_add(self.grace.as_millis() as i64));
        if now < until {
            Standing::Grace { until }
        } else {
            Standing::Overdue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Email, Permission};

    fn account(admin: bool, enrolled: bool, created: i64) -> Account {
        Account {
            id: AccountId(1),
            email: Email::parse("ann@example.com").expect("valid"),
            name: "Ann".into(),
            permissions: if admin {
                [Permission::Admin].into_iter().collect()
            } else {
                Default::default()
            },
            enabled: true,
            two_factor_enabled: enrolled,
            created_at: Timestamp::from_millis(created),
        }
    }

    #[test]
    fn grace_runs_from_the_later_of_setting_and_creation() {
        let day = 86_400_000;
        let policy = TwoFactorPolicy {
            requirement: Requirement::Admins,
            grace: Duration::from_secs(7 * 86_400),
            since: Timestamp::from_millis(10 * day),
        };
        let at = Timestamp::from_millis;
        assert_eq!(
            policy.standing(&account(false, false, 0), at(100 * day)),
            Standing::Fine
        );
        assert_eq!(
            policy.standing(&account(true, true, 0), at(100 * day)),
            Standing::Fine
        );
        assert_eq!(
            policy.standing(&account(true, false, 0), at(12 * day)),
            Standing::Grace {
                until: at(17 * day)
            }
        );
        assert_eq!(
            policy.standing(&account(true, false, 0), at(17 * day)),
            Standing::Overdue
        );
        assert_eq!(
            policy.standing(&account(true, false, 20 * day), at(21 * day)),
            Standing::Grace {
                until: at(27 * day)
            }
        );
    }
}
