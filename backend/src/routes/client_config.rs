//! `GET /api/client-config`: the card agent's URL for the SPA (the first of `agent_urls`, the
//! same list the CSP allows).

use axum::{extract::State, routing::get, Router};
use protocol::api::ClientConfig;

use crate::{error::AppJson, startup::AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/client-config", get(client_config))
}

async fn client_config(State(state): State<AppState>) -> AppJson<ClientConfig> {
    let agent_url =
        state.settings.agent_urls.first().cloned().unwrap_or_else(|| "ws://127.0.0.1:47101".into());
    AppJson(ClientConfig { agent_url })
}
