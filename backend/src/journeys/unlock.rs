//! Unlocking a card, first part (journey 2, DESIGN.md): the card proves it is present with its
//! 9E key (no PIN — the card may be locked), the backend finds its holder and their registration,
//! asks 2–4 of their questions (fixed for the attempt) and checks the answers all-or-nothing.
//! Three wrong attempts lock the person out of self-service until an RA clears it; the count is
//! one atomic row update, so parallel submissions cannot slip past it. Right answers send an
//! unlock code to the registered address. The PUK release that follows is in `unlock_release`.

use protocol::api::{
    ChallengeIssued, Question, UnlockAnswers, UnlockAttempt, UnlockCode, UnlockCodeSent, UnlockQuestions,
    UnlockStart,
};
use protocol::{card_guid::CardGuid, error_code::ErrorCode};

use crate::{
    audit::{self, Entry, ANONYMOUS},
    card_proof,
    challenges::{self, Purpose},
    codes,
    error::ApiError,
    questions,
    secrets::{random_bytes, random_token},
    startup::AppState,
    store::{
        people::{self, UnlockStanding},
        registrations,
        unlock_attempts::{self, NewAttempt, OpenAttempt, Step},
    },
    time::now_unix,
};

pub const MAX_FAILURES: i64 = 3;
const ATTEMPT_SECONDS: i64 = 30 * 60;

pub async fn challenge(state: &AppState) -> Result<ChallengeIssued, ApiError> {
    let issued = challenges::issue(&state.db, Purpose::Unlock, None).await?;
    Ok(issued.into())
}

/// The attempt `id` if it has not expired and is at `step`; otherwise "start again".
pub async fn open_attempt(state: &AppState, id: &str, step: Step) -> Result<OpenAttempt, ApiError> {
    let mut conn = state.db.pool().acquire().await?;
    unlock_attempts::open_at(&mut conn, id, step, now_unix()).await?.ok_or_else(attempt_ended)
}

pub fn attempt_ended() -> ApiError {
    ApiError::rejected(ErrorCode::AttemptExpired, "This unlock attempt has ended. Start again.")
}

fn locked_out() -> ApiError {
    ApiError::rejected(ErrorCode::LockedOut,
        "Self-service is locked for you after 3 unsuccessful attempts. Contact your Registration Authority (RA) to unlock your card.",
    )
}

