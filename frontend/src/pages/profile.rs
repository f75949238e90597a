//! My Profile: details, cards and the self-service section. Pulling the signed-in card out of
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
    card_status::ChosenCard,
    components::{ErrorSummary, WarningCallout},
    time,
};

#[component]
pub fn Profile() -> impl IntoView {
    let me = LocalResource::new(api::me);
    let navigate = use_navigate();
    let agent = use_agent();
    let signed_in_reader = expect_context::<SignedInReader>();
    let chosen = expect_context::<ChosenCard>();

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
                            signed_in_reader.0.set(Some(reader.clone()));
                            chosen.0.set(Some((reader, Some(card.guid))));
                            return;
                        }
                    }
                }
                let _ = api::sign_out().await;
                navigate("/signed-out?card=removed", Default::default());
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
                        navigate("/signed-out?card=removed", Default::default());
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
            navigate("/signed-out", Default::default());
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
                Ok(profile) => view! { <ProfileView profile reload=move || me.refetch() /> }.into_any(),
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

#[component]
fn ProfileView(profile: ProfileData, reload: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let email = profile.contact_email.clone().unwrap_or_else(|| "Not recorded".into());
    let cards = profile
        .cards
        .iter()
        .map(|card| {
            let this = if card.guid == profile.signed_in_with { " (in the reader now)" } else { "" };
            view! {
                <div class="nhsuk-summary-list__row">
                    <dt class="nhsuk-summary-list__key">{format!("Card {}", &card.guid[..8.min(card.guid.len())])}</dt>
                    <dd class="nhsuk-summary-list__value">{format!("{}{this}, issued {}", card.status, time::date(card.issued_at))}</dd>
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
                <p>{format!("You are registered for self-service (since {}). Codes are sent to {email}.", time::date(*registered_at))}</p>
            </div>
            <a class="nhsuk-button nhsuk-button--secondary" href="/register" data-testid="re-register">"Re-register"</a>
            <Withdraw reload />
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
        <h2>"Self-service"</h2>
        {self_service}
        {profile.roles.iter().any(|r| r == "ra").then(|| view! {
            <h2>"Registration Authority"</h2>
            // A separate app: the browser loads it, this app's router must not.
            <a class="nhsuk-button" href="/ra" rel="external" data-testid="ra-console">"Open the RA console"</a>
        })}
    }
}

/// "Withdraw": asks once more (it ends self-service, and any unlock in progress), then withdraws.
#[component]
fn Withdraw(reload: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let asking = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let withdraw = move |_| {
        leptos::task::spawn_local(async move {
            match api::withdraw_registration().await {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <ErrorSummary message=error.into() field="withdraw" />
        {move || if asking.get() {
            view! {
                <WarningCallout title="Withdraw from self-service?">
                    <p data-testid="withdraw-warning">"You will no longer be able to unlock your card yourself: if it locks, your Registration Authority (RA) will have to unlock it. Your security questions and answers are deleted. You can register again at any time."</p>
                </WarningCallout>
                <button class="nhsuk-button nhsuk-button--warning" type="button" id="withdraw" data-testid="withdraw-confirm" on:click=withdraw>"Yes, withdraw"</button>
                " "
                <button class="nhsuk-button nhsuk-button--secondary" type="button" on:click=move |_| asking.set(false)>"Keep my registration"</button>
            }.into_any()
        } else {
            view! {
                <button class="nhsuk-button nhsuk-button--secondary" type="button" id="withdraw" data-testid="withdraw" on:click=move |_| asking.set(true)>"Withdraw from self-service"</button>
            }.into_any()
        }}
    }
}

#[component]
pub fn SignedOut() -> impl IntoView {
    let removed = use_query_map().with_untracked(|q| q.get("card").is_some_and(|why| why == "removed"));
    let why = if removed {
        "Your smartcard was removed from the reader, so you were signed out to keep your account safe."
    } else {
        "You have signed out. Take your smartcard out of the reader if you are leaving this computer."
    };
    view! {
        <h1 data-testid="signed-out-title">"You have signed out"</h1>
        <p data-testid="signed-out">{why}</p>
        <a class="nhsuk-button" href="/sign-in">"Sign in again"</a>
    }
}
