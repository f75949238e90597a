//! A native client of the card agent's WebSocket protocol (`protocol::agent`): one request at a
//! time, answers matched by id, events kept while waiting. The SPA has its own, in the browser's
//! WebSocket; everything native (the operator's `backend admin issue-card`, the tests, the
//! benchmark) uses this one.

use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use protocol::agent::{
    AgentMessage, CardIdentity, Event, Operation, Outcome, Reply, Request, PROTOCOL_VERSION,
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How long an answer may take: key generation on a real card takes seconds, never this long.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the agent has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the WebSocket with the given `Origin` (the agent serves allowed origins only) and,
/// for tests of the agent's checks, a forged `Host`.
pub async fn handshake(
    url: &str,
    origin: &str,
    host: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(origin).map_err(tokio_tungstenite::tungstenite::http::Error::from)?,
    );
    if let Some(host) = host {
        request.headers_mut().insert(
            "Host",
            HeaderValue::from_str(host).map_err(tokio_tungstenite::tungstenite::http::Error::from)?,
        );
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

#[derive(Debug)]
pub struct AgentClient {
    socket: Socket,
    next_id: u64,
    /// Events that arrived while waiting for an answer, oldest first.
    pub events: Vec<Event>,
}

impl AgentClient {
    /// Connects as `origin` and returns the agent's hello, whatever version it speaks.
    pub async fn connect(url: &str, origin: &str) -> anyhow::Result<(Self, AgentMessage)> {
        let socket = handshake(url, origin, None).await.with_context(|| {
            format!("cannot reach the card agent at {url} (is it running, and does it allow {origin}?)")
        })?;
        let mut client = Self { socket, next_id: 1, events: Vec::new() };
        let hello = client.next_message(HELLO_TIMEOUT).await?;
        Ok((client, hello))
    }

    /// Connects as `origin` to an agent that speaks this build's protocol version.
    pub async fn connect_compatible(url: &str, origin: &str) -> anyhow::Result<Self> {
        match Self::connect(url, origin).await? {
            (client, AgentMessage::Hello { protocol_version, .. })
                if protocol_version == PROTOCOL_VERSION =>
            {
                Ok(client)
            }
            (_, AgentMessage::Hello { protocol_version, .. }) => {
                bail!("the card agent speaks protocol {protocol_version}, this program {PROTOCOL_VERSION}")
            }
            (_, other) => bail!("the card agent did not say hello: {other:?}"),
        }
    }

    pub async fn next_message(&mut self, timeout: Duration) -> anyhow::Result<AgentMessage> {
        loop {
            let frame = tokio::time::timeout(timeout, self.socket.next())
                .await
                .context("timed out waiting for the card agent")?
                .context("the card agent closed the connection")??;
            match frame {
                Message::Text(text) => return Ok(serde_json::from_str(&text)?),
                Message::Close(_) => bail!("the card agent closed the connection"),
                _ => continue,
            }
        }
    }

    /// Sends one request and returns its outcome, keeping the events that arrive meanwhile.
    pub async fn request(&mut self, operation: Operation) -> anyhow::Result<Outcome> {
        let id = self.next_id;
        self.next_id += 1;
        let json = serde_json::to_string(&Request { id, operation })?;
        self.socket.send(Message::text(json)).await?;
        loop {
            match self.next_message(ANSWER_TIMEOUT).await? {
                AgentMessage::Response { id: answered, outcome } if answered == id => return Ok(outcome),
                AgentMessage::Event { event } => self.events.push(event),
                other => bail!("unexpected message from the card agent: {other:?}"),
            }
        }
    }

    /// [`Self::request`], with the agent's refusal as the error (its message is for people).
    pub async fn call(&mut self, operation: Operation) -> anyhow::Result<Reply> {
        match self.request(operation).await? {
            Outcome::Ok(reply) => Ok(reply),
            Outcome::Error(e) => bail!("{}", e.message),
        }
    }

    /// Waits for `wanted` (or takes one already received).
    pub async fn wait_for_event(&mut self, wanted: &Event, timeout: Duration) -> anyhow::Result<()> {
        if let Some(i) = self.events.iter().position(|e| e == wanted) {
            self.events.drain(..=i);
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_message(left).await? {
                AgentMessage::Event { event } if &event == wanted => return Ok(()),
                _ => continue,
            }
        }
    }

    /// A frame as given, for tests of what the agent refuses.
    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text.to_owned())).await?;
        Ok(())
    }

    /// The reader (`wanted`, or the first) holding a card, waiting up to `timeout` for one: a
    /// card just put in takes a moment to reach pcscd.
    pub async fn wait_for_card(&mut self, wanted: Option<&str>, timeout: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Reply::Readers { readers } = self.call(Operation::ListReaders).await? else {
                bail!("unexpected answer from the card agent to list_readers");
            };
            if let Some(reader) =
                readers.into_iter().find(|r| r.card_present && wanted.is_none_or(|w| r.name == w))
            {
                return Ok(reader.name);
            }
            if tokio::time::Instant::now() >= deadline {
                match wanted {
                    Some(reader) => bail!("there is no card in the reader {reader:?}"),
                    None => bail!("no card reader holds a card"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn identity(&mut self, reader: &str) -> anyhow::Result<CardIdentity> {
        match self.call(Operation::CardIdentity { reader: reader.into() }).await? {
            Reply::Identity(identity) => Ok(identity),
            other => bail!("expected the card's identity, got {other:?}"),
        }
    }
}
