//! SQLite: the default, embedded store. WAL mode for concurrent readers,
//! `synchronous = FULL` so a commit acknowledged to a client survives a
//! crash, and a data-version watch to notice other processes' commits.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Pool, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::rows::internal;
use super::sql::{conflict_on, Backend, SqlStore};
use super::{Buckets, ChangeSink, CredentialChange, CredentialTable, NewDevice, StoreError};
use crate::credential::{DeviceId, SessionDigest};
use crate::domain::{AccountId, LastUse, Notice, Timestamp};

/// How often the watcher asks SQLite whether another connection committed.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// More events than this since the last look means "drop the whole cache".
const WATCH_BATCH: i64 = 1000;
/// Events older than this are deleted; every watcher has long seen them.
const EVENT_RETENTION: Duration = Duration::from_secs(3600);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    /// Opens the database; with `create`, makes it first if it does not exist.
    pub(super) async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
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
            .connect_with(options)
            .await
            .map_err(Sqlite::unavailable_or_internal)?;
        // sqlx's migration lock does nothing on SQLite, so two processes
        // opening a new file together would both apply the same migration.
        // Inside one write transaction (each migration a savepoint in it),
        // the second waits for the first, then finds them all applied.
        let mut tx = Sqlite::begin_write(&pool).await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&mut *tx)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        tx.commit().await.map_err(Sqlite::unavailable_or_internal)?;
        Ok(SqlStore::new(pool))
    }
}

