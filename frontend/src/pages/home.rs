//! The start page: what the service does and the two ways in.

use leptos::prelude::*;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <h1>"Smartcard self-service"</h1>
        <p class="lede">
            "Unlock your smartcard or reset a forgotten passcode yourself, in a few minutes, \
             without visiting your Registration Authority (RA)."
        </p>
        <h2>"Before you start"</h2>
        <ul class="list">
            <li>"Put your smartcard in the card reader."</li>
            <li>"Make sure the card agent is running on this computer."</li>
            <li>"To unlock your card later, you must first sign in and register for self-service."</li>
        </ul>
        <p class="warning">
            "Only unlock your own card. Trying to unlock a card that is not yours could result in \
             disciplinary action."
        </p>
    }
}
