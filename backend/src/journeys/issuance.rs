//! Issuing a blank card to a person (RA console). The backend decides every secret and does the
//! certification; the agent at the RA's desk runs a fixed procedure on the card; the browser only
//! relays what the two say to each other:
//!
//! 1. `POST /api/ra/users/{user_id}/issue` with the agent's one-time key (and the card's GUID if
//!    it has one): the backend chooses the GUID, a random PUK and a random management key,
//!    records them **sealed before anything leaves** (so a card left half-issued can always be
//!    finished), and seals the card's *current* credentials (the factory ones) to the agent's key.
//! 2. `POST /api/ra/issuances/{id}/keys` with the public keys the card generated in 9A and 9E and
//!    the agent's second one-time key, signed for by the new 9E key: the backend's CA certifies
//!    the keys, and only if that signature verifies are the *new* PUK and management key sealed to
//!    the second key — so they can reach no one but the agent holding the card being issued. The
//!    answer carries a challenge for the final proofs.
//! 3. `POST /api/ra/issuances/{id}/complete` with the agent's report: only when every step
//!    succeeded and the card's 9A (after VERIFY with the holder's new PIN) and 9E signatures
//!    verify against the certified keys is the card bound to the person, with its PUK and
//!    management key sealed.
//!
//! A card that offers a GUID is either a card this service half-issued (its recorded secrets are
//! offered as candidates and reused) or is refused. The first one-time key cannot be tied to a
//! card key (a blank card has none), so it only ever receives current credentials: the factory
//! ones, public anyway, and — for a half-issued card — the recorded ones it may already hold.

use base64::{engine::general_purpose::STANDARD, Engine};
use card_ca::CertificateAuthority;
use der::Encode;
use envelope::{EnvelopeSigner, IssueNewSecrets, IssueSecrets, ManagementKeySecret};
use piv::mgmt::decode_hex;
use protocol::card_guid::CardGuid;
use protocol::error_code::ErrorCode;
use protocol::{
    agent::{IssueReadiness, IssueReport, PukOnCard},
    ra::{CardIssued, IssueCertificates, IssueKeys, IssueStart, IssueStarted},
};
use zeroize::Zeroizing;

use super::ra::checked_reason;
use crate::{
    audit::{self, Entry, SYSTEM},
    card_proof,
    db::Database,
    error::ApiError,
    secrets::{random_bytes, random_digits, random_token},
    startup::AppState,
    store::{
        issuances::{self, Issuance, NewIssuance},
        people::{self, IssuedCard, User},
    },
    time::now_unix,
    vault::Vault,
};

/// From the first offer to the card bound: an RA and a holder at a desk.
const ISSUANCE_SECONDS: i64 = 15 * 60;
const PUK_DIGITS: usize = 8;
/// The factory PUK of blank PIV cards (PIV.md); their management key is a factory one of
/// `piv::mgmt::ManagementKey::factory`.
const BLANK_PUK: &str = piv::pin::FACTORY_PUK;
/// Bytes of a new management key's random material: enough for every algorithm. The card takes
/// as many as the algorithm of its factory key needs, and the completed issuance records that.
const MANAGEMENT_KEY_MATERIAL: usize = 32;
/// How a new key is recorded until the card says which algorithm it took: the whole material.
const MATERIAL_ALGORITHM: u8 = piv::ids::alg::AES_256;

/// What issuing needs: the database, the vault for the card's secrets, the CA, the key that
/// signs envelopes for the agent, and the makers' roots that attest a card's keys.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    pub db: &'a Database,
    pub vault: &'a Vault,
    pub ca: &'a CertificateAuthority,
    pub signer: &'a EnvelopeSigner,
    /// Empty: keys are certified without attestation (and the audit trail says so).
    pub attestation_roots: &'a [x509_cert::Certificate],
}

