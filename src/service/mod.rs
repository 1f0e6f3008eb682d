//! The operations members, integrators and administrators perform, with the
//! rules that govern them. Handlers and CLI commands call exactly one of these.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::credential::{DeviceId, MainPassword, PasswordHasher, Token, TokenDigest};
use crate::domain::{
    Account, AccountId, Device, DeviceName, DeviceTypes, DisplayName, Email, LastUse, Permission,
    Permissions, Timestamp,
};
use crate::store::{AdminGuard, CredentialChange, NewAccount, NewDevice, Store, StoreError};
use cache::{CachedCredential, CredentialCache, Lookup};
use last_used::LastUsedRecorder;
use throttle::{LookupLimiter, Throttle, ThrottleConfig};

/// Who is asking, as far as the network tells.
#[derive(Clone, Debug)]
pub struct Client<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// A request authenticated with a device password: the device as cached,
/// and this very use of it.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub device: Arc<Device>,
    pub used: LastUse,
    /// The digest of the token this request presented: "Change password"
    /// replaces exactly that one, or nothing.
    presented: TokenDigest,
}

impl Authenticated {
    pub fn account_id(&self) -> AccountId {
        self.device.account_id
    }
}

/// The article's `POST /server/api/device` body, unparsed.
pub struct PasswordDeviceRequest {
    pub email: String,
    pub password: String,
    pub device_name: String,
    pub device_type: Option<String>,
}

pub struct NewAccountRequest {
    pub email: String,
    pub name: Option<String>,
    /// `None`: generate one and hand it back once.
    pub password: Option<String>,
    pub permissions: Permissions,
}

mod account_admin;
pub mod cache;
mod error;
pub mod last_used;
mod own_devices;
mod profile;
mod sessions;
pub mod throttle;

pub use error::ServiceError;
pub use sessions::SignIn;

