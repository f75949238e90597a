//! The card operations a page may ask for, written against [`PivSession`] so they run the same
//! over PC/SC and over an in-process card in tests. Each starts with SELECT (a reset may have
//! happened since the last one) and never spends a PIN try to probe.

use base64::{engine::general_purpose::STANDARD, Engine};
use piv::{
    host::{HostError, PinStatus, PivSession, Transport, TransportError},
    ids::{alg, key, object},
    pin::{PaddedPin, PinFormatError},
    tlv,
};
use protocol::agent::{AgentError, AgentErrorCode, CardIdentity, PinState};
use zeroize::Zeroizing;

pub type OpResult<T> = Result<T, AgentError>;

pub fn error(code: AgentErrorCode, message: impl Into<String>) -> AgentError {
    AgentError { code, message: message.into() }
}

/// Card errors as sentences a person can act on.
pub fn from_host(error_value: HostError) -> AgentError {
    use AgentErrorCode as C;
    match error_value {
        HostError::Transport(TransportError::CardRemoved) => {
            error(C::CardRemoved, "The card was removed. Put it back in the reader and try again.")
        }
        HostError::Transport(TransportError::ReaderGone) => {
            error(C::NoReader, "The card reader was disconnected. Plug it back in and try again.")
        }
        HostError::Transport(TransportError::ServiceUnavailable) => error(
            C::ServiceUnavailable,
            "The smart card service is not running on this computer. Restart it or ask IT support.",
        ),
        HostError::NotPiv => error(C::NotPiv, "This card is not a smartcard this service can use."),
        HostError::WrongSecret { tries_left } => {
            let message = match tries_left {
                Some(1) => "The passcode is wrong. You have 1 try left before your card locks.".to_owned(),
                Some(n) => format!("The passcode is wrong. You have {n} tries left."),
                None => "The passcode is wrong.".to_owned(),
            };
            error(C::WrongPin { tries_left }, message)
        }
        HostError::Blocked => error(C::PinBlocked, "Your card is locked after too many wrong passcodes."),
        other => {
            tracing::warn!(error = %other, "card operation failed");
            error(C::CardError, "The card did not respond as expected. Remove it, put it back and try again.")
        }
    }
}

fn pin_from(digits: &str) -> OpResult<PaddedPin> {
    PaddedPin::new(digits).map_err(|e| match e {
        PinFormatError::Length => error(AgentErrorCode::InvalidPin, "A passcode is 6 to 8 digits."),
        PinFormatError::NotDigits => error(AgentErrorCode::InvalidPin, "A passcode contains digits only."),
    })
}

/// A 32-byte challenge from base64.
pub fn challenge_from(b64: &str) -> OpResult<Zeroizing<Vec<u8>>> {
    match STANDARD.decode(b64) {
        Ok(bytes) if bytes.len() == 32 => Ok(Zeroizing::new(bytes)),
        _ => Err(error(AgentErrorCode::BadRequest, "The challenge must be 32 bytes in base64.")),
    }
}

/// GUID, certificates and PIN state: no PIN asked, no try spent.
pub fn card_identity<T: Transport>(session: &mut PivSession<T>) -> OpResult<CardIdentity> {
    session.select().map_err(from_host)?;
    let chuid = session.get_data(object::CHUID).map_err(from_host)?.ok_or_else(not_personalised)?;
    let guid = tlv::find(&chuid, 0x34)
        .ok()
        .flatten()
        .filter(|g| g.len() == 16)
        .ok_or_else(not_personalised)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let certificate = |session: &mut PivSession<T>, tag: u32| -> OpResult<Option<String>> {
        let object = session.get_data(tag).map_err(from_host)?;
        Ok(object.and_then(|o| tlv::find(&o, 0x70).ok().flatten().map(|der| STANDARD.encode(der))))
    };
    let piv_auth_certificate = certificate(session, object::CERT_PIV_AUTH)?;
    let card_auth_certificate = certificate(session, object::CERT_CARD_AUTH)?;
    let pin = match session.pin_status().map_err(from_host)? {
        PinStatus::Blocked => PinState::Blocked,
        PinStatus::TriesLeft(tries_left) => PinState::Ready { tries_left },
        PinStatus::Verified => PinState::Ready { tries_left: None },
    };
    Ok(CardIdentity { guid, piv_auth_certificate, card_auth_certificate, pin })
}

fn not_personalised() -> AgentError {
    error(AgentErrorCode::NotPersonalised, "This card has not been issued yet. Ask your RA to issue it.")
}

