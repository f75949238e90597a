//! What the virtual card's test files share: raw APDUs in, data and status word out.

use piv::pin::PaddedPin;
use virtual_card::card::Card;

/// Sends raw command bytes; the response's data and its status word.
pub fn raw(card: &mut Card, bytes: &[u8]) -> (Vec<u8>, u16) {
    let response = card.process(bytes);
    let (data, sw) = response.split_at(response.len() - 2);
    (data.to_vec(), u16::from_be_bytes([sw[0], sw[1]]))
}

pub fn pin(digits: &str) -> PaddedPin {
    PaddedPin::new(digits).unwrap()
}
