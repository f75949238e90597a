//! The API's error codes: one enum the backend builds its errors from and the pages match on, so
//! a code cannot be renamed on one side only. Each variant says the HTTP status it travels with
//! ([`ErrorCode::status`]); the wire form is the snake_case name (`locked_out`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // The request itself.
    /// 400: the body is not the JSON this route expects.
    InvalidJson,
    /// 400: a field is missing, malformed or out of range.
    InvalidRequest,
    /// 404: no such route or resource.
    NotFound,
    /// 401: no live session.
    Unauthenticated,
    /// 403: a state change that did not come from this site.
    CrossSite,
    /// 403: the signed-in person is not a Registration Authority officer.
    NotRa,
    /// 503: a dependency (the database) does not answer.
    Unavailable,
    /// 500: anything unexpected; the cause is in the log, never in the body.
    Internal,
    /// 429: too many requests from this client (or to the service); `Retry-After` says when.
    RateLimited,

    // Cards and their proofs.
    /// 400: the challenge was never issued, was used, or expired.
    ChallengeExpired,
    /// 401: a card's signature does not verify with the key on record.
    SignatureInvalid,
    /// 403: the card was not issued by this service.
    CardNotRecognised,
    /// 403: the card is suspended or revoked.
    CardNotActive,
    /// 400: the card in the reader is not the one this step began with.
    WrongCard,

    // Registration.
    /// 403: registering needs a sign-in with the card's passcode, not presence alone.
    PasscodeRequired,
    /// 422: the questions or answers break the registration rules.
    InvalidAnswers,
    /// 422: not an email address the service can send to.
    InvalidEmail,
    /// 409: there is no registration waiting for its emailed code.
    NoPendingRegistration,

    // Emailed codes.
    /// 400: the code is not right; tries remain.
    CodeWrong,
    /// 400: the code has expired or was replaced.
    CodeExpired,
    /// 400: the code took too many wrong tries.
    CodeLocked,
    /// 429: a code was sent moments ago, or too many this hour.
    CodeRecentlySent,

    // Unlocking.
    /// 403: three unsuccessful attempts locked self-service until an RA clears it.
    LockedOut,
    /// 409: the holder never registered, so self-service cannot unlock their card.
    NotRegistered,
    /// 409: the service does not hold the card's PUK.
    PukUnknown,
    /// 400: the unlock attempt expired, ended or is at another step.
    AttemptExpired,
    /// 400: one or more answers are not right.
    AnswersWrong,
    /// 409: the card's report does not show a finished unlock.
    UnlockIncomplete,

    // The RA console.
    /// 400: a reason must be given for this action.
    ReasonRequired,
    /// 400: a search needs more characters.
    QueryTooShort,
    /// 400: more people match a search than one page shows; it needs more of the name, or a
    /// user id or card GUID.
    TooManyMatches,
    /// 400: not a user id.
    InvalidUserId,
    /// 400: not a name the directory accepts.
    InvalidName,
    /// 400: not a date in the form YYYY-MM-DD.
    InvalidDate,
    /// 400: not a report period.
    InvalidPeriod,
    /// 400: not a status a card can be set to.
    InvalidStatus,
    /// 404: no such person.
    NoSuchUser,
    /// 404: no such card.
    NoSuchCard,
    /// 409: a person with that id exists already.
    UserExists,
    /// 409: the person is not locked out of self-service.
    NotLockedOut,
    /// 409: a revoked card cannot change status again.
    CardRevoked,

    // Issuing cards.
    /// 409: the card has an identity this service did not give it.
    CardNotBlank,
    /// 409: the card was issued by this service already.
    CardAlreadyIssued,
    /// 409: the issuance ended (completed, abandoned or expired).
    IssuanceEnded,
    /// 409: the half-issued card cannot be resumed by this officer, for this person or now.
    IssuanceNotResumable,
    /// 409: the card's report does not show a finished issuance.
    IssuanceIncomplete,
    /// 401: the agent's key offer is not vouched for as this step requires.
    OfferInvalid,
    /// 401: the card's proof of its new keys does not verify.
    ProofInvalid,
    /// 422: the card gave no attestation and this service requires one.
    AttestationRequired,
    /// 422: the attestation does not chain to a trusted maker root or names other keys.
    AttestationInvalid,

    // Unlocking at the RA's desk.
    /// 400: the officer must say how they checked the holder's identity.
    IdentityCheckRequired,
    /// 403: an officer cannot unlock their own card; another officer must.
    OwnCard,
    /// 409: the card in the reader is not one of this person's cards.
    CardNotTheirs,

    /// A code this build does not know (a newer backend): the message still reads well.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status this code travels with.
    pub const fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson
            | InvalidRequest
            | ChallengeExpired
            | WrongCard
            | CodeWrong
            | CodeExpired
            | CodeLocked
            | AttemptExpired
            | AnswersWrong
            | ReasonRequired
            | QueryTooShort
            | TooManyMatches
            | InvalidUserId
            | InvalidName
            | InvalidDate
            | InvalidPeriod
            | InvalidStatus
            | IdentityCheckRequired => 400,
            Unauthenticated | SignatureInvalid | OfferInvalid | ProofInvalid => 401,
            CrossSite | NotRa | CardNotRecognised | CardNotActive | PasscodeRequired | LockedOut
            | OwnCard => 403,
            NotFound | NoSuchUser | NoSuchCard => 404,
            NoPendingRegistration
            | NotRegistered
            | PukUnknown
            | UnlockIncomplete
            | UserExists
            | NotLockedOut
            | CardRevoked
            | CardNotBlank
            | CardAlreadyIssued
            | IssuanceEnded
            | IssuanceNotResumable
            | IssuanceIncomplete
            | CardNotTheirs => 409,
            InvalidAnswers | InvalidEmail | AttestationRequired | AttestationInvalid => 422,
            CodeRecentlySent | RateLimited => 429,
            Unavailable => 503,
            Internal | Unknown => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_travel_as_their_snake_case_names() {
        assert_eq!(serde_json::to_string(&ErrorCode::LockedOut).unwrap(), "\"locked_out\"");
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"issuance_not_resumable\"").unwrap(),
            ErrorCode::IssuanceNotResumable
        );
    }

    #[test]
    fn a_code_from_a_newer_backend_reads_as_unknown() {
        assert_eq!(serde_json::from_str::<ErrorCode>("\"something_new\"").unwrap(), ErrorCode::Unknown);
    }
}
