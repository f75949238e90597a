//! Issuing a blank card to a person from the RA console (`journeys::issuance`, which the
//! operator's `backend admin issue-card` drives too).

use axum::{
    extract::{Path, State},
    routing::post,
    Router,
};
use protocol::ra::{CardIssued, IssueCertificates, IssueComplete, IssueKeys, IssueStart, IssueStarted};

use crate::{
    error::{ApiError, AppJson},
    journeys::{
        issuance::{self, Issuer, Officer},
        ra,
    },
    session::RaOfficer,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ra/users/{user_id}/issue", post(start_route))
        .route("/ra/issuances/{id}/keys", post(certify_route))
        .route("/ra/issuances/{id}/complete", post(complete_route))
}

async fn start_route(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
    AppJson(request): AppJson<IssueStart>,
) -> Result<AppJson<IssueStarted>, ApiError> {
    let holder = ra::person(&state, &user_id).await?;
    Ok(AppJson(issuance::start(Issuer::of(&state), Officer::Ra(&officer), &holder, &request).await?))
}

async fn certify_route(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(id): Path<String>,
    AppJson(keys): AppJson<IssueKeys>,
) -> Result<AppJson<IssueCertificates>, ApiError> {
    Ok(AppJson(issuance::certify(Issuer::of(&state), Officer::Ra(&officer), &id, &keys).await?))
}

async fn complete_route(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(id): Path<String>,
    AppJson(IssueComplete { report }): AppJson<IssueComplete>,
) -> Result<AppJson<CardIssued>, ApiError> {
    Ok(AppJson(issuance::complete(Issuer::of(&state), Officer::Ra(&officer), &id, report).await?))
}