/// VERIFY then sign with 9A; the PIN is logged out again afterwards.
pub fn sign_with_pin<T: Transport>(
    session: &mut PivSession<T>,
    pin: &str,
    challenge: &[u8],
) -> OpResult<Vec<u8>> {
    let pin = pin_from(pin)?;
    session.select().map_err(from_host)?;
    session.verify_pin(&pin).map_err(from_host)?;
    let signature = session.sign_ec(key::PIV_AUTHENTICATION, alg::ECC_P256, challenge).map_err(from_host);
    let _ = session.logout();
    signature
}

/// Sign with 9E (no PIN): proves this card is in the reader.
pub fn prove_presence<T: Transport>(session: &mut PivSession<T>, challenge: &[u8]) -> OpResult<Vec<u8>> {
    session.select().map_err(from_host)?;
    session.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, challenge).map_err(from_host)
}

pub fn change_pin<T: Transport>(session: &mut PivSession<T>, old: &str, new: &str) -> OpResult<()> {
    let (old, new) = (pin_from(old)?, pin_from(new)?);
    session.select().map_err(from_host)?;
    session.change_reference(key::PIN, &old, &new).map_err(from_host)
}

#[cfg(test)]
mod tests {
    use piv::mgmt::ManagementKey;
    use virtual_card::{card::Card, personalise, state::CardState};

    use super::*;

    fn personalised() -> (PivSession<Card>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let ca = personalise::DemoCa::load_or_create(dir.path()).unwrap();
        let card =
            Card::new(CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY), None);
        let mut session = PivSession::new(card);
        personalise::personalise(&mut session, &ManagementKey::default_3des(), &ca, "Test Holder").unwrap();
        session.transport_mut().reset();
        (session, dir)
    }

    #[test]
    fn identity_reads_guid_certificates_and_tries_without_spending_one() {
        let (mut s, _dir) = personalised();
        let identity = card_identity(&mut s).unwrap();
        assert_eq!(identity.guid.len(), 32);
        assert!(identity.piv_auth_certificate.is_some() && identity.card_auth_certificate.is_some());
        assert_eq!(identity.pin, PinState::Ready { tries_left: Some(3) });
        assert_eq!(s.transport_mut().state().pin_tries_left, 3);
    }

    #[test]
    fn a_blank_card_is_not_personalised() {
        let card =
            Card::new(CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY), None);
        let err = card_identity(&mut PivSession::new(card)).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::NotPersonalised);
    }

    #[test]
    fn sign_with_pin_reports_tries_left_then_blocked() {
        let (mut s, _dir) = personalised();
        let challenge = [9u8; 32];
        assert!(!sign_with_pin(&mut s, "123456", &challenge).unwrap().is_empty());
        let err = sign_with_pin(&mut s, "000000", &challenge).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::WrongPin { tries_left: Some(2) });
        let err = sign_with_pin(&mut s, "000000", &challenge).unwrap_err();
        assert!(err.message.contains("1 try left"), "{}", err.message);
        assert_eq!(sign_with_pin(&mut s, "000000", &challenge).unwrap_err().code, AgentErrorCode::PinBlocked);
        assert_eq!(card_identity(&mut s).unwrap().pin, PinState::Blocked);
    }

    #[test]
    fn a_malformed_pin_is_refused_before_the_card_sees_it() {
        let (mut s, _dir) = personalised();
        assert_eq!(sign_with_pin(&mut s, "12ab56", &[0; 32]).unwrap_err().code, AgentErrorCode::InvalidPin);
        assert_eq!(s.transport_mut().state().pin_tries_left, 3);
    }

    #[test]
    fn presence_needs_no_pin_and_change_pin_needs_the_old_one() {
        let (mut s, _dir) = personalised();
        prove_presence(&mut s, &[1; 32]).unwrap();
        assert!(matches!(
            change_pin(&mut s, "111111", "24681357").unwrap_err().code,
            AgentErrorCode::WrongPin { .. }
        ));
        change_pin(&mut s, "123456", "24681357").unwrap();
        sign_with_pin(&mut s, "24681357", &[2; 32]).unwrap();
    }

    #[test]
    fn challenges_must_be_32_bytes() {
        assert!(challenge_from(&STANDARD.encode([0u8; 32])).is_ok());
        assert!(challenge_from(&STANDARD.encode([0u8; 31])).is_err());
        assert!(challenge_from("not base64!").is_err());
    }
}
