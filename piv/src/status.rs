//! Status words (ISO 7816-4 §5.1.3, SP 800-73-4 Part 2 Table 6).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    /// `9000`.
    Success,
    /// `61xx`: more data; fetch with GET RESPONSE (`xx` = 0 means 256 or unknown).
    MoreData(u8),
    /// `63Cx` (x tries left) or bare `6300` (count unknown): wrong PIN/PUK/key.
    WrongSecret { tries_left: Option<u8> },
    /// `6700`.
    WrongLength,
    /// `6982`: security status not satisfied (PIN or management key needed).
    SecurityNotSatisfied,
    /// `6983`: authentication method blocked.
    Blocked,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6A80`: incorrect data in the command.
    IncorrectData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    NotFound,
    /// `6A84`: not enough memory.
    NotEnoughMemory,
    /// `6A86`: incorrect P1/P2.
    IncorrectP1P2,
    /// `6A88`: referenced data not found.
    ReferenceNotFound,
    /// `6D00`: instruction not supported.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// Anything else, kept verbatim.
    Other(u16),
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        match sw {
            0x9000 => StatusWord::Success,
            0x6100..=0x61FF => StatusWord::MoreData((sw & 0xFF) as u8),
            0x6300 => StatusWord::WrongSecret { tries_left: None },
            0x63C0..=0x63CF => StatusWord::WrongSecret { tries_left: Some((sw & 0x0F) as u8) },
            0x6700 => StatusWord::WrongLength,
            0x6982 => StatusWord::SecurityNotSatisfied,
            0x6983 => StatusWord::Blocked,
            0x6985 => StatusWord::ConditionsNotSatisfied,
            0x6A80 => StatusWord::IncorrectData,
            0x6A81 => StatusWord::FunctionNotSupported,
            0x6A82 => StatusWord::NotFound,
            0x6A84 => StatusWord::NotEnoughMemory,
            0x6A86 => StatusWord::IncorrectP1P2,
            0x6A88 => StatusWord::ReferenceNotFound,
            0x6D00 => StatusWord::InsNotSupported,
            0x6E00 => StatusWord::ClaNotSupported,
            other => StatusWord::Other(other),
        }
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> u16 {
        match sw {
            StatusWord::Success => 0x9000,
            StatusWord::MoreData(n) => 0x6100 | u16::from(n),
            StatusWord::WrongSecret { tries_left: None } => 0x6300,
            StatusWord::WrongSecret { tries_left: Some(n) } => 0x63C0 | u16::from(n.min(15)),
            StatusWord::WrongLength => 0x6700,
            StatusWord::SecurityNotSatisfied => 0x6982,
            StatusWord::Blocked => 0x6983,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::IncorrectData => 0x6A80,
            StatusWord::FunctionNotSupported => 0x6A81,
            StatusWord::NotFound => 0x6A82,
            StatusWord::NotEnoughMemory => 0x6A84,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::ReferenceNotFound => 0x6A88,
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::Other(sw) => sw,
        }
    }
}

impl StatusWord {
    pub fn to_bytes(self) -> [u8; 2] {
        u16::from(self).to_be_bytes()
    }

    pub fn is_success(self) -> bool {
        self == StatusWord::Success
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", u16::from(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for sw in [
            0x9000u16, 0x6110, 0x6100, 0x6300, 0x63C2, 0x63C0, 0x6700, 0x6982, 0x6983, 0x6A80, 0x6A82,
            0x6A86, 0x6D00, 0x6E00, 0x6F00, 0x6A88,
        ] {
            assert_eq!(u16::from(StatusWord::from(sw)), sw, "{sw:04X}");
        }
    }

    #[test]
    fn wrong_pin_decodes_its_tries_and_bare_6300_has_none() {
        assert_eq!(StatusWord::from(0x63C2), StatusWord::WrongSecret { tries_left: Some(2) });
        assert_eq!(StatusWord::from(0x6300), StatusWord::WrongSecret { tries_left: None });
    }
}
