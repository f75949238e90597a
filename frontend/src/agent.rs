//! The card agent, seen from the page: one WebSocket to `ws://127.0.0.1:<port>`, requests
//! matched to responses by id, reader and card events kept in signals, and a reconnect every
//! two seconds while the agent is not running (so starting it is all a person has to do).

use protocol::card_guid::CardGuid;
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    time::Duration,
};

use futures_channel::oneshot;
use leptos::prelude::*;
use protocol::agent::{
    AgentError, AgentErrorCode, AgentMessage, Event, Operation, Outcome, PinPurpose, ReaderInfo, Reply,
    Request, UnlockReport, PROTOCOL_VERSION,
};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{MessageEvent, WebSocket};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    Connecting,
    Connected {
        version: String,
    },
    /// Nothing answers on the agent's port: not installed, or not running.
    NotRunning,
    /// An agent speaking another protocol version: it must be updated (or this page reloaded).
    Incompatible {
        version: String,
    },
}

/// Shared by every page (in a context as a `StoredValue`, since it is not `Send`).
#[derive(Clone)]
pub struct Agent {
    inner: Rc<Inner>,
}

struct Inner {
    url: RefCell<String>,
    socket: RefCell<Option<WebSocket>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_id: Cell<u64>,
    status: RwSignal<AgentStatus>,
    readers: RwSignal<Vec<ReaderInfo>>,
    /// The readers have been listed since the (re)connection: an empty list means "none".
    listed: RwSignal<bool>,
    last_event: RwSignal<Option<Event>>,
    handlers: RefCell<Vec<Box<dyn std::any::Any>>>,
}

impl Agent {
    /// Not yet connected: [`Agent::start`] once the agent's URL is known.
    pub fn new() -> Self {
        Self {
            inner: Rc::new(Inner {
                url: RefCell::new(String::new()),
                socket: RefCell::new(None),
                pending: RefCell::new(HashMap::new()),
                next_id: Cell::new(1),
                status: RwSignal::new(AgentStatus::Connecting),
                readers: RwSignal::new(Vec::new()),
                listed: RwSignal::new(false),
                last_event: RwSignal::new(None),
                handlers: RefCell::new(Vec::new()),
            }),
        }
    }

    pub fn start(&self, url: String) {
        *self.inner.url.borrow_mut() = url;
        self.open();
    }

    pub fn status(&self) -> RwSignal<AgentStatus> {
        self.inner.status
    }

    pub fn readers(&self) -> RwSignal<Vec<ReaderInfo>> {
        self.inner.readers
    }

    pub fn listed(&self) -> RwSignal<bool> {
        self.inner.listed
    }

    /// The newest reader/card event (pages react to card removal through it).
    pub fn last_event(&self) -> RwSignal<Option<Event>> {
        self.inner.last_event
    }

