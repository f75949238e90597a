//! The header and footer around every page.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <a class="skip-link" href="#main-content">"Skip to main content"</a>
        <header class="header" role="banner">
            <div class="header__inner">
                <A href="/" attr:class="header__service">"Smartcard self-service"</A>
            </div>
        </header>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
        <footer class="footer" role="contentinfo">
            <div class="footer__inner">
                <A href="/status">"Service status"</A>
            </div>
        </footer>
    }
}
