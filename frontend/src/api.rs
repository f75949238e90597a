//! Typed calls to the backend's JSON API. Every call returns `Result<_, ApiError>`.

use gloo_net::http::{Request, Response};
use protocol::api::{
    ApiErrorBody, ChallengeIssued, ClientConfig, CodeRequest, Health, Profile, ProofRequest, Question,
    RegistrationPending, RegistrationRequest, SignInRequest, UnlockAnswers, UnlockAttempt, UnlockCode,
    UnlockCodeSent, UnlockQuestions, UnlockRelease, UnlockReleased, UnlockReported, UnlockStart,
};
use protocol::error_code::ErrorCode;
use serde::de::DeserializeOwned;

/// What can go wrong calling the API, phrased for the person in front of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request never got an answer (offline, server down).
    Network,
    /// The server answered with an error envelope.
    Server { status: u16, body: ApiErrorBody },
    /// The server answered something this app does not understand.
    Unexpected { status: u16 },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Network => {
                f.write_str("We could not reach the service. Check your connection and try again.")
            }
            ApiError::Server { body, .. } => f.write_str(&body.message),
            ApiError::Unexpected { status } => {
                write!(f, "The service gave an unexpected answer (HTTP {status}).")
            }
        }
    }
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let status = response.status();
    if response.ok() {
        return response.json::<T>().await.map_err(|_| ApiError::Unexpected { status });
    }
    match response.json::<ApiErrorBody>().await {
        Ok(body) => Err(ApiError::Server { status, body }),
        Err(_) => Err(ApiError::Unexpected { status }),
    }
}

/// `GET /api/health`. A 503 still carries a [`Health`] body, so it is decoded as one.
pub async fn health() -> Result<Health, ApiError> {
    let response = Request::get("/api/health").send().await.map_err(|_| ApiError::Network)?;
    let status = response.status();
    if status == 503 {
        return response.json::<Health>().await.map_err(|_| ApiError::Unexpected { status });
    }
    decode(response).await
}

pub(crate) async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(Request::get(path).send().await.map_err(|_| ApiError::Network)?).await
}

pub(crate) async fn post<B: serde::Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    let request = Request::post(path).json(body).map_err(|_| ApiError::Network)?;
    decode(request.send().await.map_err(|_| ApiError::Network)?).await
}

/// A POST whose success has no body (204).
pub(crate) async fn post_empty<B: serde::Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    let request = Request::post(path).json(body).map_err(|_| ApiError::Network)?;
    let response = request.send().await.map_err(|_| ApiError::Network)?;
    if response.ok() {
        return Ok(());
    }
    decode::<()>(response).await
}

impl ApiError {
    /// The error code in the envelope, if the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Server { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// Wrong answers: the attempts left, as the backend counts them.
    pub fn attempts_left(&self) -> Option<u32> {
        match self {
            ApiError::Server { body, .. } => body.attempts_left,
            _ => None,
        }
    }

    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, ApiError::Server { status: 401, .. })
    }
}

pub async fn client_config() -> Result<ClientConfig, ApiError> {
    get("/api/client-config").await
}

pub async fn sign_in_challenge() -> Result<ChallengeIssued, ApiError> {
    post("/api/sign-in/challenge", &()).await
}

pub async fn sign_in(request: &SignInRequest) -> Result<Profile, ApiError> {
    post("/api/sign-in", request).await
}

pub async fn sign_out() -> Result<(), ApiError> {
    post_empty("/api/sign-out", &()).await
}

/// `DELETE /api/registration`: the holder withdraws from self-service.
pub async fn withdraw_registration() -> Result<(), ApiError> {
    let response = Request::delete("/api/registration").send().await.map_err(|_| ApiError::Network)?;
    if response.ok() {
        return Ok(());
    }
    decode::<()>(response).await
}

pub async fn me() -> Result<Profile, ApiError> {
    get("/api/me").await
}

pub async fn questions() -> Result<Vec<Question>, ApiError> {
    get("/api/questions").await
}

pub async fn registration_challenge() -> Result<ChallengeIssued, ApiError> {
    post("/api/registration/challenge", &()).await
}

pub async fn registration_proof(request: &ProofRequest) -> Result<(), ApiError> {
    post_empty("/api/registration/proof", request).await
}

pub async fn register(request: &RegistrationRequest) -> Result<RegistrationPending, ApiError> {
    post("/api/registration", request).await
}

pub async fn resend_registration_code() -> Result<RegistrationPending, ApiError> {
    post("/api/registration/resend", &()).await
}

pub async fn confirm_registration(code: &str) -> Result<Profile, ApiError> {
    post("/api/registration/confirm", &CodeRequest { code: code.to_owned() }).await
}

pub async fn unlock_challenge() -> Result<ChallengeIssued, ApiError> {
    post("/api/unlock/challenge", &()).await
}

pub async fn unlock_start(request: &UnlockStart) -> Result<UnlockQuestions, ApiError> {
    post("/api/unlock/start", request).await
}

pub async fn unlock_answers(request: &UnlockAnswers) -> Result<UnlockCodeSent, ApiError> {
    post("/api/unlock/answers", request).await
}

pub async fn unlock_resend(attempt_id: &str) -> Result<UnlockCodeSent, ApiError> {
    post("/api/unlock/resend", &UnlockAttempt { attempt_id: attempt_id.to_owned() }).await
}

pub async fn unlock_code(request: &UnlockCode) -> Result<(), ApiError> {
    post_empty("/api/unlock/code", request).await
}

/// The release and report of an unlock live under `routes`: self-service's `/api/unlock`, or an
/// RA's desk unlock, `/api/ra/desk-unlock` (see `crate::release`).
pub async fn unlock_offer_challenge(routes: &str, attempt_id: &str) -> Result<ChallengeIssued, ApiError> {
    post(&format!("{routes}/offer-challenge"), &UnlockAttempt { attempt_id: attempt_id.to_owned() }).await
}

pub async fn unlock_release(routes: &str, request: &UnlockRelease) -> Result<UnlockReleased, ApiError> {
    post(&format!("{routes}/release"), request).await
}

pub async fn unlock_report(routes: &str, request: &UnlockReported) -> Result<(), ApiError> {
    post_empty(&format!("{routes}/report"), request).await
}