    fn open(&self) {
        let url = self.inner.url.borrow().clone();
        let Ok(socket) = WebSocket::new(&url) else {
            self.inner.status.set(AgentStatus::NotRunning);
            return;
        };
        let on_message = {
            let agent = self.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(text) = event.data().as_string() {
                    agent.on_message(&text);
                }
            })
        };
        let on_close = {
            let agent = self.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| agent.on_close())
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut handlers = self.inner.handlers.borrow_mut();
        handlers.clear();
        handlers.push(Box::new(on_message));
        handlers.push(Box::new(on_close));
        *self.inner.socket.borrow_mut() = Some(socket);
    }

    fn on_message(&self, text: &str) {
        let Ok(message) = serde_json::from_str::<AgentMessage>(text) else {
            // An answer this page cannot read must still end the request that waits for it; and
            // an agent older than protocol 5 (internally tagged messages) must be told to update.
            #[derive(serde::Deserialize)]
            struct Unreadable {
                response: Option<IdOnly>,
                id: Option<u64>,
                agent_version: Option<String>,
            }
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: u64,
            }
            let Ok(unreadable) = serde_json::from_str::<Unreadable>(text) else { return };
            if let Some(version) = unreadable.agent_version {
                self.inner.status.set(AgentStatus::Incompatible { version });
            }
            if let Some(id) = unreadable.response.map(|r| r.id).or(unreadable.id) {
                if let Some(reply) = self.inner.pending.borrow_mut().remove(&id) {
                    let _ = reply.send(Outcome::Error(unexpected()));
                }
            }
            return;
        };
        match message {
            AgentMessage::Hello { agent_version, protocol_version }
                if protocol_version != PROTOCOL_VERSION =>
            {
                self.inner.status.set(AgentStatus::Incompatible { version: agent_version });
            }
            AgentMessage::Hello { agent_version, .. } => {
                self.inner.status.set(AgentStatus::Connected { version: agent_version });
                self.refresh_readers();
            }
            AgentMessage::Response { id, outcome } => {
                if let Some(reply) = self.inner.pending.borrow_mut().remove(&id) {
                    let _ = reply.send(outcome);
                }
            }
            AgentMessage::Event { event } => {
                self.refresh_readers();
                self.inner.last_event.set(Some(event));
            }
        }
    }

    fn on_close(&self) {
        *self.inner.socket.borrow_mut() = None;
        self.inner.status.set(AgentStatus::NotRunning);
        self.inner.readers.set(Vec::new());
        self.inner.listed.set(false);
        // Dropping the senders fails every waiting request with "agent not running".
        self.inner.pending.borrow_mut().clear();
        let agent = self.clone();
        set_timeout(move || agent.open(), Duration::from_secs(2));
    }

    fn refresh_readers(&self) {
        let agent = self.clone();
        leptos::task::spawn_local(async move {
            if let Ok(Outcome::Ok(Reply::Readers { readers })) = agent.request(Operation::ListReaders).await {
                agent.inner.readers.set(readers);
                agent.inner.listed.set(true);
            }
        });
    }

    /// Sends `operation` and waits for its outcome; an agent that is gone is an `AgentError`.
    pub async fn request(&self, operation: Operation) -> Result<Outcome, AgentError> {
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        let (reply, answer) = oneshot::channel();
        let text = serde_json::to_string(&Request { id, operation }).map_err(|_| not_running())?;
        {
            let socket = self.inner.socket.borrow();
            let socket = socket.as_ref().ok_or_else(not_running)?;
            self.inner.pending.borrow_mut().insert(id, reply);
            socket.send_with_str(&text).map_err(|_| not_running())?;
        }
        answer.await.map_err(|_| not_running())
    }
}

