//! The append-only, hash-chained audit trail (DESIGN.md, security model).
//!
//! Each row's hash is an HMAC-SHA-256, under a key kept outside the database ([`AuditKey`]), over
//! the previous row's hash and the row's own fields, each length-prefixed so no two different
//! rows can encode alike; the head beside the trail carries a seal (an HMAC of the last hash).
//! Without the key no one can recompute the chain after changing a row, nor cut rows from its end
//! and point the head at the new last one. Rows from before the key (migration 0010) kept their
//! plain SHA-256 hashes: the first keyed row, or the seal, covers them. A transaction's entries are
//! written at its commit, after updating the single `audit_head` row, which queues concurrent
//! appenders (a row lock in PostgreSQL, the write lock in SQLite), so the chain never forks even
//! with several backend instances.

use hmac::{Hmac, Mac};
use protocol::ra::AuditRow;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    db::{Database, DatabaseKind, WriteTx},
    time::now_unix,
};

/// The key of the audit chain, derived from the server key (which production keeps in a secret
/// store, the same on every instance).
#[derive(Clone)]
pub struct AuditKey(std::sync::Arc<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

impl AuditKey {
    pub fn derive(server_key: &[u8; 32]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(
            &mac(server_key).chain_update(b"smartcard-selfservice audit chain v1").finalize().into_bytes(),
        );
        Self(std::sync::Arc::new(key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        mac(&self.0[..])
    }

    /// The head's seal over the last row's hash.
    fn seal(&self, last_hash: &[u8]) -> Vec<u8> {
        self.mac().chain_update(b"head").chain_update(last_hash).finalize().into_bytes().to_vec()
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length")
}

/// Who did it: a user id, or one of these.
pub const ANONYMOUS: &str = "anonymous";
pub const SYSTEM: &str = "system";

/// One event. `details` is JSON and must never hold a secret.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor: &'a str,
    pub event: &'a str,
    pub subject: Option<&'a str>,
    pub details: serde_json::Value,
}

impl<'a> Entry<'a> {
    pub fn new(actor: &'a str, event: &'a str) -> Self {
        Self { actor, event, subject: None, details: serde_json::Value::Object(Default::default()) }
    }

    pub fn subject(mut self, subject: &'a str) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or_default();
        self
    }
}

/// Appends `entry` inside the caller's transaction, so the event is recorded exactly when the
/// change it describes is: the row is written by the transaction's commit ([`WriteTx::commit`]).
pub async fn append(tx: &mut WriteTx, entry: Entry<'_>) -> anyhow::Result<()> {
    append_all(tx, &[entry]).await
}

/// Appends `entries` in order inside the caller's transaction, as [`append`] would one by one.
pub async fn append_all(tx: &mut WriteTx, entries: &[Entry<'_>]) -> anyhow::Result<()> {
    tx.pending.extend(entries.iter().map(|entry| Pending {
        actor: entry.actor.to_owned(),
        event: entry.event.to_owned(),
        subject: entry.subject.map(str::to_owned),
        details: entry.details.to_string(),
    }));
    Ok(())
}

/// An entry waiting in its transaction for the commit that writes it.
#[derive(Debug)]
pub(crate) struct Pending {
    actor: String,
    event: String,
    subject: Option<String>,
    details: String,
}

impl Pending {
    pub(crate) fn event(&self) -> &str {
        &self.event
    }
}

/// Rows written by one `INSERT`: 8 bound values each, well under every engine's limit.
const ROWS_PER_INSERT: usize = 1000;

/// Writes a transaction's entries to the trail, chained in order, as the last thing before its
/// `COMMIT`. The head is locked, read and moved once: a row lock in PostgreSQL (SQLite's write
/// lock is the transaction's already), which every other appender waits for until the commit.
/// Taking it last, not at the first `append`, is what keeps that wait short (issue 16: the lock
/// had been held across every statement of sign-in and unlock, p99 30–77 ms at 500/s): three
/// round trips now, the lock and read in one statement, the rows and the head's move in one
/// more (on PostgreSQL), then the commit. Every appender takes it last, so it closes no cycle.
pub(crate) async fn write(
    tx: &mut Transaction<'static, Any>,
    kind: DatabaseKind,
    key: &AuditKey,
    pending: &[Pending],
) -> sqlx::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut previous: Vec<u8> =
        sqlx::query_scalar("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
            .fetch_one(&mut **tx)
            .await?;
    let at = now_unix();
    let last_chunk = (pending.len() - 1) / ROWS_PER_INSERT;
    for (n, chunk) in pending.chunks(ROWS_PER_INSERT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO audit_log (at, actor, event, subject, details, prev_hash, hash, keyed) VALUES ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, entry) in chunk.iter().enumerate() {
            let hash = keyed_hash(
                key,
                &previous,
                at,
                &entry.actor,
                &entry.event,
                entry.subject.as_deref(),
                &entry.details,
            )
            .to_vec();
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&crate::db::row_placeholders(i, 8));
            rows.push((entry, std::mem::replace(&mut previous, hash.clone()), hash));
        }
        // PostgreSQL moves the head in the statement that writes the last rows: one round trip
        // fewer with the lock held. (SQLite has no INSERT inside WITH; its round trips are calls.)
        let moves_head = kind == DatabaseKind::Postgres && n == last_chunk;
        if moves_head {
            let at_head = chunk.len() * 8 + 1;
            sql = format!(
                "WITH written AS ({sql}) UPDATE audit_head SET hash = ${at_head}, seal = ${} WHERE id = 1",
                at_head + 1
            );
        }
        let mut statement = sqlx::query(&sql);
        for (entry, prev_hash, hash) in rows {
            statement = statement
                .bind(at)
                .bind(entry.actor.as_str())
                .bind(entry.event.as_str())
                .bind(entry.subject.as_deref())
                .bind(entry.details.as_str())
                .bind(prev_hash)
                .bind(hash)
                .bind(1_i64);
        }
        if moves_head {
            statement = statement.bind(previous.clone()).bind(key.seal(&previous));
        }
        statement.execute(&mut **tx).await?;
    }
    if kind != DatabaseKind::Postgres {
        let seal = key.seal(&previous);
        sqlx::query("UPDATE audit_head SET hash = $1, seal = $2 WHERE id = 1")
            .bind(previous)
            .bind(seal)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Seals the head if it has no seal yet: the first start after the upgrade to a keyed chain.
/// From then on a head without a valid seal is damage.
pub async fn seal_head_once(db: &Database) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let head: (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT hash, seal FROM audit_head WHERE id = 1").fetch_one(&mut **tx).await?;
    if head.1.is_none() {
        sqlx::query("UPDATE audit_head SET seal = $1 WHERE id = 1 AND seal IS NULL")
            .bind(db.audit_key().seal(&head.0))
            .execute(&mut **tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Appends one event in its own transaction.
pub async fn record(db: &Database, entry: Entry<'_>) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    append(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// A keyed row's hash: [`chain_hash`]'s fields under the HMAC.
fn keyed_hash(
    key: &AuditKey,
    previous: &[u8],
    at: i64,
    actor: &str,
    event: &str,
    subject: Option<&str>,
    details: &str,
) -> [u8; 32] {
    let mut mac = key.mac();
    each_field(previous, at, actor, event, subject, details, |bytes| mac.update(bytes));
    mac.finalize().into_bytes().into()
}

/// An unkeyed row's hash (rows from before migration 0010).
pub fn chain_hash(
    previous: &[u8],
    at: i64,
    actor: &str,
    event: &str,
    subject: Option<&str>,
    details: &str,
) -> [u8; 32] {
    let mut hash = Sha256::new();
    each_field(previous, at, actor, event, subject, details, |bytes| hash.update(bytes));
    hash.finalize().into()
}

/// Feeds the row's fields, each length-prefixed, to `feed`.
fn each_field(
    previous: &[u8],
    at: i64,
    actor: &str,
    event: &str,
    subject: Option<&str>,
    details: &str,
    mut feed: impl FnMut(&[u8]),
) {
    let mut field = |bytes: &[u8]| {
        feed(&(bytes.len() as u64).to_be_bytes());
        feed(bytes);
    };
    field(previous);
    field(&at.to_be_bytes());
    field(actor.as_bytes());
    field(event.as_bytes());
    match subject {
        Some(subject) => field(subject.as_bytes()),
        None => field(&[0xFF]),
    }
    field(details.as_bytes());
}

/// Rows read per query while verifying: memory stays constant however long the trail is.
const VERIFY_PAGE: i64 = 1000;

/// Walks the whole chain, a page at a time; returns the id of the first row that does not
/// verify or is missing, if any. The chain must also reach the head recorded beside it, so
/// deleting the newest rows is found too (the id then is the first one missing). Rows appended
/// while it runs come after the head it read first, so they never look like damage.
pub async fn first_broken_row(db: &Database) -> anyhow::Result<Option<i64>> {
    let key = db.audit_key();
    let (head, seal): (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT hash, seal FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
    // A head that is not the key's: rows were cut from the end and the head moved to match.
    let head_sealed = seal.is_some_and(|seal| bool::from(key.seal(&head).ct_eq(&seal)));
    let mut keyed_seen = false;
    let mut expected_previous = vec![0u8; 32];
    let mut reached_head = head == expected_previous;
    let mut last_id = 0_i64;
    loop {
        let rows = sqlx::query(
            "SELECT id, at, actor, event, subject, details, prev_hash, hash, keyed FROM audit_log \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(last_id)
        .bind(VERIFY_PAGE)
        .fetch_all(db.pool())
        .await?;
        let Some(last) = rows.last() else { break };
        let page_end: i64 = last.try_get("id")?;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let previous: Vec<u8> = row.try_get("prev_hash")?;
            let subject: Option<String> = row.try_get("subject")?;
            let (at, actor, event, details): (i64, String, String, String) =
                (row.try_get("at")?, row.try_get("actor")?, row.try_get("event")?, row.try_get("details")?);
            let keyed = row.try_get::<i64, _>("keyed")? != 0;
            // Once the chain is keyed every later row is: an unkeyed row after a keyed one was
            // written by someone without the key.
            if keyed_seen && !keyed {
                return Ok(Some(id));
            }
            keyed_seen |= keyed;
            let hash = if keyed {
                keyed_hash(key, &previous, at, &actor, &event, subject.as_deref(), &details)
            } else {
                chain_hash(&previous, at, &actor, &event, subject.as_deref(), &details)
            };
            let stored: Vec<u8> = row.try_get("hash")?;
            if previous != expected_previous || stored != hash {
                return Ok(Some(id));
            }
            reached_head |= stored == head;
            expected_previous = stored;
        }
        last_id = page_end;
    }
    Ok((!reached_head || !head_sealed).then_some(last_id + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash_and_fields_cannot_run_together() {
        let base = chain_hash(&[0; 32], 1, "a", "e", Some("s"), "{}");
        assert_ne!(base, chain_hash(&[1; 32], 1, "a", "e", Some("s"), "{}"));
        assert_ne!(base, chain_hash(&[0; 32], 2, "a", "e", Some("s"), "{}"));
        assert_ne!(base, chain_hash(&[0; 32], 1, "b", "e", Some("s"), "{}"));
        assert_ne!(base, chain_hash(&[0; 32], 1, "a", "f", Some("s"), "{}"));
        assert_ne!(base, chain_hash(&[0; 32], 1, "a", "e", None, "{}"));
        assert_ne!(base, chain_hash(&[0; 32], 1, "a", "e", Some("s"), "{ }"));
        assert_ne!(
            chain_hash(&[0; 32], 1, "ab", "c", None, "{}"),
            chain_hash(&[0; 32], 1, "a", "bc", None, "{}")
        );
    }
}

/// Which rows of the trail to read: a time range, rows older than `before`, optionally one
/// event, optionally a person (rows whose subject is one of `subjects`, or whose actor is the
/// last of them: the person's user id).
#[derive(Debug, Clone)]
pub struct Filter {
    pub from: i64,
    pub to: i64,
    pub before: i64,
    pub event: Option<String>,
    pub subjects: Option<Vec<String>>,
}

/// The newest `limit` rows matching `filter`, newest first.
pub async fn page(
    conn: &mut sqlx::AnyConnection,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<AuditRow>> {
    let mut sql = String::from(
        "SELECT id, at, actor, event, subject, details FROM audit_log WHERE at >= $1 AND at < $2 AND id < $3",
    );
    if filter.event.is_some() {
        sql.push_str(" AND event = $4");
    }
    if let Some(subjects) = &filter.subjects {
        let first = if filter.event.is_some() { 5 } else { 4 };
        let list: Vec<String> = (0..subjects.len()).map(|i| format!("${}", first + i)).collect();
        let person_index = first + subjects.len() - 1;
        sql.push_str(&format!(" AND (subject IN ({}) OR actor = ${person_index})", list.join(", ")));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ");
    sql.push_str(&limit.to_string());
    let mut statement = sqlx::query(&sql).bind(filter.from).bind(filter.to).bind(filter.before);
    if let Some(event) = &filter.event {
        statement = statement.bind(event);
    }
    for subject in filter.subjects.iter().flatten() {
        statement = statement.bind(subject);
    }
    let rows = statement.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(AuditRow {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                event: row.try_get("event")?,
                subject: row.try_get("subject")?,
                details: row.try_get("details")?,
            })
        })
        .collect()
}

pub async fn count(conn: &mut sqlx::AnyConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(&mut *conn).await
}

/// How often each of `events` happened on each UTC day (days since the epoch) of
/// `[from_day, to_day]`: `(day, event, count)`, from the per-day counts a trigger keeps as rows
/// are appended (migration 0014), so a year's report reads a few thousand rows, not the trail.
pub async fn daily_counts(
    conn: &mut sqlx::AnyConnection,
    from_day: i64,
    to_day: i64,
    events: &[&str],
) -> sqlx::Result<Vec<(i64, String, i64)>> {
    let placeholders: Vec<String> = (3..3 + events.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT day, event, n FROM audit_daily WHERE day >= $1 AND day <= $2 AND event IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(from_day).bind(to_day);
    for event in events {
        query = query.bind(*event);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((row.try_get("day")?, row.try_get("event")?, row.try_get("n")?))).collect()
}
