//! Self-service registrations: an address and four hashed answers, pending until the emailed
//! code is entered, then active. A person has at most one of each.

use sqlx::Row;

use super::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the emailed code.
    Pending,
    /// In force: the person can unlock with it.
    Active,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
        }
    }
}

/// One registered answer, as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub question_id: u32,
    pub answer_hash: String,
}

/// The active registration's address and when it became active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub email: String,
    pub registered_at: i64,
}

/// The pending registration's address and its newest unused code, if one is out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub email: String,
    pub code_created_at: Option<i64>,
    pub code_expires_at: Option<i64>,
}

pub async fn active(conn: &mut Conn, user_ref: i64) -> sqlx::Result<Option<Active>> {
    let row =
        sqlx::query("SELECT email, registered_at FROM registrations WHERE user_ref = $1 AND status = $2")
            .bind(user_ref)
            .bind(Status::Active.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|row| {
        Ok(Active {
            email: row.try_get("email")?,
            registered_at: row.try_get::<Option<i64>, _>("registered_at")?.unwrap_or_default(),
        })
    })
    .transpose()
}

pub async fn pending(conn: &mut Conn, user_ref: i64) -> sqlx::Result<Option<Pending>> {
    let row = sqlx::query(
        "SELECT r.email, c.expires_at, c.created_at FROM registrations r \
         LEFT JOIN one_time_codes c ON c.user_ref = r.user_ref AND c.purpose = 'registration' AND c.used_at IS NULL \
         WHERE r.user_ref = $1 AND r.status = $2 ORDER BY c.created_at DESC LIMIT 1",
    )
    .bind(user_ref)
    .bind(Status::Pending.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(Pending {
            email: row.try_get("email")?,
            code_created_at: row.try_get("created_at")?,
            code_expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// The address of the person's registration with `status`.
pub async fn email(conn: &mut Conn, user_ref: i64, status: Status) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT email FROM registrations WHERE user_ref = $1 AND status = $2")
        .bind(user_ref)
        .bind(status.as_str())
        .fetch_optional(&mut *conn)
        .await
}

/// The active registration's answers in the order they were registered.
pub async fn active_answers(conn: &mut Conn, user_ref: i64) -> sqlx::Result<Vec<StoredAnswer>> {
    let rows = sqlx::query(
        "SELECT a.question_id, a.answer_hash FROM registration_answers a \
         JOIN registrations r ON r.id = a.registration_ref WHERE r.user_ref = $1 AND r.status = $2 \
         ORDER BY a.position",
    )
    .bind(user_ref)
    .bind(Status::Active.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("question_id")?;
            Ok(StoredAnswer {
                question_id: u32::try_from(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                answer_hash: row.try_get("answer_hash")?,
            })
        })
        .collect()
}

/// A new pending registration with its answers, in order.
pub async fn insert_pending(
    conn: &mut Conn,
    user_ref: i64,
    email: &str,
    answers: &[StoredAnswer],
    now: i64,
) -> sqlx::Result<()> {
    let registration_id: i64 = sqlx::query_scalar(
        "INSERT INTO registrations (user_ref, status, email, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_ref)
    .bind(Status::Pending.as_str())
    .bind(email)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    for (position, answer) in (1_i64..).zip(answers) {
        sqlx::query(
            "INSERT INTO registration_answers (registration_ref, position, question_id, answer_hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(registration_id)
        .bind(position)
        .bind(i64::from(answer.question_id))
        .bind(&answer.answer_hash)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The pending registration comes into force.
pub async fn activate(conn: &mut Conn, user_ref: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE registrations SET status = $1, registered_at = $2 WHERE user_ref = $3 AND status = $4",
    )
    .bind(Status::Active.as_str())
    .bind(now)
    .bind(user_ref)
    .bind(Status::Pending.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the person's registration with `status`, or all of them, with their answers.
/// Returns how many registrations went.
pub async fn delete(conn: &mut Conn, user_ref: i64, status: Option<Status>) -> sqlx::Result<u64> {
    // Answers first: no reliance on cascading deletes, which SQLite honours only when asked.
    let filter = "user_ref = $1 AND ($2 = '' OR status = $2)";
    let status = status.map(Status::as_str).unwrap_or("");
    sqlx::query(&format!(
        "DELETE FROM registration_answers WHERE registration_ref IN (SELECT id FROM registrations WHERE {filter})"
    ))
    .bind(user_ref)
    .bind(status)
    .execute(&mut *conn)
    .await?;
    let removed = sqlx::query(&format!("DELETE FROM registrations WHERE {filter}"))
        .bind(user_ref)
        .bind(status)
        .execute(&mut *conn)
        .await?;
    Ok(removed.rows_affected())
}
