//! The WebSocket service on 127.0.0.1: guarded handshake, hello, requests, pushed events.

use protocol::card_guid::CardGuid;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use futures_util::{SinkExt, StreamExt};
use protocol::agent::{
    AgentErrorCode, AgentMessage, Operation, Outcome, PinPurpose, Reply, Request, PROTOCOL_VERSION,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request as HttpRequest, Response as HttpResponse},
    http::{header, StatusCode},
    protocol::WebSocketConfig,
    Message,
};
use zeroize::Zeroizing;

use envelope::{EnvelopeError, IssueNewSecrets, IssueSecrets, OneTimeKey, TrustedKey, UnlockSecrets};

use crate::{
    config::AgentConfig,
    guard,
    issue::{self, GeneratedKeys},
    ops::{self, Procedure},
    pcsc_worker::{CardReaders, Pcsc},
};

#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: AgentConfig,
    pcsc: Pcsc,
}

impl Server {
    /// Binds 127.0.0.1 only: the agent is never reachable from the network.
    pub async fn bind(config: AgentConfig, pcsc: Pcsc) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port))).await?;
        Ok(Self { listener, config, pcsc })
    }

    pub fn address(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let port = self.address()?.port();
        loop {
            let (stream, peer) = self.listener.accept().await?;
            let config = self.config.clone();
            let pcsc = self.pcsc.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, config, pcsc, port).await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
    }
}

async fn connection(stream: TcpStream, config: AgentConfig, pcsc: Pcsc, port: u16) -> anyhow::Result<()> {
    let allowed = config.allowed_origins.clone();
    // The origin the handshake let in: it decides which backend keys this connection trusts.
    let admitted = Arc::new(Mutex::new(None::<String>));
    let admitted_by_check = admitted.clone();
    #[allow(clippy::result_large_err, reason = "tungstenite's handshake callback signature is fixed")]
    let check = move |request: &HttpRequest, response: HttpResponse| -> Result<HttpResponse, ErrorResponse> {
        let header = |name: header::HeaderName| request.headers().get(name).and_then(|v| v.to_str().ok());
        match guard::check(header(header::ORIGIN), header(header::HOST), &allowed, port) {
            Ok(()) => {
                if let Ok(mut slot) = admitted_by_check.lock() {
                    *slot = header(header::ORIGIN).map(str::to_owned);
                }
                Ok(response)
            }
            Err(refusal) => {
                tracing::warn!(%refusal, "WebSocket handshake refused");
                let mut denied = ErrorResponse::new(Some("Forbidden".into()));
                *denied.status_mut() = StatusCode::FORBIDDEN;
                Err(denied)
            }
        }
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config)).await?;
    let origin = admitted.lock().ok().and_then(|slot| slot.clone()).unwrap_or_default();
    serve(ws, &config, &pcsc, &origin).await
}

