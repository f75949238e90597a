//! The JSON API under `/api`: each module owns its routes and is merged here.

use axum::Router;

use crate::{error::ApiError, startup::AppState};

mod client_config;
mod desk_unlock;
mod health;
mod issuance;
mod profile;
mod ra;
mod registration;
mod sign_in;
mod unlock;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(client_config::router())
        .merge(sign_in::router())
        .merge(profile::router())
        .merge(registration::router())
        .merge(ra::router())
        .merge(issuance::router())
        .merge(desk_unlock::router())
        .merge(unlock::router())
        .merge(crate::openapi::router())
        // Each route is timed under its template (`/api/ra/users/{user_id}`), never its ids.
        .route_layer(axum::middleware::from_fn(crate::metrics::observe))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn(crate::csrf::require_same_origin))
}
