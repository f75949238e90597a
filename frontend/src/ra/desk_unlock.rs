//! Unlock a person's card at the RA's desk: the guide's last resort. The RA chooses the holder's
//! card (their own is usually in the other reader), records how they checked who the holder is
//! and why, and turns the keyboard to the holder, who types the new passcode twice. The page
//! relays between the card agent and the backend (`journeys::desk_unlock`, then self-service's
//! release and report): it sees a one-time key, a sealed envelope and a report — never a PUK —
//! and the new passcode goes only to the agent.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_params_map;
use protocol::{
    agent::{CardIdentity, PinState},
    card_guid::CardGuid,
    passcode,
    ra::DeskUnlockStart,
};

use super::{api, NewPasscodeFields, ReasonField};
use crate::{
    agent::{use_agent, Agent},
    card_status::{CardStatus, CardWatch},
    components::{ErrorSummary, InsetText},
    release,
};

#[component]
pub fn DeskUnlock() -> impl IntoView {
    let params = use_params_map();
    let user_id = Memo::new(move |_| params.get().get("user_id").unwrap_or_default());
    let person = LocalResource::new(move || {
        let user_id = user_id.get();
        async move { api::user(&user_id).await }
    });
    let done = RwSignal::new(false);
    let person_href = move || format!("/ra/users/{}", api::encode(&user_id.get()));
    view! {
        {move || match (done.get(), person.get()) {
            (true, _) => view! {
                <h1 data-testid="ra-unlocked">"Card unlocked"</h1>
                <InsetText>
                    <p role="status" data-testid="ra-unlocked-card">"The card works again with the passcode they chose, and self-service is no longer locked for them. We have emailed them to say so."</p>
                </InsetText>
                <p>"Ask them to sign in now with the new passcode. If they have not registered for self-service, suggest they do, so they can unlock the card themselves next time."</p>
                <a class="nhsuk-button" href=person_href() data-testid="ra-back-to-person">"Back to the person"</a>
            }.into_any(),
            (false, None) => view! { <p aria-busy="true">"Loading…"</p> }.into_any(),
            (false, Some(Err(e))) => view! { <h1>"Person not found"</h1><p role="alert">{e.to_string()}</p> }.into_any(),
            (false, Some(Ok(detail))) => view! {
                <DeskUnlockForm name=detail.name user_id=detail.user_id done />
                <p><a href=person_href()>"Cancel"</a></p>
            }.into_any(),
        }}
    }
}

#[component]
fn DeskUnlockForm(name: String, user_id: String, done: RwSignal<bool>) -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let identity_check = RwSignal::new(String::new());
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
        let Some((reader, card)) = watch.identified() else {
            error.set(Some("Put their card in a card reader, and choose it if there are several.".into()));
            return;
        };
        busy.set(true);
        let (agent, user_id) = (agent.clone(), user_id.clone());
        let (identity_check, reason) = (identity_check.get_untracked(), reason.get_untracked());
        leptos::task::spawn_local(async move {
            let result = unlock(&agent, reader, card.guid, &user_id, identity_check, reason, new).await;
            busy.set(false);
            pin.set(String::new());
            confirm.set(String::new());
            match result {
                Ok(()) => {
                    error.set(None);
                    done.set(true);
                }
                Err(message) => error.set(Some(message)),
            }
        });
    };
    view! {
        <span class="nhsuk-caption-l">{name}</span>
        <h1>"Unlock their card"</h1>
        <ErrorSummary message=error.into() field="ra-desk-identity" />
        <ol class="nhsuk-list nhsuk-list--number">
            <li>"Check who they are against their identity documents."</li>
            <li>"Put their card in a card reader and choose it below."</li>
            <li>"Turn the keyboard to them: they type their new passcode, twice. You never need to know it."</li>
        </ol>
        <div data-testid="ra-desk-reader">
            <CardStatus watch card=card_line for_holder=true />
        </div>
        <form novalidate on:submit=on_submit>
            <div class="nhsuk-form-group">
                <label class="nhsuk-label" for="ra-desk-identity">"How you checked who they are (recorded in the audit trail)"</label>
                <div class="nhsuk-hint" id="ra-desk-identity-hint">"For example: photo ID seen (passport)."</div>
                <input class="nhsuk-input" id="ra-desk-identity" type="text" autocomplete="off" aria-describedby="ra-desk-identity-hint"
                    prop:value=move || identity_check.get() on:input=move |ev| identity_check.set(event_target_value(&ev)) />
            </div>
            <ReasonField id="ra-desk-reason" reason />
            <NewPasscodeFields prefix="ra-desk" pin confirm />
            <button class="nhsuk-button" type="submit" data-testid="ra-desk-unlock" prop:disabled=move || busy.get()>
                {move || if busy.get() { "Unlocking the card…" } else { "Unlock the card" }}
            </button>
        </form>
    }
}

fn card_line(card: &CardIdentity) -> AnyView {
    let whose = card.holder.as_deref().map_or_else(|| "A card".to_owned(), |name| format!("{name}’s card"));
    let state = match card.pin {
        PinState::Blocked => "is locked: too many wrong passcodes.",
        PinState::Ready { .. } => "is not locked; it can still be given a new passcode.",
    };
    view! { <InsetText><p data-testid="ra-desk-card">{format!("{whose} {state}")}</p></InsetText> }.into_any()
}

/// The card proves it is theirs and the backend opens the desk unlock; then self-service's own
/// release and report, through the officer's routes.
async fn unlock(
    agent: &Agent,
    reader: String,
    guid: CardGuid,
    user_id: &str,
    identity_check: String,
    reason: String,
    pin: String,
) -> Result<(), String> {
    let issued = api::desk_challenge(user_id).await.map_err(|e| e.to_string())?;
    let signature = agent.prove_presence(reader.clone(), issued.challenge).await.map_err(|e| e.message)?;
    let start =
        DeskUnlockStart { challenge_id: issued.challenge_id, guid, signature, identity_check, reason };
    let attempt_id = api::desk_start(user_id, &start).await.map_err(|e| e.to_string())?.attempt_id;
    release::unlock(agent, release::DESK, reader, &attempt_id, pin).await.map_err(|failed| match failed {
        release::Failed::Api(e) => e.to_string(),
        release::Failed::Agent(message) => message,
    })
}
