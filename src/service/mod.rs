//! The application layer: the operations members, integrators, administrators
//! and the operator perform. Each takes the actor it needs (see [`actor`]);
//! handlers and CLI commands call exactly one of them, and it makes its
//! writes in one [`WriteTx`](crate::store::WriteTx). Beside it: the
//! verification cache, the guessing throttle and the last-use recorder.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::credential::{
    DeviceAuthorizationKeys, MainPassword, PasswordHasher, RecoveryDigests, Secret, SecretBox,
    ServerKey, SignInForms, TrustedBrowsers,
};
use crate::domain::{
    Clock, DeviceName, DeviceTypes, Email, LifetimePolicy, PasswordPolicy, Permissions,
    RequestedLimits, Requirement, Scope, Timestamp, TwoFactorPolicy,
};
use crate::store::{CredentialTable, KeyRegistration, Serialise, Store, WriteTx};
use cache::{CachedAccess, CredentialCache};
use last_used::LastUsedRecorder;
use throttle::{LookupLimiter, Throttle, ThrottleConfig};

mod access;
mod accounts;
pub mod actor;
mod admin;
mod auth;
mod background;
pub mod cache;
mod device_authorization;
mod devices;
mod error;
pub mod last_used;
mod profile;
mod sessions;
pub mod throttle;
mod two_factor;

pub use access::NewAccessRequest;
pub use actor::{AccessCaller, Admin, ApiAdministrator, Caller, DeviceCaller, Member, Operator};
pub use admin::{AccountOverview, OwnedDevice};
pub use auth::WarmCheck;
pub use device_authorization::{
    AuthorizationRequest, DeviceAuthorizationSettings, Poll, StartedAuthorization,
};
pub use devices::{DeviceState, TokenChange};
pub use error::ServiceError;
pub use sessions::SignIn;
pub use two_factor::{
    Enrolment, SecondStepDone, SignInStep, TwoFactorEvent, TwoFactorStatus,
    PENDING_SIGN_IN_LIFETIME, PENDING_SIGN_IN_MAX_FAILURES,
};

/// Who is asking, as far as the network tells.
#[derive(Clone, Debug)]
pub struct Client<'a> {
    pub ip: Option<IpAddr>,
    /// As sent, with bytes that are not UTF-8 replaced by U+FFFD; not yet
    /// cleaned (see [`LastUse::clean_user_agent`](crate::domain::LastUse::clean_user_agent)).
    pub user_agent: Option<Cow<'a, str>>,
}

/// The article's `POST /server/api/device` body, unparsed.
#[derive(Debug)]
pub struct PasswordDeviceRequest {
    pub email: String,
    pub password: Secret,
    pub device_name: String,
    pub device_type: Option<String>,
    pub limits: RequestedLimits,
}

/// Limits as they arrive from a form, the API or the command line, unparsed.
#[derive(Clone, Debug, Default)]
pub struct RawLimits {
    pub scope: Option<String>,
    pub expires_at: Option<String>,
    pub idle_expiry_days: Option<u32>,
    pub allowed_networks: Vec<String>,
    pub denied_networks: Vec<String>,
}

/// Reads limits; blank values count as not given.
pub fn parse_limits(raw: RawLimits) -> Result<RequestedLimits, ServiceError> {
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let scope = given(raw.scope)
        .map(|s| s.parse::<Scope>())
        .transpose()
        .map_err(|e| ServiceError::invalid("invalid_scope", e))?;
    let expires_at = given(raw.expires_at)
        .map(|raw| {
            Timestamp::parse_rfc3339(&raw).ok_or_else(|| {
                ServiceError::invalid(
                    "invalid_expiry",
                    "expiresAt must be a time in RFC 3339 form, such as 2027-01-31T12:00:00Z, or a date such as 2027-01-31 (valid through that day, UTC).",
                )
            })
        })
        .transpose()?;
    let networks = |list: Vec<String>| -> Result<Vec<ipnet::IpNet>, ServiceError> {
        list.iter()
            .flat_map(|entry| entry.split([',', '\n', ' ']))
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                crate::domain::limits::parse_network(n)
                    .map_err(|e| ServiceError::invalid("invalid_network", e))
            })
            .collect()
    };
    Ok(RequestedLimits {
        scope,
        expires_at,
        idle_expiry_days: raw.idle_expiry_days,
        allowed_networks: networks(raw.allowed_networks)?,
        denied_networks: networks(raw.denied_networks)?,
    })
}

