//! PostgreSQL: the store for several nodes. Credential changes reach every
//! node through `LISTEN/NOTIFY`, sent by triggers, so no writer can forget.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Row};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::rows::{self, internal};
use super::{
    AdminGuard, BucketUpdate, Buckets, ChangeSink, CredentialChange, CredentialRecord, NewAccount,
    NewDevice, NewSession, Store, StoreError, StoreOptions,
};
use crate::credential::{DeviceId, SessionDigest, TokenDigest};
use crate::domain::{
    Account, AccountId, Device, DeviceName, Email, LastUse, Notice, Permission, SessionId,
    Timestamp, WebSession,
};

const CHANNEL: &str = "latchkey_credentials";
/// The advisory lock every change of permissions or enabled state holds
/// (an arbitrary constant: "latchkey admins").
const ADMIN_LOCK: i64 = 0x6c6b_6164_6d69_6e73;
/// Each node announces itself on the channel this often, so a listener that
/// hears nothing for [`SILENCE_LIMIT`] knows its connection is gone, even a
/// half-open one that TCP would take minutes to notice.
const HEARTBEAT: Duration = Duration::from_millis(1000);
const SILENCE_LIMIT: Duration = Duration::from_millis(3000);
/// Wait between attempts to get the change feed back.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub struct PgStore {
    pool: PgPool,
    watcher: Mutex<Option<Watcher>>,
}

/// The running change feed: how to stop it, and its tasks.
type Watcher = (watch::Sender<bool>, Vec<JoinHandle<()>>);

const ACCOUNT_COLUMNS: &str = "a.id, a.email, a.name, a.enabled, a.two_factor_enabled, a.created_at,
    (SELECT string_agg(permission, ',') FROM account_permissions p WHERE p.account_id = a.id) AS permissions";

const DEVICE_COLUMNS: &str = "id, account_id, name, device_type, created_at,
    last_used_at, last_used_ip, last_used_user_agent";

impl PgStore {
    /// Connects; with `create`, makes the database first if it does not exist.
    pub async fn open(url: &str, create: bool, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("latchkey")
            // A query stuck behind a lock must fail, not hold a request forever.
            .options([("statement_timeout", "10s"), ("lock_timeout", "5s")])
            .disable_statement_logging();
        let exists = Postgres::database_exists(url)
            .await
            .map_err(unavailable_or_internal)?;
        if !exists {
            if !create {
                return Err(StoreError::Internal(format!(
                    "there is no database {:?} on the PostgreSQL server; check --database-url (`latchkey serve` creates it)",
                    connect.get_database().unwrap_or_default()
                )));
            }
            match Postgres::create_database(url).await {
                Ok(()) => {}
                // Another node created it at the same moment.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(unavailable_or_internal(e)),
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(unavailable_or_internal)?;
        // sqlx holds an advisory lock while migrating, so nodes starting
        // together do not race.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        Ok(Self {
            pool,
            watcher: Mutex::new(None),
        })
    }

