//! The append-only, hash-chained audit trail (DESIGN.md, security model).
//!
//! Each row's hash is an HMAC-SHA-256, under a key kept outside the database ([`AuditKey`]), over
//! the previous row's hash and the row's own fields, each length-prefixed so no two different
//! rows can encode alike; the head beside the trail carries a seal (an HMAC of the last hash).
//! Without the key no one can recompute the chain after changing a row, nor cut rows from its end
//! and point the head at the new last one. Rows from before the key (migration 0010) kept their
//! plain SHA-256 hashes: the first keyed row, or the seal, covers them.
//!
//! The trail is [`lanes`] chains ("lanes"), each with its own sealed head in `audit_head`: 16 on
//! PostgreSQL, where a single head's row lock made every writing route's commit queue behind the
//! one before it (issue 16), and 1 on SQLite, which writes one transaction at a time anyway. A
//! transaction's entries are written at its commit onto one lane whose head it locks, so no lane
//! ever forks, even with several backend instances; rows are ordered by `id` across lanes.
//!
//! Nothing in the database is trusted to say a head is genuine: a writer chains onto a head only
//! as sealed, and re-seals only a head whose seal it has checked, so a head someone moved stays
//! visibly unsealed however many rows follow it; start-up seals only a new, empty trail.

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

    /// The seal of lane `lane`'s head over its last row's hash, as `kind` writes it: with one
    /// lane (SQLite) the seal the single chain always had; with lanes, bound to the lane's
    /// number, so a head moved to another lane does not verify.
    fn seal(&self, kind: DatabaseKind, lane: i64, last_hash: &[u8]) -> Vec<u8> {
        if lanes(kind) == 1 {
            return self.single_seal(last_hash);
        }
        // Labelled apart from the single chain's seal (`head` vs `lane`, same length), so one
        // can never be made to stand for the other whatever bytes a head holds.
        let mac = self.mac().chain_update(b"lane").chain_update(lane.to_be_bytes());
        mac.chain_update(last_hash).finalize().into_bytes().to_vec()
    }

    /// The seal of the single chain, before lanes (and SQLite's still).
    fn single_seal(&self, last_hash: &[u8]) -> Vec<u8> {
        self.mac().chain_update(b"head").chain_update(last_hash).finalize().into_bytes().to_vec()
    }

    /// Whether `stored` is the key's seal, as `kind` writes it, of lane `lane`'s head `hash`.
    fn seals(&self, kind: DatabaseKind, lane: i64, hash: &[u8], stored: Option<&[u8]>) -> bool {
        is_seal(hash, stored, |hash| self.seal(kind, lane, hash))
    }

    /// Whether `stored` is the single chain's seal of `hash`: lane 1's before the lanes are opened.
    fn single_seals(&self, hash: &[u8], stored: Option<&[u8]>) -> bool {
        is_seal(hash, stored, |hash| self.single_seal(hash))
    }
}

