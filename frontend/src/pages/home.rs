//! The start page: what the service does and the two ways in.

use leptos::prelude::*;

use crate::components::WarningCallout;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <h1>"Smartcard self-service"</h1>
        <p class="nhsuk-lede-text">
            "Unlock your smartcard or reset a forgotten passcode yourself, in a few minutes, \
             without visiting your Registration Authority (RA)."
        </p>
        <h2>"Before you start"</h2>
        <ul class="nhsuk-list nhsuk-list--bullet">
            <li>"Put your smartcard in the card reader."</li>
            <li>"Make sure the card agent is running on this computer."</li>
            <li>"To unlock your card later, you must first sign in and register for self-service."</li>
        </ul>
        <a class="nhsuk-button" href="/sign-in" data-testid="start-sign-in">"Sign in with your smartcard"</a>
        <p>
            <a class="nhsuk-button nhsuk-button--secondary" href="/unlock" data-testid="home-unlock">"Unlock my card"</a>
        </p>
        <WarningCallout title="Only unlock your own card">
            <p>"Unlocking a card that is not yours is misconduct and could result in disciplinary action."</p>
        </WarningCallout>
    }
}
