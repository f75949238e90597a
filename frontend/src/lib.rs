//! The self-service SPA: routes, the shared page layout and the card agent connection.

use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

pub mod agent;
pub mod api;
mod card_status;
mod components;
mod layout;
mod pages;
#[cfg(feature = "ra-console")]
pub mod ra;
pub mod release;
pub mod time;

/// The agent's default address, used until the backend says otherwise.
const DEFAULT_AGENT_URL: &str = "ws://127.0.0.1:47101";

/// Connects to the card agent at the address the backend names, and provides it to the pages.
pub fn connect_agent() {
    let agent = agent::Agent::new();
    provide_context(StoredValue::new_local(agent.clone()));
    provide_context(agent::SignedInReader(RwSignal::new(None)));
    provide_context(card_status::ChosenCard(RwSignal::new(None)));
    leptos::task::spawn_local(async move {
        let url =
            api::client_config().await.map(|c| c.agent_url).unwrap_or_else(|_| DEFAULT_AGENT_URL.into());
        agent.start(url);
    });
}

/// The whole app. Tests mount it into a detached element; `main` mounts it to `<body>`.
#[component]
pub fn App() -> impl IntoView {
    connect_agent();
    view! {
        <Router>
            <layout::Header />
            <div class="nhsuk-width-container">
                <main id="main-content" class="nhsuk-main-wrapper" tabindex="-1">
                    <Routes fallback=pages::not_found::NotFound>
                        <Route path=path!("/") view=pages::home::Home />
                        <Route path=path!("/status") view=pages::status::Status />
                        <Route path=path!("/sign-in") view=pages::sign_in::SignIn />
                        <Route path=path!("/profile") view=pages::profile::Profile />
                        <Route path=path!("/signed-out") view=pages::profile::SignedOut />
                        <Route path=path!("/register") view=pages::register::Register />
                        <Route path=path!("/unlock") view=pages::unlock::Unlock />
                    </Routes>
                </main>
            </div>
            <layout::Footer />
        </Router>
    }
}
