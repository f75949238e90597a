//! Desktop mode: the tray icon (StatusNotifierItem over D-Bus, drawn by the desktop's panel) and
//! the locked-card notification, both driven by the PC/SC events. What they show comes from
//! [`crate::tray_model`]; this module only keeps it current and carries out the menu's actions.

use std::collections::BTreeMap;

use ksni::TrayMethods;
use protocol::agent::{Event, Outcome, PinState, Reply};

use crate::{
    config::AgentConfig,
    locked_card::{offer_unlock, LockedCardTrigger},
    ops,
    pcsc_worker::{Pcsc, Work},
    tray_model::{indicator, menu, page_for, MenuAction, TrayState},
};

/// The tray as the panel sees it.
#[derive(Debug)]
struct AgentTray {
    state: TrayState,
    /// The agent's own PC/SC threads (diagnostics read through them, not a second set).
    pcsc: Pcsc,
    self_service_url: Option<String>,
    config: AgentConfig,
}

impl ksni::Tray for AgentTray {
    const MENU_ON_ACTIVATE: bool = true;

    fn id(&self) -> String {
        "smartcard-selfservice-agent".into()
    }

    fn title(&self) -> String {
        "Smartcard self-service".into()
    }

    fn icon_name(&self) -> String {
        indicator(&self.state).icon.into()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: "Smartcard self-service".into(),
            description: indicator(&self.state).tooltip,
            ..Default::default()
        }
    }

    fn status(&self) -> ksni::Status {
        if self.state == TrayState::CardLocked {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn watcher_online(&self) {
        tracing::info!("tray icon shown (a StatusNotifierWatcher is online)");
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!(?reason, "no panel shows the tray icon now; waiting for one");
        true
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        menu(&self.state)
            .into_iter()
            .map(|item| {
                let action = item.action;
                let enabled = match action {
                    MenuAction::OpenSelfService | MenuAction::UnlockMyCard => self.self_service_url.is_some(),
                    MenuAction::Diagnostics | MenuAction::Quit => true,
                };
                ksni::menu::StandardItem {
                    label: item.label.into(),
                    enabled,
                    activate: Box::new(move |tray: &mut Self| tray.carry_out(action)),
                    ..Default::default()
                }
                .into()
            })
            .collect()
    }
}

impl AgentTray {
    fn carry_out(&self, action: MenuAction) {
        match action {
            MenuAction::OpenSelfService | MenuAction::UnlockMyCard => {
                if let Some(url) = self.self_service_url.as_deref().and_then(|base| page_for(action, base)) {
                    open(url);
                }
            }
            MenuAction::Diagnostics => {
                let (pcsc, config) = (self.pcsc.clone(), self.config.clone());
                tokio::spawn(async move {
                    let findings = crate::diagnostics::gather(&pcsc, config, None).await;
                    let report = crate::diagnostics::report(&findings);
                    let shown = tokio::process::Command::new("notify-send")
                        .args(["--app-name=Smartcard self-service", "Card agent diagnostics", &report])
                        .status()
                        .await;
                    if let Err(e) = shown {
                        tracing::warn!(error = %e, "could not show the diagnostics");
                    }
                });
            }
            MenuAction::Quit => std::process::exit(0),
        }
    }
}

fn open(url: String) {
    std::thread::spawn(move || {
        if let Err(e) = std::process::Command::new("xdg-open").arg(&url).status() {
            tracing::warn!(error = %e, %url, "could not open the page");
        }
    });
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
    let tray = AgentTray {
        state: TrayState::NoReader,
        pcsc: pcsc.clone(),
        self_service_url: self_service_url.clone(),
        config,
    };
    // At login the agent may start before the panel: the icon appears when the panel's
    // StatusNotifierWatcher comes online, and again if the panel restarts.
    let handle = match tray.assume_sni_available(true).spawn().await {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "no system tray on this desktop; notifications only");
            None
        }
    };
    let mut events = pcsc.subscribe();
    let mut trigger = LockedCardTrigger::default();
    let mut pins: BTreeMap<String, Option<PinState>> = BTreeMap::new();
    let mut service_up = true;
    // Cards already in a reader when the agent starts count as just inserted.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut pending: Vec<Event> = pcsc
        .readers()
        .into_iter()
        .filter(|r| r.card_present)
        .map(|r| Event::CardInserted { reader: r.name })
        .collect();
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
                        offer_unlock(
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
        let readers: Vec<(String, bool)> =
            pcsc.readers().into_iter().map(|r| (r.name, r.card_present)).collect();
        let pin = readers
            .iter()
            .find(|(_, present)| *present)
            .and_then(|(name, _)| pins.get(name).cloned().flatten());
        let state = TrayState::from_parts(service_up, &readers, pin.as_ref());
        tracing::info!(?state, "tray state");
        if let Some(handle) = &handle {
            handle.update(|tray| tray.state = state).await;
        }
    }
}
