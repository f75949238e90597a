//! `backend admin issue-card`: the operator's way to issue a blank card — the first RA's card,
//! or the demo's. It is the RA console's issuance (`journeys::issuance`), with this command in the
//! page's place: it relays between the card agent on this computer and the issuance steps, and
//! sees no more than the page would (the secrets travel sealed to the agent).

use anyhow::{bail, Context};
use protocol::{
    agent::{Operation, Reply},
    ra::{CardIssued, IssueKeys, IssueStart},
};
use zeroize::Zeroizing;

use crate::{
    admin::CardAgent,
    journeys::issuance::{self, Issuer, Officer},
    store::people,
};

/// What the command needs besides the database.
#[derive(Debug)]
pub struct IssueCard<'a> {
    pub user_id: &'a str,
    pub reason: &'a str,
    /// Where the blank card is.
    pub agent: CardAgent<'a>,
    pub pin: Zeroizing<String>,
}

pub async fn issue_card(issuer: Issuer<'_>, command: IssueCard<'_>) -> anyhow::Result<CardIssued> {
    let holder = people::user_by_user_id(issuer.db, command.user_id)
        .await?
        .with_context(|| format!("no user {}", command.user_id))?;
    let (mut agent, reader) = command.agent.connect().await?;
    let Reply::IssueOffer { public_key, guid, resume_signature, readiness } =
        agent.call(Operation::BeginIssue { reader: reader.clone() }).await?
    else {
        bail!("unexpected answer from the agent to begin_issue");
    };
    let start = IssueStart {
        reason: command.reason.to_owned(),
        agent_key: public_key,
        card_guid: guid,
        resume_signature,
        readiness,
    };
    let started = issuance::start(issuer, Officer::Operator, &holder, &start).await.map_err(api_error)?;
    let Reply::IssueKeys { piv_auth_key, card_auth_key, offer_key, offer_signature, attestation } = agent
        .call(Operation::GenerateIssueKeys { reader: reader.clone(), envelope: started.envelope })
        .await?
    else {
        bail!("unexpected answer from the agent to generate_issue_keys");
    };
    let keys = IssueKeys { piv_auth_key, card_auth_key, offer_key, offer_signature, attestation };
    let certificates =
        issuance::certify(issuer, Officer::Operator, &started.issuance_id, &keys).await.map_err(api_error)?;
    let finish = Operation::FinishIssue {
        reader,
        envelope: certificates.envelope,
        piv_auth_certificate: certificates.piv_auth_certificate,
        card_auth_certificate: certificates.card_auth_certificate,
        pin: command.pin.to_string(),
        challenge: certificates.challenge,
    };
    let Reply::Issued(report) = agent.call(finish).await? else {
        bail!("unexpected answer from the agent to finish_issue");
    };
    issuance::complete(issuer, Officer::Operator, &started.issuance_id, report).await.map_err(api_error)
}

/// The operator sees the cause, not the page's "Something went wrong": they are at the server.
pub(crate) fn api_error(error: crate::error::ApiError) -> anyhow::Error {
    match error {
        crate::error::ApiError::Internal(cause) | crate::error::ApiError::Unavailable(cause) => cause,
        refused => anyhow::anyhow!("{refused}"),
    }
}
