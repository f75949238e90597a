//! The card operations a page may ask for, written against [`PivSession`] so they run the same
//! over PC/SC and over an in-process card in tests. Each starts with SELECT (a reset may have
//! happened since the last one) and never spends a PIN try to probe.

use base64::{engine::general_purpose::STANDARD, Engine};
use envelope::{EnvelopeError, Purpose, UnlockSecrets};
use piv::{
    host::{HostError, PinStatus, PivSession, Transport, TransportError},
    ids::{alg, key, object},
    pin::{PaddedPin, PinFormatError},
    tlv,
};
use protocol::agent::{
    AgentError, AgentErrorCode, CardIdentity, PinState, PukOnCard, StepFailure, UnlockReport, UnlockStep,
};
use protocol::card_guid::CardGuid;
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
        // The try that used up the last one: say what the person now faces, a locked card.
        HostError::WrongSecret { tries_left: Some(0) } => error(
            C::PinBlocked,
            "The passcode is wrong, and your card is now locked after too many wrong passcodes.",
        ),
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

pub fn pin_from(digits: &str) -> OpResult<PaddedPin> {
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

/// GUID, certificates and PIN state: no PIN asked, no try spent. A card without a CHUID and a
/// PIV Authentication certificate is not issued (`NotPersonalised`).
pub fn card_identity<T: Transport>(session: &mut PivSession<T>) -> OpResult<CardIdentity> {
    session.select().map_err(from_host)?;
    let guid = read_guid(session)?;
    let certificate = |session: &mut PivSession<T>, tag: u32| -> OpResult<Option<String>> {
        let object = session.get_data(tag).map_err(from_host)?;
        Ok(object.and_then(|o| tlv::find(&o, 0x70).ok().flatten().map(|der| STANDARD.encode(der))))
    };
    // A CHUID alone is not an issued card: some makers' applets write one when they first run.
    let Some(piv_auth_certificate) = certificate(session, object::CERT_PIV_AUTH)? else {
        return Err(not_personalised());
    };
    let piv_auth_certificate = Some(piv_auth_certificate);
    let card_auth_certificate = certificate(session, object::CERT_CARD_AUTH)?;
    let holder = piv_auth_certificate.as_deref().and_then(holder_name);
    let pin = match session.pin_status().map_err(from_host)? {
        PinStatus::Blocked => PinState::Blocked,
        PinStatus::TriesLeft(tries_left) => PinState::Ready { tries_left },
        PinStatus::Verified => PinState::Ready { tries_left: None },
    };
    Ok(CardIdentity { guid, holder, piv_auth_certificate, card_auth_certificate, pin })
}

/// The common name in a certificate's subject (DER, base64), if it has a readable one.
fn holder_name(certificate_b64: &str) -> Option<String> {
    use der::{asn1::PrintableStringRef, asn1::Utf8StringRef, Decode};
    const COMMON_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");
    let der = STANDARD.decode(certificate_b64).ok()?;
    let certificate = x509_cert::Certificate::from_der(&der).ok()?;
    let subject = certificate.tbs_certificate.subject;
    let value = subject.0.iter().flat_map(|rdn| rdn.0.iter()).find(|a| a.oid == COMMON_NAME)?.value.clone();
    let text = Utf8StringRef::try_from(&value)
        .map(|s| s.as_str().to_owned())
        .or_else(|_| PrintableStringRef::try_from(&value).map(|s| s.as_str().to_owned()))
        .ok()?;
    // Shown on a page: printable, and short enough for one line.
    let text: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The CHUID's GUID as 32 lowercase hex digits (the card must be selected).
fn read_guid<T: Transport>(session: &mut PivSession<T>) -> OpResult<CardGuid> {
    read_guid_if_any(session)?.ok_or_else(not_personalised)
}

/// The GUID, or `None` for a card without a (usable) CHUID, e.g. a blank one.
pub fn read_guid_if_any<T: Transport>(session: &mut PivSession<T>) -> OpResult<Option<CardGuid>> {
    let Some(chuid) = session.get_data(object::CHUID).map_err(from_host)? else { return Ok(None) };
    Ok(tlv::find(&chuid, 0x34)
        .ok()
        .flatten()
        .and_then(|g| <[u8; 16]>::try_from(g).ok())
        .map(CardGuid::from_bytes))
}

fn not_personalised() -> AgentError {
    error(AgentErrorCode::NotPersonalised, "This card has not been issued yet. Ask your RA to issue it.")
}

/// Has the card sign `challenge` for `purpose` with `slot`: the card signs the purpose's
/// digest, never bytes a page chose.
pub fn sign_for<T: Transport>(
    session: &mut PivSession<T>,
    slot: u8,
    purpose: Purpose,
    challenge: &[u8],
) -> Result<Vec<u8>, HostError> {
    session.sign_ec(slot, alg::ECC_P256, &envelope::signed_digest(purpose, challenge))
}

/// VERIFY then sign with 9A for `purpose`; the PIN is logged out again afterwards.
/// The PIN goes only to the card `chosen`: a card swapped into the reader since the person chose
/// is refused before VERIFY, so none of its tries is spent.
pub fn sign_with_pin<T: Transport>(
    session: &mut PivSession<T>,
    chosen: &CardGuid,
    pin: &str,
    purpose: Purpose,
    challenge: &[u8],
) -> OpResult<Vec<u8>> {
    let pin = pin_from(pin)?;
    session.select().map_err(from_host)?;
    if read_guid_if_any(session)?.as_ref() != Some(chosen) {
        return Err(error(
            AgentErrorCode::WrongCard,
            "The card in the reader is not the one you chose. Choose your card again.",
        ));
    }
    session.verify_pin(&pin).map_err(from_host)?;
    let signature = sign_for(session, key::PIV_AUTHENTICATION, purpose, challenge).map_err(from_host);
    let _ = session.logout();
    signature
}

/// Sign with 9E (no PIN) for [`Purpose::Presence`]: proves this card is in the reader.
pub fn prove_presence<T: Transport>(session: &mut PivSession<T>, challenge: &[u8]) -> OpResult<Vec<u8>> {
    session.select().map_err(from_host)?;
    sign_for(session, key::CARD_AUTHENTICATION, Purpose::Presence, challenge).map_err(from_host)
}

pub fn change_pin<T: Transport>(session: &mut PivSession<T>, old: &str, new: &str) -> OpResult<()> {
    let (old, new) = (pin_from(old)?, pin_from(new)?);
    session.select().map_err(from_host)?;
    session.change_reference(key::PIN, &old, &new).map_err(from_host)
}

/// What an envelope was for, so its problems are worded for the person's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    Unlock,
    Issuance,
}

impl Procedure {
    fn noun(self) -> &'static str {
        match self {
            Procedure::Unlock => "unlock",
            Procedure::Issuance => "issuance",
        }
    }
}

