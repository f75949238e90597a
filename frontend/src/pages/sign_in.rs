//! Sign in with the smartcard: the agent, reader and card status in plain English, then the
//! passcode. The passcode goes only to the card (through the agent); the backend sees the card's
//! signature over its challenge.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use protocol::{
    agent::{AgentErrorCode, CardIdentity, PinPurpose, PinState},
    api::SignInRequest,
};

use crate::{
    agent::{use_agent, Agent, SignedInReader},
    api,
    card_status::{CardStatus, CardWatch},
    components::{ErrorSummary, InsetText, WarningCallout},
};

#[component]
pub fn SignIn() -> impl IntoView {
    let agent = use_agent();
    let watch = CardWatch::new(&agent);
    let (reader, identity) = (watch.reader, watch.identity);
    let passcode = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let signed_in_reader = expect_context::<SignedInReader>();
    let navigate = use_navigate();

    let on_submit = {
        let agent = agent.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            let Some(reader) = reader.get_untracked() else {
                error.set(Some("Put your smartcard in the card reader.".into()));
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
                let result = sign_in(&agent, reader.clone(), pin).await;
                busy.set(false);
                passcode.set(String::new());
                match result {
                    Ok(()) => {
                        signed_in_reader.0.set(Some(reader));
                        navigate("/profile", Default::default());
                    }
                    Err(message) => {
                        error.set(Some(message));
                        identity.refetch();
                    }
                }
            });
        }
    };

    view! {
        <h1>"Sign in with your smartcard"</h1>
        <ErrorSummary message=error.into() field="passcode" />
        <CardStatus watch card=card_view />
        <form novalidate on:submit=on_submit>
            <div class="nhsuk-form-group">
                <label class="nhsuk-label" for="passcode">"Smartcard passcode"</label>
                <div class="nhsuk-hint" id="passcode-hint">"6 to 8 digits. It goes only to your card."</div>
                <input class="nhsuk-input nhsuk-input--width-10" id="passcode" name="passcode" type="password"
                    inputmode="numeric" autocomplete="off" aria-describedby="passcode-hint"
                    prop:value=move || passcode.get()
                    on:input=move |ev| passcode.set(event_target_value(&ev)) />
            </div>
            <button class="nhsuk-button" type="submit" data-testid="sign-in" prop:disabled=move || busy.get()>"Sign in"</button>
        </form>
    }
}

fn card_view(card: &CardIdentity) -> AnyView {
    match card.pin {
        PinState::Blocked => view! {
            <WarningCallout title="Your card is locked">
                <p data-testid="card-locked">"Too many wrong passcodes were entered. If you registered for self-service you can "
                    <a href="/unlock">"unlock your card"</a>" yourself; otherwise contact your Registration Authority (RA)."</p>
            </WarningCallout>
        }
        .into_any(),
        PinState::Ready { tries_left: Some(1) } => view! {
            <WarningCallout title="1 try left">
                <p data-testid="last-try">"If the next passcode is wrong your card will lock."</p>
            </WarningCallout>
        }
        .into_any(),
        PinState::Ready { tries_left } => {
            let text = match tries_left {
                Some(n) if n < 3 => format!("Card found. You have {n} tries left."),
                _ => "Card found. Enter its passcode.".to_owned(),
            };
            view! { <InsetText><p data-testid="card-ready">{text}</p></InsetText> }.into_any()
        }
    }
}

async fn sign_in(agent: &Agent, reader: String, pin: String) -> Result<(), String> {
    let card = agent.identity(reader.clone()).await.map_err(|e| e.message)?;
    let issued = api::sign_in_challenge().await.map_err(|e| e.to_string())?;
    let signature = agent.sign_with_pin(reader, pin, issued.challenge, PinPurpose::SignIn).await.map_err(
        |e| match e.code {
            AgentErrorCode::PinBlocked => {
                "Your card is now locked. Unlock it with self-service, or contact your RA.".to_owned()
            }
            _ => e.message,
        },
    )?;
    let request = SignInRequest { challenge_id: issued.challenge_id, guid: card.guid, signature };
    api::sign_in(&request).await.map(drop).map_err(|e| e.to_string())
}