pub async fn start(state: &AppState, request: UnlockStart) -> Result<UnlockQuestions, ApiError> {
    let signature = card_proof::signature_from_base64(&request.signature)?;
    let guid = request.guid;
    // Reads first: the write transaction below must not wait for a second pooled connection.
    let card = people::card_by_guid(&state.db, &guid).await?;
    let Known { standing, registered, contact_email, puk_held } = match &card {
        Some(card) => known_of(state, card).await?,
        None => Known::default(),
    };
    let registered_or_free =
        registered.len() == questions::QUESTIONS_PER_REGISTRATION || contact_email.is_some();
    let mut tx = state.db.begin_write().await?;
    let challenge = challenges::redeem(&mut tx, &request.challenge_id, Purpose::Unlock, None).await?;
    let refusal = match &card {
        None => Some(("unknown_card", ApiError::rejected(ErrorCode::CardNotRecognised,
            "This card was not issued by this service. Contact your Registration Authority (RA).",
        ))),
        Some(card) if !card_proof::verifies_for(&card.card_auth_key, envelope::Purpose::Presence, &challenge, &signature) => Some(("bad_signature", ApiError::rejected(ErrorCode::SignatureInvalid,
            "The card's answer could not be verified. Remove the card, put it back and try again.",
        ))),
        Some(card) if card.status != people::CardStatus::Active => Some(("card_not_active", ApiError::rejected(ErrorCode::CardNotActive,
            "This card has been suspended or revoked. Contact your Registration Authority (RA).",
        ))),
        Some(_) if standing.locked_at.is_some() => Some(("locked_out", locked_out())),
        Some(_) if !registered_or_free => Some(("not_registered", ApiError::rejected(ErrorCode::NotRegistered,
            "You have not registered for self-service, so your card cannot be unlocked here. Contact your Registration Authority (RA); once your card works again, sign in and register.",
        ))),
        // Asking the questions first would waste the holder's time: the PUK is what unlocks.
        Some(_) if !puk_held => Some(("puk_unknown", ApiError::rejected(ErrorCode::PukUnknown,
            "This service does not hold your card's unlock key, so it cannot be unlocked here. Contact your Registration Authority (RA).",
        ))),
        Some(_) => None,
    };
    if let Some((why, error)) = refusal {
        let details = serde_json::json!({ "reason": why });
        audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_refused").subject(&guid).details(details))
            .await?;
        tx.commit().await?;
        return Err(error);
    }
    let Some(card) = card else { return Err(ApiError::NotFound) };
    let now = now_unix();
    let attempts_left = u32::try_from((MAX_FAILURES - standing.failures).max(0)).unwrap_or(0);
    if registered.len() != questions::QUESTIONS_PER_REGISTRATION {
        // Registration-free policy (off by default): no questions were ever chosen, so the code
        // goes to the contact email the RA recorded, and the attempt starts at the code step.
        let email = contact_email.ok_or(ApiError::NotFound)?;
        let attempt_id = random_token();
        let attempt = NewAttempt {
            id: &attempt_id,
            user_ref: card.user_ref,
            guid: &guid,
            question_ids: &[],
            step: Step::Code,
            created_at: now,
            expires_at: now + ATTEMPT_SECONDS,
            desk: None,
        };
        unlock_attempts::insert(&mut tx, &attempt).await?;
        let sent = send_code(&mut tx, state, card.user_ref, &email, codes::Reuse::Live).await?;
        let details = serde_json::json!({ "route": "contact_email" });
        audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_started").subject(&guid).details(details))
            .await?;
        tx.commit().await?;
        state.outbox.wake();
        return Ok(UnlockQuestions {
            attempt_id,
            questions: Vec::new(),
            attempts_left,
            code_sent: Some(sent),
        });
    }
    // The same questions until this attempt ends: a reload must not offer a new draw.
    let (attempt_id, ids) = match unlock_attempts::asking_for_card(&mut tx, &guid, now).await? {
        Some(open) => open,
        None => {
            let asked = usize::from(state.settings.unlock_questions.clamp(2, 4));
            let ids = choose(&registered, asked);
            let id = random_token();
            let attempt = NewAttempt {
                id: &id,
                user_ref: card.user_ref,
                guid: &guid,
                question_ids: &ids,
                step: Step::Questions,
                created_at: now,
                expires_at: now + ATTEMPT_SECONDS,
                desk: None,
            };
            unlock_attempts::insert(&mut tx, &attempt).await?;
            audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_started").subject(&guid)).await?;
            (id, ids)
        }
    };
    tx.commit().await?;
    let questions = ids
        .iter()
        .filter_map(|id| questions::question(*id).map(|text| Question { id: *id, text: text.to_owned() }))
        .collect();
    Ok(UnlockQuestions { attempt_id, questions, attempts_left, code_sent: None })
}

/// What an unlock's start knows of the card's holder before it decides.
#[derive(Debug, Default)]
struct Known {
    standing: UnlockStanding,
    /// The questions of their registration.
    registered: Vec<u32>,
    /// Where a code goes without a registration, if the policy allows that.
    contact_email: Option<String>,
    puk_held: bool,
}

