//! Authentication: device passwords on the hot path, and main passwords
//! under the guessing throttle. What comes out is a proof (see [`actor`](super::actor)).

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::cache::{Cached, CachedAccess, CachedCredential, CredentialCache, Holder, Lookup};
use super::throttle::{Refused, Source};
use super::{AccessCaller, Caller, Client, DeviceCaller, Service, ServiceError};
use crate::credential::{
    DeviceId, MainPassword, Secret, Token, TokenDigest, TokenKind, TrustedEntry,
};
use crate::domain::limits::{self, UseContext};
use crate::domain::{rules, Account, Email, LastUse, Permission, Scope, Timestamp};

/// The last use as the cache counts idle expiry from (`i64::MIN`: never).
fn last_seen(used: Option<&LastUse>) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(
        used.map_or(i64::MIN, |used| used.at.millis()),
    ))
}

/// A presented token and its digest, computed once.
struct Presented<'a> {
    token: &'a str,
    digest: TokenDigest,
}

/// A credential check the cache could not decide: only the store can.
pub struct ColdCheck<'a> {
    id: DeviceId,
    kind: TokenKind,
    presented: Presented<'a>,
}

/// What [`Service::authenticate_warm`] found.
pub enum WarmCheck<'a> {
    Decided(Result<Caller, ServiceError>),
    Cold(ColdCheck<'a>),
}

impl Service {
    /// Checks a credential id and token (a device password, or an API
    /// access authorisation: the token's prefix says which), and the
    /// credential's limits for a request that needs `need`: the hot path,
    /// for every way a credential arrives (the API, forward auth, the admin
    /// API). Once the credential is cached this is one SHA-256, one
    /// constant-time compare and [`limits::may_use`], with no database query.
    pub async fn authenticate_caller(
        &self,
        id: &str,
        token: &str,
        client: &Client<'_>,
        need: Scope,
    ) -> Result<Caller, ServiceError> {
        match self.authenticate_warm(id, token, client, need) {
            WarmCheck::Decided(decided) => decided,
            // Boxed: the store's future is large, and every request's
            // future would otherwise be that large too, and be copied so
            // as it moves through the handler (bench/instructions.sh).
            WarmCheck::Cold(check) => Box::pin(self.authenticate_cold(check, client, need)).await,
        }
    }

