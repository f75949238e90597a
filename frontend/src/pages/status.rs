//! Service status: the backend's version and database health, fetched live.

use leptos::prelude::*;
use protocol::api::{Health, HealthStatus};

use crate::api;

#[component]
pub fn Status() -> impl IntoView {
    let health = LocalResource::new(api::health);
    view! {
        <h1>"Service status"</h1>
        <Suspense fallback=|| view! { <p aria-busy="true">"Checking the service…"</p> }>
            {move || health.get().map(|result| match result {
                Ok(health) => view! { <HealthTable health /> }.into_any(),
                Err(error) => view! {
                    <div class="error-summary" role="alert">
                        <h2>"The service status could not be read"</h2>
                        <p data-testid="status-error">{error.to_string()}</p>
                    </div>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn HealthTable(health: Health) -> impl IntoView {
    let overall = match health.status {
        HealthStatus::Ok => "Working normally",
        HealthStatus::Degraded => "Some parts are not working",
    };
    let database = if health.database.reachable { "Connected" } else { "Not reachable" };
    view! {
        <dl class="summary-list" data-testid="status">
            <div class="summary-list__row"><dt>"Service"</dt><dd data-testid="status-overall">{overall}</dd></div>
            <div class="summary-list__row"><dt>"Version"</dt><dd data-testid="status-version">{health.version}</dd></div>
            <div class="summary-list__row"><dt>"Database"</dt><dd>{format!("{database} ({})", health.database.kind)}</dd></div>
        </dl>
    }
}
