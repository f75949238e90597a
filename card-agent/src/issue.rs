//! Issuing a blank card (RA console), in the agent's two card steps. The backend decides
//! everything secret — the management keys, the PUKs, the GUID. It seals the card's current
//! credentials to this connection's first one-time key ([`IssueSecrets`]), and the new ones
//! ([`IssueNewSecrets`]) only to a second key that the card's freshly generated 9E key signed
//! for, so the new PUK and management key can reach nobody but the agent holding that card. The
//! page relays only ciphertext, public keys, certificates and the PIN the holder types. The agent
//! runs this fixed procedure and nothing else: a page cannot make it send any other command.
//!
//! Each step starts with SELECT and re-checks that the card is the one that made the offer.

use base64::{engine::general_purpose::STANDARD, Engine};
use der::Decode;
use envelope::{EnvelopeError, IssueNewSecrets, IssueSecrets, ManagementKeySecret, Purpose};
use piv::{
    host::{HostError, PivSession, Transport},
    ids::{alg, key, object},
    mgmt::{decode_hex, ManagementKey, ALGORITHMS},
    objects::{certificate_object, chuid},
    pin::PaddedPin,
};
use protocol::agent::{
    AgentErrorCode, IssueFailure, IssueReadiness, IssueReport, IssueStep, KeyAttestation, PukOnCard,
};
use protocol::card_guid::CardGuid;
use zeroize::Zeroizing;

use crate::ops::{self, error, first_accepted_puk, from_host, OpResult, Procedure};

/// What step 2 left for step 3: which management key opened the card, the new public points, and
/// the new 9E key's signature for the agent's second one-time key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKeys {
    pub management_key_index: usize,
    pub piv_auth_point: Vec<u8>,
    pub card_auth_point: Vec<u8>,
    pub offer_signature: Vec<u8>,
    /// The card's attestation of both keys, if it has ATTEST.
    pub attestation: Option<KeyAttestation>,
}

/// What step 1 found: the card's GUID if it has a CHUID (a card whose last issuance stopped
/// half-way, or a maker's), a half-issued card's 9E signature for the agent's key (so that the
/// backend releases the recorded secrets only to this card's agent), and whether the card can be
/// issued at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub guid: Option<CardGuid>,
    pub resume_signature: Option<Vec<u8>>,
    pub readiness: IssueReadiness,
}

/// Step 1: read the card and sign for `offer_key` if it can; nothing is written and no PIN or
/// PUK try is spent (only the public factory management keys are tried, which costs nothing).
pub fn begin<T: Transport>(session: &mut PivSession<T>, offer_key: &[u8; 32]) -> OpResult<Offer> {
    session.select().map_err(from_host)?;
    let guid = ops::read_guid_if_any(session)?;
    let resume_signature = match &guid {
        None => None,
        Some(guid) => {
            let digest = envelope::resume_offer_digest(offer_key, guid);
            match session.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, &digest) {
                Ok(signature) => Some(signature),
                // A maker's CHUID, or a card whose keys were never generated: nothing to sign with.
                Err(HostError::Status { .. } | HostError::SecurityNotSatisfied) => None,
                Err(other) => return Err(from_host(other)),
            }
        }
    };
    let readiness = readiness(session).map_err(from_host)?;
    Ok(Offer { guid, resume_signature, readiness })
}

fn readiness<T: Transport>(session: &mut PivSession<T>) -> Result<IssueReadiness, HostError> {
    let factory_keys: Vec<ManagementKey> =
        ALGORITHMS.iter().filter_map(|&algorithm| ManagementKey::factory(algorithm).ok()).collect();
    let factory_key = first_accepted(session, &factory_keys)?.map(|index| factory_keys[index].algorithm());
    let (certificates, factory_puk) = others_credentials(session)?;
    Ok(IssueReadiness { factory_key, factory_puk, attests: attests(session)?, certificates })
}

/// Signs of someone else's credentials, read without using them: whether the card holds a 9A or
/// 9E certificate, and whether its PUK is still the factory one (where the card says).
fn others_credentials<T: Transport>(session: &mut PivSession<T>) -> Result<(bool, Option<bool>), HostError> {
    let mut certificates = false;
    for tag in [object::CERT_PIV_AUTH, object::CERT_CARD_AUTH] {
        certificates |= session.get_data(tag)?.is_some();
    }
    let factory_puk = session.metadata(key::PUK)?.and_then(|puk| puk.is_default);
    Ok((certificates, factory_puk))
}

