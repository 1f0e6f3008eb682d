//! Limits a credential carries (scope, expiry, idle expiry, networks) and
//! the one check every way a credential arrives goes through: [`may_use`].
//! Device passwords carry them today; API access authorisations are to
//! carry the same [`CredentialLimits`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::rules::Refusal;
use super::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// Longest overlap "Change password" may leave the old token alive.
pub const MAX_GRACE_SECONDS: u32 = 86_400;
/// Most entries in each network list.
pub const MAX_NETWORKS: usize = 64;
/// Longest idle expiry, in days (ten years).
pub const MAX_IDLE_DAYS: u32 = 3650;

/// What a credential may do. Ordered: each scope includes the ones before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// GET, HEAD and OPTIONS only.
    Read,
    /// Everything a device password could always do.
    #[default]
    Full,
    /// Also administration; only an administrator's credentials hold it.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Full, Scope::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Full => "full",
            Scope::Admin => "admin",
        }
    }

    /// The scope a request with this HTTP method needs.
    pub fn needed_for(method: &[u8]) -> Scope {
        match method {
            b"GET" | b"HEAD" | b"OPTIONS" => Scope::Read,
            _ => Scope::Full,
        }
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown scope {0:?}; known scopes are: read, full, admin.")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "full" => Ok(Scope::Full),
            "admin" => Ok(Scope::Admin),
            _ => Err(UnknownScope(raw.to_owned())),
        }
    }
}

/// The limits one credential carries, as its owner set them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialLimits {
    pub scope: Scope,
    pub expires_at: Option<Timestamp>,
    /// Expires once unused for this many days.
    pub idle_expiry_days: Option<u32>,
    /// Empty: any address.
    pub allowed_networks: Vec<IpNet>,
    /// Refused even inside the allowed ones.
    pub denied_networks: Vec<IpNet>,
}

/// Limits as someone asked for them, not yet checked against the rules.
#[derive(Clone, Debug, Default)]
pub struct RequestedLimits {
    pub scope: Option<Scope>,
    pub expires_at: Option<Timestamp>,
    pub idle_expiry_days: Option<u32>,
    pub allowed_networks: Vec<IpNet>,
    pub denied_networks: Vec<IpNet>,
}

/// `--max-credential-lifetime-days`: how long after its token was issued a
/// credential may stay valid at most. `None`: no policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifetimePolicy {
    pub max_days: Option<u32>,
}

impl LifetimePolicy {
    fn latest_expiry(self, issued_at: Timestamp) -> Option<Timestamp> {
        self.max_days
            .map(|days| Timestamp::from_millis(issued_at.millis() + i64::from(days) * DAY_MS))
    }
}

/// Why limits someone asked for cannot be set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsRejection {
    #[error("The expiry must be in the future.")]
    ExpiryInPast,
    #[error("The server's policy allows credentials to live at most {0} days: choose an expiry within that.")]
    ExpiryBeyondPolicy(u32),
    #[error("This credential has expired: give it a new expiry when you change its password.")]
    ExpiryRequired,
    #[error("The idle expiry must be between 1 and {MAX_IDLE_DAYS} days.")]
    IdleDaysOutOfRange,
    #[error("At most {MAX_NETWORKS} networks may be listed.")]
    TooManyNetworks,
    #[error("Only an administrator's credentials may have the admin scope.")]
    AdminScopeNotAllowed,
}

impl LimitsRejection {
    pub fn code(&self) -> &'static str {
        match self {
            LimitsRejection::ExpiryInPast => "invalid_expiry",
            LimitsRejection::ExpiryBeyondPolicy(_) => "credential_lifetime_exceeded",
            LimitsRejection::ExpiryRequired => "expiry_required",
            LimitsRejection::IdleDaysOutOfRange => "invalid_idle_expiry",
            LimitsRejection::TooManyNetworks => "too_many_networks",
            LimitsRejection::AdminScopeNotAllowed => "scope_not_allowed",
        }
    }
}

