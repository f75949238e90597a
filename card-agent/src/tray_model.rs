//! What the tray shows and offers, worked out from what the agent knows (readers, the card's PIN
//! state, whether pcscd answers). No GUI here: the tray draws it, the headless service logs it,
//! and the tests pin it down.

use protocol::agent::PinState;

use crate::platform::SMART_CARD_SERVICE;

/// The one thing the tray icon says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayState {
    /// pcscd is not running or not installed: nothing can reach a card.
    ServiceMissing,
    NoReader,
    NoCard,
    CardReady {
        tries_left: Option<u8>,
    },
    CardLocked,
    /// A card the agent cannot use (not a PIV card, or never personalised).
    CardUnusable,
}

impl TrayState {
    /// From the readers (name, card present), the PIN state of the card read (if one was), and
    /// whether pcscd answers.
    pub fn from_parts(service_up: bool, readers: &[(String, bool)], pin: Option<&PinState>) -> Self {
        if !service_up {
            return TrayState::ServiceMissing;
        }
        if readers.is_empty() {
            return TrayState::NoReader;
        }
        if !readers.iter().any(|(_, present)| *present) {
            return TrayState::NoCard;
        }
        match pin {
            Some(PinState::Blocked) => TrayState::CardLocked,
            Some(PinState::Ready { tries_left }) => TrayState::CardReady { tries_left: *tries_left },
            None => TrayState::CardUnusable,
        }
    }
}

/// The icon (a freedesktop icon-theme name) and its tooltip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub icon: &'static str,
    pub tooltip: String,
}

pub fn indicator(state: &TrayState) -> Indicator {
    let (icon, tooltip) = match state {
        TrayState::ServiceMissing => (
            "dialog-error",
            format!("The smart card service ({SMART_CARD_SERVICE}) is not running. Ask IT support."),
        ),
        TrayState::NoReader => ("media-removable", "No card reader. Plug in your card reader.".to_owned()),
        TrayState::NoCard => ("media-removable", "No smartcard in the reader.".to_owned()),
        TrayState::CardReady { tries_left: Some(n) } if *n < 3 => (
            "dialog-warning",
            format!("Smartcard ready: {n} passcode {} left.", if *n == 1 { "try" } else { "tries" }),
        ),
        TrayState::CardReady { .. } => ("security-high", "Smartcard ready.".to_owned()),
        TrayState::CardLocked => {
            ("dialog-warning", "Your smartcard is locked. Unlock it with self-service.".to_owned())
        }
        TrayState::CardUnusable => {
            ("dialog-question", "This card cannot be used with this service.".to_owned())
        }
    };
    Indicator { icon, tooltip }
}

/// The locked-card notification, as every platform shows it.
pub const LOCKED_TITLE: &str = "Your smartcard is locked";
pub const LOCKED_TEXT: &str =
    "Too many wrong passcodes were entered. You can unlock it yourself in a few minutes.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    OpenSelfService,
    UnlockMyCard,
    Diagnostics,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub label: &'static str,
    pub action: MenuAction,
}

/// The menu, the most useful entry first: a locked card puts "Unlock my card" on top.
pub fn menu(state: &TrayState) -> Vec<MenuItem> {
    let open = MenuItem { label: "Open self-service", action: MenuAction::OpenSelfService };
    let unlock = MenuItem { label: "Unlock my card", action: MenuAction::UnlockMyCard };
    let mut items = if *state == TrayState::CardLocked { vec![unlock, open] } else { vec![open, unlock] };
    items.push(MenuItem { label: "Diagnostics", action: MenuAction::Diagnostics });
    items.push(MenuItem { label: "Quit", action: MenuAction::Quit });
    items
}

/// The page an action opens on the self-service site (`base` without a trailing slash).
pub fn page_for(action: MenuAction, base: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    match action {
        MenuAction::OpenSelfService => Some(base.to_owned()),
        MenuAction::UnlockMyCard => Some(format!("{base}/unlock")),
        MenuAction::Diagnostics | MenuAction::Quit => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(present: bool) -> Vec<(String, bool)> {
        vec![("Reader 0".to_owned(), present)]
    }

    #[test]
    fn the_state_follows_service_reader_card_and_pin() {
        let ready = PinState::Ready { tries_left: Some(3) };
        assert_eq!(TrayState::from_parts(false, &readers(true), Some(&ready)), TrayState::ServiceMissing);
        assert_eq!(TrayState::from_parts(true, &[], None), TrayState::NoReader);
        assert_eq!(TrayState::from_parts(true, &readers(false), None), TrayState::NoCard);
        assert_eq!(
            TrayState::from_parts(true, &readers(true), Some(&ready)),
            TrayState::CardReady { tries_left: Some(3) }
        );
        assert_eq!(
            TrayState::from_parts(true, &readers(true), Some(&PinState::Blocked)),
            TrayState::CardLocked
        );
        assert_eq!(TrayState::from_parts(true, &readers(true), None), TrayState::CardUnusable);
    }

    #[test]
    fn each_state_has_its_own_icon_and_words() {
        assert_eq!(indicator(&TrayState::CardLocked).icon, "dialog-warning");
        assert!(indicator(&TrayState::CardLocked).tooltip.contains("locked"));
        assert_eq!(indicator(&TrayState::CardReady { tries_left: Some(3) }).icon, "security-high");
        assert!(indicator(&TrayState::CardReady { tries_left: Some(1) })
            .tooltip
            .contains("1 passcode try left"));
        assert!(indicator(&TrayState::ServiceMissing).tooltip.contains(SMART_CARD_SERVICE));
        assert!(indicator(&TrayState::NoReader).tooltip.contains("reader"));
    }

    #[test]
    fn a_locked_card_puts_unlock_first_and_every_menu_can_quit() {
        let locked = menu(&TrayState::CardLocked);
        assert_eq!(locked[0].action, MenuAction::UnlockMyCard);
        let ready = menu(&TrayState::CardReady { tries_left: None });
        assert_eq!(
            ready.iter().map(|i| i.label).collect::<Vec<_>>(),
            ["Open self-service", "Unlock my card", "Diagnostics", "Quit"]
        );
        for state in [TrayState::ServiceMissing, TrayState::NoReader, TrayState::NoCard] {
            assert_eq!(menu(&state).last().map(|i| i.action), Some(MenuAction::Quit));
        }
        assert_eq!(
            page_for(MenuAction::UnlockMyCard, "https://ss.example.nhs.uk/").as_deref(),
            Some("https://ss.example.nhs.uk/unlock")
        );
        assert_eq!(page_for(MenuAction::Quit, "https://x"), None);
    }
}
