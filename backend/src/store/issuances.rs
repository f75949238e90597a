//! Card issuances: the secrets chosen for a card being issued, recorded before the card gets
//! them, and how far the issuance went.

use sqlx::{any::AnyRow, Row};

use protocol::card_guid::CardGuid;

use super::Conn;

/// How far an issuance went. `Started` and `Certified` are open; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Secrets recorded and sealed to the agent; the card's new keys are awaited.
    Started,
    /// The card's keys are certified; its report is awaited.
    Certified,
    /// The card is bound to its holder.
    Issued,
    /// A later issuance of the same half-issued card took over its secrets.
    Superseded,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Certified => "certified",
            State::Issued => "issued",
            State::Superseded => "superseded",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "started" => State::Started,
            "certified" => State::Certified,
            "issued" => State::Issued,
            // Anything unexpected is treated as ended.
            _ => State::Superseded,
        }
    }
}

/// One issuance as recorded.
#[derive(Debug, Clone)]
pub struct Issuance {
    pub id: String,
    pub user_ref: i64,
    /// The RA officer who started it; `None` for the operator CLI.
    pub officer_ref: Option<i64>,
    pub card_guid: CardGuid,
    pub reason: String,
    pub state: State,
    pub expires_at: i64,
    pub puk_sealed: Vec<u8>,
    pub mgmt_key_sealed: Vec<u8>,
    pub piv_auth_certificate: Option<Vec<u8>>,
    pub card_auth_certificate: Option<Vec<u8>>,
    /// What the card's final proofs sign, once certified.
    pub challenge: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, user_ref, officer_ref, card_guid, reason, status, expires_at, puk_sealed, \
     mgmt_key_sealed, piv_auth_certificate, card_auth_certificate, challenge";

impl Issuance {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            user_ref: row.try_get("user_ref")?,
            officer_ref: row.try_get("officer_ref")?,
            card_guid: super::guid_column(row, "card_guid")?,
            reason: row.try_get("reason")?,
            state: State::parse(&row.try_get::<String, _>("status")?),
            expires_at: row.try_get("expires_at")?,
            puk_sealed: row.try_get("puk_sealed")?,
            mgmt_key_sealed: row.try_get("mgmt_key_sealed")?,
            piv_auth_certificate: row.try_get("piv_auth_certificate")?,
            card_auth_certificate: row.try_get("card_auth_certificate")?,
            challenge: row.try_get("challenge")?,
        })
    }
}

/// What a new issuance records.
#[derive(Debug)]
pub struct NewIssuance<'a> {
    pub id: &'a str,
    pub user_ref: i64,
    pub officer_ref: Option<i64>,
    pub reason: &'a str,
    pub card_guid: &'a str,
    pub puk_sealed: &'a [u8],
    pub mgmt_key_sealed: &'a [u8],
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn by_id(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Issuance>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM issuances WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(Issuance::from_row).transpose()
}

/// The newest open issuance of the card with `guid`: one that stopped half-way.
pub async fn unfinished_for_card(conn: &mut Conn, guid: &str) -> sqlx::Result<Option<Issuance>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM issuances WHERE card_guid = $1 AND status IN ($2, $3) ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(guid)
    .bind(State::Started.as_str())
    .bind(State::Certified.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(Issuance::from_row).transpose()
}

/// The 9E certificate last issued for the card with `guid`, by any issuance.
pub async fn last_card_auth_certificate(conn: &mut Conn, guid: &str) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar(
        "SELECT card_auth_certificate FROM issuances WHERE card_guid = $1 AND card_auth_certificate IS NOT NULL \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(guid)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn insert(conn: &mut Conn, new: &NewIssuance<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO issuances (id, user_ref, officer_ref, reason, card_guid, puk_sealed, mgmt_key_sealed, \
         status, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id)
    .bind(new.user_ref)
    .bind(new.officer_ref)
    .bind(new.reason)
    .bind(new.card_guid)
    .bind(new.puk_sealed)
    .bind(new.mgmt_key_sealed)
    .bind(State::Started.as_str())
    .bind(new.created_at)
    .bind(new.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn supersede(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE issuances SET status = $1, finished_at = $2 WHERE id = $3")
        .bind(State::Superseded.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the card's certificates and the challenge of its final proofs; false if the
/// issuance was no longer at `Started`.
pub async fn certify(
    conn: &mut Conn,
    id: &str,
    piv_auth_certificate: &[u8],
    card_auth_certificate: &[u8],
    challenge: &[u8],
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE issuances SET status = $1, piv_auth_certificate = $2, card_auth_certificate = $3, \
         challenge = $4 WHERE id = $5 AND status = $6",
    )
    .bind(State::Certified.as_str())
    .bind(piv_auth_certificate)
    .bind(card_auth_certificate)
    .bind(challenge)
    .bind(id)
    .bind(State::Started.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Marks the issuance issued; false if it was no longer at `Certified` (a parallel report won).
pub async fn finish(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<bool> {
    let claimed = sqlx::query(
        "UPDATE issuances SET status = $1, finished_at = $2, challenge = NULL WHERE id = $3 AND status = $4",
    )
    .bind(State::Issued.as_str())
    .bind(now)
    .bind(id)
    .bind(State::Certified.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}
