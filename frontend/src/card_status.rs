//! "Where is the card?" in plain English — agent not running, no reader, no card, reading, or
//! what the card says — shared by the pages that start from the card. With more than one card in
//! the readers (an RA's desk) the person chooses theirs, and a passcode only ever goes to the
//! card they chose: the agent refuses any other (`SignWithPin` carries the chosen GUID).

use leptos::prelude::*;
use protocol::{
    agent::{AgentError, AgentErrorCode, CardIdentity, PinState},
    card_guid::CardGuid,
};

use crate::{
    agent::{Agent, AgentStatus},
    components::{InsetText, WarningCallout},
};

/// A card in a reader and what it says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    pub reader: String,
    pub identity: Result<CardIdentity, AgentError>,
}

impl Inserted {
    /// `None` for a card without an identity (a blank card, or one that cannot be read).
    pub fn guid(&self) -> Option<CardGuid> {
        self.identity.as_ref().ok().map(|card| card.guid.clone())
    }

    fn blank(&self) -> bool {
        matches!(&self.identity, Err(e) if e.code == AgentErrorCode::NotPersonalised)
    }
}

/// The card the person chose while more than one was in: its reader and GUID (`None`: a blank
/// card). Kept for the visit, so sign-in, unlock and registration mean the same card; a different
/// card put in that reader is not it.
#[derive(Debug, Clone, Copy)]
pub struct ChosenCard(pub RwSignal<Option<(String, Option<CardGuid>)>>);

/// Every card in the readers, and the one this page works with.
#[derive(Clone, Copy)]
pub struct CardWatch {
    /// Read again whenever a reader or card comes or goes.
    pub cards: LocalResource<Vec<Inserted>>,
    /// The only card in, or the one the person chose; `None` while they have not chosen.
    pub card: Memo<Option<Inserted>>,
}

impl CardWatch {
    pub fn new(agent: &Agent) -> Self {
        let (readers, last_event) = (agent.readers(), agent.last_event());
        let chosen = expect_context::<ChosenCard>().0;
        let agent = agent.clone();
        let cards = LocalResource::new(move || {
            // Any card event: a card swapped in the same reader must be read again.
            last_event.track();
            let present: Vec<String> =
                readers.get().into_iter().filter(|r| r.card_present).map(|r| r.name).collect();
            let agent = agent.clone();
            async move {
                let mut cards = Vec::with_capacity(present.len());
                for reader in present {
                    let identity = agent.identity(reader.clone()).await;
                    cards.push(Inserted { reader, identity });
                }
                cards
            }
        });
        let card = Memo::new(move |_| {
            let cards = cards.get()?;
            if let [only] = cards.as_slice() {
                return Some(only.clone());
            }
            let (reader, guid) = chosen.get()?;
            cards.into_iter().find(|card| card.reader == reader && card.guid() == guid)
        });
        Self { cards, card }
    }

    /// The chosen card's reader and GUID, when it has an identity.
    pub fn identified(&self) -> Option<(String, CardIdentity)> {
        let card = self.card.get_untracked()?;
        Some((card.reader, card.identity.ok()?))
    }
}

