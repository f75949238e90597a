//! Types of the backend's JSON API under `/api`.

use serde::{Deserialize, Serialize};

/// `GET /api/health`: what an operator or load balancer needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` when every dependency answers, `degraded` otherwise (then HTTP 503).
    pub status: HealthStatus,
    /// The backend's version (its Cargo package version).
    pub version: String,
    pub database: DatabaseHealth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseHealth {
    /// `sqlite` or `postgres`.
    pub kind: String,
    /// Whether a trivial query succeeded just now.
    pub reachable: bool,
    /// The number of the newest migration applied, if any.
    pub schema_version: Option<i64>,
}

/// The one error envelope of the API: every 4xx and 5xx body has this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// A stable, machine-readable code, e.g. `not_found`, `invalid_json`.
    pub code: crate::error_code::ErrorCode,
    /// A sentence a person can act on. Never contains secrets.
    pub message: String,
    /// `answers_wrong`: the attempts left before self-service locks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_serialises_with_snake_case_status() {
        let health = Health {
            status: HealthStatus::Degraded,
            version: "1.2.3".into(),
            database: DatabaseHealth { kind: "sqlite".into(), reachable: false, schema_version: None },
        };
        let json = serde_json::to_value(&health).unwrap();
        assert_eq!(json["status"], "degraded");
        assert_eq!(json["database"]["kind"], "sqlite");
        let back: Health = serde_json::from_value(json).unwrap();
        assert_eq!(back, health);
    }
}

/// A challenge for the card to sign (`POST /api/sign-in/challenge` and the re-proofs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeIssued {
    pub challenge_id: String,
    /// 32 random bytes, base64: what the agent asks the card to sign.
    pub challenge: String,
}

/// `POST /api/sign-in`: the card's 9A signature over the challenge, made after VERIFY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignInRequest {
    pub challenge_id: String,
    /// The card's CHUID GUID, as the agent read it.
    pub guid: crate::card_guid::CardGuid,
    /// DER ECDSA signature, base64.
    pub signature: String,
}

/// `GET /api/me`: the signed-in person, their cards and their self-service state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub user_id: String,
    pub name: String,
    pub contact_email: Option<String>,
    pub roles: Vec<String>,
    /// The GUID of the card this session signed in with: removing it signs out.
    pub signed_in_with: crate::card_guid::CardGuid,
    pub cards: Vec<CardSummary>,
    pub self_service: SelfService,
    /// A (re-)registration waiting for its emailed code, if one is.
    pub pending_registration: Option<RegistrationPending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardSummary {
    pub guid: crate::card_guid::CardGuid,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    /// Unix seconds.
    pub issued_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Externally tagged: the cheapest form for the SPA to decode.
#[serde(rename_all = "snake_case")]
pub enum SelfService {
    NotRegistered,
    Registered {
        /// Unix seconds.
        registered_at: i64,
        email: String,
    },
}

/// `GET /api/questions`: the catalogue the holder chooses 4 from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Question {
    pub id: u32,
    pub text: String,
}

/// A re-proof of the passcode: the card's 9A signature over a challenge bound to the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofRequest {
    pub challenge_id: String,
    /// DER ECDSA signature, base64.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuestionAnswer {
    pub question_id: u32,
    pub answer: String,
}

/// `POST /api/registration`: 4 different questions with their answers, and the email to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationRequest {
    pub answers: Vec<QuestionAnswer>,
    pub email: String,
}

/// A registration waiting for its emailed code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationPending {
    pub email: String,
    /// When the code in force was sent, and until when it works (Unix seconds).
    pub sent_at: i64,
    pub code_expires_at: i64,
    /// Unix seconds: a new code may be asked for from then on.
    pub resend_after: i64,
    /// No new code was sent (the sending limits), because one sent earlier to this address
    /// still works.
    pub earlier: bool,
    /// The email relay is not taking mail right now: the code is queued and will arrive late.
    #[serde(default)]
    pub mail_delayed: bool,
}

/// `POST /api/registration/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeRequest {
    pub code: String,
}

/// `GET /api/client-config`: what the SPA needs to know about this deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientConfig {
    /// The card agent's WebSocket URL.
    pub agent_url: String,
}

/// `POST /api/unlock/start`: the card's 9E signature over an unlock challenge (no PIN needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockStart {
    pub challenge_id: String,
    pub guid: crate::card_guid::CardGuid,
    /// DER ECDSA signature, base64, by the Card Authentication key (9E).
    pub signature: String,
}

/// The questions for this unlock attempt (the same ones until it ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockQuestions {
    pub attempt_id: String,
    pub questions: Vec<Question>,
    /// Wrong attempts left before self-service locks for this person.
    pub attempts_left: u32,
    /// Set instead of questions when the deployment unlocks holders who never registered: the
    /// code went straight to the contact email on their record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sent: Option<UnlockCodeSent>,
}

/// `POST /api/unlock/answers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockAnswers {
    pub attempt_id: String,
    pub answers: Vec<QuestionAnswer>,
}

/// The answers were right: a code went to the registered address (shown partly hidden).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockCodeSent {
    pub email_hint: String,
    /// When the code in force was sent, and until when it works (Unix seconds).
    pub sent_at: i64,
    pub code_expires_at: i64,
    pub resend_after: i64,
    /// No new code was sent (the sending limits), because one sent earlier still works.
    pub earlier: bool,
    /// The email relay is not taking mail right now: the code is queued and will arrive late.
    #[serde(default)]
    pub mail_delayed: bool,
}

/// `POST /api/unlock/code`: the code emailed after the questions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockCode {
    pub attempt_id: String,
    pub code: String,
}

/// `POST /api/unlock/offer-challenge`: a challenge for the agent's unlock offer, bound to this
/// attempt (which must have passed its code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockAttempt {
    pub attempt_id: String,
}

/// `POST /api/unlock/release`: the agent's unlock offer, relayed by the page. The backend checks
/// the card's 9E signature over `envelope::offer_digest(challenge, public_key, guid)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockRelease {
    pub attempt_id: String,
    pub challenge_id: String,
    /// The agent's one-time X25519 public key, base64.
    pub public_key: String,
    /// DER ECDSA signature by the card's 9E key, base64.
    pub signature: String,
}

/// The PUKs sealed to the agent's one-time key (the page cannot open it), and the challenge the
/// card signs with 9A once the new passcode is set, as proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockReleased {
    pub envelope: String,
    pub proof_challenge: ChallengeIssued,
}

/// `POST /api/unlock/report`: what the agent says the card did, with its 9A proof if it got that
/// far. The backend changes what it believes about the card's PUK only on a verified proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockReported {
    pub attempt_id: String,
    pub proof_challenge_id: String,
    pub report: crate::agent::UnlockReport,
}
