//! PostgreSQL: the store for several nodes. Credential changes reach every
//! node through `LISTEN/NOTIFY`, sent by triggers, so no writer can forget.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Row, Transaction};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::rows::internal;
use super::sql::{conflict_on, Backend, SqlStore};
use super::{
    Buckets, ChangeSink, CredentialChange, CredentialTable, NewDevice, StoreError, StoreOptions,
};
use crate::credential::{DeviceId, SessionDigest};
use crate::domain::{AccountId, LastUse, Notice};

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

pub(super) type PgStore = SqlStore<Postgres>;

impl PgStore {
    /// Connects; with `create`, makes the database first if it does not exist.
    pub(super) async fn open(
        url: &str,
        create: bool,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("latchkey")
            // A query stuck behind a lock must fail, not hold a request forever.
            .options([("statement_timeout", "10s"), ("lock_timeout", "5s")])
            .disable_statement_logging();
        let exists = Postgres::database_exists(url)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        if !exists {
            if !create {
                return Err(StoreError::Internal(format!(
                    "there is no database {:?} on the PostgreSQL server; check --database-url (`latchkey serve` creates it)",
                    connect.get_database().unwrap_or_default()
                )));
            }
            if let Err(e) = Postgres::create_database(url).await {
                // Another node created it at the same moment: PostgreSQL says
                // "already exists" (42P04) if that one finished first, or a
                // duplicate key in pg_database (23505) if both were halfway.
                // Either way, or any other way, what matters is that it is there.
                let exists = Postgres::database_exists(url)
                    .await
                    .map_err(Postgres::unavailable_or_internal)?;
                if !exists {
                    return Err(Postgres::unavailable_or_internal(e));
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        // sqlx holds an advisory lock while migrating, so nodes starting
        // together do not race.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        Ok(SqlStore::new(pool))
    }
}

#[async_trait]
impl Backend for Postgres {
    /// Row locks and unique keys keep concurrent writers apart.
    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
        pool.begin()
            .await
            .map_err(Postgres::unavailable_or_internal)
    }

    /// Holds the administrators' advisory lock until the transaction ends,
    /// so two such changes on any nodes run one after the other.
    async fn begin_admin_change(
        pool: &PgPool,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADMIN_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        Ok(tx)
    }

    async fn insert_devices(
        conn: &mut PgConnection,
        devices: &[NewDevice],
    ) -> Result<(), StoreError> {
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
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict_on::<Postgres>(e, "device id"))?;
        }
        Ok(())
    }

    async fn record_last_used(
        pool: &PgPool,
        table: CredentialTable,
        uses: &[(DeviceId, LastUse)],
    ) -> Result<(), StoreError> {
        // One statement for the whole batch; the condition keeps the newest
        // use when nodes flush out of order. A device twice in the batch
        // would join two rows, of which PostgreSQL updates with either:
        // DISTINCT ON keeps only its newest.
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let ats: Vec<i64> = uses.iter().map(|(_, u)| u.at.millis()).collect();
        let ips: Vec<Option<String>> = uses
            .iter()
            .map(|(_, u)| u.ip.map(|ip| ip.to_string()))
            .collect();
        let agents: Vec<Option<&str>> = uses.iter().map(|(_, u)| u.user_agent.as_deref()).collect();
        let recent: Vec<Option<String>> = uses.iter().map(|(_, u)| u.recent.to_stored()).collect();
        let sql = format!(
            "UPDATE {} d SET last_used_at = u.at, last_used_ip = u.ip,
                 last_used_user_agent = u.agent, recent_ips = u.recent
             FROM (SELECT DISTINCT ON (id) * FROM
                     UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])
                       AS u(id, at, ip, agent, recent)
                   ORDER BY id, at DESC) u
             WHERE d.id = u.id AND (d.last_used_at IS NULL OR d.last_used_at < u.at)",
            table.name()
        );
        sqlx::query(&sql)
            .bind(&ids)
            .bind(&ats)
            .bind(&ips)
            .bind(&agents)
            .bind(&recent)
            .execute(pool)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        Ok(())
    }

    /// Locks the rows, creating missing ones, in key order, so two nodes
    /// updating the same buckets cannot deadlock.
    async fn lock_buckets(conn: &mut PgConnection, keys: &[String]) -> Result<Buckets, StoreError> {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut found = Buckets::new();
        for key in sorted {
            // A row deleted by another transaction between the two
            // statements (a reset, a prune) is simply made again.
            let row = loop {
                sqlx::query(
                    "INSERT INTO throttle_buckets (key, tokens, updated_at) VALUES ($1, 'NaN', 0)
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(Postgres::unavailable_or_internal)?;
                let row = sqlx::query(
                    "SELECT tokens, updated_at FROM throttle_buckets WHERE key = $1 FOR UPDATE",
                )
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(Postgres::unavailable_or_internal)?;
                if let Some(row) = row {
                    break row;
                }
            };
            let tokens: f64 = row.try_get("tokens").map_err(internal)?;
            let updated_at: i64 = row.try_get("updated_at").map_err(internal)?;
            // NaN marks a row made just now: no bucket yet.
            if !tokens.is_nan() {
                found.insert(key.clone(), (tokens, updated_at));
            }
        }
        Ok(found)
    }

    async fn take_session_notice(
        pool: &PgPool,
        digest: &SessionDigest,
    ) -> Result<Notice, StoreError> {
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
        .fetch_optional(pool)
        .await
        .map_err(Postgres::unavailable_or_internal)?;
        let Some(row) = row else {
            return Ok(Notice::default());
        };
        Ok(Notice {
            flash: row.try_get("flash").map_err(internal)?,
            reveal: row.try_get("reveal").map_err(internal)?,
        })
    }

    /// Listens on the channel the triggers notify, and sends heartbeats on it.
    async fn watch(
        pool: &PgPool,
        sink: ChangeSink,
        stopped: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, StoreError> {
        // The first subscription happens here, so changes committed after
        // this returns are never missed.
        let listener = listen(pool)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        let feed = tokio::spawn(follow_changes(
            pool.clone(),
            listener,
            sink,
            stopped.clone(),
        ));
        let heartbeat = tokio::spawn(send_heartbeats(pool.clone(), stopped));
        Ok(vec![feed, heartbeat])
    }

    async fn lock_key(conn: &mut PgConnection, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(Postgres::unavailable_or_internal)?;
        Ok(())
    }

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }

    /// A standby, or a database set to `default_transaction_read_only`,
    /// answers reads but refuses every write.
    async fn probe_write(pool: &PgPool) -> Result<(), StoreError> {
        let read_only: String =
            sqlx::query_scalar("SELECT current_setting('transaction_read_only')")
                .fetch_one(pool)
                .await
                .map_err(Postgres::unavailable_or_internal)?;
        if read_only == "on" {
            return Err(StoreError::Unavailable(
                "the database is read-only (a standby, or default_transaction_read_only)"
                    .to_owned(),
            ));
        }
        Ok(())
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
        Some(("s", id)) => Some(match DeviceId::parse(id) {
            Ok(id) => CredentialChange::Access(id),
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
        assert_eq!(
            parse_payload("s:123456789012"),
            Some(CredentialChange::Access(
                DeviceId::parse("123456789012").unwrap()
            ))
        );
        assert_eq!(parse_payload("p"), None);
        assert_eq!(parse_payload("a:x"), Some(CredentialChange::Everything));
        assert_eq!(parse_payload("zzz"), Some(CredentialChange::Everything));
    }
}
