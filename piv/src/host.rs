//! A host-side PIV session over any transport, written as a robust host (PIV.md): full AID,
//! `Le` on every data-returning command, `61xx` followed by GET RESPONSE, `6300` as a wrong
//! secret with an unknown count, command chaining for long data, and no try ever spent to probe.

use zeroize::Zeroizing;

use crate::{
    apdu::{ApduError, Command, Response, CLA_CHAINING},
    ids::{ins, key, object, PIV_AID},
    mgmt::{random_bytes, ManagementKey, MgmtKeyError},
    pin::{concat, PaddedPin},
    status::StatusWord,
    tlv::{self, TlvError},
};

/// No PIV object comes near this; more is a misbehaving card.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends one command APDU and returns the response APDU (PC/SC `SCardTransmit`, or in-process).
pub trait Transport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// A borrowed transport is one too: a session can run over `&mut dyn Transport`, so the agent's
/// operations do not care whether PC/SC or a test double carries the bytes.
impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

/// The transport failed: the card is gone, the reader is gone, or the service stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the card was removed")]
    CardRemoved,
    #[error("the card reader is no longer available")]
    ReaderGone,
    #[error("the smart card service (pcscd) is not running")]
    ServiceUnavailable,
    #[error("card communication failed: {0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the card sent a malformed response: {0}")]
    Apdu(#[from] ApduError),
    #[error("the card sent malformed data: {0}")]
    Tlv(#[from] TlvError),
    #[error("this is not a PIV card (the PIV application was not found)")]
    NotPiv,
    #[error("wrong secret ({})", tries_text(*tries_left))]
    WrongSecret { tries_left: Option<u8> },
    #[error("blocked after too many wrong attempts")]
    Blocked,
    #[error("the card refused: security status not satisfied")]
    SecurityNotSatisfied,
    #[error("management key: {0}")]
    ManagementKey(#[from] MgmtKeyError),
    #[error("management key authentication failed")]
    ManagementKeyRejected,
    #[error("the card kept sending data past {0} bytes")]
    ResponseTooLong(usize),
    #[error("the card answered {sw} to instruction {ins:02X}")]
    Status { ins: u8, sw: StatusWord },
}

fn tries_text(tries: Option<u8>) -> String {
    match tries {
        Some(1) => "1 try left".into(),
        Some(n) => format!("{n} tries left"),
        None => "tries left unknown".into(),
    }
}

/// What VERIFY without data says about the PIN, without spending a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Already verified in this card session.
    Verified,
    /// Not verified; this many tries remain (`None`: the card did not say).
    TriesLeft(Option<u8>),
    Blocked,
}

/// What GET METADATA (Yubico) says of a key or PIN reference, without using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metadata {
    /// The key's algorithm (`None` for a PIN or PUK, or when the card did not say).
    pub algorithm: Option<u8>,
    /// Whether it still has its factory value.
    pub is_default: Option<bool>,
    /// For a PIN or PUK: (tries after a reset, tries left).
    pub tries: Option<(u8, u8)>,
}

#[derive(Debug)]
pub struct PivSession<T> {
    transport: T,
}