impl<'a> Issuer<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self {
            db: &state.db,
            vault: &state.vault,
            ca: &state.ca,
            signer: &state.signer,
            attestation_roots: &state.attestation_roots,
        }
    }
}

/// Who issues: an RA officer in the console, or the operator's `backend admin issue-card`.
#[derive(Debug, Clone, Copy)]
pub enum Officer<'a> {
    Ra(&'a User),
    Operator,
}

impl Officer<'_> {
    pub(crate) fn actor(&self) -> &str {
        match self {
            Officer::Ra(user) => &user.user_id,
            Officer::Operator => SYSTEM,
        }
    }

    pub(crate) fn reference(&self) -> Option<i64> {
        match self {
            Officer::Ra(user) => Some(user.id),
            Officer::Operator => None,
        }
    }
}

fn rejected(code: ErrorCode, message: &str) -> ApiError {
    ApiError::rejected(code, message)
}

/// Secrets of an issuance that stopped half-way, recorded for the card with that GUID.
struct Unfinished {
    id: String,
    puk: Zeroizing<String>,
    management_key: Zeroizing<String>,
}

/// Step 1: choose and record the secrets, and seal them to the agent's key.
pub async fn start(
    issuer: Issuer<'_>,
    officer: Officer<'_>,
    holder: &User,
    request: &IssueStart,
) -> Result<IssueStarted, ApiError> {
    let reason = checked_reason(&protocol::ra::Reason { reason: request.reason.clone() })?;
    envelope::parse_public_key(&request.agent_key)
        .map_err(|_| rejected(ErrorCode::InvalidRequest, "The agent key is not valid."))?;
    let offered_guid = request.card_guid.clone();
    // Refused before anything is recorded: keys without attestation would not be certified.
    if !issuer.attestation_roots.is_empty() && !request.readiness.attests {
        return Err(no_attestation());
    }

    if let Some(guid) = &offered_guid {
        if people::card_by_guid(issuer.db, guid).await?.is_some() {
            return Err(rejected(
                ErrorCode::CardAlreadyIssued,
                "This card is already issued. Look up its holder; to give it to someone else, revoke it \
                 and reset it to its factory state first.",
            ));
        }
    }

    let now = now_unix();
    let mut tx = issuer.db.begin_write().await?;
    let recorded = match &offered_guid {
        None => None,
        Some(guid) => issuances::unfinished_for_card(&mut tx, guid).await?.map(|row| (guid, row)),
    };
    let unfinished = match recorded {
        // No CHUID, or a maker's (a GUID this service never gave): blank if it has a blank card's
        // credentials, whatever its CHUID says.
        None => {
            blank_credentials(&request.readiness)?;
            None
        }
        Some((guid, row)) => {
            // The recorded secrets go only to the officer who started this card, for the same
            // person, while it lasts: the GUID alone (it is in the audit trail) opens nothing.
            let same_officer = row.officer_ref == officer.reference();
            let same_person = row.user_ref == holder.id;
            let refusal = if !same_officer || !same_person || row.expires_at < now {
                Some(("not this officer, person or time", rejected(ErrorCode::IssuanceNotResumable,
                    "This card was left half-issued by another issuance: only the officer who started it can \
                     finish it, for the same person, within 15 minutes. Otherwise reset the card to its factory \
                     state and issue it again.",
                )))
            // …and only to an agent holding that card: its certified 9E key vouches for the key.
            } else if !resume_vouched(&mut tx, guid, &request.agent_key, request.resume_signature.as_deref())
                .await?
            {
                Some(("not vouched by the card", rejected(ErrorCode::OfferInvalid,
                    "The card in the reader could not prove it is the half-issued card, so its recorded secrets \
                     were not released. Reset the card to its factory state and issue it again.",
                )))
            } else {
                None
            };
            if let Some((why, refused)) = refusal {
                audit::append(
                    &mut tx,
                    Entry::new(officer.actor(), "card_issue_resume_refused")
                        .subject(&holder.user_id)
                        .details(serde_json::json!({ "guid": guid, "why": why })),
                )
                .await?;
                tx.commit().await?;
                return Err(refused);
            }
            let puk = issuer.vault.open(guid, &row.puk_sealed).map_err(unopenable)?;
            let management_key =
                issuer.vault.open_management_key(guid, &row.mgmt_key_sealed).map_err(unopenable)?;
            Some(Unfinished { id: row.id, puk, management_key })
        }
    };

    // A half-issued card keeps its GUID and the secrets it may already hold; a blank one gets new
    // (a maker's GUID is written over).
    let (guid, puk, management_key) = match &unfinished {
        Some(u) => (
            offered_guid.clone().ok_or_else(|| anyhow::anyhow!("a resumed card has a GUID"))?,
            u.puk.clone(),
            u.management_key.clone(),
        ),
        None => (
            CardGuid::from_bytes(random_bytes::<16>()),
            Zeroizing::new(random_digits(PUK_DIGITS)),
            Zeroizing::new(format!(
                "{MATERIAL_ALGORITHM}:{}",
                hex(&random_bytes::<MANAGEMENT_KEY_MATERIAL>())
            )),
        ),
    };
    let factory_material: Vec<u8> = (1..=8u8).cycle().take(MANAGEMENT_KEY_MATERIAL).collect();
    let mut current_management_keys = under_each_algorithm(&factory_material);
    let mut current_puks = vec![Zeroizing::new(BLANK_PUK.to_owned())];
    if let Some(u) = &unfinished {
        let material = decode_hex(&management_key_secret(&u.management_key)?.key_hex)
            .ok_or_else(|| anyhow::anyhow!("bad recorded key"))?;
        current_management_keys.extend(under_each_algorithm(&material));
        current_puks.push(u.puk.clone());
        issuances::supersede(&mut tx, &u.id, now).await?;
    }
    let maker_guid = match (&unfinished, &offered_guid) {
        (None, Some(maker)) => Some(maker.clone()),
        _ => None,
    };

    let id = random_token();
    let expires_at = now + ISSUANCE_SECONDS;
    let new = NewIssuance {
        id: &id,
        user_ref: holder.id,
        officer_ref: officer.reference(),
        reason: &reason,
        card_guid: &guid,
        puk_sealed: &issuer.vault.seal(&guid, &puk)?,
        mgmt_key_sealed: &issuer.vault.seal_management_key(&guid, &management_key)?,
        created_at: now,
        expires_at,
    };
    issuances::insert(&mut tx, &new).await?;
    audit::append(
        &mut tx,
        Entry::new(officer.actor(), "card_issue_started").subject(&holder.user_id).details(
            serde_json::json!({
                "reason": reason,
                "guid": guid,
                "resumed": unfinished.is_some(),
                "maker_guid": maker_guid,
            }),
        ),
    )
    .await?;
    // Recorded before the envelope exists: whatever happens next, the secrets are not lost.
    tx.commit().await?;
    crate::crash::point("issuance.start.after_commit");

    let secrets = IssueSecrets {
        issuance_id: id.clone(),
        offered_guid: offered_guid.map(String::from),
        new_guid: guid.to_string(),
        expires_at: u64::try_from(expires_at).unwrap_or(0),
        issued_at: u64::try_from(now).unwrap_or(0),
        current_management_keys,
        current_puks,
        attestation_required: !issuer.attestation_roots.is_empty(),
    };
    let envelope = envelope::seal(issuer.signer, &request.agent_key, &secrets)
        .map_err(|_| rejected(ErrorCode::InvalidRequest, "The agent key is not valid."))?;
    Ok(IssueStarted { issuance_id: id, envelope })
}

