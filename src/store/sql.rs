//! The SQL every backend shares, written once over the sqlx driver. It uses
//! `$N` placeholders, which SQLite binds by number too, so one text serves
//! both; what a backend does its own way is its [`Backend`] implementation
//! (`sqlite.rs`, `postgres.rs`).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type,
};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::rows::{self, internal};
use super::{
    AccessRecord, BucketUpdate, Buckets, ChangeSink, CredentialRecord, CredentialTable,
    KeyRegistration, NewAccess, NewAccount, NewDevice, NewDeviceAuthorization, NewSession,
    NewToken, PendingSignInRecord, Serialise, Store, StoreError, TwoFactorRecord, WriteTx,
};
use crate::credential::{DeviceId, SessionDigest, TokenDigest};
use crate::domain::limits::networks_to_stored;
use crate::domain::{
    AccessAuthorisation, AccessId, Account, AccountId, CredentialLimits, Device,
    DeviceAuthorization, DeviceName, Email, LastUse, Notice, Permission, SessionId, Timestamp,
    WebSession,
};

/// An expiry as a conditional statement compares it: no expiry as -1,
/// which no stored expiry is.
fn stored_expiry(expiry: Option<Timestamp>) -> i64 {
    expiry.map_or(-1, Timestamp::millis)
}

/// What a backend does its own way: how a write is serialised, the bulk
/// statements, row locking, the change feed, and what its errors mean.
#[async_trait]
pub(super) trait Backend: Database {
    /// An ordinary write transaction (on SQLite `BEGIN IMMEDIATE`, so it
    /// never fails to upgrade a read lock halfway). Checks that must not be
    /// overtaken by another writer need `begin_admin_change`.
    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, StoreError>;

    /// A transaction that changes who may administer: such transactions,
    /// from any process, run one after the other, so each one's check sees
    /// every other one's result.
    async fn begin_admin_change(
        pool: &Pool<Self>,
    ) -> Result<Transaction<'static, Self>, StoreError>;

    /// Inserts the devices inside the caller's transaction. Fails with
    /// [`StoreError::Conflict`]`("device id")` if any id is taken.
    async fn insert_devices(
        conn: &mut Self::Connection,
        devices: &[NewDevice],
    ) -> Result<(), StoreError>;

    async fn record_last_used(
        pool: &Pool<Self>,
        table: CredentialTable,
        uses: &[(DeviceId, LastUse)],
    ) -> Result<(), StoreError>;

    /// Reads the buckets under `keys` inside a transaction from
    /// [`Backend::begin_write`], so that no other process changes them
    /// before it ends.
    async fn lock_buckets(
        conn: &mut Self::Connection,
        keys: &[String],
    ) -> Result<Buckets, StoreError>;

    /// Returns the session's notice and clears it, so that of two pages
    /// loading at once only one shows it.
    async fn take_session_notice(
        pool: &Pool<Self>,
        digest: &SessionDigest,
    ) -> Result<Notice, StoreError>;

    /// Starts the tasks that deliver changes to `sink` until `stopped`
    /// changes. Changes committed after this returns are never missed.
    async fn watch(
        pool: &Pool<Self>,
        sink: ChangeSink,
        stopped: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, StoreError>;

    /// Connection trouble is worth a retry (503); anything else is our bug (500).
    fn unavailable_or_internal(e: sqlx::Error) -> StoreError;

    /// Whether the database would take a write now: readiness must not say
    /// yes to a server whose every sign-in would fail.
    async fn probe_write(pool: &Pool<Self>) -> Result<(), StoreError>;

    /// Holds, until the transaction ends, a lock named by `key`: writers of
    /// the same key, on any node, run one after the other. (SQLite's write
    /// transaction holds the whole database already.)
    async fn lock_key(conn: &mut Self::Connection, key: &str) -> Result<(), StoreError>;

    /// How many rows a statement changed (each driver has its own result type).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// A unique key taken is a conflict the caller can report; anything else is
/// classified as usual.
pub(super) fn conflict_on<DB: Backend>(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => DB::unavailable_or_internal(e),
    }
}

/// The store on one backend: its pool, and its change feed once watched.
pub(super) struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    watcher: Mutex<Option<Watcher>>,
}

/// The running change feed: how to stop it, and its tasks.
type Watcher = (watch::Sender<bool>, Vec<JoinHandle<()>>);

