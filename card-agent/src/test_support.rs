//! Test doubles shared by the agent's unit tests.

use envelope::Purpose;
use piv::host::{PivSession, Transport, TransportError};
use virtual_card::card::Card;

/// The card "pulled out" at the command with `ins`: after the card has processed it
/// (answer lost) or before it sees it.
#[derive(Debug)]
pub struct Unplugged {
    pub card: Card,
    pub ins: u8,
    pub card_saw_it: bool,
    pub gone: bool,
}

impl Transport for Unplugged {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.gone || command.get(1) == Some(&self.ins) {
            if !self.gone && self.card_saw_it {
                self.card.process(command);
            }
            self.gone = true;
            return Err(TransportError::CardRemoved);
        }
        Ok(self.card.process(command))
    }
}

/// [`ops::sign_with_pin`](crate::ops::sign_with_pin) on the card in the reader, chosen as the
/// person would.
pub fn sign_chosen<T: Transport>(
    s: &mut PivSession<T>,
    pin: &str,
    purpose: Purpose,
    challenge: &[u8],
) -> crate::ops::OpResult<Vec<u8>> {
    let guid = crate::ops::card_identity(s)?.guid;
    crate::ops::sign_with_pin(s, &guid, pin, purpose, challenge)
}