/// The status line; `card` says what a readable card means on this page. With several cards in,
/// the choice comes first; `blank_ok` lets a blank card be chosen (issuance); `for_holder` words
/// the choice for an RA choosing a holder's card.
#[component]
pub fn CardStatus(
    watch: CardWatch,
    card: fn(&CardIdentity) -> AnyView,
    #[prop(optional)] blank_ok: bool,
    #[prop(optional)] for_holder: bool,
) -> impl IntoView {
    let agent = crate::agent::use_agent();
    let (status, readers) = (agent.status(), agent.readers());
    move || -> AnyView {
        match status.get() {
            AgentStatus::Connecting => view! { <p aria-busy="true">"Looking for the card agent on this computer…"</p> }.into_any(),
            AgentStatus::NotRunning => view! {
                <WarningCallout title="The card agent is not running">
                    <p data-testid="agent-missing">"This service reaches your smartcard through the card agent. Start the card agent on this computer (or ask IT support to install it). This page will notice when it is running."</p>
                </WarningCallout>
            }.into_any(),
            AgentStatus::Incompatible { version } => view! {
                <WarningCallout title="The card agent needs updating">
                    <p data-testid="agent-incompatible">{format!("The card agent on this computer (version {version}) does not work with this version of the service. Install the current card agent, or ask IT support.")}</p>
                </WarningCallout>
            }.into_any(),
            AgentStatus::Connected { .. } if readers.get().is_empty() => view! {
                <InsetText><p data-testid="no-reader">"No card reader was found. Plug in your card reader."</p></InsetText>
            }.into_any(),
            AgentStatus::Connected { .. } if !readers.get().iter().any(|r| r.card_present) => view! {
                <InsetText><p data-testid="no-card">"Put your smartcard in the card reader."</p></InsetText>
            }.into_any(),
            AgentStatus::Connected { .. } => {
                let Some(cards) = watch.cards.get() else {
                    return view! { <p aria-busy="true">"Reading your card…"</p> }.into_any();
                };
                let chosen = match watch.card.get() {
                    None => None,
                    Some(Inserted { identity: Err(e), .. }) if !(blank_ok && e.code == AgentErrorCode::NotPersonalised) => {
                        Some(view! { <InsetText><p data-testid="card-problem">{e.message}</p></InsetText> }.into_any())
                    }
                    Some(Inserted { identity: Err(_), .. }) => Some(view! {
                        <InsetText><p data-testid="card-blank">"A blank card is ready to be issued."</p></InsetText>
                    }.into_any()),
                    Some(Inserted { identity: Ok(identity), .. }) => Some(card(&identity)),
                };
                view! {
                    {(cards.len() > 1).then(|| view! { <CardChoice cards blank_ok for_holder /> })}
                    {chosen}
                }
                .into_any()
            }
        }
    }
}

/// One radio per card: the holder's name, the reader, and whether it is locked.
#[component]
fn CardChoice(cards: Vec<Inserted>, blank_ok: bool, for_holder: bool) -> impl IntoView {
    let chosen = expect_context::<ChosenCard>().0;
    let count = cards.len();
    let items = cards
        .into_iter()
        .enumerate()
        .map(|(i, card)| {
            let id = format!("card-{}", i + 1);
            let (name, state) = describe(&card);
            let selectable = card.identity.is_ok() || (blank_ok && card.blank());
            let key = (card.reader.clone(), card.guid());
            let checked = {
                let key = key.clone();
                move || chosen.get().as_ref() == Some(&key)
            };
            let hint_id = format!("{id}-hint");
            view! {
                <div class="nhsuk-radios__item" data-testid="card-choice">
                    <input class="nhsuk-radios__input" id=id.clone() name="card" type="radio" aria-describedby=hint_id.clone()
                        prop:checked=checked prop:disabled=!selectable
                        on:change=move |_| chosen.set(Some(key.clone())) />
                    <label class="nhsuk-label nhsuk-radios__label" for=id>{name}</label>
                    <div class="nhsuk-hint nhsuk-radios__hint" id=hint_id>{format!("In the reader “{}”. {state}", card.reader)}</div>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="nhsuk-form-group">
            <fieldset class="nhsuk-fieldset" data-testid="card-picker">
                <legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s">{format!(
                    "There are {count} cards in the card readers. Which one is {}?",
                    if for_holder { "theirs" } else { "yours" }
                )}</legend>
                <div class="nhsuk-hint">{if for_holder { "Only the card you choose is used." } else { "Your passcode goes only to the card you choose." }}</div>
                <div class="nhsuk-radios">{items}</div>
            </fieldset>
        </div>
    }
}

/// The card's name for a person, and what state it is in.
fn describe(card: &Inserted) -> (String, String) {
    match &card.identity {
        Ok(identity) => {
            let name = identity
                .holder
                .clone()
                .map_or_else(|| "A card without a name".to_owned(), |n| format!("{n}’s card"));
            let state = match identity.pin {
                PinState::Blocked => "Locked: too many wrong passcodes.".to_owned(),
                PinState::Ready { tries_left: Some(1) } => "1 passcode try left.".to_owned(),
                PinState::Ready { tries_left: Some(n) } => format!("{n} passcode tries left."),
                PinState::Ready { tries_left: None } => "Not locked.".to_owned(),
            };
            (name, state)
        }
        Err(_) if card.blank() => ("A blank card".to_owned(), "Not issued yet.".to_owned()),
        Err(e) => ("A card this service cannot use".to_owned(), e.message.clone()),
    }
}