    /// A transaction that changes who may administer: it holds the
    /// administrators' advisory lock until it ends, so two such changes on
    /// any nodes run one after the other and each sees the other's result.
    async fn begin_admin_change(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable_or_internal)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADMIN_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(tx)
    }

    async fn execute_for_account<'q, T>(
        &self,
        sql: &'q str,
        value: T,
        id: AccountId,
    ) -> Result<(), StoreError>
    where
        T: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + 'q,
    {
        sqlx::query(sql)
            .bind(value)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable_or_internal)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (email, name, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(account.email.as_str())
        .bind(&account.name)
        .bind(&account.password_hash)
        .bind(account.created_at.millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_on(e, "email"))?;
        for permission in account.permissions.iter() {
            sqlx::query("INSERT INTO account_permissions (account_id, permission) VALUES ($1, $2)")
                .bind(id)
                .bind(permission.as_str())
                .execute(&mut *tx)
                .await
                .map_err(unavailable_or_internal)?;
        }
        tx.commit().await.map_err(unavailable_or_internal)?;
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

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1");
        sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable_or_internal)?
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
            .map_err(unavailable_or_internal)?
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
            .map_err(unavailable_or_internal)?
            .iter()
            .map(rows::account)
            .collect()
    }

    async fn set_permission(
        &self,
        id: AccountId,
        permission: Permission,
        granted: bool,
        guard: AdminGuard,
    ) -> Result<bool, StoreError> {
        let sql = if granted {
            "INSERT INTO account_permissions (account_id, permission) VALUES ($1, $2)
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM account_permissions WHERE account_id = $1 AND permission = $2"
        };
        let mut tx = self.begin_admin_change().await?;
        sqlx::query(sql)
            .bind(id.0)
            .bind(permission.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        finish_guarded(tx, guard).await
    }

    async fn set_enabled(
        &self,
        id: AccountId,
        enabled: bool,
        guard: AdminGuard,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_admin_change().await?;
        sqlx::query("UPDATE accounts SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        if !enabled {
            end_sessions(&mut tx, id, None).await?;
        }
        finish_guarded(tx, guard).await
    }

    async fn set_two_factor_enabled(&self, id: AccountId, enabled: bool) -> Result<(), StoreError> {
        self.execute_for_account(
            "UPDATE accounts SET two_factor_enabled = $1 WHERE id = $2",
            enabled,
            id,
        )
        .await
    }

    async fn set_password_hash(
        &self,
        id: AccountId,
        hash: &str,
        keep: Option<&SessionDigest>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable_or_internal)?;
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        end_sessions(&mut tx, id, keep).await?;
        tx.commit().await.map_err(unavailable_or_internal)
    }

    async fn set_account_name(&self, id: AccountId, name: &str) -> Result<(), StoreError> {
        self.execute_for_account("UPDATE accounts SET name = $1 WHERE id = $2", name, id)
            .await
    }

    async fn has_admin(&self) -> Result<bool, StoreError> {
        has_admin(&self.pool).await
    }

    async fn insert_device(&self, device: &NewDevice) -> Result<Device, StoreError> {
        self.insert_devices(std::slice::from_ref(device)).await?;
        Ok(device.inserted())
    }

    async fn insert_devices(&self, devices: &[NewDevice]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable_or_internal)?;
        // Arrays keep each statement's parameter count fixed.
        for chunk in devices.chunks(10_000) {
            let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
            let accounts: Vec<i64> = chunk.iter().map(|d| d.account_id.0).collect();
            let names: Vec<&str> = chunk.iter().map(|d| d.name.as_str()).collect();
            let types: Vec<&str> = chunk.iter().map(|d| d.device_type.as_str()).collect();
            let digests: Vec<&[u8]> = chunk.iter().map(|d| &d.token_digest.0[..]).collect();
            let created: Vec<i64> = chunk.iter().map(|d| d.created_at.millis()).collect();
            sqlx::query(
                "INSERT INTO devices (id, account_id, name, device_type, token_digest, created_at)
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[],
                                      $5::BYTEA[], $6::BIGINT[])",
            )
            .bind(&ids)
            .bind(&accounts)
            .bind(&names)
            .bind(&types)
            .bind(&digests)
            .bind(&created)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on(e, "device id"))?;
        }
        tx.commit().await.map_err(unavailable_or_internal)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable_or_internal)?
            .map(|row| rows::device(&row))
            .transpose()
    }

    async fn devices(&self, account: Option<AccountId>) -> Result<Vec<Device>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE $1::BIGINT IS NULL OR account_id = $1
             ORDER BY created_at, id"
        );
        sqlx::query(&sql)
            .bind(account.map(|a| a.0))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable_or_internal)?
            .iter()
            .map(rows::device)
            .collect()
    }

    async fn rename_device(&self, id: &DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE devices SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_device_token(
        &self,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        digest: &TokenDigest,
    ) -> Result<bool, StoreError> {
        // One statement: under READ COMMITTED a concurrent update of the row
        // makes this one re-check the condition against the new digest.
        let done = sqlx::query(
            "UPDATE devices SET token_digest = $1
             WHERE id = $2 AND ($3::BYTEA IS NULL OR token_digest = $3)",
        )
        .bind(&digest.0[..])
        .bind(id.as_str())
        .bind(expected.map(|d| &d.0[..]))
        .execute(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn credential(&self, id: &DeviceId) -> Result<Option<CredentialRecord>, StoreError> {
        sqlx::query(
            "SELECT d.id, d.account_id, d.name, d.device_type, d.created_at, d.last_used_at,
               d.last_used_ip, d.last_used_user_agent, d.token_digest, a.enabled,
               (SELECT string_agg(permission, ',') FROM account_permissions p
                WHERE p.account_id = d.account_id) AS permissions
             FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable_or_internal)?
        .map(|row| rows::credential(&row))
        .transpose()
    }

    async fn record_last_used(&self, uses: &[(DeviceId, LastUse)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch; the condition keeps the newest
        // use when nodes flush out of order.
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let ats: Vec<i64> = uses.iter().map(|(_, u)| u.at.millis()).collect();
        let ips: Vec<Option<String>> = uses
            .iter()
            .map(|(_, u)| u.ip.map(|ip| ip.to_string()))
            .collect();
        let agents: Vec<Option<&str>> = uses.iter().map(|(_, u)| u.user_agent.as_deref()).collect();
        sqlx::query(
            "UPDATE devices d SET last_used_at = u.at, last_used_ip = u.ip,
                 last_used_user_agent = u.agent
             FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[]) AS u(id, at, ip, agent)
             WHERE d.id = u.id AND (d.last_used_at IS NULL OR d.last_used_at < u.at)",
        )
        .bind(&ids)
        .bind(&ats)
        .bind(&ips)
        .bind(&agents)
        .execute(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        Ok(())
    }

    async fn update_buckets(
        &self,
        keys: &[String],
        update: BucketUpdate<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable_or_internal)?;
        // Lock the rows (creating missing ones) in key order, so two nodes
        // updating the same buckets cannot deadlock.
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut found = Buckets::new();
        for key in sorted {
            sqlx::query(
                "INSERT INTO throttle_buckets (key, tokens, updated_at) VALUES ($1, 'NaN', 0)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
            let row = sqlx::query(
                "SELECT tokens, updated_at FROM throttle_buckets WHERE key = $1 FOR UPDATE",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
            let tokens: f64 = row.try_get("tokens").map_err(internal)?;
            let updated_at: i64 = row.try_get("updated_at").map_err(internal)?;
            // NaN marks a row made just now: no bucket yet.
            if !tokens.is_nan() {
                found.insert(key.clone(), (tokens, updated_at));
            }
        }
        let Some(changed) = update(found) else {
            tx.rollback().await.map_err(unavailable_or_internal)?;
            return Ok(false);
        };
        for (key, (tokens, updated_at)) in changed {
            sqlx::query("UPDATE throttle_buckets SET tokens = $2, updated_at = $3 WHERE key = $1")
                .bind(&key)
                .bind(tokens)
                .bind(updated_at)
                .execute(&mut *tx)
                .await
                .map_err(unavailable_or_internal)?;
        }
        tx.commit().await.map_err(unavailable_or_internal)?;
        Ok(true)
    }

    async fn prune_buckets(&self, updated_before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM throttle_buckets WHERE updated_at < $1")
            .bind(updated_before)
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected())
    }

    // ----- web sessions -----

    async fn create_session(&self, session: &NewSession) -> Result<WebSession, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO web_sessions
               (id_hash, account_id, csrf_secret, created_at, last_seen_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
        )
        .bind(&session.digest.0[..])
        .bind(session.account_id.0)
        .bind(session.csrf.as_bytes())
        .bind(session.created_at.millis())
        .bind(session.ip.map(|ip| ip.to_string()))
        .bind(session.user_agent.as_deref())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        Ok(session.created(SessionId(id)))
    }

    async fn session(&self, digest: &SessionDigest) -> Result<Option<WebSession>, StoreError> {
        let sql = format!(
            "SELECT {} FROM web_sessions WHERE id_hash = $1",
            rows::SESSION_COLUMNS
        );
        sqlx::query(&sql)
            .bind(&digest.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable_or_internal)?
            .map(|row| rows::session(&row))
            .transpose()
    }

    async fn touch_session(&self, digest: &SessionDigest, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE web_sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id_hash = $2",
        )
        .bind(at.millis())
        .bind(&digest.0[..])
        .execute(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
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
            .map_err(unavailable_or_internal)?;
        Ok(())
    }

    async fn take_session_notice(&self, digest: &SessionDigest) -> Result<Notice, StoreError> {
        // Read and clear in one statement, so two pages cannot both show it.
        let row = sqlx::query(
            "WITH old AS (
                 SELECT id, flash, reveal FROM web_sessions
                 WHERE id_hash = $1 AND (flash IS NOT NULL OR reveal IS NOT NULL)
                 FOR UPDATE
             )
             UPDATE web_sessions w SET flash = NULL, reveal = NULL FROM old
             WHERE w.id = old.id RETURNING old.flash, old.reveal",
        )
        .bind(&digest.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        let Some(row) = row else {
            return Ok(Notice::default());
        };
        Ok(Notice {
            flash: row.try_get("flash").map_err(internal)?,
            reveal: row.try_get("reveal").map_err(internal)?,
        })
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
            .map_err(unavailable_or_internal)?
            .iter()
            .map(rows::session)
            .collect()
    }

    async fn delete_session(&self, account: AccountId, id: SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND id = $2")
            .bind(account.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_sessions_of(
        &self,
        account: AccountId,
        keep: Option<&SessionDigest>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM web_sessions
             WHERE account_id = $1 AND ($2::BYTEA IS NULL OR id_hash <> $2)",
        )
        .bind(account.0)
        .bind(keep.map(|d| &d.0[..]))
        .execute(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected())
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
                .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(())
    }

    async fn watch_changes(&self, sink: ChangeSink) -> Result<(), StoreError> {
        // The first subscription happens here, so changes committed after
        // this returns are never missed.
        let listener = listen(&self.pool).await.map_err(unavailable_or_internal)?;
        let (stop, stopped) = watch::channel(false);
        let feed = tokio::spawn(follow_changes(
            self.pool.clone(),
            listener,
            sink,
            stopped.clone(),
        ));
        let heartbeat = tokio::spawn(send_heartbeats(self.pool.clone(), stopped));
        if let Some((old_stop, old_tasks)) = self
            .watcher
            .lock()
            .await
            .replace((stop, vec![feed, heartbeat]))
        {
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

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Delivers notifications; on any doubt about the connection, tells the
/// sink the feed is lost, and once it is back, that it is live again (after
/// subscribing, so nothing in between is missed).
async fn follow_changes(
    pool: PgPool,
    mut listener: PgListener,
    sink: ChangeSink,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        loop {
            let next = tokio::select! {
                _ = stopped.changed() => return,
                next = tokio::time::timeout(SILENCE_LIMIT, listener.try_recv()) => next,
            };
            match next {
                Ok(Ok(Some(notification))) => {
                    if let Some(change) = parse_payload(notification.payload()) {
                        sink(change);
                    }
                }
                Ok(Ok(None)) => {
                    tracing::warn!("lost the PostgreSQL change feed connection");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "PostgreSQL change feed failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        silence_ms = SILENCE_LIMIT.as_millis() as u64,
                        "PostgreSQL change feed went silent"
                    );
                    break;
                }
            }
        }
        sink(CredentialChange::FeedLost);
        drop(listener);
        listener = loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
            match listen(&pool).await {
                Ok(listener) => break listener,
                Err(e) => tracing::debug!(error = %e, "change feed still unavailable"),
            }
        };
        tracing::info!("PostgreSQL change feed is back");
        sink(CredentialChange::FeedRestored);
    }
}

async fn send_heartbeats(pool: PgPool, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        let sent = tokio::time::timeout(
            HEARTBEAT,
            sqlx::query("SELECT pg_notify($1, 'p')")
                .bind(CHANNEL)
                .execute(&pool),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!("cannot send the change feed heartbeat");
        }
    }
}

fn parse_payload(payload: &str) -> Option<CredentialChange> {
    match payload.split_once(':') {
        Some(("d", id)) => Some(match DeviceId::parse(id) {
            Ok(id) => CredentialChange::Device(id),
            Err(_) => CredentialChange::Everything,
        }),
        Some(("a", id)) => Some(match id.parse() {
            Ok(id) => CredentialChange::Account(AccountId(id)),
            Err(_) => CredentialChange::Everything,
        }),
        // The heartbeat: its arrival is all that matters.
        _ if payload == "p" => None,
        _ => Some(CredentialChange::Everything),
    }
}

/// Connection trouble is worth a retry (503); anything else is our bug (500).
async fn has_admin<'e, E>(executor: E) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts a JOIN account_permissions p
         ON p.account_id = a.id WHERE p.permission = 'admin' AND a.enabled)",
    )
    .fetch_one(executor)
    .await
    .map_err(unavailable_or_internal)
}

