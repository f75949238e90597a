//! Typed calls to `/api/ra`.

use protocol::ra::{
    AuditRow, AuditVerification, CardIssued, CardStatusChange, IssueCertificates, IssueComplete, IssueKeys,
    IssueStart, IssueStarted, NewPerson, Reason, Report, UserDetail, UserSummary,
};

use crate::api::{get, post, post_empty, ApiError};

/// Percent-encodes a query value (letters, digits and `-._~` pass as they are).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn search(q: &str) -> Result<Vec<UserSummary>, ApiError> {
    get(&format!("/api/ra/users?q={}", encode(q))).await
}

pub async fn user(user_id: &str) -> Result<UserDetail, ApiError> {
    get(&format!("/api/ra/users/{}", encode(user_id))).await
}

pub async fn clear_lockout(user_id: &str, reason: String) -> Result<(), ApiError> {
    post_empty(&format!("/api/ra/users/{}/clear-lockout", encode(user_id)), &Reason { reason }).await
}

pub async fn withdraw_registration(user_id: &str, reason: String) -> Result<(), ApiError> {
    post_empty(&format!("/api/ra/users/{}/withdraw-registration", encode(user_id)), &Reason { reason }).await
}

pub async fn card_status(guid: &str, status: &str, reason: String) -> Result<(), ApiError> {
    let change = CardStatusChange { status: status.to_owned(), reason };
    post_empty(&format!("/api/ra/cards/{}/status", encode(guid)), &change).await
}

/// The query string of an audit-trail view (also the page's own URL query).
pub fn audit_query(user_id: &str, event: &str, from: &str, to: &str, before: Option<i64>) -> String {
    let mut query = format!(
        "user_id={}&event={}&from={}&to={}",
        encode(user_id),
        encode(event),
        encode(from),
        encode(to)
    );
    if let Some(before) = before {
        query.push_str(&format!("&before={before}"));
    }
    query
}

pub async fn audit(query: &str) -> Result<Vec<AuditRow>, ApiError> {
    get(&format!("/api/ra/audit?{query}")).await
}

pub async fn verify_audit() -> Result<AuditVerification, ApiError> {
    post("/api/ra/audit/verify", &()).await
}

pub async fn report(from: &str, to: &str) -> Result<Report, ApiError> {
    get(&format!("/api/ra/report?from={}&to={}", encode(from), encode(to))).await
}

pub async fn add_person(person: &NewPerson) -> Result<UserSummary, ApiError> {
    post("/api/ra/users", person).await
}

pub async fn issue_start(user_id: &str, start: &IssueStart) -> Result<IssueStarted, ApiError> {
    post(&format!("/api/ra/users/{}/issue", encode(user_id)), start).await
}

pub async fn issue_keys(issuance_id: &str, keys: &IssueKeys) -> Result<IssueCertificates, ApiError> {
    post(&format!("/api/ra/issuances/{}/keys", encode(issuance_id)), keys).await
}

pub async fn issue_complete(issuance_id: &str, complete: &IssueComplete) -> Result<CardIssued, ApiError> {
    post(&format!("/api/ra/issuances/{}/complete", encode(issuance_id)), complete).await
}

/// Desk unlock, step 1: the challenge the holder's card signs (bound to this officer and person).
pub async fn desk_challenge(user_id: &str) -> Result<protocol::api::ChallengeIssued, ApiError> {
    post(&format!("/api/ra/users/{}/desk-unlock/challenge", encode(user_id)), &()).await
}

pub async fn desk_start(
    user_id: &str,
    start: &protocol::ra::DeskUnlockStart,
) -> Result<protocol::ra::DeskUnlockStarted, ApiError> {
    post(&format!("/api/ra/users/{}/desk-unlock", encode(user_id)), start).await
}
