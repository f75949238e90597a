//! My Profile: details, cards and the Self Service section. Pulling the signed-in card out of
//! the reader signs out.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use protocol::{
    agent::Event,
    api::{Profile as ProfileData, SelfService},
};

use crate::{
    agent::{use_agent, AgentStatus, SignedInReader},
    api,
};

#[component]
pub fn Profile() -> impl IntoView {
    let me = LocalResource::new(api::me);
    let navigate = use_navigate();
    let agent = use_agent();
    let signed_in_reader = expect_context::<SignedInReader>();

    // No session: go and sign in.
    {
        let navigate = navigate.clone();
        Effect::new(move |_| {
            if let Some(Err(e)) = me.get() {
                if e.is_unauthenticated() {
                    navigate("/sign-in", Default::default());
                }
            }
        });
    }
    // After a reload the page no longer knows which reader holds the signed-in card: find it
    // (and if no reader holds it, it was removed while the page was away: sign out).
    {
        let agent = agent.clone();
        let navigate = navigate.clone();
        let readers = agent.readers();
        Effect::new(move |_| {
            let (Some(Ok(profile)), true) = (me.get(), signed_in_reader.0.get().is_none()) else { return };
            if !matches!(agent.status().get(), AgentStatus::Connected { .. }) || !agent.listed().get() {
                return;
            }
            let candidates: Vec<String> =
                readers.get().into_iter().filter(|r| r.card_present).map(|r| r.name).collect();
            let agent = agent.clone();
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                for reader in candidates {
                    if let Ok(card) = agent.identity(reader.clone()).await {
                        if card.guid == profile.signed_in_with {
                            signed_in_reader.0.set(Some(reader));
                            return;
                        }
                    }
                }
                let _ = api::sign_out().await;
                navigate("/signed-out", Default::default());
            });
        });
    }
    // The signed-in card left the reader: sign out.
    {
        let navigate = navigate.clone();
        let last_event = agent.last_event();
        Effect::new(move |_| {
            if let Some(Event::CardRemoved { reader }) = last_event.get() {
                if signed_in_reader.0.get_untracked().as_deref() == Some(reader.as_str()) {
                    signed_in_reader.0.set(None);
                    let navigate = navigate.clone();
                    leptos::task::spawn_local(async move {
                        let _ = api::sign_out().await;
                        navigate("/signed-out", Default::default());
                    });
                }
            }
        });
    }
    let sign_out = move |_| {
        let navigate = navigate.clone();
        signed_in_reader.0.set(None);
        leptos::task::spawn_local(async move {
            let _ = api::sign_out().await;
            navigate("/", Default::default());
        });
    };

    let just_registered = use_query_map().with_untracked(|q| q.get("registered").is_some());
    view! {
        {just_registered.then(|| view! {
            <div class="nhsuk-panel" data-testid="registered-panel" role="status">
                <h2>"Registration complete"</h2>
                <p>"You are now registered for self-service. We have emailed you to confirm."</p>
            </div>
        })}
        <Suspense fallback=|| view! { <p aria-busy="true">"Loading your profile…"</p> }>
            {move || me.get().map(|result| match result {
                Ok(profile) => profile_view(profile).into_any(),
                Err(e) if e.is_unauthenticated() => view! { <p>"Please sign in."</p> }.into_any(),
                Err(e) => view! {
                    <div class="nhsuk-error-summary" role="alert"><h2 class="nhsuk-error-summary__title">"Your profile could not be loaded"</h2><p>{e.to_string()}</p></div>
                }.into_any(),
            })}
        </Suspense>
        {move || signed_in_reader.0.get().map(|reader| view! {
            <p class="nhsuk-body-s" data-testid="card-watch">{format!("Your card is in the reader “{reader}”. Taking it out signs you out.")}</p>
        })}
        <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid="sign-out" on:click=sign_out>"Sign out"</button>
    }
}

fn profile_view(profile: ProfileData) -> impl IntoView {
    let email = profile.contact_email.clone().unwrap_or_else(|| "Not recorded".into());
    let cards = profile
        .cards
        .iter()
        .map(|card| {
            let this = if card.guid == profile.signed_in_with { " (in the reader now)" } else { "" };
            view! {
                <div class="nhsuk-summary-list__row">
                    <dt class="nhsuk-summary-list__key">{format!("Card {}", &card.guid[..8.min(card.guid.len())])}</dt>
                    <dd class="nhsuk-summary-list__value">{format!("{}{this}, issued {}", card.status, date(card.issued_at))}</dd>
                </div>
            }
        })
        .collect_view();
    let self_service = match &profile.self_service {
        SelfService::NotRegistered => view! {
            <p data-testid="self-service-status">"You are not registered for self-service yet. Register now, so that you can unlock your own card if it is ever locked."</p>
            <a class="nhsuk-button" href="/register" data-testid="register">"Register"</a>
        }
        .into_any(),
        SelfService::Registered { registered_at, email } => view! {
            <div class="nhsuk-inset-text" data-testid="self-service-status">
                <span class="nhsuk-u-visually-hidden">"Information: "</span>
                <p>{format!("You are registered for self-service (since {}). Codes are sent to {email}.", date(*registered_at))}</p>
            </div>
            <a class="nhsuk-button nhsuk-button--secondary" href="/register">"Re-register"</a>
        }
        .into_any(),
    };
    view! {
        <h1>"My profile"</h1>
        <dl class="nhsuk-summary-list">
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Name"</dt><dd class="nhsuk-summary-list__value" data-testid="profile-name">{profile.name.clone()}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"User ID"</dt><dd class="nhsuk-summary-list__value">{profile.user_id.clone()}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Contact email"</dt><dd class="nhsuk-summary-list__value">{email}</dd></div>
            {cards}
        </dl>
        <h2>"Self Service"</h2>
        {self_service}
        {profile.roles.iter().any(|r| r == "ra").then(|| view! {
            <h2>"Registration Authority"</h2>
            // A separate app: the browser loads it, this app's router must not.
            <a class="nhsuk-button" href="/ra" rel="external" data-testid="ra-console">"Open the RA console"</a>
        })}
    }
}

/// A Unix time as a date in the reader's locale.
fn date(unix_seconds: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_seconds as f64 * 1000.0));
    date.to_locale_date_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED).into()
}

#[component]
pub fn SignedOut() -> impl IntoView {
    view! {
        <h1>"You have been signed out"</h1>
        <p data-testid="signed-out">"Your smartcard was removed from the reader, so you were signed out to keep your account safe."</p>
        <a class="nhsuk-button" href="/sign-in">"Sign in again"</a>
    }
}