/// Ends an account's web sessions, except the one with `keep`, inside `tx`.
async fn end_sessions(
    tx: &mut sqlx::PgConnection,
    id: AccountId,
    keep: Option<&SessionDigest>,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM web_sessions WHERE account_id = $1 AND ($2::BYTEA IS NULL OR id_hash <> $2)",
    )
    .bind(id.0)
    .bind(keep.map(|d| &d.0[..]))
    .execute(tx)
    .await
    .map_err(unavailable_or_internal)?;
    Ok(())
}

/// Commits, unless the guard finds that no enabled administrator is left:
/// then rolls back and returns `false`.
async fn finish_guarded(
    mut tx: sqlx::Transaction<'static, Postgres>,
    guard: AdminGuard,
) -> Result<bool, StoreError> {
    if guard == AdminGuard::KeepOne && !has_admin(&mut *tx).await? {
        tx.rollback().await.map_err(unavailable_or_internal)?;
        return Ok(false);
    }
    tx.commit().await.map_err(unavailable_or_internal)?;
    Ok(true)
}

fn unavailable_or_internal(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // connection exceptions, shutting down, too many connections,
            // serialization failures, statement/lock timeouts, read-only replica
            Some(code)
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "40001"
                    || code == "40P01"
                    || code == "57014"
                    || code == "55P03"
                    || code == "25006" =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        },
        _ => StoreError::Internal(e.to_string()),
    }
}

fn conflict_on(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable_or_internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            parse_payload("d:123456789012"),
            Some(CredentialChange::Device(
                DeviceId::parse("123456789012").unwrap()
            ))
        );
        assert_eq!(
            parse_payload("a:42"),
            Some(CredentialChange::Account(AccountId(42)))
        );
        assert_eq!(parse_payload("p"), None);
        assert_eq!(parse_payload("a:x"), Some(CredentialChange::Everything));
        assert_eq!(parse_payload("zzz"), Some(CredentialChange::Everything));
    }
}
