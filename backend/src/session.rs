//! Server-side sessions: the cookie holds a random token, the database only its SHA-256.
//! Sessions end on sign-out, after 30 idle minutes, or 12 hours after sign-in, whichever is first.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap, HeaderValue},
};
use protocol::error_code::ErrorCode;
use sqlx::{Any, Row, Transaction};

use crate::{
    db::Database,
    error::ApiError,
    secrets::{random_token, sha256},
    startup::AppState,
    store::people::{self, User},
    time::now_unix,
};

pub const COOKIE: &str = "selfservice_session";
pub const IDLE_SECONDS: i64 = 30 * 60;
pub const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// Last-seen is written at most this often, so reads stay reads.
const TOUCH_EVERY_SECONDS: i64 = 60;

#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub user_ref: i64,
    pub card_guid: protocol::card_guid::CardGuid,
    pub reproved_at: Option<i64>,
    last_seen_at: i64,
}

/// Starts a session for `user_ref` signed in with `card_guid`; returns the cookie token.
pub async fn create(
    tx: &mut Transaction<'static, Any>,
    user_ref: i64,
    card_guid: &str,
) -> anyhow::Result<String> {
    let token = random_token();
    let now = now_unix();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_ref, card_guid, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $4, $5)",
    )
    .bind(sha256(token.as_bytes()))
    .bind(user_ref)
    .bind(card_guid)
    .bind(now)
    .bind(now + ABSOLUTE_SECONDS)
    .execute(&mut **tx)
    .await?;
    // Expired sessions are swept as new ones start: no separate job to forget.
    crate::db::sweep(tx, "sessions", "expires_at", now).await?;
    crate::db::sweep(tx, "sessions", "last_seen_at", now - IDLE_SECONDS).await?;
    Ok(token)
}

/// The live session for a cookie token and its person, if any; refreshes its idle timer.
/// One statement for both: every signed-in request starts here (issue 16).
pub async fn lookup(db: &Database, token: &str) -> anyhow::Result<Option<SignedIn>> {
    let now = now_unix();
    let row = sqlx::query(&format!(
        "SELECT s.token_hash, s.user_ref, s.card_guid, s.reproved_at, s.last_seen_at, {} \
         FROM sessions s JOIN users u ON u.id = s.user_ref \
         WHERE s.token_hash = $1 AND s.expires_at >= $2 AND s.last_seen_at >= $3",
        people::USER_COLUMNS_OF_U
    ))
    .bind(sha256(token.as_bytes()))
    .bind(now)
    .bind(now - IDLE_SECONDS)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let session = Session {
        token_hash: row.try_get("token_hash")?,
        user_ref: row.try_get("user_ref")?,
        card_guid: crate::store::guid_column(&row, "card_guid")?,
        reproved_at: row.try_get("reproved_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
    };
    let user = User::from_row(&row)?;
    if now - session.last_seen_at >= TOUCH_EVERY_SECONDS {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&session.token_hash)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(SignedIn { user, session }))
}

pub async fn delete(db: &Database, session: &Session) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(&session.token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The session's card signed a passcode re-proof at `now` (registration's first step).
pub async fn mark_reproved(conn: &mut sqlx::AnyConnection, session: &Session, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET reproved_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(&session.token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends every session opened with card `guid` (it was suspended or revoked).
pub async fn delete_for_card(conn: &mut sqlx::AnyConnection, guid: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE card_guid = $1").bind(guid).execute(&mut *conn).await?;
    Ok(())
}

/// The token from the request's `Cookie` header.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `Set-Cookie` for a new session, or (with `None`) one that clears it.
pub fn set_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = match token {
        Some(token) => {
            format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ABSOLUTE_SECONDS}{secure}")
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in user: handlers that take this answer 401 to anyone else.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = token_from(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        lookup(&state.db, &token).await?.ok_or(ApiError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; selfservice_session=tok; b=2"));
        assert_eq!(token_from(&headers).as_deref(), Some("tok"));
        headers.insert(header::COOKIE, HeaderValue::from_static("other=x"));
        assert_eq!(token_from(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let cookie = set_cookie(Some("t"), true);
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict") && text.contains("Secure"));
        assert!(!set_cookie(Some("t"), false).to_str().unwrap().contains("Secure"));
        assert!(set_cookie(None, false).to_str().unwrap().contains("Max-Age=0"));
    }
}

pub const RA_ROLE: &str = "ra";

/// A signed-in session whose person holds the RA role.
#[derive(Debug)]
pub struct RaOfficer(pub User);

impl FromRequestParts<AppState> for RaOfficer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if !signed_in.user.roles.iter().any(|r| r == RA_ROLE) {
            return Err(ApiError::rejected(
                ErrorCode::NotRa,
                "This is for Registration Authority (RA) staff only.",
            ));
        }
        Ok(Self(signed_in.user))
    }
}
