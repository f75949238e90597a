//! `backend admin issue-card`: the operator's way to issue a blank card — the first RA's card,
//! or the demo's. It is the RA console's issuance (`routes::issuance`), with this command in the
//! page's place: it relays between the card agent on this computer and the issuance steps, and
//! sees no more than the page would (the secrets travel sealed to the agent).

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    agent::{AgentMessage, Operation, Outcome, Reply, Request, PROTOCOL_VERSION},
    ra::{CardIssued, IssueKeys, IssueStart},
};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};
use zeroize::Zeroizing;

use crate::{
    journeys::issuance::{self, Issuer, Officer},
    store::people,
};

/// 10 seconds in steps of 200 ms.
const CARD_WAIT_ROUNDS: u32 = 50;

/// What the command needs besides the database.
#[derive(Debug)]
pub struct IssueCard<'a> {
    pub user_id: &'a str,
    pub reason: &'a str,
    /// `ws://127.0.0.1:47101` by default.
    pub agent_url: &'a str,
    /// An origin the agent allows (the self-service site's).
    pub origin: &'a str,
    /// The reader holding the blank card; the first with a card if not given.
    pub reader: Option<&'a str>,
    pub pin: Zeroizing<String>,
}

pub async fn issue_card(issuer: Issuer<'_>, command: IssueCard<'_>) -> anyhow::Result<CardIssued> {
    let holder = people::user_by_user_id(issuer.db, command.user_id)
        .await?
        .with_context(|| format!("no user {}", command.user_id))?;
    let mut agent = AgentClient::connect(command.agent_url, command.origin).await?;
    let reader = agent.wait_for_card(command.reader).await?;
    let Reply::IssueOffer { public_key, guid, resume_signature } =
        agent.call(Operation::BeginIssue { reader: reader.clone() }).await?
    else {
        bail!("unexpected answer from the agent to begin_issue");
    };
    let start = IssueStart {
        reason: command.reason.to_owned(),
        agent_key: public_key,
        card_guid: guid,
        resume_signature,
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
fn api_error(error: crate::error::ApiError) -> anyhow::Error {
    match error {
        crate::error::ApiError::Internal(cause) | crate::error::ApiError::Unavailable(cause) => cause,
        refused => anyhow::anyhow!("{refused}"),
    }
}

/// A minimal client of the agent's WebSocket protocol.
struct AgentClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl AgentClient {
    async fn connect(url: &str, origin: &str) -> anyhow::Result<Self> {
        let mut request = url.into_client_request().context("the agent URL is not valid")?;
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).context("the origin is not valid")?);
        let (ws, _) = tokio_tungstenite::connect_async(request).await.with_context(|| {
            format!("cannot reach the card agent at {url} (is it running, and does it allow {origin}?)")
        })?;
        let mut client = Self { ws, next_id: 1 };
        match client.next_message().await? {
            AgentMessage::Hello { protocol_version, .. } if protocol_version == PROTOCOL_VERSION => {
                Ok(client)
            }
            AgentMessage::Hello { protocol_version, .. } => {
                bail!("the card agent speaks protocol {protocol_version}, this backend {PROTOCOL_VERSION}")
            }
            other => bail!("the card agent did not say hello: {other:?}"),
        }
    }

    /// The reader (the given one, or the first) holding a card, waiting a little for one: a card
    /// just put in (or a virtual card just started) takes a moment to reach pcscd.
    async fn wait_for_card(&mut self, wanted: Option<&str>) -> anyhow::Result<String> {
        for _ in 0..CARD_WAIT_ROUNDS {
            let Reply::Readers { readers } = self.call(Operation::ListReaders).await? else {
                bail!("unexpected answer from the agent to list_readers");
            };
            let found = readers.into_iter().find(|r| r.card_present && wanted.is_none_or(|w| r.name == w));
            if let Some(reader) = found {
                return Ok(reader.name);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        match wanted {
            Some(reader) => bail!("there is no card in the reader {reader:?}"),
            None => bail!("no card reader holds a card"),
        }
    }

    async fn next_message(&mut self) -> anyhow::Result<AgentMessage> {
        loop {
            match self.ws.next().await.context("the card agent closed the connection")?? {
                Message::Text(text) => return Ok(serde_json::from_str(&text)?),
                Message::Close(_) => bail!("the card agent closed the connection"),
                _ => continue,
            }
        }
    }

    /// Sends one request and waits for its answer (events in between are skipped).
    async fn call(&mut self, operation: Operation) -> anyhow::Result<Reply> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws.send(Message::text(serde_json::to_string(&Request { id, operation })?)).await?;
        loop {
            if let AgentMessage::Response { id: answered, outcome } = self.next_message().await? {
                if answered == id {
                    return match outcome {
                        Outcome::Ok(reply) => Ok(reply),
                        Outcome::Error(e) => bail!("{}", e.message),
                    };
                }
            }
        }
    }
}