/// Envelope problems as sentences; none of them has touched the card.
pub fn from_envelope(problem: EnvelopeError, during: Procedure) -> AgentError {
    let noun = during.noun();
    match problem {
        EnvelopeError::WrongCard => error(
            AgentErrorCode::WrongCard,
            format!("This is not the card the {noun} was started with. Put that card in the reader and start again."),
        ),
        EnvelopeError::Untrusted | EnvelopeError::Unsigned => {
            tracing::warn!(problem = %problem, procedure = noun, "envelope not signed by this origin's backend");
            untrusted(during)
        }
        EnvelopeError::Expired => error(
            AgentErrorCode::EnvelopeRejected,
            format!(
                "The {noun} took too long and has expired. Start again. (If this keeps happening, check this computer's clock.)"
            ),
        ),
        other => {
            tracing::warn!(problem = %other, procedure = noun, "envelope refused");
            error(AgentErrorCode::EnvelopeRejected, format!("The {noun} could not be completed securely. Start again."))
        }
    }
}

/// The page asked for an envelope operation its origin's backend did not authorise: no key is
/// configured for the origin, or the envelope was not signed by one. Nothing reached the card.
pub fn untrusted(during: Procedure) -> AgentError {
    error(
        AgentErrorCode::EnvelopeUntrusted,
        format!(
            "This {} was not authorised by a self-service site this computer trusts, so nothing was done to your card. \
             If you are on your organisation's self-service site, ask IT support to check the card agent's settings.",
            during.noun()
        ),
    )
}

