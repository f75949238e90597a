//! The self-service SPA: routes and the shared page layout.

use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

pub mod api;
mod layout;
mod pages;

/// The whole app. Tests mount it into a detached element; `main` mounts it to `<body>`.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <layout::Header />
            <div class="page">
                <main id="main-content" class="main" tabindex="-1">
                    <Routes fallback=pages::not_found::NotFound>
                        <Route path=path!("/") view=pages::home::Home />
                        <Route path=path!("/status") view=pages::status::Status />
                    </Routes>
                </main>
            </div>
            <layout::Footer />
        </Router>
    }
}
