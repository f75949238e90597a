//! "Your smartcard is locked — unlock it now?": the moment a card whose passcode is blocked goes
//! into a reader, the person is offered the unlock page (a desktop notification with an action).
//! The trigger is pure and tested; showing it uses the desktop's notification service through
//! `notify-send` (libnotify), and opening the page `xdg-open`.

use std::collections::BTreeSet;

use protocol::agent::PinState;

/// Decides when to notify: once per insertion of a locked card, per reader.
#[derive(Debug, Default)]
pub struct LockedCardTrigger {
    notified: BTreeSet<String>,
}

impl LockedCardTrigger {
    /// A card in `reader` was read; returns whether to offer the unlock page now.
    pub fn card_read(&mut self, reader: &str, pin: &PinState) -> bool {
        match pin {
            PinState::Blocked => self.notified.insert(reader.to_owned()),
            // Unlocked meanwhile (or never locked): a later lock deserves a new notice.
            PinState::Ready { .. } => {
                self.notified.remove(reader);
                false
            }
        }
    }

    /// The card left `reader`: the next locked card there is news again.
    pub fn card_removed(&mut self, reader: &str) {
        self.notified.remove(reader);
    }
}

/// Shows the notification and, if the person chooses "Unlock my card", opens `unlock_url`.
/// Returns at once; a desktop without a notification service is logged, not fatal.
pub fn offer_unlock(unlock_url: String) {
    std::thread::spawn(move || {
        let chosen = std::process::Command::new("notify-send")
            .args([
                "--app-name=Smartcard self-service",
                "--icon=dialog-warning",
                "--urgency=critical",
                "--action=unlock=Unlock my card",
                "--wait",
                "Your smartcard is locked",
                "Too many wrong passcodes were entered. You can unlock it yourself in a few minutes.",
            ])
            .output();
        match chosen {
            Ok(output) if String::from_utf8_lossy(&output.stdout).trim() == "unlock" => {
                if let Err(e) = std::process::Command::new("xdg-open").arg(&unlock_url).status() {
                    tracing::warn!(error = %e, "could not open the unlock page");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "no desktop notifications (is libnotify-bin installed?)"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_card_is_offered_once_per_insertion() {
        let mut trigger = LockedCardTrigger::default();
        assert!(trigger.card_read("R0", &PinState::Blocked), "first sight of a locked card");
        assert!(!trigger.card_read("R0", &PinState::Blocked), "not again while it stays in");
        assert!(trigger.card_read("R1", &PinState::Blocked), "another reader is another card");
        trigger.card_removed("R0");
        assert!(trigger.card_read("R0", &PinState::Blocked), "put back in: offered again");
    }

    #[test]
    fn a_card_that_works_is_never_offered_and_resets_the_reader() {
        let mut trigger = LockedCardTrigger::default();
        assert!(!trigger.card_read("R0", &PinState::Ready { tries_left: Some(3) }));
        assert!(trigger.card_read("R0", &PinState::Blocked));
        assert!(!trigger.card_read("R0", &PinState::Ready { tries_left: Some(3) }), "unlocked in place");
        assert!(trigger.card_read("R0", &PinState::Blocked), "locked again later: a new notice");
    }
}
