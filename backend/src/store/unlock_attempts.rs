//! Unlock attempts: one row per unlock — self-service, or at an RA's desk — moving through its
//! steps.

use sqlx::Row;

use protocol::card_guid::CardGuid;

use super::Conn;

/// Where an attempt is. Only the three open steps can move on; `Done` and `Failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The questions are asked and not yet answered right.
    Questions,
    /// The answers were right; the emailed code is awaited.
    Code,
    /// The code was right; the PUK may be released to the card.
    Release,
    /// The card reported the unlock.
    Done,
    /// Ended by a lockout or an RA withdrawal.
    Failed,
}

impl Step {
    pub const OPEN: [Step; 3] = [Step::Questions, Step::Code, Step::Release];

    fn as_str(self) -> &'static str {
        match self {
            Step::Questions => "questions",
            Step::Code => "code",
            Step::Release => "release",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }
}

/// An RA's unlock at the desk: who drives it (`None`: the operator's command), how they checked
/// the holder's identity, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    pub officer_ref: Option<i64>,
    pub identity_check: String,
    pub reason: String,
}

/// An attempt that is open at some step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAttempt {
    pub user_ref: i64,
    pub guid: CardGuid,
    /// The catalogue ids asked, in order (empty under the registration-free policy and at a desk).
    pub question_ids: Vec<u32>,
    /// `None` for self-service.
    pub desk: Option<Desk>,
}

/// What a new attempt records.
#[derive(Debug)]
pub struct NewAttempt<'a> {
    pub id: &'a str,
    pub user_ref: i64,
    pub guid: &'a str,
    pub question_ids: &'a [u32],
    pub step: Step,
    pub created_at: i64,
    pub expires_at: i64,
    pub desk: Option<&'a Desk>,
}

const SELF_SERVICE: &str = "self_service";
const DESK: &str = "desk";

/// The questions attempt `id` asked, in order.
async fn questions_of(conn: &mut Conn, id: &str) -> sqlx::Result<Vec<u32>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT question_id FROM unlock_attempt_questions WHERE attempt_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    ids.into_iter().map(|q| u32::try_from(q).map_err(|e| sqlx::Error::Decode(Box::new(e)))).collect()
}

/// Attempt `id`, if it is at `step` and has not expired at `now`.
pub async fn open_at(conn: &mut Conn, id: &str, step: Step, now: i64) -> sqlx::Result<Option<OpenAttempt>> {
    let row = sqlx::query(
        "SELECT user_ref, card_guid, route, desk_officer, desk_identity_check, desk_reason FROM unlock_attempts \
         WHERE id = $1 AND status = $2 AND expires_at >= $3",
    )
    .bind(id)
    .bind(step.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let desk = if row.try_get::<String, _>("route")? == DESK {
        Some(Desk {
            officer_ref: row.try_get("desk_officer")?,
            identity_check: row.try_get::<Option<String>, _>("desk_identity_check")?.unwrap_or_default(),
            reason: row.try_get::<Option<String>, _>("desk_reason")?.unwrap_or_default(),
        })
    } else {
        None
    };
    Ok(Some(OpenAttempt {
        user_ref: row.try_get("user_ref")?,
        guid: super::guid_column(&row, "card_guid")?,
        question_ids: questions_of(conn, id).await?,
        desk,
    }))
}

/// The card's attempt still at its questions, if any: its id and the questions it asked.
pub async fn asking_for_card(
    conn: &mut Conn,
    guid: &str,
    now: i64,
) -> sqlx::Result<Option<(String, Vec<u32>)>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM unlock_attempts WHERE card_guid = $1 AND status = $2 AND expires_at >= $3",
    )
    .bind(guid)
    .bind(Step::Questions.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let asked = questions_of(conn, &id).await?;
    Ok(Some((id, asked)))
}

/// How long an ended attempt is kept after it expired (the audit trail keeps what happened):
/// the table holds a day's attempts, not every attempt ever made.
const KEPT_AFTER_EXPIRY_SECONDS: i64 = 24 * 3600;

