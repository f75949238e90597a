//! "Where is the card?" in plain English — agent not running, no reader, no card, reading, or
//! what the card says — shared by the pages that start from the card (sign in, unlock).

use leptos::prelude::*;
use protocol::agent::{AgentError, CardIdentity};

use crate::{
    agent::{reader_with_card, Agent, AgentStatus},
    components::{InsetText, WarningCallout},
};

/// The reader holding a card, and that card's identity (read again whenever the card changes).
#[derive(Clone, Copy)]
pub struct CardWatch {
    pub reader: Memo<Option<String>>,
    pub identity: LocalResource<Option<Result<CardIdentity, AgentError>>>,
}

impl CardWatch {
    pub fn new(agent: &Agent) -> Self {
        let readers = agent.readers();
        let reader = Memo::new(move |_| reader_with_card(&readers.get()));
        let agent = agent.clone();
        let identity = LocalResource::new(move || {
            let agent = agent.clone();
            let reader = reader.get();
            async move {
                match reader {
                    Some(reader) => Some(agent.identity(reader).await),
                    None => None,
                }
            }
        });
        Self { reader, identity }
    }
}

/// The status line; `card` says what a readable card means on this page.
#[component]
pub fn CardStatus(watch: CardWatch, card: fn(&CardIdentity) -> AnyView) -> impl IntoView {
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
            AgentStatus::Connected { .. } if watch.reader.get().is_none() => view! {
                <InsetText><p data-testid="no-card">"Put your smartcard in the card reader."</p></InsetText>
            }.into_any(),
            AgentStatus::Connected { .. } => match watch.identity.get().flatten() {
                None => view! { <p aria-busy="true">"Reading your card…"</p> }.into_any(),
                Some(Err(e)) => view! { <InsetText><p data-testid="card-problem">{e.message}</p></InsetText> }.into_any(),
                Some(Ok(identity)) => card(&identity),
            },
        }
    }
}
