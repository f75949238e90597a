//! Registering for self-service (`journeys::registration`).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use protocol::api::{
    ChallengeIssued, CodeRequest, Profile, ProofRequest, Question, RegistrationPending, RegistrationRequest,
};

use crate::{
    error::{ApiError, AppJson},
    journeys::registration,
    session::SignedIn,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/questions", get(catalogue))
        .route("/registration/challenge", post(challenge))
        .route("/registration/proof", post(proof))
        .route("/registration", post(register).delete(withdraw))
        .route("/registration/resend", post(resend))
        .route("/registration/confirm", post(confirm))
}

async fn catalogue() -> AppJson<Vec<Question>> {
    AppJson(registration::catalogue())
}

async fn challenge(
    State(state): State<AppState>,
    me: SignedIn,
) -> Result<AppJson<ChallengeIssued>, ApiError> {
    registration::challenge(&state, me).await.map(AppJson)
}

async fn proof(
    State(state): State<AppState>,
    me: SignedIn,
    AppJson(request): AppJson<ProofRequest>,
) -> Result<StatusCode, ApiError> {
    registration::proof(&state, me, request).await.map(|()| StatusCode::NO_CONTENT)
}

async fn resend(
    State(state): State<AppState>,
    me: SignedIn,
) -> Result<AppJson<RegistrationPending>, ApiError> {
    registration::resend(&state, me).await.map(AppJson)
}

async fn confirm(
    State(state): State<AppState>,
    me: SignedIn,
    AppJson(request): AppJson<CodeRequest>,
) -> Result<AppJson<Profile>, ApiError> {
    registration::confirm(&state, me, request).await.map(AppJson)
}

async fn withdraw(State(state): State<AppState>, me: SignedIn) -> Result<StatusCode, ApiError> {
    registration::withdraw(&state, me).await.map(|()| StatusCode::NO_CONTENT)
}

async fn register(
    State(state): State<AppState>,
    me: SignedIn,
    AppJson(request): AppJson<RegistrationRequest>,
) -> Result<Response, ApiError> {
    let pending = registration::register(&state, me, request).await?;
    Ok((StatusCode::CREATED, AppJson(pending)).into_response())
}
