//! The card agent's WebSocket protocol (`ws://127.0.0.1:47101`), JSON text frames.
//!
//! On connect the agent sends [`AgentMessage::Hello`]. The page sends [`Request`]s, each with an
//! `id` the agent echoes in its [`AgentMessage::Response`]. Reader and card changes are pushed as
//! [`AgentMessage::Event`]. Operations are high level: a page can never send a raw APDU.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; the SPA refuses an agent with another major version.
pub const PROTOCOL_VERSION: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub operation: Operation,
}

/// What a page may ask. Challenges are base64 (standard alphabet), 32 bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// The readers and whether each holds a card.
    ListReaders,
    /// GUID, certificates and PIN state, without a PIN and without spending a try.
    CardIdentity { reader: String },
    /// VERIFY the PIN, then sign the challenge for `purpose` with the PIV Authentication key
    /// (9A). The card signs `envelope::signed_digest(purpose, challenge)`, never the bytes sent.
    /// `guid` is the card the person chose: a card with another GUID in `reader` (swapped in
    /// since) is refused with `wrong_card` before it sees the PIN, so no try of it is spent.
    SignWithPin {
        reader: String,
        guid: crate::card_guid::CardGuid,
        pin: String,
        challenge: String,
        purpose: PinPurpose,
    },
    /// Sign the challenge for presence with the Card Authentication key (9E): no PIN.
    ProvePresence { reader: String, challenge: String },
    /// CHANGE REFERENCE DATA for the PIN.
    ChangePin { reader: String, old_pin: String, new_pin: String },
    /// First half of an unlock: the agent makes a one-time key pair for this connection and
    /// the card signs (9E) the backend's challenge bound to that key and its GUID
    /// (`envelope::offer_digest`). Replies [`Reply::UnlockOffer`].
    BeginUnlock { reader: String, challenge: String },
    /// Second half: `envelope` holds the PUKs the backend sealed to the offered key and the
    /// challenge of the proof. The agent resets the PIN to `new_pin`, rotates the PUK and proves
    /// the new PIN by signing the envelope's proof challenge with 9A. Replies
    /// [`Reply::Unlocked`] once the envelope opened, whatever the card then did, so the backend
    /// always learns which PUK the card holds.
    Unlock { reader: String, envelope: String, new_pin: String },
    #[cfg(feature = "issuance")]
    /// Issuance, step 1 (RA console): the agent makes a one-time key pair for this connection
    /// and reads the card's GUID if it has one. Replies [`Reply::IssueOffer`].
    BeginIssue { reader: String },
    #[cfg(feature = "issuance")]
    /// Step 2: `envelope` holds the card's current management keys and PUKs, sealed to the
    /// offered key. The agent authenticates with the management key, generates P-256 keys in 9A
    /// and 9E, and makes a second one-time key that the new 9E key signs for. Replies
    /// [`Reply::IssueKeys`].
    GenerateIssueKeys { reader: String, envelope: String },
    #[cfg(feature = "issuance")]
    /// Step 3: `envelope` holds the new PUK and management key, sealed to the second key. The
    /// agent writes the backend's certificates (only if they certify the keys it generated) and
    /// the CHUID, rotates the PUK, sets `pin` (typed by the holder), changes the management key,
    /// and proves the result by signing `challenge` with 9A (after VERIFY of the new PIN) and 9E.
    /// Replies [`Reply::Issued`] once a card command was sent.
    FinishIssue {
        reader: String,
        envelope: String,
        piv_auth_certificate: String,
        card_auth_certificate: String,
        pin: String,
        challenge: String,
    },
}

/// What a page may have the card sign with 9A after VERIFY. The unlock and issuance proofs are
/// made only inside those operations, never on a page's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinPurpose {
    SignIn,
    RegistrationProof,
}

