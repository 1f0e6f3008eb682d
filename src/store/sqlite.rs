//! SQLite: the default, embedded store. WAL mode for concurrent readers,
//! `synchronous = FULL` so a commit acknowledged to a client survives a
//! crash, and a data-version watch to notice other processes' commits.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite, SqliteConnection};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::rows::{self, internal};
use super::{
    AdminGuard, BucketUpdate, Buckets, ChangeSink, CredentialChange, CredentialRecord, NewAccount,
    NewDevice, NewSession, Store, StoreError,
};
use crate::credential::{DeviceId, SessionDigest, TokenDigest};
use crate::domain::{
    Account, AccountId, Device, DeviceName, Email, LastUse, Notice, Permission, SessionId,
    Timestamp, WebSession,
};

/// How often the watcher asks SQLite whether another connection committed.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// More events than this since the last look means "drop the whole cache".
const WATCH_BATCH: i64 = 1000;
/// Events older than this are deleted; every watcher has long seen them.
const EVENT_RETENTION: Duration = Duration::from_secs(3600);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    watcher: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.email, a.name, a.enabled, a.two_factor_enabled, a.created_at,
    (SELECT group_concat(permission) FROM account_permissions p WHERE p.account_id = a.id) AS permissions";

const DEVICE_COLUMNS: &str = "id, account_id, name, device_type, created_at,
    last_used_at, last_used_ip, last_used_user_agent";

impl SqliteStore {
    /// Opens the database; with `create`, makes it first if it does not exist.
    pub async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .disable_statement_logging();
        let file = options.get_filename();
        if create {
            create_privately(file)?;
        } else if !file.exists() && file.as_os_str() != ":memory:" {
            return Err(StoreError::Internal(format!(
                "there is no database at {}; check --data-dir or --database-url (`latchkey serve` creates it)",
                file.display()
            )));
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(unavailable_or_internal)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        Ok(Self {
            pool,
            options,
            watcher: Mutex::new(None),
        })
    }

    /// A write transaction: `BEGIN IMMEDIATE` takes the write lock at once,
    /// so a check made inside it cannot be overtaken by another writer.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)
    }

    async fn load_account(
        &self,
        filter: &str,
        key: Key<'_>,
    ) -> Result<Option<SqliteRow>, StoreError> {
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE {filter}");
        let query = sqlx::query(&sql);
        let query = match key {
            Key::Id(id) => query.bind(id),
            Key::Text(text) => query.bind(text),
        };
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable_or_internal)
    }
}

