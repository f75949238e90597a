//! Registering for self-service (DESIGN.md, "Register for self-service"): passcode re-proof,
//! 4 questions with argon2id-hashed answers, an email confirmed by an emailed code; re-register
//! replaces; withdraw removes.

use protocol::api::{
    ChallengeIssued, CodeRequest, Profile, ProofRequest, Question, RegistrationPending, RegistrationRequest,
};
use protocol::error_code::ErrorCode;
use sqlx::{Any, Transaction};

use crate::{
    audit::{self, Entry},
    card_proof,
    challenges::{self, Purpose},
    codes,
    error::ApiError,
    journeys::profile,
    questions,
    session::{self, SignedIn},
    startup::AppState,
    store::{
        people,
        registrations::{self, Status, StoredAnswer},
        unlock_attempts::{self, Step},
    },
    time::now_unix,
};

/// The passcode re-proof opens a window for the rest of the wizard.
pub const REPROOF_SECONDS: i64 = 15 * 60;
const MAX_EMAIL_CHARS: usize = 254;

pub fn catalogue() -> Vec<Question> {
    questions::CATALOGUE.iter().map(|(id, text)| Question { id: *id, text: (*text).to_owned() }).collect()
}

pub async fn challenge(state: &AppState, me: SignedIn) -> Result<ChallengeIssued, ApiError> {
    let issued =
        challenges::issue(&state.db, Purpose::RegistrationProof, Some(&me.session.token_hash)).await?;
    Ok(issued.into())
}

/// Step 1: the card this session signed in with signs a fresh challenge after VERIFY.
pub async fn proof(state: &AppState, me: SignedIn, request: ProofRequest) -> Result<(), ApiError> {
    let signature = card_proof::signature_from_base64(&request.signature)?;
    // Read before the write transaction, which must not wait for a second pooled connection.
    let card =
        people::card_by_guid(&state.db, &me.session.card_guid).await?.ok_or(ApiError::Unauthenticated)?;
    let mut tx = state.db.begin_write().await?;
    let challenge = challenges::redeem(
        &mut tx,
        &request.challenge_id,
        Purpose::RegistrationProof,
        Some(&me.session.token_hash),
    )
    .await?;
    let proven = card.status == people::CardStatus::Active
        && card.user_ref == me.user.id
        && card_proof::verifies_for(
            &card.piv_auth_key,
            envelope::Purpose::RegistrationProof,
            &challenge,
            &signature,
        );
    let event = if proven { "registration_passcode_proven" } else { "registration_passcode_refused" };
    audit::append(&mut tx, Entry::new(&me.user.user_id, event).subject(&card.guid)).await?;
    if proven {
        session::mark_reproved(&mut tx, &me.session, now_unix()).await?;
    }
    tx.commit().await?;
    if !proven {
        return Err(ApiError::rejected(ErrorCode::SignatureInvalid,
            "Your card's answer could not be verified. Make sure the card you signed in with is in the reader.",
        ));
    }
    Ok(())
}

/// Steps 2–4: questions and email; stores the registration as pending and emails a code.
pub async fn register(
    state: &AppState,
    me: SignedIn,
    request: RegistrationRequest,
) -> Result<RegistrationPending, ApiError> {
    let now = now_unix();
    if me.session.reproved_at.is_none_or(|at| now - at > REPROOF_SECONDS) {
        return Err(ApiError::rejected(
            ErrorCode::PasscodeRequired,
            "Enter your smartcard passcode first, to show the card is yours.",
        ));
    }
    let pairs: Vec<(u32, &str)> =
        request.answers.iter().map(|a| (a.question_id, a.answer.as_str())).collect();
    let answers =
        questions::check(&pairs).map_err(|e| ApiError::rejected(ErrorCode::InvalidAnswers, e.to_string()))?;
    let email = check_email(&request.email, &state.settings.email_domains)?;
    let mut hashed = Vec::with_capacity(answers.len());
    for (question_id, answer) in answers {
        hashed.push(StoredAnswer { question_id, answer_hash: state.answers.hash(answer).await? });
    }

    let mut tx = state.db.begin_write().await?;
    // One registration of a person at a time: on PostgreSQL two at once (a double click) each
    // found no pending one to replace, and the second insert broke the one-pending rule (a 500).
    people::hold(&mut tx, me.user.id).await?;
    // A code sent for the registration this one replaces proves the same mailbox, if it is the
    // same address: when the limits refuse a new code, that one still completes this one.
    let same_address =
        registrations::email(&mut tx, me.user.id, Status::Pending).await?.as_deref() == Some(email.as_str());
    registrations::delete(&mut tx, me.user.id, Some(Status::Pending)).await?;
    registrations::insert_pending(&mut tx, me.user.id, &email, &hashed, now).await?;
    let reuse = if same_address { codes::Reuse::Live } else { codes::Reuse::Never };
    let pending = send_code(&mut tx, state, &me, &email, reuse).await?;
    let questions: Vec<u32> = hashed.iter().map(|a| a.question_id).collect();
    audit::append(
        &mut tx,
        Entry::new(&me.user.user_id, "registration_started")
            .details(serde_json::json!({ "questions": questions })),
    )
    .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(pending)
}

