//! Unlocking a card, second part: releasing the PUK to the agent and learning what the card did.
//!
//! The page never sees a PUK. The agent offers a one-time key that the card signs for with 9E
//! (`envelope::offer_digest`); the backend records a new pending PUK *before* releasing anything,
//! then seals the candidates and the new PUK to that key. What the backend believes is kept as an
//! invariant: **the card holds `puk_sealed` or `puk_pending_sealed`**. A release reuses an existing
//! pending PUK as the new one, so however a release ends — card pulled out, browser closed,
//! backend restarted — the card still holds one of the two, and the next release offers both.
//! Only a report whose 9A proof verifies, made by the card after the rotation, collapses the two
//! into one — and only into the pending PUK of the release the proof belongs to: the proof
//! challenge is bound to the attempt and to that pending PUK, so a report held back from an
//! earlier release can never promote a pending PUK the card was not given.

use base64::{engine::general_purpose::STANDARD, Engine};
use protocol::error_code::ErrorCode;
use protocol::{
    agent::PukOnCard,
    api::{ChallengeIssued, UnlockAttempt, UnlockRelease, UnlockReleased, UnlockReported},
};
use zeroize::Zeroizing;

use super::unlock::{attempt_ended, open_attempt};
use crate::{
    audit::{self, Entry, ANONYMOUS, SYSTEM},
    card_proof,
    challenges::{self, Purpose},
    error::ApiError,
    secrets::random_digits,
    startup::AppState,
    store::{
        people,
        unlock_attempts::{self, OpenAttempt, Step},
    },
    time::now_unix,
};

/// Releases per attempt: enough for a card pulled out or a flaky reader, not an envelope mint.
pub const MAX_RELEASES: i64 = 5;
/// How long the agent accepts an envelope.
const ENVELOPE_SECONDS: i64 = 5 * 60;
const PUK_DIGITS: usize = 8;

/// Who drives a release: the holder (self-service, through the public routes), or the officer who
/// started it at the desk (through the RA console's routes; `None`: the operator's command). Each
/// reaches only its own attempts: a desk attempt skipped the questions and the emailed code, so
/// the public routes must not be able to finish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Holder,
    Desk { officer_ref: Option<i64> },
}

/// The attempt, if it is open, has passed its gate (the emailed code, or the RA's check) and is
/// `driver`'s to release.
async fn releasable(state: &AppState, attempt_id: &str, driver: Driver) -> Result<OpenAttempt, ApiError> {
    let attempt = open_attempt(state, attempt_id, Step::Release).await?;
    let theirs = match (driver, &attempt.desk) {
        (Driver::Holder, None) => true,
        (Driver::Desk { officer_ref }, Some(desk)) => desk.officer_ref == officer_ref,
        _ => false,
    };
    if !theirs {
        return Err(attempt_ended());
    }
    Ok(attempt)
}

pub async fn offer_challenge(
    state: &AppState,
    driver: Driver,
    request: UnlockAttempt,
) -> Result<ChallengeIssued, ApiError> {
    releasable(state, &request.attempt_id, driver).await?;
    let issued =
        challenges::issue(&state.db, Purpose::UnlockOffer, Some(request.attempt_id.as_bytes())).await?;
    Ok(issued.into())
}

/// What one release seals: the PUKs the card may hold (most likely first) and the one to rotate to.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    candidates: Vec<Zeroizing<String>>,
    new_puk: Zeroizing<String>,
}

/// `pending_is_ours`: the pending PUK was recorded by this release (so the card cannot hold it).
/// Otherwise an earlier release stopped somewhere unknown; it most often got as far as the
/// rotation (what is lost is usually the report), so the pending PUK is tried first.
fn plan(current: Zeroizing<String>, pending: Zeroizing<String>, pending_is_ours: bool) -> Plan {
    if pending_is_ours {
        Plan { candidates: vec![current], new_puk: pending }
    } else {
        Plan { candidates: vec![pending.clone(), current], new_puk: pending }
    }
}

fn bad_offer() -> ApiError {
    ApiError::rejected(ErrorCode::InvalidRequest, "The card agent's offer is not in the expected format.")
}

