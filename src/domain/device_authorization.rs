//! App sign-in requests (the shape of RFC 8628's device authorization
//! grant) and the rule that says what a poll gets.

use std::net::IpAddr;
use std::time::Duration;

use super::{AccountId, DeviceName, Timestamp};
use crate::credential::{DeviceId, TokenDigest};

/// RFC 8628 §3.5: each poll that comes too soon adds this to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Where a request stands. Each step moves it on by one conditional
/// statement, so it never goes back and never moves twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationStatus {
    Pending,
    Approved,
    Denied,
    /// The app has collected its device password.
    Claimed,
}

impl AuthorizationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Claimed => "claimed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "claimed" => Self::Claimed,
            _ => return None,
        })
    }
}

/// One app's request to sign in, as stored.
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    pub id: i64,
    pub device_name: DeviceName,
    pub device_type: String,
    /// The digest of the token the approved device gets.
    pub token_digest: TokenDigest,
    pub requested_ip: Option<IpAddr>,
    pub requested_user_agent: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub interval: Duration,
    pub last_polled_at: Option<Timestamp>,
    pub status: AuthorizationStatus,
    pub account_id: Option<AccountId>,
    pub device_id: Option<DeviceId>,
}

impl DeviceAuthorization {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// Whether a person may still approve or deny it.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.status == AuthorizationStatus::Pending && !self.is_expired(now)
    }
}

/// What a poll gets, before the rate of polling is considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollDecision {
    /// Still waiting for the person: the poll is counted, or it came too soon.
    Pending,
    Denied,
    /// Expired, or collected already.
    Expired,
    /// Approved: the first poll to claim it gets the device password.
    Claim,
}

/// The one rule for a poll. A collected request is dead, whatever else; a
/// denial stays a denial; otherwise an expired request is expired, even
/// an approved one not collected in time.
pub fn poll_decision(request: &DeviceAuthorization, now: Timestamp) -> PollDecision {
    match request.status {
        AuthorizationStatus::Claimed => PollDecision::Expired,
        AuthorizationStatus::Denied => PollDecision::Denied,
        _ if request.is_expired(now) => PollDecision::Expired,
        AuthorizationStatus::Pending => PollDecision::Pending,
        AuthorizationStatus::Approved => PollDecision::Claim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(status: AuthorizationStatus) -> DeviceAuthorization {
        DeviceAuthorization {
            id: 1,
            device_name: DeviceName::parse("Phone").unwrap(),
            device_type: "ios".into(),
            token_digest: TokenDigest([0; 32]),
            requested_ip: None,
            requested_user_agent: None,
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(600_000),
            interval: Duration::from_secs(5),
            last_polled_at: None,
            status,
            account_id: None,
            device_id: None,
        }
    }

    #[test]
    fn each_status_answers_a_poll_its_own_way() {
        use AuthorizationStatus::*;
        let before = Timestamp::from_millis(599_999);
        let after = Timestamp::from_millis(600_000);
        for (status, in_time, late) in [
            (Pending, PollDecision::Pending, PollDecision::Expired),
            (Approved, PollDecision::Claim, PollDecision::Expired),
            (Denied, PollDecision::Denied, PollDecision::Denied),
            (Claimed, PollDecision::Expired, PollDecision::Expired),
        ] {
            assert_eq!(
                poll_decision(&request(status), before),
                in_time,
                "{status:?}"
            );
            assert_eq!(poll_decision(&request(status), after), late, "{status:?}");
            assert_eq!(AuthorizationStatus::parse(status.as_str()), Some(status));
        }
        assert!(request(Pending).is_open(before));
        assert!(!request(Pending).is_open(after));
        assert!(!request(Approved).is_open(before));
    }
}