pub async fn resend(state: &AppState, me: SignedIn) -> Result<RegistrationPending, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let email = pending_email(&mut tx, me.user.id).await?;
    let pending = send_code(&mut tx, state, &me, &email, codes::Reuse::Never).await?;
    audit::append(&mut tx, Entry::new(&me.user.user_id, "registration_code_resent")).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(pending)
}

pub async fn confirm(state: &AppState, me: SignedIn, request: CodeRequest) -> Result<Profile, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let email = pending_email(&mut tx, me.user.id).await?;
    if let Err(refusal) =
        codes::redeem(&mut tx, &state.codes, me.user.id, codes::Purpose::Registration, &request.code).await
    {
        // The spent try must stick even though the request fails.
        audit::append(&mut tx, Entry::new(&me.user.user_id, "registration_code_refused")).await?;
        tx.commit().await?;
        return Err(refusal);
    }
    registrations::delete(&mut tx, me.user.id, Some(Status::Active)).await?;
    registrations::activate(&mut tx, me.user.id, now_unix()).await?;
    // Unlock codes sent to the address this registration replaces must not outlive it.
    codes::void_all(&mut tx, me.user.id, now_unix()).await?;
    state
        .outbox
        .enqueue(
            &mut tx,
            &email,
            "You are registered for smartcard self-service",
            &format!(
                "Hello {},\n\nYou are now registered for smartcard self-service. If your smartcard is ever \
             locked, or you forget its passcode, you can unlock it yourself at {}/unlock.\n\nIf you did \
             not register, contact your Registration Authority (RA) straight away.\n",
                me.user.name,
                state.settings.public_url()
            ),
        )
        .await?;
    audit::append(&mut tx, Entry::new(&me.user.user_id, "registration_completed")).await?;
    tx.commit().await?;
    state.outbox.wake();
    profile::load(state, &me.user, &me.session.card_guid).await
}

pub async fn withdraw(state: &AppState, me: SignedIn) -> Result<(), ApiError> {
    let mut tx = state.db.begin_write().await?;
    registrations::delete(&mut tx, me.user.id, None).await?;
    codes::void_all(&mut tx, me.user.id, now_unix()).await?;
    // An unlock in progress rested on the registration: it ends with it (as an RA's withdrawal).
    unlock_attempts::fail_all(&mut tx, me.user.id, &Step::OPEN).await?;
    audit::append(&mut tx, Entry::new(&me.user.user_id, "registration_withdrawn")).await?;
    tx.commit().await?;
    Ok(())
}

/// The email of the user's registration that awaits its code.
async fn pending_email(tx: &mut Transaction<'static, Any>, user_ref: i64) -> Result<String, ApiError> {
    registrations::email(tx, user_ref, Status::Pending).await?.ok_or_else(no_pending)
}

/// A registration code to `email`, emailed when it is a new one (see [`codes::Reuse`]).
async fn send_code(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    me: &SignedIn,
    email: &str,
    reuse: codes::Reuse,
) -> Result<RegistrationPending, ApiError> {
    let sent = codes::issue(tx, &state.codes, me.user.id, codes::Purpose::Registration, reuse).await?;
    if let Some(code) = &sent.code {
        state
            .outbox
            .enqueue(
                tx,
                email,
                "Your smartcard self-service registration code",
                &format!(
                    "Hello {},\n\nYour registration code is: {code}\n\nEnter it on the registration page within 15 \
                     minutes. It works once.\n\nIf you did not ask for this, contact your Registration Authority (RA).\n",
                    me.user.name
                ),
            )
            .await?;
    }
    Ok(RegistrationPending {
        email: email.to_owned(),
        sent_at: sent.sent_at,
        code_expires_at: sent.expires_at,
        resend_after: sent.resend_after,
        earlier: sent.code.is_none(),
        mail_delayed: crate::mail::delayed(tx).await?,
    })
}

/// A plausible address, at an allowed domain when a list is configured.
pub fn check_email(email: &str, allowed_domains: &[String]) -> Result<String, ApiError> {
    let email = email.trim();
    let refuse = |message: String| ApiError::rejected(ErrorCode::InvalidEmail, message);
    if email.chars().count() > MAX_EMAIL_CHARS || email.parse::<lettre::Address>().is_err() {
        return Err(refuse("Enter an email address like name@example.nhs.uk.".into()));
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    if !domain.contains('.') {
        return Err(refuse("Enter an email address like name@example.nhs.uk.".into()));
    }
    let allowed = allowed_domains.is_empty()
        || allowed_domains.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            domain == d || domain.ends_with(&format!(".{d}"))
        });
    if !allowed {
        return Err(refuse(format!("Use an email address at one of: {}.", allowed_domains.join(", "))));
    }
    Ok(email.to_owned())
}

fn no_pending() -> ApiError {
    ApiError::rejected(ErrorCode::NoPendingRegistration, "Start the registration again.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_domains_allow_subdomains() {
        assert_eq!(check_email(" ada@nhs.net ", &[]).unwrap(), "ada@nhs.net");
        assert!(check_email("not an email", &[]).is_err());
        assert!(check_email("ada@localhost", &[]).is_err());
        let nhs = ["nhs.net".to_owned(), "nhs.uk".to_owned()];
        assert!(check_email("ada@nhs.net", &nhs).is_ok());
        assert!(check_email("ada@trust.nhs.uk", &nhs).is_ok());
        assert!(check_email("ada@gmail.com", &nhs).is_err());
        assert!(check_email("ada@evilnhs.net", &nhs).is_err());
    }
}