/// [`Known`] of `card`'s holder: the reads at once, each on a connection of its own that it
/// gives back before anything waits on it (issue 16: one after another they were three round
/// trips' wait).
async fn known_of(state: &AppState, card: &people::Card) -> Result<Known, ApiError> {
    let db = &state.db;
    let (standing, registered, contact_email, puk_held) = tokio::try_join!(
        async {
            let standing = people::unlock_standing(&mut *db.pool().acquire().await?, card.user_ref).await?;
            Ok::<_, ApiError>(standing.unwrap_or_default())
        },
        async {
            let answers =
                registrations::active_answers(&mut *db.pool().acquire().await?, card.user_ref).await?;
            Ok(answers.into_iter().map(|answer| answer.question_id).collect())
        },
        async {
            if !state.settings.unlock_without_registration {
                return Ok(None);
            }
            Ok(people::user_by_ref(db, card.user_ref).await?.and_then(|u| u.contact_email))
        },
        async { Ok(people::puk_held(&mut *db.pool().acquire().await?, card.id).await?) },
    )?;
    Ok(Known { standing, registered, contact_email, puk_held })
}

/// `count` of the registered questions, in a random order.
fn choose(registered: &[u32], count: usize) -> Vec<u32> {
    let mut pool = registered.to_vec();
    // Fisher–Yates with the OS random source.
    for i in (1..pool.len()).rev() {
        let j = usize::from(u16::from_le_bytes(random_bytes::<2>())) % (i + 1);
        pool.swap(i, j);
    }
    pool.truncate(count);
    pool
}

pub async fn answers(state: &AppState, request: UnlockAnswers) -> Result<UnlockCodeSent, ApiError> {
    let _turn = state.answers.admit().await?;
    let now = now_unix();
    // One transaction before the hashing: the attempt, what the answers are checked against, and
    // the try counted (each transaction is a commit, and each pooled connection a round trip
    // more when it is given back: issue 16). The try is counted before the answers are hashed,
    // and given back only if they are right: a submission abandoned half-way (the page closed,
    // the connection cut) still counts. It is counted last, so the person's row it locks is
    // held only until the commit.
    let mut tx = state.db.begin_write().await?;
    let OpenAttempt { user_ref, guid, question_ids: asked, .. } =
        unlock_attempts::open_at(&mut tx, &request.attempt_id, Step::Questions, now)
            .await?
            .ok_or_else(attempt_ended)?;
    let stored = registrations::active_answers(&mut tx, user_ref).await?;
    let email = registrations::email(&mut tx, user_ref, registrations::Status::Active).await?;
    let Some(failures) = people::reserve_unlock_try(&mut tx, user_ref, MAX_FAILURES).await? else {
        // Every try is spent (the last perhaps abandoned before it was answered): locked out.
        if people::lock_out(&mut tx, user_ref, now).await? {
            unlock_attempts::fail_all(&mut tx, user_ref, &[Step::Questions]).await?;
            let details = serde_json::json!({ "failures": MAX_FAILURES });
            audit::append(
                &mut tx,
                Entry::new(ANONYMOUS, "selfservice_locked_out").subject(&guid).details(details),
            )
            .await?;
        }
        tx.commit().await?;
        return Err(locked_out());
    };
    tx.commit().await?;
    // Every asked question must be answered, once; every answer is checked (no early exit, so
    // the time taken does not tell how many were right). An attempt always asks some; one that
    // asked none is answered by nothing and passes nothing.
    let mut all_right = !asked.is_empty() && request.answers.len() == asked.len();
    for question in &asked {
        let given = request.answers.iter().find(|a| a.question_id == *question);
        let hash = stored.iter().find(|a| a.question_id == *question).map(|a| a.answer_hash.clone());
        let right = match (given, hash) {
            (Some(given), Some(hash)) => {
                state.answers.verify(questions::normalise(&given.answer), hash).await?
            }
            _ => false,
        };
        all_right &= right;
    }
    if !all_right {
        return Err(wrong(state, user_ref, &guid, failures, now).await?);
    }
    // From here on the try must go back whatever the client does: the rest runs as a task of
    // its own, which a hang-up or the request timeout cannot cancel half-way.
    let settled = tokio::spawn(right(state.clone(), request.attempt_id, user_ref, email, guid));
    settled.await.map_err(|e| anyhow::anyhow!("right answers: {e}"))?
}