/// The limits a new credential gets from what was asked for. Without an
/// expiry under a lifetime policy, it expires as late as the policy allows.
pub fn limits_for_new(
    requested: RequestedLimits,
    holder_is_admin: bool,
    now: Timestamp,
    policy: LifetimePolicy,
) -> Result<CredentialLimits, LimitsRejection> {
    let scope = requested.scope.unwrap_or_default();
    if scope == Scope::Admin && !holder_is_admin {
        return Err(LimitsRejection::AdminScopeNotAllowed);
    }
    if requested
        .idle_expiry_days
        .is_some_and(|d| d == 0 || d > MAX_IDLE_DAYS)
    {
        return Err(LimitsRejection::IdleDaysOutOfRange);
    }
    if requested.allowed_networks.len() > MAX_NETWORKS
        || requested.denied_networks.len() > MAX_NETWORKS
    {
        return Err(LimitsRejection::TooManyNetworks);
    }
    Ok(CredentialLimits {
        scope,
        expires_at: expiry_for(requested.expires_at, None, now, policy)?,
        idle_expiry_days: requested.idle_expiry_days,
        allowed_networks: normalise(requested.allowed_networks),
        denied_networks: normalise(requested.denied_networks),
    })
}

/// The expiry a token issued `now` gets: the one asked for, else the one it
/// had while that is still ahead, else (under a policy) the latest the
/// policy allows. A credential that expired needs a new one asked for.
pub fn expiry_for(
    requested: Option<Timestamp>,
    previous: Option<Timestamp>,
    now: Timestamp,
    policy: LifetimePolicy,
) -> Result<Option<Timestamp>, LimitsRejection> {
    let latest = policy.latest_expiry(now);
    match (requested, previous) {
        (Some(at), _) if at <= now => Err(LimitsRejection::ExpiryInPast),
        (Some(at), _) => match (latest, policy.max_days) {
            (Some(latest), Some(days)) if at > latest => {
                Err(LimitsRejection::ExpiryBeyondPolicy(days))
            }
            _ => Ok(Some(at)),
        },
        (None, Some(at)) if at <= now => Err(LimitsRejection::ExpiryRequired),
        (None, Some(at)) => Ok(Some(latest.map_or(at, |latest| at.min(latest)))),
        (None, None) => Ok(latest),
    }
}

fn normalise(mut networks: Vec<IpNet>) -> Vec<IpNet> {
    for net in &mut networks {
        *net = net.trunc();
    }
    networks.sort_unstable();
    networks.dedup();
    networks
}

/// What the check needs to know about a credential besides its limits.
#[derive(Clone, Copy, Debug)]
pub struct UseContext {
    /// When its current token was issued (created or changed).
    pub issued_at: Timestamp,
    /// When it was last used, or `None` if never.
    pub last_used_at: Option<Timestamp>,
    /// Whether its holder is an administrator now.
    pub holder_is_admin: bool,
}

/// The scope a credential acts with: `admin` only while its holder still is one.
pub fn effective_scope(limits: &CredentialLimits, holder_is_admin: bool) -> Scope {
    match limits.scope {
        Scope::Admin if !holder_is_admin => Scope::Full,
        scope => scope,
    }
}

/// The one check of a credential's limits, for every route and every way a
/// credential arrives. It allocates nothing: a few comparisons, and one
/// walk over each network list.
pub fn may_use(
    limits: &CredentialLimits,
    context: &UseContext,
    need: Scope,
    client_ip: Option<IpAddr>,
    now: Timestamp,
    policy: LifetimePolicy,
) -> Result<(), Refusal> {
    if limits.expires_at.is_some_and(|at| now >= at) {
        return Err(Refusal::CredentialExpired);
    }
    if let Some(days) = limits.idle_expiry_days {
        let since = context.last_used_at.unwrap_or(context.issued_at);
        if now.millis() - since.millis() >= i64::from(days) * DAY_MS {
            return Err(Refusal::CredentialExpired);
        }
    }
    // Enforced at use too, so that lowering the policy reaches existing tokens.
    if let (Some(latest), Some(days)) = (policy.latest_expiry(context.issued_at), policy.max_days) {
        if limits.expires_at.is_none_or(|at| at > latest) || now >= latest {
            return Err(Refusal::LifetimeExceeded(days));
        }
    }
    if !limits.allowed_networks.is_empty() || !limits.denied_networks.is_empty() {
        let Some(ip) = client_ip.map(canonical) else {
            return Err(Refusal::AddressNotAllowed);
        };
        let allowed = limits.allowed_networks.is_empty()
            || limits.allowed_networks.iter().any(|n| n.contains(&ip));
        if !allowed || limits.denied_networks.iter().any(|n| n.contains(&ip)) {
            return Err(Refusal::AddressNotAllowed);
        }
    }
    if effective_scope(limits, context.holder_is_admin) < need {
        return Err(Refusal::InsufficientScope(need));
    }
    Ok(())
}

