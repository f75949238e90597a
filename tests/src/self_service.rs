//! The self-service journeys driven through the real backend API and the real agent, without a
//! browser: what the SPA does, step by step. For setting up a journey test (a registered holder)
//! and for the recovery tests that need to stop an unlock at a chosen point.

use anyhow::{bail, ensure, Context};
use base64::{engine::general_purpose::STANDARD, Engine};
use protocol::{
    agent::{Operation, Outcome, PinPurpose, Reply, UnlockReport},
    api::{
        ChallengeIssued, CodeRequest, ProofRequest, QuestionAnswer, RegistrationRequest, SignInRequest,
        UnlockAnswers, UnlockAttempt, UnlockCode, UnlockQuestions, UnlockRelease, UnlockReleased,
        UnlockReported, UnlockStart,
    },
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    agent::AgentClient,
    smartcard::READER,
    smtp::{code_in, SmtpServer},
    system::RunningBackend,
};

/// The answers every test holder registers, by catalogue question id.
pub const ANSWERS: [(u32, &str); 4] = [(1, "St Mary's"), (2, "Oak Road"), (3, "Jaws"), (6, "Biscuit")];

/// One browser's worth of API session (cookies, this site's Origin).
#[derive(Debug)]
pub struct Api<'a> {
    backend: &'a RunningBackend,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    pub fn new(backend: &'a RunningBackend) -> anyhow::Result<Self> {
        Ok(Self { backend, http: backend.client()? })
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let response = self.send(path, body).await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).with_context(|| format!("POST {path}: {text}"))
    }

    pub async fn send<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.post(format!("{}{path}", self.backend.url)).json(body).send().await?)
    }

    async fn post_no_content<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<()> {
        let response = self.send(path, body).await?;
        let status = response.status();
        ensure!(status.is_success(), "POST {path}: {status} {}", response.text().await?);
        Ok(())
    }
}

async fn sign(agent: &mut AgentClient, operation: Operation) -> anyhow::Result<String> {
    match agent.request(operation).await? {
        Outcome::Ok(Reply::Signature { signature }) => Ok(signature),
        other => bail!("expected a signature, got {other:?}"),
    }
}

fn with_pin(guid: &str, pin: &str, challenge: String, purpose: PinPurpose) -> anyhow::Result<Operation> {
    Ok(Operation::SignWithPin {
        reader: READER.into(),
        guid: guid.parse()?,
        pin: pin.into(),
        challenge,
        purpose,
    })
}

/// Signs in with the card and `pin`, registers [`ANSWERS`] and `email`, confirms the emailed code.
pub async fn register(
    backend: &RunningBackend,
    agent: &mut AgentClient,
    smtp: &SmtpServer,
    guid: &str,
    pin: &str,
    email: &str,
) -> anyhow::Result<()> {
    let api = Api::new(backend)?;
    let issued: ChallengeIssued = api.post("/api/sign-in/challenge", &()).await?;
    let signature = sign(agent, with_pin(guid, pin, issued.challenge, PinPurpose::SignIn)?).await?;
    let request = SignInRequest { challenge_id: issued.challenge_id, guid: guid.parse()?, signature };
    let _: serde_json::Value = api.post("/api/sign-in", &request).await?;
    let issued: ChallengeIssued = api.post("/api/registration/challenge", &()).await?;
    let signature =
        sign(agent, with_pin(guid, pin, issued.challenge, PinPurpose::RegistrationProof)?).await?;
    api.post_no_content(
        "/api/registration/proof",
        &ProofRequest { challenge_id: issued.challenge_id, signature },
    )
    .await?;
    let answers =
        ANSWERS.iter().map(|(q, a)| QuestionAnswer { question_id: *q, answer: (*a).into() }).collect();
    let _: serde_json::Value =
        api.post("/api/registration", &RegistrationRequest { answers, email: email.into() }).await?;
    let code = code_in(&smtp.wait_for(email, "registration code", 1).await?)?;
    let _: serde_json::Value = api.post("/api/registration/confirm", &CodeRequest { code }).await?;
    Ok(())
}

/// Starts an unlock (the card's 9E proof) and returns the backend's answer, questions or refusal.
pub async fn start_unlock(
    api: &Api<'_>,
    agent: &mut AgentClient,
    guid: &str,
) -> anyhow::Result<reqwest::Response> {
    let issued: ChallengeIssued = api.post("/api/unlock/challenge", &()).await?;
    let presence = Operation::ProvePresence { reader: READER.into(), challenge: issued.challenge };
    let signature = sign(agent, presence).await?;
    api.send(
        "/api/unlock/start",
        &UnlockStart { challenge_id: issued.challenge_id, guid: guid.parse()?, signature },
    )
    .await
}

/// Three wrong sets of answers: self-service locks for this holder.
pub async fn lock_out(api: &Api<'_>, agent: &mut AgentClient, guid: &str) -> anyhow::Result<()> {
    let questions: UnlockQuestions = start_unlock(api, agent, guid).await?.json().await?;
    for _ in 0..3 {
        let answers = questions
            .questions
            .iter()
            .map(|q| QuestionAnswer { question_id: q.id, answer: "wrong".into() })
            .collect();
        api.send("/api/unlock/answers", &UnlockAnswers { attempt_id: questions.attempt_id.clone(), answers })
            .await?;
    }
    let refused = start_unlock(api, agent, guid).await?;
    ensure!(refused.status() == reqwest::StatusCode::FORBIDDEN, "not locked out: {}", refused.status());
    Ok(())
}

