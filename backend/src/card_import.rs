//! `backend admin import-cards FILE`: the cards an organisation already issued, brought in one
//! CSV so their holders can use self-service from day one.
//!
//! One row per person and card, with a header row:
//! `user_id,name,email,roles,guid,piv_auth,card_auth,puk` — `roles` separated by `;` (e.g. `ra`,
//! or empty), `guid` 32 hex digits, `piv_auth`/`card_auth` the 9A and 9E certificates or just
//! their public keys (SubjectPublicKeyInfo), DER in base64, P-256; `puk` the card's current PUK
//! (empty if unknown: the card then cannot be unlocked until an RA resets it).
//!
//! Every row is checked — alone, against the others and against the database — before anything
//! is written, and every problem is reported with its line. A rerun changes nothing: people and
//! cards already there as the file says are left alone (a PUK already recorded is kept: an
//! unlock may have rotated it since). Written in batches, each card audited (`card_imported`) and
//! the import as a whole too (`cards_imported`, with the file's SHA-256).

use std::collections::HashMap;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use p256::pkcs8::DecodePublicKey;
use protocol::card_guid::CardGuid;
use sha2::{Digest, Sha256};
use sqlx::Row as _;
use zeroize::Zeroizing;

use crate::{
    audit::{self, Entry, SYSTEM},
    db::{Database, WriteTx},
    store::people::{self, User},
    time::now_unix,
    vault::Vault,
};

/// Rows written per transaction, each kind in one statement: few enough that a write transaction
/// stays short (tens of milliseconds) and its bound values under every engine's limit.
const BATCH: usize = 500;
const HEADER: [&str; 8] = ["user_id", "name", "email", "roles", "guid", "piv_auth", "card_auth", "puk"];
const KNOWN_ROLES: [&str; 1] = ["ra"];

/// One checked row.
#[derive(Debug)]
struct Row {
    line: u64,
    user_id: String,
    name: String,
    email: Option<String>,
    roles: Vec<String>,
    guid: CardGuid,
    piv_auth_key: Vec<u8>,
    card_auth_key: Vec<u8>,
    piv_auth_certificate: Option<Vec<u8>>,
    card_auth_certificate: Option<Vec<u8>>,
    puk: Option<Zeroizing<String>>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub rows: usize,
    pub people_added: usize,
    pub cards_added: usize,
    pub puks_recorded: usize,
}

/// One problem: the file's line, and what is wrong there.
type Problem = (u64, String);

/// The file's problems, one a line; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s); nothing was imported:\n{}", .0.len(), .0.join("\n"))]
pub struct Problems(pub Vec<String>);

pub async fn import(
    db: &Database,
    vault: &Vault,
    email_domains: &[String],
    csv: &[u8],
) -> anyhow::Result<Imported> {
    // Every problem at once: the file's own, and those of its good rows against the database.
    let (rows, mut problems) = parse(csv, email_domains)?;
    let (plan, conflicts) = check_against_database(db, &rows).await?;
    problems.extend(conflicts);
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| *line);
        let lines = problems.into_iter().map(|(line, problem)| format!("line {line}: {problem}")).collect();
        return Err(Problems(lines).into());
    }
    let digest: String = Sha256::digest(csv).iter().map(|b| format!("{b:02x}")).collect();
    let mut imported = Imported { rows: rows.len(), ..Imported::default() };
    let now = now_unix();
    // People this import added, by user id: a person may have several cards.
    let mut added: HashMap<String, i64> = HashMap::new();
    for batch in rows.chunks(BATCH) {
        let mut tx = db.begin_write().await?;
        // The batch's new people, once each, in one statement.
        let mut new_people: Vec<&Row> = Vec::new();
        for row in batch {
            let known = plan.people.get(&row.user_id).is_some_and(Option::is_some);
            if !known
                && !added.contains_key(&row.user_id)
                && !new_people.iter().any(|p| p.user_id == row.user_id)
            {
                new_people.push(row);
            }
        }
        for (user_id, id) in insert_people(&mut tx, &new_people, now).await? {
            added.insert(user_id, id);
        }
        imported.people_added += new_people.len();
        let mut cards = Vec::new();
        for row in batch {
            let known = plan.people.get(&row.user_id).and_then(|u| u.as_ref().map(|u| u.id));
            let user_ref =
                known.or_else(|| added.get(&row.user_id).copied()).context("a person not written")?;
            if plan.cards_present.contains(row.guid.as_str()) {
                let recorded = match &row.puk {
                    Some(puk) => sqlx::query(
                        "UPDATE cards SET puk_sealed = $1, puk_version = 1 WHERE guid = $2 AND puk_sealed IS NULL",
                    )
                    .bind(vault.seal(row.guid.as_str(), puk)?)
                    .bind(row.guid.as_str())
                    .execute(&mut **tx)
                    .await?
                    .rows_affected(),
                    None => 0,
                };
                imported.puks_recorded += usize::try_from(recorded).unwrap_or(0);
                continue;
            }
            let puk_sealed = row.puk.as_ref().map(|puk| vault.seal(row.guid.as_str(), puk)).transpose()?;
            cards.push((row, user_ref, puk_sealed));
        }
        insert_cards(&mut tx, &cards, now).await?;
        imported.cards_added += cards.len();
        imported.puks_recorded += cards.iter().filter(|(_, _, puk)| puk.is_some()).count();
        let entries: Vec<Entry> = cards
            .iter()
            .map(|(row, _, puk_sealed)| {
                Entry::new(SYSTEM, "card_imported").subject(&row.user_id).details(serde_json::json!({
                    "guid": row.guid,
                    "puk_recorded": puk_sealed.is_some(),
                }))
            })
            .collect();
        audit::append_all(&mut tx, &entries).await?;
        tx.commit().await?;
    }
    if (imported.people_added, imported.cards_added, imported.puks_recorded) == (0, 0, 0) {
        // A rerun: nothing changed, so there is nothing to audit either.
        return Ok(imported);
    }
    audit::record(
        db,
        Entry::new(SYSTEM, "cards_imported").details(serde_json::json!({
            "sha256": digest,
            "rows": imported.rows,
            "people_added": imported.people_added,
            "cards_added": imported.cards_added,
            "puks_recorded": imported.puks_recorded,
        })),
    )
    .await?;
    Ok(imported)
}

