//! Emailed one-time codes (registration, unlock): 8 random digits, valid 15 minutes, single use,
//! at most 5 wrong tries, a new one at most once a minute and 5 an hour; only an HMAC of the
//! code is stored and the comparison is constant-time.

use protocol::error_code::ErrorCode;
use sqlx::{Any, Row, Transaction};

use crate::{error::ApiError, hashing::CodeHasher, secrets::random_digits, store::people, time::now_unix};

pub const DIGITS: usize = 8;
pub const LIFETIME_SECONDS: i64 = 15 * 60;
pub const MAX_WRONG_TRIES: i64 = 5;
pub const RESEND_COOLDOWN_SECONDS: i64 = 60;
pub const MAX_PER_HOUR: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Registration,
    Unlock,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::Unlock => "unlock",
        }
    }
}

/// What a person has to go on after a code was asked for.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The new code, to be emailed; `None`: no new one was made, because the sending limits
    /// refused it and one sent earlier still works (see [`Reuse::Live`]).
    pub code: Option<String>,
    /// When the code in force was sent and until when it works, and when the sending limits
    /// allow a new one.
    pub sent_at: i64,
    pub expires_at: i64,
    pub resend_after: i64,
}

/// When the sending limits refuse a new code, whether one sent earlier that still works stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// "Send me a new code": refused (429, saying when to try again).
    Never,
    /// A gate just passed (right answers, the same address again): the limits only ever limit
    /// sending, never a person who already has a working code.
    Live,
}

/// Replaces any live code of this purpose with a new one, unless the last was sent too recently;
/// then, as `reuse` says, the earlier code stands or the request is refused (429). Requests for
/// the same person are taken one at a time, so the cooldown and the hourly cap hold however many
/// arrive together.
pub async fn issue(
    tx: &mut Transaction<'static, Any>,
    hasher: &CodeHasher,
    user_ref: i64,
    purpose: Purpose,
    reuse: Reuse,
) -> Result<Sent, ApiError> {
    people::hold(tx, user_ref).await?;
    let now = now_unix();
    let Some(allowed_at) = next_allowed(tx, user_ref, purpose, now).await? else {
        return create(tx, hasher, user_ref, purpose, now).await;
    };
    let earlier = match reuse {
        Reuse::Live => live(tx, user_ref, purpose, now).await?,
        Reuse::Never => None,
    };
    match earlier {
        Some((sent_at, expires_at)) => Ok(Sent { code: None, sent_at, expires_at, resend_after: allowed_at }),
        None => Err(too_soon(allowed_at - now)),
    }
}

/// When the cooldown and the hourly cap next allow a code, if they do not now.
async fn next_allowed(
    tx: &mut Transaction<'static, Any>,
    user_ref: i64,
    purpose: Purpose,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    let recent = sqlx::query(
        "SELECT COUNT(*) AS sent, MIN(created_at) AS oldest, MAX(created_at) AS newest FROM one_time_codes \
         WHERE user_ref = $1 AND purpose = $2 AND created_at > $3",
    )
    .bind(user_ref)
    .bind(purpose.as_str())
    .bind(now - 3600)
    .fetch_one(&mut **tx)
    .await?;
    let sent: i64 = recent.try_get("sent")?;
    let oldest: Option<i64> = recent.try_get("oldest")?;
    let newest: Option<i64> = recent.try_get("newest")?;
    let cooldown = newest.map(|t| t + RESEND_COOLDOWN_SECONDS).filter(|at| *at > now);
    // The cap reopens when the oldest code of the hour leaves the window.
    let cap = oldest.filter(|_| sent >= MAX_PER_HOUR).map(|t| t + 3600);
    Ok(cooldown.max(cap))
}

