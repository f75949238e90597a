//! The RA console's routes (`journeys::ra`): every one refuses anyone without the `ra` role (403,
//! through the [`RaOfficer`] extractor).

use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use protocol::ra::{
    AuditRow, AuditVerification, CardStatusChange, NewPerson, Reason, Report, UserDetail, UserSummary,
};

use crate::{
    error::{ApiError, AppJson},
    journeys::ra::{self, AuditQuery, ReportQuery, SearchQuery},
    session::RaOfficer,
    startup::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ra/users", get(search).post(add_person))
        .route("/ra/users/{user_id}", get(user))
        .route("/ra/users/{user_id}/clear-lockout", post(clear_lockout))
        .route("/ra/users/{user_id}/withdraw-registration", post(withdraw_registration))
        .route("/ra/cards/{guid}/status", post(card_status))
        .route("/ra/audit", get(audit_trail))
        .route("/ra/audit/verify", post(verify_audit))
        .route("/ra/report", get(report))
        .route("/ra/report.csv", get(report_csv))
}

async fn search(
    State(state): State<AppState>,
    RaOfficer(_officer): RaOfficer,
    Query(query): Query<SearchQuery>,
) -> Result<AppJson<Vec<UserSummary>>, ApiError> {
    ra::search(&state, query).await.map(AppJson)
}

async fn user(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
) -> Result<AppJson<UserDetail>, ApiError> {
    ra::user(&state, officer, user_id).await.map(AppJson)
}

async fn clear_lockout(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
    AppJson(reason): AppJson<Reason>,
) -> Result<StatusCode, ApiError> {
    ra::clear_lockout(&state, officer, user_id, reason).await.map(|()| StatusCode::NO_CONTENT)
}

async fn withdraw_registration(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(user_id): Path<String>,
    AppJson(reason): AppJson<Reason>,
) -> Result<StatusCode, ApiError> {
    ra::withdraw_registration(&state, officer, user_id, reason).await.map(|()| StatusCode::NO_CONTENT)
}

async fn card_status(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Path(guid): Path<String>,
    AppJson(change): AppJson<CardStatusChange>,
) -> Result<StatusCode, ApiError> {
    ra::card_status(&state, officer, guid, change).await.map(|()| StatusCode::NO_CONTENT)
}

async fn audit_trail(
    State(state): State<AppState>,
    RaOfficer(_officer): RaOfficer,
    Query(query): Query<AuditQuery>,
) -> Result<AppJson<Vec<AuditRow>>, ApiError> {
    ra::audit_trail(&state, query).await.map(AppJson)
}

async fn verify_audit(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
) -> Result<AppJson<AuditVerification>, ApiError> {
    ra::verify_audit(&state, officer).await.map(AppJson)
}

async fn report(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Query(query): Query<ReportQuery>,
) -> Result<AppJson<Report>, ApiError> {
    ra::report(&state, officer, query).await.map(AppJson)
}

async fn add_person(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    AppJson(new): AppJson<NewPerson>,
) -> Result<(StatusCode, AppJson<UserSummary>), ApiError> {
    Ok((StatusCode::CREATED, AppJson(ra::add_person(&state, officer, new).await?)))
}

async fn report_csv(
    State(state): State<AppState>,
    RaOfficer(officer): RaOfficer,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let (filename, csv) = ra::report_csv(&state, officer, query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        csv,
    )
        .into_response())
}