pub fn not_running() -> AgentError {
    AgentError {
        code: AgentErrorCode::ServiceUnavailable,
        message: "The card agent is not running on this computer. Start it, then try again.".into(),
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Agent({:?})", self.inner.status.get_untracked())
    }
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

/// The app's agent connection (provided by `App`).
pub fn use_agent() -> Agent {
    expect_context::<StoredValue<Agent, LocalStorage>>().get_value()
}

/// The reader the signed-in card is in, so pulling that card out signs out.
#[derive(Debug, Clone, Copy)]
pub struct SignedInReader(pub RwSignal<Option<String>>);

impl Agent {
    /// GUID, certificates and PIN state of the card in `reader`.
    pub async fn identity(&self, reader: String) -> Result<protocol::agent::CardIdentity, AgentError> {
        match self.request(Operation::CardIdentity { reader }).await? {
            Outcome::Ok(Reply::Identity(identity)) => Ok(identity),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }

    /// VERIFY the passcode and sign `challenge` for `purpose` with the card's 9A key; only if
    /// the card in `reader` is `guid`, the one the person chose.
    pub async fn sign_with_pin(
        &self,
        reader: String,
        guid: CardGuid,
        pin: String,
        challenge: String,
        purpose: PinPurpose,
    ) -> Result<String, AgentError> {
        match self.request(Operation::SignWithPin { reader, guid, pin, challenge, purpose }).await? {
            Outcome::Ok(Reply::Signature { signature }) => Ok(signature),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }
}

impl Agent {
    /// Sign `challenge` with the card's 9E key: proves the card is present, no passcode needed.
    pub async fn prove_presence(&self, reader: String, challenge: String) -> Result<String, AgentError> {
        match self.request(Operation::ProvePresence { reader, challenge }).await? {
            Outcome::Ok(Reply::Signature { signature }) => Ok(signature),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }

    /// The agent's one-time key for this unlock, signed for by the card: (GUID, key, signature).
    pub async fn begin_unlock(
        &self,
        reader: String,
        challenge: String,
    ) -> Result<(CardGuid, String, String), AgentError> {
        match self.request(Operation::BeginUnlock { reader, challenge }).await? {
            Outcome::Ok(Reply::UnlockOffer { guid, public_key, signature }) => {
                Ok((guid, public_key, signature))
            }
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }

    /// Reset the passcode with the sealed PUKs and rotate the PUK; the card's report of each step.
    pub async fn unlock(
        &self,
        reader: String,
        envelope: String,
        new_pin: String,
    ) -> Result<UnlockReport, AgentError> {
        match self.request(Operation::Unlock { reader, envelope, new_pin }).await? {
            Outcome::Ok(Reply::Unlocked(report)) => Ok(report),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }
}

#[cfg(feature = "ra-console")]
impl Agent {
    /// Issuance, step 1 (RA console): the agent's offer — its one-time key, the card's GUID if it
    /// has one, a half-issued card's signature for the key, what the agent found on the card —
    /// as the backend's start of an issuance for `reason` takes it.
    pub async fn begin_issue(
        &self,
        reader: String,
        reason: String,
    ) -> Result<protocol::ra::IssueStart, AgentError> {
        match self.request(Operation::BeginIssue { reader }).await? {
            Outcome::Ok(Reply::IssueOffer { public_key, guid, resume_signature, readiness }) => {
                Ok(protocol::ra::IssueStart {
                    reason,
                    agent_key: public_key,
                    card_guid: guid,
                    resume_signature,
                    readiness,
                })
            }
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }

    /// Step 2: the card generates its 9A and 9E keys; their public points, and the agent's second
    /// one-time key with the new 9E key's signature for it — all the backend needs.
    pub async fn generate_issue_keys(
        &self,
        reader: String,
        envelope: String,
    ) -> Result<protocol::ra::IssueKeys, AgentError> {
        match self.request(Operation::GenerateIssueKeys { reader, envelope }).await? {
            Outcome::Ok(Reply::IssueKeys {
                piv_auth_key,
                card_auth_key,
                offer_key,
                offer_signature,
                attestation,
            }) => Ok(protocol::ra::IssueKeys {
                piv_auth_key,
                card_auth_key,
                offer_key,
                offer_signature,
                attestation,
            }),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }

    /// Step 3: the new secrets' envelope, certificates, CHUID, PUK, the holder's PIN, management
    /// key, proofs.
    pub async fn finish_issue(
        &self,
        reader: String,
        certificates: protocol::ra::IssueCertificates,
        pin: String,
    ) -> Result<protocol::agent::IssueReport, AgentError> {
        let operation = Operation::FinishIssue {
            reader,
            envelope: certificates.envelope,
            piv_auth_certificate: certificates.piv_auth_certificate,
            card_auth_certificate: certificates.card_auth_certificate,
            pin,
            challenge: certificates.challenge,
        };
        match self.request(operation).await? {
            Outcome::Ok(Reply::Issued(report)) => Ok(report),
            Outcome::Error(e) => Err(e),
            Outcome::Ok(_) => Err(unexpected()),
        }
    }
}

fn unexpected() -> AgentError {
    AgentError {
        code: AgentErrorCode::CardError,
        message: "The card agent gave an answer this page does not understand. Update the card agent, or reload this page.".into(),
    }
}
