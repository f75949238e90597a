//! `GET /api/me`: the signed-in person, their cards and their self-service state.

use axum::{extract::State, routing::get, Router};
use protocol::api::{CardSummary, Profile, RegistrationPending, SelfService};
use sqlx::Row;

use crate::{
    error::{ApiError, AppJson},
    people::{self, User},
    session::SignedIn,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Result<AppJson<Profile>, ApiError> {
    Ok(AppJson(load(&state, &signed_in.user, &signed_in.session.card_guid).await?))
}

/// A person's cards as the pages list them.
pub async fn card_summaries(state: &AppState, user_ref: i64) -> Result<Vec<CardSummary>, ApiError> {
    Ok(people::cards_of(&state.db, user_ref)
        .await?
        .into_iter()
        .map(|c| CardSummary { guid: c.guid, status: c.status.as_str().to_owned(), issued_at: c.issued_at })
        .collect())
}

/// Whether a person is registered for self-service, since when and at which address.
pub async fn self_service(state: &AppState, user_ref: i64) -> Result<SelfService, ApiError> {
    let registration = sqlx::query(
        "SELECT email, registered_at FROM registrations WHERE user_ref = $1 AND status = 'active'",
    )
    .bind(user_ref)
    .fetch_optional(state.db.pool())
    .await?;
    Ok(match registration {
        Some(row) => SelfService::Registered {
            registered_at: row.try_get::<Option<i64>, _>("registered_at")?.unwrap_or_default(),
            email: row.try_get("email")?,
        },
        None => SelfService::NotRegistered,
    })
}

pub async fn load(state: &AppState, user: &User, signed_in_with: &str) -> Result<Profile, ApiError> {
    let cards = card_summaries(state, user.id).await?;
    let self_service = self_service(state, user.id).await?;
    let pending = sqlx::query(
        "SELECT r.email, c.expires_at, c.created_at FROM registrations r \
         LEFT JOIN one_time_codes c ON c.user_ref = r.user_ref AND c.purpose = 'registration' AND c.used_at IS NULL \
         WHERE r.user_ref = $1 AND r.status = 'pending' ORDER BY c.created_at DESC LIMIT 1",
    )
    .bind(user.id)
    .fetch_optional(state.db.pool())
    .await?;
    let pending_registration = match pending {
        Some(row) => Some(RegistrationPending {
            email: row.try_get("email")?,
            code_expires_at: row.try_get::<Option<i64>, _>("expires_at")?.unwrap_or_default(),
            resend_after: row.try_get::<Option<i64>, _>("created_at")?.unwrap_or_default()
                + crate::codes::RESEND_COOLDOWN_SECONDS,
        }),
        None => None,
    };
    Ok(Profile {
        user_id: user.user_id.clone(),
        name: user.name.clone(),
        contact_email: user.contact_email.clone(),
        roles: user.roles.clone(),
        signed_in_with: signed_in_with.to_owned(),
        cards,
        self_service,
        pending_registration,
    })
}