pub async fn insert(conn: &mut Conn, new: &NewAttempt<'_>) -> sqlx::Result<()> {
    let swept_before = new.created_at - KEPT_AFTER_EXPIRY_SECONDS;
    // The questions of the attempts the sweep is about to remove: the same range, so the same rows.
    let questions = format!(
        "DELETE FROM unlock_attempt_questions WHERE attempt_id IN (SELECT id FROM unlock_attempts WHERE {})",
        crate::db::oldest("unlock_attempts", "expires_at")
    );
    sqlx::query(&questions).bind(swept_before).execute(&mut *conn).await?;
    crate::db::sweep(conn, "unlock_attempts", "expires_at", swept_before).await?;
    sqlx::query(
        "INSERT INTO unlock_attempts (id, user_ref, card_guid, status, created_at, expires_at, route, \
         desk_officer, desk_identity_check, desk_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id)
    .bind(new.user_ref)
    .bind(new.guid)
    .bind(new.step.as_str())
    .bind(new.created_at)
    .bind(new.expires_at)
    .bind(if new.desk.is_some() { DESK } else { SELF_SERVICE })
    .bind(new.desk.and_then(|d| d.officer_ref))
    .bind(new.desk.map(|d| d.identity_check.as_str()))
    .bind(new.desk.map(|d| d.reason.as_str()))
    .execute(&mut *conn)
    .await?;
    if new.question_ids.is_empty() {
        return Ok(());
    }
    // The questions in one statement: a round trip each was a fifth of the start's (issue 16).
    let rows: Vec<String> =
        (0..new.question_ids.len()).map(|row| crate::db::row_placeholders(row, 3)).collect();
    let sql = format!(
        "INSERT INTO unlock_attempt_questions (attempt_id, position, question_id) VALUES {}",
        rows.join(", ")
    );
    let insert = (1_i64..).zip(new.question_ids).fold(sqlx::query(&sql), |q, (position, question)| {
        q.bind(new.id).bind(position).bind(i64::from(*question))
    });
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// Moves attempt `id` from `from` to `to`; false if it was not at `from` (a parallel request
/// moved it first).
pub async fn advance(conn: &mut Conn, id: &str, from: Step, to: Step) -> sqlx::Result<bool> {
    let moved = sqlx::query("UPDATE unlock_attempts SET status = $1 WHERE id = $2 AND status = $3")
        .bind(to.as_str())
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(moved.rows_affected() == 1)
}

/// Ends the person's attempts that are at one of `steps`.
pub async fn fail_all(conn: &mut Conn, user_ref: i64, steps: &[Step]) -> sqlx::Result<()> {
    for step in steps {
        sqlx::query("UPDATE unlock_attempts SET status = $1 WHERE user_ref = $2 AND status = $3")
            .bind(Step::Failed.as_str())
            .bind(user_ref)
            .bind(step.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Ends the card's attempts that are at one of `steps`.
pub async fn fail_for_card(conn: &mut Conn, guid: &str, steps: &[Step]) -> sqlx::Result<()> {
    for step in steps {
        sqlx::query("UPDATE unlock_attempts SET status = $1 WHERE card_guid = $2 AND status = $3")
            .bind(Step::Failed.as_str())
            .bind(guid)
            .bind(step.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Counts one more PUK release for attempt `id` if it is at the release step and has had fewer
/// than `max`; the count so far, or `None` when it may not release again.
pub async fn count_release(conn: &mut Conn, id: &str, max: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE unlock_attempts SET releases = releases + 1 \
         WHERE id = $1 AND status = $2 AND releases < $3 RETURNING releases",
    )
    .bind(id)
    .bind(Step::Release.as_str())
    .bind(max)
    .fetch_optional(&mut *conn)
    .await
}

/// Marks attempt `id` done (the card reported its unlock); false if it was no longer releasing.
pub async fn finish(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<bool> {
    let finished =
        sqlx::query("UPDATE unlock_attempts SET status = $1, unlocked_at = $2 WHERE id = $3 AND status = $4")
            .bind(Step::Done.as_str())
            .bind(now)
            .bind(id)
            .bind(Step::Release.as_str())
            .execute(&mut *conn)
            .await?;
    Ok(finished.rows_affected() == 1)
}
