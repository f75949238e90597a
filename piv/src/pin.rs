//! PIN and PUK reference data: 6–8 ASCII digits (PUK: 8 bytes), padded to 8 bytes with `FF`
//! (SP 800-73-4 Part 2 §2.4.3).

use zeroize::{Zeroize, Zeroizing};

/// Why a PIN or PUK cannot be sent to a card.
/// The PIN and PUK a PIV card leaves its maker with (PIV.md): an issuer replaces both.
pub const FACTORY_PIN: &str = "123456";
pub const FACTORY_PUK: &str = "12345678";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinFormatError {
    #[error("a passcode is 6 to 8 digits")]
    Length,
    #[error("a passcode contains digits only")]
    NotDigits,
}

/// A PIN or PUK as digits, padded to the card's 8-byte format; zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PaddedPin(Zeroizing<[u8; 8]>);

impl std::fmt::Debug for PaddedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaddedPin(***)")
    }
}

impl PaddedPin {
    /// A PIN of 6–8 ASCII digits. (PUKs in practice are 8 digits and use the same rule.)
    pub fn new(digits: &str) -> Result<Self, PinFormatError> {
        if !(6..=8).contains(&digits.len()) {
            return Err(PinFormatError::Length);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinFormatError::NotDigits);
        }
        let mut padded = Zeroizing::new([0xFF; 8]);
        padded[..digits.len()].copy_from_slice(digits.as_bytes());
        Ok(Self(padded))
    }

    /// Accepts the 8-byte card format: 1–8 non-`FF` bytes followed only by `FF`.
    pub fn from_padded(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 8] = bytes.try_into().ok()?;
        let used = bytes.iter().position(|&b| b == 0xFF).unwrap_or(8);
        if used == 0 || bytes[used..].iter().any(|&b| b != 0xFF) {
            return None;
        }
        Some(Self(Zeroizing::new(*bytes)))
    }

    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The significant bytes, without padding.
    pub fn unpadded(&self) -> &[u8] {
        let used = self.0.iter().position(|&b| b == 0xFF).unwrap_or(8);
        &self.0[..used]
    }

    /// Constant-time comparison (the virtual card compares secrets this way too).
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Concatenates two padded secrets (e.g. PUK ‖ new PIN) into a zeroizing buffer.
pub fn concat(first: &PaddedPin, second: &PaddedPin) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(16));
    out.extend_from_slice(first.as_bytes());
    out.extend_from_slice(second.as_bytes());
    out
}

impl Zeroize for PaddedPin {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_padded_with_ff() {
        assert_eq!(PaddedPin::new("123456").unwrap().as_bytes(), b"123456\xFF\xFF");
        assert_eq!(PaddedPin::new("12345678").unwrap().as_bytes(), b"12345678");
        assert_eq!(PaddedPin::new("12345").unwrap_err(), PinFormatError::Length);
        assert_eq!(PaddedPin::new("123456789").unwrap_err(), PinFormatError::Length);
        assert_eq!(PaddedPin::new("12a456").unwrap_err(), PinFormatError::NotDigits);
    }

    #[test]
    fn padded_form_must_be_prefix_then_ff() {
        assert!(PaddedPin::from_padded(b"123456\xFF\xFF").is_some());
        assert!(PaddedPin::from_padded(b"123\xFF56\xFF\xFF").is_none());
        assert!(PaddedPin::from_padded(b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF").is_none());
        assert!(PaddedPin::from_padded(b"1234").is_none());
        assert_eq!(PaddedPin::from_padded(b"123456\xFF\xFF").unwrap().unpadded(), b"123456");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", PaddedPin::new("123456").unwrap()), "PaddedPin(***)");
    }
}
