//! The backend's HTTP API as a browser's page calls it (same-origin `Origin`, the session
//! cookie), and the journeys' steps the scenarios need: sign in, register, start an unlock.

use std::time::Duration;

use anyhow::{bail, Context};
use envelope::Purpose;
use protocol::api::{
    ChallengeIssued, CodeRequest, ProofRequest, QuestionAnswer, RegistrationRequest, SignInRequest,
    UnlockAnswers, UnlockQuestions, UnlockStart,
};
use reqwest::{header, Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use crate::{mailbox::Mailbox, people::Person};

/// One HTTP client for every simulated person (each request says who it is), so the load is not
/// shaped by a connection pool per person.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    pub base: String,
}

/// Who sends a request: the address it comes from and, once signed in, their session cookie.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub address: &'a str,
    pub cookie: Option<&'a str>,
}

impl<'a> Who<'a> {
    pub fn person(person: &'a Person) -> Self {
        Self { address: &person.address, cookie: None }
    }
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::ORIGIN, base.parse()?);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(2048)
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self { client, base: base.to_owned() })
    }

    pub fn request(&self, method: Method, path: &str, from: Who<'_>) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-forwarded-for", from.address);
        if let Some(cookie) = from.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request
    }

    /// `POST` with a JSON body; the status only (what the load runs count).
    pub async fn post_status<B: Serialize>(
        &self,
        path: &str,
        from: Who<'_>,
        body: &B,
    ) -> anyhow::Result<u16> {
        let response = self.request(Method::POST, path, from).json(body).send().await?;
        let status = response.status().as_u16();
        // Read the body through, as a browser does, so the connection goes back to the pool.
        response.bytes().await?;
        Ok(status)
    }

    /// `POST` with a JSON body; the status and the error body's `code`, if any.
    pub async fn post_code<B: Serialize>(
        &self,
        path: &str,
        from: Who<'_>,
        body: &B,
    ) -> anyhow::Result<(u16, Option<String>)> {
        let response = self.request(Method::POST, path, from).json(body).send().await?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Ok((status, body.get("code").and_then(|c| c.as_str()).map(str::to_owned)))
    }

    pub async fn get_status(&self, path: &str, from: Who<'_>) -> anyhow::Result<u16> {
        let response = self.request(Method::GET, path, from).send().await?;
        let status = response.status().as_u16();
        response.bytes().await?;
        Ok(status)
    }

    /// `POST` expecting a 2xx answer of type `T`.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        from: Who<'_>,
        body: &B,
    ) -> anyhow::Result<T> {
        let response = self.request(Method::POST, path, from).json(body).send().await?;
        decode(path, response).await
    }

    /// Signs in with the card's 9A key; the session cookie (`name=value`).
    pub async fn sign_in(&self, person: &Person) -> anyhow::Result<String> {
        let from = Who::person(person);
        let issued: ChallengeIssued = self.post("/api/sign-in/challenge", from, &()).await?;
        let request = self.sign_in_request(person, issued)?;
        let response = self.request(Method::POST, "/api/sign-in", from).json(&request).send().await?;
        if !response.status().is_success() {
            bail!("sign-in refused: {} {}", response.status(), response.text().await.unwrap_or_default());
        }
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("selfservice_session="))
            .and_then(|v| v.split(';').next())
            .context("no session cookie")?
            .to_owned();
        Ok(cookie)
    }

    pub fn sign_in_request(&self, person: &Person, issued: ChallengeIssued) -> anyhow::Result<SignInRequest> {
        Ok(SignInRequest {
            signature: person.sign_9a(Purpose::SignIn, &issued.challenge)?,
            challenge_id: issued.challenge_id,
            guid: person.guid.parse()?,
        })
    }

    /// Registers the person for self-service with [`crate::people::ANSWERS`] (argon2 on the
    /// backend, as for anyone), confirming the code emailed to them.
    pub async fn register(&self, person: &Person, mailbox: &Mailbox) -> anyhow::Result<()> {
        let cookie = self.sign_in(person).await?;
        let from = Who { address: &person.address, cookie: Some(&cookie) };
        let issued: ChallengeIssued = self.post("/api/registration/challenge", from, &()).await?;
        let proof = ProofRequest {
            signature: person.sign_9a(Purpose::RegistrationProof, &issued.challenge)?,
            challenge_id: issued.challenge_id,
        };
        let status = self.post_status("/api/registration/proof", from, &proof).await?;
        if !(200..300).contains(&status) {
            bail!("registration proof refused: {status}");
        }
        let answers = crate::people::ANSWERS
            .iter()
            .map(|(q, a)| QuestionAnswer { question_id: *q, answer: (*a).into() })
            .collect();
        let request = RegistrationRequest { answers, email: person.email.clone() };
        let _: serde_json::Value = self.post("/api/registration", from, &request).await?;
        let code = mailbox.wait_for_code(&person.email, "registration", Duration::from_secs(60)).await?;
        let _: serde_json::Value =
            self.post("/api/registration/confirm", from, &CodeRequest { code }).await?;
        Ok(())
    }

    /// A signed `POST /api/unlock/start` body for the person (its challenge lives 2 minutes).
    pub async fn unlock_start_request(&self, person: &Person) -> anyhow::Result<UnlockStart> {
        let issued: ChallengeIssued = self.post("/api/unlock/challenge", Who::person(person), &()).await?;
        Ok(UnlockStart {
            signature: person.sign_9e(&issued.challenge)?,
            challenge_id: issued.challenge_id,
            guid: person.guid.parse()?,
        })
    }

    /// Starts an unlock: the attempt and the questions it asks.
    pub async fn start_unlock(&self, person: &Person) -> anyhow::Result<UnlockQuestions> {
        let start = self.unlock_start_request(person).await?;
        self.post("/api/unlock/start", Who::person(person), &start).await
    }
}

/// The person's answers to the questions an attempt asks (right, or all wrong).
pub fn answers(questions: &UnlockQuestions, right: bool) -> UnlockAnswers {
    let answers = questions
        .questions
        .iter()
        .map(|q| {
            let answer = crate::people::ANSWERS.iter().find(|(id, _)| *id == q.id).map_or("", |(_, a)| a);
            QuestionAnswer {
                question_id: q.id,
                answer: if right { answer.to_owned() } else { format!("not {answer}") },
            }
        })
        .collect();
    UnlockAnswers { attempt_id: questions.attempt_id.clone(), answers }
}

async fn decode<T: DeserializeOwned>(path: &str, response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{path}: {status} {}", String::from_utf8_lossy(&body));
    }
    // `()`-like answers (204) decode from `null`.
    let body: &[u8] = if status == StatusCode::NO_CONTENT || body.is_empty() { b"null" } else { &body };
    serde_json::from_slice(body).with_context(|| format!("{path}: unexpected answer"))
}