/// A card the service has no record of may be issued only with a blank card's credentials, as
/// the agent found them (it checks them again before it writes anything).
fn blank_credentials(readiness: &IssueReadiness) -> Result<(), ApiError> {
    if readiness.factory_key.is_none() {
        return Err(rejected(
            ErrorCode::CardNotBlank,
            "This card's management key is not a factory default and this service does not hold it, so \
             it cannot be issued here. Nothing was written to it. Reset it to its factory state with the \
             tools of the system that issued it, or use a blank card.",
        ));
    }
    if readiness.certificates {
        return Err(rejected(
            ErrorCode::CardNotBlank,
            "This card holds certificates this service did not give it: another system issued it, so it \
             cannot be issued here. Nothing was written to it. Reset it to its factory state with the \
             tools of the system that issued it, or use a blank card.",
        ));
    }
    if readiness.factory_puk == Some(false) {
        return Err(rejected(
            ErrorCode::CardNotBlank,
            "This card's unlock key (PUK) is not the factory one and this service does not hold it, so it \
             cannot be issued here. Nothing was written to it. Reset it to its factory state, or use a \
             blank card.",
        ));
    }
    Ok(())
}

fn no_attestation() -> ApiError {
    rejected(
        ErrorCode::AttestationRequired,
        "This card cannot show that its keys were made on it (it has no attestation), and this \
         service only issues cards that can. Nothing was written to it. Use a card from a supported maker.",
    )
}

