//! Issue a blank card to a person at the RA's desk. The page relays between the card agent and
//! the backend (see `backend::journeys::issuance`): it sees the agent's one-time key, a sealed
//! envelope, public keys, certificates and proofs — never a management key or a PUK. The new
//! passcode is typed by the holder and goes only to the agent.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_params_map;
use protocol::{
    passcode,
    ra::{CardIssued, IssueComplete},
};

use super::{api, NewPasscodeFields, ReasonField};
use crate::{
    agent::{use_agent, Agent},
    card_status::{CardStatus, CardWatch},
    components::{ErrorSummary, InsetText},
};

#[component]
pub fn IssueCard() -> impl IntoView {
    let params = use_params_map();
    let user_id = Memo::new(move |_| params.get().get("user_id").unwrap_or_default());
    let person = LocalResource::new(move || {
        let user_id = user_id.get();
        async move { api::user(&user_id).await }
    });
    let issued = RwSignal::new(None::<CardIssued>);
    let person_href = move || format!("/ra/users/{}", api::encode(&user_id.get()));
    view! {
        {move || match (issued.get(), person.get()) {
            (Some(card), _) => view! {
                <h1 data-testid="ra-issued">"Card issued"</h1>
                <InsetText>
                    <p role="status" data-testid="ra-issued-card">{format!("Card {} is issued to {} and ready to use with the passcode they chose.", card.guid, card.user_id)}</p>
                </InsetText>
                <p>"Ask them to sign in now and register for self-service, so they can unlock the card themselves if it ever locks."</p>
                <a class="nhsuk-button" href=person_href() data-testid="ra-back-to-person">"Back to the person"</a>
            }.into_any(),
            (None, None) => view! { <p aria-busy="true">"Loading…"</p> }.into_any(),
            (None, Some(Err(e))) => view! { <h1>"Person not found"</h1><p role="alert">{e.to_string()}</p> }.into_any(),
            (None, Some(Ok(detail))) => view! {
                <IssueForm name=detail.name user_id=detail.user_id issued />
                <p><a href=person_href()>"Cancel"</a></p>
            }.into_any(),
        }}
    }
}

#[component]
fn IssueForm(name: String, user_id: String, issued: RwSignal<Option<CardIssued>>) -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let reason = RwSignal::new(String::new());
    let pin = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let (new, again) = (pin.get_untracked(), confirm.get_untracked());
        if let Err(problem) = passcode::check(&new, &again) {
            // Passcodes are never shown back: both boxes start again.
            pin.set(String::new());
            confirm.set(String::new());
            error.set(Some(problem.message().into()));
            return;
        }
        let Some(card) = watch.card.get_untracked() else {
            error
                .set(Some("Put the blank card in a card reader, and choose it if there are several.".into()));
            return;
        };
        busy.set(true);
        let (agent, user_id, reason) = (agent.clone(), user_id.clone(), reason.get_untracked());
        leptos::task::spawn_local(async move {
            let reader = card.reader;
            let result = issue(&agent, reader, &user_id, reason, new).await;
            busy.set(false);
            pin.set(String::new());
            confirm.set(String::new());
            match result {
                Ok(card) => {
                    error.set(None);
                    issued.set(Some(card));
                }
                Err(message) => error.set(Some(message)),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">{name}</span>
        <h1>"Issue a card"</h1>
        <ErrorSummary message=error.into() field="ra-issue-pin" />
        <ol class="nhsuk-list nhsuk-list--number">
            <li>"Check who they are against their identity documents."</li>
            <li>"Put a blank card in the card reader (a new card, or one reset to its factory state)."</li>
            <li>"Turn the keyboard to them: they type the passcode they want, twice. You never need to know it."</li>
        </ol>
        <div data-testid="ra-issue-reader">
            <CardStatus watch blank_ok=true for_holder=true card=|card| {
                // A card with an identity: a half-issued one is resumed, any other is refused.
                let whose = card.holder.as_deref().map_or_else(|| "A card".to_owned(), |name| format!("{name}’s card"));
                view! { <InsetText><p data-testid="card-issued-already">{format!("{whose} is in this reader. It can be issued only if this service started issuing it.")}</p></InsetText> }.into_any()
            } />
        </div>
        <form novalidate on:submit=on_submit>
            <ReasonField id="ra-issue-reason" reason />
            <NewPasscodeFields prefix="ra-issue" pin confirm />
            <button class="nhsuk-button" type="submit" data-testid="ra-issue" prop:disabled=move || busy.get()>
                {move || if busy.get() { "Issuing the card…" } else { "Issue the card" }}
            </button>
        </form>
    }
}

/// The three round trips: offer → current credentials, keys (and the card-vouched key) →
/// certificates and new credentials, report → card bound.
async fn issue(
    agent: &Agent,
    reader: String,
    user_id: &str,
    reason: String,
    pin: String,
) -> Result<CardIssued, String> {
    let start = agent.begin_issue(reader.clone(), reason).await.map_err(|e| e.message)?;
    let started = api::issue_start(user_id, &start).await.map_err(|e| e.to_string())?;
    let keys = agent.generate_issue_keys(reader.clone(), started.envelope).await.map_err(|e| e.message)?;
    let certificates = api::issue_keys(&started.issuance_id, &keys).await.map_err(|e| e.to_string())?;
    let report = agent.finish_issue(reader, certificates, pin).await.map_err(|e| e.message)?;
    api::issue_complete(&started.issuance_id, &IssueComplete { report }).await.map_err(|e| e.to_string())
}