/// First half of an unlock: the GUID, and the card's 9E signature binding the agent's
/// one-time `public_key` to this card and the backend's `challenge`.
pub fn begin_unlock<T: Transport>(
    session: &mut PivSession<T>,
    challenge: &[u8],
    public_key: &[u8; 32],
) -> OpResult<(CardGuid, Vec<u8>)> {
    session.select().map_err(from_host)?;
    let guid = read_guid(session)?;
    let digest = envelope::offer_digest(challenge, public_key, &guid);
    let signature = session.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, &digest).map_err(from_host)?;
    Ok((guid, signature))
}

/// Second half: RESET RETRY COUNTER with the first PUK candidate the card accepts, CHANGE
/// REFERENCE DATA to the new PUK, VERIFY the new PIN and sign the envelope's proof challenge
/// with 9A.
///
/// An `Err` means the card was not changed (bad input, another card, expired secrets). Once a
/// card command has been sent the answer is always a report, stopped at the first failed step.
pub fn unlock<T: Transport>(
    session: &mut PivSession<T>,
    secrets: &UnlockSecrets,
    new_pin: &str,
    now_unix: u64,
) -> OpResult<UnlockReport> {
    let new_pin_text = new_pin;
    let new_pin = pin_from(new_pin)?;
    // A page cannot set a passcode the service's rules refuse, whatever it sends.
    protocol::passcode::check_strength(new_pin_text)
        .map_err(|p| error(AgentErrorCode::InvalidPin, p.message()))?;
    let bad_puk = || from_envelope(EnvelopeError::BadContents, Procedure::Unlock);
    let candidates = secrets
        .current_puks
        .iter()
        .map(|p| PaddedPin::new(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad_puk())?;
    let new_puk = PaddedPin::new(&secrets.new_puk).map_err(|_| bad_puk())?;
    let challenge = challenge_from(&secrets.proof_challenge).map_err(|_| bad_puk())?;
    session.select().map_err(from_host)?;
    let guid = read_guid(session)?;
    secrets.check(&guid, now_unix).map_err(|p| from_envelope(p, Procedure::Unlock))?;

    let mut report =
        UnlockReport { guid, pin_reset: false, puk: PukOnCard::Unchanged, proof: None, failure: None };
    let fail = |mut report: UnlockReport, step, error| {
        report.failure = Some(StepFailure { step, error });
        Ok(report)
    };

    let (index, old_puk) =
        match first_accepted_puk(&candidates, |puk| session.reset_retry_counter(puk, &new_pin)) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                let refusal = refusal.unwrap_or_else(bad_puk);
                return fail(report, UnlockStep::ResetRetryCounter, refusal);
            }
        };
    let index = u8::try_from(index).unwrap_or(u8::MAX);
    report.pin_reset = true;
    crate::crash::point("unlock.after_reset");

    match session.change_reference(key::PUK, old_puk, &new_puk) {
        Ok(()) => report.puk = PukOnCard::Rotated,
        // The command may or may not have reached the card's memory.
        Err(HostError::Transport(e)) => {
            report.puk = PukOnCard::Unknown { index };
            return fail(report, UnlockStep::ChangePuk, from_host(HostError::Transport(e)));
        }
        Err(other) => {
            report.puk = PukOnCard::Candidate { index };
            return fail(report, UnlockStep::ChangePuk, from_host(other));
        }
    }

    crate::crash::point("unlock.after_puk_change");
    if let Err(e) = session.verify_pin(&new_pin) {
        return fail(report, UnlockStep::VerifyNewPin, from_host(e));
    }
    let signed = sign_for(session, key::PIV_AUTHENTICATION, Purpose::UnlockProof, &challenge);
    let _ = session.logout();
    match signed {
        Ok(signature) => {
            report.proof = Some(STANDARD.encode(signature));
            Ok(report)
        }
        Err(e) => fail(report, UnlockStep::SignProof, from_host(e)),
    }
}