/// A key's material as each management-key algorithm would take it (those it is long enough for).
fn under_each_algorithm(material: &[u8]) -> Vec<ManagementKeySecret> {
    piv::mgmt::ALGORITHMS
        .iter()
        .filter_map(|&algorithm| piv::mgmt::ManagementKey::from_material(algorithm, material).ok())
        .map(|key| ManagementKeySecret {
            algorithm: key.algorithm(),
            key_hex: Zeroizing::new(hex(key.key_bytes())),
        })
        .collect()
}

/// Whether the half-issued card's 9E key — the one last certified for its GUID — signed for
/// `agent_key`. A card whose issuance never reached certification has no such key on record.
async fn resume_vouched(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    guid: &str,
    agent_key: &str,
    signature: Option<&str>,
) -> Result<bool, ApiError> {
    let Some(signature) = signature.and_then(|b64| STANDARD.decode(b64).ok()) else { return Ok(false) };
    let Some(agent_key) = STANDARD.decode(agent_key).ok().and_then(|k| <[u8; 32]>::try_from(k).ok()) else {
        return Ok(false);
    };
    let Some(certificate) = issuances::last_card_auth_certificate(tx, guid).await? else { return Ok(false) };
    let key = card_proof::public_key_of_certificate(&certificate)?;
    Ok(card_proof::verifies(&key, &envelope::resume_offer_digest(&agent_key, guid), &signature))
}

