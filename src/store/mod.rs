//! The storage interface. Implementations know SQL; they never decide policy.
//! The SQL is written once, in `sql.rs`; `sqlite.rs` and `postgres.rs` hold
//! only what their database does its own way.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use postgres::PgStore;
use sqlite::SqliteStore;

use crate::credential::{CsrfSecret, DeviceId, SessionDigest, TokenDigest};
use crate::domain::{
    AccessAuthorisation, AccessId, Account, AccountId, CredentialLimits, Device,
    DeviceAuthorization, DeviceName, Email, LastUse, Notice, Permission, Permissions, SessionId,
    Timestamp, WebSession,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (an email, a device id).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database cannot be reached right now; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// What a write transaction must wait for besides other writers' rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serialise {
    /// An ordinary write: unique keys and row locks keep it apart from others.
    Ordinary,
    /// The transaction will count administrators before it commits: such
    /// transactions, from any process on any node, run one after the other,
    /// so each one's count sees every other one's result.
    Administrators,
}

pub struct NewAccount {
    pub email: Email,
    pub name: String,
    pub password_hash: String,
    pub permissions: Permissions,
    pub created_at: Timestamp,
}

pub struct NewDevice {
    pub id: DeviceId,
    pub account_id: AccountId,
    pub name: DeviceName,
    pub device_type: String,
    pub token_digest: TokenDigest,
    pub created_at: Timestamp,
    pub limits: CredentialLimits,
}

impl NewDevice {
    /// The device as it is right after the insert.
    pub fn inserted(&self) -> Device {
        Device {
            id: self.id.clone(),
            account_id: self.account_id,
            name: self.name.clone(),
            device_type: self.device_type.as_str().into(),
            created_at: self.created_at,
            last_used: None,
            limits: self.limits.clone(),
            token_issued_at: self.created_at,
            previous_token_until: None,
        }
    }
}

/// An API access authorisation as it is first stored.
pub struct NewAccess {
    pub id: AccessId,
    pub name: DeviceName,
    pub description: String,
    pub created_by: Option<String>,
    pub token_digest: TokenDigest,
    pub created_at: Timestamp,
    pub limits: CredentialLimits,
}

impl NewAccess {
    /// The access authorisation as it is right after the insert.
    pub fn inserted(&self) -> AccessAuthorisation {
        AccessAuthorisation {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            enabled: true,
            limits: self.limits.clone(),
            token_issued_at: self.created_at,
            previous_token_until: None,
            last_used: None,
        }
    }
}

/// The two tables credentials live in, for what both do the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialTable {
    Devices,
    Access,
}

impl CredentialTable {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            CredentialTable::Devices => "devices",
            CredentialTable::Access => "access_authorisations",
        }
    }
}

/// An app's sign-in request as it is first stored.
pub struct NewDeviceAuthorization {
    pub device_code_digest: [u8; 32],
    pub user_code_digest: [u8; 32],
    pub device_name: DeviceName,
    pub device_type: String,
    pub token_digest: TokenDigest,
    pub requested_ip: Option<IpAddr>,
    pub requested_user_agent: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub interval: Duration,
}

/// A token "Change password" issues.
pub struct NewToken {
    pub digest: TokenDigest,
    pub issued_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// Keep the old token working until then; `None`: it dies now.
    pub previous_until: Option<Timestamp>,
}

/// How the server uses its database connections.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Pool size (PostgreSQL; SQLite has its own small fixed pool).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it gets 503.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Throttle buckets by key: tokens left and when they were counted (Unix ms).
pub type Buckets = HashMap<String, (f64, i64)>;

/// Buckets to write: `None` deletes one (it is as good as full).
pub type BucketWrites = HashMap<String, Option<(f64, i64)>>;

/// Given the stored buckets (missing ones absent), returns the buckets to
/// write, or `None` to change nothing.
pub type BucketUpdate<'a> = &'a mut (dyn FnMut(Buckets) -> Option<BucketWrites> + Send);

/// What the database says about the server key a node started with.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRegistration {
    /// The database was written under this key.
    Matches,
    /// The database had no key yet; from now on it has this one.
    Registered,
    /// The database was written under another key, with this id.
    Differs { stored_id: String },
}