/// Right answers: the code sent, or the refusal with the try given back.
async fn right(
    state: AppState,
    attempt_id: String,
    user_ref: i64,
    email: Option<String>,
    guid: CardGuid,
) -> Result<UnlockCodeSent, ApiError> {
    match passed(&state, &attempt_id, user_ref, email.as_deref(), &guid).await {
        Ok(sent) => {
            state.outbox.wake();
            Ok(sent)
        }
        Err(refused) => {
            // Right answers never count against the person, whatever became of the code: the
            // try goes back on its own (unless a parallel wrong one locked the person meanwhile).
            if let Err(e) = give_back_try(&state, user_ref).await {
                tracing::error!(error = %e, user_ref, "right answers: the try could not be given back");
            }
            Err(refused)
        }
    }
}

/// Wrong answers: the try reserved stays counted, and the last one locks the person out. Gives
/// the refusal to answer with; an error only if that could not be recorded.
async fn wrong(
    state: &AppState,
    user_ref: i64,
    guid: &str,
    failures: i64,
    now: i64,
) -> Result<ApiError, ApiError> {
    let mut tx = state.db.begin_write().await?;
    let now_locked = failures >= MAX_FAILURES && people::lock_out(&mut tx, user_ref, now).await?;
    if now_locked {
        unlock_attempts::fail_all(&mut tx, user_ref, &[Step::Questions]).await?;
    } else if failures >= MAX_FAILURES {
        // A parallel submission locked the person first; it said so in the audit trail.
        tx.commit().await?;
        return Ok(locked_out());
    }
    let event = if now_locked { "selfservice_locked_out" } else { "unlock_answers_wrong" };
    audit::append(
        &mut tx,
        Entry::new(ANONYMOUS, event).subject(guid).details(serde_json::json!({ "failures": failures })),
    )
    .await?;
    tx.commit().await?;
    if now_locked {
        return Ok(locked_out());
    }
    let left = MAX_FAILURES - failures;
    Ok(ApiError::rejected(
        ErrorCode::AnswersWrong,
        format!(
            "One or more answers are not right. You have {left} more {} before self-service locks.",
            if left == 1 { "attempt" } else { "attempts" }
        ),
    )
    .with_attempts_left(u32::try_from(left).unwrap_or(0)))
}

/// Right answers, in one transaction: the try given back, the attempt on to its code, the code
/// sent and the audit entry. If any of it fails, none of it is written (the caller then gives
/// the try back alone).
async fn passed(
    state: &AppState,
    attempt_id: &str,
    user_ref: i64,
    email: Option<&str>,
    guid: &str,
) -> Result<UnlockCodeSent, ApiError> {
    let mut tx = state.db.begin_write().await?;
    if !people::clear_unlock_failures(&mut tx, user_ref).await? {
        return Err(locked_out());
    }
    if !unlock_attempts::advance(&mut tx, attempt_id, Step::Questions, Step::Code).await? {
        return Err(attempt_ended());
    }
    let email = email.ok_or_else(attempt_ended)?;
    let sent = send_code(&mut tx, state, user_ref, email, codes::Reuse::Live).await?;
    audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_questions_passed").subject(guid)).await?;
    tx.commit().await?;
    Ok(sent)
}

async fn give_back_try(state: &AppState, user_ref: i64) -> sqlx::Result<()> {
    let mut tx = state.db.begin_write().await?;
    people::clear_unlock_failures(&mut tx, user_ref).await?;
    tx.commit().await
}