async fn holder_of(issuer: Issuer<'_>, issuance: &Issuance) -> Result<User, ApiError> {
    Ok(people::user_by_ref(issuer.db, issuance.user_ref)
        .await?
        .ok_or_else(|| anyhow::anyhow!("an issuance's holder is not on record"))?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unopenable(_: crate::vault::VaultError) -> anyhow::Error {
    anyhow::anyhow!("a recorded issuance secret does not open")
}

/// `<algorithm>:<hex>` as recorded, into the envelope's form.
fn management_key_secret(recorded: &str) -> Result<ManagementKeySecret, ApiError> {
    let (algorithm, hex) = recorded.split_once(':').ok_or_else(|| anyhow::anyhow!("bad recorded key"))?;
    let algorithm = algorithm.parse().map_err(|_| anyhow::anyhow!("bad recorded key algorithm"))?;
    Ok(ManagementKeySecret { algorithm, key_hex: Zeroizing::new(hex.to_owned()) })
}

/// Issuance `id` if it is this officer's, at `state` and not expired.
async fn open_issuance(
    issuer: Issuer<'_>,
    officer: Officer<'_>,
    id: &str,
    state: issuances::State,
) -> Result<Issuance, ApiError> {
    let issuance = issuances::by_id(&mut *issuer.db.pool().acquire().await?, id).await?;
    match issuance {
        // Another officer's issuance is not one this session can drive.
        Some(issuance)
            if issuance.officer_ref == officer.reference()
                && issuance.state == state
                && issuance.expires_at >= now_unix() =>
        {
            Ok(issuance)
        }
        _ => Err(rejected(
            ErrorCode::IssuanceEnded,
            "This card issuance has ended. Start again with the card.",
        )),
    }
}

/// Step 2: certify the keys the card generated; a challenge for the final proofs.
pub async fn certify(
    issuer: Issuer<'_>,
    officer: Officer<'_>,
    id: &str,
    keys: &IssueKeys,
) -> Result<IssueCertificates, ApiError> {
    let issuance = open_issuance(issuer, officer, id, issuances::State::Started).await?;
    let point = |b64: &str| -> Result<(Vec<u8>, p256::PublicKey), ApiError> {
        STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok().map(|key| (bytes, key)))
            .ok_or_else(|| rejected(ErrorCode::InvalidRequest, "A public key is not a P-256 point."))
    };
    let (piv_auth_point, _) = point(&keys.piv_auth_key)?;
    let (card_auth_point, card_auth_key) = point(&keys.card_auth_key)?;
    if piv_auth_point == card_auth_point {
        return Err(rejected(ErrorCode::InvalidRequest, "The two keys must differ."));
    }
    // The new secrets go only to a key the card's new 9E key signed for.
    let offer_key: [u8; 32] = STANDARD
        .decode(&keys.offer_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| rejected(ErrorCode::InvalidRequest, "The agent key is not valid."))?;
    let digest = envelope::issue_offer_digest(&issuance.id, &offer_key, &issuance.card_guid);
    let card_auth_spki =
        p256::pkcs8::EncodePublicKey::to_public_key_der(&card_auth_key).map_err(anyhow::Error::from)?;
    let vouched = STANDARD
        .decode(&keys.offer_signature)
        .is_ok_and(|signature| card_proof::verifies(card_auth_spki.as_bytes(), &digest, &signature));
    if !vouched {
        return Err(rejected(
            ErrorCode::OfferInvalid,
            "The card did not vouch for the agent's key, so its new secrets were not released. Start again.",
        ));
    }
    let new_secrets = IssueNewSecrets {
        issuance_id: issuance.id.clone(),
        guid: issuance.card_guid.to_string(),
        expires_at: u64::try_from(issuance.expires_at).unwrap_or(0),
        issued_at: u64::try_from(now_unix()).unwrap_or(0),
        new_management_key: management_key_secret(
            &issuer
                .vault
                .open_management_key(&issuance.card_guid, &issuance.mgmt_key_sealed)
                .map_err(unopenable)?,
        )?,
        new_puk: issuer.vault.open(&issuance.card_guid, &issuance.puk_sealed).map_err(unopenable)?,
    };
    let attestation = attested(issuer, keys, &piv_auth_point, &card_auth_point)?;
    let envelope = envelope::seal(issuer.signer, &keys.offer_key, &new_secrets)
        .map_err(|_| rejected(ErrorCode::InvalidRequest, "The agent key is not valid."))?;
    let holder = holder_of(issuer, &issuance).await?;
    let certificate = |point: &[u8], purpose: &str| -> Result<Vec<u8>, ApiError> {
        Ok(issuer.ca.issue(point, &holder.name, purpose)?.to_der().map_err(anyhow::Error::from)?)
    };
    let piv_auth_certificate = certificate(&piv_auth_point, "PIV Authentication")?;
    let card_auth_certificate = certificate(&card_auth_point, "Card Authentication")?;
    let challenge = random_bytes::<32>();
    let mut tx = issuer.db.begin_write().await?;
    if !issuances::certify(&mut tx, &issuance.id, &piv_auth_certificate, &card_auth_certificate, &challenge)
        .await?
    {
        return Err(rejected(ErrorCode::IssuanceEnded, "This card issuance has ended. Start again."));
    }
    audit::append(
        &mut tx,
        Entry::new(officer.actor(), "card_keys_certified").subject(&holder.user_id).details(
            serde_json::json!({
                "guid": issuance.card_guid,
                "attestation": attestation.as_ref().map_or_else(
                    || serde_json::json!("not attested"),
                    |a| serde_json::json!({ "root": a.root, "card_serial": a.serial }),
                ),
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    crate::crash::point("issuance.certify.after_commit");
    Ok(IssueCertificates {
        piv_auth_certificate: STANDARD.encode(piv_auth_certificate),
        card_auth_certificate: STANDARD.encode(card_auth_certificate),
        envelope,
        challenge: STANDARD.encode(challenge),
    })
}

/// With `attestation_roots` configured, the card's attestation of both keys under one of them
/// (what a script with software keys cannot produce); without, `None`: not attested.
fn attested(
    issuer: Issuer<'_>,
    keys: &IssueKeys,
    piv_auth_point: &[u8],
    card_auth_point: &[u8],
) -> Result<Option<card_ca::attestation::Attested>, ApiError> {
    if issuer.attestation_roots.is_empty() {
        return Ok(None);
    }
    let Some(attestation) = &keys.attestation else { return Err(no_attestation()) };
    let der = |b64: &str| {
        STANDARD
            .decode(b64)
            .map_err(|_| rejected(ErrorCode::InvalidRequest, "An attestation certificate is not base64."))
    };
    let device = der(&attestation.device_certificate)?;
    let check = |slot: &str, point: &[u8]| {
        card_ca::attestation::verify(issuer.attestation_roots, &device, &der(slot)?, point).map_err(
            |problem| {
                tracing::warn!(%problem, "key attestation refused");
                rejected(ErrorCode::AttestationInvalid,
                "The card's keys could not be shown to have been made on a card from a trusted maker, so \
                 they were not certified.",
            )
            },
        )
    };
    let attested = check(&attestation.piv_auth, piv_auth_point)?;
    let card_auth = check(&attestation.card_auth, card_auth_point)?;
    if attested.serial != card_auth.serial {
        return Err(rejected(
            ErrorCode::AttestationInvalid,
            "The two keys were attested by different cards.",
        ));
    }
    Ok(Some(attested))
}

/// Step 3: bind the card if the agent's report is complete and its proofs verify.
pub async fn complete(
    issuer: Issuer<'_>,
    officer: Officer<'_>,
    id: &str,
    report: IssueReport,
) -> Result<CardIssued, ApiError> {
    let issuance = open_issuance(issuer, officer, id, issuances::State::Certified).await?;
    let holder_id = holder_of(issuer, &issuance).await?.user_id;
    if !report.guid.eq_ignore_ascii_case(&issuance.card_guid) {
        return Err(rejected(ErrorCode::WrongCard, "The report is for another card."));
    }
    let finished = report.failure.is_none()
        && report.pin_set
        && report.management_key_rotated
        && report.puk == PukOnCard::Rotated;
    if !finished {
        // Nothing changes: the recorded secrets stay, and the next issuance of this card uses them.
        let step = report.failure.as_ref().map(|f| f.step);
        audit::record(
            issuer.db,
            Entry::new(officer.actor(), "card_issue_incomplete")
                .subject(&holder_id)
                .details(serde_json::json!({ "guid": issuance.card_guid, "step": step })),
        )
        .await?;
        let message =
            report.failure.map(|f| f.error.message).unwrap_or_else(|| "The card did not finish.".into());
        return Err(ApiError::rejected(
            ErrorCode::IssuanceIncomplete,
            format!(
                "{message} Put the same card back in the reader and issue it again: it will be finished."
            ),
        ));
    }

    let recorded = |field: &Option<Vec<u8>>| {
        field.clone().ok_or_else(|| anyhow::anyhow!("a certified issuance lacks what certifying recorded"))
    };
    let challenge = recorded(&issuance.challenge)?;
    let piv_auth_certificate = recorded(&issuance.piv_auth_certificate)?;
    let card_auth_certificate = recorded(&issuance.card_auth_certificate)?;
    let piv_auth_key = card_proof::public_key_of_certificate(&piv_auth_certificate)?;
    let card_auth_key = card_proof::public_key_of_certificate(&card_auth_certificate)?;
    let Some(algorithm) = report.management_key_algorithm else {
        return Err(rejected(
            ErrorCode::InvalidRequest,
            "The report does not say which management key the card took.",
        ));
    };
    // The proofs cover the algorithm too: what is recorded is the card's word, not the page's.
    let signed = envelope::issue_proof_challenge(&challenge, algorithm);
    let proves = |key: &[u8], purpose, proof: &Option<String>| {
        proof
            .as_deref()
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|signature| card_proof::verifies_for(key, purpose, &signed, &signature))
    };
    if !proves(&piv_auth_key, envelope::Purpose::IssueProofPivAuth, &report.piv_auth_proof)
        || !proves(&card_auth_key, envelope::Purpose::IssueProofCardAuth, &report.card_auth_proof)
    {
        audit::record(
            issuer.db,
            Entry::new(officer.actor(), "card_issue_proof_refused")
                .subject(&holder_id)
                .details(serde_json::json!({ "guid": issuance.card_guid })),
        )
        .await?;
        return Err(rejected(
            ErrorCode::ProofInvalid,
            "The card's proof did not verify, so it was not issued. Issue it again.",
        ));
    }

    // Recorded as the card took it: as much of the material as the algorithm of the card's own
    // factory key takes, under that algorithm.
    let recorded = issuer
        .vault
        .open_management_key(&issuance.card_guid, &issuance.mgmt_key_sealed)
        .map_err(unopenable)?;
    let material = decode_hex(&management_key_secret(&recorded)?.key_hex)
        .ok_or_else(|| anyhow::anyhow!("bad recorded key"))?;
    let as_taken = piv::mgmt::ManagementKey::from_material(algorithm, &material)
        .map_err(|_| rejected(ErrorCode::InvalidRequest, "Unexpected management key algorithm."))?;
    let as_taken = Zeroizing::new(format!("{algorithm}:{}", hex(as_taken.key_bytes())));
    let mgmt_key_sealed = issuer.vault.seal_management_key(&issuance.card_guid, &as_taken)?;

    let now = now_unix();
    let mut tx = issuer.db.begin_write().await?;
    if !issuances::finish(&mut tx, &issuance.id, now).await? {
        return Err(rejected(ErrorCode::IssuanceEnded, "This card issuance has ended."));
    }
    let card = IssuedCard {
        guid: &issuance.card_guid,
        user_ref: issuance.user_ref,
        piv_auth_key: &piv_auth_key,
        card_auth_key: &card_auth_key,
        piv_auth_certificate: &piv_auth_certificate,
        card_auth_certificate: &card_auth_certificate,
        puk_sealed: &issuance.puk_sealed,
        mgmt_key_sealed: &mgmt_key_sealed,
        issued_at: now,
    };
    people::insert_issued_card(&mut tx, &card).await?;
    audit::append(
        &mut tx,
        Entry::new(officer.actor(), "card_issued")
            .subject(&holder_id)
            .details(serde_json::json!({ "guid": issuance.card_guid, "reason": issuance.reason })),
    )
    .await?;
    crate::crash::point("issuance.complete.before_commit");
    tx.commit().await?;
    crate::crash::point("issuance.complete.after_commit");
    Ok(CardIssued { guid: issuance.card_guid, user_id: holder_id })
}