    /// [`Self::authenticate_caller`] as far as it goes without the store,
    /// and without waiting: decided from the cache (a known credential, or
    /// an id recently found unknown, or a token of no kind), or handed on
    /// to [`Self::authenticate_cold`]. Hot routes answer from this at once.
    pub fn authenticate_warm<'a>(
        &self,
        id: &str,
        token: &'a str,
        client: &Client<'_>,
        need: Scope,
    ) -> WarmCheck<'a> {
        let Ok(id) = DeviceId::parse(id) else {
            return WarmCheck::Decided(Err(ServiceError::InvalidDeviceCredentials));
        };
        let Some(kind) = Token::claimed_kind(token) else {
            return WarmCheck::Decided(Err(ServiceError::InvalidDeviceCredentials));
        };
        let presented = Presented {
            token,
            digest: TokenDigest::of(token),
        };
        let now = self.clock.now();
        let decided = match kind {
            TokenKind::Device => match self.cache.get(id.as_str()) {
                Lookup::Known(credential) => self
                    .admit(&credential, &presented, now)
                    .and_then(|()| self.admit_device(credential, &presented, client, need, now))
                    .map(Caller::Device),
                Lookup::Unknown => Err(ServiceError::InvalidDeviceCredentials),
                Lookup::Miss => {
                    return WarmCheck::Cold(ColdCheck {
                        id,
                        kind,
                        presented,
                    })
                }
            },
            TokenKind::Access => match self.access_cache.get(id.as_str()) {
                Lookup::Known(credential) => self
                    .admit(&credential, &presented, now)
                    .and_then(|()| self.admit_access(credential, client, need, now))
                    .map(Caller::Access),
                Lookup::Unknown => Err(ServiceError::InvalidDeviceCredentials),
                Lookup::Miss => {
                    return WarmCheck::Cold(ColdCheck {
                        id,
                        kind,
                        presented,
                    })
                }
            },
        };
        WarmCheck::Decided(decided)
    }

    /// The rest of a check [`Self::authenticate_warm`] could not decide:
    /// the credential read from the store, cached if the token is its own,
    /// and judged by the same rules.
    pub async fn authenticate_cold(
        &self,
        check: ColdCheck<'_>,
        client: &Client<'_>,
        need: Scope,
    ) -> Result<Caller, ServiceError> {
        let ColdCheck {
            id,
            kind,
            presented,
        } = check;
        let now = self.clock.now();
        match kind {
            TokenKind::Device => {
                let credential = self
                    .read_verified(&self.cache, &id, &presented, now, client, || async {
                        let Some(record) = self.store.credential(&id).await? else {
                            return Ok(None);
                        };
                        let mut device = record.device;
                        // Use this node saw but has not written yet counts too.
                        self.last_used.overlay(&mut device);
                        Ok(Some(CachedCredential {
                            digest: record.digest,
                            previous_digest: record.previous_digest,
                            account_enabled: record.account_enabled,
                            permissions: record.permissions,
                            last_seen: last_seen(device.last_used.as_ref()),
                            device: Arc::new(device),
                            holder: Arc::new(Holder {
                                email: record.account_email,
                                name: record.account_name,
                            }),
                        }))
                    })
                    .await?;
                self.admit_device(credential, &presented, client, need, now)
                    .map(Caller::Device)
            }
            TokenKind::Access => {
                let credential = self
                    .read_verified(&self.access_cache, &id, &presented, now, client, || async {
                        let Some(record) = self.store.access_credential(&id).await? else {
                            return Ok(None);
                        };
                        let mut access = record.access;
                        self.access_last_used
                            .overlay_on(&access.id, &mut access.last_used);
                        Ok(Some(CachedAccess {
                            digest: record.digest,
                            previous_digest: record.previous_digest,
                            last_seen: last_seen(access.last_used.as_ref()),
                            access: Arc::new(access),
                        }))
                    })
                    .await?;
                self.admit_access(credential, client, need, now)
                    .map(Caller::Access)
            }
        }
    }

    /// [`Self::authenticate_caller`] for what only a person's device may do:
    /// an API access authorisation acts for no account.
    pub async fn authenticate(
        &self,
        device_id: &str,
        token: &Secret,
        client: &Client<'_>,
        need: Scope,
    ) -> Result<DeviceCaller, ServiceError> {
        match self
            .authenticate_caller(device_id, token.expose(), client, need)
            .await?
        {
            Caller::Device(device) => Ok(device),
            Caller::Access(_) => Err(ServiceError::AccountRequired),
        }
    }

    /// Whether the presented token is a cached credential's own: its
    /// current one, or the one before while the overlap lasts.
    fn admit(
        &self,
        credential: &impl Cached,
        presented: &Presented<'_>,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        if credential.presented(&presented.digest, now) {
            Ok(())
        } else {
            Err(ServiceError::InvalidDeviceCredentials)
        }
    }

    /// A verified device password's own rules, its account's and its limits,
    /// for a request that needs `need`; then the use is noted.
    fn admit_device(
        &self,
        credential: CachedCredential,
        presented: &Presented<'_>,
        client: &Client<'_>,
        need: Scope,
        now: Timestamp,
    ) -> Result<DeviceCaller, ServiceError> {
        if !credential.account_enabled {
            return Err(ServiceError::AccountDisabled);
        }
        rules::may_use_device_passwords(&credential.permissions)?;
        let last_seen = credential.last_seen.load(Ordering::Relaxed);
        let holder_is_admin = credential.permissions.contains(Permission::Admin);
        let context = UseContext {
            issued_at: credential.device.token_issued_at,
            last_used_at: (last_seen != i64::MIN).then(|| Timestamp::from_millis(last_seen)),
            holder_is_admin,
        };
        limits::may_use(
            &credential.device.limits,
            &context,
            need,
            client.ip,
            now,
            self.lifetime,
        )?;
        credential
            .last_seen
            .fetch_max(now.millis(), Ordering::Relaxed);
        let used = self.last_used.record(
            &credential.device.id,
            client.ip,
            client.user_agent.as_deref(),
            now,
            credential.device.last_used.as_ref(),
        );
        let scope = limits::effective_scope(&credential.device.limits, holder_is_admin);
        Ok(DeviceCaller::new(
            credential.device,
            used,
            presented.digest,
            credential.holder,
            credential.permissions,
            scope,
        ))
    }

    /// The same for an API access authorisation: its own enabled flag and
    /// limits decide, never a person's state.
    fn admit_access(
        &self,
        credential: CachedAccess,
        client: &Client<'_>,
        need: Scope,
        now: Timestamp,
    ) -> Result<AccessCaller, ServiceError> {
        if !credential.access.enabled {
            return Err(ServiceError::AccessDisabled);
        }
        let last_seen = credential.last_seen.load(Ordering::Relaxed);
        let context = UseContext {
            issued_at: credential.access.token_issued_at,
            last_used_at: (last_seen != i64::MIN).then(|| Timestamp::from_millis(last_seen)),
            // Nobody's permission can lapse: an administrator gave it its scope.
            holder_is_admin: true,
        };
        limits::may_use(
            &credential.access.limits,
            &context,
            need,
            client.ip,
            now,
            self.lifetime,
        )?;
        credential
            .last_seen
            .fetch_max(now.millis(), Ordering::Relaxed);
        let used = self.access_last_used.record(
            &credential.access.id,
            client.ip,
            client.user_agent.as_deref(),
            now,
            credential.access.last_used.as_ref(),
        );
        Ok(AccessCaller::new(credential.access, used))
    }

    /// The credential `id` from the store by `read`, if `presented` is its
    /// token, and then cached; an id found unknown is remembered as such.
    /// Only verified credentials are cached, so wrong tokens for real ids
    /// cannot push anything out; misses are limited per address, so
    /// unknown ids cannot cost a query each; an old token past its overlap
    /// is wrong.
    async fn read_verified<V, Fut>(
        &self,
        cache: &CredentialCache<V>,
        id: &DeviceId,
        presented: &Presented<'_>,
        now: Timestamp,
        client: &Client<'_>,
        read: impl FnOnce() -> Fut,
    ) -> Result<V, ServiceError>
    where
        V: Cached,
        Fut: std::future::Future<Output = Result<Option<V>, ServiceError>>,
    {
        // Garbage never costs a query, nor counts as a guess.
        Token::check(presented.token).map_err(|_| ServiceError::InvalidDeviceCredentials)?;
        if !self.lookups.allows(client.ip) {
            return Err(ServiceError::RateLimited {
                retry_after: self.lookups.retry_after(),
            });
        }
        let ticket = cache.ticket();
        let Some(credential) = read().await? else {
            cache.fill_unknown(ticket, id.as_str());
            self.lookups.record_failure(client.ip);
            return Err(ServiceError::InvalidDeviceCredentials);
        };
        if !credential.presented(&presented.digest, now) {
            self.lookups.record_failure(client.ip);
            return Err(ServiceError::InvalidDeviceCredentials);
        }
        cache.fill(ticket, id.as_str(), credential.clone());
        Ok(credential)
    }

    /// Checks an email and main password under the guessing throttle, then
    /// whether the password alone may act for the account: only failures
    /// count, and an unknown email answers exactly like a wrong password.
    /// Every main-password check made for someone who is not yet signed in
    /// goes through here; `trusted` is the caller's trusted-browser entry
    /// for this account, if it sent one.
    pub(super) async fn check_main_password_throttled(
        &self,
        email: &Email,
        password: &MainPassword,
        client: &Client<'_>,
        trusted: Option<&TrustedEntry>,
    ) -> Result<Account, ServiceError> {
        let source = match trusted.filter(|entry| entry.account == email.as_str()) {
            Some(entry) => Source::Trusted(entry),
            None => Source::Network(client.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]))),
        };
        let reservation = match self.throttle.reserve(email.as_str(), source).await? {
            Ok(reservation) => reservation,
            Err(Refused::Wait(retry_after)) => {
                return Err(ServiceError::RateLimited { retry_after })
            }
            Err(Refused::Stopped) => {
                tracing::warn!(account = %email, client = client.ip.map(tracing::field::display), "attempt refused: too many consecutive failures for this account");
                return Err(ServiceError::SignInStopped);
            }
        };
        match self.check_main_password(email, password).await {
            Ok(Some(account)) => {
                self.throttle.succeeded(reservation).await;
                Ok(account)
            }
            Ok(None) => {
                drop(reservation);
                // The address as itself, or no field at all when unknown.
                let address = client.ip.map(tracing::field::display);
                let trusted = matches!(source, Source::Trusted(_));
                tracing::info!(account = %email, client = address, trusted, "wrong email or password");
                Err(ServiceError::InvalidCredentials)
            }
            // Our failure, not a guess: it must not count against anyone.
            Err(e) => {
                self.throttle.give_back(reservation).await;
                Err(e)
            }
        }
    }

    /// The account, if the password is its main password. Unknown emails cost
    /// the same as wrong passwords.
    async fn check_main_password(
        &self,
        email: &Email,
        password: &MainPassword,
    ) -> Result<Option<Account>, ServiceError> {
        let found = self.store.account_by_email(email).await?;
        let hash = found.as_ref().map(|(_, hash)| hash.as_str());
        let matches = self.hasher.verify(password, hash).await?;
        Ok(found.filter(|_| matches).map(|(account, _)| account))
    }
}