/// Whether `stored` is `seal` of `hash`, a 32-byte hash (compared in constant time).
fn is_seal(hash: &[u8], stored: Option<&[u8]>, seal: impl FnOnce(&[u8]) -> Vec<u8>) -> bool {
    stored.is_some_and(|stored| hash.len() == 32 && bool::from(seal(hash).ct_eq(stored)))
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

/// Rows written by one `INSERT`: 9 bound values each, well under every engine's limit.
const ROWS_PER_INSERT: usize = 1000;

/// How many lanes the trail has on `kind`.
pub fn lanes(kind: DatabaseKind) -> i64 {
    match kind {
        DatabaseKind::Postgres => 16,
        DatabaseKind::Sqlite => 1,
    }
}

/// The hash a lane's first row chains from: zeros for lane 1, as the single chain always had;
/// the others their number (migration 0016), so no two lanes' rows can hash alike.
pub fn genesis(lane: i64) -> Vec<u8> {
    let mut start = vec![0u8; 32];
    if lane != 1 {
        start[24..].copy_from_slice(&lane.to_be_bytes());
    }
    start
}

/// Where a waiter starts among the lanes when every lane is held, taken in turn so waiters
/// spread out.
static NEXT_LANE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A lane's head, locked by this transaction.
struct Head {
    lane: i64,
    hash: Vec<u8>,
    seal: Option<Vec<u8>>,
}

/// Locks a lane's head for this transaction and reads it.
///
/// On PostgreSQL the first head no other transaction holds (`SKIP LOCKED`), so up to
/// [`lanes`] commits chain and flush at once instead of queueing on one row lock through each
/// other's WAL flush (issue 16: that queue held most of sign-in's time at 500/s); if every one
/// is held, it waits for one, a different one each time. Besides lane 1, only lanes with a seal
/// are taken: the others are not open yet (while a trail from before the key waits for
/// `seal-audit`, everything goes onto lane 1). SQLite's transaction holds the write lock
/// already: lane 1.
async fn take_lane(tx: &mut Transaction<'static, Any>, kind: DatabaseKind) -> sqlx::Result<Head> {
    let head: (i64, Vec<u8>, Option<Vec<u8>>) = if kind != DatabaseKind::Postgres {
        sqlx::query_as("SELECT id, hash, seal FROM audit_head WHERE id = 1").fetch_one(&mut **tx).await?
    } else {
        let free = sqlx::query_as(
            "SELECT id, hash, seal FROM audit_head WHERE id = 1 OR seal IS NOT NULL \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut **tx)
        .await?;
        match free {
            Some(head) => head,
            None => {
                let turn =
                    NEXT_LANE.fetch_add(1, std::sync::atomic::Ordering::Relaxed).rem_euclid(lanes(kind));
                sqlx::query_as(&format!(
                    "SELECT id, hash, seal FROM audit_head WHERE id = 1 OR seal IS NOT NULL \
                     ORDER BY (id + $1) % {} LIMIT 1 FOR UPDATE",
                    lanes(kind)
                ))
                .bind(turn)
                .fetch_one(&mut **tx)
                .await?
            }
        }
    };
    Ok(Head { lane: head.0, hash: head.1, seal: head.2 })
}

/// Writes a transaction's entries to the trail, chained in order on one lane, as the last thing
/// before its `COMMIT`. The lane's head is locked and read, then moved once; taking it last, not
/// at the first `append`, keeps it held for two round trips and the commit (issue 16: it had
/// been held across every statement of sign-in and unlock). Every appender takes one head and
/// takes it last, so it closes no lock cycle.
///
/// The head is sealed again only if its seal was the key's: a head someone pointed back at an
/// earlier row keeps the seal that no longer fits it, and the damage stays on record for
/// verifying to find, while the service goes on recording.
pub(crate) async fn write(
    tx: &mut Transaction<'static, Any>,
    kind: DatabaseKind,
    key: &AuditKey,
    pending: &[Pending],
) -> sqlx::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let head = take_lane(tx, kind).await?;
    let (lane, genuine) = (head.lane, key.seals(kind, head.lane, &head.hash, head.seal.as_deref()));
    if !genuine {
        tracing::error!(
            lane,
            "the audit trail's head is not sealed by the key: it was altered; verify the trail"
        );
    }
    let mut previous = head.hash;
    let at = now_unix();
    let last_chunk = (pending.len() - 1) / ROWS_PER_INSERT;
    for (n, chunk) in pending.chunks(ROWS_PER_INSERT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO audit_log (at, actor, event, subject, details, prev_hash, hash, keyed, lane) VALUES ",
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
            sql.push_str(&crate::db::row_placeholders(i, 9));
            rows.push((entry, std::mem::replace(&mut previous, hash.clone()), hash));
        }
        // PostgreSQL moves the head in the statement that writes the last rows: one round trip
        // fewer with the lock held. (SQLite has no INSERT inside WITH; its round trips are calls.)
        let moves_head = kind == DatabaseKind::Postgres && n == last_chunk;
        if moves_head {
            let at_head = chunk.len() * 9 + 1;
            sql = format!(
                "WITH written AS ({sql}) UPDATE audit_head SET hash = ${at_head}, seal = ${} WHERE id = ${}",
                at_head + 1,
                at_head + 2
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
                .bind(1_i64)
                .bind(lane);
        }
        if moves_head {
            let seal = if genuine { Some(key.seal(kind, lane, &previous)) } else { head.seal.clone() };
            statement = statement.bind(previous.clone()).bind(seal).bind(lane);
        }
        statement.execute(&mut **tx).await?;
    }
    if kind != DatabaseKind::Postgres {
        let seal = if genuine { Some(key.seal(kind, lane, &previous)) } else { head.seal };
        sqlx::query("UPDATE audit_head SET hash = $1, seal = $2 WHERE id = $3")
            .bind(previous)
            .bind(seal)
            .bind(lane)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The event of the entry, on lane 1, that opened the other lanes: from it on, each must carry
/// the key's seal ([`open_lanes`]).
pub const LANES_OPENED: &str = "audit_lanes_opened";

/// Readies the trail at start-up: seals a new trail's head, then opens the lanes.
pub async fn prepare(db: &Database) -> anyhow::Result<()> {
    seal_first_head(db, false).await?;
    open_lanes(db).await
}

/// Seals lane 1's head as it stands, if it has no seal: `backend admin seal-audit`, run once by
/// an operator after upgrading from a release before the keyed trail (migration 0010), whose
/// head was never sealed. Returns whether it sealed; the lanes are opened after it.
pub async fn seal_as_it_stands(db: &Database) -> anyhow::Result<bool> {
    let sealed = seal_first_head(db, true).await?;
    open_lanes(db).await?;
    Ok(sealed)
}

/// Seals lane 1's head with the single chain's seal if it has none: `as_it_stands` (the
/// operator's word), or else only on a new database, an empty head over no rows. Start-up seals
/// nothing else, since anything else in the database (a `keyed` flag, the migrations table)
/// could have been set by whoever altered the trail. Returns whether it sealed.
async fn seal_first_head(db: &Database, as_it_stands: bool) -> anyhow::Result<bool> {
    let mut tx = db.begin_write().await?;
    let (hash, seal): (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT hash, seal FROM audit_head WHERE id = 1").fetch_one(&mut **tx).await?;
    let mut sealed = seal.is_none() && hash.len() == 32;
    if sealed && !as_it_stands {
        let any: Option<i64> =
            sqlx::query_scalar("SELECT id FROM audit_log LIMIT 1").fetch_optional(&mut **tx).await?;
        sealed = hash == genesis(1) && any.is_none();
    }
    if sealed {
        sqlx::query("UPDATE audit_head SET seal = $1 WHERE id = 1 AND seal IS NULL")
            .bind(db.audit_key().single_seal(&hash))
            .execute(&mut **tx)
            .await?;
    }
    tx.commit().await?;
    Ok(sealed)
}

/// Opens the lanes beyond the first, once (migration 0016 made them): seals lane 1's head in the
/// lanes' form and the others' empty heads, and records it on lane 1 ([`LANES_OPENED`]), in one
/// transaction. The entry, in lane 1's keyed chain where it cannot be cut out unseen, is what
/// makes an unsealed lane damage from then on; a later start finds it and seals nothing.
///
/// Whether the entry is there is a plain query anyone can fool (hide the entry for one start,
/// put it back after), so the lanes open only over a trail that verifies whole, checked with
/// lane 1 held so nothing is written between the check and the seals: with the entry cut out,
/// lane 1's chain is broken and nothing is sealed.
async fn open_lanes(db: &Database) -> anyhow::Result<()> {
    if lanes(db.kind()) == 1 || lanes_opened(db.pool()).await? {
        return Ok(());
    }
    let key = db.audit_key();
    let mut tx = db.begin_write().await?;
    // Lane 1's lock makes instances that start together open the lanes one after the other, and
    // this transaction's entry goes onto lane 1: the first lane, and one it holds.
    let (hash, seal): (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT hash, seal FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **tx)
            .await?;
    if lanes_opened(&mut **tx).await? {
        return Ok(());
    }
    // Lanes not yet open leave lane 1 with the single chain's seal; without it (a trail waiting
    // for `seal-audit`, or one whose entry was cut out) nothing opens, and every start is spared
    // walking a trail that cannot verify.
    if !key.single_seals(&hash, seal.as_deref()) {
        tracing::warn!("the audit trail's first head is not sealed as before the lanes; they stay closed");
        return Ok(());
    }
    if let Some(row) = first_broken_row(db).await? {
        tracing::warn!(row, "the audit trail does not verify; its lanes stay closed");
        return Ok(());
    }
    sqlx::query("UPDATE audit_head SET seal = $1 WHERE id = 1")
        .bind(key.seal(db.kind(), 1, &hash))
        .execute(&mut **tx)
        .await?;
    for lane in 2..=lanes(db.kind()) {
        let start = genesis(lane);
        sqlx::query("UPDATE audit_head SET seal = $1 WHERE id = $2 AND seal IS NULL AND hash = $3")
            .bind(key.seal(db.kind(), lane, &start))
            .bind(lane)
            .bind(&start)
            .execute(&mut **tx)
            .await?;
    }
    append(
        &mut tx,
        Entry::new(SYSTEM, LANES_OPENED).details(serde_json::json!({ "lanes": lanes(db.kind()) })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(lanes = lanes(db.kind()), "opened the audit trail's lanes");
    Ok(())
}

async fn lanes_opened<'c>(conn: impl sqlx::Executor<'c, Database = Any>) -> sqlx::Result<bool> {
    let entry: Option<i64> = sqlx::query_scalar("SELECT id FROM audit_log WHERE event = $1 LIMIT 1")
        .bind(LANES_OPENED)
        .fetch_optional(conn)
        .await?;
    Ok(entry.is_some())
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

/// One lane as the verifier walks it.
struct LaneWalk {
    head: Vec<u8>,
    seal: Option<Vec<u8>>,
    /// The hash of the lane's last row so far ([`genesis`] before its first).
    last: Vec<u8>,
}

impl LaneWalk {
    /// Whether the lane's rows end at its head and the head carries the key's seal.
    fn ends_sealed(&self, key: &AuditKey, kind: DatabaseKind, lane: i64) -> bool {
        self.last == self.head && key.seals(kind, lane, &self.head, self.seal.as_deref())
    }

    /// Whether the lane's rows end at its head and the head carries the single chain's seal.
    fn ends_single_sealed(&self, key: &AuditKey) -> bool {
        self.last == self.head && key.single_seals(&self.head, self.seal.as_deref())
    }

    /// Whether the lane was never written: an empty lane before the lanes were opened.
    fn never_written(&self, lane: i64) -> bool {
        self.seal.is_none() && self.head == genesis(lane) && self.last == self.head
    }
}

/// Walks the whole trail, a page at a time; returns the id of the first row that does not
/// verify or is missing, if any. Each lane must also end exactly at its head, sealed, so
/// deleting a lane's newest rows is found too (the id then is one past the last row).
///
/// It reads one snapshot (a repeatable-read transaction): lanes commit independently, so
/// between pages a row with a lower id than one already read can appear, and a head read
/// before the rows could be behind them.
pub async fn first_broken_row(db: &Database) -> anyhow::Result<Option<i64>> {
    let key = db.audit_key();
    let mut tx = match db.kind() {
        DatabaseKind::Postgres => {
            db.pool().begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
        }
        // SQLite's read transaction is one snapshot (WAL) from its first read.
        DatabaseKind::Sqlite => db.pool().begin().await?,
    };
    let heads: Vec<(i64, Vec<u8>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, hash, seal FROM audit_head ORDER BY id").fetch_all(&mut *tx).await?;
    let lane_count = lanes(db.kind());
    let mut walks: std::collections::BTreeMap<i64, LaneWalk> = heads
        .into_iter()
        .filter(|(lane, _, _)| (1..=lane_count).contains(lane))
        .map(|(lane, head, seal)| (lane, LaneWalk { head, seal, last: genesis(lane) }))
        .collect();
    let mut keyed_seen = false;
    let mut opened = false;
    // The first page has no lower bound: a row given an id below the first one written, however
    // low, is read too.
    let mut last_id: Option<i64> = None;
    loop {
        let rows = match last_id {
            None => sqlx::query(
                "SELECT id, at, actor, event, subject, details, prev_hash, hash, keyed, lane FROM audit_log \
                 ORDER BY id LIMIT $1",
            )
            .bind(VERIFY_PAGE),
            Some(after) => sqlx::query(
                "SELECT id, at, actor, event, subject, details, prev_hash, hash, keyed, lane FROM audit_log \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(VERIFY_PAGE),
        }
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        let page_end: i64 = last.try_get("id")?;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            // A row on a lane the trail does not have (or none), or whose head is gone.
            let Some(lane) = row.try_get::<Option<i64>, _>("lane")? else { return Ok(Some(id)) };
            let Some(walk) = walks.get_mut(&lane) else { return Ok(Some(id)) };
            let previous: Vec<u8> = row.try_get("prev_hash")?;
            let subject: Option<String> = row.try_get("subject")?;
            let (at, actor, event, details): (i64, String, String, String) =
                (row.try_get("at")?, row.try_get("actor")?, row.try_get("event")?, row.try_get("details")?);
            let Some(keyed) = row.try_get::<Option<i64>, _>("keyed")? else { return Ok(Some(id)) };
            let keyed = keyed != 0;
            // Once the chain is keyed every later row is: an unkeyed row after a keyed one was
            // written by someone without the key, and so was one on any lane but the first
            // (the lanes came after the key).
            if (keyed_seen || lane != 1) && !keyed {
                return Ok(Some(id));
            }
            keyed_seen |= keyed;
            let hash = if keyed {
                keyed_hash(key, &previous, at, &actor, &event, subject.as_deref(), &details)
            } else {
                chain_hash(&previous, at, &actor, &event, subject.as_deref(), &details)
            };
            let stored: Vec<u8> = row.try_get("hash")?;
            if previous != walk.last || stored != hash {
                return Ok(Some(id));
            }
            walk.last = stored;
            opened |= keyed && lane == 1 && event == LANES_OPENED;
        }
        last_id = Some(page_end);
    }
    tx.rollback().await?;
    // Until the lanes are opened lane 1 carries the single chain's seal and the others are empty
    // and need none; from the entry that opened them on, every head carries the lanes' seal, and
    // one without it is one someone moved, cut or cleared (or an instance of the release before
    // the lanes wrote, which must be stopped before they open).
    let kind = db.kind();
    let whole = (1..=lane_count).all(|lane| {
        walks.get(&lane).is_some_and(|walk| {
            walk.ends_sealed(key, kind, lane)
                || (!opened && lane == 1 && walk.ends_single_sealed(key))
                || (!opened && lane > 1 && walk.never_written(lane))
        })
    });
    Ok((!whole).then_some(last_id.map_or(1, |id| id.max(0).saturating_add(1))))
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
/// are appended (migration 0014; on PostgreSQL one count per lane, added up here), so a year's
/// report reads a few thousand rows, not the trail.
pub async fn daily_counts(
    conn: &mut sqlx::AnyConnection,
    from_day: i64,
    to_day: i64,
    events: &[&str],
) -> sqlx::Result<Vec<(i64, String, i64)>> {
    let placeholders: Vec<String> = (3..3 + events.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT day, event, CAST(SUM(n) AS BIGINT) AS n FROM audit_daily WHERE day >= $1 AND day <= $2 \
         AND event IN ({}) GROUP BY day, event",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(from_day).bind(to_day);
    for event in events {
        query = query.bind(*event);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((row.try_get("day")?, row.try_get("event")?, row.try_get("n")?))).collect()
}