/// Runs `command` with each PUK candidate in turn until the card accepts one: its index and
/// value. Another candidate is tried only while one more wrong guess cannot block the PUK; the
/// error is the card's last refusal (`None`: there were no candidates).
pub fn first_accepted_puk(
    candidates: &[PaddedPin],
    mut command: impl FnMut(&PaddedPin) -> Result<(), HostError>,
) -> Result<(usize, &PaddedPin), Option<AgentError>> {
    let mut refusal = None;
    for (index, puk) in candidates.iter().enumerate() {
        match command(puk) {
            Ok(()) => return Ok((index, puk)),
            Err(HostError::WrongSecret { tries_left }) => {
                refusal = Some(wrong_puk(tries_left));
                if tries_left.is_none_or(|left| left < 2) {
                    break;
                }
            }
            Err(HostError::Blocked) => return Err(Some(puk_blocked())),
            Err(other) => return Err(Some(from_host(other))),
        }
    }
    Err(refusal)
}

fn wrong_puk(tries_left: Option<u8>) -> AgentError {
    error(
        AgentErrorCode::WrongPuk { tries_left },
        "The card refused the unlock key the service holds for it. Contact your RA.",
    )
}

pub fn puk_blocked() -> AgentError {
    error(
        AgentErrorCode::PukBlocked,
        "This card can no longer be unlocked here. Contact your RA for a new card.",
    )
}

#[cfg(test)]
mod tests {
    use piv::mgmt::ManagementKey;
    use virtual_card::{card::Card, personalise, state::CardState};

    use super::*;
    use crate::test_support::{sign_chosen, Unplugged};

    fn personalised() -> (PivSession<Card>, tempfile::TempDir) {
        personalised_with_puk("12345678")
    }

    fn personalised_with_puk(puk: &str) -> (PivSession<Card>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let ca = personalise::CertificateAuthority::load_or_create(dir.path()).unwrap();
        let card = Card::new(CardState::blank("123456", puk, alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY), None);
        let mut session = PivSession::new(card);
        personalise::personalise(&mut session, &ManagementKey::default_3des(), &ca, "Test Holder").unwrap();
        session.transport_mut().reset();
        (session, dir)
    }

