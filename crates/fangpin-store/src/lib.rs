//! Persistence for fangpin: one SQL dialect that SQLite (the embedded default)
//! and PostgreSQL (production) both accept, run through sqlx's `Any` driver so
//! that every query is written once and one test suite covers both backends.
//!
//! Write transactions are serialized per county: on SQLite by `BEGIN IMMEDIATE`
//! (SQLite has a single writer anyway), on PostgreSQL by a transaction-scoped
//! advisory lock keyed by the county code. Everything a county's money depends
//! on (ledger sequence numbers, the pool balance, top-up flags, claim states)
//! is therefore read and written by one transaction at a time, which makes the
//! checks in the handlers hold at commit.
//!
//! Money is integer fen in `BIGINT` columns; dates and timestamps are ISO 8601
//! text, which both databases compare correctly as strings.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};

pub mod audit;
pub mod claims;
pub mod counties;
pub mod evidence;
pub mod follow_up;
pub mod idempotency;
pub mod ledger;
pub mod monitoring;
pub mod outlook;
pub mod personal_data;
pub mod places;
pub mod review;
pub mod roster;
pub mod screening;
pub mod stats;

/// A transaction on either backend.
pub type Tx = sqlx::Transaction<'static, Any>;
/// A pooled connection for reads.
pub type ReadConn = sqlx::pool::PoolConnection<Any>;
pub use sqlx::AnyConnection as Conn;

/// Connections per pool. SQLite has one writer, so a few readers suffice; a
/// PostgreSQL server shared by replicas should not be flooded by one of them.
pub const DEFAULT_SQLITE_MAX_CONNECTIONS: u32 = 4;
pub const DEFAULT_POSTGRES_MAX_CONNECTIONS: u32 = 16;
/// How long a request may wait for a connection before it fails as Unavailable.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits on a locked database before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A posting to a policy year that has been closed.
    #[error("policy year {policy_year} of county {county_code} is closed")]
    YearClosed {
        county_code: String,
        policy_year: i32,
    },
    /// A stored row that breaks an invariant: a bug or tampering, never a
    /// client's mistake.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// One error that every write of a batch committed together shares
    /// (the server's group commit): the commit failed for all of them.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// The error itself, through any sharing.
    fn own(&self) -> &StoreError {
        match self {
            StoreError::Shared(inner) => inner.own(),
            other => other,
        }
    }

    /// Whether the error is a UNIQUE violation, which handlers turn into
    /// AlreadyExists for natural keys.
    pub fn is_unique_violation(&self) -> bool {
        match self.own() {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether the database refused the transaction because of a concurrent
    /// one (SQLSTATE 40001 serialization_failure, 40P01 deadlock_detected):
    /// the transaction rolled back whole and the same write may run again.
    pub fn is_retryable(&self) -> bool {
        match self.own() {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(
                    e.code().as_deref(),
                    Some(RETRYABLE_SERIALIZATION | RETRYABLE_DEADLOCK)
                )
            }
            _ => false,
        }
    }

    /// Whether the database could not be reached or went away mid-call:
    /// no connection to give in time, the connection lost (a killed or
    /// restarting PostgreSQL, a terminated session), the server shutting
    /// down (SQLSTATE 57P01-57P03) or a connection exception (class 08).
    /// A transaction cut this way never committed, or committed with its
    /// idempotency record, so the caller retries with the same request id.
    pub fn is_unavailable(&self) -> bool {
        match self.own() {
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(e)) => e.code().is_some_and(|code| {
                matches!(&*code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
            }),
            _ => false,
        }
    }

    /// Whether the database ran out of space: SQLITE_FULL (13) or
    /// PostgreSQL's disk_full (53100). The statement and its transaction
    /// rolled back whole; the same write succeeds once space is freed.
    pub fn is_storage_full(&self) -> bool {
        match self.own() {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some(SQLITE_FULL | POSTGRES_DISK_FULL))
            }
            _ => false,
        }
    }
}

/// SQLite's result code for a full disk (extended codes are the same).
pub const SQLITE_FULL: &str = "13";
/// SQLSTATE disk_full.
pub const POSTGRES_DISK_FULL: &str = "53100";