/// Journey 2 up to the emailed code: the card's 9E proof, the answers, the `n`-th unlock code.
/// Returns the attempt id.
pub async fn unlock_past_the_code(
    api: &Api<'_>,
    agent: &mut AgentClient,
    smtp: &SmtpServer,
    guid: &str,
    email: &str,
    n: usize,
) -> anyhow::Result<String> {
    let started = start_unlock(api, agent, guid).await?;
    ensure!(started.status().is_success(), "unlock start: {} {}", started.status(), started.text().await?);
    let questions: UnlockQuestions = started.json().await?;
    let answers = questions
        .questions
        .iter()
        .map(|q| {
            let answer = ANSWERS.iter().find(|(id, _)| *id == q.id).map(|(_, a)| *a).unwrap_or_default();
            QuestionAnswer { question_id: q.id, answer: answer.into() }
        })
        .collect();
    let attempt_id = questions.attempt_id;
    let _: serde_json::Value =
        api.post("/api/unlock/answers", &UnlockAnswers { attempt_id: attempt_id.clone(), answers }).await?;
    let code = code_in(&smtp.wait_for(email, "unlock code", n).await?)?;
    api.post_no_content("/api/unlock/code", &UnlockCode { attempt_id: attempt_id.clone(), code }).await?;
    Ok(attempt_id)
}

/// The release as the SPA runs it: offer, envelope, unlock on the card, report. Returns the
/// agent's report and the backend's answer to it.
pub async fn release(
    api: &Api<'_>,
    agent: &mut AgentClient,
    attempt_id: &str,
    new_pin: &str,
) -> anyhow::Result<(UnlockReport, reqwest::StatusCode)> {
    let reported = release_unreported(api, agent, attempt_id, new_pin).await?;
    let status = api.send("/api/unlock/report", &reported).await?.status();
    Ok((reported.report, status))
}

/// [`release`] up to the card's report, which is returned instead of sent (as when the browser
/// closes, or the backend is down, just after the card finished).
pub async fn release_unreported(
    api: &Api<'_>,
    agent: &mut AgentClient,
    attempt_id: &str,
    new_pin: &str,
) -> anyhow::Result<UnlockReported> {
    let offer: ChallengeIssued =
        api.post("/api/unlock/offer-challenge", &UnlockAttempt { attempt_id: attempt_id.into() }).await?;
    let begin = Operation::BeginUnlock { reader: READER.into(), challenge: offer.challenge };
    let (public_key, signature) = match agent.request(begin).await? {
        Outcome::Ok(Reply::UnlockOffer { public_key, signature, .. }) => (public_key, signature),
        other => bail!("expected an unlock offer, got {other:?}"),
    };
    let request = UnlockRelease {
        attempt_id: attempt_id.into(),
        challenge_id: offer.challenge_id,
        public_key,
        signature,
    };
    let released: UnlockReleased = api.post("/api/unlock/release", &request).await?;
    ensure!(STANDARD.decode(&released.envelope).is_ok(), "the envelope is base64");
    let unlock =
        Operation::Unlock { reader: READER.into(), envelope: released.envelope, new_pin: new_pin.into() };
    let report = match agent.request(unlock).await? {
        Outcome::Ok(Reply::Unlocked(report)) => report,
        other => bail!("expected an unlock report, got {other:?}"),
    };
    Ok(UnlockReported {
        attempt_id: attempt_id.into(),
        proof_challenge_id: released.proof_challenge.challenge_id,
        report,
    })
}

/// The PUKs the backend holds for the card `guid`: the current one, and the pending one if a
/// release staged it.
pub async fn held_puks(backend: &RunningBackend, guid: &str) -> anyhow::Result<(String, Option<String>)> {
    let settings = backend.settings();
    let db = backend::db::Database::connect(&settings).await?;
    let (current, pending): (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT puk_sealed, puk_pending_sealed FROM cards WHERE guid = $1")
            .bind(guid)
            .fetch_one(db.pool())
            .await?;
    let vault = backend::vault::Vault::from_settings(&settings)?;
    let open = |sealed: &[u8]| vault.open(guid, sealed).map(|p| p.to_string());
    let held = (open(&current)?, pending.as_deref().map(open).transpose()?);
    db.close().await;
    Ok(held)
}

/// As if every code so far had been sent over an hour ago: past the resend cooldown and the
/// hourly cap, for a test that runs many unlocks in a row.
pub async fn codes_sent_long_ago(backend: &RunningBackend) -> anyhow::Result<()> {
    let db = backend::db::Database::connect(&backend.settings()).await?;
    sqlx::query("UPDATE one_time_codes SET created_at = created_at - 3700").execute(db.pool()).await?;
    db.close().await;
    Ok(())
}

/// Waits until the backend's outbox has sent everything written so far.
pub async fn all_mail_sent(backend: &RunningBackend) -> anyhow::Result<()> {
    let db = backend::db::Database::connect(&backend.settings()).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(db.pool())
            .await?;
        if unsent == 0 {
            break;
        }
        ensure!(std::time::Instant::now() < deadline, "{unsent} messages still unsent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    db.close().await;
    Ok(())
}
