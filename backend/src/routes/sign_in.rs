//! Sign-in with the card (`journeys::sign_in`): the session goes into an HttpOnly,
//! SameSite=Strict cookie.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use protocol::api::{ChallengeIssued, SignInRequest};

use crate::{
    error::{ApiError, AppJson},
    journeys::sign_in,
    session::{self, SignedIn},
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sign-in/challenge", post(challenge))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
}

async fn challenge(State(state): State<AppState>) -> Result<AppJson<ChallengeIssued>, ApiError> {
    sign_in::challenge(&state).await.map(AppJson)
}

async fn sign_in(
    State(state): State<AppState>,
    AppJson(request): AppJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let (profile, token) = sign_in::sign_in(&state, request).await?;
    let cookie = session::set_cookie(Some(&token), state.settings.secure_cookies());
    Ok(([(header::SET_COOKIE, cookie)], AppJson(profile)).into_response())
}

async fn sign_out(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, ApiError> {
    sign_in::sign_out(&state, signed_in).await?;
    let cookie = session::set_cookie(None, state.settings.secure_cookies());
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}
