//! The JSON API under `/api`: each module owns its routes and is merged here.

use axum::Router;

use crate::{error::ApiError, startup::AppState};

mod health;

pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).fallback(|| async { ApiError::NotFound })
}