/// How often a random device id may collide before we give up.
const DEVICE_ID_ATTEMPTS: usize = 5;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            device_types: DeviceTypes::default(),
            throttle: ThrottleConfig::default(),
            cache_capacity: 100_000,
            max_staleness: Duration::from_secs(5),
        }
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    device_types: DeviceTypes,
    cache: CredentialCache,
    last_used: LastUsedRecorder,
    throttle: Throttle,
    lookups: LookupLimiter,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        Self {
            hasher: PasswordHasher::new(),
            device_types: settings.device_types,
            cache: CredentialCache::new(settings.cache_capacity, settings.max_staleness),
            last_used: LastUsedRecorder::default(),
            throttle: Throttle::new(settings.throttle, store.clone()),
            lookups: LookupLimiter::new(settings.throttle.lookup_failures),
            store,
        }
    }

    /// Prepares what the first password check would otherwise pay for.
    pub async fn warm_up(&self) -> Result<(), ServiceError> {
        Ok(self.hasher.warm_up().await?)
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

    // ----- accounts -----

    /// Creates an account; returns the generated password when none was given.
    pub async fn create_account(
        &self,
        request: NewAccountRequest,
    ) -> Result<(Account, Option<MainPassword>), ServiceError> {
        let email = parse_email(&request.email)?;
        let name = match request.name.as_deref() {
            Some(name) => DisplayName::parse(name)
                .map_err(|e| ServiceError::invalid("invalid_name", e))?
                .to_string(),
            None => email.local_part().to_owned(),
        };
        let (password, generated) = match request.password {
            Some(raw) => (parse_new_password(raw)?, false),
            None => (MainPassword::generate(), true),
        };
        let password_hash = self.hasher.hash(&password).await?;
        let account = self
            .store
            .create_account(&NewAccount {
                email: email.clone(),
                name,
                password_hash,
                permissions: request.permissions,
                created_at: Timestamp::now(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::EmailTaken(email.to_string()),
                other => other.into(),
            })?;
        tracing::info!(account = %account.email, "account created");
        Ok((account, generated.then_some(password)))
    }

    /// On a database without an enabled administrator, creates one with a
    /// generated password, returned once so the operator can sign in.
    pub async fn ensure_administrator(
        &self,
        email: &str,
    ) -> Result<Option<(Account, MainPassword)>, ServiceError> {
        if self.store.has_admin().await? {
            return Ok(None);
        }
        let email = parse_email(email)?;
        if self.store.account_by_email(&email).await?.is_some() {
            // Someone disabled the last administrator, or took its admin right
            // away; taking over that account would be wrong, refusing to start
            // would be worse.
            tracing::warn!(
                account = %email,
                "no enabled administrator; enable one with `latchkey user enable` or `latchkey user grant --permission admin`"
            );
            return Ok(None);
        }
        let request = NewAccountRequest {
            email: email.to_string(),
            name: Some("Administrator".to_owned()),
            password: None,
            permissions: [Permission::Admin, Permission::Synchronisation]
                .into_iter()
                .collect(),
        };
        let (account, password) = self.create_account(request).await?;
        Ok(password.map(|p| (account, p)))
    }

    pub async fn account(&self, id: AccountId) -> Result<Account, ServiceError> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| ServiceError::AccountNotFound(format!("#{}", id.0)))
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Account, ServiceError> {
        let email = parse_email(email)?;
        match self.store.account_by_email(&email).await? {
            Some((account, _)) => Ok(account),
            None => Err(ServiceError::AccountNotFound(email.to_string())),
        }
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, ServiceError> {
        Ok(self.store.accounts().await?)
    }

    /// The operator's grant or revoke (the CLI): not held to the
    /// last-administrator rule, since the command line can always repair it.
    pub async fn set_permission(
        &self,
        email: &str,
        permission: Permission,
        granted: bool,
    ) -> Result<Account, ServiceError> {
        let account = self.account_by_email(email).await?;
        self.change_permission(&account, permission, granted, AdminGuard::Unchecked)
            .await
    }

    /// The operator's disable or enable (the CLI).
    pub async fn set_enabled(&self, email: &str, enabled: bool) -> Result<Account, ServiceError> {
        let account = self.account_by_email(email).await?;
        self.change_enabled(&account, enabled, AdminGuard::Unchecked)
            .await
    }

    async fn change_permission(
        &self,
        account: &Account,
        permission: Permission,
        granted: bool,
        guard: AdminGuard,
    ) -> Result<Account, ServiceError> {
        let applied = self
            .store
            .set_permission(account.id, permission, granted, guard)
            .await?;
        self.cache.invalidate_account(account.id);
        if !applied {
            return Err(last_administrator());
        }
        tracing::info!(account = %account.email, %permission, granted, "permission changed");
        self.account(account.id).await
    }

    /// Disabling ends the account's web sessions in the same transaction.
    async fn change_enabled(
        &self,
        account: &Account,
        enabled: bool,
        guard: AdminGuard,
    ) -> Result<Account, ServiceError> {
        let applied = self.store.set_enabled(account.id, enabled, guard).await?;
        self.cache.invalidate_account(account.id);
        if !applied {
            return Err(last_administrator());
        }
        tracing::info!(account = %account.email, enabled, "account enabled state changed");
        self.account(account.id).await
    }

    /// Sets a new main password. Device passwords are untouched: that is
    /// the point of them.
    pub async fn set_password(
        &self,
        email: &str,
        password: String,
    ) -> Result<Account, ServiceError> {
        let account = self.account_by_email(email).await?;
        let password = parse_new_password(password)?;
        let hash = self.hasher.hash(&password).await?;
        // Whoever knew the old password may have signed in with it: every
        // session ends with the same commit.
        self.store
            .set_password_hash(account.id, &hash, None)
            .await?;
        tracing::info!(account = %account.email, "main password changed");
        Ok(account)
    }

    // ----- devices -----

    /// The article's API route: email and main password buy one device.
    pub async fn create_device_with_password(
        &self,
        request: PasswordDeviceRequest,
        client: &Client<'_>,
    ) -> Result<(Device, Token), ServiceError> {
        let email = parse_email(&request.email)?;
        let password = MainPassword::candidate(request.password)
            .map_err(|e| ServiceError::invalid("invalid_password", e))?;
        let name = parse_device_name(&request.device_name)?;

        let account = self
            .check_main_password_throttled(&email, &password, client)
            .await?;

        password_alone_may_act_for(&account)?;
        if !account.permissions.contains(Permission::Synchronisation) {
            return Err(ServiceError::PermissionMissing(Permission::Synchronisation));
        }
        self.create_device(&account, name, request.device_type.as_deref())
            .await
    }

    /// Checks an email and main password under the guessing throttle: only
    /// failures count, and an unknown email answers exactly like a wrong
    /// password. Every main-password check made for someone who is not yet
    /// signed in goes through here. The account may still be disabled.
    pub(crate) async fn check_main_password_throttled(
        &self,
        email: &Email,
        password: &MainPassword,
        client: &Client<'_>,
    ) -> Result<Account, ServiceError> {
        let address = client.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let reservation = self
            .throttle
            .reserve(email.as_str(), address)
            .await?
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        match self.check_main_password(email, password).await {
            Ok(Some(account)) => {
                self.throttle.release(reservation).await;
                Ok(account)
            }
            Ok(None) => {
                tracing::info!(account = %email, client = ?client.ip, "wrong email or password");
                Err(ServiceError::InvalidCredentials)
            }
            // Our failure, not a guess: it must not count against anyone.
            Err(e) => {
                self.throttle.release(reservation).await;
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

    /// Creates a device for an account whose right to one was already checked.
    pub async fn create_device(
        &self,
        account: &Account,
        name: DeviceName,
        device_type: Option<&str>,
    ) -> Result<(Device, Token), ServiceError> {
        let token = Token::generate();
        let mut new = NewDevice {
            id: DeviceId::generate(),
            account_id: account.id,
            name,
            device_type: self.device_types.resolve(device_type),
            token_digest: token.digest(),
            created_at: Timestamp::now(),
        };
        for _ in 0..DEVICE_ID_ATTEMPTS {
            match self.store.insert_device(&new).await {
                Ok(device) => {
                    tracing::info!(account = %account.email, device = %device.id, "device created");
                    return Ok((device, token));
                }
                Err(StoreError::Conflict(_)) => new.id = DeviceId::generate(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Internal(
            "could not find a free device id".to_owned(),
        ))
    }

    /// Checks a device id and token: the hot path. Once the credential is
    /// cached this is one SHA-256 and one constant-time compare.
    pub async fn authenticate(
        &self,
        device_id: &str,
        token: &str,
        client: &Client<'_>,
    ) -> Result<Authenticated, ServiceError> {
        let id = DeviceId::parse(device_id).map_err(|_| ServiceError::InvalidDeviceCredentials)?;
        let token = Token::parse(token).map_err(|_| ServiceError::InvalidDeviceCredentials)?;
        let digest = token.digest();
        let credential = match self.cache.get(id.as_str()) {
            Lookup::Known(credential) if credential.digest.matches(&digest) => credential,
            Lookup::Known(_) | Lookup::Unknown => {
                return Err(ServiceError::InvalidDeviceCredentials)
            }
            Lookup::Miss => {
                if !self.lookups.allows(client.ip) {
                    return Err(ServiceError::RateLimited {
                        retry_after: self.lookups.retry_after(),
                    });
                }
                let ticket = self.cache.ticket();
                let Some(record) = self.store.credential(&id).await? else {
                    self.cache.fill_unknown(ticket, id.as_str());
                    self.lookups.record_failure(client.ip);
                    return Err(ServiceError::InvalidDeviceCredentials);
                };
                // Only verified credentials are cached: wrong tokens for real
                // ids cannot push anything out either.
                if !record.digest.matches(&digest) {
                    self.lookups.record_failure(client.ip);
                    return Err(ServiceError::InvalidDeviceCredentials);
                }
                let credential = CachedCredential {
                    digest: record.digest,
                    account_enabled: record.account_enabled,
                    permissions: record.permissions,
                    device: Arc::new(record.device),
                };
                self.cache.fill(ticket, id.as_str(), credential.clone());
                credential
            }
        };
        if !credential.account_enabled {
            return Err(ServiceError::AccountDisabled);
        }
        if !credential.permissions.contains(Permission::Synchronisation) {
            return Err(ServiceError::PermissionMissing(Permission::Synchronisation));
        }
        let used = self
            .last_used
            .record(&credential.device.id, client.ip, client.user_agent);
        Ok(Authenticated {
            device: credential.device,
            used,
            presented: digest,
        })
    }

    /// A device of the caller's own account.
    pub async fn device(&self, who: &Authenticated, id: &str) -> Result<Device, ServiceError> {
        if id == who.device.id.as_str() {
            // The caller itself, just used: no lookup needed.
            let mut device = Device::clone(&who.device);
            device.last_used = Some(who.used.clone());
            return Ok(device);
        }
        self.device_of(who.account_id(), id).await
    }

    /// A device of `owner`'s; any other device is "not found", whether or
    /// not it exists.
    pub async fn device_of(&self, owner: AccountId, id: &str) -> Result<Device, ServiceError> {
        let id = DeviceId::parse(id).map_err(|_| ServiceError::DeviceNotFound)?;
        match self.store.device(&id).await? {
            Some(mut device) if device.account_id == owner => {
                self.last_used.overlay(&mut device);
                Ok(device)
            }
            _ => Err(ServiceError::DeviceNotFound),
        }
    }

    /// One account's devices, or every device (for administrators).
    pub async fn devices(&self, account: Option<AccountId>) -> Result<Vec<Device>, ServiceError> {
        let mut devices = self.store.devices(account).await?;
        for device in &mut devices {
            self.last_used.overlay(device);
        }
        Ok(devices)
    }

    pub async fn rename_device(
        &self,
        who: &Authenticated,
        id: &str,
        name: &str,
    ) -> Result<Device, ServiceError> {
        let name = parse_device_name(name)?;
        let mut device = self.device(who, id).await?;
        let renamed = self.store.rename_device(&device.id, &name).await?;
        self.cache.invalidate_device(device.id.as_str());
        if !renamed {
            return Err(ServiceError::DeviceNotFound);
        }
        device.name = name;
        Ok(device)
    }

    /// The article's "Change password": same id, new token, old token dead at once.
    /// When a device changes its own password, the change is made only while
    /// the token it presented is still the stored one: of several requests
    /// sent with the same old token exactly one gets a new token, the others
    /// are told their credentials are no longer valid.
    pub async fn regenerate_token(
        &self,
        who: &Authenticated,
        id: &str,
    ) -> Result<(Device, Token), ServiceError> {
        let device = self.device(who, id).await?;
        let expected = (device.id == who.device.id).then_some(&who.presented);
        self.replace_token(device, expected).await
    }

    /// Gives a device a new token; the old one is dead once this returns.
    async fn replace_token(
        &self,
        device: Device,
        expected: Option<&TokenDigest>,
    ) -> Result<(Device, Token), ServiceError> {
        let token = Token::generate();
        let replaced = self
            .store
            .set_device_token(&device.id, expected, &token.digest())
            .await?;
        self.cache.invalidate_device(device.id.as_str());
        if !replaced {
            return Err(match expected {
                Some(_) => ServiceError::InvalidDeviceCredentials,
                None => ServiceError::DeviceNotFound,
            });
        }
        tracing::info!(device = %device.id, "device password changed");
        Ok((device, token))
    }

    pub async fn delete_device(&self, who: &Authenticated, id: &str) -> Result<(), ServiceError> {
        let device = self.device(who, id).await?;
        self.revoke_device(&device.id).await
    }

    /// Deletes any device, whoever owns it (administrators, the CLI).
    pub async fn revoke_device(&self, id: &DeviceId) -> Result<(), ServiceError> {
        let deleted = self.store.delete_device(id).await?;
        self.cache.invalidate_device(id.as_str());
        self.last_used.forget(id);
        if !deleted {
            return Err(ServiceError::DeviceNotFound);
        }
        tracing::info!(device = %id, "device deleted");
        Ok(())
    }

    // ----- background work -----

    /// Applies a change another process (or node) committed.
    pub fn apply_change(&self, change: CredentialChange) {
        match change {
            CredentialChange::Device(id) => self.cache.invalidate_device(id.as_str()),
            CredentialChange::Account(id) => self.cache.invalidate_account(id),
            CredentialChange::Everything => self.cache.clear(),
            CredentialChange::FeedLost => self.cache.feed_lost(),
            CredentialChange::FeedRestored => self.cache.feed_restored(),
            CredentialChange::FeedCaughtUp => self.cache.feed_caught_up(),
        }
    }

    /// Writes pending last-used data.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        self.last_used.flush(self.store.as_ref()).await
    }

    /// Forgets throttle buckets that have refilled.
    pub async fn prune_throttle(&self) -> Result<u64, StoreError> {
        self.throttle.prune().await
    }

    pub fn cached_credentials(&self) -> usize {
        self.cache.len()
    }
}

/// Whether an email and main password are enough to act for this account:
/// not when it is disabled, nor when it also wants a second factor.
pub(super) fn password_alone_may_act_for(account: &Account) -> Result<(), ServiceError> {
    if !account.enabled {
        return Err(ServiceError::AccountDisabled);
    }
    if account.two_factor_enabled {
        return Err(ServiceError::TwoFactorEnabled);
    }
    Ok(())
}

/// A change refused because no enabled administrator would be left.
fn last_administrator() -> ServiceError {
    ServiceError::invalid(
        "last_administrator",
        "This would leave no enabled administrator. Make another account an administrator first, or nobody could administer this server.",
    )
}

pub(super) fn parse_email(raw: &str) -> Result<Email, ServiceError> {
    Email::parse(raw).map_err(|e| ServiceError::invalid("invalid_email", e))
}

pub(super) fn parse_device_name(raw: &str) -> Result<DeviceName, ServiceError> {
    DeviceName::parse(raw).map_err(|e| ServiceError::invalid("invalid_device_name", e))
}

pub(super) fn parse_new_password(raw: String) -> Result<MainPassword, ServiceError> {
    MainPassword::new_checked(raw).map_err(|e| ServiceError::invalid("invalid_password", e))
}
