//! A software PIV card with persistent state, plugged into pcscd through vsmartcard's vpcd.
//!
//! - [`card`]: the APDU processor (what a real card's PIV applet does).
//! - [`state`]: the card's persistent memory, saved atomically.
//! - [`vpcd`]: the TCP client that makes the card appear in pcscd's "Virtual PCD" reader.
//! - [`quirks`]: the ways real makers' cards differ, to make the card like any of them.
//! - [`personalise`]: readies a blank card through its own commands, with a demo CA.

pub mod card;
pub mod ec;
pub mod personalise;
pub mod quirks;
pub mod state;
pub mod vpcd;

impl piv::host::Transport for card::Card {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, piv::host::TransportError> {
        Ok(self.process(command))
    }
}