pub async fn release(
    state: &AppState,
    driver: Driver,
    request: UnlockRelease,
) -> Result<UnlockReleased, ApiError> {
    let attempt = releasable(state, &request.attempt_id, driver).await?;
    let signature = card_proof::signature_from_base64(&request.signature)?;
    let agent_key: [u8; 32] =
        STANDARD.decode(&request.public_key).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad_offer)?;
    let card = people::card_by_guid(&state.db, &attempt.guid).await?.ok_or_else(attempt_ended)?;
    let fresh_pending = state.vault.seal(&attempt.guid, &random_digits(PUK_DIGITS))?;

    let mut tx = state.db.begin_write().await?;
    let challenge = challenges::redeem(
        &mut tx,
        &request.challenge_id,
        Purpose::UnlockOffer,
        Some(request.attempt_id.as_bytes()),
    )
    .await?;
    let digest = envelope::offer_digest(&challenge, &agent_key, &attempt.guid);
    if card.status != people::CardStatus::Active
        || !card_proof::verifies(&card.card_auth_key, &digest, &signature)
    {
        audit::append(&mut tx, Entry::new(ANONYMOUS, "unlock_offer_refused").subject(&attempt.guid)).await?;
        tx.commit().await?;
        return Err(ApiError::rejected(ErrorCode::SignatureInvalid,
            "The card in the reader could not prove it is the card being unlocked. Put that card in and try again.",
        ));
    }
    let releases = unlock_attempts::count_release(&mut tx, &request.attempt_id, MAX_RELEASES).await?;
    let Some(releases) = releases else {
        tx.commit().await?;
        return Err(attempt_ended());
    };
    let people::SealedPuks { current, pending } =
        people::stage_pending_puk(&mut tx, &attempt.guid, &fresh_pending).await?.ok_or_else(|| {
            ApiError::rejected(ErrorCode::PukUnknown,
            "This service does not hold your card's unlock key. Contact your Registration Authority (RA).",
        )
        })?;
    let open = |sealed: &[u8]| state.vault.open(&attempt.guid, sealed).map_err(anyhow::Error::from);
    let plan = plan(open(&current)?, open(&pending)?, pending == fresh_pending);
    let now = now_unix();
    let proof_challenge = challenges::issue_in(
        &mut tx,
        Purpose::UnlockProof,
        Some(&release_binding(&request.attempt_id, &pending)),
    )
    .await?;
    let secrets = envelope::UnlockSecrets {
        guid: attempt.guid.to_string(),
        expires_at: u64::try_from(now + ENVELOPE_SECONDS).unwrap_or(u64::MAX),
        issued_at: u64::try_from(now).unwrap_or(0),
        current_puks: plan.candidates,
        new_puk: plan.new_puk,
        proof_challenge: proof_challenge.challenge_b64(),
    };
    let sealed = envelope::seal(&state.signer, &request.public_key, &secrets).map_err(|_| bad_offer())?;
    audit::append(
        &mut tx,
        Entry::new(ANONYMOUS, "unlock_puk_released").subject(&attempt.guid).details(serde_json::json!({
            "release": releases,
            "candidates": secrets.current_puks.len(),
        })),
    )
    .await?;
    crate::crash::point("unlock.release.before_commit");
    tx.commit().await?;
    crate::crash::point("unlock.release.after_commit");
    Ok(UnlockReleased { envelope: sealed, proof_challenge: proof_challenge.into() })
}

/// What an unlock proof is bound to: the attempt and the pending PUK its release sealed (its
/// sealed form's hash). A later release of another pending PUK gets another binding.
fn release_binding(attempt_id: &str, pending_sealed: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut binding = attempt_id.as_bytes().to_vec();
    binding.push(b':');
    binding.extend_from_slice(&Sha256::digest(pending_sealed));
    binding
}

