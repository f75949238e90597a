//! The database: one `sqlx::AnyPool` over SQLite (embedded default) or PostgreSQL (production).
//!
//! Queries are written in the SQL both engines share, with `$1`-style parameters (SQLite accepts
//! them too), timestamps as integer Unix seconds and bytes as BLOB/BYTEA. The schema differs only
//! in DDL, so each engine has its own migrations folder with the same numbered files.

use std::{fmt, str::FromStr};

use anyhow::Context;
use sqlx::{
    any::{install_default_drivers, AnyPoolOptions},
    migrate::Migrator,
    Any, AnyPool, Transaction,
};

use crate::config::Settings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        })
    }
}

impl FromStr for DatabaseKind {
    type Err = anyhow::Error;

    fn from_str(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            anyhow::bail!("Unsupported database URL: it must start with sqlite: or postgres://")
        }
    }
}

/// How long a request waits for a connection (or SQLite's write turn) before it is told 503.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A pooled connection idle this long is pinged before it is handed out (see `connect_url`).
const PING_IF_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long start-up waits for a database that does not answer yet.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    kind: DatabaseKind,
    /// Keys the audit chain (`audit`): kept outside the database, so someone who can write to it
    /// cannot recompute the chain.
    audit_key: crate::audit::AuditKey,
    /// SQLite's writers queue here, in the process, before they take a connection (issue 16).
    /// Left to SQLite, every writer but one fails `BEGIN IMMEDIATE` and sleeps in its busy
    /// handler (1, 2, 5, 10 … ms) holding one of the pool's four connections, so readers starve
    /// and sign-in at 500/s fell seconds behind. `None` on PostgreSQL, which locks rows.
    write_gate: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