pub struct NewSession {
    pub digest: SessionDigest,
    pub account_id: AccountId,
    pub csrf: CsrfSecret,
    pub created_at: Timestamp,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl NewSession {
    /// The session as it is right after the insert.
    pub fn created(&self, id: SessionId) -> WebSession {
        WebSession {
            id,
            account_id: self.account_id,
            csrf: self.csrf.clone(),
            created_at: self.created_at,
            last_seen_at: self.created_at,
            ip: self.ip,
            user_agent: self.user_agent.clone(),
        }
    }
}

/// An account's TOTP secret as stored: sealed (see
/// [`SecretBox`](crate::credential::SecretBox)), and whether enrolment was
/// finished.
#[derive(Clone, Debug)]
pub struct TwoFactorRecord {
    pub sealed_secret: String,
    pub last_step: i64,
    pub confirmed: bool,
}

/// A sign-in waiting for its second step.
#[derive(Clone, Copy, Debug)]
pub struct PendingSignInRecord {
    pub account_id: AccountId,
    pub expires_at: Timestamp,
    pub failures: i64,
}

/// What authenticating a device needs, read in one query.
#[derive(Clone, Debug)]
pub struct CredentialRecord {
    pub digest: TokenDigest,
    /// The token "Change password" replaced, while it overlaps.
    pub previous_digest: Option<TokenDigest>,
    pub account_email: String,
    pub account_name: String,
    pub account_enabled: bool,
    pub permissions: Permissions,
    pub device: Device,
}

/// What authenticating an API access authorisation needs, read in one query.
#[derive(Clone, Debug)]
pub struct AccessRecord {
    pub digest: TokenDigest,
    pub previous_digest: Option<TokenDigest>,
    pub access: AccessAuthorisation,
}

/// Something changed that may invalidate cached credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialChange {
    Device(DeviceId),
    Access(AccessId),
    Account(AccountId),
    /// Too much changed to say what; drop everything.
    Everything,
    /// Changes can no longer be seen (the database is unreachable): what is
    /// cached may go stale from now on.
    FeedLost,
    /// Changes are seen again; whatever happened meanwhile is unknown.
    FeedRestored,
    /// Changes are seen again, and those made meanwhile were delivered.
    FeedCaughtUp,
}

