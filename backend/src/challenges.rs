//! One-time challenges for a card to sign: random, single use, short lived, bound to a purpose
//! (and, for a re-proof, to the session that asked), so a signature made for one thing cannot be
//! replayed for another.

use base64::{engine::general_purpose::STANDARD, Engine};
use protocol::error_code::ErrorCode;
use sqlx::{Any, Row, Transaction};

use crate::{
    db::Database,
    error::ApiError,
    secrets::{random_bytes, random_token},
    time::now_unix,
};

pub const LIFETIME_SECONDS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    RegistrationProof,
    Unlock,
    UnlockOffer,
    UnlockProof,
    /// An RA's desk unlock: the holder's card proves presence, bound to the officer and person.
    DeskUnlock,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
            Purpose::RegistrationProof => "registration_proof",
            Purpose::Unlock => "unlock",
            Purpose::UnlockOffer => "unlock_offer",
            Purpose::UnlockProof => "unlock_proof",
            Purpose::DeskUnlock => "desk_unlock",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Issued {
    pub id: String,
    pub challenge: [u8; 32],
}

impl Issued {
    pub fn challenge_b64(&self) -> String {
        STANDARD.encode(self.challenge)
    }
}

impl From<Issued> for protocol::api::ChallengeIssued {
    fn from(issued: Issued) -> Self {
        let challenge = issued.challenge_b64();
        Self { challenge_id: issued.id, challenge }
    }
}

pub async fn issue(db: &Database, purpose: Purpose, session_ref: Option<&[u8]>) -> anyhow::Result<Issued> {
    let mut tx = db.begin_write().await?;
    let issued = issue_in(&mut tx, purpose, session_ref).await?;
    tx.commit().await?;
    Ok(issued)
}

/// As [`issue`], inside the caller's transaction (so the challenge exists only if what it is
/// bound to was written).
pub async fn issue_in(
    tx: &mut Transaction<'static, Any>,
    purpose: Purpose,
    session_ref: Option<&[u8]>,
) -> anyhow::Result<Issued> {
    let issued = Issued { id: random_token(), challenge: random_bytes() };
    let now = now_unix();
    crate::db::sweep(tx, "challenges", "expires_at", now - LIFETIME_SECONDS).await?;
    sqlx::query(
        "INSERT INTO challenges (id, purpose, challenge, session_ref, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&issued.id)
    .bind(purpose.as_str())
    .bind(issued.challenge.to_vec())
    .bind(session_ref.map(|s| STANDARD.encode(s)))
    .bind(now + LIFETIME_SECONDS)
    .execute(&mut **tx)
    .await?;
    Ok(issued)
}

/// The bytes of a challenge that could still be redeemed, without using it up: a signature can
/// be checked against them before a write transaction begins, so the database's writer does
/// not wait on the curve arithmetic. [`redeem`] decides; it returns the same bytes.
pub async fn peek(db: &Database, id: &str, purpose: Purpose) -> anyhow::Result<Option<Vec<u8>>> {
    let challenge = sqlx::query_scalar(
        "SELECT challenge FROM challenges WHERE id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at >= $3",
    )
    .bind(id)
    .bind(purpose.as_str())
    .bind(now_unix())
    .fetch_optional(db.pool())
    .await?;
    Ok(challenge)
}

/// Uses up the challenge (whatever the signature turns out to be) and returns its bytes.
pub async fn redeem(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    purpose: Purpose,
    session_ref: Option<&[u8]>,
) -> Result<Vec<u8>, ApiError> {
    let now = now_unix();
    let row = sqlx::query(
        "UPDATE challenges SET used_at = $1 \
         WHERE id = $2 AND purpose = $3 AND used_at IS NULL AND expires_at >= $1 \
         AND (session_ref IS NULL OR session_ref = $4) RETURNING challenge, session_ref",
    )
    .bind(now)
    .bind(id)
    .bind(purpose.as_str())
    .bind(session_ref.map(|s| STANDARD.encode(s)).unwrap_or_default())
    .fetch_optional(&mut **tx)
    .await
    .map_err(anyhow::Error::from)?;
    let row = row.ok_or_else(expired)?;
    let bound: Option<String> = row.try_get("session_ref").map_err(anyhow::Error::from)?;
    if bound.is_some() != session_ref.is_some() {
        return Err(expired());
    }
    row.try_get("challenge").map_err(|e| ApiError::Internal(e.into()))
}

fn expired() -> ApiError {
    ApiError::rejected(ErrorCode::ChallengeExpired, "That attempt has expired. Please try again.")
}