enum Key<'a> {
    Id(i64),
    Text(&'a str),
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (email, name, password_hash, created_at)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(account.email.as_str())
        .bind(&account.name)
        .bind(&account.password_hash)
        .bind(account.created_at.millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_on(e, "email"))?;
        for permission in account.permissions.iter() {
            sqlx::query("INSERT INTO account_permissions (account_id, permission) VALUES (?, ?)")
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
        self.load_account("a.id = ?", Key::Id(id.0))
            .await?
            .map(|row| rows::account(&row))
            .transpose()
    }

    async fn account_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let Some(row) = self
            .load_account("a.email = ?", Key::Text(email.as_str()))
            .await?
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
            "INSERT OR IGNORE INTO account_permissions (account_id, permission) VALUES ($1, $2)"
        } else {
            "DELETE FROM account_permissions WHERE account_id = $1 AND permission = $2"
        };
        // BEGIN IMMEDIATE serialises writers, so the check after the write
        // sees every other administrator change that committed before it.
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
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
        execute(
            &self.pool,
            "UPDATE accounts SET two_factor_enabled = ? WHERE id = ?",
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
        let mut tx = self.begin_write().await?;
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
        execute(
            &self.pool,
            "UPDATE accounts SET name = ? WHERE id = ?",
            name,
            id,
        )
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)?;
        for device in devices {
            sqlx::query(
                "INSERT INTO devices (id, account_id, name, device_type, token_digest, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(device.id.as_str())
            .bind(device.account_id.0)
            .bind(device.name.as_str())
            .bind(&device.device_type)
            .bind(&device.token_digest.0[..])
            .bind(device.created_at.millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on(e, "device id"))?;
        }
        tx.commit().await.map_err(unavailable_or_internal)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?");
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
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE ?1 IS NULL OR account_id = ?1
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
        let done = sqlx::query("UPDATE devices SET name = ? WHERE id = ?")
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
        let done = sqlx::query(
            "UPDATE devices SET token_digest = $1
             WHERE id = $2 AND ($3 IS NULL OR token_digest = $3)",
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
        let done = sqlx::query("DELETE FROM devices WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(done.rows_affected() == 1)
    }

    async fn credential(&self, id: &DeviceId) -> Result<Option<CredentialRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.account_id, d.name, d.device_type, d.created_at, d.last_used_at,
               d.last_used_ip, d.last_used_user_agent, d.token_digest, a.enabled,
               (SELECT group_concat(permission) FROM account_permissions p
                WHERE p.account_id = d.account_id) AS permissions
             FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        row.map(|row| rows::credential(&row)).transpose()
    }

    async fn record_last_used(&self, uses: &[(DeviceId, LastUse)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)?;
        for (id, used) in uses {
            sqlx::query(
                "UPDATE devices SET last_used_at = ?1, last_used_ip = ?2, last_used_user_agent = ?3
                 WHERE id = ?4 AND (last_used_at IS NULL OR last_used_at < ?1)",
            )
            .bind(used.at.millis())
            .bind(used.ip.map(|ip| ip.to_string()))
            .bind(used.user_agent.as_deref())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        }
        tx.commit().await.map_err(unavailable_or_internal)
    }

    async fn update_buckets(
        &self,
        keys: &[String],
        update: BucketUpdate<'_>,
    ) -> Result<bool, StoreError> {
        // IMMEDIATE takes the write lock up front: the read and the write
        // below are one step for every other process.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)?;
        let mut found = Buckets::new();
        for key in keys {
            let row = sqlx::query("SELECT tokens, updated_at FROM throttle_buckets WHERE key = ?")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable_or_internal)?;
            if let Some(row) = row {
                found.insert(
                    key.clone(),
                    (
                        row.try_get("tokens").map_err(internal)?,
                        row.try_get("updated_at").map_err(internal)?,
                    ),
                );
            }
        }
        let Some(changed) = update(found) else {
            tx.rollback().await.map_err(unavailable_or_internal)?;
            return Ok(false);
        };
        for (key, (tokens, updated_at)) in changed {
            sqlx::query(
                "INSERT INTO throttle_buckets (key, tokens, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,
                     updated_at = excluded.updated_at",
            )
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
        let done = sqlx::query("DELETE FROM throttle_buckets WHERE updated_at < ?")
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
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&session.digest.0[..])
        .bind(session.account_id.0)
        .bind(session.csrf.as_bytes())
        .bind(session.created_at.millis())
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
            "SELECT {} FROM web_sessions WHERE id_hash = ?",
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
            "UPDATE web_sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE id_hash = ?",
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
        sqlx::query("UPDATE web_sessions SET flash = ?, reveal = ? WHERE id_hash = ?")
            .bind(notice.flash.as_deref())
            .bind(notice.reveal.as_deref())
            .bind(&digest.0[..])
            .execute(&self.pool)
            .await
            .map_err(unavailable_or_internal)?;
        Ok(())
    }

    async fn take_session_notice(&self, digest: &SessionDigest) -> Result<Notice, StoreError> {
        // Most page loads have nothing to show: find that out without
        // taking the write lock.
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM web_sessions
             WHERE id_hash = ? AND (flash IS NOT NULL OR reveal IS NOT NULL))",
        )
        .bind(&digest.0[..])
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable_or_internal)?;
        if !pending {
            return Ok(Notice::default());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable_or_internal)?;
        let row = sqlx::query(
            "SELECT flash, reveal FROM web_sessions
             WHERE id_hash = ? AND (flash IS NOT NULL OR reveal IS NOT NULL)",
        )
        .bind(&digest.0[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable_or_internal)?;
        let Some(row) = row else {
            return Ok(Notice::default());
        };
        sqlx::query("UPDATE web_sessions SET flash = NULL, reveal = NULL WHERE id_hash = ?")
            .bind(&digest.0[..])
            .execute(&mut *tx)
            .await
            .map_err(unavailable_or_internal)?;
        tx.commit().await.map_err(unavailable_or_internal)?;
        Ok(Notice {
            flash: row.try_get("flash").map_err(internal)?,
            reveal: row.try_get("reveal").map_err(internal)?,
        })
    }

    async fn sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>, StoreError> {
        let sql = format!(
            "SELECT {} FROM web_sessions WHERE account_id = ?
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
        let done = sqlx::query("DELETE FROM web_sessions WHERE account_id = ? AND id = ?")
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
            "DELETE FROM web_sessions WHERE account_id = ? AND (? IS NULL OR id_hash <> ?)",
        )
        .bind(account.0)
        .bind(keep.map(|d| &d.0[..]))
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
        let done = sqlx::query("DELETE FROM web_sessions WHERE last_seen_at < ? OR created_at < ?")
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
        let mut conn = self
            .options
            .connect()
            .await
            .map_err(unavailable_or_internal)?;
        let mut version = data_version(&mut conn).await?;
        let mut cursor: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM credential_events")
                .fetch_one(&mut conn)
                .await
                .map_err(unavailable_or_internal)?;
        let (stop, mut stopped) = watch::channel(false);
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(WATCH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = tokio::time::Instant::now();
            let mut lost = false;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                match poll_changes(&mut conn, &mut version, &mut cursor, &sink).await {
                    Ok(()) if lost => {
                        lost = false;
                        // The events stay in the table, so none were missed.
                        tracing::info!("credential changes are readable again");
                        sink(CredentialChange::FeedCaughtUp);
                    }
                    Ok(()) => {}
                    Err(e) if !lost => {
                        lost = true;
                        tracing::warn!(error = %e, "cannot read credential changes");
                        sink(CredentialChange::FeedLost);
                    }
                    Err(_) => {}
                }
                if last_prune.elapsed() > EVENT_RETENTION / 6 {
                    last_prune = tokio::time::Instant::now();
                    prune_events(&pool).await;
                }
            }
            let _ = conn.close().await;
        });
        if let Some((old_stop, old_task)) = self.watcher.lock().await.replace((stop, task)) {
            let _ = old_stop.send(true);
            let _ = old_task.await;
        }
        Ok(())
    }

    async fn close(&self) {
        if let Some((stop, task)) = self.watcher.lock().await.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
        self.pool.close().await;
    }
}

