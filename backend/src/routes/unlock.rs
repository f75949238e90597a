//! The unlock journey's routes (journey 2, DESIGN.md): the card proves it is present, the holder
//! answers their questions and enters the emailed code, the PUK is released to the card agent
//! and the card reports what it did. The rules are in `journeys::unlock` (questions and code) and
//! `journeys::unlock_release` (the PUK).

use axum::{extract::State, http::StatusCode, routing::post, Router};
use protocol::api::{
    ChallengeIssued, UnlockAnswers, UnlockAttempt, UnlockCode, UnlockCodeSent, UnlockQuestions,
    UnlockRelease, UnlockReleased, UnlockReported, UnlockStart,
};

use crate::{
    error::{ApiError, AppJson},
    journeys::{unlock, unlock_release as release},
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/unlock/challenge", post(challenge))
        .route("/unlock/start", post(start))
        .route("/unlock/answers", post(answers))
        .route("/unlock/code", post(code))
        .route("/unlock/resend", post(resend))
        .route("/unlock/offer-challenge", post(offer_challenge))
        .route("/unlock/release", post(release))
        .route("/unlock/report", post(report))
}

async fn challenge(State(state): State<AppState>) -> Result<AppJson<ChallengeIssued>, ApiError> {
    unlock::challenge(&state).await.map(AppJson)
}

async fn start(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockStart>,
) -> Result<AppJson<UnlockQuestions>, ApiError> {
    unlock::start(&state, request).await.map(AppJson)
}

async fn answers(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockAnswers>,
) -> Result<AppJson<UnlockCodeSent>, ApiError> {
    unlock::answers(&state, request).await.map(AppJson)
}

async fn resend(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockAttempt>,
) -> Result<AppJson<UnlockCodeSent>, ApiError> {
    unlock::resend(&state, request).await.map(AppJson)
}

async fn code(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockCode>,
) -> Result<StatusCode, ApiError> {
    unlock::code(&state, request).await.map(|()| StatusCode::NO_CONTENT)
}

async fn offer_challenge(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockAttempt>,
) -> Result<AppJson<ChallengeIssued>, ApiError> {
    release::offer_challenge(&state, release::Driver::Holder, request).await.map(AppJson)
}

async fn release(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockRelease>,
) -> Result<AppJson<UnlockReleased>, ApiError> {
    release::release(&state, release::Driver::Holder, request).await.map(AppJson)
}

async fn report(
    State(state): State<AppState>,
    AppJson(request): AppJson<UnlockReported>,
) -> Result<StatusCode, ApiError> {
    release::report(&state, release::Driver::Holder, request).await.map(|()| StatusCode::NO_CONTENT)
}