/// One connection past its handshake, whatever carries it (a TCP socket; an in-memory pipe in
/// the unit tests): the hello, then requests answered in order and events pushed as they come.
/// `origin` is the one the handshake admitted: it decides which backend keys are trusted.
pub async fn serve<S, R>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    config: &AgentConfig,
    pcsc: &R,
    origin: &str,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: CardReaders,
{
    let trusted = config.trusted_keys(origin);
    if trusted.is_empty() {
        tracing::debug!(%origin, "no envelope keys for this origin: unlock and issuance are refused");
    }
    let mut events = pcsc.subscribe();
    send(
        &mut ws,
        &AgentMessage::Hello {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: PROTOCOL_VERSION,
        },
    )
    .await?;

    let mut window = (Instant::now(), 0u32);
    let mut pending = Pending { trusted, ..Pending::default() };
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(message) = incoming else { return Ok(()) };
                let text = match message? {
                    Message::Text(text) => Zeroizing::new(text.to_string()),
                    Message::Close(_) => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) => continue,
                    _ => {
                        reply(&mut ws, 0, bad_request("Only JSON text messages are accepted.")).await?;
                        continue;
                    }
                };
                if window.0.elapsed() > Duration::from_secs(1) {
                    window = (Instant::now(), 0);
                }
                window.1 += 1;
                // Over the limit a request is refused; a page that keeps going is cut off.
                if window.1 > config.max_requests_per_second.saturating_mul(2) {
                    tracing::warn!("closing a connection that far exceeded the request rate");
                    return Ok(());
                }
                if window.1 > config.max_requests_per_second {
                    let id = serde_json::from_str::<Request>(&text).map_or(0, |r| r.id);
                    let slow_down = ops::error(AgentErrorCode::Busy, "Too many requests at once. Wait a moment and try again.");
                    reply(&mut ws, id, Outcome::Error(slow_down)).await?;
                    continue;
                }
                let outcome_and_id = match serde_json::from_str::<Request>(&text) {
                    Ok(request) => (request.id, handle(pcsc, request.operation, &mut pending).await),
                    // serde's message quotes the offending value, which may be a PIN: never echo it.
                    Err(e) => {
                        tracing::debug!(category = ?e.classify(), line = e.line(), column = e.column(), "invalid request");
                        (0, bad_request("Not a valid request."))
                    }
                };
                reply(&mut ws, outcome_and_id.0, outcome_and_id.1).await?;
            }
            event = events.recv() => {
                match event {
                    Ok(event) => send(&mut ws, &AgentMessage::Event { event }).await?,
                    // A slow page missed events: the next list_readers tells the truth.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
    }
}

type Ws<S> = tokio_tungstenite::WebSocketStream<S>;

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut Ws<S>,
    message: &AgentMessage,
) -> anyhow::Result<()> {
    ws.send(Message::text(serde_json::to_string(message)?)).await?;
    Ok(())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut Ws<S>,
    id: u64,
    outcome: Outcome,
) -> anyhow::Result<()> {
    send(ws, &AgentMessage::Response { id, outcome }).await
}

fn bad_request(message: &str) -> Outcome {
    Outcome::Error(ops::error(AgentErrorCode::BadRequest, message))
}

/// An unlock begun on this connection: the one-time key lives only here, in memory, until the
/// envelope is opened (or another unlock is begun, or the connection closes).
struct PendingUnlock {
    key: OneTimeKey,
    reader: String,
    guid: CardGuid,
    begun: Instant,
}

/// What this connection has begun and not finished (at most one of each kind), and the keys
/// its origin's backend signs envelopes with.
#[derive(Default)]
struct Pending {
    trusted: Vec<TrustedKey>,
    unlock: Option<PendingUnlock>,
    issue: Option<PendingIssue>,
}

/// An issuance begun on this connection: first only the one-time key, then (once the envelope
/// opened and the card generated its keys) the current credentials and the second one-time key,
/// which the card's new 9E key signed for and which opens the new credentials.
enum PendingIssue {
    Offered {
        key: OneTimeKey,
        reader: String,
        guid: Option<CardGuid>,
        begun: Instant,
    },
    KeysGenerated {
        secrets: Box<IssueSecrets>,
        keys: GeneratedKeys,
        offer_key: OneTimeKey,
        reader: String,
        begun: Instant,
        /// When `offer_key` was made: the second envelope, sealed to it, is no older.
        offered: Instant,
    },
}

/// An RA issues a card at the desk: minutes, not half an hour.
const ISSUE_KEY_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Long enough to answer the questions and read the emailed code; the backend's own expiry on
/// the envelope is usually shorter.
const UNLOCK_KEY_LIFETIME: Duration = Duration::from_secs(30 * 60);