/// PINs never reach a log through `Debug`.
impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::ListReaders => f.write_str("ListReaders"),
            Operation::CardIdentity { reader } => write!(f, "CardIdentity {{ reader: {reader:?} }}"),
            Operation::SignWithPin { reader, .. } => {
                write!(f, "SignWithPin {{ reader: {reader:?}, pin: *** }}")
            }
            Operation::ProvePresence { reader, .. } => write!(f, "ProvePresence {{ reader: {reader:?} }}"),
            Operation::ChangePin { reader, .. } => write!(f, "ChangePin {{ reader: {reader:?}, pins: *** }}"),
            Operation::BeginUnlock { reader, .. } => write!(f, "BeginUnlock {{ reader: {reader:?} }}"),
            Operation::Unlock { reader, .. } => write!(f, "Unlock {{ reader: {reader:?}, pin: *** }}"),
            #[cfg(feature = "issuance")]
            Operation::BeginIssue { reader } => write!(f, "BeginIssue {{ reader: {reader:?} }}"),
            #[cfg(feature = "issuance")]
            Operation::GenerateIssueKeys { reader, .. } => {
                write!(f, "GenerateIssueKeys {{ reader: {reader:?} }}")
            }
            #[cfg(feature = "issuance")]
            Operation::FinishIssue { reader, .. } => {
                write!(f, "FinishIssue {{ reader: {reader:?}, pin: *** }}")
            }
        }
    }
}

// Every enum the SPA decodes is externally tagged (`{"response":{…}}`, `"done"`), never
// internally (`{"type":"response",…}`) nor flattened: those make serde buffer each message and
// decode it again, which cost the SPA, whose size is budgeted, over 10 KB. Protocol 5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentMessage {
    Hello { agent_version: String, protocol_version: u32 },
    Response { id: u64, outcome: Outcome },
    Event { event: Event },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Reply),
    Error(AgentError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Readers {
        readers: Vec<ReaderInfo>,
    },
    Identity(CardIdentity),
    /// DER ECDSA signature, base64.
    Signature {
        signature: String,
    },
    Done,
    /// The agent's one-time public key (X25519, base64) and the card's 9E signature (DER,
    /// base64) over `envelope::offer_digest(challenge, public_key, guid)`.
    UnlockOffer {
        guid: crate::card_guid::CardGuid,
        public_key: String,
        signature: String,
    },
    Unlocked(UnlockReport),
    /// The agent's one-time public key (X25519, base64) and the card's GUID, if it has a CHUID;
    /// then (a half-issued card) its 9E signature (DER, base64) over
    /// `envelope::resume_offer_digest(public_key, guid)`, if it could make one.
    #[cfg(feature = "issuance")]
    IssueOffer {
        public_key: String,
        guid: Option<crate::card_guid::CardGuid>,
        resume_signature: Option<String>,
        readiness: IssueReadiness,
    },
    /// The public points (`04‖X‖Y`, base64) generated on the card, and the agent's second
    /// one-time key (X25519, base64) with the new 9E key's signature (DER, base64) over
    /// `envelope::issue_offer_digest(issuance_id, offer_key, guid)`; the card's attestation of
    /// the two keys when it has one (`None`: the card has no ATTEST command).
    #[cfg(feature = "issuance")]
    IssueKeys {
        piv_auth_key: String,
        card_auth_key: String,
        offer_key: String,
        offer_signature: String,
        attestation: Option<KeyAttestation>,
    },
    #[cfg(feature = "issuance")]
    Issued(IssueReport),
}

/// What the agent found on a card before anything was written to it, so that a card that cannot
/// be issued is refused before an issuance is recorded. A page could misreport it: the agent
/// checks the same again before it writes (it is a courtesy, not the guard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueReadiness {
    /// The algorithm under which the card took a factory management key (`None`: it took none,
    /// so it has a key of someone else's).
    pub factory_key: Option<u8>,
    /// Whether the PUK is still the factory one, where the card says (`None`: it does not say,
    /// and a PUK cannot be tried without spending a try).
    pub factory_puk: Option<bool>,
    /// Whether the card has an attestation key (its maker's certificate for it is on the card).
    pub attests: bool,
    /// Whether the card holds a 9A or 9E certificate: someone issued it (or, for a GUID of this
    /// service's, its issuance stopped half-way).
    pub certificates: bool,
}