#[async_trait]
impl Backend for Sqlite {
    /// `BEGIN IMMEDIATE` takes the write lock at once, so a check made
    /// inside the transaction cannot be overtaken by another writer.
    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
        pool.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(Sqlite::unavailable_or_internal)
    }

    /// There is only one writer at a time anyway.
    async fn begin_admin_change(
        pool: &SqlitePool,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Self::begin_write(pool).await
    }

    async fn insert_devices(
        conn: &mut SqliteConnection,
        devices: &[NewDevice],
    ) -> Result<(), StoreError> {
        // Row by row costs little in-process, and needs no parameter limit.
        for device in devices {
            sqlx::query(
                "INSERT INTO devices (id, account_id, name, device_type, token_digest, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(device.id.as_str())
            .bind(device.account_id.0)
            .bind(device.name.as_str())
            .bind(&device.device_type)
            .bind(&device.token_digest.0[..])
            .bind(device.created_at.millis())
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict_on::<Sqlite>(e, "device id"))?;
        }
        Ok(())
    }

    async fn record_last_used(
        pool: &SqlitePool,
        table: CredentialTable,
        uses: &[(DeviceId, LastUse)],
    ) -> Result<(), StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let sql = format!(
            "UPDATE {} SET last_used_at = $1, last_used_ip = $2, last_used_user_agent = $3,
                 recent_ips = $5
             WHERE id = $4 AND (last_used_at IS NULL OR last_used_at < $1)",
            table.name()
        );
        for (id, used) in uses {
            // The condition keeps the newest use when flushes arrive out of order.
            sqlx::query(&sql)
                .bind(used.at.millis())
                .bind(used.ip.map(|ip| ip.to_string()))
                .bind(used.user_agent.as_deref())
                .bind(id.as_str())
                .bind(used.recent.to_stored())
                .execute(&mut *tx)
                .await
                .map_err(Sqlite::unavailable_or_internal)?;
        }
        tx.commit().await.map_err(Sqlite::unavailable_or_internal)
    }

    /// The write lock `BEGIN IMMEDIATE` took already covers every row.
    async fn lock_buckets(
        conn: &mut SqliteConnection,
        keys: &[String],
    ) -> Result<Buckets, StoreError> {
        let mut found = Buckets::new();
        for key in keys {
            let row = sqlx::query("SELECT tokens, updated_at FROM throttle_buckets WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(Sqlite::unavailable_or_internal)?;
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
        Ok(found)
    }

    async fn take_session_notice(
        pool: &SqlitePool,
        digest: &SessionDigest,
    ) -> Result<Notice, StoreError> {
        // Most page loads have nothing to show: find that out without
        // taking the write lock.
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM web_sessions
             WHERE id_hash = $1 AND (flash IS NOT NULL OR reveal IS NOT NULL))",
        )
        .bind(&digest.0[..])
        .fetch_one(pool)
        .await
        .map_err(Sqlite::unavailable_or_internal)?;
        if !pending {
            return Ok(Notice::default());
        }
        // Under the write lock, the read and the clearing are one step.
        let mut tx = Self::begin_write(pool).await?;
        let row = sqlx::query(
            "SELECT flash, reveal FROM web_sessions
             WHERE id_hash = $1 AND (flash IS NOT NULL OR reveal IS NOT NULL)",
        )
        .bind(&digest.0[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(Sqlite::unavailable_or_internal)?;
        let Some(row) = row else {
            return Ok(Notice::default());
        };
        sqlx::query("UPDATE web_sessions SET flash = NULL, reveal = NULL WHERE id_hash = $1")
            .bind(&digest.0[..])
            .execute(&mut *tx)
            .await
            .map_err(Sqlite::unavailable_or_internal)?;
        tx.commit().await.map_err(Sqlite::unavailable_or_internal)?;
        Ok(Notice {
            flash: row.try_get("flash").map_err(internal)?,
            reveal: row.try_get("reveal").map_err(internal)?,
        })
    }

    /// Polls `PRAGMA data_version` on a connection of its own, and reads the
    /// triggers' events when another connection committed.
    async fn watch(
        pool: &Pool<Sqlite>,
        sink: ChangeSink,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, StoreError> {
        let mut conn = pool
            .connect_options()
            .connect()
            .await
            .map_err(Sqlite::unavailable_or_internal)?;
        let mut version = data_version(&mut conn).await?;
        let mut cursor: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM credential_events")
                .fetch_one(&mut conn)
                .await
                .map_err(Sqlite::unavailable_or_internal)?;
        let pool = pool.clone();
        let file = pool.connect_options().get_filename().to_path_buf();
        let opened = FileIdentity::of(&file);
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
                if opened.is_some() && FileIdentity::of(&file) != opened {
                    // Serving the old, unlinked file would lose every change
                    // made to the new one (revocations included): stop
                    // answering instead, until an operator restarts us.
                    tracing::error!(
                        file = %file.display(),
                        "the database file was deleted or replaced while the server runs; refusing requests until restart"
                    );
                    sink(CredentialChange::FeedLost);
                    pool.close().await;
                    break;
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
        Ok(vec![task])
    }

    /// A write statement that matches no row, rolled back: SQLite still
    /// opens the file for writing, which a read-only file (or one deleted
    /// under us) refuses. `BEGIN IMMEDIATE` alone succeeds on those.
    async fn probe_write(pool: &SqlitePool) -> Result<(), StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        sqlx::query("DELETE FROM credential_events WHERE 0")
            .execute(&mut *tx)
            .await
            .map_err(Sqlite::unavailable_or_internal)?;
        tx.rollback().await.map_err(Sqlite::unavailable_or_internal)
    }

    /// The write transaction (`BEGIN IMMEDIATE`) holds the database already.
    async fn lock_key(_conn: &mut SqliteConnection, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }

    fn unavailable_or_internal(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout (another
            // writer holds the lock), SQLITE_READONLY (a read-only file, or one
            // deleted under us), SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: the
            // database cannot do its work now, which is not our bug.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Which file a path names (device and inode), to notice it being replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    /// `None` for an in-memory database or a path that names no file.
    fn of(path: &std::path::Path) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path).ok()?;
            Some(Self {
                device: meta.dev(),
                inode: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
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
        .map_err(Sqlite::unavailable_or_internal)
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
        "SELECT seq, account_id, device_id, access_id FROM credential_events
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(*cursor)
    .bind(WATCH_BATCH + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(Sqlite::unavailable_or_internal)?;
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
            .map_err(Sqlite::unavailable_or_internal)?;
        return Ok(());
    }
    for row in &rows {
        let device: Option<String> = row.try_get("device_id").map_err(internal)?;
        let access: Option<String> = row.try_get("access_id").map_err(internal)?;
        let account: Option<i64> = row.try_get("account_id").map_err(internal)?;
        let parsed = |id: Option<String>| id.and_then(|id| DeviceId::parse(&id).ok());
        match (parsed(device), parsed(access), account) {
            (Some(device), _, _) => sink(CredentialChange::Device(device)),
            (None, Some(access), _) => sink(CredentialChange::Access(access)),
            (None, None, Some(account)) => sink(CredentialChange::Account(AccountId(account))),
            (None, None, None) => sink(CredentialChange::Everything),
        }
    }
    *cursor = last_seq;
    Ok(())
}

async fn prune_events(pool: &SqlitePool) {
    let cutoff = Timestamp::now().millis() - EVENT_RETENTION.as_millis() as i64;
    if let Err(e) = sqlx::query("DELETE FROM credential_events WHERE created_at < $1")
        .bind(cutoff)
        .execute(pool)
        .await
    {
        tracing::warn!(error = %e, "cannot prune old credential events");
    }
}
