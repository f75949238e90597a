//! Desktop mode: the tray icon and the locked-card notification, both driven by the PC/SC
//! events. What they show comes from [`crate::tray_model`], how they are shown from
//! [`crate::platform`]; this module keeps them current and carries out the menu's actions.

use std::{collections::BTreeMap, sync::Arc};

use protocol::agent::{Event, Outcome, PinState, Reply};

use crate::{
    config::AgentConfig,
    locked_card::LockedCardTrigger,
    ops,
    pcsc_worker::{Pcsc, Work},
    platform,
    tray_model::{page_for, MenuAction, TrayState},
};

/// Carries out what the person chose in the tray's menu.
fn carry_out(action: MenuAction, pcsc: &Pcsc, config: &AgentConfig) {
    match action {
        MenuAction::OpenSelfService | MenuAction::UnlockMyCard => {
            if let Some(url) = config.self_service_url.as_deref().and_then(|base| page_for(action, base)) {
                platform::open_page(url);
            }
        }
        MenuAction::Diagnostics => {
            let (pcsc, config) = (pcsc.clone(), config.clone());
            tokio::spawn(async move {
                let findings = crate::diagnostics::gather(&pcsc, config, None).await;
                platform::show_report("Card agent diagnostics", &crate::diagnostics::report(&findings)).await;
            });
        }
        MenuAction::Quit => std::process::exit(0),
    }
}

/// Reads a card's PIN state (no try spent); `None` for a card the agent cannot use.
async fn pin_of(pcsc: &Pcsc, reader: &str) -> Option<PinState> {
    let identity: Work = Box::new(|s| match ops::card_identity(s) {
        Ok(card) => Outcome::Ok(Reply::Identity(card)),
        Err(e) => Outcome::Error(e),
    });
    match pcsc.run(reader.to_owned(), identity).await {
        Outcome::Ok(Reply::Identity(card)) => Some(card.pin),
        _ => None,
    }
}

/// Runs the tray and the notification for as long as the agent runs. Without a panel to show
/// the tray (no StatusNotifierWatcher), the notification still works.
pub async fn run(pcsc: Pcsc, config: AgentConfig) {
    let self_service_url = config.self_service_url.clone();
    let on_action: platform::OnAction = {
        let (pcsc, config) = (pcsc.clone(), config.clone());
        Arc::new(move |action| carry_out(action, &pcsc, &config))
    };
    let tray = platform::Tray::show(self_service_url.is_some(), on_action).await;
    let mut events = pcsc.subscribe();
    let mut trigger = LockedCardTrigger::default();
    let mut pins: BTreeMap<String, Option<PinState>> = BTreeMap::new();
    // Cards already in a reader when the agent starts count as just inserted, and a service
    // found missing before this listened is missing still.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut service_up = pcsc.service_available();
    let mut pending: Vec<Event> = pcsc
        .readers()
        .into_iter()
        .filter(|r| r.card_present)
        .map(|r| Event::CardInserted { reader: r.name })
        .collect();
    if pending.is_empty() {
        show_state(tray.as_ref(), &pcsc, service_up, &pins).await;
    }
    loop {
        let event = match pending.pop() {
            Some(event) => event,
            None => match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        match &event {
            Event::CardInserted { reader } => {
                let pin = pin_of(&pcsc, reader).await;
                if let (Some(pin), Some(base)) = (&pin, &self_service_url) {
                    if trigger.card_read(reader, pin) {
                        tracing::info!(%reader, "locked card inserted: offering the unlock page");
                        platform::offer_unlock(
                            page_for(MenuAction::UnlockMyCard, base).unwrap_or_else(|| base.clone()),
                        );
                    }
                }
                pins.insert(reader.clone(), pin);
                service_up = true;
            }
            Event::CardRemoved { reader } => {
                trigger.card_removed(reader);
                pins.remove(reader);
            }
            Event::ServiceUnavailable => {
                service_up = false;
                pins.clear();
            }
            _ => service_up = true,
        }
        show_state(tray.as_ref(), &pcsc, service_up, &pins).await;
    }
}

/// Puts what is known now on the tray (and in the log).
async fn show_state(
    tray: Option<&platform::Tray>,
    pcsc: &Pcsc,
    service_up: bool,
    pins: &BTreeMap<String, Option<PinState>>,
) {
    let readers: Vec<(String, bool)> = pcsc.readers().into_iter().map(|r| (r.name, r.card_present)).collect();
    let pin =
        readers.iter().find(|(_, present)| *present).and_then(|(name, _)| pins.get(name).cloned().flatten());
    let state = TrayState::from_parts(service_up, &readers, pin.as_ref());
    tracing::info!(?state, "tray state");
    if let Some(tray) = tray {
        tray.show_state(state).await;
    }
}
