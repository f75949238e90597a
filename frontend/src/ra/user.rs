//! One person: their cards and self-service state, and the RA's actions on them — clear a
//! self-service lockout, withdraw a registration, suspend / reactivate / revoke a card — each
//! with a reason for the audit trail.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use protocol::{agent::PinState, api::SelfService, ra::UserDetail};

use super::{api, ReasonField};
use crate::{
    agent::use_agent,
    card_status::CardWatch,
    components::{ErrorSummary, InsetText, WarningCallout},
    time::date_time,
};

/// One RA action on its way to the API.
type Action = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), crate::api::ApiError>>>>;

#[component]
pub fn User() -> impl IntoView {
    let params = use_params_map();
    let user_id = Memo::new(move |_| params.get().get("user_id").unwrap_or_default());
    let detail = LocalResource::new(move || {
        let user_id = user_id.get();
        async move { api::user(&user_id).await }
    });
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    // Runs an action, then shows its outcome and reloads the person.
    let act = move |action: Action, success: &'static str| {
        leptos::task::spawn_local(async move {
            match action.await {
                Ok(()) => {
                    error.set(None);
                    done.set(Some(success.to_owned()));
                    detail.refetch();
                }
                Err(e) => {
                    done.set(None);
                    error.set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <ErrorSummary message=error.into() field="ra-reason-lockout" />
        {move || done.get().map(|text| view! { <InsetText><p role="status" data-testid="ra-done">{text}</p></InsetText> })}
        {move || match detail.get() {
            None => view! { <p aria-busy="true">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <h1>"Person not found"</h1><p role="alert">{e.to_string()}</p> }.into_any(),
            Some(Ok(person)) => view! { <Person person act /> }.into_any(),
        }}
    }
}

#[component]
fn Person(
    person: UserDetail,
    act: impl Fn(Action, &'static str) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let user_id = person.user_id.clone();
    let issue_href = format!("/ra/users/{}/issue", api::encode(&person.user_id));
    let unlock_href = format!("/ra/users/{}/unlock", api::encode(&person.user_id));
    let has_active = person.cards.iter().any(|card| card.status == "active");
    let audit_href = format!("/ra/audit?user_id={}", api::encode(&person.user_id));
    let self_service = match &person.self_service {
        SelfService::Registered { registered_at, email } => {
            format!("Registered since {} ({email})", date_time(*registered_at))
        }
        SelfService::NotRegistered => "Not registered".to_owned(),
    };
    let lockout = match person.locked_out_at {
        Some(at) => {
            format!("Locked out since {} after {} failed attempts", date_time(at), person.unlock_failures)
        }
        None if person.unlock_failures > 0 => {
            format!("{} failed unlock attempts (locks at 3)", person.unlock_failures)
        }
        None => "No failed unlock attempts".to_owned(),
    };
    let can_clear = person.locked_out_at.is_some() || person.unlock_failures > 0;
    let registered = matches!(person.self_service, SelfService::Registered { .. });

    let lockout_reason = RwSignal::new(String::new());
    let clear = {
        let user_id = user_id.clone();
        move |_| {
            let (user_id, reason) = (user_id.clone(), lockout_reason.get_untracked());
            act(
                Box::pin(async move { api::clear_lockout(&user_id, reason).await }),
                "Self-service lockout cleared.",
            );
        }
    };
    let withdraw_reason = RwSignal::new(String::new());
    let withdraw = {
        let user_id = user_id.clone();
        move |_| {
            let (user_id, reason) = (user_id.clone(), withdraw_reason.get_untracked());
            act(
                Box::pin(async move { api::withdraw_registration(&user_id, reason).await }),
                "Registration withdrawn.",
            );
        }
    };
    // What each of this person's cards says, when it is in a reader at this desk: the record
    // says "active", the card may say "locked".
    let watch = CardWatch::new(&use_agent());
    let cards = person
        .cards
        .into_iter()
        .enumerate()
        .map(|(i, card)| {
            let in_reader = {
                let guid = card.guid.clone();
                move || {
                    let cards = watch.cards.get()?;
                    let inserted = cards.into_iter().find(|c| c.guid().as_ref() == Some(&guid))?;
                    let pin = inserted.identity.ok()?.pin;
                    let state = match pin {
                        PinState::Blocked => "locked: too many wrong passcodes".to_owned(),
                        PinState::Ready { tries_left: Some(1) } => "1 passcode try left".to_owned(),
                        PinState::Ready { tries_left: Some(n) } => format!("{n} passcode tries left"),
                        PinState::Ready { tries_left: None } => "not locked".to_owned(),
                    };
                    Some(view! { <p data-testid="ra-card-in-reader"><strong>{format!("In the reader “{}” now: {state}.", inserted.reader)}</strong></p> })
                }
            };
            let reason = RwSignal::new(String::new());
            let revoking = RwSignal::new(false);
            let field: &'static str = ["ra-reason-card-1", "ra-reason-card-2", "ra-reason-card-3", "ra-reason-card-4"][i.min(3)];
            let button = move |status: &'static str, label: &'static str, guid: protocol::card_guid::CardGuid| {
                view! {
                    <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid=format!("ra-card-{status}")
                        on:click=move |_| {
                            let (guid, reason) = (guid.clone(), reason.get_untracked());
                            act(Box::pin(async move { api::card_status(&guid, status, reason).await }), "Card status changed.");
                        }>{label}</button>
                }
            };
            // Revoking is final: it asks first, and says so.
            let revoke = {
                let guid = card.guid.clone();
                move || {
                    if revoking.get() {
                        view! {
                            <WarningCallout title="Revoking is final">
                                <p data-testid="ra-revoke-warning">"A revoked card can never be used again, not even by an RA: the person will need a new card. To stop it being used for now, suspend it instead."</p>
                            </WarningCallout>
                            {button("revoked", "Yes, revoke this card", guid.clone())}
                            <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid="ra-card-keep" on:click=move |_| revoking.set(false)>"Do not revoke"</button>
                        }.into_any()
                    } else {
                        view! {
                            <button class="nhsuk-button nhsuk-button--warning" type="button" data-testid="ra-card-revoke"
                                on:click=move |_| revoking.set(true)>"Revoke…"</button>
                        }.into_any()
                    }
                }
            };
            let actions = match card.status.as_str() {
                "active" => view! { {button("suspended", "Suspend", card.guid.clone())} {revoke} }.into_any(),
                "suspended" => view! { {button("active", "Reactivate", card.guid.clone())} {revoke} }.into_any(),
                _ => view! { <p>"Revoked cards stay revoked."</p> }.into_any(),
            };
            view! {
                <div class="nhsuk-form-group ra-card" data-testid="ra-card">
                    <h3>{format!("Card {}", card.guid)}</h3>
                    <p data-testid="ra-card-status">{format!("Status: {} — issued {}", card.status, date_time(card.issued_at))}</p>
                    {in_reader}
                    <ReasonField id=field reason />
                    {actions}
                </div>
            }
        })
        .collect_view();
    view! {
        <h1 data-testid="ra-person-name">{person.name.clone()}</h1>
        <dl class="nhsuk-summary-list">
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"User id"</dt><dd class="nhsuk-summary-list__value">{person.user_id.clone()}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Contact email"</dt><dd class="nhsuk-summary-list__value">{person.contact_email.clone().unwrap_or_default()}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Roles"</dt><dd class="nhsuk-summary-list__value">{if person.roles.is_empty() { "None".to_owned() } else { person.roles.join(", ") }}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Self-service"</dt><dd class="nhsuk-summary-list__value" data-testid="ra-self-service">{self_service}</dd></div>
            <div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">"Unlock attempts"</dt><dd class="nhsuk-summary-list__value" data-testid="ra-lockout">{lockout}</dd></div>
        </dl>
        <p><a href=audit_href data-testid="ra-person-audit">"This person's audit trail"</a></p>
        {can_clear.then(|| view! {
            <h2>"Clear the self-service lockout"</h2>
            <p>"Only after you have confirmed who they are."</p>
            <ReasonField id="ra-reason-lockout" reason=lockout_reason />
            <button class="nhsuk-button" type="button" data-testid="ra-clear-lockout" on:click=clear>"Clear lockout"</button>
        })}
        {registered.then(|| view! {
            <h2>"Withdraw the registration"</h2>
            <ReasonField id="ra-reason-withdraw" reason=withdraw_reason />
            <button class="nhsuk-button nhsuk-button--secondary" type="button" data-testid="ra-withdraw" on:click=withdraw>"Withdraw registration"</button>
        })}
        <h2>"Cards"</h2>
        {has_active.then(|| view! {
            <p>"If their card is locked or they have forgotten its passcode, and they are here with photo ID, you can unlock it at this desk. This also clears any self-service lockout."</p>
            <a class="nhsuk-button" href=unlock_href data-testid="ra-desk-unlock-start">"Unlock their card"</a>
        })}
        {cards}
        <a class="nhsuk-button" href=issue_href data-testid="ra-issue-card">"Issue a card"</a>
    }
}
