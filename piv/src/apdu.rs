//! Command and response APDUs (ISO 7816-4 §5.1), short and extended length.

use crate::status::StatusWord;

/// Why bytes are not a command APDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("an APDU needs at least 4 header bytes, got {0}")]
    TooShort(usize),
    #[error("the APDU body does not match its declared lengths")]
    BadLength,
    #[error("a response APDU needs a 2-byte status word")]
    NoStatusWord,
}

/// CLA bit for "more blocks follow" (command chaining, ISO 7816-4 §5.1.1).
pub const CLA_CHAINING: u8 = 0x10;

#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected response length: `None` = no Le; `Some(0)` with short encoding means 256.
    pub le: Option<usize>,
    /// Whether the lengths were (or are to be) encoded in extended form.
    pub extended: bool,
}

/// Commands carry PINs and keys: never print the data.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Command {{ cla: {:02X}, ins: {:02X}, p1: {:02X}, p2: {:02X}, data: {} bytes, le: {:?} }}",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

impl Command {
    /// A short command with data and `Le = 00` (the robust-host habit: always ask for data).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self { cla, ins, p1, p2, data, le: Some(0), extended: false }
    }

    /// A command that returns no data (no Le).
    pub fn without_le(cla: u8, ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self { cla, ins, p1, p2, data, le: None, extended: false }
    }

    pub fn is_chained(&self) -> bool {
        self.cla & CLA_CHAINING != 0
    }

    /// Parses any of the ISO 7816-4 cases 1–4, short or extended.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else { return Err(ApduError::TooShort(bytes.len())) };
        let (data, le, extended) = match body {
            [] => (Vec::new(), None, false),
            [le] => (Vec::new(), Some(usize::from(*le)), false),
            [0, hi, lo] => (Vec::new(), Some(usize::from(*hi) << 8 | usize::from(*lo)), true),
            [0, hi, lo, rest @ ..] if *hi != 0 || *lo != 0 => {
                let lc = usize::from(*hi) << 8 | usize::from(*lo);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest.to_vec(), None, true),
                    Some(2) => {
                        let le = usize::from(rest[lc]) << 8 | usize::from(rest[lc + 1]);
                        (rest[..lc].to_vec(), Some(le), true)
                    }
                    _ => return Err(ApduError::BadLength),
                }
            }
            [lc, rest @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest.to_vec(), None, false),
                    Some(1) => (rest[..lc].to_vec(), Some(usize::from(rest[lc])), false),
                    _ => return Err(ApduError::BadLength),
                }
            }
            _ => return Err(ApduError::BadLength),
        };
        Ok(Self { cla: *cla, ins: *ins, p1: *p1, p2: *p2, data, le, extended })
    }

    /// The maximum number of response bytes this command accepts.
    pub fn max_response(&self) -> usize {
        match (self.le, self.extended) {
            (None, _) => 0,
            (Some(0), false) => 256,
            (Some(0), true) => 65536,
            (Some(n), _) => n,
        }
    }

    /// Encodes the command: short form unless it was parsed extended or cannot fit the short
    /// form (hosts chain long data into short commands first; a property test found that longer
    /// data used to be cut to its length's low byte instead).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        if self.extended || self.data.len() > 255 || self.le.is_some_and(|le| le > 256) {
            if !self.data.is_empty() {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&(le as u16).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push(le as u8);
            }
        }
        out
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response {{ data: {} bytes, sw: {} }}", self.data.len(), self.sw)
    }
}

impl Response {
    pub fn new(data: Vec<u8>, sw: StatusWord) -> Self {
        Self { data, sw }
    }

