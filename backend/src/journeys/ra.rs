//! The RA console's rules (issue 7): Registration Authority staff, signed in with their own card,
//! find people, see their cards and self-service state, clear a self-service lockout, withdraw a
//! registration, suspend or revoke a card, read and verify the audit trail, and report on a
//! period. Only an officer (`session::RaOfficer`) reaches these, and every action — looking a
//! person up included — is itself audited with the officer as the actor.

use protocol::error_code::ErrorCode;
use protocol::ra::{
    AuditRow, AuditVerification, CardStatusChange, NewPerson, Reason, Report, ReportCounts, ReportDay,
    UserDetail, UserSummary,
};
use serde::Deserialize;

use crate::{
    audit::{self, Entry},
    error::ApiError,
    session,
    startup::AppState,
    store::{
        people::{self, CardStatus, User},
        registrations,
        unlock_attempts::{self, Step},
    },
    time::{civil_from_days, parse_day},
};

/// A search shows everyone it matches, up to this many; more is refused, to be narrowed.
const SEARCH_LIMIT: i64 = 50;
const AUDIT_PAGE: i64 = 100;
/// Reports cover at most about a year: enough for an RA manager, bounded for the database.
const MAX_REPORT_DAYS: i64 = 366;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
}

pub async fn search(state: &AppState, query: SearchQuery) -> Result<Vec<UserSummary>, ApiError> {
    let q = query.q.trim().to_lowercase();
    if q.chars().count() < 2 {
        return Err(ApiError::rejected(
            ErrorCode::QueryTooShort,
            "Enter at least 2 characters: part of a name or email, a user id or a card GUID.",
        ));
    }
    let mut conn = state.db.pool().acquire().await?;
    let found = people::search(&mut conn, &q, &q, SEARCH_LIMIT + 1).await?;
    if found.len() <= SEARCH_LIMIT as usize {
        return Ok(found.into_iter().map(|f| f.person).collect());
    }
    // Too many to show: a typed user id or card GUID still finds its person.
    let exact: Vec<UserSummary> = found.into_iter().filter(|f| f.exact).map(|f| f.person).collect();
    if !exact.is_empty() {
        return Ok(exact);
    }
    Err(ApiError::rejected(
        ErrorCode::TooManyMatches,
        format!(
            "More than {SEARCH_LIMIT} people match. Add more of the name (a first name and surname), \
             or search by user id or card GUID."
        ),
    ))
}

pub async fn person(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    people::user_by_user_id(&state.db, user_id)
        .await?
        .ok_or_else(|| ApiError::rejected(ErrorCode::NoSuchUser, "There is no one with that user id."))
}

pub async fn user(state: &AppState, officer: User, user_id: String) -> Result<UserDetail, ApiError> {
    let person = person(state, &user_id).await?;
    let cards = super::profile::card_summaries(state, person.id).await?;
    let self_service = super::profile::self_service(state, person.id).await?;
    let mut conn = state.db.pool().acquire().await?;
    let standing = people::unlock_standing(&mut conn, person.id).await?.unwrap_or_default();
    drop(conn);
    // Who looked at whom is itself part of the record.
    audit::record(&state.db, Entry::new(&officer.user_id, "ra_viewed_user").subject(&person.user_id)).await?;
    Ok(UserDetail {
        user_id: person.user_id,
        name: person.name,
        contact_email: person.contact_email,
        roles: person.roles,
        cards,
        self_service,
        unlock_failures: u32::try_from(standing.failures).unwrap_or(u32::MAX),
        locked_out_at: standing.locked_at,
    })
}

pub fn checked_reason(reason: &Reason) -> Result<String, ApiError> {
    let reason = reason.reason.trim();
    if reason.chars().count() < 3 || reason.chars().count() > 500 {
        return Err(ApiError::rejected(
            ErrorCode::ReasonRequired,
            "Say why (3 to 500 characters): it goes into the audit trail.",
        ));
    }
    Ok(reason.to_owned())
}

/// A user id as the service keeps it (trimmed), or why it is not one.
pub fn checked_user_id(user_id: &str) -> Result<&str, &'static str> {
    let user_id = user_id.trim();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if user_id.is_empty() || user_id.len() > 64 || !user_id.bytes().all(allowed) {
        return Err("A user id is 1 to 64 letters, digits, dots, hyphens or underscores.");
    }
    Ok(user_id)
}

