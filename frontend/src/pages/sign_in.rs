//! Sign in with the smartcard: the agent, reader and card status in plain English, then the
//! passcode. The passcode goes only to the card (through the agent); the backend sees the card's
//! signature over its challenge.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use protocol::{
    agent::{AgentErrorCode, CardIdentity, PinPurpose, PinState},
    api::SignInRequest,
    card_guid::CardGuid,
};

use crate::{
    agent::{use_agent, Agent, SignedInReader},
    api,
    card_status::{CardStatus, CardWatch, ChosenCard, Inserted},
    components::{group_class, input_class, ErrorSummary, FieldError, InsetText, WarningCallout},
};

#[component]
pub fn SignIn() -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let passcode = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let signed_in_reader = expect_context::<SignedInReader>();
    let chosen = expect_context::<ChosenCard>();
    let navigate = use_navigate();
    // The passcode box is there only for a card that can take one: chosen, and not locked.
    let ready = Memo::new(move |_| {
        matches!(
            watch.card.get(),
            Some(Inserted { identity: Ok(CardIdentity { pin: PinState::Ready { .. }, .. }), .. })
        )
    });

    let on_submit = {
        let agent = agent.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            let Some((reader, card)) = watch.identified() else {
                error.set(Some("Choose your card first.".into()));
                return;
            };
            let pin = passcode.get_untracked();
            if !(6..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                error.set(Some("Enter your passcode: 6 to 8 digits.".into()));
                return;
            }
            busy.set(true);
            let agent = agent.clone();
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                let result = sign_in(&agent, reader.clone(), card.guid.clone(), pin).await;
                busy.set(false);
                passcode.set(String::new());
                match result {
                    Ok(()) => {
                        signed_in_reader.0.set(Some(reader.clone()));
                        chosen.0.set(Some((reader, Some(card.guid))));
                        navigate("/profile", Default::default());
                    }
                    Err(message) => {
                        error.set(Some(message));
                        watch.cards.refetch();
                    }
                }
            });
        }
    };

    view! {
        <h1>"Sign in with your smartcard"</h1>
        <ErrorSummary message=error.into() field="passcode" />
        <CardStatus watch card=card_view />
        // Hidden, not removed: the form's handler holds the agent connection, which a reactive
        // child may not capture.
        <form novalidate on:submit=on_submit prop:hidden=move || !ready.get()>
                <div class=group_class(error)>
                    <label class="nhsuk-label" for="passcode">"Smartcard passcode"</label>
                    <div class="nhsuk-hint" id="passcode-hint">"6 to 8 digits. It goes only to your card."</div>
                    <FieldError error />
                    <input class=input_class("nhsuk-input nhsuk-input--width-10", error) id="passcode" name="passcode" type="password"
                        inputmode="numeric" autocomplete="off" aria-describedby="passcode-hint"
                        prop:value=move || passcode.get()
                        on:input=move |ev| passcode.set(event_target_value(&ev)) />
                </div>
                <button class="nhsuk-button" type="submit" data-testid="sign-in" prop:disabled=move || busy.get()>"Sign in"</button>
        </form>
    }
}

fn card_view(card: &CardIdentity) -> AnyView {
    let whose = card.holder.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
    match card.pin {
        PinState::Blocked => view! {
            <WarningCallout title="This card is locked">
                <p data-testid="card-locked">{format!("This card{whose} is locked: too many wrong passcodes were entered. A passcode cannot be used until it is unlocked.")}</p>
                <p>"If you registered for self-service, you can unlock it yourself in a few minutes. If you have not registered, your Registration Authority (RA) can unlock it in person: take the card and photo ID."</p>
            </WarningCallout>
            <a class="nhsuk-button" href="/unlock" data-testid="unlock-locked">"Unlock my card"</a>
        }
        .into_any(),
        PinState::Ready { tries_left: Some(1) } => view! {
            <WarningCallout title="1 try left">
                <p data-testid="last-try">{format!("Card found{whose}. If the next passcode is wrong it will lock.")}</p>
            </WarningCallout>
        }
        .into_any(),
        PinState::Ready { tries_left } => {
            let text = match tries_left {
                Some(n) if n < 3 => format!("Card found{whose}. You have {n} tries left."),
                _ => format!("Card found{whose}. Enter its passcode."),
            };
            view! { <InsetText><p data-testid="card-ready">{text}</p></InsetText> }.into_any()
        }
    }
}

async fn sign_in(agent: &Agent, reader: String, guid: CardGuid, pin: String) -> Result<(), String> {
    let issued = api::sign_in_challenge().await.map_err(|e| e.to_string())?;
    let signature = agent
        .sign_with_pin(reader, guid.clone(), pin, issued.challenge, PinPurpose::SignIn)
        .await
        .map_err(|e| match e.code {
            AgentErrorCode::PinBlocked => {
                "The passcode is wrong, and your card is now locked. Unlock it with self-service, or contact your RA.".to_owned()
            }
            _ => e.message,
        })?;
    let request = SignInRequest { challenge_id: issued.challenge_id, guid, signature };
    api::sign_in(&request).await.map(drop).map_err(|e| e.to_string())
}