/// Writes `people` in one statement; their user ids and new ids.
async fn insert_people(tx: &mut WriteTx, people: &[&Row], now: i64) -> sqlx::Result<Vec<(String, i64)>> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<String> = (0..people.len()).map(|i| crate::db::row_placeholders(i, 5)).collect();
    let sql = format!(
        "INSERT INTO users (user_id, name, contact_email, roles, created_at) VALUES {} RETURNING id, user_id",
        values.join(", ")
    );
    let insert = people.iter().fold(sqlx::query(&sql), |q, row| {
        q.bind(&row.user_id).bind(&row.name).bind(row.email.as_deref()).bind(row.roles.join(" ")).bind(now)
    });
    let written = insert.fetch_all(&mut ***tx).await?;
    written.iter().map(|r| Ok((r.try_get("user_id")?, r.try_get("id")?))).collect()
}

/// Writes new cards (row, holder, sealed PUK) in one statement.
async fn insert_cards(
    tx: &mut WriteTx,
    cards: &[(&Row, i64, Option<Vec<u8>>)],
    now: i64,
) -> sqlx::Result<()> {
    if cards.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..cards.len()).map(|i| crate::db::row_placeholders(i, 10)).collect();
    let sql = format!(
        "INSERT INTO cards (guid, user_ref, piv_auth_key, card_auth_key, piv_auth_certificate, \
         card_auth_certificate, status, issued_at, puk_sealed, puk_version) VALUES {}",
        values.join(", ")
    );
    let insert = cards.iter().fold(sqlx::query(&sql), |q, (row, user_ref, puk_sealed)| {
        q.bind(row.guid.as_str())
            .bind(*user_ref)
            .bind(&row.piv_auth_key)
            .bind(&row.card_auth_key)
            .bind(row.piv_auth_certificate.as_deref())
            .bind(row.card_auth_certificate.as_deref())
            .bind("active")
            .bind(now)
            .bind(puk_sealed.as_deref())
            .bind(i64::from(puk_sealed.is_some()))
    });
    insert.execute(&mut ***tx).await?;
    Ok(())
}

/// Checks each row on its own and against the others: the good rows, and the problems.
fn parse(csv: &[u8], email_domains: &[String]) -> anyhow::Result<(Vec<Row>, Vec<Problem>)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(csv);
    let header = reader.headers().context("the file has no header row")?.clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(Problems(vec![format!("line 1: the header must be {}", HEADER.join(","))]).into());
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut guids: HashMap<String, u64> = HashMap::new();
    let mut people: HashMap<String, (u64, String, Option<String>, Vec<String>)> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                problems.push((line, error.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        match check_row(line, &record, email_domains) {
            Ok(row) => {
                if let Some(first) = guids.insert(row.guid.to_string(), line) {
                    problems.push((line, format!("card {} is also on line {first}", row.guid)));
                }
                let person = (line, row.name.clone(), row.email.clone(), row.roles.clone());
                if let Some((first, name, email, roles)) = people.get(&row.user_id) {
                    if (name, email, roles) != (&row.name, &row.email, &row.roles) {
                        let problem =
                            format!("{} is on line {first} with another name, email or roles", row.user_id);
                        problems.push((line, problem));
                    }
                } else {
                    people.insert(row.user_id.clone(), person);
                }
                rows.push(row);
            }
            Err(problem) => problems.push((line, problem)),
        }
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push((2, "the file has no rows".into()));
    }
    Ok((rows, problems))
}