/// Receives credential changes made by any process sharing the database.
pub type ChangeSink = Arc<dyn Fn(CredentialChange) + Send + Sync>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Starts the transaction one operation makes all its writes in.
    async fn begin_write(&self, serialise: Serialise) -> Result<Box<dyn WriteTx>, StoreError>;

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
    /// The account and its main-password hash.
    async fn account_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(Account, String)>, StoreError>;
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Whether any enabled account holds `admin`.
    async fn has_admin(&self) -> Result<bool, StoreError>;
    /// Whether any account exists at all.
    async fn has_accounts(&self) -> Result<bool, StoreError>;

    /// Bulk import: all or none, in one transaction. Fails with
    /// [`StoreError::Conflict`]`("device id")` if any id is taken.
    async fn insert_devices(&self, devices: &[NewDevice]) -> Result<(), StoreError>;
    async fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError>;
    /// One account's devices, or all devices, oldest first.
    async fn devices(&self, account: Option<AccountId>) -> Result<Vec<Device>, StoreError>;
    async fn credential(&self, id: &DeviceId) -> Result<Option<CredentialRecord>, StoreError>;
    /// Writes coalesced last-use data; an older value never overwrites a newer one.
    async fn record_last_used(
        &self,
        table: CredentialTable,
        uses: &[(DeviceId, LastUse)],
    ) -> Result<(), StoreError>;

    async fn access(&self, id: &AccessId) -> Result<Option<AccessAuthorisation>, StoreError>;
    /// Every API access authorisation, oldest first.
    async fn accesses(&self) -> Result<Vec<AccessAuthorisation>, StoreError>;
    async fn access_credential(&self, id: &AccessId) -> Result<Option<AccessRecord>, StoreError>;

    /// Reads the buckets under `keys` and writes back what `update` returns,
    /// atomically with respect to every other process. Returns whether it wrote.
    async fn update_buckets(
        &self,
        keys: &[String],
        update: BucketUpdate<'_>,
    ) -> Result<bool, StoreError>;
    /// The buckets under `keys` as they are now (missing ones absent).
    async fn buckets(&self, keys: &[String]) -> Result<Buckets, StoreError>;
    /// Deletes buckets last counted before the given time (Unix ms), except
    /// those whose key starts with `keep_prefix` (they never refill).
    async fn prune_buckets(
        &self,
        updated_before: i64,
        keep_prefix: &str,
    ) -> Result<u64, StoreError>;
    /// Deletes every bucket whose key starts with `prefix`; returns how many.
    async fn delete_buckets_with_prefix(&self, prefix: &str) -> Result<u64, StoreError>;

    // ----- the server key and what it signs -----

    /// Records the key id and check value on a database that has none, in
    /// one conditional statement, so of nodes starting at once with
    /// different keys exactly one registers its key.
    async fn register_server_key(
        &self,
        key_id: &str,
        check_value: &[u8; 32],
        now: Timestamp,
    ) -> Result<KeyRegistration, StoreError>;
    /// Marks a sign-in form token used; false if it was used already.
    async fn spend_sign_in_form(
        &self,
        nonce: &[u8; 16],
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// Forgets used sign-in form tokens that have expired anyway (Unix s).
    async fn prune_spent_sign_in_forms(&self, now: i64) -> Result<u64, StoreError>;

    // ----- web sessions -----

    async fn session(&self, digest: &SessionDigest) -> Result<Option<WebSession>, StoreError>;
    async fn touch_session(&self, digest: &SessionDigest, at: Timestamp) -> Result<(), StoreError>;
    /// Replaces what the session's next page shows once.
    async fn set_session_notice(
        &self,
        digest: &SessionDigest,
        notice: &Notice,
    ) -> Result<(), StoreError>;
    /// Returns the notice and clears it, so it is shown only once.
    async fn take_session_notice(&self, digest: &SessionDigest) -> Result<Notice, StoreError>;
    /// An account's sessions, most recently seen first.
    async fn sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>, StoreError>;
    /// Deletes sessions last seen before `idle_before` or started before `created_before`.
    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError>;

    // ----- app sign-in requests -----

    async fn device_authorization(
        &self,
        device_code_digest: &[u8; 32],
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    async fn device_authorization_by_user_code(
        &self,
        user_code_digest: &[u8; 32],
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// Counts a poll of a pending request, if the interval has passed since
    /// the last one (one conditional statement). Otherwise the poll came
    /// too soon: the interval grows by `step`, and the new one is returned
    /// (unless the request was decided meanwhile).
    async fn poll_device_authorization(
        &self,
        id: i64,
        now: Timestamp,
        step: Duration,
    ) -> Result<Option<Duration>, StoreError>;
    /// Marks an approved, unexpired request collected; true for exactly one
    /// caller however many ask at once, on any node.
    async fn claim_device_authorization(&self, id: i64, now: Timestamp)
        -> Result<bool, StoreError>;
    /// Denies a pending, unexpired request; false if it was not one.
    async fn deny_device_authorization(
        &self,
        id: i64,
        by: AccountId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes requests that expired before `before`.
    async fn prune_device_authorizations(&self, before: Timestamp) -> Result<u64, StoreError>;

    // ----- two-factor authentication -----

    async fn two_factor(&self, account: AccountId) -> Result<Option<TwoFactorRecord>, StoreError>;
    /// Some confirmed secret, to check at start that this node's key opens them.
    async fn some_two_factor_secret(&self) -> Result<Option<(AccountId, String)>, StoreError>;
    async fn recovery_codes_left(&self, account: AccountId) -> Result<i64, StoreError>;
    async fn pending_sign_in(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<PendingSignInRecord>, StoreError>;
    /// Counts one wrong code against a pending sign-in, in one statement;
    /// returns the failures now counted, or `None` if it no longer exists.
    async fn count_pending_sign_in_failure(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<i64>, StoreError>;
    async fn delete_pending_sign_in(&self, digest: &[u8; 32]) -> Result<(), StoreError>;
    /// Forgets pending sign-ins that expired before `now`.
    async fn prune_pending_sign_ins(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Records `level` as the required second-factor level, and since when
    /// it has been (now, if it differs from what was recorded); returns that.
    async fn two_factor_requirement_since(
        &self,
        level: &str,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Starts delivering changes committed from now on, by this or any other
    /// process, until the store is closed.
    async fn watch_changes(&self, sink: ChangeSink) -> Result<(), StoreError>;
    /// Stops watching and closes connections.
    async fn close(&self);
}

/// One operation's writes, committed together or not at all: dropped
/// without [`WriteTx::commit`], it rolls back. The audit trail will append
/// the operation's record to it, so the record commits with what it tells.
/// A failed statement may spoil the rest of the transaction (PostgreSQL
/// refuses everything after it), so after an error, drop it.
#[async_trait]
pub trait WriteTx: Send {
    /// Fails with [`StoreError::Conflict`]`("email")` when the email is taken.
    async fn create_account(&mut self, account: &NewAccount) -> Result<Account, StoreError>;
    /// Grants or revokes; returns whether that changed anything.
    async fn set_permission(
        &mut self,
        id: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<bool, StoreError>;
    /// Returns whether the account exists.
    async fn set_enabled(&mut self, id: AccountId, enabled: bool) -> Result<bool, StoreError>;
    /// Returns whether the account exists.
    async fn set_two_factor_enabled(
        &mut self,
        id: AccountId,
        enabled: bool,
    ) -> Result<bool, StoreError>;
    /// Sets the main-password hash; returns whether the account exists.
    async fn set_password_hash(&mut self, id: AccountId, hash: &str) -> Result<bool, StoreError>;
    /// Returns whether the account exists.
    async fn set_account_name(&mut self, id: AccountId, name: &str) -> Result<bool, StoreError>;
    /// Deletes the account with its permissions, devices and sessions (the
    /// foreign keys cascade, and the triggers tell every node); returns
    /// whether it existed.
    async fn delete_account(&mut self, id: AccountId) -> Result<bool, StoreError>;
    /// Whether any enabled account holds `admin`, counting this
    /// transaction's own writes.
    async fn has_admin(&mut self) -> Result<bool, StoreError>;
    /// Whether any account exists, counting this transaction's own writes.
    async fn has_accounts(&mut self) -> Result<bool, StoreError>;
    /// Whether the account is enabled and holds `admin`, as this
    /// transaction sees it; `None`: it does not exist.
    async fn standing(&mut self, id: AccountId) -> Result<Option<(bool, bool)>, StoreError>;

    /// Fails with [`StoreError::Conflict`]`("device id")` when the id is taken.
    async fn insert_device(&mut self, device: &NewDevice) -> Result<Device, StoreError>;
    /// Returns whether the device existed.
    async fn rename_device(&mut self, id: &DeviceId, name: &DeviceName)
        -> Result<bool, StoreError>;
    /// Gives the device a new token digest, only while its expiry still is
    /// `had_expiry` (the new one was decided from it), and with `expected`
    /// only while the stored digest still is that one (compare-and-swap), so
    /// of several concurrent changes made with the same old token exactly
    /// one wins. Returns whether it replaced.
    async fn set_device_token(
        &mut self,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        had_expiry: Option<Timestamp>,
        new: &NewToken,
    ) -> Result<bool, StoreError>;
    /// Replaces the device's limits; with `had_expiry`, only while its
    /// expiry still is that (the new limits were decided from it). Returns
    /// whether it replaced.
    async fn set_device_limits(
        &mut self,
        id: &DeviceId,
        limits: &CredentialLimits,
        had_expiry: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError>;
    /// Ends the overlap of the device's previous token; returns whether
    /// there was one.
    async fn end_previous_token(&mut self, id: &DeviceId) -> Result<bool, StoreError>;
    /// Returns whether the device existed.
    async fn delete_device(&mut self, id: &DeviceId) -> Result<bool, StoreError>;

    /// Fails with [`StoreError::Conflict`]`("access id")` when the id is taken.
    async fn insert_access(&mut self, access: &NewAccess) -> Result<(), StoreError>;
    /// Gives it a new token, only while its expiry is still `read_expiry`
    /// (what the new one was decided on); returns whether it replaced.
    async fn set_access_token(
        &mut self,
        id: &AccessId,
        read_expiry: Option<Timestamp>,
        new: &NewToken,
    ) -> Result<bool, StoreError>;
    /// Replaces the limits, with `had_expiry` only while the stored expiry
    /// still is that (the new limits were decided from it). Returns whether
    /// it replaced.
    async fn set_access_limits(
        &mut self,
        id: &AccessId,
        limits: &CredentialLimits,
        had_expiry: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError>;
    /// Returns whether it existed.
    async fn set_access_enabled(
        &mut self,
        id: &AccessId,
        enabled: bool,
    ) -> Result<bool, StoreError>;
    /// Renames it and/or replaces its description (`None` keeps that one),
    /// in one statement; returns whether it existed.
    async fn set_access_details(
        &mut self,
        id: &AccessId,
        name: Option<&DeviceName>,
        description: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Ends the overlap of its previous token; returns whether there was one.
    async fn end_previous_access_token(&mut self, id: &AccessId) -> Result<bool, StoreError>;
    /// Returns whether it existed.
    async fn delete_access(&mut self, id: &AccessId) -> Result<bool, StoreError>;

    /// Stores the request unless its address already has `limit` pending,
    /// unexpired ones; returns whether it stored it. Requests from one
    /// address are counted one after the other, on any node. Fails with
    /// [`StoreError::Conflict`]`("user code")` when the user code is taken.
    async fn insert_device_authorization(
        &mut self,
        request: &NewDeviceAuthorization,
        limit: u32,
    ) -> Result<bool, StoreError>;
    /// Marks a pending, unexpired request approved by `by`, with the device
    /// made for it; false if it was not one (then roll back the device).
    async fn approve_device_authorization(
        &mut self,
        id: i64,
        by: AccountId,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Stores a new, unconfirmed TOTP secret, replacing an unconfirmed one;
    /// false (nothing written) when the account has a confirmed one.
    async fn put_unconfirmed_two_factor(
        &mut self,
        account: AccountId,
        sealed_secret: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Confirms the unconfirmed secret with the step of the code that
    /// proved it, in one conditional statement; returns whether it did.
    async fn confirm_two_factor(
        &mut self,
        account: AccountId,
        step: i64,
    ) -> Result<bool, StoreError>;
    /// Moves the last accepted step forward to `step`, in one conditional
    /// statement (`WHERE last_step < step`): of several requests with codes
    /// of the same step, on any node, exactly one gets true.
    async fn advance_two_factor_step(
        &mut self,
        account: AccountId,
        step: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes the secret and the recovery codes; returns whether there was a secret.
    async fn delete_two_factor(&mut self, account: AccountId) -> Result<bool, StoreError>;
    async fn replace_recovery_codes(
        &mut self,
        account: AccountId,
        digests: &[[u8; 32]],
    ) -> Result<(), StoreError>;
    /// Uses up a recovery code by deleting it; true only for the one
    /// request whose delete found it.
    async fn consume_recovery_code(
        &mut self,
        account: AccountId,
        digest: &[u8; 32],
    ) -> Result<bool, StoreError>;
    async fn create_pending_sign_in(
        &mut self,
        digest: &[u8; 32],
        account: AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Ends a pending sign-in that is still good (not expired, fewer than
    /// `max_failures` wrong codes), in one statement; returns its account.
    async fn take_pending_sign_in(
        &mut self,
        digest: &[u8; 32],
        now: Timestamp,
        max_failures: i64,
    ) -> Result<Option<AccountId>, StoreError>;

    async fn create_session(&mut self, session: &NewSession) -> Result<WebSession, StoreError>;
    /// Returns whether the account had that session.
    async fn delete_session(
        &mut self,
        account: AccountId,
        id: SessionId,
    ) -> Result<bool, StoreError>;
    /// Ends all of an account's web sessions, except the one with `keep`;
    /// returns how many ended.
    async fn end_sessions(
        &mut self,
        account: AccountId,
        keep: Option<&SessionDigest>,
    ) -> Result<u64, StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store a database URL names, creating it if need be, and brings
/// its schema up to date.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, true, options).await
}

/// Like [`open`], but refuses to create a new database: an admin command
/// pointed at the wrong place should say so, not quietly make an empty one.
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, false, &StoreOptions::default()).await
}

async fn open_with(
    url: &str,
    create: bool,
    options: &StoreOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, create).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url, create, options).await?))
    } else {
        Err(StoreError::Internal(format!(
            "unsupported database URL scheme {:?}: use sqlite:// or postgres://",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
