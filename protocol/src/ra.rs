//! Types of the RA console's API under `/api/ra` (signed-in users with the `ra` role only).

use serde::{Deserialize, Serialize};

use crate::api::{CardSummary, SelfService};

/// One row of `GET /api/ra/users?q=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct Reason {
    pub reason: String,
}

/// `POST /api/ra/cards/{guid}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStatusChange {
    /// `active`, `suspended` or `revoked` (revoking is final).
    pub status: String,
    pub reason: String,
}

/// One audit row, as `GET /api/ra/audit` lists them (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct AuditVerification {
    pub rows: i64,
    /// The first row whose hash does not match, if any: everything from it on is suspect.
    pub first_broken_row: Option<i64>,
}

/// `GET /api/ra/report?from=YYYY-MM-DD&to=YYYY-MM-DD`: counts per day (UTC), both ends included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub days: Vec<ReportDay>,
    pub totals: ReportCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub counts: ReportCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCounts {
    pub registrations: u64,
    pub unlocks: u64,
    pub lockouts: u64,
    pub lockouts_cleared: u64,
}