pub async fn report(state: &AppState, driver: Driver, request: UnlockReported) -> Result<(), ApiError> {
    let attempt = releasable(state, &request.attempt_id, driver).await?;
    let report = &request.report;
    if !report.guid.eq_ignore_ascii_case(&attempt.guid) {
        return Err(ApiError::rejected(
            ErrorCode::WrongCard,
            "That report is about another card than the one being unlocked.",
        ));
    }
    let card = people::card_by_guid(&state.db, &attempt.guid).await?.ok_or_else(attempt_ended)?;
    let proof = report.proof.as_deref().map(card_proof::signature_from_base64).transpose()?;
    let holder = people::user_by_ref(&state.db, attempt.user_ref).await?.ok_or_else(attempt_ended)?;
    // At the desk the holder may never have registered: the notice goes to their contact email.
    let email = match &attempt.desk {
        None => super::unlock::unlock_address(state, attempt.user_ref).await?,
        Some(_) => {
            super::unlock::unlock_address(state, attempt.user_ref).await?.or(holder.contact_email.clone())
        }
    };

    // Read before the write transaction, which must not wait for a second pooled connection.
    let desk_officer = match attempt.desk.as_ref().and_then(|d| d.officer_ref) {
        Some(officer) => people::user_by_ref(&state.db, officer).await?.map(|u| (u.user_id, u.name)),
        None => None,
    };
    let mut tx = state.db.begin_write().await?;
    let pending = people::pending_puk(&mut tx, &attempt.guid).await?;
    // No pending PUK: whatever release this report is about has been overtaken.
    let binding = release_binding(&request.attempt_id, pending.as_deref().unwrap_or_default());
    let challenge =
        challenges::redeem(&mut tx, &request.proof_challenge_id, Purpose::UnlockProof, Some(&binding))
            .await?;
    let proved = proof.is_some_and(|signature| {
        card_proof::verifies_for(&card.piv_auth_key, envelope::Purpose::UnlockProof, &challenge, &signature)
    });
    // A card suspended or revoked since the release is not reported unlocked (and its lockout
    // not cleared); at the desk, only a passcode actually reset completes the unlock.
    let inactive = card.status != people::CardStatus::Active;
    let proved = proved && !inactive && (attempt.desk.is_none() || report.pin_reset);
    let details = serde_json::json!({
        "pin_reset": report.pin_reset,
        "puk": report.puk,
        "failed_step": report.failure.as_ref().map(|f| f.step),
        "proof": if report.proof.is_none() { "none" } else if proved { "verified" } else { "invalid" },
    });
    if !proved {
        // Nothing changes about the PUK: the card still holds the current or the pending one.
        audit::append(
            &mut tx,
            Entry::new(ANONYMOUS, "unlock_incomplete").subject(&attempt.guid).details(details),
        )
        .await?;
        tx.commit().await?;
        return Err(if inactive {
            ApiError::rejected(
                ErrorCode::CardNotActive,
                "This card has been suspended or revoked, so it is not unlocked. Contact your Registration Authority (RA).",
            )
        } else if report.proof.is_some() {
            ApiError::rejected(
                ErrorCode::SignatureInvalid,
                "The card's proof could not be verified. Try again.",
            )
        } else {
            ApiError::rejected(
                ErrorCode::UnlockIncomplete,
                "Your card was not unlocked. Keep it in the reader and try again.",
            )
        });
    }
    let rotated = report.puk == PukOnCard::Rotated;
    if let (true, Some(pending)) = (rotated, &pending) {
        people::promote_pending_puk(&mut tx, &attempt.guid, pending).await?;
    }
    let now = now_unix();
    if !unlock_attempts::finish(&mut tx, &request.attempt_id, now).await? {
        return Err(attempt_ended());
    }
    let notice = match &attempt.desk {
        None => {
            audit::append(
                &mut tx,
                Entry::new(ANONYMOUS, "card_unlocked").subject(&attempt.guid).details(details),
            )
            .await?;
            "Your smartcard was unlocked a moment ago with self-service, and a new passcode was set.\n\n\
             If this was you, there is nothing more to do.\n\n\
             If this wasn't you, contact your Registration Authority (RA) straight away: unlocking \
             someone else's card is misconduct.\n"
                .to_owned()
        }
        Some(desk) => {
            // One action: the card works again, and so does self-service.
            people::clear_lockout(&mut tx, attempt.user_ref).await?;
            let officer = desk_officer;
            let actor = officer.as_ref().map_or(SYSTEM, |(user_id, _)| user_id.as_str());
            let mut details = details;
            details["guid"] = serde_json::json!(attempt.guid);
            details["identity_check"] = serde_json::json!(desk.identity_check);
            details["reason"] = serde_json::json!(desk.reason);
            audit::append(
                &mut tx,
                Entry::new(actor, "card_unlocked_at_desk").subject(&holder.user_id).details(details),
            )
            .await?;
            let by = officer.map_or_else(|| "the service's operator".to_owned(), |(_, name)| name);
            format!(
                "Your smartcard was unlocked a moment ago at the Registration Authority (RA) desk by {by}, \
                 and a new passcode was set.\n\n\
                 If this was you, there is nothing more to do.\n\n\
                 If this wasn't you, contact your Registration Authority (RA) straight away.\n"
            )
        }
    };
    if let Some(email) = email {
        state.outbox.enqueue(&mut tx, &email, "Your smartcard was unlocked", &notice).await?;
    }
    crate::crash::point("unlock.report.before_commit");
    tx.commit().await?;
    crate::crash::point("unlock.report.after_commit");
    state.outbox.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puk(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_owned())
    }

    #[test]
    fn a_fresh_pending_puk_is_only_the_target() {
        let plan = plan(puk("11111111"), puk("22222222"), true);
        assert_eq!(plan, Plan { candidates: vec![puk("11111111")], new_puk: puk("22222222") });
    }

    #[test]
    fn a_pending_puk_left_by_an_unfinished_release_is_offered_first_and_reused() {
        let plan = plan(puk("11111111"), puk("22222222"), false);
        assert_eq!(plan.candidates, vec![puk("22222222"), puk("11111111")]);
        assert_eq!(plan.new_puk, puk("22222222"), "whatever the card holds afterwards is one of the two");
    }
}