async fn handle<R: CardReaders>(pcsc: &R, operation: Operation, pending: &mut Pending) -> Outcome {
    let trusted = &pending.trusted;
    let pending_unlock = &mut pending.unlock;
    tracing::info!(?operation, "request");
    match operation {
        Operation::ListReaders => Outcome::Ok(Reply::Readers { readers: pcsc.readers() }),
        Operation::CardIdentity { reader } => {
            pcsc.run(reader, Box::new(|s| into_outcome(ops::card_identity(s).map(Reply::Identity)))).await
        }
        Operation::SignWithPin { reader, guid, pin, challenge, purpose } => {
            let pin = Zeroizing::new(pin);
            let challenge = match ops::challenge_from(&challenge) {
                Ok(c) => c,
                Err(e) => return Outcome::Error(e),
            };
            let purpose = match purpose {
                PinPurpose::SignIn => envelope::Purpose::SignIn,
                PinPurpose::RegistrationProof => envelope::Purpose::RegistrationProof,
            };
            pcsc.run(
                reader,
                Box::new(move |s| {
                    into_outcome(ops::sign_with_pin(s, &guid, &pin, purpose, &challenge).map(signature))
                }),
            )
            .await
        }
        Operation::ProvePresence { reader, challenge } => {
            let challenge = match ops::challenge_from(&challenge) {
                Ok(c) => c,
                Err(e) => return Outcome::Error(e),
            };
            pcsc.run(
                reader,
                Box::new(move |s| into_outcome(ops::prove_presence(s, &challenge).map(signature))),
            )
            .await
        }
        Operation::ChangePin { reader, old_pin, new_pin } => {
            let (old_pin, new_pin) = (Zeroizing::new(old_pin), Zeroizing::new(new_pin));
            pcsc.run(
                reader,
                Box::new(move |s| into_outcome(ops::change_pin(s, &old_pin, &new_pin).map(|()| Reply::Done))),
            )
            .await
        }
        Operation::BeginUnlock { reader, challenge } => {
            let challenge = match ops::challenge_from(&challenge) {
                Ok(c) => c,
                Err(e) => return Outcome::Error(e),
            };
            *pending_unlock = None;
            if trusted.is_empty() {
                return Outcome::Error(ops::untrusted(Procedure::Unlock));
            }
            let key = OneTimeKey::generate();
            let public_key = key.public_key_bytes();
            let outcome = pcsc
                .run(
                    reader.clone(),
                    Box::new(move |s| {
                        into_outcome(ops::begin_unlock(s, &challenge, &public_key).map(
                            |(guid, signature)| Reply::UnlockOffer {
                                guid,
                                public_key: STANDARD.encode(public_key),
                                signature: STANDARD.encode(signature),
                            },
                        ))
                    }),
                )
                .await;
            if let Outcome::Ok(Reply::UnlockOffer { guid, .. }) = &outcome {
                *pending_unlock =
                    Some(PendingUnlock { key, reader, guid: guid.clone(), begun: Instant::now() });
            }
            outcome
        }
        Operation::BeginIssue { .. }
        | Operation::GenerateIssueKeys { .. }
        | Operation::FinishIssue { .. } => handle_issue(pcsc, operation, trusted, &mut pending.issue).await,
        Operation::Unlock { reader, envelope, new_pin } => {
            let new_pin = Zeroizing::new(new_pin);
            let Some(pending) = pending_unlock.take() else {
                return Outcome::Error(ops::error(
                    AgentErrorCode::EnvelopeRejected,
                    "No unlock was started on this page. Start again.",
                ));
            };
            if pending.begun.elapsed() > UNLOCK_KEY_LIFETIME {
                return Outcome::Error(ops::from_envelope(EnvelopeError::Expired, Procedure::Unlock));
            }
            if pending.reader != reader {
                return Outcome::Error(ops::from_envelope(EnvelopeError::WrongCard, Procedure::Unlock));
            }
            let secrets = match pending.key.open::<UnlockSecrets>(&envelope, trusted) {
                Ok(secrets) => secrets,
                Err(problem) => return Outcome::Error(ops::from_envelope(problem, Procedure::Unlock)),
            };
            let now = service_now(secrets.issued_at, pending.begun);
            if let Err(problem) = secrets.check(&pending.guid, now) {
                return Outcome::Error(ops::from_envelope(problem, Procedure::Unlock));
            }
            let outcome = pcsc
                .run(
                    reader,
                    Box::new(move |s| {
                        into_outcome(ops::unlock(s, &secrets, &new_pin, now).map(Reply::Unlocked))
                    }),
                )
                .await;
            if let Outcome::Ok(Reply::Unlocked(report)) = &outcome {
                // Steps and PUK state only: never a secret.
                tracing::info!(
                    guid = %report.guid,
                    pin_reset = report.pin_reset,
                    puk = ?report.puk,
                    failure = ?report.failure.as_ref().map(|f| (f.step, f.error.code)),
                    "unlock finished"
                );
            }
            outcome
        }
    }
}