/// Creates a missing database file, and its missing directory, readable by
/// this user only: it holds password hashes. Existing files are left as the
/// operator set them. SQLite gives the -wal and -shm files the same mode.
fn create_privately(file: &std::path::Path) -> Result<(), StoreError> {
    let cannot = |what: &std::path::Path, e: std::io::Error| {
        StoreError::Internal(format!("cannot create {}: {e}", what.display()))
    };
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" || file.exists() {
        return Ok(());
    }
    if let Some(dir) = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| cannot(dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot(file, e)),
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
        .map_err(unavailable_or_internal)
}

async fn poll_changes(
    conn: &mut SqliteConnection,
    version: &mut i64,
    cursor: &mut i64,
    sink: &ChangeSink,
) -> Result<(), StoreError> {
    let now = data_version(conn).await?;
    if now == *version {
        return Ok(());
    }
    *version = now;
    let rows = sqlx::query(
        "SELECT seq, account_id, device_id FROM credential_events WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(*cursor)
    .bind(WATCH_BATCH + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable_or_internal)?;
    let Some(last) = rows.last() else {
        return Ok(());
    };
    let first_seq: i64 = rows[0].try_get("seq").map_err(internal)?;
    let last_seq: i64 = last.try_get("seq").map_err(internal)?;
    // Sequence numbers are contiguous unless events were pruned before we saw them.
    if rows.len() as i64 > WATCH_BATCH || first_seq != *cursor + 1 {
        sink(CredentialChange::Everything);
        *cursor = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM credential_events")
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable_or_internal)?;
        return Ok(());
    }
    for row in &rows {
        let device: Option<String> = row.try_get("device_id").map_err(internal)?;
        let account: Option<i64> = row.try_get("account_id").map_err(internal)?;
        match (device.and_then(|d| DeviceId::parse(&d).ok()), account) {
            (Some(device), _) => sink(CredentialChange::Device(device)),
            (None, Some(account)) => sink(CredentialChange::Account(AccountId(account))),
            (None, None) => sink(CredentialChange::Everything),
        }
    }
    *cursor = last_seq;
    Ok(())
}

async fn prune_events(pool: &SqlitePool) {
    let cutoff = Timestamp::now().millis() - EVENT_RETENTION.as_millis() as i64;
    if let Err(e) = sqlx::query("DELETE FROM credential_events WHERE created_at < ?")
        .bind(cutoff)
        .execute(pool)
        .await
    {
        tracing::warn!(error = %e, "cannot prune old credential events");
    }
}

async fn has_admin<'e, E>(executor: E) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts a JOIN account_permissions p
         ON p.account_id = a.id WHERE p.permission = 'admin' AND a.enabled = 1)",
    )
    .fetch_one(executor)
    .await
    .map_err(unavailable_or_internal)
}

/// Ends an account's web sessions, except the one with `keep`, inside `tx`.
async fn end_sessions(
    tx: &mut SqliteConnection,
    id: AccountId,
    keep: Option<&SessionDigest>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND ($2 IS NULL OR id_hash <> $2)")
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
    mut tx: sqlx::Transaction<'static, Sqlite>,
    guard: AdminGuard,
) -> Result<bool, StoreError> {
    if guard == AdminGuard::KeepOne && !has_admin(&mut *tx).await? {
        tx.rollback().await.map_err(unavailable_or_internal)?;
        return Ok(false);
    }
    tx.commit().await.map_err(unavailable_or_internal)?;
    Ok(true)
}

/// Runs `sql` with `value` and an account id as its two parameters.
async fn execute<'q, T>(
    pool: &SqlitePool,
    sql: &'q str,
    value: T,
    id: AccountId,
) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'q,
{
    sqlx::query(sql)
        .bind(value)
        .bind(id.0)
        .execute(pool)
        .await
        .map_err(unavailable_or_internal)?;
    Ok(())
}

fn unavailable_or_internal(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: another writer holds the lock.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

fn conflict_on(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable_or_internal(e),
    }
}