    fn secrets_for(guid: &str, current: &[&str], new: &str) -> UnlockSecrets {
        UnlockSecrets {
            guid: guid.into(),
            expires_at: NOW + 300,
            issued_at: 0,
            current_puks: current.iter().map(|p| Zeroizing::new((*p).to_owned())).collect(),
            new_puk: Zeroizing::new(new.into()),
            proof_challenge: STANDARD.encode([7u8; 32]),
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn block_pin<T: Transport>(s: &mut PivSession<T>) {
        for _ in 0..3 {
            let _ = sign_chosen(s, "000000", Purpose::SignIn, &[0; 32]);
        }
        assert_eq!(card_identity(s).unwrap().pin, PinState::Blocked);
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
    fn a_card_with_only_a_makers_chuid_is_not_personalised() {
        let mut s =
            PivSession::new(Card::new(virtual_card::quirks::Profile::FactoryChuid.blank_card(), None));
        assert_eq!(card_identity(&mut s).unwrap_err().code, AgentErrorCode::NotPersonalised);
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
        assert!(!sign_chosen(&mut s, "123456", Purpose::SignIn, &challenge).unwrap().is_empty());
        let err = sign_chosen(&mut s, "000000", Purpose::SignIn, &challenge).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::WrongPin { tries_left: Some(2) });
        let err = sign_chosen(&mut s, "000000", Purpose::SignIn, &challenge).unwrap_err();
        assert!(err.message.contains("1 try left"), "{}", err.message);
        assert_eq!(
            sign_chosen(&mut s, "000000", Purpose::SignIn, &challenge).unwrap_err().code,
            AgentErrorCode::PinBlocked
        );
        assert_eq!(card_identity(&mut s).unwrap().pin, PinState::Blocked);
    }

    #[test]
    fn a_pin_goes_only_to_the_card_that_was_chosen() {
        let (mut s, _dir) = personalised();
        let other = CardGuid::from_bytes([0x5a; 16]);
        let err = sign_with_pin(&mut s, &other, "000000", Purpose::SignIn, &[0; 32]).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::WrongCard);
        assert_eq!(s.transport_mut().state().pin_tries_left, 3, "the other card spent no try");
        assert!(sign_chosen(&mut s, "123456", Purpose::SignIn, &[0; 32]).is_ok());
    }

    #[test]
    fn identity_names_the_holder_from_the_certificate() {
        let (mut s, _dir) = personalised();
        assert_eq!(card_identity(&mut s).unwrap().holder.as_deref(), Some("Test Holder"));
    }

    #[test]
    fn a_malformed_pin_is_refused_before_the_card_sees_it() {
        let (mut s, _dir) = personalised();
        assert_eq!(
            sign_chosen(&mut s, "12ab56", Purpose::SignIn, &[0; 32]).unwrap_err().code,
            AgentErrorCode::InvalidPin
        );
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
        sign_chosen(&mut s, "24681357", Purpose::SignIn, &[2; 32]).unwrap();
    }

    #[test]
    fn unlock_resets_the_pin_rotates_the_puk_and_proves_the_new_pin() {
        let (mut s, _dir) = personalised();
        block_pin(&mut s);
        let guid = card_identity(&mut s).unwrap().guid;
        let report = unlock(&mut s, &secrets_for(&guid, &["12345678"], "55667788"), "97531864", NOW).unwrap();
        assert_eq!(report.failure, None);
        assert!(report.pin_reset && report.proof.is_some());
        assert_eq!(report.puk, PukOnCard::Rotated);
        let state = s.transport_mut().state();
        assert_eq!(
            (state.pin.as_str(), state.puk.as_str(), state.pin_tries_left),
            ("97531864", "55667788", 3)
        );
        assert_eq!(card_identity(&mut s).unwrap().pin, PinState::Ready { tries_left: Some(3) });
    }

    #[test]
    fn the_second_candidate_is_tried_only_when_a_miss_cannot_block_the_puk() {
        let (mut s, _dir) = personalised_with_puk("11112222");
        let guid = card_identity(&mut s).unwrap().guid;
        let secrets = secrets_for(&guid, &["12345678", "11112222"], "33334444");
        let report = unlock(&mut s, &secrets, "97531864", NOW).unwrap();
        assert_eq!((report.puk, report.failure), (PukOnCard::Rotated, None));
        assert_eq!(s.transport_mut().state().puk_tries_left, 3, "the right PUK restored the counter");

        // Two tries left: one miss leaves one, so the second candidate is not risked.
        let (mut s, _dir) = personalised_with_puk("11112222");
        s.select().unwrap();
        let _ =
            s.reset_retry_counter(&PaddedPin::new("99999999").unwrap(), &PaddedPin::new("123456").unwrap());
        assert_eq!(s.transport_mut().state().puk_tries_left, 2);
        let guid = card_identity(&mut s).unwrap().guid;
        let secrets = secrets_for(&guid, &["12345678", "11112222"], "33334444");
        let report = unlock(&mut s, &secrets, "97531864", NOW).unwrap();
        assert_eq!(report.puk, PukOnCard::Unchanged);
        assert!(!report.pin_reset);
        let failure = report.failure.unwrap();
        assert_eq!(failure.step, UnlockStep::ResetRetryCounter);
        assert_eq!(failure.error.code, AgentErrorCode::WrongPuk { tries_left: Some(1) });
        assert_eq!(s.transport_mut().state().puk, "11112222");
    }

    #[test]
    fn a_card_that_answers_a_bare_6300_is_never_risked_with_a_second_guess() {
        let (mut s, _dir) = personalised_with_puk("11112222");
        s.transport_mut().state_mut().quirks.bare_6300 = true;
        let guid = card_identity(&mut s).unwrap().guid;
        let secrets = secrets_for(&guid, &["12345678", "11112222"], "33334444");
        let report = unlock(&mut s, &secrets, "97531864", NOW).unwrap();
        let failure = report.failure.unwrap();
        // Without a count, one more miss might block the PUK for good: the agent stops and says so.
        assert_eq!(failure.error.code, AgentErrorCode::WrongPuk { tries_left: None });
        assert!(failure.error.message.contains("Contact your RA"), "{}", failure.error.message);
        let state = s.transport_mut().state();
        assert_eq!((state.puk.as_str(), state.puk_tries_left), ("11112222", 2), "one try, not two");
        // With the PUK the service holds first, it unlocks.
        let secrets = secrets_for(&guid, &["11112222"], "33334444");
        let report = unlock(&mut s, &secrets, "97531864", NOW).unwrap();
        assert_eq!((report.puk, report.failure), (PukOnCard::Rotated, None));
    }

    #[test]
    fn another_card_expired_secrets_or_bad_input_leave_the_card_untouched() {
        let (mut s, _dir) = personalised();
        block_pin(&mut s);
        let guid = card_identity(&mut s).unwrap().guid;
        let other = secrets_for("00000000000000000000000000000000", &["12345678"], "55667788");
        assert_eq!(unlock(&mut s, &other, "97531864", NOW).unwrap_err().code, AgentErrorCode::WrongCard);
        let secrets = secrets_for(&guid, &["12345678"], "55667788");
        let late = unlock(&mut s, &secrets, "97531864", NOW + 301).unwrap_err();
        assert_eq!(late.code, AgentErrorCode::EnvelopeRejected);
        assert_eq!(unlock(&mut s, &secrets, "12ab", NOW).unwrap_err().code, AgentErrorCode::InvalidPin);
        let trivial = unlock(&mut s, &secrets, "123456", NOW).unwrap_err();
        assert_eq!(trivial.code, AgentErrorCode::InvalidPin);
        assert!(trivial.message.contains("run of digits"), "{}", trivial.message);
        let state = s.transport_mut().state();
        assert_eq!((state.puk.as_str(), state.puk_tries_left, state.pin_tries_left), ("12345678", 3, 0));
    }

    #[test]
    fn a_card_pulled_out_during_the_puk_change_is_reported_as_unknown() {
        for card_saw_it in [true, false] {
            let (mut s, _dir) = personalised();
            block_pin(&mut s);
            let guid = card_identity(&mut s).unwrap().guid;
            let card = s.into_inner();
            let mut s = PivSession::new(Unplugged {
                card,
                ins: piv::ids::ins::CHANGE_REFERENCE_DATA,
                card_saw_it,
                gone: false,
            });
            let report =
                unlock(&mut s, &secrets_for(&guid, &["12345678"], "55667788"), "97531864", NOW).unwrap();
            assert!(report.pin_reset);
            assert_eq!(report.puk, PukOnCard::Unknown { index: 0 });
            let failure = report.failure.unwrap();
            assert_eq!(
                (failure.step, failure.error.code),
                (UnlockStep::ChangePuk, AgentErrorCode::CardRemoved)
            );
            let expected = if card_saw_it { "55667788" } else { "12345678" };
            assert_eq!(s.transport_mut().card.state().puk, expected);
        }
    }

    #[test]
    fn the_offer_signature_binds_the_key_to_the_card() {
        let (mut s, _dir) = personalised();
        let key = envelope::OneTimeKey::generate();
        let (guid, signature) = begin_unlock(&mut s, &[5; 32], &key.public_key_bytes()).unwrap();
        assert_eq!(guid, card_identity(&mut s).unwrap().guid);
        assert!(!signature.is_empty());
    }

    #[test]
    fn challenges_must_be_32_bytes() {
        assert!(challenge_from(&STANDARD.encode([0u8; 32])).is_ok());
        assert!(challenge_from(&STANDARD.encode([0u8; 31])).is_err());
        assert!(challenge_from("not base64!").is_err());
    }
}
