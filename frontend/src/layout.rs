//! The header and footer around every page (NHS design system markup).

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <a class="nhsuk-skip-link" href="#main-content">"Skip to main content"</a>
        <header class="nhsuk-header" role="banner">
            <div class="nhsuk-header__container nhsuk-width-container">
                <div class="nhsuk-header__service">
                    <A href="/" attr:class="nhsuk-header__service-logo">
                        <span class="nhsuk-header__service-name">"Smartcard self-service"</span>
                    </A>
                </div>
            </div>
        </header>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
        <footer class="nhsuk-footer" role="contentinfo">
            <div class="nhsuk-width-container">
                <ul class="nhsuk-footer__list">
                    <li class="nhsuk-footer__list-item"><A href="/status" attr:class="nhsuk-footer__list-item-link">"Service status"</A></li>
                </ul>
            </div>
        </footer>
    }
}
