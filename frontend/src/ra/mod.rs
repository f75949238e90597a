//! The RA console: a second, separate bundle (`ra.html`, served under `/ra`), so cardholders never
//! download staff-only pages. RA staff sign in with their own card on the main site first; every
//! page here checks the session has the RA role (the API refuses anyone else regardless).

use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

mod add_person;
mod api;
mod audit;
mod chart;
mod desk_unlock;
mod issue;
mod report;
mod search;
mod user;
mod words;

#[component]
pub fn RaApp() -> impl IntoView {
    let me = LocalResource::new(crate::api::me);
    // Issuing a card goes through the card agent at the RA's desk.
    crate::connect_agent();
    // Signs out, then follows the link to the cardholders' "You have signed out" page.
    let sign_out = move |event: leptos::ev::MouseEvent| {
        event.prevent_default();
        leptos::task::spawn_local(async move {
            let _ = crate::api::sign_out().await;
            if let Some(window) = web_sys::window() {
                let _ = window.location().set_href("/signed-out");
            }
        });
    };
    view! {
        <Router>
            <a class="nhsuk-skip-link" href="#main-content">"Skip to main content"</a>
            <header class="nhsuk-header" role="banner">
                <div class="nhsuk-header__container nhsuk-width-container">
                    <div class="nhsuk-header__service">
                        <a href="/ra" class="nhsuk-header__service-logo">
                            <span class="nhsuk-header__service-name">"Smartcard self-service: RA console"</span>
                        </a>
                    </div>
                </div>
            </header>
            <div class="nhsuk-width-container">
                <nav aria-label="RA console">
                    <ul class="nhsuk-list ra-nav">
                        <li><a href="/ra">"Find a person"</a></li>
                        <li><a href="/ra/people/new">"Add a person"</a></li>
                        <li><a href="/ra/audit">"Audit trail"</a></li>
                        <li><a href="/ra/report">"Report"</a></li>
                        <li><a href="/profile" rel="external">"My profile"</a></li>
                        <li><a href="/signed-out" rel="external" data-testid="ra-sign-out" on:click=sign_out>"Sign out"</a></li>
                    </ul>
                </nav>
                <main id="main-content" class="nhsuk-main-wrapper" tabindex="-1">
                    {move || match me.get() {
                        None => view! { <p aria-busy="true">"Checking your session…"</p> }.into_any(),
                        Some(Err(e)) if e.is_unauthenticated() => view! {
                            <h1>"Sign in first"</h1>
                            <p data-testid="ra-sign-in">"Sign in with your smartcard, then come back to the RA console."</p>
                            <a class="nhsuk-button" href="/sign-in" rel="external">"Sign in"</a>
                        }.into_any(),
                        Some(Err(e)) => view! { <p role="alert">{e.to_string()}</p> }.into_any(),
                        Some(Ok(profile)) if !profile.roles.iter().any(|r| r == "ra") => view! {
                            <h1>"RA staff only"</h1>
                            <p data-testid="ra-refused">"The RA console is for Registration Authority staff. Your card does not have the RA role."</p>
                        }.into_any(),
                        Some(Ok(_)) => view! {
                            <Routes fallback=|| view! { <h1>"Page not found"</h1> }>
                                <Route path=path!("/ra") view=search::Search />
                                <Route path=path!("/ra/users/:user_id") view=user::User />
                                <Route path=path!("/ra/users/:user_id/issue") view=issue::IssueCard />
                                <Route path=path!("/ra/users/:user_id/unlock") view=desk_unlock::DeskUnlock />
                                <Route path=path!("/ra/people/new") view=add_person::AddPerson />
                                <Route path=path!("/ra/audit") view=audit::Audit />
                                <Route path=path!("/ra/report") view=report::ReportPage />
                            </Routes>
                        }.into_any(),
                    }}
                </main>
            </div>
        </Router>
    }
}

/// A required "why" for an RA action, with its own label and id.
#[component]
pub(crate) fn ReasonField(id: &'static str, reason: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="nhsuk-form-group">
            <label class="nhsuk-label" for=id>"Reason (recorded in the audit trail)"</label>
            <input class="nhsuk-input" id=id type="text" autocomplete="off"
                prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev)) />
        </div>
    }
}

/// The holder's new passcode, twice, typed by the holder at the RA's desk (`{prefix}-pin` and
/// `{prefix}-confirm`); checked with the shared rules when the form is sent.
#[component]
pub(crate) fn NewPasscodeFields(
    prefix: &'static str,
    pin: RwSignal<String>,
    confirm: RwSignal<String>,
) -> impl IntoView {
    let (pin_id, confirm_id, hint_id) =
        (format!("{prefix}-pin"), format!("{prefix}-confirm"), format!("{prefix}-pin-hint"));
    view! {
        <div class="nhsuk-form-group">
            <label class="nhsuk-label" for=pin_id.clone()>"Their new passcode"</label>
            <div class="nhsuk-hint" id=hint_id.clone()>"6 to 8 digits. Not one digit repeated, not a run like 123456, and not a common one."</div>
            <input class="nhsuk-input nhsuk-input--width-10" id=pin_id type="password" inputmode="numeric"
                autocomplete="new-password" aria-describedby=hint_id
                prop:value=move || pin.get() on:input=move |ev| pin.set(event_target_value(&ev)) />
        </div>
        <div class="nhsuk-form-group">
            <label class="nhsuk-label" for=confirm_id.clone()>"Their new passcode again"</label>
            <input class="nhsuk-input nhsuk-input--width-10" id=confirm_id type="password" inputmode="numeric"
                autocomplete="new-password"
                prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) />
        </div>
    }
}
