//! The card agent as a process, and a WebSocket client that speaks its protocol.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use protocol::agent::{AgentMessage, Event, Operation, Outcome, Request};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::{process::ChildGuard, smartcard::workspace_binary};

/// The origin the test agent allows.
pub const ALLOWED_ORIGIN: &str = "http://app.selfservice.test";

#[derive(Debug)]
pub struct RunningAgent {
    pub port: u16,
    _process: ChildGuard,
}

impl RunningAgent {
    /// Starts the agent on a port the OS picks (no race with other tests for a "free" port)
    /// and reads the port from its first line of output.
    pub async fn start() -> anyhow::Result<Self> {
        let mut command = Command::new(workspace_binary("card-agent")?);
        command.args(["--port", "0", "--allow-origin", ALLOWED_ORIGIN]).stdout(Stdio::piped());
        let mut process = ChildGuard::spawn("card-agent", &mut command)?;
        let stdout = process.take_stdout().context("no stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(20), line)
            .await
            .context("the agent did not start")???;
        let port = line
            .trim()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .with_context(|| format!("unexpected agent output {line:?}"))?;
        process.check_alive()?;
        Ok(Self { port, _process: process })
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug)]
pub struct AgentClient {
    socket: Socket,
    next_id: u64,
    /// Events that arrived while waiting for a response.
    pub events: Vec<Event>,
}

/// Opens the WebSocket with the given `Origin` and (optionally) a forged `Host`.
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

impl AgentClient {
    /// Connects as the allowed origin and reads the hello.
    pub async fn connect(agent: &RunningAgent) -> anyhow::Result<(Self, AgentMessage)> {
        let socket = handshake(&agent.url(), ALLOWED_ORIGIN, None).await?;
        let mut client = Self { socket, next_id: 1, events: Vec::new() };
        let hello = client.next_message(Duration::from_secs(5)).await?;
        Ok((client, hello))
    }

    pub async fn next_message(&mut self, timeout: Duration) -> anyhow::Result<AgentMessage> {
        loop {
            let frame = tokio::time::timeout(timeout, self.socket.next())
                .await
                .context("timed out waiting for the agent")?
                .context("the agent closed the connection")??;
            if let Message::Text(text) = frame {
                return Ok(serde_json::from_str(&text)?);
            }
        }
    }

    /// Sends a request and returns its outcome, keeping events that arrive meanwhile.
    pub async fn request(&mut self, operation: Operation) -> anyhow::Result<Outcome> {
        let id = self.next_id;
        self.next_id += 1;
        let json = serde_json::to_string(&Request { id, operation })?;
        self.socket.send(Message::text(json)).await?;
        loop {
            match self.next_message(Duration::from_secs(20)).await? {
                AgentMessage::Response { id: answered, outcome } if answered == id => return Ok(outcome),
                AgentMessage::Event { event } => self.events.push(event),
                other => bail!("unexpected message {other:?}"),
            }
        }
    }

    /// Waits for `wanted` (or returns one already received).
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

    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text.to_owned())).await?;
        Ok(())
    }
}