/// Where a holder's unlock mail goes: their registered address, or (registration-free policy)
/// the contact email on their record.
pub async fn unlock_address(state: &AppState, user_ref: i64) -> Result<Option<String>, ApiError> {
    let mut conn = state.db.pool().acquire().await?;
    let registered = registrations::email(&mut conn, user_ref, registrations::Status::Active).await?;
    if registered.is_some() || !state.settings.unlock_without_registration {
        return Ok(registered);
    }
    Ok(people::user_by_ref(&state.db, user_ref).await?.and_then(|u| u.contact_email))
}

/// A code for the attempt (`Reuse::Live` once it passed its gate; `Never` for "send a new one"),
/// emailed when it is a new one.
async fn send_code(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    state: &AppState,
    user_ref: i64,
    email: &str,
    reuse: codes::Reuse,
) -> Result<UnlockCodeSent, ApiError> {
    let sent = codes::issue(tx, &state.codes, user_ref, codes::Purpose::Unlock, reuse).await?;
    if let Some(code) = &sent.code {
        state
            .outbox
            .enqueue(
                tx,
                email,
                "Your smartcard unlock code",
                &format!(
                    "Your smartcard unlock code is: {code}\n\nEnter it on the unlock page within 15 minutes. It works once.\n\n\
                     This is NOT your new passcode: you choose that on the next page.\n\n\
                     If you are not unlocking your card right now, contact your Registration Authority (RA) straight away.\n"
                ),
            )
            .await?;
    }
    Ok(UnlockCodeSent {
        email_hint: hint(email),
        sent_at: sent.sent_at,
        code_expires_at: sent.expires_at,
        resend_after: sent.resend_after,
        earlier: sent.code.is_none(),
        mail_delayed: crate::mail::delayed(tx).await?,
    })
}

/// "I did not get the email": another code to the registered address, after the cooldown.
pub async fn resend(state: &AppState, request: UnlockAttempt) -> Result<UnlockCodeSent, ApiError> {
    let OpenAttempt { user_ref, guid, .. } = open_attempt(state, &request.attempt_id, Step::Code).await?;
    let email = unlock_address(state, user_ref).await?.ok_or_else(attempt_ended)?;
    let mut tx = state.db.begin_write().await?;
    let sent = send_code(&mut tx, state, user_ref, &email, codes::Reuse::Never).await?;
    audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_code_resent").subject(&guid)).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(sent)
}

/// The emailed code: right, the attempt may go on to choose the new passcode and release the PUK.
pub async fn code(state: &AppState, request: UnlockCode) -> Result<(), ApiError> {
    let OpenAttempt { user_ref, guid, .. } = open_attempt(state, &request.attempt_id, Step::Code).await?;
    let mut tx = state.db.begin_write().await?;
    if let Err(refusal) =
        codes::redeem(&mut tx, &state.codes, user_ref, codes::Purpose::Unlock, &request.code).await
    {
        // The spent try must stick even though the request fails.
        audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_code_refused").subject(&guid)).await?;
        tx.commit().await?;
        return Err(refusal);
    }
    unlock_attempts::advance(&mut tx, &request.attempt_id, Step::Code, Step::Release).await?;
    audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_code_accepted").subject(&guid)).await?;
    tx.commit().await?;
    Ok(())
}

/// `fay.holder@nhs.net` → `f***@nhs.net`: enough to recognise, not to harvest (nor to count).
fn hint(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "your registered address".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_takes_distinct_registered_questions() {
        let registered = [3, 7, 11, 19];
        for _ in 0..50 {
            let mut drawn = choose(&registered, 3);
            assert_eq!(drawn.len(), 3);
            assert!(drawn.iter().all(|q| registered.contains(q)));
            drawn.sort_unstable();
            drawn.dedup();
            assert_eq!(drawn.len(), 3);
        }
    }

    #[test]
    fn email_hints_hide_the_local_part() {
        assert_eq!(hint("fay@nhs.net"), "f***@nhs.net");
        assert_eq!(hint("fay.holder@nhs.net"), "f***@nhs.net");
    }
}