#[derive(Debug)]
pub struct NewAccountRequest {
    pub email: String,
    pub name: Option<String>,
    /// `None`: generate one and hand it back once.
    pub password: Option<Secret>,
    pub permissions: Permissions,
}

/// The knobs of a [`Service`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub device_types: DeviceTypes,
    pub throttle: ThrottleConfig,
    /// Verified credentials kept in memory.
    pub cache_capacity: usize,
    /// How long cached credentials are still served once changes can no
    /// longer be seen (the database is unreachable).
    pub max_staleness: Duration,
    /// What new main passwords must be.
    pub password_policy: PasswordPolicy,
    /// App sign-in requests: how long they live, how often apps may poll.
    pub device_authorizations: DeviceAuthorizationSettings,
    /// The issuer authenticator apps show beside the account.
    pub issuer: String,
    /// Which accounts must have a second factor, and how long they get.
    pub require_two_factor: Requirement,
    pub two_factor_grace: Duration,
    /// `--max-credential-lifetime-days`.
    pub lifetime: LifetimePolicy,
    /// Where expiries, idle expiry and overlaps read the time.
    pub clock: Clock,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            device_types: DeviceTypes::default(),
            throttle: ThrottleConfig::default(),
            cache_capacity: 100_000,
            max_staleness: Duration::from_secs(5),
            password_policy: PasswordPolicy::default(),
            device_authorizations: DeviceAuthorizationSettings::default(),
            issuer: "latchkey".to_owned(),
            require_two_factor: Requirement::None,
            two_factor_grace: Duration::from_secs(7 * 86_400),
            lifetime: LifetimePolicy::default(),
            clock: Clock::default(),
        }
    }
}

/// What the service signs with, each under its own subkey of the server key.
struct Keys {
    id: String,
    check_value: [u8; 32],
    sign_in_forms: SignInForms,
    trusted_browsers: TrustedBrowsers,
    device_authorizations: DeviceAuthorizationKeys,
    totp: SecretBox,
    recovery: RecoveryDigests,
}

impl Keys {
    fn new(key: &ServerKey) -> Self {
        Self {
            id: key.id().to_owned(),
            check_value: key.check_value(),
            sign_in_forms: SignInForms::new(key),
            trusted_browsers: TrustedBrowsers::new(key),
            device_authorizations: DeviceAuthorizationKeys::new(key),
            totp: SecretBox::new(key),
            recovery: RecoveryDigests::new(key),
        }
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    keys: Keys,
    hasher: PasswordHasher,
    device_types: DeviceTypes,
    cache: CredentialCache,
    last_used: LastUsedRecorder,
    access_cache: CredentialCache<CachedAccess>,
    access_last_used: LastUsedRecorder,
    throttle: Throttle,
    lookups: LookupLimiter,
    password_policy: PasswordPolicy,
    device_authorizations: DeviceAuthorizationSettings,
    issuer: String,
    clock: Clock,
    require_two_factor: Requirement,
    two_factor_grace: Duration,
    /// Since when the requirement has been in force, as the database
    /// recorded it at start.
    requirement_since: std::sync::OnceLock<Timestamp>,
    lifetime: LifetimePolicy,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, settings: Settings, key: &ServerKey) -> Self {
        Self {
            keys: Keys::new(key),
            hasher: PasswordHasher::new(),
            device_types: settings.device_types,
            cache: CredentialCache::new(settings.cache_capacity, settings.max_staleness),
            last_used: LastUsedRecorder::default(),
            access_cache: CredentialCache::new(settings.cache_capacity, settings.max_staleness),
            access_last_used: LastUsedRecorder::for_table(CredentialTable::Access),
            throttle: Throttle::new(settings.throttle, store.clone()),
            lookups: LookupLimiter::new(settings.throttle.lookup_failures),
            password_policy: settings.password_policy,
            device_authorizations: settings.device_authorizations,
            issuer: settings.issuer,
            clock: settings.clock,
            require_two_factor: settings.require_two_factor,
            two_factor_grace: settings.two_factor_grace,
            requirement_since: std::sync::OnceLock::new(),
            lifetime: settings.lifetime,
            store,
        }
    }

