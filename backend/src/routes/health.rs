//! `GET /api/health`: version and database status, for operators and load balancers.

use axum::{extract::State, http::StatusCode, routing::get, Router};
use protocol::api::{DatabaseHealth, Health, HealthStatus};

use crate::{error::AppJson, startup::AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, AppJson<Health>) {
    let reachable = state.db.is_reachable().await;
    let schema_version = if reachable { state.db.schema_version().await.ok().flatten() } else { None };
    let status = if reachable { HealthStatus::Ok } else { HealthStatus::Degraded };
    let code = if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: DatabaseHealth { kind: state.db.kind().to_string(), reachable, schema_version },
    };
    (code, AppJson(body))
}