/// A card's word that keys were generated on it (Yubico's PIV attestation): for each slot an
/// X.509 certificate of the slot's public key signed by the card's attestation key (slot F9),
/// and the F9 key's own certificate from the card's maker. DER, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyAttestation {
    pub piv_auth: String,
    pub card_auth: String,
    pub device_certificate: String,
}

/// What each issuance step did; the backend binds the card only when every step succeeded and
/// both proofs verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueReport {
    /// The GUID written in the CHUID.
    pub guid: crate::card_guid::CardGuid,
    pub puk: PukOnCard,
    /// RESET RETRY COUNTER set the holder's PIN with all its tries.
    pub pin_set: bool,
    /// The card now has the envelope's new management key.
    pub management_key_rotated: bool,
    /// The algorithm the new management key was set with (`03` 3DES, `0a` AES-192, …).
    #[serde(default)]
    pub management_key_algorithm: Option<u8>,
    /// Signatures (DER, base64) over the challenge: 9A after VERIFY with the new PIN, and 9E.
    pub piv_auth_proof: Option<String>,
    pub card_auth_proof: Option<String>,
    pub failure: Option<IssueFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IssueStep {
    WriteCertificates,
    WriteChuid,
    ChangePuk,
    SetPin,
    ChangeManagementKey,
    SignProof,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueFailure {
    pub step: IssueStep,
    pub error: AgentError,
}

/// What each unlock step did. Read `puk` first: it is what the backend must remember.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockReport {
    pub guid: crate::card_guid::CardGuid,
    /// RESET RETRY COUNTER succeeded: the PIN is now the new one, with all its tries.
    pub pin_reset: bool,
    pub puk: PukOnCard,
    /// The 9A signature (DER, base64) over the challenge, made after VERIFY with the new PIN.
    pub proof: Option<String>,
    /// The first step that failed, if one did.
    pub failure: Option<StepFailure>,
}