/// Whether an old token inside its overlap after "Change password" still works.
pub fn within_grace(until: Option<Timestamp>, now: Timestamp) -> bool {
    until.is_some_and(|until| now < until)
}

/// Whether the credential counts as expired now (for lists; the same tests
/// as [`may_use`] makes, without the request's own).
pub fn is_expired(
    limits: &CredentialLimits,
    context: &UseContext,
    now: Timestamp,
    policy: LifetimePolicy,
) -> bool {
    matches!(
        may_use(limits, context, Scope::Read, None, now, policy),
        Err(Refusal::CredentialExpired | Refusal::LifetimeExceeded(_))
    )
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses one allowed or denied network: a CIDR range or a single address.
pub fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{raw:?} is not an address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32")
        })
}

/// A stored network list: comma-separated, empty for none.
pub fn networks_from_stored(stored: Option<&str>) -> Vec<IpNet> {
    stored
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

pub fn networks_to_stored(networks: &[IpNet]) -> Option<String> {
    (!networks.is_empty()).then(|| {
        networks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_const(1_800_000_000_000);

    fn context() -> UseContext {
        UseContext {
            issued_at: NOW,
            last_used_at: None,
            holder_is_admin: false,
        }
    }

    fn at_days(days: i64) -> Timestamp {
        Timestamp::from_millis(NOW.millis() + days * DAY_MS)
    }

    fn check(
        limits: &CredentialLimits,
        need: Scope,
        ip: &str,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        may_use(
            limits,
            &context(),
            need,
            Some(ip.parse().unwrap()),
            now,
            LifetimePolicy::default(),
        )
    }

    #[test]
    fn read_scope_allows_only_safe_methods() {
        let read = CredentialLimits {
            scope: Scope::Read,
            ..Default::default()
        };
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert_eq!(
                check(&read, Scope::needed_for(m.as_bytes()), "192.0.2.1", NOW),
                Ok(())
            );
        }
        for m in ["POST", "PATCH", "DELETE", "PUT", "get", ""] {
            assert_eq!(
                check(&read, Scope::needed_for(m.as_bytes()), "192.0.2.1", NOW),
                Err(Refusal::InsufficientScope(Scope::Full))
            );
        }
        let admin = CredentialLimits {
            scope: Scope::Admin,
            ..Default::default()
        };
        // Admin scope of someone who is no administrator any more is full.
        assert_eq!(
            check(&admin, Scope::Admin, "192.0.2.1", NOW),
            Err(Refusal::InsufficientScope(Scope::Admin))
        );
        assert_eq!(check(&admin, Scope::Full, "192.0.2.1", NOW), Ok(()));
    }

    #[test]
    fn expiry_and_idle_expiry() {
        let limits = CredentialLimits {
            expires_at: Some(at_days(10)),
            idle_expiry_days: Some(3),
            ..Default::default()
        };
        assert_eq!(check(&limits, Scope::Read, "192.0.2.1", at_days(2)), Ok(()));
        assert_eq!(
            check(&limits, Scope::Read, "192.0.2.1", at_days(3)),
            Err(Refusal::CredentialExpired)
        );
        let used = UseContext {
            last_used_at: Some(at_days(8)),
            ..context()
        };
        let policy = LifetimePolicy::default();
        assert_eq!(
            may_use(&limits, &used, Scope::Read, None, at_days(9), policy),
            Ok(())
        );
        assert_eq!(
            may_use(&limits, &used, Scope::Read, None, at_days(10), policy),
            Err(Refusal::CredentialExpired)
        );
    }

    #[test]
    fn the_lifetime_policy_applies_at_use() {
        let policy = LifetimePolicy { max_days: Some(30) };
        let long = CredentialLimits {
            expires_at: Some(at_days(90)),
            ..Default::default()
        };
        let none = CredentialLimits::default();
        let fits = CredentialLimits {
            expires_at: Some(at_days(30)),
            ..Default::default()
        };
        let use_at =
            |l: &CredentialLimits, now| may_use(l, &context(), Scope::Read, None, now, policy);
        assert_eq!(use_at(&long, NOW), Err(Refusal::LifetimeExceeded(30)));
        assert_eq!(use_at(&none, NOW), Err(Refusal::LifetimeExceeded(30)));
        assert_eq!(use_at(&fits, at_days(29)), Ok(()));
        assert_eq!(use_at(&fits, at_days(30)), Err(Refusal::CredentialExpired));
    }

    #[test]
    fn networks_allow_and_deny() {
        let limits = CredentialLimits {
            allowed_networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            denied_networks: vec!["10.9.0.0/16".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(check(&limits, Scope::Read, "10.1.2.3", NOW), Ok(()));
        assert_eq!(check(&limits, Scope::Read, "::ffff:10.1.2.3", NOW), Ok(()));
        assert_eq!(check(&limits, Scope::Read, "2001:db8::5", NOW), Ok(()));
        for ip in ["10.9.1.1", "192.0.2.1", "2001:db9::1"] {
            assert_eq!(
                check(&limits, Scope::Read, ip, NOW),
                Err(Refusal::AddressNotAllowed),
                "{ip}"
            );
        }
        let policy = LifetimePolicy::default();
        assert_eq!(
            may_use(&limits, &context(), Scope::Read, None, NOW, policy),
            Err(Refusal::AddressNotAllowed)
        );
        let deny_only = CredentialLimits {
            denied_networks: vec!["192.0.2.0/24".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(check(&deny_only, Scope::Read, "198.51.100.1", NOW), Ok(()));
        assert_eq!(
            check(&deny_only, Scope::Read, "192.0.2.1", NOW),
            Err(Refusal::AddressNotAllowed)
        );
    }

    #[test]
    fn expiries_for_new_and_changed_tokens() {
        let none = LifetimePolicy::default();
        let policy = LifetimePolicy { max_days: Some(30) };
        assert_eq!(expiry_for(None, None, NOW, none), Ok(None));
        assert_eq!(expiry_for(None, None, NOW, policy), Ok(Some(at_days(30))));
        assert_eq!(
            expiry_for(Some(at_days(31)), None, NOW, policy),
            Err(LimitsRejection::ExpiryBeyondPolicy(30))
        );
        assert_eq!(
            expiry_for(Some(NOW), None, NOW, none),
            Err(LimitsRejection::ExpiryInPast)
        );
        assert_eq!(
            expiry_for(None, Some(at_days(-1)), NOW, none),
            Err(LimitsRejection::ExpiryRequired)
        );
        assert_eq!(
            expiry_for(None, Some(at_days(90)), NOW, policy),
            Ok(Some(at_days(30)))
        );
        assert_eq!(
            expiry_for(None, Some(at_days(5)), NOW, none),
            Ok(Some(at_days(5)))
        );
    }

    #[test]
    fn only_administrators_get_admin_scope() {
        let asked = RequestedLimits {
            scope: Some(Scope::Admin),
            ..Default::default()
        };
        let policy = LifetimePolicy::default();
        assert_eq!(
            limits_for_new(asked.clone(), false, NOW, policy),
            Err(LimitsRejection::AdminScopeNotAllowed)
        );
        assert_eq!(
            limits_for_new(asked, true, NOW, policy).unwrap().scope,
            Scope::Admin
        );
    }

    #[test]
    fn networks_round_trip_and_are_normalised() {
        let parsed: Vec<IpNet> = ["10.1.2.3/8", "2001:db8::1", "10.0.0.0/8"]
            .iter()
            .map(|n| parse_network(n).unwrap())
            .collect();
        let limits = limits_for_new(
            RequestedLimits {
                allowed_networks: parsed,
                ..Default::default()
            },
            false,
            NOW,
            LifetimePolicy::default(),
        )
        .unwrap();
        let stored = networks_to_stored(&limits.allowed_networks);
        assert_eq!(stored.as_deref(), Some("10.0.0.0/8,2001:db8::1/128"));
        assert_eq!(
            networks_from_stored(stored.as_deref()),
            limits.allowed_networks
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("nope").is_err());
    }
}
