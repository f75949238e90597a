//! An RA unlocks a card at the desk (the guide's last resort): after three failed self-service
//! attempts, for a holder who never registered, or one who cannot reach their email.
//!
//! The officer has checked who the holder is; the card in the reader proves it is present (9E
//! over a challenge bound to this officer and this person), so the backend knows it is one of
//! this person's active cards. That check takes the place of the questions and the emailed code:
//! the attempt starts at its release, and from there it is self-service's own release and
//! report (`unlock_release`, the same PUK invariant and per-step report), driven only by the
//! officer who started it. Completing it also clears the person's self-service lockout.
//! An officer cannot unlock their own card.

use protocol::{
    api::ChallengeIssued,
    error_code::ErrorCode,
    ra::{DeskUnlockStart, DeskUnlockStarted, Reason},
};

use super::{issuance::Officer, ra::checked_reason, unlock_release::Driver};
use crate::{
    audit::{self, Entry},
    card_proof,
    challenges::{self, Purpose},
    error::ApiError,
    secrets::random_token,
    startup::AppState,
    store::{
        people::{self, CardStatus, User},
        unlock_attempts::{self, Desk, NewAttempt, Step},
    },
    time::now_unix,
};

/// Long enough for the holder to type their new passcode twice at the desk.
const ATTEMPT_SECONDS: i64 = 15 * 60;

/// Who drives the attempt `officer` starts.
pub fn driver(officer: &Officer<'_>) -> Driver {
    Driver::Desk { officer_ref: officer.reference() }
}

/// The challenge the holder's card signs: for this officer and this person only. Tagged numeric
/// references, so no user id (`system`, one with a `:`) can stand for another.
fn binding(officer: &Officer<'_>, holder: &User) -> Vec<u8> {
    let by = officer.reference().map_or_else(|| "operator".to_owned(), |id| format!("ra:{id}"));
    format!("desk-unlock|{by}|holder:{}", holder.id).into_bytes()
}

pub async fn challenge(
    state: &AppState,
    officer: Officer<'_>,
    user_id: &str,
) -> Result<ChallengeIssued, ApiError> {
    let holder = super::ra::person(state, user_id).await?;
    let issued = challenges::issue(&state.db, Purpose::DeskUnlock, Some(&binding(&officer, &holder))).await?;
    Ok(issued.into())
}

/// "How did you check who they are?": required, as a reason is.
fn checked_identity(text: &str) -> Result<String, ApiError> {
    checked_reason(&Reason { reason: text.to_owned() }).map_err(|_| {
        ApiError::rejected(
            ErrorCode::IdentityCheckRequired,
            "Say how you checked who they are (3 to 500 characters), for example \"photo ID seen (passport)\".",
        )
    })
}

pub async fn start(
    state: &AppState,
    officer: Officer<'_>,
    user_id: &str,
    request: DeskUnlockStart,
) -> Result<DeskUnlockStarted, ApiError> {
    let identity_check = checked_identity(&request.identity_check)?;
    let reason = checked_reason(&Reason { reason: request.reason.clone() })?;
    let signature = card_proof::signature_from_base64(&request.signature)?;
    let holder = super::ra::person(state, user_id).await?;
    let card = people::card_by_guid(&state.db, &request.guid).await?;
    let mut conn = state.db.pool().acquire().await?;
    let puk_held = match &card {
        Some(card) => people::puk_held(&mut conn, card.id).await?,
        None => false,
    };
    drop(conn);
    // Read before the write transaction, which must not wait for a second pooled connection.
    let address = super::unlock::unlock_address(state, holder.id).await?.or(holder.contact_email.clone());

    let mut tx = state.db.begin_write().await?;
    let challenge = challenges::redeem(
        &mut tx,
        &request.challenge_id,
        Purpose::DeskUnlock,
        Some(&binding(&officer, &holder)),
    )
    .await?;
    let refusal = match &card {
        _ if officer.reference() == Some(holder.id) => Some(("own_card", ApiError::rejected(ErrorCode::OwnCard,
            "You cannot unlock your own card. Another RA officer must do it.",
        ))),
        Some(card) if card.user_ref == holder.id => None,
        _ => Some(("not_theirs", ApiError::rejected(ErrorCode::CardNotTheirs,
            "The card in the reader is not one of this person's cards. Check you chose their card, or find the card's holder.",
        ))),
    };
    let refusal = refusal.or_else(|| match &card {
        Some(card) if !card_proof::verifies_for(&card.card_auth_key, envelope::Purpose::Presence, &challenge, &signature) => {
            Some(("bad_signature", ApiError::rejected(ErrorCode::SignatureInvalid,
                "The card's answer could not be verified. Take the card out, put it back and try again.",
            )))
        }
        Some(card) if card.status != CardStatus::Active => Some(("card_not_active", ApiError::rejected(ErrorCode::CardNotActive,
            "This card is suspended or revoked, so it cannot be unlocked. Reactivate it first if it was suspended, or issue a new card.",
        ))),
        Some(_) if !puk_held => Some(("puk_unknown", ApiError::rejected(ErrorCode::PukUnknown,
            "This service does not hold this card's unlock key, so it cannot be unlocked here. Issue a new card.",
        ))),
        _ => None,
    });
    if let Some((why, error)) = refusal {
        let details = serde_json::json!({ "why": why, "guid": request.guid });
        audit::append(
            &mut tx,
            Entry::new(officer.actor(), "desk_unlock_refused").subject(&holder.user_id).details(details),
        )
        .await?;
        tx.commit().await?;
        return Err(error);
    }
    let card = card.ok_or(ApiError::NotFound)?;
    let now = now_unix();
    // A self-service attempt for this card still at its questions or code would race this one:
    // it ends here. One already releasing may still report what the card did (the PUK invariant
    // holds across both: they share the pending PUK).
    unlock_attempts::fail_for_card(&mut tx, card.guid.as_str(), &[Step::Questions, Step::Code]).await?;
    let desk = Desk {
        officer_ref: officer.reference(),
        identity_check: identity_check.clone(),
        reason: reason.clone(),
    };
    let attempt_id = random_token();
    let attempt = NewAttempt {
        id: &attempt_id,
        user_ref: holder.id,
        guid: card.guid.as_str(),
        question_ids: &[],
        step: Step::Release,
        created_at: now,
        expires_at: now + ATTEMPT_SECONDS,
        desk: Some(&desk),
    };
    unlock_attempts::insert(&mut tx, &attempt).await?;
    let details =
        serde_json::json!({ "guid": card.guid, "identity_check": identity_check, "reason": reason });
    audit::append(
        &mut tx,
        Entry::new(officer.actor(), "desk_unlock_started").subject(&holder.user_id).details(details),
    )
    .await?;
    // Told at the start, not only at the end: an unlock begun and never reported still reaches
    // the holder.
    if let Some(address) = address {
        let by = match &officer {
            Officer::Ra(user) => user.name.clone(),
            Officer::Operator => "the service's operator".to_owned(),
        };
        let text = format!(
            "An unlock of your smartcard was started a moment ago at the Registration Authority (RA) desk by {by}.\n\n\
             If you are at the desk, there is nothing to do.\n\n\
             If this wasn't you, contact your Registration Authority (RA) straight away.\n"
        );
        state
            .outbox
            .enqueue(&mut tx, &address, "Your smartcard is being unlocked at the RA desk", &text)
            .await?;
    }
    tx.commit().await?;
    state.outbox.wake();
    Ok(DeskUnlockStarted { attempt_id })
}
