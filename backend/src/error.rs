//! The one API error type.
//!
//! Rule: modules return `thiserror` errors (or this type) at their boundaries and use `anyhow`
//! with `.context("Failed to …")` inside. Handlers return [`ApiError`]; every variant names its
//! HTTP status, 4xx bodies say what to do, 5xx bodies are opaque and the cause is logged.

use axum::{
    extract::{rejection::JsonRejection, FromRequest},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use protocol::{api::ApiErrorBody, error_code::ErrorCode};

/// What a 503 tells clients to wait: a database restart or a failover takes seconds.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not the JSON this route expects.
    #[error("{0}")]
    InvalidJson(String),
    /// 404: no such route or resource.
    #[error("Not found")]
    NotFound,
    /// 401: no live session.
    #[error("Please sign in with your smartcard.")]
    Unauthenticated,
    /// 403: a state change that did not come from this site.
    #[error("This request did not come from the self-service site and was refused.")]
    CrossSite,
    /// A request the rules refuse: its code (which names the status) and a sentence for the person;
    /// for wrong answers, the attempts left (so a page shows one count, the backend's).
    #[error("{message}")]
    Rejected { code: ErrorCode, message: String, attempts_left: Option<u32> },
    /// 503: a dependency (the database) does not answer.
    #[error("The service is temporarily unavailable; please try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// 500: anything unexpected. The message stays generic; the cause goes to the log.
    #[error("Something went wrong on our side; please try again")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::Rejected { code, .. } => {
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidJson(_) => ErrorCode::InvalidJson,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::CrossSite => ErrorCode::CrossSite,
            ApiError::Rejected { code, .. } => *code,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl ApiError {
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Rejected { code, message: message.into(), attempts_left: None }
    }

    /// The same refusal, saying how many attempts are left.
    pub fn with_attempts_left(self, left: u32) -> Self {
        match self {
            ApiError::Rejected { code, message, .. } => {
                ApiError::Rejected { code, message, attempts_left: Some(left) }
            }
            other => other,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(anyhow::Error::from(error))
    }
}

/// A database that is down, restarting or out of space is the service being unavailable (503,
/// try again), not a bug (500): the load balancer and the page both act on the difference.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        let unavailable = error.chain().any(|cause| cause.downcast_ref().is_some_and(database_unavailable));
        if unavailable {
            ApiError::Unavailable(error)
        } else {
            ApiError::Internal(error)
        }
    }
}

/// Whether `error` says the database cannot serve right now, rather than that the query is wrong.
pub fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Each engine's codes are its own: PostgreSQL's SQLSTATE "22021" is not SQLite's 22021.
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code().is_some_and(|code| sqlite_unavailable(&code))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs for "not now": class 08 (connection), 53 (insufficient resources: disk
/// full, too many connections), 57P01-03 (shutting down, crashed, starting up), 58030 (I/O).
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") || code == "58030"
}

/// SQLite result codes for "not now" (busy, out of memory or disk, I/O, read-only or unopenable
/// file). SQLite gives its extended code as a number; the primary code is the low byte.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|extended| {
        const BUSY: u32 = 5;
        const LOCKED: u32 = 6;
        const NOMEM: u32 = 7;
        const READONLY: u32 = 8;
        const IOERR: u32 = 10;
        const FULL: u32 = 13;
        const CANTOPEN: u32 = 14;
        matches!(extended & 0xff, BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN)
    })
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::InvalidJson(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(error = ?cause, "request failed");
            }
            _ => {}
        }
        let attempts_left = match &self {
            ApiError::Rejected { attempts_left, .. } => *attempts_left,
            _ => None,
        };
        let body = ApiErrorBody { code: self.code(), message: self.to_string(), attempts_left };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// `axum::Json` whose rejections come back in the [`ApiErrorBody`] envelope. A body whose text
/// holds a NUL character is refused as bad input: no field of this API can hold one, and
/// PostgreSQL refuses it in text, which must not reach the database as an error of its own.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await?;
        if holds_nul(&value) {
            return Err(ApiError::InvalidJson("Text in the request may not contain NUL characters.".into()));
        }
        serde_json::from_value(value).map(AppJson).map_err(|e| {
            ApiError::InvalidJson(format!("Failed to deserialize the JSON body into the target type: {e}"))
        })
    }
}

/// Whether any string (or object key) in `value` holds U+0000.
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(key, item)| key.contains('\0') || holds_nul(item)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_cannot_serve_now_is_a_503_and_a_wrong_query_a_500() {
        for code in ["08006", "08001", "57P01", "57P03", "53100", "53300", "58030"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        // 22021: a NUL in text, which is the request's fault (its digits are not a SQLite code).
        for code in ["23505", "42P01", "22P02", "22021", "40001"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        for code in ["13", "10", "266", "3338", "5", "517"] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        for code in ["19", "2067", "1", "1555", "20"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
        let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(ApiError::from(lost).status(), StatusCode::SERVICE_UNAVAILABLE);
        let wrapped = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("Failed to load the attempt");
        assert_eq!(ApiError::from(wrapped).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::from(sqlx::Error::RowNotFound).status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::from(anyhow::anyhow!("a bug")).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
