//! A request that takes too long is answered rather than left hanging: `503 unavailable` with
//! `Retry-After`, in the API's error envelope like every other refusal (tower-http's timeout
//! answered with an empty body, which the page cannot read and the OpenAPI document does not
//! allow). What the request was doing is dropped with it; work that must not stop half-way
//! (right answers, `journeys/unlock.rs`) runs as a task of its own.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

pub async fn limit(State(within): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(within, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::Unavailable(anyhow::anyhow!("the request took longer than {} s", within.as_secs()))
                .into_response()
        }
    }
}