/// A transaction that will write, with what appending to the audit trail inside it needs.
#[derive(Debug)]
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    kind: DatabaseKind,
    audit_key: crate::audit::AuditKey,
    /// The audit entries of this transaction, written by its commit (`audit::write`) and then
    /// counted in the metrics.
    pub(crate) pending: Vec<crate::audit::Pending>,
    /// SQLite's turn to write ([`Database::begin_write`]): given back when the transaction ends.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(mut self) -> sqlx::Result<()> {
        crate::audit::write(&mut self.tx, self.kind, &self.audit_key, &self.pending).await?;
        self.tx.commit().await?;
        crate::metrics::global().audited(self.pending.iter().map(crate::audit::Pending::event));
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Database {
    /// Connects to the configured database, creating the SQLite file and its folder if needed.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        Self::connect_url(&settings.effective_database_url(), settings).await
    }

    pub async fn connect_url(url: &str, settings: &Settings) -> anyhow::Result<Self> {
        install_default_drivers();
        let kind: DatabaseKind = url.parse()?;
        if kind == DatabaseKind::Sqlite && settings.database_url.is_none() {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("Failed to create the data directory {}", settings.data_dir.display())
            })?;
        }
        let options = AnyPoolOptions::new()
            .max_connections(match kind {
                // One writer at a time is SQLite's model; a few readers help the SPA's parallel calls.
                DatabaseKind::Sqlite => 4,
                DatabaseKind::Postgres => 16,
            })
            // A request waits this long for a connection before it is told 503 (try again): a
            // database restarting or failing over must not hold every request for sqlx's 30 s.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings every connection as it goes back to the pool (which also runs any
            // rollback still queued) and, by default, again as it is handed out: one more round
            // trip for each connection a request takes, about seven of sign-in's twenty-one
            // (issue 16). Only a connection that sat idle, which the database may
            // have dropped meanwhile, is pinged again.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    // When the disk fills, SQLite rolls the transaction back itself; sqlx's own
                    // ROLLBACK then fails and the connection keeps believing it is in one,
                    // refusing every later BEGIN. Such a connection is closed and replaced, so
                    // the service recovers when space returns.
                    if sqlx::Connection::is_in_transaction(conn) {
                        return Ok(false);
                    }
                    if meta.idle_for >= PING_IF_IDLE {
                        // An error closes this connection; the pool hands out another.
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        // At start-up a PostgreSQL server may still be starting (both services started
        // together): it gets half a minute, not the 3 s a request gets.
        let deadline = std::time::Instant::now() + STARTUP_WAIT;
        let pool = loop {
            match options.clone().connect(url).await {
                Ok(pool) => break pool,
                Err(e)
                    if kind == DatabaseKind::Postgres
                        && crate::error::database_unavailable(&e)
                        && std::time::Instant::now() < deadline =>
                {
                    tracing::warn!(error = %e, "the {kind} database is not answering yet; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("Failed to connect to the {kind} database")),
            }
        };
        if kind == DatabaseKind::Sqlite {
            // WAL lets readers proceed during a write; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let audit_key = crate::audit::AuditKey::derive(&crate::keys::server_key(settings)?);
        let write_gate = (kind == DatabaseKind::Sqlite).then(Default::default);
        Ok(Self { pool, kind, audit_key, write_gate })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.kind {
            DatabaseKind::Sqlite => &SQLITE_MIGRATIONS,
            DatabaseKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.context("Failed to apply the database migrations")?;
        // The first start seals the audit chain's head and opens its lanes.
        crate::audit::prepare(self).await
    }

    /// Applies the migrations up to and including `version` only: how an upgrade test builds
    /// the database an older release left behind.
    pub async fn migrate_through(&self, version: i64) -> anyhow::Result<()> {
        let all = match self.kind {
            DatabaseKind::Sqlite => &SQLITE_MIGRATIONS,
            DatabaseKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        let older: Vec<_> = all.migrations.iter().filter(|m| m.version <= version).cloned().collect();
        let migrator = Migrator { migrations: std::borrow::Cow::Owned(older), ..Migrator::DEFAULT };
        migrator.run(&self.pool).await.context("Failed to apply the older migrations")
    }

    /// A transaction that will write. SQLite gets `BEGIN IMMEDIATE`: taking the write lock up
    /// front means two writers queue instead of one failing when it upgrades a read snapshot
    /// another writer has since changed. PostgreSQL locks rows as it goes.
    ///
    /// On SQLite the writers of this process queue at the write gate, as long as they would wait
    /// for a connection (a turn not given in time is the same 503); only a writer in another
    /// process (the admin commands) still meets SQLite's busy timeout.
    pub async fn begin_write(&self) -> sqlx::Result<WriteTx> {
        let turn = match &self.write_gate {
            Some(gate) => Some(
                tokio::time::timeout(ACQUIRE_TIMEOUT, gate.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?,
            ),
            None => None,
        };
        let tx = match self.kind {
            DatabaseKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            DatabaseKind::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            kind: self.kind,
            audit_key: self.audit_key.clone(),
            pending: Vec::new(),
            _turn: turn,
        })
    }

    pub(crate) fn audit_key(&self) -> &crate::audit::AuditKey {
        &self.audit_key
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Whether the database answers a trivial query right now.
    pub async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// The newest applied migration, `None` before the first one.
    pub async fn schema_version(&self) -> anyhow::Result<Option<i64>> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(version)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Rows a sweep removes at a time (more only where several share the batch's last value).
const SWEEP_BATCH: usize = 64;

/// The condition that picks the oldest rows of `table` whose `column` is before `$1`, about
/// [`SWEEP_BATCH`] of them: the range from the column's least value to the batch's last one.
/// Bounded on both sides by values PostgreSQL reads first from the column's index, the range is
/// planned as a walk along that index whatever the table's statistics say (an upper bound
/// alone, or rows looked up by key, was planned as a scan of every row).
pub fn oldest(table: &str, column: &str) -> String {
    format!(
        "{column} < $1 AND {column} >= (SELECT MIN({column}) FROM {table}) AND {column} <= \
         COALESCE((SELECT {column} FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT 1 OFFSET {}), $1)",
        SWEEP_BATCH - 1
    )
}

/// Deletes the rows [`oldest`] picks, returning how many went.
///
/// Sweeps ride on the inserts that grow a table (a session at each sign-in, an attempt at each
/// unlock, a challenge at each ask), so they must cost the same whatever the table's statistics
/// say. An open `DELETE … WHERE column < $1` was planned by PostgreSQL as a scan of the whole
/// table while it had not yet analysed the rows just added, as on a Monday morning (2.2 ms a
/// sign-in at 20,000 sessions, issue 16). Each insert sweeps up to a batch, so a backlog still
/// shrinks faster than the table grows.
pub async fn sweep(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    column: &str,
    before: i64,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(&sweep_statement(table, column)).bind(before).execute(conn).await?.rows_affected())
}

/// The statement [`sweep`] runs, `$1` the time before which rows go (the tests read its plan).
pub fn sweep_statement(table: &str, column: &str) -> String {
    format!("DELETE FROM {table} WHERE {}", oldest(table, column))
}

/// The placeholders of row `row` (from 0) of a multi-row `VALUES` list `width` values wide:
/// `($1, $2)`, `($3, $4)`, … (the bulk writes: one statement per batch).
pub(crate) fn row_placeholders(row: usize, width: usize) -> String {
    let first = row * width + 1;
    let list: Vec<String> = (first..first + width).map(|n| format!("${n}")).collect();
    format!("({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_row_of_a_values_list_numbers_its_own_placeholders() {
        assert_eq!(row_placeholders(0, 3), "($1, $2, $3)");
        assert_eq!(row_placeholders(2, 2), "($5, $6)");
    }

    use super::*;

    #[test]
    fn the_url_scheme_selects_the_engine() {
        assert_eq!("sqlite://x.db".parse::<DatabaseKind>().unwrap(), DatabaseKind::Sqlite);
        assert_eq!("sqlite::memory:".parse::<DatabaseKind>().unwrap(), DatabaseKind::Sqlite);
        assert_eq!("postgres://h/db".parse::<DatabaseKind>().unwrap(), DatabaseKind::Postgres);
        assert_eq!("postgresql://h/db".parse::<DatabaseKind>().unwrap(), DatabaseKind::Postgres);
        assert!("mysql://h/db".parse::<DatabaseKind>().is_err());
    }
}