    pub fn status(sw: StatusWord) -> Self {
        Self { data: Vec::new(), sw }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let split = bytes.len().checked_sub(2).ok_or(ApduError::NoStatusWord)?;
        let (data, sw) = bytes.split_at(split);
        Ok(Self { data: data.to_vec(), sw: StatusWord::from(u16::from_be_bytes([sw[0], sw[1]])) })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_short_cases_parse() {
        let c = Command::parse(&[0x00, 0x20, 0x00, 0x80]).unwrap();
        assert_eq!((c.data.len(), c.le), (0, None));
        let c = Command::parse(&[0x00, 0xC0, 0x00, 0x00, 0x10]).unwrap();
        assert_eq!((c.data.len(), c.le), (0, Some(0x10)));
        let c = Command::parse(&[0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32]).unwrap();
        assert_eq!((c.data.clone(), c.le.is_none()), (vec![0x31, 0x32], true));
        let c = Command::parse(&[0x00, 0xCB, 0x3F, 0xFF, 0x01, 0x7E, 0x00]).unwrap();
        assert_eq!((c.data.clone(), c.le, c.max_response()), (vec![0x7E], Some(0), 256));
    }

    #[test]
    fn extended_cases_parse() {
        let c = Command::parse(&[0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x01, 0x7E, 0x00, 0x00]).unwrap();
        assert_eq!((c.data.clone(), c.extended, c.max_response()), (vec![0x7E], true, 65536));
        let c = Command::parse(&[0x00, 0xC0, 0x00, 0x00, 0x00, 0x01, 0x00]).unwrap();
        assert_eq!((c.le, c.extended), (Some(256), true));
    }

    #[test]
    fn inconsistent_lengths_are_refused() {
        assert_eq!(Command::parse(&[0x00, 0x20, 0x00]), Err(ApduError::TooShort(3)));
        assert_eq!(Command::parse(&[0x00, 0x20, 0x00, 0x80, 0x05, 1, 2]), Err(ApduError::BadLength));
        assert_eq!(Command::parse(&[0x00, 0x20, 0x00, 0x80, 0x01, 1, 2, 3]), Err(ApduError::BadLength));
    }

    #[test]
    fn encoding_round_trips() {
        for c in [
            Command::new(0x00, 0xCB, 0x3F, 0xFF, vec![0x5C, 0x03, 0x5F, 0xC1, 0x02]),
            Command::without_le(0x10, 0xDB, 0x3F, 0xFF, vec![1; 255]),
            Command::without_le(0x00, 0x20, 0x00, 0x80, vec![]),
        ] {
            assert_eq!(Command::parse(&c.to_bytes()).unwrap(), c);
        }
    }

    #[test]
    fn responses_split_data_and_status() {
        let r = Response::parse(&[1, 2, 0x63, 0xC1]).unwrap();
        assert_eq!(r.data, vec![1, 2]);
        assert_eq!(r.sw, StatusWord::WrongSecret { tries_left: Some(1) });
        assert_eq!(r.to_bytes(), vec![1, 2, 0x63, 0xC1]);
        assert_eq!(Response::parse(&[0x90]), Err(ApduError::NoStatusWord));
    }

    proptest::proptest! {
        #[test]
        fn commands_survive_encoding_short_and_extended(
            header in proptest::array::uniform4(proptest::num::u8::ANY),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..700),
            expect_answer in proptest::bool::ANY,
        ) {
            let [cla, ins, p1, p2] = header;
            let command = if expect_answer {
                Command::new(cla, ins, p1, p2, data.clone())
            } else {
                Command::without_le(cla, ins, p1, p2, data.clone())
            };
            let bytes = command.to_bytes();
            let parsed = Command::parse(&bytes).unwrap();
            proptest::prop_assert_eq!(parsed.to_bytes(), bytes);
            proptest::prop_assert_eq!(parsed.data.as_slice(), data.as_slice());
        }

        #[test]
        fn responses_survive_encoding(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600), sw in proptest::num::u16::ANY) {
            let response = Response::new(data.clone(), StatusWord::from(sw));
            let parsed = Response::parse(&response.to_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed.data, data);
            proptest::prop_assert_eq!(u16::from(parsed.sw), sw);
        }
    }
}