/// A person's name (trimmed), or why it is not one.
pub fn checked_name(name: &str) -> Result<&str, &'static str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("Enter the person's full name.");
    }
    Ok(name)
}

/// An RA adds a person whose identity they checked at the desk (before issuing their first card).
pub async fn add_person(state: &AppState, officer: User, new: NewPerson) -> Result<UserSummary, ApiError> {
    let reason = checked_reason(&Reason { reason: new.reason.clone() })?;
    let user_id =
        checked_user_id(&new.user_id).map_err(|m| ApiError::rejected(ErrorCode::InvalidUserId, m))?;
    let name = checked_name(&new.name).map_err(|m| ApiError::rejected(ErrorCode::InvalidName, m))?;
    let email = match new.contact_email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => Some(super::registration::check_email(email, &state.settings.email_domains)?),
        None => None,
    };
    let added = people::add_user(
        &state.db,
        &people::NewUser { user_id, name, contact_email: email.as_deref(), roles: &[] },
    )
    .await;
    let person = match added {
        Ok(person) => person,
        Err(people::PeopleError::UserExists(_)) => {
            return Err(ApiError::rejected(
                ErrorCode::UserExists,
                "Someone already has that user id. Search for them instead.",
            ))
        }
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    audit::record(
        &state.db,
        Entry::new(&officer.user_id, "ra_user_added")
            .subject(&person.user_id)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
    Ok(UserSummary {
        user_id: person.user_id,
        name: person.name,
        contact_email: person.contact_email,
        registered: false,
        locked_out: false,
    })
}

pub async fn clear_lockout(
    state: &AppState,
    officer: User,
    user_id: String,
    reason: Reason,
) -> Result<(), ApiError> {
    let reason = checked_reason(&reason)?;
    let person = person(state, &user_id).await?;
    let mut tx = state.db.begin_write().await?;
    if !people::clear_lockout(&mut tx, person.id).await? {
        return Err(ApiError::rejected(
            ErrorCode::NotLockedOut,
            "Self-service is not locked for this person, and they have no failed attempts to clear.",
        ));
    }
    audit::append(
        &mut tx,
        Entry::new(&officer.user_id, "ra_lockout_cleared")
            .subject(&person.user_id)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn withdraw_registration(
    state: &AppState,
    officer: User,
    user_id: String,
    reason: Reason,
) -> Result<(), ApiError> {
    let reason = checked_reason(&reason)?;
    let person = person(state, &user_id).await?;
    let mut conn = state.db.pool().acquire().await?;
    let email = registrations::email(&mut conn, person.id, registrations::Status::Active).await?;
    drop(conn);
    let mut tx = state.db.begin_write().await?;
    if registrations::delete(&mut tx, person.id, None).await? == 0 {
        return Err(ApiError::rejected(
            ErrorCode::NotRegistered,
            "This person is not registered for self-service.",
        ));
    }
    // Any unlock in progress on the old registration ends with it.
    unlock_attempts::fail_all(&mut tx, person.id, &Step::OPEN).await?;
    audit::append(
        &mut tx,
        Entry::new(&officer.user_id, "ra_registration_withdrawn")
            .subject(&person.user_id)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
    if let Some(email) = email {
        state.outbox.enqueue(
            &mut tx,
            &email,
            "Your smartcard self-service registration was withdrawn",
            "Your Registration Authority (RA) has withdrawn your registration for smartcard self-service.\n\n\
             You can register again after signing in with your smartcard. If you did not expect this, \
             contact your RA.\n",
        )
        .await?;
    }
    tx.commit().await?;
    state.outbox.wake();
    Ok(())
}

pub async fn card_status(
    state: &AppState,
    officer: User,
    guid: String,
    change: CardStatusChange,
) -> Result<(), ApiError> {
    let reason = checked_reason(&Reason { reason: change.reason.clone() })?;
    let wanted = match change.status.as_str() {
        "active" => CardStatus::Active,
        "suspended" => CardStatus::Suspended,
        "revoked" => CardStatus::Revoked,
        _ => {
            return Err(ApiError::rejected(
                ErrorCode::InvalidStatus,
                "A card can be made active, suspended or revoked.",
            ))
        }
    };
    let card = people::card_by_guid(&state.db, &guid)
        .await?
        .ok_or_else(|| ApiError::rejected(ErrorCode::NoSuchCard, "There is no card with that GUID."))?;
    if card.status == CardStatus::Revoked {
        return Err(ApiError::rejected(
            ErrorCode::CardRevoked,
            "This card is revoked, which is final. Issue a new card instead.",
        ));
    }
    let mut tx = state.db.begin_write().await?;
    people::set_card_status(&mut tx, card.id, wanted).await?;
    if wanted != CardStatus::Active {
        // A suspended or revoked card signs nobody in any more, including sessions it opened.
        session::delete_for_card(&mut tx, &card.guid).await?;
        // Nor is it unlocked: its unlocks in progress (self-service or at a desk) end now.
        unlock_attempts::fail_for_card(&mut tx, &card.guid, &Step::OPEN).await?;
    }
    audit::append(
        &mut tx,
        Entry::new(&officer.user_id, "ra_card_status_changed").subject(&card.guid).details(
            serde_json::json!({
                "from": card.status.as_str(),
                "to": wanted.as_str(),
                "reason": reason,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    user_id: Option<String>,
    event: Option<String>,
    /// `YYYY-MM-DD`, UTC, inclusive.
    from: Option<String>,
    to: Option<String>,
    /// Rows older than this id (the next page).
    before: Option<i64>,
}

fn bad_day() -> ApiError {
    ApiError::rejected(ErrorCode::InvalidDate, "Dates are written YYYY-MM-DD, for example 2026-11-28.")
}

/// Unix seconds of the start of `day` (`YYYY-MM-DD`, UTC).
fn day_start(day: &str) -> Result<i64, ApiError> {
    parse_day(day).map(|d| d * 86_400).ok_or_else(bad_day)
}

pub async fn audit_trail(state: &AppState, query: AuditQuery) -> Result<Vec<AuditRow>, ApiError> {
    let from =
        query.from.as_deref().filter(|d| !d.is_empty()).map(day_start).transpose()?.unwrap_or(i64::MIN);
    let to = query
        .to
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(day_start)
        .transpose()?
        .map_or(i64::MAX, |t| t + 86_400);
    let event = query.event.filter(|e| !e.is_empty());
    // A person's trail: what they did, what was done to them, and what happened to their cards.
    let subjects: Option<Vec<String>> = match query.user_id.as_deref().filter(|u| !u.is_empty()) {
        Some(user_id) => {
            let person = person(state, user_id).await?;
            let mut subjects: Vec<String> = people::cards_of(&state.db, person.id)
                .await?
                .into_iter()
                .map(|c| c.guid.to_string())
                .collect();
            subjects.push(person.user_id);
            Some(subjects)
        }
        None => None,
    };
    let filter = audit::Filter { from, to, before: query.before.unwrap_or(i64::MAX), event, subjects };
    let mut conn = state.db.pool().acquire().await?;
    let rows = audit::page(&mut conn, &filter, AUDIT_PAGE).await?;
    Ok(rows)
}

pub async fn verify_audit(state: &AppState, officer: User) -> Result<AuditVerification, ApiError> {
    let rows = audit::count(&mut *state.db.pool().acquire().await?).await?;
    let first_broken_row = audit::first_broken_row(&state.db).await?;
    let details = serde_json::json!({ "rows": rows, "first_broken_row": first_broken_row });
    audit::record(&state.db, Entry::new(&officer.user_id, "ra_audit_verified").details(details)).await?;
    Ok(AuditVerification { rows, first_broken_row })
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    from: String,
    to: String,
}

/// Picks one column of a report row.
type Column = fn(&mut ReportCounts) -> &mut u64;

/// The events each report column counts.
const COUNTED: [(&str, Column); 5] = [
    ("registration_completed", |c| &mut c.registrations),
    ("card_unlocked", |c| &mut c.unlocks),
    ("selfservice_locked_out", |c| &mut c.lockouts),
    ("ra_lockout_cleared", |c| &mut c.lockouts_cleared),
    ("card_unlocked_at_desk", |c| &mut c.desk_unlocks),
];

async fn build_report(state: &AppState, query: &ReportQuery) -> Result<Report, ApiError> {
    let (first, last) =
        (parse_day(&query.from).ok_or_else(bad_day)?, parse_day(&query.to).ok_or_else(bad_day)?);
    if last < first || last - first >= MAX_REPORT_DAYS {
        return Err(ApiError::rejected(
            ErrorCode::InvalidPeriod,
            format!("Choose a period of 1 to {MAX_REPORT_DAYS} days, the start before the end."),
        ));
    }
    let events = COUNTED.map(|(event, _)| event);
    let rows = audit::daily_counts(&mut *state.db.pool().acquire().await?, first, last, &events).await?;
    let mut days: Vec<ReportDay> = (first..=last)
        .map(|d| ReportDay { day: civil_from_days(d), counts: ReportCounts::default() })
        .collect();
    let mut totals = ReportCounts::default();
    for (day, event, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        let Some((_, column)) = COUNTED.iter().find(|(e, _)| *e == event) else { continue };
        if let Some(slot) = usize::try_from(day - first).ok().and_then(|i| days.get_mut(i)) {
            *column(&mut slot.counts) += n;
            *column(&mut totals) += n;
        }
    }
    Ok(Report { from: civil_from_days(first), to: civil_from_days(last), days, totals })
}

pub async fn report(state: &AppState, officer: User, query: ReportQuery) -> Result<Report, ApiError> {
    let report = build_report(state, &query).await?;
    let details = serde_json::json!({ "from": report.from, "to": report.to });
    audit::record(&state.db, Entry::new(&officer.user_id, "ra_report_viewed").details(details)).await?;
    Ok(report)
}

/// The report as a download (the audit trail says it left the console), and its file name.
pub async fn report_csv(
    state: &AppState,
    officer: User,
    query: ReportQuery,
) -> Result<(String, String), ApiError> {
    let report = build_report(state, &query).await?;
    let details = serde_json::json!({ "from": report.from, "to": report.to, "format": "csv" });
    audit::record(&state.db, Entry::new(&officer.user_id, "ra_report_downloaded").details(details)).await?;
    let filename = format!("self-service-{}-to-{}.csv", report.from, report.to);
    Ok((filename, to_csv(&report)))
}

fn to_csv(report: &Report) -> String {
    let line = |label: &str, c: &ReportCounts| {
        format!(
            "{label},{},{},{},{},{}\r\n",
            c.registrations, c.unlocks, c.lockouts, c.lockouts_cleared, c.desk_unlocks
        )
    };
    // Desk unlocks last: a sheet built on the earlier columns keeps working.
    let mut csv = String::from("day,registrations,unlocks,lockouts,lockouts_cleared,desk_unlocks\r\n");
    for day in &report.days {
        csv.push_str(&line(&day.day, &day.counts));
    }
    csv.push_str(&line("total", &report.totals));
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_has_a_header_a_row_per_day_and_a_total() {
        let counts =
            ReportCounts { registrations: 2, unlocks: 1, desk_unlocks: 1, lockouts: 0, lockouts_cleared: 0 };
        let report = Report {
            from: "2026-11-27".into(),
            to: "2026-11-28".into(),
            days: vec![
                ReportDay { day: "2026-11-27".into(), counts },
                ReportDay { day: "2026-11-28".into(), counts: ReportCounts::default() },
            ],
            totals: counts,
        };
        assert_eq!(
            to_csv(&report),
            "day,registrations,unlocks,lockouts,lockouts_cleared,desk_unlocks\r\n2026-11-27,2,1,0,0,1\r\n2026-11-28,0,0,0,0,0\r\ntotal,2,1,0,0,1\r\n"
        );
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(checked_reason(&Reason { reason: "  ok ".into() }).is_err());
        assert_eq!(
            checked_reason(&Reason { reason: " Phoned the holder ".into() }).unwrap(),
            "Phoned the holder"
        );
        assert!(checked_reason(&Reason { reason: "x".repeat(501) }).is_err());
    }
}
