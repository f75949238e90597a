//! The one API error type.
//!
//! Rule: modules return `thiserror` errors (or this type) at their boundaries and use `anyhow`
//! with `.context("Failed to …")` inside. Handlers return [`ApiError`]; every variant names its
//! HTTP status, 4xx bodies say what to do, 5xx bodies are opaque and the cause is logged.

use axum::{
    extract::{rejection::JsonRejection, FromRequest},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use protocol::{api::ApiErrorBody, error_code::ErrorCode};

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
    Internal(#[from] anyhow::Error),
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
        ApiError::Internal(error.into())
    }
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
        (self.status(), Json(body)).into_response()
    }
}

/// `axum::Json` whose rejections come back in the [`ApiErrorBody`] envelope.
#[derive(Debug, FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