/// Which PUK the card holds after the unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Externally tagged (`"rotated"`, `{"candidate":{"index":0}}`): the cheapest form for the
// SPA to decode, whose size is budgeted.
#[serde(rename_all = "snake_case")]
pub enum PukOnCard {
    /// The card accepted none of the candidates (or was never asked): its PUK is unchanged.
    Unchanged,
    /// The card accepted candidate `index` and still holds it.
    Candidate { index: u8 },
    /// The card now holds the envelope's new PUK.
    Rotated,
    /// The card was lost during the change: it holds candidate `index` or the new PUK.
    Unknown { index: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UnlockStep {
    ResetRetryCounter,
    ChangePuk,
    VerifyNewPin,
    SignProof,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepFailure {
    pub step: UnlockStep,
    pub error: AgentError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardIdentity {
    /// The CHUID GUID.
    pub guid: crate::card_guid::CardGuid,
    /// The holder's name (the common name of the 9A certificate's subject), so a person at a
    /// desk with two cards can tell which is theirs. Not a proof of anything.
    #[serde(default)]
    pub holder: Option<String>,
    /// DER certificates, base64, if present.
    pub piv_auth_certificate: Option<String>,
    pub card_auth_certificate: Option<String>,
    pub pin: PinState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged (`"rotated"`, `{"candidate":{"index":0}}`): the cheapest form for the
// SPA to decode, whose size is budgeted.
#[serde(rename_all = "snake_case")]
pub enum PinState {
    /// `tries_left` is `None` when the card does not say.
    Ready {
        tries_left: Option<u8>,
    },
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    ReaderAdded {
        reader: String,
    },
    ReaderRemoved {
        reader: String,
    },
    CardInserted {
        reader: String,
    },
    CardRemoved {
        reader: String,
    },
    /// pcscd stopped answering; the agent keeps trying and reports readers again when it returns.
    ServiceUnavailable,
}

/// Errors a person can act on; `message` is the sentence to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentError {
    pub code: AgentErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentErrorCode {
    NoReader,
    NoCard,
    CardRemoved,
    WrongPin {
        tries_left: Option<u8>,
    },
    PinBlocked,
    WrongPuk {
        tries_left: Option<u8>,
    },
    PukBlocked,
    /// The card in the reader is not the one the operation was prepared for.
    WrongCard,
    /// The unlock envelope could not be used: malformed, for another key, expired, or no
    /// unlock was begun on this connection.
    EnvelopeRejected,
    /// The envelope was not signed by a backend key the agent trusts for the page's origin (or
    /// the origin has none): the page asked for something its backend did not authorise.
    EnvelopeUntrusted,
    /// Issuance: the card refused every management key the backend holds for it.
    ManagementKeyRejected,
    /// Issuance: the service issues only cards that attest their keys, and this one cannot.
    AttestationUnavailable,
    /// Issuance: a certificate does not certify the key generated on the card.
    CertificateMismatch,
    InvalidPin,
    NotPiv,
    NotPersonalised,
    ServiceUnavailable,
    Busy,
    BadRequest,
    CardError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_flat_json_with_an_op_tag() {
        let json = r#"{"id":7,"op":"sign_with_pin","reader":"R","guid":"000102030405060708090a0b0c0d0e0f","pin":"123456","challenge":"AA==","purpose":"sign_in"}"#;
        let request: Request = serde_json::from_str(json).unwrap();
        assert_eq!(request.id, 7);
        assert!(matches!(request.operation, Operation::SignWithPin { purpose: PinPurpose::SignIn, .. }));
        // Without the card the person chose, a PIN is not sent anywhere.
        let unaddressed = json.replace(r#""guid":"000102030405060708090a0b0c0d0e0f","#, "");
        assert!(serde_json::from_str::<Request>(&unaddressed).is_err());
        // No purpose, or one a page may not ask for: not a request.
        let unlabelled = r#"{"id":7,"op":"sign_with_pin","reader":"R","guid":"000102030405060708090a0b0c0d0e0f","pin":"123456","challenge":"AA=="}"#;
        assert!(serde_json::from_str::<Request>(unlabelled).is_err());
        let proof = unlabelled.replace("}", r#","purpose":"unlock_proof"}"#);
        assert!(serde_json::from_str::<Request>(&proof).is_err());
        assert!(!format!("{request:?}").contains("123456"), "Debug hides the PIN");
    }

    #[test]
    fn responses_and_events_nest_their_payload() {
        let response = AgentMessage::Response { id: 1, outcome: Outcome::Ok(Reply::Done) };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"response":{"id":1,"outcome":{"ok":"done"}}}"#
        );
        let event = AgentMessage::Event { event: Event::CardInserted { reader: "R".into() } };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":{"event":{"card_inserted":{"reader":"R"}}}}"#
        );
    }

    #[test]
    fn responses_and_events_round_trip() {
        for message in [
            AgentMessage::Hello { agent_version: "1".into(), protocol_version: PROTOCOL_VERSION },
            AgentMessage::Response { id: 1, outcome: Outcome::Ok(Reply::Done) },
            AgentMessage::Response {
                id: 3,
                outcome: Outcome::Ok(Reply::Unlocked(UnlockReport {
                    guid: crate::card_guid::CardGuid::from_bytes([0xab; 16]),
                    pin_reset: true,
                    puk: PukOnCard::Unknown { index: 1 },
                    proof: None,
                    failure: Some(StepFailure {
                        step: UnlockStep::ChangePuk,
                        error: AgentError { code: AgentErrorCode::CardRemoved, message: "gone".into() },
                    }),
                })),
            },
            AgentMessage::Response {
                id: 2,
                outcome: Outcome::Error(AgentError {
                    code: AgentErrorCode::WrongPin { tries_left: Some(2) },
                    message: "Wrong passcode".into(),
                }),
            },
            AgentMessage::Event { event: Event::CardInserted { reader: "R".into() } },
        ] {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(serde_json::from_str::<AgentMessage>(&json).unwrap(), message, "{json}");
        }
    }
}
