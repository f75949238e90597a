//! The second half of every unlock, self-service or at an RA's desk: the agent offers a one-time
//! key (signed for by the card), the backend seals the PUKs to it, the agent resets the passcode
//! and rotates the PUK, and the backend checks the card's proof. The page only relays: it sees a
//! public key, a sealed envelope and a report, and the new passcode goes only to the agent.

use protocol::{
    agent::AgentErrorCode,
    api::{UnlockRelease, UnlockReported},
};

use crate::{
    agent::Agent,
    api::{self, ApiError},
};

/// Self-service's release and report routes.
pub const SELF_SERVICE: &str = "/api/unlock";
/// An RA's desk unlock: the same steps, for the officer who started it.
#[cfg(feature = "ra-console")]
pub const DESK: &str = "/api/ra/desk-unlock";

/// Why an unlock did not finish: the backend refused (the page may make more of its code), or
/// the agent or card said why in a sentence.
#[derive(Debug)]
pub enum Failed {
    Api(ApiError),
    Agent(String),
}

/// Releases the PUK of attempt `attempt_id` to the card in `reader`, sets `pin` and reports.
pub async fn unlock(
    agent: &Agent,
    routes: &str,
    reader: String,
    attempt_id: &str,
    pin: String,
) -> Result<(), Failed> {
    let offer = api::unlock_offer_challenge(routes, attempt_id).await.map_err(Failed::Api)?;
    let (_guid, public_key, signature) =
        agent.begin_unlock(reader.clone(), offer.challenge).await.map_err(|e| Failed::Agent(e.message))?;
    let release = UnlockRelease {
        attempt_id: attempt_id.to_owned(),
        challenge_id: offer.challenge_id,
        public_key,
        signature,
    };
    let released = api::unlock_release(routes, &release).await.map_err(Failed::Api)?;
    let report = agent.unlock(reader, released.envelope, pin).await.map_err(|e| match e.code {
        AgentErrorCode::WrongCard => Failed::Agent(
            "The card in the reader is not the one you started with. Put that card back in and try again."
                .into(),
        ),
        _ => Failed::Agent(e.message),
    })?;
    let failure = report.failure.clone();
    // The report goes to the backend whatever happened: it is how the PUK is kept track of.
    let reported = UnlockReported {
        attempt_id: attempt_id.to_owned(),
        proof_challenge_id: released.proof_challenge.challenge_id,
        report,
    };
    match (api::unlock_report(routes, &reported).await, failure) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(failure)) => Err(Failed::Agent(failure.error.message)),
        (Err(e), None) => Err(Failed::Api(e)),
    }
}
