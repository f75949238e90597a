//! `GET /api/me`: the signed-in person, their cards and their self-service state.

use axum::{extract::State, routing::get, Router};
use protocol::api::Profile;

use crate::{
    error::{ApiError, AppJson},
    journeys::profile,
    session::SignedIn,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Result<AppJson<Profile>, ApiError> {
    profile::me(&state, signed_in).await.map(AppJson)
}
