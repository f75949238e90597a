//! "Your smartcard is locked — unlock it now?": the moment a card whose passcode is blocked goes
//! into a reader, the person is offered the unlock page (a desktop notification with an action).
//! The trigger is pure and tested; showing it is the platform's (`platform::offer_unlock`).

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