impl<T: Transport> PivSession<T> {
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    pub fn into_inner(self) -> T {
        self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Sends a command (chaining data over 255 bytes) and collects `61xx` continuations.
    pub fn transceive(&mut self, command: &Command) -> Result<Response, HostError> {
        let blocks: Vec<&[u8]> =
            if command.data.is_empty() { vec![&[][..]] } else { command.data.chunks(255).collect() };
        let last = blocks.len() - 1;
        let mut response = Response::status(StatusWord::Success);
        for (i, block) in blocks.into_iter().enumerate() {
            let part = Command {
                cla: if i < last { command.cla | CLA_CHAINING } else { command.cla },
                ins: command.ins,
                p1: command.p1,
                p2: command.p2,
                data: block.to_vec(),
                le: if i < last { None } else { command.le },
                extended: false,
            };
            response = Response::parse(&self.transport.transmit(&part.to_bytes())?)?;
            if i < last && !response.sw.is_success() {
                return Ok(response);
            }
        }
        let mut data = std::mem::take(&mut response.data);
        let mut sw = response.sw;
        while let StatusWord::MoreData(n) = sw {
            // A faulty card answering 61xx forever must not hold the reader (or memory) hostage.
            if data.len() > MAX_RESPONSE_BYTES {
                return Err(HostError::ResponseTooLong(MAX_RESPONSE_BYTES));
            }
            let mut more = Command::new(0x00, ins::GET_RESPONSE, 0, 0, Vec::new());
            more.le = Some(usize::from(n));
            let next = Response::parse(&self.transport.transmit(&more.to_bytes())?)?;
            data.extend_from_slice(&next.data);
            sw = next.sw;
        }
        Ok(Response::new(data, sw))
    }

    fn expect_success(&mut self, command: &Command) -> Result<Vec<u8>, HostError> {
        let response = self.transceive(command)?;
        match response.sw {
            StatusWord::Success => Ok(response.data),
            sw => Err(secret_error(command.ins, sw)),
        }
    }

    /// SELECT the PIV application by its full AID.
    pub fn select(&mut self) -> Result<Vec<u8>, HostError> {
        let command = Command::new(0x00, ins::SELECT, 0x04, 0x00, PIV_AID.to_vec());
        let response = self.transceive(&command)?;
        match response.sw {
            StatusWord::Success => Ok(response.data),
            StatusWord::NotFound | StatusWord::InsNotSupported | StatusWord::ClaNotSupported => {
                Err(HostError::NotPiv)
            }
            sw => Err(HostError::Status { ins: ins::SELECT, sw }),
        }
    }

    /// GET DATA: the object's contents (inside `53`), or `None` if the card does not have it.
    pub fn get_data(&mut self, tag: u32) -> Result<Option<Vec<u8>>, HostError> {
        let mut tag_list = Vec::new();
        tlv::push_tag(&mut tag_list, tag);
        let command = Command::new(0x00, ins::GET_DATA, 0x3F, 0xFF, tlv::encode(0x5C, &tag_list));
        let response = self.transceive(&command)?;
        match response.sw {
            StatusWord::Success => {
                let (outer, _) = tlv::parse_one(&response.data)?;
                Ok(Some(outer.value.to_vec()))
            }
            StatusWord::NotFound => Ok(None),
            sw => Err(secret_error(ins::GET_DATA, sw)),
        }
    }

    /// PUT DATA of an object's contents (wrapped in `53`); needs management-key authentication.
    pub fn put_data(&mut self, tag: u32, contents: &[u8]) -> Result<(), HostError> {
        let mut tag_list = Vec::new();
        tlv::push_tag(&mut tag_list, tag);
        let data = if tag == object::DISCOVERY {
            tlv::encode(0x7E, contents)
        } else {
            let mut d = tlv::encode(0x5C, &tag_list);
            d.extend(tlv::encode(0x53, contents));
            d
        };
        self.expect_success(&Command::without_le(0x00, ins::PUT_DATA, 0x3F, 0xFF, data)).map(drop)
    }

    /// VERIFY without data: the PIN's state, spending nothing.
    pub fn pin_status(&mut self) -> Result<PinStatus, HostError> {
        let response =
            self.transceive(&Command::without_le(0x00, ins::VERIFY, 0x00, key::PIN, Vec::new()))?;
        Ok(match response.sw {
            StatusWord::Success => PinStatus::Verified,
            StatusWord::WrongSecret { tries_left: Some(0) } | StatusWord::Blocked => PinStatus::Blocked,
            StatusWord::WrongSecret { tries_left } => PinStatus::TriesLeft(tries_left),
            // Some cards answer 6982 "not verified" without a count.
            StatusWord::SecurityNotSatisfied => PinStatus::TriesLeft(None),
            sw => return Err(HostError::Status { ins: ins::VERIFY, sw }),
        })
    }

    pub fn verify_pin(&mut self, pin: &PaddedPin) -> Result<(), HostError> {
        let command = Command::without_le(0x00, ins::VERIFY, 0x00, key::PIN, pin.as_bytes().to_vec());
        self.expect_success(&command).map(drop)
    }

    /// VERIFY with P1=FF: forget the verified PIN.
    pub fn logout(&mut self) -> Result<(), HostError> {
        self.expect_success(&Command::without_le(0x00, ins::VERIFY, 0xFF, key::PIN, Vec::new())).map(drop)
    }

    /// CHANGE REFERENCE DATA for the PIN (`key::PIN`) or the PUK (`key::PUK`).
    pub fn change_reference(
        &mut self,
        reference: u8,
        old: &PaddedPin,
        new: &PaddedPin,
    ) -> Result<(), HostError> {
        let data = concat(old, new);
        let command = Command::without_le(0x00, ins::CHANGE_REFERENCE_DATA, 0x00, reference, data.to_vec());
        self.expect_success(&command).map(drop)
    }

    /// RESET RETRY COUNTER: sets a new PIN with the PUK and unblocks it.
    pub fn reset_retry_counter(&mut self, puk: &PaddedPin, new_pin: &PaddedPin) -> Result<(), HostError> {
        let data = concat(puk, new_pin);
        let command = Command::without_le(0x00, ins::RESET_RETRY_COUNTER, 0x00, key::PIN, data.to_vec());
        self.expect_success(&command).map(drop)
    }

    /// Mutual authentication with the card management key (9B), SP 800-73-4 Part 2 App. A.1.
    pub fn authenticate_management(&mut self, mgmt: &ManagementKey) -> Result<(), HostError> {
        let general_auth = |data: Vec<u8>| {
            Command::new(0x00, ins::GENERAL_AUTHENTICATE, mgmt.algorithm(), key::CARD_MANAGEMENT, data)
        };
        let request_witness = tlv::encode(0x7C, &tlv::encode(0x80, &[]));
        let answer = self.expect_success(&general_auth(request_witness))?;
        let (dynamic, _) = tlv::parse_one(&answer)?;
        let encrypted_witness = tlv::find(dynamic.value, 0x80)?.ok_or(HostError::ManagementKeyRejected)?;
        let witness = Zeroizing::new(mgmt.decrypt_block(encrypted_witness)?);
        let challenge = random_bytes(mgmt.block_size());
        let body = tlv::encode_all(&[(0x80, &witness), (0x81, &challenge)]);
        let response = self.transceive(&general_auth(tlv::encode(0x7C, &body)))?;
        if !response.sw.is_success() {
            return Err(HostError::ManagementKeyRejected);
        }
        let (dynamic, _) = tlv::parse_one(&response.data)?;
        let encrypted = tlv::find(dynamic.value, 0x82)?.ok_or(HostError::ManagementKeyRejected)?;
        // The card must prove it holds the key too.
        if mgmt.decrypt_block(encrypted)? != challenge {
            return Err(HostError::ManagementKeyRejected);
        }
        Ok(())
    }

    /// SET MANAGEMENT KEY (Yubico's extension, the de-facto way PIV cards change 9B); needs
    /// management-key authentication with the current key first.
    pub fn set_management_key(&mut self, new: &ManagementKey) -> Result<(), HostError> {
        let key_bytes = new.key_bytes();
        let mut data = Zeroizing::new(Vec::with_capacity(3 + key_bytes.len()));
        data.extend_from_slice(&[new.algorithm(), key::CARD_MANAGEMENT, key_bytes.len() as u8]);
        data.extend_from_slice(key_bytes);
        let command = Command::without_le(0x00, ins::YK_SET_MANAGEMENT_KEY, 0xFF, 0xFF, data.to_vec());
        self.expect_success(&command).map(drop)
    }

    /// GENERATE ASYMMETRIC KEY PAIR (ECC): the new public point `04‖X‖Y`.
    pub fn generate_ec(&mut self, slot: u8, algorithm: u8) -> Result<Vec<u8>, HostError> {
        let template = tlv::encode(0xAC, &tlv::encode(0x80, &[algorithm]));
        let command = Command::new(0x00, ins::GENERATE_ASYMMETRIC_KEY_PAIR, 0x00, slot, template);
        let answer = self.expect_success(&command)?;
        let (public, _) = tlv::parse_one(&answer)?;
        if public.tag != 0x7F49 {
            return Err(HostError::Status { ins: command.ins, sw: StatusWord::IncorrectData });
        }
        let point = tlv::find(public.value, 0x86)?
            .ok_or(HostError::Status { ins: command.ins, sw: StatusWord::IncorrectData })?;
        Ok(point.to_vec())
    }

    /// ATTEST (Yubico): the card's certificate (DER) for the key generated in `slot`, signed by
    /// its attestation key; `None` if the card has no such command (not every PIV card does).
    pub fn attest(&mut self, slot: u8) -> Result<Option<Vec<u8>>, HostError> {
        let command = Command::new(0x00, ins::YK_ATTEST, slot, 0x00, Vec::new());
        let response = self.transceive(&command)?;
        match response.sw {
            StatusWord::Success => Ok(Some(response.data)),
            StatusWord::InsNotSupported | StatusWord::ClaNotSupported => Ok(None),
            sw => Err(secret_error(ins::YK_ATTEST, sw)),
        }
    }

    /// GET METADATA (Yubico, firmware 5.3+) of a key or PIN reference; `None` from a card that
    /// has no such command, or nothing to say of this reference. Spends nothing.
    pub fn metadata(&mut self, reference: u8) -> Result<Option<Metadata>, HostError> {
        let command = Command::new(0x00, ins::YK_GET_METADATA, 0x00, reference, Vec::new());
        let response = self.transceive(&command)?;
        // A hint, never a requirement: whatever a card answers instead (6D00 from most, 6A88 for
        // an empty slot, anything from an odd one) means "no metadata".
        if !response.sw.is_success() {
            return Ok(None);
        }
        let mut metadata = Metadata::default();
        for element in tlv::parse_all(&response.data)? {
            match (element.tag, element.value) {
                // PINs and PUKs say FF: not a key.
                (0x01, [algorithm]) if *algorithm != 0xFF => metadata.algorithm = Some(*algorithm),
                (0x05, [flag]) => metadata.is_default = Some(*flag == 0x01),
                (0x06, [total, left]) => metadata.tries = Some((*total, *left)),
                _ => {}
            }
        }
        Ok(Some(metadata))
    }

    /// GENERAL AUTHENTICATE with an ECC key: the card signs `digest` (already hashed).
    pub fn sign_ec(&mut self, slot: u8, algorithm: u8, digest: &[u8]) -> Result<Vec<u8>, HostError> {
        let body = tlv::encode_all(&[(0x82, &[]), (0x81, digest)]);
        let command =
            Command::new(0x00, ins::GENERAL_AUTHENTICATE, algorithm, slot, tlv::encode(0x7C, &body));
        let answer = self.expect_success(&command)?;
        let (dynamic, _) = tlv::parse_one(&answer)?;
        let signature = tlv::find(dynamic.value, 0x82)?
            .ok_or(HostError::Status { ins: command.ins, sw: StatusWord::IncorrectData })?;
        Ok(signature.to_vec())
    }
}

/// Status words of secret-checking commands, as the errors a person can act on.
fn secret_error(ins: u8, sw: StatusWord) -> HostError {
    match sw {
        StatusWord::WrongSecret { tries_left: Some(0) } | StatusWord::Blocked => HostError::Blocked,
        StatusWord::WrongSecret { tries_left } => HostError::WrongSecret { tries_left },
        StatusWord::SecurityNotSatisfied => HostError::SecurityNotSatisfied,
        sw => HostError::Status { ins, sw },
    }
}
