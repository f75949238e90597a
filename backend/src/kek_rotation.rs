//! `backend admin rotate-kek --new-kek-file FILE`: every sealed secret (cards' PUKs, pending PUKs
//! and management keys, half-finished issuances' secrets, queued mail bodies) sealed again under
//! a new key-encryption key.
//!
//! Crash-safe by construction: each value records which KEK sealed it ([`Vault::sealed_by`]) and
//! is replaced on its own, only if it is still the value that was read (a running backend may
//! rotate a PUK meanwhile), so a stopped rotation leaves values under the old key and the new one,
//! both of which open; running the command again finishes it. Nothing secret is printed.

use std::path::Path;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use sqlx::Row;

use crate::{
    audit::{self, Entry, SYSTEM},
    config::Settings,
    db::Database,
    mail::SEALED_PREFIX,
    vault::{decode_kek, keks, Vault, PREVIOUS_KEK_FILE},
};

/// Rows read at a time.
const PAGE: i64 = 500;

/// What a sealed value is bound to, which decides how it is opened.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Puk,
    ManagementKey,
    /// Stored as text: `sealed:v1:` and the base64 of the sealed bytes.
    Mail,
}

/// One column of sealed values: its table, the row's key (an integer, or text for
/// issuances), the column the value is bound to (GUID or recipient), and the value's column.
#[derive(Debug, Clone, Copy)]
struct Column {
    table: &'static str,
    key: &'static str,
    integer_key: bool,
    bound_to: &'static str,
    column: &'static str,
    kind: Kind,
}

#[rustfmt::skip] // One line a column: the table reads as the list of what is sealed.
const COLUMNS: [Column; 6] = [
    Column { table: "cards", key: "id", integer_key: true, bound_to: "guid", column: "puk_sealed", kind: Kind::Puk },
    Column { table: "cards", key: "id", integer_key: true, bound_to: "guid", column: "puk_pending_sealed", kind: Kind::Puk },
    Column { table: "cards", key: "id", integer_key: true, bound_to: "guid", column: "mgmt_key_sealed", kind: Kind::ManagementKey },
    Column { table: "issuances", key: "id", integer_key: false, bound_to: "card_guid", column: "puk_sealed", kind: Kind::Puk },
    Column { table: "issuances", key: "id", integer_key: false, bound_to: "card_guid", column: "mgmt_key_sealed", kind: Kind::ManagementKey },
    Column { table: "mail_outbox", key: "id", integer_key: true, bound_to: "to_addr", column: "body", kind: Kind::Mail },
];

/// What a rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Values sealed again under the new key.
    pub resealed: u64,
    /// Values already under it (a rerun after a stop).
    pub already: u64,
}

/// A row's key, as read.
#[derive(Debug, Clone)]
enum Key {
    Integer(i64),
    Text(String),
}

/// Seals everything under `new_kek` (opening with the configured keys), then, for the embedded
/// default (no `puk_kek` set), makes `new_kek` the one in `<data_dir>/puk.kek` and keeps the old
/// one in `puk.kek.previous` so that anything sealed meanwhile still opens.
///
/// `stop_after`: a fault-injection hook for the tests — abort the process after that many values,
/// as a `kill -9` would.
pub async fn rotate(
    db: &Database,
    settings: &Settings,
    new_kek: &[u8; 32],
    stop_after: Option<u64>,
) -> anyhow::Result<Rotated> {
    let (current_key, others) = keks(settings)?;
    let current = Vault::with_others(&current_key, &others);
    let opening: Vec<[u8; 32]> = std::iter::once(current_key).chain(others).collect();
    let vault = Vault::with_others(new_kek, &opening);
    let mut rotated = Rotated::default();
    for column in COLUMNS {
        rotate_column(db, &vault, column, &mut rotated, stop_after).await?;
    }
    audit::record(
        db,
        Entry::new(SYSTEM, "kek_rotated").details(serde_json::json!({
            "kek_id": hex(&vault.kek_id()),
            "resealed": rotated.resealed,
            "already": rotated.already,
        })),
    )
    .await?;
    if settings.puk_kek.is_none() && current.kek_id() != vault.kek_id() {
        swap_local_key(&settings.data_dir, &current_key, new_kek)?;
    }
    Ok(rotated)
}