/// SQLSTATE serialization_failure.
pub const RETRYABLE_SERIALIZATION: &str = "40001";
/// SQLSTATE deadlock_detected.
pub const RETRYABLE_DEADLOCK: &str = "40P01";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend> {
        backend_of(url)
    }

    /// The pool size used when the operator names none.
    pub fn default_max_connections(self) -> u32 {
        match self {
            Backend::Sqlite => DEFAULT_SQLITE_MAX_CONNECTIONS,
            Backend::Postgres => DEFAULT_POSTGRES_MAX_CONNECTIONS,
        }
    }
}

impl Store {
    /// Connects, creating a SQLite file if needed, and applies migrations,
    /// with the backend's default pool size.
    pub async fn connect(url: &str) -> Result<Store> {
        let max_connections = backend_of(url)?.default_max_connections();
        Store::connect_with(url, max_connections).await
    }

    /// As `connect`, with a pool of at most `max_connections` connections
    /// (the operator's `server.max_connections`).
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url = match backend {
            // Create the file on first start: `cargo run` needs nothing else.
            Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => {
                format!("{url}?mode=rwc")
            }
            _ => url.to_string(),
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        configure_sqlite(conn).await?;
                    }
                    Ok(())
                })
            })
            // A connection whose transaction could not be ended must not be
            // handed out again. After a COMMIT that failed because the disk
            // was full, SQLite has already rolled the transaction back, the
            // rollback sqlx sends on drop fails ("no transaction is
            // active") and sqlx keeps counting the transaction as open, so
            // every later BEGIN on that connection would fail. A connection
            // released inside a transaction (a dropped one) is pinged, which
            // runs the rollback queued by the drop, and checked again.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    if conn.is_in_transaction() {
                        tracing::warn!(
                            "closing a pooled connection whose transaction could not be ended"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A read-only view; consistent enough for queries that do not decide a write.
    #[tracing::instrument(name = "store.read", level = "info", skip_all)]
    pub async fn read(&self) -> Result<ReadConn> {
        Ok(self.pool.acquire().await?)
    }

    /// A read transaction that sees one moment of the database, for reads
    /// that combine several queries (a reconciliation, a pool balance): on
    /// PostgreSQL a read-only REPEATABLE READ transaction, whose snapshot is
    /// taken at its first query; on SQLite a deferred transaction, which in
    /// WAL mode reads one snapshot from its first read to its end. Dropping
    /// it ends it; it never writes.
    #[tracing::instrument(name = "store.read_snapshot", level = "info", skip_all)]
    pub async fn read_snapshot(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN DEFERRED").await?),
            Backend::Postgres => Ok(self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?),
        }
    }

    /// Begins a write transaction that holds the county's write lock until it
    /// commits or is dropped (a dropped transaction rolls back, which is what
    /// happens when a client's deadline cancels the handler).
    #[tracing::instrument(name = "store.begin_write", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
    pub async fn begin_write(&self, county_code: &str) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(county_lock_key(county_code))
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Rewrites the one row of `storage_probe` in a committed transaction:
    /// the proof, after the database ran out of space, that it takes writes
    /// again. No county lock: it touches no county's data.
    pub async fn probe_write(&self, now: &str) -> Result<()> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        sqlx::query("UPDATE storage_probe SET written_at = $1 WHERE id = 1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes the pool: waiters fail at once, idle connections close now and
    /// busy ones as they are returned. Completes when all are closed, so a
    /// caller with a deadline wraps it in a timeout.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// WAL lets readers run beside the single writer; FULL sync because a ledger
/// must not lose a committed payout to a power cut; foreign keys are off by
/// default in SQLite and the schema relies on them.
async fn configure_sqlite(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = FULL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
    )))
    .await?;
    conn.ping().await
}

/// The advisory-lock key of a county: the first 8 bytes of a SHA-256, so keys
/// from other applications sharing the server are unlikely to collide.
fn county_lock_key(county_code: &str) -> i64 {
    let digest = Sha256::digest(format!("fangpin:county:{county_code}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Reads a column, naming it in the error.
pub(crate) fn col<'r, T>(row: &'r sqlx::any::AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    Ok(row.try_get(name)?)
}

pub(crate) fn parse_date(text: &str) -> Result<chrono::NaiveDate> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad stored date {text:?}")))
}

pub(crate) fn parse_uuid(text: &str) -> Result<uuid::Uuid> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad stored id {text:?}")))
}

/// RFC 3339 with milliseconds in UTC: sorts as text in both databases.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
