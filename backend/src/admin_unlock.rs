//! `backend admin unlock-card`: the operator's desk unlock, through the card agent on this
//! computer — the RA console's "Unlock their card" (`journeys::desk_unlock`) with this command in
//! the page's place, as `issue-card` is for issuance. It relays between the agent and the same
//! steps, and sees no more than the page would (the PUKs travel sealed to the agent).

use anyhow::bail;
use protocol::{
    agent::{Operation, Reply},
    api::{UnlockAttempt, UnlockRelease, UnlockReported},
    ra::DeskUnlockStart,
};
use zeroize::Zeroizing;

use crate::{
    admin::CardAgent,
    admin_issue::api_error,
    journeys::{desk_unlock, issuance::Officer, unlock_release},
    startup::AppState,
};

#[derive(Debug)]
pub struct UnlockCard<'a> {
    pub user_id: &'a str,
    pub identity_check: &'a str,
    pub reason: &'a str,
    /// Where the holder's card is.
    pub agent: CardAgent<'a>,
    pub pin: Zeroizing<String>,
}

pub async fn unlock_card(state: &AppState, command: UnlockCard<'_>) -> anyhow::Result<()> {
    let (mut agent, reader) = command.agent.connect().await?;
    let Reply::Identity(card) = agent.call(Operation::CardIdentity { reader: reader.clone() }).await? else {
        bail!("unexpected answer from the agent to card_identity");
    };
    let issued =
        desk_unlock::challenge(state, Officer::Operator, command.user_id).await.map_err(api_error)?;
    let Reply::Signature { signature } =
        agent.call(Operation::ProvePresence { reader: reader.clone(), challenge: issued.challenge }).await?
    else {
        bail!("unexpected answer from the agent to prove_presence");
    };
    let start = DeskUnlockStart {
        challenge_id: issued.challenge_id,
        guid: card.guid,
        signature,
        identity_check: command.identity_check.to_owned(),
        reason: command.reason.to_owned(),
    };
    let attempt_id = desk_unlock::start(state, Officer::Operator, command.user_id, start)
        .await
        .map_err(api_error)?
        .attempt_id;
    let driver = desk_unlock::driver(&Officer::Operator);
    let offer =
        unlock_release::offer_challenge(state, driver, UnlockAttempt { attempt_id: attempt_id.clone() })
            .await
            .map_err(api_error)?;
    let Reply::UnlockOffer { public_key, signature, .. } =
        agent.call(Operation::BeginUnlock { reader: reader.clone(), challenge: offer.challenge }).await?
    else {
        bail!("unexpected answer from the agent to begin_unlock");
    };
    let release = UnlockRelease {
        attempt_id: attempt_id.clone(),
        challenge_id: offer.challenge_id,
        public_key,
        signature,
    };
    let released = unlock_release::release(state, driver, release).await.map_err(api_error)?;
    let unlock = Operation::Unlock { reader, envelope: released.envelope, new_pin: command.pin.to_string() };
    let Reply::Unlocked(report) = agent.call(unlock).await? else {
        bail!("unexpected answer from the agent to unlock");
    };
    let failure = report.failure.clone();
    // The report goes to the backend whatever happened: it is how the PUK is kept track of.
    let reported =
        UnlockReported { attempt_id, proof_challenge_id: released.proof_challenge.challenge_id, report };
    match (unlock_release::report(state, driver, reported).await, failure) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(failure)) => bail!("the card was not unlocked: {}", failure.error.message),
        (Err(refused), None) => Err(api_error(refused)),
    }
}
