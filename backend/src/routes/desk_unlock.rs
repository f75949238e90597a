//! An RA unlocks a card at the desk (`journeys::desk_unlock`): the start, then self-service's
//! release and report, for the officer who started it only. Every route needs the `ra` role.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::post,
    Router,
};
use protocol::{
    api::{ChallengeIssued, UnlockAttempt, UnlockRelease, UnlockReleased, UnlockReported},
    ra::{DeskUnlockStart, DeskUnlockStarted},
};

use crate::{
    error::{ApiError, AppJson},
    journeys::{desk_unlock, issuance::Officer, unlock_release},
    session::RaOfficer,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ra/users/{user_id}/desk-unlock/challenge", post(challenge))
        .route("/ra/users/{user_id}/desk-unlock", post(start))
        .route("/ra/desk-unlock/offer-challenge", post(offer_challenge))
        .route("/ra/desk-unlock/release", post(release))
        .route("/ra/desk-unlock/report", post(report))
}

async fn challenge(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
) -> Result<AppJson<ChallengeIssued>, ApiError> {
    desk_unlock::challenge(&state, Officer::Ra(&officer), &user_id).await.map(AppJson)
}

async fn start(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
    AppJson(request): AppJson<DeskUnlockStart>,
) -> Result<(StatusCode, AppJson<DeskUnlockStarted>), ApiError> {
    let started = desk_unlock::start(&state, Officer::Ra(&officer), &user_id, request).await?;
    Ok((StatusCode::CREATED, AppJson(started)))
}

async fn offer_challenge(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    AppJson(request): AppJson<UnlockAttempt>,
) -> Result<AppJson<ChallengeIssued>, ApiError> {
    let driver = desk_unlock::driver(&Officer::Ra(&officer));
    unlock_release::offer_challenge(&state, driver, request).await.map(AppJson)
}

async fn release(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    AppJson(request): AppJson<UnlockRelease>,
) -> Result<AppJson<UnlockReleased>, ApiError> {
    let driver = desk_unlock::driver(&Officer::Ra(&officer));
    unlock_release::release(&state, driver, request).await.map(AppJson)
}

async fn report(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    AppJson(request): AppJson<UnlockReported>,
) -> Result<StatusCode, ApiError> {
    let driver = desk_unlock::driver(&Officer::Ra(&officer));
    unlock_release::report(&state, driver, request).await.map(|()| StatusCode::NO_CONTENT)
}
