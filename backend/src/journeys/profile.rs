//! `GET /api/me`: the signed-in person, their cards and their self-service state.

use protocol::{
    api::{CardSummary, Profile, RegistrationPending, SelfService},
    card_guid::CardGuid,
};

use crate::{
    error::ApiError,
    session::SignedIn,
    startup::AppState,
    store::{
        people::{self, User},
        registrations,
    },
};

pub async fn me(state: &AppState, signed_in: SignedIn) -> Result<Profile, ApiError> {
    load(state, &signed_in.user, &signed_in.session.card_guid).await
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
    let mut conn = state.db.pool().acquire().await?;
    Ok(match registrations::active(&mut conn, user_ref).await? {
        Some(active) => SelfService::Registered { registered_at: active.registered_at, email: active.email },
        None => SelfService::NotRegistered,
    })
}

/// The person's pending registration, if any, as the pages show it.
async fn pending_registration(
    state: &AppState,
    user_ref: i64,
) -> Result<Option<RegistrationPending>, ApiError> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(registrations::pending(&mut conn, user_ref).await?.map(|pending| RegistrationPending {
        email: pending.email,
        sent_at: pending.code_created_at.unwrap_or_default(),
        code_expires_at: pending.code_expires_at.unwrap_or_default(),
        resend_after: pending.code_created_at.unwrap_or_default() + crate::codes::RESEND_COOLDOWN_SECONDS,
        earlier: true,
        mail_delayed: false,
    }))
}

pub async fn load(state: &AppState, user: &User, signed_in_with: &CardGuid) -> Result<Profile, ApiError> {
    // Three reads at once, each on a connection of its own that it gives back before anything
    // waits on it: a round trip's wait instead of three's, for /api/me and every sign-in
    // (issue 16).
    let (cards, self_service, pending_registration) = tokio::try_join!(
        card_summaries(state, user.id),
        self_service(state, user.id),
        pending_registration(state, user.id),
    )?;
    Ok(Profile {
        user_id: user.user_id.clone(),
        name: user.name.clone(),
        contact_email: user.contact_email.clone(),
        roles: user.roles.clone(),
        signed_in_with: signed_in_with.clone(),
        cards,
        self_service,
        pending_registration,
    })
}