async fn rotate_column(
    db: &Database,
    vault: &Vault,
    column: Column,
    rotated: &mut Rotated,
    stop_after: Option<u64>,
) -> anyhow::Result<()> {
    let Column { table, key, bound_to, column: value, .. } = column;
    let mut after = if column.integer_key { Key::Integer(i64::MIN) } else { Key::Text(String::new()) };
    loop {
        let select = format!(
            "SELECT {key}, {bound_to}, {value} FROM {table} WHERE {value} IS NOT NULL AND {key} > $1 \
             ORDER BY {key} LIMIT {PAGE}"
        );
        let query = sqlx::query(&select);
        let query = match &after {
            Key::Integer(n) => query.bind(*n),
            Key::Text(t) => query.bind(t.clone()),
        };
        let rows = query.fetch_all(db.pool()).await?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = if column.integer_key { Key::Integer(last.try_get(0)?) } else { Key::Text(last.try_get(0)?) };
        for row in &rows {
            let row_key =
                if column.integer_key { Key::Integer(row.try_get(0)?) } else { Key::Text(row.try_get(0)?) };
            let bound: String = row.try_get(1)?;
            let stored = Stored::read(row, column.kind)?;
            let Some(sealed) = stored.sealed()? else { continue };
            if Vault::sealed_by(&sealed) == Some(vault.kek_id()) {
                rotated.already += 1;
                continue;
            }
            let resealed = match column.kind {
                Kind::Puk => vault.reseal_puk(&bound, &sealed),
                Kind::ManagementKey => vault.reseal_management_key(&bound, &sealed),
                Kind::Mail => vault.reseal_mail(&bound, &sealed),
            }
            .with_context(|| format!("{table}.{value} of row {row_key:?}"))?;
            // Replaced only if unchanged since it was read: a backend that rotated this PUK
            // meanwhile sealed its new one itself (under a key that opens), and keeps it.
            let update = format!("UPDATE {table} SET {value} = $1 WHERE {key} = $2 AND {value} = $3");
            let query = stored.bind_new(sqlx::query(&update), resealed);
            let query = match &row_key {
                Key::Integer(n) => query.bind(*n),
                Key::Text(t) => query.bind(t.clone()),
            };
            let changed = stored.bind_old(query).execute(db.pool()).await?.rows_affected();
            if changed == 1 {
                rotated.resealed += 1;
            }
            if stop_after.is_some_and(|n| rotated.resealed >= n) {
                tracing::warn!("rotate-kek stopped on purpose (--stop-after)");
                std::process::abort();
            }
        }
    }
}

/// A sealed value as its column holds it.
enum Stored {
    Bytes(Vec<u8>),
    Text(String),
}

impl Stored {
    fn read(row: &sqlx::any::AnyRow, kind: Kind) -> anyhow::Result<Self> {
        Ok(match kind {
            Kind::Mail => Self::Text(row.try_get(2)?),
            _ => Self::Bytes(row.try_get(2)?),
        })
    }

    /// The sealed bytes (`None`: a mail body queued before bodies were sealed).
    fn sealed(&self) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(match self {
            Self::Bytes(bytes) => Some(bytes.clone()),
            Self::Text(text) => match text.strip_prefix(SEALED_PREFIX) {
                Some(b64) => Some(STANDARD.decode(b64).context("a sealed mail body is not base64")?),
                None => None,
            },
        })
    }

    fn bind_new<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        resealed: Vec<u8>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Self::Bytes(_) => query.bind(resealed),
            Self::Text(_) => query.bind(format!("{SEALED_PREFIX}{}", STANDARD.encode(resealed))),
        }
    }

    fn bind_old<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Self::Bytes(bytes) => query.bind(bytes.clone()),
            Self::Text(text) => query.bind(text.clone()),
        }
    }
}

/// Reads a KEK file: 32 bytes in base64 (what `head -c 32 /dev/urandom | base64` writes).
pub fn read_kek_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
    decode_kek(&text).with_context(|| format!("{} must hold 32 bytes in base64", path.display()))
}

/// The embedded default: the old key becomes `puk.kek.previous`, the new one `puk.kek`, each
/// written whole before it replaces anything (a stop in between leaves keys that open it all).
fn swap_local_key(data_dir: &Path, old: &[u8; 32], new: &[u8; 32]) -> anyhow::Result<()> {
    replace_private(&data_dir.join(PREVIOUS_KEK_FILE), &STANDARD.encode(old))?;
    replace_private(&data_dir.join("puk.kek"), &STANDARD.encode(new))
}

fn replace_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).with_context(|| format!("Failed to write {}", temp.display()))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("Failed to replace {}", path.display()))?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