impl<DB: Database> SqlStore<DB> {
    /// A store on a pool whose schema is up to date.
    pub(super) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            watcher: Mutex::new(None),
        }
    }
}

/// `string_agg` exists in PostgreSQL and in SQLite since 3.44 (sqlx bundles
/// a newer one); the order does not matter, permissions are a set.
const ACCOUNT_COLUMNS: &str = "a.id, a.email, a.name, a.enabled, a.two_factor_enabled, a.created_at,
    (SELECT string_agg(permission, ',') FROM account_permissions p WHERE p.account_id = a.id) AS permissions";

const DEVICE_COLUMNS: &str = "id, account_id, name, device_type, created_at,
    last_used_at, last_used_ip, last_used_user_agent, recent_ips, scope, expires_at,
    idle_expiry_days, allowed_networks, denied_networks, token_issued_at, previous_token_until";

const ACCESS_COLUMNS: &str = "id, name, description, created_by, created_at, enabled,
    token_issued_at, previous_token_until, scope, expires_at, idle_expiry_days, allowed_networks,
    denied_networks, last_used_at, last_used_ip, last_used_user_agent, recent_ips";

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
{
    async fn begin_write(&self, serialise: Serialise) -> Result<Box<dyn WriteTx>, StoreError> {
        let tx = match serialise {
            Serialise::Ordinary => DB::begin_write(&self.pool).await?,
            Serialise::Administrators => DB::begin_admin_change(&self.pool).await?,
        };
        Ok(Box::new(SqlTx { tx }))
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1");
        sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::account(&row))
            .transpose()
    }

    async fn account_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.email = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
        else {
            return Ok(None);
        };
        let hash: String = row.try_get("password_hash").map_err(internal)?;
        Ok(Some((rows::account(&row)?, hash)))
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY a.email");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .iter()
            .map(rows::account)
            .collect()
    }

    async fn has_admin(&self) -> Result<bool, StoreError> {
        has_admin(&self.pool).await
    }

    async fn has_accounts(&self) -> Result<bool, StoreError> {
        has_accounts(&self.pool).await
    }

    async fn insert_devices(&self, devices: &[NewDevice]) -> Result<(), StoreError> {
        let mut tx = DB::begin_write(&self.pool).await?;
        DB::insert_devices(&mut tx, devices).await?;
        tx.commit().await.map_err(DB::unavailable_or_internal)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::device(&row))
            .transpose()
    }

    async fn devices(&self, account: Option<AccountId>) -> Result<Vec<Device>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE $1 IS NULL OR account_id = $1
             ORDER BY created_at, id"
        );
        sqlx::query(&sql)
            .bind(account.map(|a| a.0))
            .fetch_all(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .iter()
            .map(rows::device)
            .collect()
    }

    async fn credential(&self, id: &DeviceId) -> Result<Option<CredentialRecord>, StoreError> {
        sqlx::query(
            "SELECT d.id, d.account_id, d.name, d.device_type, d.created_at, d.last_used_at,
               d.last_used_ip, d.last_used_user_agent, d.recent_ips, d.scope, d.expires_at,
               d.idle_expiry_days, d.allowed_networks, d.denied_networks, d.token_issued_at,
               d.previous_token_until, d.previous_token_digest, d.token_digest, a.enabled,
               a.email, a.name AS account_name,
               (SELECT string_agg(permission, ',') FROM account_permissions p
                WHERE p.account_id = d.account_id) AS permissions
             FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?
        .map(|row| rows::credential(&row))
        .transpose()
    }

    async fn record_last_used(
        &self,
        table: CredentialTable,
        uses: &[(DeviceId, LastUse)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        DB::record_last_used(&self.pool, table, uses).await
    }

    async fn access(&self, id: &AccessId) -> Result<Option<AccessAuthorisation>, StoreError> {
        let sql = format!("SELECT {ACCESS_COLUMNS} FROM access_authorisations WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::access(&row))
            .transpose()
    }

    async fn accesses(&self) -> Result<Vec<AccessAuthorisation>, StoreError> {
        let sql =
            format!("SELECT {ACCESS_COLUMNS} FROM access_authorisations ORDER BY created_at, id");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .iter()
            .map(rows::access)
            .collect()
    }

    async fn access_credential(&self, id: &AccessId) -> Result<Option<AccessRecord>, StoreError> {
        let sql = format!(
            "SELECT {ACCESS_COLUMNS}, token_digest, previous_token_digest
             FROM access_authorisations WHERE id = $1"
        );
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::access_credential(&row))
            .transpose()
    }

    async fn update_buckets(
        &self,
        keys: &[String],
        update: BucketUpdate<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = DB::begin_write(&self.pool).await?;
        let found = DB::lock_buckets(&mut tx, keys).await?;
        let Some(changed) = update(found) else {
            tx.rollback().await.map_err(DB::unavailable_or_internal)?;
            return Ok(false);
        };
        for (key, bucket) in changed {
            let Some((tokens, updated_at)) = bucket else {
                sqlx::query("DELETE FROM throttle_buckets WHERE key = $1")
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(DB::unavailable_or_internal)?;
                continue;
            };
            sqlx::query(
                "INSERT INTO throttle_buckets (key, tokens, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,
                     updated_at = excluded.updated_at",
            )
            .bind(key.as_str())
            .bind(tokens)
            .bind(updated_at)
            .execute(&mut *tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        }
        tx.commit().await.map_err(DB::unavailable_or_internal)?;
        Ok(true)
    }

    async fn buckets(&self, keys: &[String]) -> Result<Buckets, StoreError> {
        let mut found = Buckets::new();
        for key in keys {
            let row = sqlx::query("SELECT tokens, updated_at FROM throttle_buckets WHERE key = $1")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(DB::unavailable_or_internal)?;
            if let Some(row) = row {
                let tokens: f64 = row.try_get("tokens").map_err(internal)?;
                // NaN marks a row another node is creating: no bucket yet.
                if !tokens.is_nan() {
                    found.insert(
                        key.clone(),
                        (tokens, row.try_get("updated_at").map_err(internal)?),
                    );
                }
            }
        }
        Ok(found)
    }

    async fn prune_buckets(
        &self,
        updated_before: i64,
        keep_prefix: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM throttle_buckets
             WHERE updated_at < $1 AND substr(key, 1, length($2)) <> $2",
        )
        .bind(updated_before)
        .bind(keep_prefix)
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    async fn delete_buckets_with_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM throttle_buckets WHERE substr(key, 1, length($1)) = $1")
                .bind(prefix)
                .execute(&self.pool)
                .await
                .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    async fn register_server_key(
        &self,
        key_id: &str,
        check_value: &[u8; 32],
        now: Timestamp,
    ) -> Result<KeyRegistration, StoreError> {
        // Read first: a node on a read-only database must still start (and
        // report itself not ready) when the key is already recorded.
        let select = "SELECT key_id, check_value FROM server_key WHERE slot = 1";
        let found = sqlx::query(select)
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        let row = match found {
            Some(row) => row,
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO server_key (slot, key_id, check_value, created_at)
                     VALUES (1, $1, $2, $3) ON CONFLICT (slot) DO NOTHING",
                )
                .bind(key_id)
                .bind(check_value.as_slice())
                .bind(now.millis())
                .execute(&self.pool)
                .await
                .map_err(DB::unavailable_or_internal)?;
                if DB::rows_affected(&inserted) == 1 {
                    return Ok(KeyRegistration::Registered);
                }
                sqlx::query(select)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(DB::unavailable_or_internal)?
            }
        };
        let stored_id: String = row.try_get("key_id").map_err(internal)?;
        let stored_check: Vec<u8> = row.try_get("check_value").map_err(internal)?;
        let same = subtle::ConstantTimeEq::ct_eq(stored_check.as_slice(), check_value.as_slice());
        Ok(if bool::from(same) && stored_id == key_id {
            KeyRegistration::Matches
        } else {
            KeyRegistration::Differs { stored_id }
        })
    }

    async fn spend_sign_in_form(
        &self,
        nonce: &[u8; 16],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO spent_sign_in_forms (nonce, expires_at) VALUES ($1, $2)
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce.as_slice())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn prune_spent_sign_in_forms(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM spent_sign_in_forms WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }
    // ----- two-factor authentication -----

    async fn two_factor(&self, account: AccountId) -> Result<Option<TwoFactorRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT secret, last_step, confirmed FROM two_factor_secrets WHERE account_id = $1",
        )
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        row.map(|row| {
            Ok(TwoFactorRecord {
                sealed_secret: row.try_get(0).map_err(internal)?,
                last_step: row.try_get(1).map_err(internal)?,
                confirmed: row.try_get(2).map_err(internal)?,
            })
        })
        .transpose()
    }

    async fn some_two_factor_secret(&self) -> Result<Option<(AccountId, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, secret FROM two_factor_secrets ORDER BY account_id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        row.map(|row| {
            Ok((
                AccountId(row.try_get(0).map_err(internal)?),
                row.try_get(1).map_err(internal)?,
            ))
        })
        .transpose()
    }

    async fn recovery_codes_left(&self, account: AccountId) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE account_id = $1")
            .bind(account.0)
            .fetch_one(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)
    }

    async fn pending_sign_in(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<PendingSignInRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, expires_at, failures FROM pending_sign_ins WHERE id_hash = $1",
        )
        .bind(digest.as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        row.map(|row| {
            Ok(PendingSignInRecord {
                account_id: AccountId(row.try_get(0).map_err(internal)?),
                expires_at: Timestamp::from_millis(row.try_get(1).map_err(internal)?),
                failures: row.try_get(2).map_err(internal)?,
            })
        })
        .transpose()
    }

    async fn count_pending_sign_in_failure(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "UPDATE pending_sign_ins SET failures = failures + 1 WHERE id_hash = $1 RETURNING failures",
        )
        .bind(digest.as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)
    }

    async fn delete_pending_sign_in(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_sign_ins WHERE id_hash = $1")
            .bind(digest.as_slice())
            .execute(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(())
    }

    async fn prune_pending_sign_ins(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM pending_sign_ins WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    async fn two_factor_requirement_since(
        &self,
        level: &str,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        // Read first: a node on a read-only database must still start when
        // the level is recorded already.
        let found = sqlx::query("SELECT level, since FROM two_factor_requirement WHERE slot = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        if let Some(row) = found {
            let stored: String = row.try_get(0).map_err(internal)?;
            if stored == level {
                return Ok(Timestamp::from_millis(row.try_get(1).map_err(internal)?));
            }
        }
        sqlx::query(
            "INSERT INTO two_factor_requirement (slot, level, since) VALUES (1, $1, $2)
             ON CONFLICT (slot) DO UPDATE SET level = excluded.level, since = excluded.since
             WHERE two_factor_requirement.level <> excluded.level",
        )
        .bind(level)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        let since: i64 =
            sqlx::query_scalar("SELECT since FROM two_factor_requirement WHERE slot = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(DB::unavailable_or_internal)?;
        Ok(Timestamp::from_millis(since))
    }

    // ----- web sessions -----

    async fn session(&self, digest: &SessionDigest) -> Result<Option<WebSession>, StoreError> {
        let sql = format!(
            "SELECT {} FROM web_sessions WHERE id_hash = $1",
            rows::SESSION_COLUMNS
        );
        sqlx::query(&sql)
            .bind(&digest.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::session(&row))
            .transpose()
    }

    async fn touch_session(&self, digest: &SessionDigest, at: Timestamp) -> Result<(), StoreError> {
        // The condition keeps last-seen from moving backwards when requests
        // finish out of order, and spares a write when nothing changes.
        sqlx::query(
            "UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1",
        )
        .bind(at.millis())
        .bind(&digest.0[..])
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(())
    }

    async fn set_session_notice(
        &self,
        digest: &SessionDigest,
        notice: &Notice,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE web_sessions SET flash = $1, reveal = $2 WHERE id_hash = $3")
            .bind(notice.flash.as_deref())
            .bind(notice.reveal.as_deref())
            .bind(&digest.0[..])
            .execute(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(())
    }

    async fn take_session_notice(&self, digest: &SessionDigest) -> Result<Notice, StoreError> {
        DB::take_session_notice(&self.pool, digest).await
    }

    async fn sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>, StoreError> {
        let sql = format!(
            "SELECT {} FROM web_sessions WHERE account_id = $1
             ORDER BY last_seen_at DESC, id DESC",
            rows::SESSION_COLUMNS
        );
        sqlx::query(&sql)
            .bind(account.0)
            .fetch_all(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .iter()
            .map(rows::session)
            .collect()
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM web_sessions WHERE last_seen_at < $1 OR created_at < $2")
                .bind(idle_before.millis())
                .bind(created_before.millis())
                .execute(&self.pool)
                .await
                .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    // ----- app sign-in requests -----

    async fn device_authorization(
        &self,
        device_code_digest: &[u8; 32],
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {} FROM device_authorizations WHERE device_code_hash = $1",
            rows::DEVICE_AUTHORIZATION_COLUMNS
        );
        sqlx::query(&sql)
            .bind(device_code_digest.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::device_authorization(&row))
            .transpose()
    }

    async fn device_authorization_by_user_code(
        &self,
        user_code_digest: &[u8; 32],
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {} FROM device_authorizations WHERE user_code_hash = $1",
            rows::DEVICE_AUTHORIZATION_COLUMNS
        );
        sqlx::query(&sql)
            .bind(user_code_digest.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?
            .map(|row| rows::device_authorization(&row))
            .transpose()
    }

    async fn poll_device_authorization(
        &self,
        id: i64,
        now: Timestamp,
        step: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        // One statement each: of polls arriving together, those that find
        // the interval not yet passed are told to slow down.
        let counted = sqlx::query(
            "UPDATE device_authorizations SET last_polled_at = $2
             WHERE id = $1 AND status = 'pending'
               AND (last_polled_at IS NULL OR last_polled_at + interval_secs * 1000 <= $2)",
        )
        .bind(id)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        if DB::rows_affected(&counted) == 1 {
            return Ok(None);
        }
        let step = i64::try_from(step.as_secs()).unwrap_or(i64::MAX);
        let interval: Option<i64> = sqlx::query_scalar(
            "UPDATE device_authorizations
             SET interval_secs = interval_secs + $2, last_polled_at = $3
             WHERE id = $1 AND status = 'pending' RETURNING interval_secs",
        )
        .bind(id)
        .bind(step)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        // No longer pending (decided meanwhile): the next poll will tell.
        Ok(interval.map(|i| Duration::from_secs(u64::try_from(i).unwrap_or(0))))
    }

    async fn claim_device_authorization(
        &self,
        id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // SQLite runs it under the write lock; PostgreSQL (READ COMMITTED)
        // re-checks the status of a row a concurrent claim changed.
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = 'claimed'
             WHERE id = $1 AND status = 'approved' AND expires_at > $2",
        )
        .bind(id)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn deny_device_authorization(
        &self,
        id: i64,
        by: AccountId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = 'denied', account_id = $2
             WHERE id = $1 AND status = 'pending' AND expires_at > $3",
        )
        .bind(id)
        .bind(by.0)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn prune_device_authorizations(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM device_authorizations WHERE expires_at < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        DB::probe_write(&self.pool).await
    }

    async fn watch_changes(&self, sink: ChangeSink) -> Result<(), StoreError> {
        let (stop, stopped) = watch::channel(false);
        let tasks = DB::watch(&self.pool, sink, stopped).await?;
        if let Some((old_stop, old_tasks)) = self.watcher.lock().await.replace((stop, tasks)) {
            let _ = old_stop.send(true);
            for task in old_tasks {
                let _ = task.await;
            }
        }
        Ok(())
    }

    async fn close(&self) {
        if let Some((stop, tasks)) = self.watcher.lock().await.take() {
            let _ = stop.send(true);
            for task in tasks {
                let _ = task.await;
            }
        }
        self.pool.close().await;
    }
}

async fn has_admin<'e, DB, E>(executor: E) -> Result<bool, StoreError>
where
    DB: Backend,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
{
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts a JOIN account_permissions p
         ON p.account_id = a.id WHERE p.permission = 'admin' AND a.enabled)",
    )
    .fetch_one(executor)
    .await
    .map_err(DB::unavailable_or_internal)
}

async fn has_accounts<'e, DB, E>(executor: E) -> Result<bool, StoreError>
where
    DB: Backend,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
{
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts)")
        .fetch_one(executor)
        .await
        .map_err(DB::unavailable_or_internal)
}

/// One operation's write transaction on one backend.
struct SqlTx<DB: Database> {
    tx: Transaction<'static, DB>,
}

/// What device passwords and API access authorisations do the same way.
impl<DB> SqlTx<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
{
    /// With `had_expiry`, only while the stored expiry still is that one
    /// (the new limits were decided from it).
    async fn set_limits(
        &mut self,
        table: CredentialTable,
        id: &DeviceId,
        limits: &CredentialLimits,
        had_expiry: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError> {
        let allowed = networks_to_stored(&limits.allowed_networks);
        let denied = networks_to_stored(&limits.denied_networks);
        let sql = format!(
            "UPDATE {} SET scope = $1, expires_at = $2, idle_expiry_days = $3,
                 allowed_networks = $4, denied_networks = $5
             WHERE id = $6 AND ($7 IS NULL OR COALESCE(expires_at, -1) = $7)",
            table.name()
        );
        let done = sqlx::query(&sql)
            .bind(limits.scope.as_str())
            .bind(limits.expires_at.map(Timestamp::millis))
            .bind(limits.idle_expiry_days.map(i64::from))
            .bind(allowed.as_deref())
            .bind(denied.as_deref())
            .bind(id.as_str())
            .bind(had_expiry.map(stored_expiry))
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn end_previous(
        &mut self,
        table: CredentialTable,
        id: &DeviceId,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {} SET previous_token_digest = NULL, previous_token_until = NULL
             WHERE id = $1 AND previous_token_digest IS NOT NULL",
            table.name()
        );
        let done = sqlx::query(&sql)
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// With `expected`, only while that is the stored token digest; with
    /// `read_expiry`, only while that is the stored expiry.
    async fn set_token(
        &mut self,
        table: CredentialTable,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        read_expiry: Option<Option<Timestamp>>,
        new: &NewToken,
    ) -> Result<bool, StoreError> {
        // One statement: SQLite runs it under the write lock, and PostgreSQL
        // (READ COMMITTED) re-checks the condition against a row a concurrent
        // update changed meanwhile. The right-hand sides see the old row, so
        // the replaced token is the one that overlaps.
        let sql = format!(
            "UPDATE {} SET token_digest = $1, token_issued_at = $4, expires_at = $5,
                 previous_token_digest = CASE WHEN $6 IS NULL THEN NULL ELSE token_digest END,
                 previous_token_until = $6
             WHERE id = $2 AND ($3 IS NULL OR token_digest = $3)
               AND ($7 IS NULL OR COALESCE(expires_at, -1) = $7)",
            table.name()
        );
        let done = sqlx::query(&sql)
            .bind(&new.digest.0[..])
            .bind(id.as_str())
            .bind(expected.map(|d| &d.0[..]))
            .bind(new.issued_at.millis())
            .bind(new.expires_at.map(Timestamp::millis))
            .bind(new.previous_until.map(Timestamp::millis))
            .bind(read_expiry.map(stored_expiry))
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }
}

#[async_trait]
impl<DB> WriteTx for SqlTx<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
{
    async fn create_account(&mut self, account: &NewAccount) -> Result<Account, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (email, name, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(account.email.as_str())
        .bind(account.name.as_str())
        .bind(account.password_hash.as_str())
        .bind(account.created_at.millis())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| conflict_on::<DB>(e, "email"))?;
        for permission in account.permissions.iter() {
            sqlx::query("INSERT INTO account_permissions (account_id, permission) VALUES ($1, $2)")
                .bind(id)
                .bind(permission.as_str())
                .execute(&mut *self.tx)
                .await
                .map_err(DB::unavailable_or_internal)?;
        }
        Ok(Account {
            id: AccountId(id),
            email: account.email.clone(),
            name: account.name.clone(),
            permissions: account.permissions,
            enabled: true,
            two_factor_enabled: false,
            created_at: account.created_at,
        })
    }

    async fn set_permission(
        &mut self,
        id: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<bool, StoreError> {
        let sql = if granted {
            "INSERT INTO account_permissions (account_id, permission) VALUES ($1, $2)
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM account_permissions WHERE account_id = $1 AND permission = $2"
        };
        let done = sqlx::query(sql)
            .bind(id.0)
            .bind(permission.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_enabled(&mut self, id: AccountId, enabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_two_factor_enabled(
        &mut self,
        id: AccountId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET two_factor_enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_password_hash(&mut self, id: AccountId, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_account_name(&mut self, id: AccountId, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_account(&mut self, id: AccountId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn has_admin(&mut self) -> Result<bool, StoreError> {
        has_admin(&mut *self.tx).await
    }

    async fn standing(&mut self, id: AccountId) -> Result<Option<(bool, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.enabled, EXISTS (SELECT 1 FROM account_permissions p
                 WHERE p.account_id = a.id AND p.permission = 'admin') AS admin
             FROM accounts a WHERE a.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        row.map(|row| {
            Ok((
                row.try_get::<bool, _>(0).map_err(internal)?,
                row.try_get::<bool, _>(1).map_err(internal)?,
            ))
        })
        .transpose()
    }

    async fn has_accounts(&mut self) -> Result<bool, StoreError> {
        has_accounts(&mut *self.tx).await
    }

    async fn insert_device(&mut self, device: &NewDevice) -> Result<Device, StoreError> {
        DB::insert_devices(&mut self.tx, std::slice::from_ref(device)).await?;
        if device.limits != CredentialLimits::default() {
            self.set_device_limits(&device.id, &device.limits, None)
                .await?;
        }
        Ok(device.inserted())
    }

    async fn set_device_limits(
        &mut self,
        id: &DeviceId,
        limits: &CredentialLimits,
        had_expiry: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError> {
        self.set_limits(CredentialTable::Devices, id, limits, had_expiry)
            .await
    }

    async fn end_previous_token(&mut self, id: &DeviceId) -> Result<bool, StoreError> {
        self.end_previous(CredentialTable::Devices, id).await
    }

    async fn insert_access(&mut self, access: &NewAccess) -> Result<(), StoreError> {
        let allowed = networks_to_stored(&access.limits.allowed_networks);
        let denied = networks_to_stored(&access.limits.denied_networks);
        sqlx::query(
            "INSERT INTO access_authorisations (id, name, description, created_by, created_at,
                 token_digest, token_issued_at, scope, expires_at, idle_expiry_days,
                 allowed_networks, denied_networks)
             VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8, $9, $10, $11)",
        )
        .bind(access.id.as_str())
        .bind(access.name.as_str())
        .bind(access.description.as_str())
        .bind(access.created_by.as_deref())
        .bind(access.created_at.millis())
        .bind(&access.token_digest.0[..])
        .bind(access.limits.scope.as_str())
        .bind(access.limits.expires_at.map(Timestamp::millis))
        .bind(access.limits.idle_expiry_days.map(i64::from))
        .bind(allowed.as_deref())
        .bind(denied.as_deref())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_on::<DB>(e, "access id"))?;
        Ok(())
    }

    async fn set_access_token(
        &mut self,
        id: &AccessId,
        read_expiry: Option<Timestamp>,
        new: &NewToken,
    ) -> Result<bool, StoreError> {
        self.set_token(CredentialTable::Access, id, None, Some(read_expiry), new)
            .await
    }

    async fn set_access_limits(
        &mut self,
        id: &AccessId,
        limits: &CredentialLimits,
        had_expiry: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError> {
        self.set_limits(CredentialTable::Access, id, limits, had_expiry)
            .await
    }

    async fn set_access_enabled(
        &mut self,
        id: &AccessId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE access_authorisations SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_access_details(
        &mut self,
        id: &AccessId,
        name: Option<&DeviceName>,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE access_authorisations
             SET name = COALESCE($1, name), description = COALESCE($2, description)
             WHERE id = $3",
        )
        .bind(name.map(DeviceName::as_str))
        .bind(description)
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn end_previous_access_token(&mut self, id: &AccessId) -> Result<bool, StoreError> {
        self.end_previous(CredentialTable::Access, id).await
    }

    async fn delete_access(&mut self, id: &AccessId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM access_authorisations WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn rename_device(
        &mut self,
        id: &DeviceId,
        name: &DeviceName,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE devices SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn set_device_token(
        &mut self,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        had_expiry: Option<Timestamp>,
        new: &NewToken,
    ) -> Result<bool, StoreError> {
        self.set_token(
            CredentialTable::Devices,
            id,
            expected,
            Some(had_expiry),
            new,
        )
        .await
    }

    async fn delete_device(&mut self, id: &DeviceId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn put_unconfirmed_two_factor(
        &mut self,
        account: AccountId,
        sealed_secret: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO two_factor_secrets (account_id, secret, last_step, confirmed, created_at)
             VALUES ($1, $2, 0, FALSE, $3)
             ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at
             WHERE two_factor_secrets.confirmed = FALSE",
        )
        .bind(account.0)
        .bind(sealed_secret)
        .bind(now.millis())
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn confirm_two_factor(
        &mut self,
        account: AccountId,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE two_factor_secrets SET confirmed = TRUE, last_step = $2
             WHERE account_id = $1 AND confirmed = FALSE AND last_step < $2",
        )
        .bind(account.0)
        .bind(step)
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn advance_two_factor_step(
        &mut self,
        account: AccountId,
        step: i64,
    ) -> Result<bool, StoreError> {
        // One statement: SQLite runs it under the write lock, and PostgreSQL
        // (READ COMMITTED) re-checks the condition against a row another
        // transaction moved forward meanwhile, so only one request wins.
        let done = sqlx::query(
            "UPDATE two_factor_secrets SET last_step = $2
             WHERE account_id = $1 AND confirmed = TRUE AND last_step < $2",
        )
        .bind(account.0)
        .bind(step)
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn delete_two_factor(&mut self, account: AccountId) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        let done = sqlx::query("DELETE FROM two_factor_secrets WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn replace_recovery_codes(
        &mut self,
        account: AccountId,
        digests: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        for digest in digests {
            sqlx::query("INSERT INTO recovery_codes (account_id, digest) VALUES ($1, $2)")
                .bind(account.0)
                .bind(digest.as_slice())
                .execute(&mut *self.tx)
                .await
                .map_err(DB::unavailable_or_internal)?;
        }
        Ok(())
    }

    async fn consume_recovery_code(
        &mut self,
        account: AccountId,
        digest: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1 AND digest = $2")
            .bind(account.0)
            .bind(digest.as_slice())
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn create_pending_sign_in(
        &mut self,
        digest: &[u8; 32],
        account: AccountId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_sign_ins (id_hash, account_id, created_at, expires_at, failures)
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(digest.as_slice())
        .bind(account.0)
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(())
    }

    async fn take_pending_sign_in(
        &mut self,
        digest: &[u8; 32],
        now: Timestamp,
        max_failures: i64,
    ) -> Result<Option<AccountId>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "DELETE FROM pending_sign_ins WHERE id_hash = $1 AND expires_at > $2 AND failures < $3
             RETURNING account_id",
        )
        .bind(digest.as_slice())
        .bind(now.millis())
        .bind(max_failures)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(id.map(AccountId))
    }

    async fn insert_device_authorization(
        &mut self,
        request: &NewDeviceAuthorization,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let address = request
            .requested_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        DB::lock_key(
            &mut self.tx,
            &format!("device authorizations from {address}"),
        )
        .await?;
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM device_authorizations
             WHERE COALESCE(requested_ip, '') = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(address.as_str())
        .bind(request.created_at.millis())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        if pending >= i64::from(limit) {
            return Ok(false);
        }
        let ip = request.requested_ip.map(|ip| ip.to_string());
        sqlx::query(
            "INSERT INTO device_authorizations
               (device_code_hash, user_code_hash, device_name, device_type, token_digest,
                requested_ip, requested_user_agent, created_at, expires_at, interval_secs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(request.device_code_digest.as_slice())
        .bind(request.user_code_digest.as_slice())
        .bind(request.device_name.as_str())
        .bind(request.device_type.as_str())
        .bind(&request.token_digest.0[..])
        .bind(ip.as_deref())
        .bind(request.requested_user_agent.as_deref())
        .bind(request.created_at.millis())
        .bind(request.expires_at.millis())
        .bind(i64::try_from(request.interval.as_secs()).unwrap_or(i64::MAX))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_on::<DB>(e, "user code"))?;
        Ok(true)
    }

    async fn approve_device_authorization(
        &mut self,
        id: i64,
        by: AccountId,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET status = 'approved', account_id = $2, device_id = $3
             WHERE id = $1 AND status = 'pending' AND expires_at > $4",
        )
        .bind(id)
        .bind(by.0)
        .bind(device.as_str())
        .bind(now.millis())
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn create_session(&mut self, session: &NewSession) -> Result<WebSession, StoreError> {
        let ip = session.ip.map(|ip| ip.to_string());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO web_sessions
               (id_hash, account_id, csrf_secret, created_at, last_seen_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
        )
        .bind(&session.digest.0[..])
        .bind(session.account_id.0)
        .bind(session.csrf.as_bytes())
        .bind(session.created_at.millis())
        .bind(ip.as_deref())
        .bind(session.user_agent.as_deref())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(session.created(SessionId(id)))
    }

    async fn delete_session(
        &mut self,
        account: AccountId,
        id: SessionId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND id = $2")
            .bind(account.0)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn end_sessions(
        &mut self,
        account: AccountId,
        keep: Option<&SessionDigest>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM web_sessions WHERE account_id = $1 AND ($2 IS NULL OR id_hash <> $2)",
        )
        .bind(account.0)
        .bind(keep.map(|d| &d.0[..]))
        .execute(&mut *self.tx)
        .await
        .map_err(DB::unavailable_or_internal)?;
        Ok(DB::rows_affected(&done))
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(DB::unavailable_or_internal)
    }
}