/// Whether the card has an attestation key: its maker's certificate for it is on the card.
fn attests<T: Transport>(session: &mut PivSession<T>) -> Result<bool, HostError> {
    Ok(session.get_data(object::ATTESTATION_CERTIFICATE)?.is_some())
}

/// The index of the first management key the card accepts. Where the card says which algorithm
/// its key has (GET METADATA), only keys of that algorithm are tried; elsewhere each is tried in
/// turn: PIV cards have no retry counter on the management key, and an algorithm the card does
/// not take is answered `6A86` without any effect.
fn first_accepted<T: Transport>(
    session: &mut PivSession<T>,
    candidates: &[ManagementKey],
) -> Result<Option<usize>, HostError> {
    let metadata = session.metadata(key::CARD_MANAGEMENT)?;
    let algorithm = metadata.and_then(|m| m.algorithm);
    for (index, candidate) in candidates.iter().enumerate() {
        if algorithm.is_some_and(|a| a != candidate.algorithm()) {
            continue;
        }
        match session.authenticate_management(candidate) {
            Ok(()) => return Ok(Some(index)),
            Err(HostError::ManagementKeyRejected | HostError::SecurityNotSatisfied) => {}
            Err(HostError::Status { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(None)
}

/// The words for a card another system issued that kept its factory management key.
pub fn someone_elses_card() -> protocol::agent::AgentError {
    error(
        AgentErrorCode::ManagementKeyRejected,
        "This card holds certificates this service did not give it: another system issued it, so it \
         cannot be issued here. Nothing was written to it. Reset it to its factory state with the tools \
         of the system that issued it, or use a blank card.",
    )
}

/// The words for a card that says its PUK is no longer the factory one.
pub fn foreign_puk() -> protocol::agent::AgentError {
    error(
        AgentErrorCode::ManagementKeyRejected,
        "This card's unlock key (PUK) is not the factory one and this service does not hold it, so it \
         cannot be issued here. Nothing was written to it. Reset it to its factory state, or use a \
         blank card.",
    )
}

/// The words for a card whose management key is neither a factory one nor one the service holds.
pub fn foreign_management_key() -> protocol::agent::AgentError {
    error(
        AgentErrorCode::ManagementKeyRejected,
        "This card's management key is not a factory default and this service does not hold it, so it \
         cannot be issued here. Nothing was written to it. Reset it to its factory state with the tools \
         of the system that issued it, or use a blank card.",
    )
}

/// Step 2: authenticate with the first management key the card accepts, GENERATE P-256 keys in
/// 9A and 9E, and have the new 9E key sign for `offer_key` (the agent's second one-time key).
pub fn generate_keys<T: Transport>(
    session: &mut PivSession<T>,
    secrets: &IssueSecrets,
    offer_key: &[u8; 32],
    now_unix: u64,
) -> OpResult<GeneratedKeys> {
    let candidates = management_keys(&secrets.current_management_keys)?;
    same_card(session, secrets, now_unix)?;
    // Refused before anything is generated: the backend would not certify keys without it.
    if secrets.attestation_required && !attests(session).map_err(from_host)? {
        return Err(error(
            AgentErrorCode::AttestationUnavailable,
            "This card cannot show that its keys were made on it (it has no attestation), and this \
             service only issues cards that can. Nothing was written to it. Use a card from a supported maker.",
        ));
    }
    // A card the service has no record of must hold no one's credentials: no certificates, and
    // no PUK it says was changed. (A half-issued card of ours keeps its GUID, and may have both.)
    let resumed = secrets.offered_guid.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(&secrets.new_guid));
    if !resumed {
        // Only what step 1 read that is not tried again below (the factory keys are).
        let (certificates, factory_puk) = others_credentials(session).map_err(from_host)?;
        if certificates {
            return Err(someone_elses_card());
        }
        if factory_puk == Some(false) {
            return Err(foreign_puk());
        }
    }
    let management_key_index =
        first_accepted(session, &candidates).map_err(from_host)?.ok_or_else(foreign_management_key)?;
    let piv_auth_point = session.generate_ec(key::PIV_AUTHENTICATION, alg::ECC_P256).map_err(from_host)?;
    let card_auth_point = session.generate_ec(key::CARD_AUTHENTICATION, alg::ECC_P256).map_err(from_host)?;
    let digest = envelope::issue_offer_digest(&secrets.issuance_id, offer_key, &secrets.new_guid);
    let offer_signature =
        session.sign_ec(key::CARD_AUTHENTICATION, alg::ECC_P256, &digest).map_err(from_host)?;
    let attestation = attest(session).map_err(from_host)?;
    Ok(GeneratedKeys { management_key_index, piv_auth_point, card_auth_point, offer_signature, attestation })
}

/// The card's certificates for the keys just generated in 9A and 9E and its F9 certificate, or
/// `None` for a card without attestation (the backend decides whether that will do).
fn attest<T: Transport>(session: &mut PivSession<T>) -> Result<Option<KeyAttestation>, HostError> {
    let Some(piv_auth) = session.attest(key::PIV_AUTHENTICATION)? else { return Ok(None) };
    let Some(card_auth) = session.attest(key::CARD_AUTHENTICATION)? else { return Ok(None) };
    let device = session.get_data(object::ATTESTATION_CERTIFICATE)?;
    let Some(device) = device.and_then(|o| piv::tlv::find(&o, 0x70).ok().flatten().map(<[u8]>::to_vec))
    else {
        return Ok(None);
    };
    Ok(Some(KeyAttestation {
        piv_auth: STANDARD.encode(piv_auth),
        card_auth: STANDARD.encode(card_auth),
        device_certificate: STANDARD.encode(device),
    }))
}

/// Step 3: write the certificates and the CHUID, rotate the PUK, set the holder's PIN, change
/// the management key and prove it all with 9A (after VERIFY) and 9E signatures over
/// `challenge`.
///
/// An `Err` means the card was not changed by this step. Once a write has been sent the answer is
/// a report, stopped at the first failed step, so the backend knows what the card holds.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one thing the step needs; a struct would only rename them"
)]
pub fn finish<T: Transport>(
    session: &mut PivSession<T>,
    secrets: &IssueSecrets,
    new: &IssueNewSecrets,
    keys: &GeneratedKeys,
    certificates: [&[u8]; 2],
    pin: &str,
    challenge: &[u8],
    now_unix: u64,
) -> OpResult<IssueReport> {
    let pin_padded = ops::pin_from(pin)?;
    // A page cannot set a passcode the service's rules refuse, whatever it sends.
    protocol::passcode::check_strength(pin).map_err(|p| error(AgentErrorCode::InvalidPin, p.message()))?;
    let expiry = certifies(certificates[0], &keys.piv_auth_point)?;
    certifies(certificates[1], &keys.card_auth_point)?;
    let bad_contents = || refused(EnvelopeError::BadContents);
    let guid_bytes: [u8; 16] =
        decode_hex(&secrets.new_guid).and_then(|g| g.try_into().ok()).ok_or_else(bad_contents)?;
    let puks = secrets
        .current_puks
        .iter()
        .map(|p| PaddedPin::new(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad_contents())?;
    new.check(&secrets.issuance_id, &secrets.new_guid, now_unix).map_err(refused)?;
    let new_puk = PaddedPin::new(&new.new_puk).map_err(|_| bad_contents())?;
    let management = management_keys(&secrets.current_management_keys)?;
    let current_management = management.get(keys.management_key_index).ok_or_else(bad_contents)?;
    let new_management = new_management_key(&new.new_management_key, current_management.algorithm())?;

    same_card(session, secrets, now_unix)?;
    session.authenticate_management(current_management).map_err(from_host)?;

    let mut report = IssueReport {
        guid: CardGuid::from_bytes(guid_bytes),
        puk: PukOnCard::Unchanged,
        pin_set: false,
        management_key_rotated: false,
        management_key_algorithm: None,
        piv_auth_proof: None,
        card_auth_proof: None,
        failure: None,
    };
    let fail = |mut report: IssueReport, step, error| {
        report.failure = Some(IssueFailure { step, error });
        Ok(report)
    };

    for (object, der) in [(object::CERT_PIV_AUTH, certificates[0]), (object::CERT_CARD_AUTH, certificates[1])]
    {
        if let Err(e) = session.put_data(object, &certificate_object(der)) {
            return fail(report, IssueStep::WriteCertificates, from_host(e));
        }
    }
    if let Err(e) = session.put_data(object::CHUID, &chuid(&guid_bytes, &expiry)) {
        return fail(report, IssueStep::WriteChuid, from_host(e));
    }

    match first_accepted_puk(&puks, |old| session.change_reference(key::PUK, old, &new_puk)) {
        Ok(_) => report.puk = PukOnCard::Rotated,
        Err(refusal) => {
            // A lost card may or may not have taken the change.
            if let Some(e) = &refusal {
                if e.code == AgentErrorCode::CardRemoved {
                    report.puk = PukOnCard::Unknown { index: 0 };
                }
            }
            return fail(report, IssueStep::ChangePuk, refusal.unwrap_or_else(bad_contents));
        }
    }

    if let Err(e) = session.reset_retry_counter(&new_puk, &pin_padded) {
        return fail(report, IssueStep::SetPin, from_host(e));
    }
    report.pin_set = true;
    crate::crash::point("issue.after_pin_set");

    if let Err(e) = session.set_management_key(&new_management) {
        return fail(report, IssueStep::ChangeManagementKey, from_host(e));
    }
    report.management_key_rotated = true;
    report.management_key_algorithm = Some(new_management.algorithm());

    if let Err(e) = session.verify_pin(&pin_padded) {
        return fail(report, IssueStep::SignProof, from_host(e));
    }
    let challenge = envelope::issue_proof_challenge(challenge, new_management.algorithm());
    let signed = ops::sign_for(session, key::PIV_AUTHENTICATION, Purpose::IssueProofPivAuth, &challenge);
    let _ = session.logout();
    match signed.and_then(|piv| {
        let card = ops::sign_for(session, key::CARD_AUTHENTICATION, Purpose::IssueProofCardAuth, &challenge)?;
        Ok((piv, card))
    }) {
        Ok((piv, card)) => {
            report.piv_auth_proof = Some(STANDARD.encode(piv));
            report.card_auth_proof = Some(STANDARD.encode(card));
            Ok(report)
        }
        Err(e) => fail(report, IssueStep::SignProof, from_host(e)),
    }
}

/// SELECT, and the card's GUID (or its absence) still matches the offer and the secrets are fresh.
fn same_card<T: Transport>(
    session: &mut PivSession<T>,
    secrets: &IssueSecrets,
    now_unix: u64,
) -> OpResult<()> {
    session.select().map_err(from_host)?;
    let guid = ops::read_guid_if_any(session)?;
    secrets.check(guid.as_deref(), now_unix).map_err(refused)
}

/// Envelope problems in an issuance's words; none of them has touched the card.
pub fn refused(problem: EnvelopeError) -> protocol::agent::AgentError {
    ops::from_envelope(problem, Procedure::Issuance)
}

fn management_key(secret: &ManagementKeySecret) -> OpResult<ManagementKey> {
    let bytes =
        Zeroizing::new(decode_hex(&secret.key_hex).ok_or_else(|| refused(EnvelopeError::BadContents))?);
    ManagementKey::new(secret.algorithm, &bytes).map_err(|_| refused(EnvelopeError::BadContents))
}

/// The new key under the algorithm of the key the card accepted (an algorithm it certainly
/// takes), from the first bytes of the secret: a card whose factory key is AES-192 stays on
/// AES-192, one on 3DES stays on 3DES.
fn new_management_key(secret: &ManagementKeySecret, card_algorithm: u8) -> OpResult<ManagementKey> {
    let material =
        Zeroizing::new(decode_hex(&secret.key_hex).ok_or_else(|| refused(EnvelopeError::BadContents))?);
    ManagementKey::from_material(card_algorithm, &material).map_err(|_| refused(EnvelopeError::BadContents))
}

fn management_keys(secrets: &[ManagementKeySecret]) -> OpResult<Vec<ManagementKey>> {
    secrets.iter().map(management_key).collect()
}

/// Checks that `der` is a certificate of the public `point` generated on the card, and returns
/// its expiry as the CHUID wants it (`YYYYMMDD`).
fn certifies(der: &[u8], point: &[u8]) -> OpResult<String> {
    let mismatch = || {
        error(
            AgentErrorCode::CertificateMismatch,
            "The service sent a certificate that is not for this card's key. Start again.",
        )
    };
    let certificate = x509_cert::Certificate::from_der(der).map_err(|_| mismatch())?;
    let tbs = &certificate.tbs_certificate;
    if tbs.subject_public_key_info.subject_public_key.raw_bytes() != point {
        return Err(mismatch());
    }
    let expiry = tbs.validity.not_after.to_date_time();
    Ok(format!("{:04}{:02}{:02}", expiry.year(), expiry.month(), expiry.day()))
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use card_ca::CertificateAuthority;
    use der::Encode;
    use piv::{host::Transport, ids::ins, mgmt::encode_hex};
    use protocol::agent::{PinState, UnlockReport};
    use virtual_card::{card::Card, state::CardState};

    use super::*;
    use crate::test_support::Unplugged;

    const NOW: u64 = 1_800_000_000;
    const GUID: &str = "0123456789abcdef0123456789abcdef";
    /// 32 bytes, as the backend sends; a 3DES or AES-192 card takes the first 24.
    const NEW_MGMT: &str = "a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8c1c2c3c4c5c6c7c8d1d2d3d4d5d6d7d8";
    const NEW_MGMT_24: &str = "a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8c1c2c3c4c5c6c7c8";

    fn blank() -> PivSession<Card> {
        PivSession::new(Card::new(
            CardState::blank("123456", "12345678", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY),
            None,
        ))
    }

    fn mgmt(hex: &str) -> ManagementKeySecret {
        ManagementKeySecret { algorithm: alg::TDES, key_hex: Zeroizing::new(hex.into()) }
    }

    fn secrets(offered: Option<&str>, mgmt_keys: &[&str], puks: &[&str]) -> IssueSecrets {
        IssueSecrets {
            issuance_id: "test".into(),
            offered_guid: offered.map(Into::into),
            new_guid: GUID.into(),
            expires_at: NOW + 600,
            issued_at: 0,
            current_management_keys: mgmt_keys.iter().map(|k| mgmt(k)).collect(),
            current_puks: puks.iter().map(|p| Zeroizing::new((*p).to_owned())).collect(),
            attestation_required: false,
        }
    }

    fn new_secrets() -> IssueNewSecrets {
        IssueNewSecrets {
            issuance_id: "test".into(),
            guid: GUID.into(),
            expires_at: NOW + 600,
            issued_at: 0,
            new_management_key: ManagementKeySecret {
                algorithm: alg::AES_256,
                key_hex: Zeroizing::new(NEW_MGMT.into()),
            },
            new_puk: Zeroizing::new("86420975".into()),
        }
    }

    const OFFER_KEY: [u8; 32] = [5; 32];

    /// The backend's check of step 2's signature, with the card's new 9E key.
    fn vouches(keys: &GeneratedKeys) -> bool {
        use p256::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
        let key = VerifyingKey::from_sec1_bytes(&keys.card_auth_point).unwrap();
        let signature = Signature::from_der(&keys.offer_signature).unwrap();
        key.verify_prehash(&envelope::issue_offer_digest("test", &OFFER_KEY, GUID), &signature).is_ok()
    }

    fn default_mgmt() -> String {
        encode_hex(&piv::mgmt::DEFAULT_3DES_KEY)
    }

    fn certificates(ca: &CertificateAuthority, keys: &GeneratedKeys) -> [Vec<u8>; 2] {
        [
            ca.issue(&keys.piv_auth_point, "Ann Example", "PIV Authentication").unwrap().to_der().unwrap(),
            ca.issue(&keys.card_auth_point, "Ann Example", "Card Authentication").unwrap().to_der().unwrap(),
        ]
    }

    fn issue<T: Transport>(
        s: &mut PivSession<T>,
        secrets: &IssueSecrets,
        ca: &CertificateAuthority,
    ) -> OpResult<IssueReport> {
        let keys = generate_keys(s, secrets, &OFFER_KEY, NOW)?;
        assert!(vouches(&keys), "the new 9E key signed for the second one-time key");
        let [piv, card] = certificates(ca, &keys);
        finish(s, secrets, &new_secrets(), &keys, [&piv, &card], "97531864", &[3; 32], NOW)
    }

    #[test]
    fn a_blank_card_is_issued_with_the_holders_pin_and_new_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut s = blank();
        let offer = begin(&mut s, &OFFER_KEY).unwrap();
        assert_eq!((offer.guid, offer.resume_signature), (None, None));
        let ready = IssueReadiness {
            factory_key: Some(alg::TDES),
            factory_puk: None,
            attests: false,
            certificates: false,
        };
        assert_eq!(offer.readiness, ready);
        let report = issue(&mut s, &secrets(None, &[&default_mgmt()], &["12345678"]), &ca).unwrap();
        assert_eq!(report.failure, None);
        assert_eq!(report.guid, GUID);
        assert!(report.pin_set && report.management_key_rotated && report.puk == PukOnCard::Rotated);
        assert_eq!(report.management_key_algorithm, Some(alg::TDES));
        assert!(report.piv_auth_proof.is_some() && report.card_auth_proof.is_some());
        let state = s.transport_mut().state();
        assert_eq!((state.pin.as_str(), state.puk.as_str()), ("97531864", "86420975"));
        assert_eq!(state.mgmt_key_hex, NEW_MGMT_24);
        let identity = ops::card_identity(&mut s).unwrap();
        assert_eq!(identity.guid, GUID);
        assert_eq!(identity.pin, PinState::Ready { tries_left: Some(3) });
        assert!(identity.piv_auth_certificate.is_some() && identity.card_auth_certificate.is_some());
        crate::test_support::sign_chosen(&mut s, "97531864", Purpose::SignIn, &[1; 32]).unwrap();
    }

    #[test]
    fn a_card_whose_factory_key_is_aes_192_is_issued_and_stays_on_aes_192() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut s = PivSession::new(Card::new(
            CardState::blank("123456", "12345678", alg::AES_192, &piv::mgmt::DEFAULT_3DES_KEY),
            None,
        ));
        let mut candidates = secrets(None, &[&default_mgmt()], &["12345678"]);
        let aes = ManagementKeySecret { algorithm: alg::AES_192, key_hex: Zeroizing::new(default_mgmt()) };
        candidates.current_management_keys.push(aes);
        let report = issue(&mut s, &candidates, &ca).unwrap();
        assert_eq!((report.failure, report.management_key_algorithm), (None, Some(alg::AES_192)));
        let state = s.transport_mut().state();
        assert_eq!((state.mgmt_algorithm, state.mgmt_key_hex.as_str()), (alg::AES_192, NEW_MGMT_24));
    }

    /// What the backend offers for a card without a recorded issuance: the factory key under
    /// each algorithm.
    fn factory_candidates(offered: Option<&str>) -> IssueSecrets {
        let mut secrets = secrets(offered, &[], &["12345678"]);
        secrets.current_management_keys = ALGORITHMS
            .iter()
            .map(|&algorithm| ManagementKeySecret {
                algorithm,
                key_hex: Zeroizing::new(encode_hex(ManagementKey::factory(algorithm).unwrap().key_bytes())),
            })
            .collect();
        secrets
    }

    /// An unlock as the backend drives it: the PUK it holds, a new one, the holder's new PIN.
    fn unlock(s: &mut PivSession<Card>, current_puk: &str, new_puk: &str, pin: &str) -> UnlockReport {
        let guid = ops::card_identity(s).unwrap().guid;
        let secrets = envelope::UnlockSecrets {
            guid: guid.to_string(),
            expires_at: NOW + 300,
            issued_at: 0,
            current_puks: vec![Zeroizing::new(current_puk.into())],
            new_puk: Zeroizing::new(new_puk.into()),
            proof_challenge: STANDARD.encode([7u8; 32]),
        };
        ops::unlock(s, &secrets, pin, NOW).unwrap()
    }

    #[test]
    fn each_makers_card_is_issued_then_signs_in_and_is_unlocked_twice_with_the_puk_it_was_given() {
        use virtual_card::quirks::Profile;
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        for profile in Profile::ALL {
            let name = profile.name();
            let mut s = PivSession::new(Card::new(profile.blank_card(), None));
            let offer = begin(&mut s, &OFFER_KEY).unwrap();
            assert_eq!(offer.guid.is_some(), profile.factory_chuid(), "{name}");
            assert_eq!(offer.resume_signature, None, "{name}: a maker's CHUID has no key to sign with");
            assert_eq!(offer.readiness.factory_key, Some(profile.factory_algorithm()), "{name}");
            let metadata = profile.quirks().metadata;
            assert_eq!(offer.readiness.factory_puk, metadata.then_some(true), "{name}");

            let offered = offer.guid.map(|g| g.to_string());
            let report = issue(&mut s, &factory_candidates(offered.as_deref()), &ca).unwrap();
            assert_eq!(report.failure, None, "{name}");
            assert_eq!(report.management_key_algorithm, Some(profile.factory_algorithm()), "{name}");
            let state = s.transport_mut().state().clone();
            assert_eq!(state.mgmt_algorithm, profile.factory_algorithm(), "{name}");
            assert!(NEW_MGMT.starts_with(&state.mgmt_key_hex), "{name}: the new key, not the factory one");
            assert_eq!(ops::card_identity(&mut s).unwrap().guid, GUID, "{name}: our CHUID over the maker's");
            crate::test_support::sign_chosen(&mut s, "97531864", Purpose::SignIn, &[1; 32]).unwrap();

            // Locked, then unlocked twice: each time with the PUK the previous step set.
            for _ in 0..3 {
                let _ = crate::test_support::sign_chosen(&mut s, "000000", Purpose::SignIn, &[1; 32]);
            }
            let first = unlock(&mut s, "86420975", "11223344", "24681357");
            assert_eq!((first.failure, first.puk), (None, PukOnCard::Rotated), "{name}");
            let second = unlock(&mut s, "11223344", "55667788", "13572468");
            assert_eq!((second.failure, second.puk), (None, PukOnCard::Rotated), "{name}");
            let state = s.transport_mut().state();
            assert_eq!((state.puk.as_str(), state.pin.as_str()), ("55667788", "13572468"), "{name}");
            let tries = profile.quirks().puk_tries_after_change.unwrap_or(3);
            assert_eq!(state.puk_tries_left, tries, "{name}");
        }
    }

    #[test]
    fn a_card_with_a_management_key_of_someone_elses_is_found_out_at_the_start_and_left_untouched() {
        let foreign = CardState::blank("123456", "12345678", alg::AES_128, &[0x3C; 16]);
        let mut s = PivSession::new(Card::new(foreign.clone(), None));
        let offer = begin(&mut s, &OFFER_KEY).unwrap();
        assert_eq!(offer.readiness.factory_key, None);
        let err = generate_keys(&mut s, &factory_candidates(None), &OFFER_KEY, NOW).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::ManagementKeyRejected);
        assert!(err.message.contains("not a factory default"), "{}", err.message);
        assert_eq!(s.transport_mut().state(), &foreign, "nothing was written");
        // A card that says its PUK was changed is found out too, without a try spent.
        let mut changed = virtual_card::quirks::Profile::Yubikey57.blank_card();
        changed.puk = "24682468".into();
        let mut s = PivSession::new(Card::new(changed.clone(), None));
        assert_eq!(begin(&mut s, &OFFER_KEY).unwrap().readiness.factory_puk, Some(false));
        // …and refused before anything is written, whatever a page told the backend.
        let err = generate_keys(&mut s, &factory_candidates(None), &OFFER_KEY, NOW).unwrap_err();
        assert!(
            err.message.contains("PUK") && err.message.contains("Nothing was written"),
            "{}",
            err.message
        );
        assert_eq!(s.transport_mut().state(), &changed);
    }

    #[test]
    fn a_card_another_system_issued_on_the_factory_management_key_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut s = blank();
        virtual_card::personalise::personalise(&mut s, &ManagementKey::default_3des(), &ca, "Their Holder")
            .unwrap();
        let theirs = s.transport_mut().state().clone();
        let offer = begin(&mut s, &OFFER_KEY).unwrap();
        assert_eq!((offer.readiness.factory_key, offer.readiness.certificates), (Some(alg::TDES), true));
        let guid = offer.guid.unwrap().to_string();
        let err = generate_keys(&mut s, &factory_candidates(Some(&guid)), &OFFER_KEY, NOW).unwrap_err();
        assert!(err.message.contains("another system issued it"), "{}", err.message);
        assert_eq!(s.transport_mut().state(), &theirs, "nothing was written");
    }

    #[test]
    fn where_attestation_is_required_a_card_without_it_is_refused_before_any_key_is_made() {
        let mut s = blank();
        assert!(!begin(&mut s, &OFFER_KEY).unwrap().readiness.attests);
        let mut required = factory_candidates(None);
        required.attestation_required = true;
        let err = generate_keys(&mut s, &required, &OFFER_KEY, NOW).unwrap_err();
        assert_eq!(err.code, AgentErrorCode::AttestationUnavailable);
        assert!(s.transport_mut().state().keys.is_empty(), "no key was generated");
    }

    #[test]
    fn a_certificate_for_another_key_or_a_weak_pin_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut s = blank();
        let secrets = secrets(None, &[&default_mgmt()], &["12345678"]);
        let keys = generate_keys(&mut s, &secrets, &OFFER_KEY, NOW).unwrap();
        let [piv, card] = certificates(&ca, &keys);
        let new = new_secrets();
        let swapped =
            finish(&mut s, &secrets, &new, &keys, [&card, &piv], "97531864", &[3; 32], NOW).unwrap_err();
        assert_eq!(swapped.code, AgentErrorCode::CertificateMismatch);
        let weak = finish(&mut s, &secrets, &new, &keys, [&piv, &card], "123456", &[3; 32], NOW).unwrap_err();
        assert_eq!(weak.code, AgentErrorCode::InvalidPin);
        let mut other = new_secrets();
        other.issuance_id = "another".into();
        let foreign =
            finish(&mut s, &secrets, &other, &keys, [&piv, &card], "97531864", &[3; 32], NOW).unwrap_err();
        assert_eq!(foreign.code, AgentErrorCode::WrongCard);
        let late = finish(&mut s, &secrets, &new, &keys, [&piv, &card], "97531864", &[3; 32], NOW + 601)
            .unwrap_err();
        assert_eq!(late.code, AgentErrorCode::EnvelopeRejected);
        assert!(late.message.contains("issuance took too long"), "{}", late.message);
        let state = s.transport_mut().state();
        assert!(state.object(object::CHUID).is_none() && state.object(object::CERT_PIV_AUTH).is_none());
        assert_eq!((state.pin.as_str(), state.puk.as_str()), ("123456", "12345678"));
    }

    #[test]
    fn a_card_without_blank_credentials_is_refused_untouched() {
        let mut s =
            PivSession::new(Card::new(CardState::blank("123456", "12345678", alg::TDES, &[9; 24]), None));
        let err = generate_keys(&mut s, &secrets(None, &[&default_mgmt()], &["12345678"]), &OFFER_KEY, NOW)
            .unwrap_err();
        assert_eq!(err.code, AgentErrorCode::ManagementKeyRejected);
        assert!(s.transport_mut().state().keys.is_empty());
        // The envelope names a blank card; a card with a CHUID is another card.
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut issued = blank();
        issue(&mut issued, &secrets(None, &[&default_mgmt()], &["12345678"]), &ca).unwrap();
        let err =
            generate_keys(&mut issued, &secrets(None, &[&default_mgmt()], &["12345678"]), &OFFER_KEY, NOW);
        assert_eq!(err.unwrap_err().code, AgentErrorCode::WrongCard);
    }

    #[test]
    fn an_issuance_stopped_half_way_is_finished_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mut s = blank();
        let first = secrets(None, &[&default_mgmt()], &["12345678"]);
        let keys = generate_keys(&mut s, &first, &OFFER_KEY, NOW).unwrap();
        let [piv, card] = certificates(&ca, &keys);
        // The card is pulled out as it takes the new management key.
        let mut s = PivSession::new(Unplugged {
            card: s.into_inner(),
            ins: ins::YK_SET_MANAGEMENT_KEY,
            card_saw_it: true,
            gone: false,
        });
        let report =
            finish(&mut s, &first, &new_secrets(), &keys, [&piv, &card], "97531864", &[3; 32], NOW).unwrap();
        let failure = report.failure.unwrap();
        assert_eq!(
            (failure.step, failure.error.code),
            (IssueStep::ChangeManagementKey, AgentErrorCode::CardRemoved)
        );
        assert_eq!(report.puk, PukOnCard::Rotated);

        // The backend offers both sets of credentials, the new ones reused as the targets.
        let mut s = PivSession::new(s.into_inner().card);
        let offer = begin(&mut s, &OFFER_KEY).unwrap();
        assert_eq!(offer.guid.as_deref(), Some(GUID));
        assert_eq!(offer.readiness.factory_key, None, "the half-issued card has a new key");
        let signature = offer.resume_signature;
        // The half-issued card's certified 9E key vouches for the agent's key.
        use p256::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};
        let card_auth = VerifyingKey::from_sec1_bytes(&keys.card_auth_point).unwrap();
        let signature = Signature::from_der(&signature.unwrap()).unwrap();
        card_auth.verify_prehash(&envelope::resume_offer_digest(&OFFER_KEY, GUID), &signature).unwrap();
        let again = secrets(Some(GUID), &[&default_mgmt(), NEW_MGMT_24], &["12345678", "86420975"]);
        let report = issue(&mut s, &again, &ca).unwrap();
        assert_eq!(report.failure, None);
        let state = s.transport_mut().state();
        assert_eq!((state.puk.as_str(), state.mgmt_key_hex.as_str()), ("86420975", NEW_MGMT_24));
        assert_eq!(state.puk_tries_left, 3);
    }
}
