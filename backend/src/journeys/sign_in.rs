//! Sign-in with the card: a one-time challenge, the card's 9A signature made after the holder's
//! passcode (VERIFY on the card, through the agent), checked with the key recorded for that
//! card; then a server-side session in an HttpOnly, SameSite=Strict cookie.

use protocol::api::{ChallengeIssued, Profile, SignInRequest};
use protocol::error_code::ErrorCode;

use crate::{
    audit::{self, Entry, ANONYMOUS},
    card_proof,
    challenges::{self, Purpose},
    error::ApiError,
    journeys::profile,
    session::{self, SignedIn},
    startup::AppState,
    store::people::{self, CardStatus},
};

pub async fn challenge(state: &AppState) -> Result<ChallengeIssued, ApiError> {
    let issued = challenges::issue(&state.db, Purpose::SignIn, None).await?;
    Ok(issued.into())
}

/// A session for the card's holder: their profile and the session token for the cookie.
pub async fn sign_in(state: &AppState, request: SignInRequest) -> Result<(Profile, String), ApiError> {
    let signature = card_proof::signature_from_base64(&request.signature)?;
    let guid = request.guid;
    // Reads first: a write transaction holds a pooled connection, and must not wait for a second.
    // The signature is checked before the write transaction, against the challenge as it stands
    // (issue 16: inside it, SQLite's one writer waited on every check, and sign-in at 500/s fell
    // behind); it counts only if the challenge then redeemed is the one checked. Both reads at
    // once, each on its own connection.
    let (found, peeked) = tokio::try_join!(
        async { Ok::<_, ApiError>(people::card_and_holder(&state.db, &guid).await?) },
        async {
            Ok::<_, ApiError>(challenges::peek(&state.db, &request.challenge_id, Purpose::SignIn).await?)
        },
    )?;
    let (card, holder) = found.unzip();
    let verified = match (&card, &peeked) {
        (Some(card), Some(peeked)) => {
            card_proof::verifies_for(&card.piv_auth_key, envelope::Purpose::SignIn, peeked, &signature)
        }
        _ => false,
    };
    let mut tx = state.db.begin_write().await?;
    let challenge = challenges::redeem(&mut tx, &request.challenge_id, Purpose::SignIn, None).await?;
    let refusal = match &card {
        None => Some((
            "unknown_card",
            ErrorCode::CardNotRecognised,
            "This card is not known to this service. Contact your Registration Authority (RA).",
        )),
        Some(card) if card.status != CardStatus::Active => Some((
            card.status.as_str(),
            ErrorCode::CardNotActive,
            "This card has been suspended or revoked. Contact your Registration Authority (RA).",
        )),
        Some(_) if !(verified && peeked.as_deref() == Some(challenge.as_slice())) => Some((
            "bad_signature",
            ErrorCode::SignatureInvalid,
            "The card's answer could not be verified. Remove the card, put it back and try again.",
        )),
        Some(_) => None,
    };
    if let Some((why, code, message)) = refusal {
        // The refusal is audited (and the challenge stays spent) even though the request fails.
        let details = serde_json::json!({ "reason": why });
        audit::append(&mut tx, Entry::new(ANONYMOUS, "sign_in_refused").subject(&guid).details(details))
            .await?;
        tx.commit().await?;
        return Err(ApiError::rejected(code, message));
    }
    let user = holder.ok_or(ApiError::Unauthenticated)?;
    let token = session::create(&mut tx, user.id, &guid).await?;
    audit::append(&mut tx, Entry::new(&user.user_id, "sign_in").subject(&guid)).await?;
    tx.commit().await?;
    let profile = profile::load(state, &user, &guid).await?;
    Ok((profile, token))
}

pub async fn sign_out(state: &AppState, signed_in: SignedIn) -> Result<(), ApiError> {
    session::delete(&state.db, &signed_in.session).await?;
    audit::record(
        &state.db,
        Entry::new(&signed_in.user.user_id, "sign_out").subject(&signed_in.session.card_guid),
    )
    .await?;
    Ok(())
}