async fn handle_issue<R: CardReaders>(
    pcsc: &R,
    operation: Operation,
    trusted: &[TrustedKey],
    pending: &mut Option<PendingIssue>,
) -> Outcome {
    let not_begun = || {
        Outcome::Error(ops::error(
            AgentErrorCode::EnvelopeRejected,
            "No card issuance was started on this page, or it took too long. Start again.",
        ))
    };
    match operation {
        Operation::BeginIssue { reader } => {
            *pending = None;
            if trusted.is_empty() {
                return Outcome::Error(ops::untrusted(Procedure::Issuance));
            }
            let key = OneTimeKey::generate();
            let public_key = key.public_key_bytes();
            let outcome = pcsc
                .run(
                    reader.clone(),
                    Box::new(move |s| {
                        into_outcome(issue::begin(s, &public_key).map(|offer| Reply::IssueOffer {
                            public_key: STANDARD.encode(public_key),
                            guid: offer.guid,
                            resume_signature: offer.resume_signature.map(|der| STANDARD.encode(der)),
                            readiness: offer.readiness,
                        }))
                    }),
                )
                .await;
            if let Outcome::Ok(Reply::IssueOffer { guid, .. }) = &outcome {
                *pending =
                    Some(PendingIssue::Offered { key, reader, guid: guid.clone(), begun: Instant::now() });
            }
            outcome
        }
        Operation::GenerateIssueKeys { reader, envelope } => {
            let Some(PendingIssue::Offered { key, reader: offered_reader, guid, begun }) = pending.take()
            else {
                return not_begun();
            };
            if begun.elapsed() > ISSUE_KEY_LIFETIME {
                return not_begun();
            }
            if offered_reader != reader {
                return Outcome::Error(issue::refused(EnvelopeError::WrongCard));
            }
            let secrets = match key.open::<IssueSecrets>(&envelope, trusted) {
                Ok(secrets) => Box::new(secrets),
                Err(problem) => return Outcome::Error(issue::refused(problem)),
            };
            let now = service_now(secrets.issued_at, begun);
            if let Err(problem) = secrets.check(guid.as_deref(), now) {
                return Outcome::Error(issue::refused(problem));
            }
            let offer_key = OneTimeKey::generate();
            let offered = Instant::now();
            let offer_public = offer_key.public_key_bytes();
            let generated = Arc::new(Mutex::new(None));
            let (for_card, keys_out) = (secrets.clone(), generated.clone());
            let outcome = pcsc
                .run(
                    reader.clone(),
                    Box::new(move |s| {
                        into_outcome(issue::generate_keys(s, &for_card, &offer_public, now).map(|keys| {
                            let reply = Reply::IssueKeys {
                                piv_auth_key: STANDARD.encode(&keys.piv_auth_point),
                                card_auth_key: STANDARD.encode(&keys.card_auth_point),
                                offer_key: STANDARD.encode(offer_public),
                                offer_signature: STANDARD.encode(&keys.offer_signature),
                                attestation: keys.attestation.clone(),
                            };
                            if let Ok(mut slot) = keys_out.lock() {
                                *slot = Some(keys);
                            }
                            reply
                        }))
                    }),
                )
                .await;
            let keys = generated.lock().ok().and_then(|mut slot| slot.take());
            if let Some(keys) = keys {
                tracing::info!(issuance = %secrets.issuance_id, "issue: keys generated on the card");
                *pending =
                    Some(PendingIssue::KeysGenerated { secrets, keys, offer_key, reader, begun, offered });
            }
            outcome
        }
        Operation::FinishIssue {
            reader,
            envelope,
            piv_auth_certificate,
            card_auth_certificate,
            pin,
            challenge,
        } => {
            let pin = Zeroizing::new(pin);
            let challenge = match ops::challenge_from(&challenge) {
                Ok(c) => c,
                Err(e) => return Outcome::Error(e),
            };
            let (Ok(piv_der), Ok(card_der)) =
                (STANDARD.decode(&piv_auth_certificate), STANDARD.decode(&card_auth_certificate))
            else {
                return bad_request("The certificates must be base64.");
            };
            // Whatever happens next, this issuance is used up on this connection: a retry starts
            // again from `begin_issue` (the backend then finishes a half-issued card).
            let Some(PendingIssue::KeysGenerated {
                secrets,
                keys,
                offer_key,
                reader: issuing_reader,
                begun,
                offered,
            }) = pending.take()
            else {
                return not_begun();
            };
            if begun.elapsed() > ISSUE_KEY_LIFETIME {
                return not_begun();
            }
            if issuing_reader != reader {
                return Outcome::Error(issue::refused(EnvelopeError::WrongCard));
            }
            let new = match offer_key.open::<IssueNewSecrets>(&envelope, trusted) {
                Ok(new) => new,
                Err(problem) => return Outcome::Error(issue::refused(problem)),
            };
            let now = service_now(new.issued_at, offered);
            let outcome = pcsc
                .run(
                    reader,
                    Box::new(move |s| {
                        into_outcome(
                            issue::finish(
                                s,
                                &secrets,
                                &new,
                                &keys,
                                [&piv_der, &card_der],
                                &pin,
                                &challenge,
                                now,
                            )
                            .map(Reply::Issued),
                        )
                    }),
                )
                .await;
            if let Outcome::Ok(Reply::Issued(report)) = &outcome {
                tracing::info!(
                    guid = %report.guid,
                    puk = ?report.puk,
                    pin_set = report.pin_set,
                    management_key_rotated = report.management_key_rotated,
                    failure = ?report.failure.as_ref().map(|f| (f.step, f.error.code)),
                    "issue finished"
                );
            }
            outcome
        }
        _ => bad_request("Not an issuance request."),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The backend's time for an envelope made at `issued_at` and sealed to a key made at `begun`
/// ([`envelope::service_now`]): a workstation clock set wrong neither expires a fresh envelope
/// nor keeps an old one alive. Such a clock is worth fixing (certificates, sign-in elsewhere),
/// so it is logged.
fn service_now(issued_at: u64, begun: Instant) -> u64 {
    let (since_offer, local_now) = (begun.elapsed(), unix_now());
    if let Some(offset) = envelope::clock_offset(issued_at, since_offer, local_now) {
        let (minutes, side) = (offset.unsigned_abs() / 60, if offset > 0 { "ahead of" } else { "behind" });
        tracing::warn!(
            offset_seconds = offset,
            "this computer's clock is about {minutes} minutes {side} the self-service site's: the card \
             operation goes ahead, but set the clock right (Windows: Settings, Time, Sync now; Linux: timedatectl)"
        );
    }
    envelope::service_now(issued_at, since_offer, local_now)
}

fn signature(der: Vec<u8>) -> Reply {
    Reply::Signature { signature: STANDARD.encode(der) }
}

fn into_outcome(result: ops::OpResult<Reply>) -> Outcome {
    match result {
        Ok(reply) => Outcome::Ok(reply),
        Err(error) => Outcome::Error(error),
    }
}

#[cfg(test)]
mod tests {
    //! The service over an in-memory pipe and a virtual card: no socket, no pcscd, and the
    //! clock under the test's control.

    use std::time::{SystemTime, UNIX_EPOCH};

    use piv::{
        host::{PivSession, Transport},
        mgmt::ManagementKey,
    };
    use protocol::agent::{AgentError, Event, ReaderInfo};
    use tokio::sync::broadcast;
    use tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
    use virtual_card::{card::Card, personalise, state::CardState};

    use super::*;
    use crate::pcsc_worker::Work;

    const ORIGIN: &str = "https://selfservice.test";
    const READER: &str = "Virtual reader 0";

    #[derive(Clone)]
    struct VirtualReaders {
        card: Arc<Mutex<Card>>,
        events: broadcast::Sender<Event>,
    }

    impl CardReaders for VirtualReaders {
        fn readers(&self) -> Vec<ReaderInfo> {
            vec![ReaderInfo { name: READER.into(), card_present: true }]
        }

        fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.events.subscribe()
        }

        async fn run(&self, reader: String, work: Work) -> Outcome {
            assert_eq!(reader, READER);
            let mut card = self.card.lock().unwrap();
            card.reset();
            let mut session = PivSession::new(&mut *card as &mut dyn Transport);
            work(&mut session)
        }
    }

    fn signer() -> envelope::EnvelopeSigner {
        envelope::EnvelopeSigner::from_seed(&[7; 32])
    }

    struct Harness {
        client: WebSocketStream<tokio::io::DuplexStream>,
        card: Arc<Mutex<Card>>,
        next_id: u64,
        _ca: tempfile::TempDir,
    }

    impl Harness {
        async fn start(max_requests_per_second: u32) -> Self {
            let ca_dir = tempfile::tempdir().unwrap();
            let ca = personalise::CertificateAuthority::load_or_create(ca_dir.path()).unwrap();
            let mut card = Card::new(
                CardState::blank("123456", "12345678", piv::ids::alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY),
                None,
            );
            personalise::personalise(
                &mut PivSession::new(&mut card),
                &ManagementKey::default_3des(),
                &ca,
                "Test Holder",
            )
            .unwrap();
            let readers =
                VirtualReaders { card: Arc::new(Mutex::new(card)), events: broadcast::channel(8).0 };
            let mut config = AgentConfig {
                allowed_origins: vec![ORIGIN.into()],
                max_requests_per_second,
                ..AgentConfig::default()
            };
            config.add_envelope_key(&format!("{ORIGIN}={}", signer().trusted_key())).unwrap();
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let card = readers.card.clone();
            tokio::spawn(async move {
                let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
                let _ = serve(ws, &config, &readers, ORIGIN).await;
            });
            let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
            let mut harness = Self { client, card, next_id: 1, _ca: ca_dir };
            assert!(matches!(harness.next().await, Some(AgentMessage::Hello { .. })));
            harness
        }

        /// The next message, or `None` once the service closed the connection.
        async fn next(&mut self) -> Option<AgentMessage> {
            loop {
                match self.client.next().await? {
                    Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
        }

        async fn send(&mut self, operation: Operation) -> u64 {
            let id = self.next_id;
            self.next_id += 1;
            let json = serde_json::to_string(&Request { id, operation }).unwrap();
            self.client.send(Message::text(json)).await.unwrap();
            id
        }

        async fn request(&mut self, operation: Operation) -> Outcome {
            let id = self.send(operation).await;
            match self.next().await {
                Some(AgentMessage::Response { id: answered, outcome }) if answered == id => outcome,
                other => panic!("expected the answer to {id}, got {other:?}"),
            }
        }

        /// The offer of a new unlock: the card's GUID and the agent's one-time key.
        async fn begin_unlock(&mut self) -> (CardGuid, String) {
            let begin = Operation::BeginUnlock { reader: READER.into(), challenge: STANDARD.encode([9; 32]) };
            match self.request(begin).await {
                Outcome::Ok(Reply::UnlockOffer { guid, public_key, .. }) => (guid, public_key),
                other => panic!("expected an unlock offer, got {other:?}"),
            }
        }

        async fn unlock(&mut self, envelope: String) -> Outcome {
            self.request(Operation::Unlock { reader: READER.into(), envelope, new_pin: "97531864".into() })
                .await
        }

        /// Whether the card still takes its first PIN: nothing was reset.
        fn pin_is_unchanged(&self) -> bool {
            let mut card = self.card.lock().unwrap();
            card.reset();
            let mut session = PivSession::new(&mut *card);
            session.select().unwrap();
            session.verify_pin(&piv::pin::PaddedPin::new("123456").unwrap()).is_ok()
        }
    }

    /// What the backend would release for `public_key`: the card's PUK and a new one.
    fn envelope_for(public_key: &str, guid: &CardGuid) -> String {
        let expires_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 300;
        let secrets = UnlockSecrets {
            guid: guid.to_string(),
            expires_at,
            issued_at: 0,
            current_puks: vec![Zeroizing::new("12345678".into())],
            new_puk: Zeroizing::new("24681357".into()),
            proof_challenge: STANDARD.encode([3; 32]),
        };
        envelope::seal(&signer(), public_key, &secrets).unwrap()
    }

    fn refusal(outcome: &Outcome) -> &AgentError {
        match outcome {
            Outcome::Error(e) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_envelope_within_the_key_lifetime_unlocks_the_card() {
        let mut agent = Harness::start(50).await;
        let (guid, key) = agent.begin_unlock().await;
        tokio::time::advance(UNLOCK_KEY_LIFETIME - Duration::from_secs(1)).await;
        match agent.unlock(envelope_for(&key, &guid)).await {
            Outcome::Ok(Reply::Unlocked(report)) => assert!(report.pin_reset, "{report:?}"),
            other => panic!("expected the unlock report, got {other:?}"),
        }
        assert!(!agent.pin_is_unchanged());
    }

    #[tokio::test(start_paused = true)]
    async fn a_one_time_key_older_than_its_lifetime_opens_nothing() {
        let mut agent = Harness::start(50).await;
        let (guid, key) = agent.begin_unlock().await;
        tokio::time::advance(UNLOCK_KEY_LIFETIME + Duration::from_secs(1)).await;
        let late = agent.unlock(envelope_for(&key, &guid)).await;
        assert_eq!(refusal(&late).code, AgentErrorCode::EnvelopeRejected);
        assert!(refusal(&late).message.contains("expired"), "{late:?}");
        assert!(agent.pin_is_unchanged());
        // The key is spent with the refusal: the same envelope again finds no unlock begun.
        let again = agent.unlock(envelope_for(&key, &guid)).await;
        assert!(refusal(&again).message.contains("No unlock was started"), "{again:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_offer_replaces_the_old_key_so_its_envelope_opens_nothing() {
        let mut agent = Harness::start(50).await;
        let (guid, first) = agent.begin_unlock().await;
        let (_, second) = agent.begin_unlock().await;
        assert_ne!(first, second);
        let stale = agent.unlock(envelope_for(&first, &guid)).await;
        // The backend's signature covers the recipient key, so to the new key it is no signature.
        assert_eq!(refusal(&stale).code, AgentErrorCode::EnvelopeUntrusted);
        assert!(agent.pin_is_unchanged());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_over_the_rate_are_refused_and_a_page_that_keeps_going_is_cut_off() {
        let limit = 5;
        let mut agent = Harness::start(limit).await;
        for _ in 0..limit * 2 + 1 {
            agent.send(Operation::ListReaders).await;
        }
        let mut answered = Vec::new();
        while let Some(message) = agent.next().await {
            if let AgentMessage::Response { outcome, .. } = message {
                answered.push(matches!(outcome, Outcome::Ok(Reply::Readers { .. })));
            }
        }
        let limit = usize::try_from(limit).unwrap();
        assert_eq!(
            answered.len(),
            limit * 2,
            "the one past twice the rate gets no answer: the connection closes"
        );
        assert!(answered[..limit].iter().all(|ok| *ok), "within the rate: {answered:?}");
        assert!(answered[limit..].iter().all(|ok| !ok), "over it: busy: {answered:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_per_second() {
        let limit = 5;
        let mut agent = Harness::start(limit).await;
        for _ in 0..3 {
            for _ in 0..limit {
                assert!(matches!(
                    agent.request(Operation::ListReaders).await,
                    Outcome::Ok(Reply::Readers { .. })
                ));
            }
            tokio::time::advance(Duration::from_millis(1001)).await;
        }
    }
}
