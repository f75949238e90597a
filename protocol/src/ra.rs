//! Types of the RA console's API under `/api/ra` (signed-in users with the `ra` role only).

use serde::{Deserialize, Serialize};

use crate::api::{CardSummary, SelfService};

/// One row of `GET /api/ra/users?q=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    pub user_id: String,
    pub name: String,
    pub contact_email: Option<String>,
    pub registered: bool,
    /// Self-service is locked after 3 failed unlock attempts.
    pub locked_out: bool,
}

/// `GET /api/ra/users/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDetail {
    pub user_id: String,
    pub name: String,
    pub contact_email: Option<String>,
    pub roles: Vec<String>,
    pub cards: Vec<CardSummary>,
    pub self_service: SelfService,
    /// Failed unlock attempts since the last success or RA clearance.
    pub unlock_failures: u32,
    /// Unix seconds when self-service locked, if it is locked.
    pub locked_out_at: Option<i64>,
}

/// Every RA action says why, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    pub reason: String,
}

/// `POST /api/ra/users`: a person the RA adds (their identity was checked at the desk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPerson {
    pub user_id: String,
    pub name: String,
    pub contact_email: Option<String>,
    pub reason: String,
}

// Card issuance: see `backend::journeys::issuance`.

/// `POST /api/ra/users/{user_id}/issue`: start issuing the blank card in the RA's reader.
/// `agent_key` and `card_guid` are the agent's `issue_offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueStart {
    pub reason: String,
    pub agent_key: String,
    pub card_guid: Option<crate::card_guid::CardGuid>,
    /// A half-issued card's 9E signature for `agent_key` (the offer's `resume_signature`).
    #[serde(default)]
    pub resume_signature: Option<String>,
    /// The offer's `readiness`: what the agent found on the card.
    pub readiness: crate::agent::IssueReadiness,
}

/// The issuance begun: the envelope for the agent's `generate_issue_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueStarted {
    pub issuance_id: String,
    pub envelope: String,
}

/// `POST /api/ra/issuances/{id}/keys`: the agent's `issue_keys` — the public points the card
/// generated (base64 `04‖X‖Y`), the second one-time key the new 9E key signed for, and the
/// card's attestation of the two keys (required when the backend has `attestation_roots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueKeys {
    pub piv_auth_key: String,
    pub card_auth_key: String,
    pub offer_key: String,
    pub offer_signature: String,
    #[serde(default)]
    pub attestation: Option<crate::agent::KeyAttestation>,
}

/// For the agent's `finish_issue`: the certificates (DER, base64), the card's new secrets sealed
/// to the vouched-for key, and the challenge its proofs sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueCertificates {
    pub piv_auth_certificate: String,
    pub card_auth_certificate: String,
    pub envelope: String,
    pub challenge: String,
}

/// `POST /api/ra/issuances/{id}/complete`: the agent's report, relayed as it is.
#[cfg(feature = "issuance")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueComplete {
    pub report: crate::agent::IssueReport,
}

/// The card is issued and bound to the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardIssued {
    pub guid: crate::card_guid::CardGuid,
    pub user_id: String,
}

/// `POST /api/ra/cards/{guid}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardStatusChange {
    /// `active`, `suspended` or `revoked` (revoking is final).
    pub status: String,
    pub reason: String,
}

/// One audit row, as `GET /api/ra/audit` lists them (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRow {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub subject: Option<String>,
    /// JSON; never secrets.
    pub details: String,
}

/// `POST /api/ra/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    pub rows: i64,
    /// The first row whose hash does not match, if any: everything from it on is suspect.
    pub first_broken_row: Option<i64>,
}

/// `GET /api/ra/report?from=YYYY-MM-DD&to=YYYY-MM-DD`: counts per day (UTC), both ends included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub from: String,
    pub to: String,
    pub days: Vec<ReportDay>,
    pub totals: ReportCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub counts: ReportCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportCounts {
    pub registrations: u64,
    /// Self-service unlocks.
    pub unlocks: u64,
    /// Unlocks by an RA at the desk, counted apart.
    pub desk_unlocks: u64,
    pub lockouts: u64,
    pub lockouts_cleared: u64,
}

/// `POST /api/ra/users/{user_id}/desk-unlock`: the RA unlocks the person's card at the desk. The
/// card in the reader proves it is present (9E, over the desk challenge), so the backend knows it
/// is one of this person's cards; the officer says how they checked who the holder is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeskUnlockStart {
    pub challenge_id: String,
    pub guid: crate::card_guid::CardGuid,
    /// DER ECDSA (base64) by the card's 9E key over the presence digest of the challenge.
    pub signature: String,
    /// For example "Photo ID seen (passport)".
    pub identity_check: String,
    pub reason: String,
}

/// The desk unlock is open at its release: the same offer, release and report as self-service,
/// through `/api/ra/desk-unlock/…`, by this officer only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeskUnlockStarted {
    pub attempt_id: String,
}
