//! `backend admin backup FILE`: a consistent copy of the embedded SQLite database while the
//! service runs (`VACUUM INTO`: one read transaction, so the copy is of one moment, compacted).
//! PostgreSQL has its own tools for this (`pg_dump`, base backups with WAL archiving).

use std::path::Path;

use anyhow::{bail, Context};

use crate::db::{Database, DatabaseKind};

pub async fn backup(db: &Database, file: &Path) -> anyhow::Result<()> {
    if db.kind() != DatabaseKind::Sqlite {
        bail!(
            "backup copies the embedded SQLite database; for PostgreSQL use its own tools: \
             `pg_dump --format=custom` for a copy, or base backups with WAL archiving (README, Backups)"
        );
    }
    if file.exists() {
        bail!("{} already exists; a backup never overwrites a file", file.display());
    }
    let target = file.to_str().context("the backup path must be valid UTF-8")?;
    // A bound parameter is not allowed here in every SQLite version; the quote is escaped.
    let statement = format!("VACUUM INTO '{}'", target.replace('\'', "''"));
    sqlx::query(&statement)
        .execute(db.pool())
        .await
        .with_context(|| format!("Failed to write the backup {}", file.display()))?;
    Ok(())
}