fn check_row(line: u64, record: &csv::StringRecord, email_domains: &[String]) -> Result<Row, String> {
    if record.len() != HEADER.len() {
        return Err(format!("{} fields, not {}", record.len(), HEADER.len()));
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let user_id = crate::journeys::ra::checked_user_id(field(0)).map_err(str::to_owned)?.to_owned();
    let name = crate::journeys::ra::checked_name(field(1)).map_err(str::to_owned)?.to_owned();
    let email = match field(2) {
        "" => None,
        email => Some(
            crate::journeys::registration::check_email(email, email_domains)
                .map_err(|e| format!("email: {e}"))?,
        ),
    };
    let roles: Vec<String> =
        field(3).split(';').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect();
    if let Some(unknown) = roles.iter().find(|r| !KNOWN_ROLES.contains(&r.as_str())) {
        return Err(format!("unknown role {unknown:?} (known: {})", KNOWN_ROLES.join(", ")));
    }
    let guid: CardGuid = field(4).parse().map_err(|_| "guid must be 32 hex digits".to_owned())?;
    let (piv_auth_key, piv_auth_certificate) =
        key_or_certificate(field(5)).map_err(|p| format!("piv_auth: {p}"))?;
    let (card_auth_key, card_auth_certificate) =
        key_or_certificate(field(6)).map_err(|p| format!("card_auth: {p}"))?;
    if piv_auth_key == card_auth_key {
        return Err("piv_auth and card_auth are the same key".into());
    }
    let puk = match field(7) {
        "" => None,
        puk if (6..=8).contains(&puk.len()) && puk.bytes().all(|b| b.is_ascii_graphic()) => {
            Some(Zeroizing::new(puk.to_owned()))
        }
        // Never echo it: it is a secret even when malformed.
        _ => return Err("puk must be 6 to 8 printable characters".into()),
    };
    Ok(Row {
        line,
        user_id,
        name,
        email,
        roles,
        guid,
        piv_auth_key,
        card_auth_key,
        piv_auth_certificate,
        card_auth_certificate,
        puk,
    })
}

/// A P-256 public key (SubjectPublicKeyInfo DER), from a certificate or the key itself.
fn key_or_certificate(b64: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), &'static str> {
    let der = STANDARD.decode(b64).map_err(|_| "not base64")?;
    let (key, certificate) = match crate::card_proof::public_key_of_certificate(&der) {
        Ok(key) => (key, Some(der)),
        Err(_) => (der, None),
    };
    p256::PublicKey::from_public_key_der(&key).map_err(|_| "not a P-256 certificate or public key")?;
    Ok((key, certificate))
}

/// Who exists already (`Some`) or is new (`None`), and which cards are already there — after
/// checking that nothing in the file contradicts the database.
struct Plan {
    people: HashMap<String, Option<User>>,
    cards_present: std::collections::HashSet<String>,
}

async fn check_against_database(db: &Database, rows: &[Row]) -> anyhow::Result<(Plan, Vec<Problem>)> {
    let user_ids: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
    let guids: Vec<&str> = rows.iter().map(|r| r.guid.as_str()).collect();
    let existing: HashMap<String, User> =
        people::users_by_user_ids(db, &user_ids).await?.into_iter().map(|u| (u.user_id.clone(), u)).collect();
    let cards: HashMap<String, people::Card> =
        people::cards_by_guids(db, &guids).await?.into_iter().map(|c| (c.guid.to_string(), c)).collect();
    let mut problems = Vec::new();
    let mut plan = Plan { people: HashMap::new(), cards_present: Default::default() };
    for row in rows {
        if !plan.people.contains_key(&row.user_id) {
            let user = existing.get(&row.user_id).cloned();
            if let Some(user) = &user {
                if user.name != row.name || user.contact_email != row.email || user.roles != row.roles {
                    let problem =
                        format!("{} is already on record with another name, email or roles", row.user_id);
                    problems.push((row.line, problem));
                }
            }
            plan.people.insert(row.user_id.clone(), user);
        }
        if let Some(card) = cards.get(row.guid.as_str()) {
            let holder = plan.people.get(&row.user_id).and_then(|u| u.as_ref()).map(|u| u.id);
            if Some(card.user_ref) != holder {
                problems.push((row.line, format!("card {} is already someone else's", row.guid)));
            } else if card.piv_auth_key != row.piv_auth_key || card.card_auth_key != row.card_auth_key {
                problems.push((row.line, format!("card {} is on record with other keys", row.guid)));
            } else {
                plan.cards_present.insert(row.guid.to_string());
            }
        }
    }
    Ok((plan, problems))
}