/// The newest unused code's (sent at, expires at), if it still works.
async fn live(
    tx: &mut Transaction<'static, Any>,
    user_ref: i64,
    purpose: Purpose,
    now: i64,
) -> Result<Option<(i64, i64)>, ApiError> {
    let row = sqlx::query(
        "SELECT created_at, expires_at, tries_left FROM one_time_codes \
         WHERE user_ref = $1 AND purpose = $2 AND used_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(user_ref)
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (sent_at, expires_at): (i64, i64) = (row.try_get("created_at")?, row.try_get("expires_at")?);
    let tries_left: i64 = row.try_get("tries_left")?;
    Ok((expires_at > now && tries_left > 0).then_some((sent_at, expires_at)))
}

async fn create(
    tx: &mut Transaction<'static, Any>,
    hasher: &CodeHasher,
    user_ref: i64,
    purpose: Purpose,
    now: i64,
) -> Result<Sent, ApiError> {
    sqlx::query(
        "UPDATE one_time_codes SET used_at = $1 WHERE user_ref = $2 AND purpose = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_ref)
    .bind(purpose.as_str())
    .execute(&mut **tx)
    .await?;
    let code = random_digits(DIGITS);
    sqlx::query(
        "INSERT INTO one_time_codes (user_ref, purpose, code_hash, created_at, expires_at, tries_left) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_ref)
    .bind(purpose.as_str())
    .bind(hasher.hash(purpose.as_str(), &code))
    .bind(now)
    .bind(now + LIFETIME_SECONDS)
    .bind(MAX_WRONG_TRIES)
    .execute(&mut **tx)
    .await?;
    Ok(Sent {
        code: Some(code),
        sent_at: now,
        expires_at: now + LIFETIME_SECONDS,
        resend_after: now + RESEND_COOLDOWN_SECONDS,
    })
}

fn too_soon(seconds: i64) -> ApiError {
    let minutes = (seconds + 59) / 60;
    let when = if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    };
    ApiError::rejected(
        ErrorCode::CodeRecentlySent,
        format!("A code was sent recently. You can ask for another in {when}."),
    )
}

/// Voids every unused code of the person (their registration was withdrawn).
pub async fn void_all(conn: &mut sqlx::AnyConnection, user_ref: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE one_time_codes SET used_at = $1 WHERE user_ref = $2 AND used_at IS NULL")
        .bind(now)
        .bind(user_ref)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Spends the code if it is right. A wrong one costs a try; an expired, used-up or exhausted one
/// is refused whatever is typed. Guesses for the same person are taken one at a time, so however
/// many arrive together, no more than the code's tries are ever compared with it.
pub async fn redeem(
    tx: &mut Transaction<'static, Any>,
    hasher: &CodeHasher,
    user_ref: i64,
    purpose: Purpose,
    typed: &str,
) -> Result<(), ApiError> {
    people::hold(tx, user_ref).await?;
    let now = now_unix();
    let typed: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let row = sqlx::query(
        "SELECT id, code_hash, expires_at, tries_left FROM one_time_codes \
         WHERE user_ref = $1 AND purpose = $2 AND used_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(user_ref)
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Err(expired()) };
    let id: i64 = row.try_get("id")?;
    if row.try_get::<i64, _>("expires_at")? < now {
        return Err(expired());
    }
    if row.try_get::<i64, _>("tries_left")? <= 0 {
        return Err(exhausted());
    }
    let stored: Vec<u8> = row.try_get("code_hash")?;
    if hasher.matches(purpose.as_str(), &typed, &stored) {
        let spent = sqlx::query("UPDATE one_time_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        return if spent.rows_affected() == 1 { Ok(()) } else { Err(expired()) };
    }
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE one_time_codes SET tries_left = tries_left - 1 WHERE id = $1 AND tries_left > 0 RETURNING tries_left",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match left {
        Some(left) if left > 0 => Err(ApiError::rejected(
            ErrorCode::CodeWrong,
            format!(
                "That code is not right. You can try {left} more {}.",
                if left == 1 { "time" } else { "times" }
            ),
        )),
        _ => Err(exhausted()),
    }
}

fn expired() -> ApiError {
    ApiError::rejected(
        ErrorCode::CodeExpired,
        "That code has expired or was already used. Ask for a new one.",
    )
}

fn exhausted() -> ApiError {
    ApiError::rejected(
        ErrorCode::CodeLocked,
        "That code was entered wrongly too many times. Ask for a new one.",
    )
}