    /// Prepares what the first password check would otherwise pay for.
    pub async fn warm_up(&self) -> Result<(), ServiceError> {
        Ok(self.hasher.warm_up().await?)
    }

    /// Makes sure the database was written under this node's server key, or
    /// records the key on a new database. A node with another key must not
    /// start: every form, cookie and secret another node signed or
    /// encrypted would look forged to it, and the other way round.
    pub async fn check_server_key(&self) -> Result<(), ServiceError> {
        let registration = self
            .store
            .register_server_key(&self.keys.id, &self.keys.check_value, Timestamp::now())
            .await?;
        match registration {
            KeyRegistration::Matches => {}
            KeyRegistration::Registered => {
                tracing::info!(key_id = %self.keys.id, "the database now belongs to this server key");
            }
            KeyRegistration::Differs { stored_id } => Err(ServiceError::invalid(
                "wrong_server_key",
                format!(
                    "this node's secret key (id {}) is not the one this database was set up with (id {stored_id}); every node sharing a database must use the same key file, so copy it from a node that runs, or restore it from the backup",
                    self.keys.id
                ),
            ))?,
        }
        self.check_two_factor_secrets().await?;
        let since = match self
            .store
            .two_factor_requirement_since(self.require_two_factor.as_str(), self.clock.now())
            .await
        {
            Ok(since) => since,
            // A read-only database: start (not ready), counting from now.
            Err(e) => {
                tracing::warn!(error = %e, "cannot record since when --require-two-factor is in force; counting from now");
                self.clock.now()
            }
        };
        let _ = self.requirement_since.set(since);
        Ok(())
    }

    /// The second-factor requirement in force.
    pub fn two_factor_policy(&self) -> TwoFactorPolicy {
        TwoFactorPolicy {
            requirement: self.require_two_factor,
            grace: self.two_factor_grace,
            since: self
                .requirement_since
                .get()
                .copied()
                .unwrap_or(Timestamp::from_millis(0)),
        }
    }

    /// Whether the service can do its work: the database answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn device_types(&self) -> &DeviceTypes {
        &self.device_types
    }

    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.password_policy
    }

    pub fn lifetime_policy(&self) -> LifetimePolicy {
        self.lifetime
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A main password someone wants to set for the account with `email`,
    /// or `None` for one to be generated: every path that sets one comes here.
    fn new_password(
        &self,
        raw: Option<Secret>,
        email: &Email,
    ) -> Result<(MainPassword, bool), ServiceError> {
        match raw {
            Some(raw) => match self.password_policy.check(raw, email) {
                Ok(password) => Ok((password, false)),
                Err(rejection) => Err(ServiceError::invalid(rejection.code(), rejection)),
            },
            None => Ok((self.password_policy.generate(email), true)),
        }
    }

    /// The transaction an operation makes all its writes in.
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, ServiceError> {
        Ok(self.store.begin_write(Serialise::Ordinary).await?)
    }
}

fn parse_email(raw: &str) -> Result<Email, ServiceError> {
    Email::parse(raw).map_err(|e| ServiceError::invalid("invalid_email", e))
}

fn parse_device_name(raw: &str) -> Result<DeviceName, ServiceError> {
    DeviceName::parse(raw).map_err(|e| ServiceError::invalid("invalid_device_name", e))
}
