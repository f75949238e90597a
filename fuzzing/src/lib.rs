//! What each fuzz target checks, as plain functions: `fuzz/` runs them under libFuzzer
//! (`scripts/fuzz.sh`), and `tests/corpus.rs` replays the committed corpus through them in the
//! ordinary test run. Each one panics only on a finding: a crash in the code under test, or a
//! property that does not hold (a round trip that changes the value, an envelope a fuzzer forged).
//!
//! The targets, by the name their corpus folder and fuzz binary carry: [`TARGETS`].
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a panic is how a fuzz target reports a finding")]

use std::sync::{Arc, Mutex, OnceLock};

use piv::{
    apdu::{Command, Response},
    host::{PivSession, Transport, TransportError},
    status::StatusWord,
    tlv,
};

/// What a target checks, given the fuzzer's bytes.
pub type Check = fn(&[u8]);

/// Each target's name and function.
pub const TARGETS: [(&str, Check); 10] = [
    ("apdu", apdu),
    ("tlv", tlv),
    ("status_words", status_words),
    ("card_answers", card_answers),
    ("virtual_card", virtual_card),
    ("agent_requests", agent_requests),
    ("envelopes", envelopes),
    ("certificates", certificates),
    ("api_bodies", api_bodies),
    ("passcodes_and_answers", passcodes_and_answers),
];

/// Command and response APDUs: whatever parses encodes to bytes that parse to the same thing.
pub fn apdu(data: &[u8]) {
    if let Ok(command) = Command::parse(data) {
        let bytes = command.to_bytes();
        let again = Command::parse(&bytes).expect("an encoded command parses");
        assert_eq!(again.to_bytes(), bytes, "a command's encoding is stable");
        let _ = command.max_response();
    }
    if let Ok(response) = Response::parse(data) {
        assert_eq!(response.to_bytes(), data, "a response encodes to the bytes it came from");
    }
}

/// BER-TLV: every element parsed re-encodes to one that parses to the same tag and value.
pub fn tlv(data: &[u8]) {
    if let Ok(elements) = tlv::parse_all(data) {
        for element in elements {
            let encoded = tlv::encode(element.tag, element.value);
            let (again, rest) = tlv::parse_one(&encoded).expect("an encoded element parses");
            assert_eq!((again.tag, again.value), (element.tag, element.value));
            assert!(rest.is_empty());
        }
    }
    let tag = data.first().map_or(0x53, |b| u32::from(*b) | 0x5F_C1_00);
    let _ = tlv::find(data, tag);
}

/// Status words: each of the 65,536 maps to a meaning and back to itself.
pub fn status_words(data: &[u8]) {
    for pair in data.chunks_exact(2) {
        let sw = u16::from_be_bytes([pair[0], pair[1]]);
        assert_eq!(u16::from(StatusWord::from(sw)), sw);
    }
}

/// A card that answers each command with the next piece of the fuzzer's bytes (a length byte,
/// then that many bytes), then as if removed: what a broken or hostile card can send the agent.
#[derive(Debug)]
struct AnsweringCard<'a> {
    answers: &'a [u8],
}

impl Transport for AnsweringCard<'_> {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let (&length, rest) = self.answers.split_first().ok_or(TransportError::CardRemoved)?;
        let length = usize::from(length).min(rest.len());
        let (answer, rest) = rest.split_at(length);
        self.answers = rest;
        Ok(answer.to_vec())
    }
}

/// The agent's card operations and the host session against any answers: errors, never a panic.
pub fn card_answers(data: &[u8]) {
    let mut session = PivSession::new(AnsweringCard { answers: data });
    let _ = card_agent::ops::card_identity(&mut session);
    let _ = session.select();
    let _ = session.pin_status();
    let _ = session.metadata(piv::ids::key::CARD_MANAGEMENT);
    let _ = session.get_data(piv::ids::object::CHUID);
    let _ = session.attest(piv::ids::key::PIV_AUTHENTICATION);
}

/// A blank card and a personalised one, made once.
fn cards() -> &'static (virtual_card::state::CardState, virtual_card::state::CardState) {
    static CARDS: OnceLock<(virtual_card::state::CardState, virtual_card::state::CardState)> =
        OnceLock::new();
    CARDS.get_or_init(|| {
        let blank = virtual_card::state::CardState::blank(
            "123456",
            "12345678",
            piv::ids::alg::TDES,
            &piv::mgmt::DEFAULT_3DES_KEY,
        );
        let mut card = virtual_card::card::Card::new(blank.clone(), None);
        let ca_dir = tempfile::tempdir().expect("a temporary folder");
        let ca = virtual_card::personalise::CertificateAuthority::load_or_create(ca_dir.path())
            .expect("a test CA");
        virtual_card::personalise::personalise(
            &mut PivSession::new(&mut card),
            &piv::mgmt::ManagementKey::default_3des(),
            &ca,
            "Fuzz Holder",
        )
        .expect("personalised");
        (blank, card.state().clone())
    })
}

/// The virtual card's command handler: any commands (length-prefixed pieces) on a blank or a
/// personalised card get a status word, and the card's state always saves and loads back.
pub fn virtual_card(data: &[u8]) {
    let Some((&which, mut commands)) = data.split_first() else { return };
    let (blank, personalised) = cards();
    let state = if which & 1 == 0 { blank.clone() } else { personalised.clone() };
    let mut card = virtual_card::card::Card::new(state, None);
    while let Some((&length, rest)) = commands.split_first() {
        let length = usize::from(length).min(rest.len());
        let (command, rest) = rest.split_at(length);
        commands = rest;
        let answer = card.process(command);
        assert!(answer.len() >= 2, "every answer ends with a status word");
    }
    let saved = serde_json::to_vec(card.state()).expect("the state serialises");
    let loaded: virtual_card::state::CardState = serde_json::from_slice(&saved).expect("and loads back");
    assert!(loaded == *card.state(), "unchanged by saving and loading");
}

/// The in-process agent a page's messages are sent to: a personalised virtual card in one
/// reader, the WebSocket service over an in-memory pipe, on a runtime made once.
struct Agent {
    runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct OneReader {
    card: Arc<Mutex<virtual_card::card::Card>>,
    events: tokio::sync::broadcast::Sender<protocol::agent::Event>,
}

const READER: &str = "Virtual reader 0";
const ORIGIN: &str = "https://selfservice.test";

impl card_agent::pcsc_worker::CardReaders for OneReader {
    fn readers(&self) -> Vec<protocol::agent::ReaderInfo> {
        vec![protocol::agent::ReaderInfo { name: READER.into(), card_present: true }]
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<protocol::agent::Event> {
        self.events.subscribe()
    }

    async fn run(&self, _reader: String, work: card_agent::pcsc_worker::Work) -> protocol::agent::Outcome {
        let mut card = self.card.lock().unwrap_or_else(|p| p.into_inner());
        card.reset();
        let mut session = PivSession::new(&mut *card as &mut dyn Transport);
        work(&mut session)
    }
}

/// The agent's WebSocket service given any messages (one per line) from an allowed page: each
/// is decoded, and if it is a request, carried out on the card; every one is answered with a
/// response the page can decode, and a decoded request encodes back to itself.
pub fn agent_requests(data: &[u8]) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::{
        tungstenite::{protocol::Role, Message},
        WebSocketStream,
    };

    static AGENT: OnceLock<Agent> = OnceLock::new();
    let agent = AGENT.get_or_init(|| Agent {
        runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"),
    });
    let text = String::from_utf8_lossy(data);
    let messages: Vec<&str> = text.lines().take(8).collect();
    for message in &messages {
        if let Ok(request) = serde_json::from_str::<protocol::agent::Request>(message) {
            let encoded = serde_json::to_string(&request).expect("a request encodes");
            let again: protocol::agent::Request = serde_json::from_str(&encoded).expect("and decodes");
            assert!(again == request, "a request survives its own encoding");
        }
    }
    agent.runtime.block_on(async {
        let readers = OneReader {
            card: Arc::new(Mutex::new(virtual_card::card::Card::new(cards().1.clone(), None))),
            events: tokio::sync::broadcast::channel(8).0,
        };
        let config = card_agent::config::AgentConfig {
            allowed_origins: vec![ORIGIN.into()],
            max_requests_per_second: 1000,
            ..card_agent::config::AgentConfig::default()
        };
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let service = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            let _ = card_agent::server::serve(ws, &config, &readers, ORIGIN).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let hello = client.next().await;
        assert!(matches!(hello, Some(Ok(Message::Text(_)))), "the hello comes first");
        for message in messages {
            if client.send(Message::text(message)).await.is_err() {
                break;
            }
            match client.next().await {
                Some(Ok(Message::Text(answer))) => {
                    let decoded = serde_json::from_str::<protocol::agent::AgentMessage>(&answer);
                    assert!(decoded.is_ok(), "an answer the page cannot decode: {answer}");
                }
                // Closed for a reason of its own (too large): nothing to answer.
                _ => break,
            }
        }
        drop(client);
        let _ = service.await;
    });
}

/// Envelopes from anyone but a trusted backend: refused, whatever the bytes.
pub fn envelopes(data: &[u8]) {
    static TRUSTED: OnceLock<envelope::TrustedKey> = OnceLock::new();
    let trusted = TRUSTED.get_or_init(|| envelope::EnvelopeSigner::from_seed(&[9; 32]).trusted_key());
    let text = String::from_utf8_lossy(data);
    let key = envelope::OneTimeKey::generate();
    assert!(
        key.open::<envelope::UnlockSecrets>(&text, std::slice::from_ref(trusted)).is_err(),
        "a forged envelope opened"
    );
    let key = envelope::OneTimeKey::generate();
    assert!(
        key.open::<envelope::IssueSecrets>(&text, std::slice::from_ref(trusted)).is_err(),
        "a forged envelope opened"
    );
    let _ = envelope::TrustedKey::parse(&text);
    let _ = envelope::parse_public_key(&text);
}

/// Certificates and CHUIDs as cards hold them: X.509 DER, the certificate object, the GUID.
pub fn certificates(data: &[u8]) {
    use der::Decode;
    if let Ok(certificate) = x509_cert::Certificate::from_der(data) {
        let _ = certificate.tbs_certificate.validity.not_after.to_unix_duration();
        let _ = certificate.tbs_certificate.subject_public_key_info.subject_public_key.as_bytes();
    }
    if let Some(der) = piv::objects::certificate_der(data) {
        let _ = x509_cert::Certificate::from_der(der);
    }
    if let Some(guid) = piv::objects::chuid_guid(data) {
        let chuid = piv::objects::chuid(&guid, "20301231");
        assert_eq!(piv::objects::chuid_guid(&chuid), Some(guid), "a CHUID we write gives its GUID back");
    }
}

/// Decodes `data` as `T` and, if it decodes, checks that its encoding decodes to the same.
fn json_round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let encoded = serde_json::to_vec(&value).expect("a decoded body encodes");
        let again: T = serde_json::from_slice(&encoded).expect("and decodes");
        assert!(again == value, "a body survives its own encoding");
    }
}

/// Every JSON body the API accepts, decoded as the backend decodes it.
pub fn api_bodies(data: &[u8]) {
    use protocol::{api, ra};
    json_round_trip::<api::SignInRequest>(data);
    json_round_trip::<api::ProofRequest>(data);
    json_round_trip::<api::RegistrationRequest>(data);
    json_round_trip::<api::CodeRequest>(data);
    json_round_trip::<api::UnlockStart>(data);
    json_round_trip::<api::UnlockAnswers>(data);
    json_round_trip::<api::UnlockCode>(data);
    json_round_trip::<api::UnlockRelease>(data);
    json_round_trip::<api::UnlockReported>(data);
    json_round_trip::<ra::Reason>(data);
    json_round_trip::<ra::NewPerson>(data);
    json_round_trip::<ra::IssueStart>(data);
    json_round_trip::<ra::IssueKeys>(data);
    json_round_trip::<ra::IssueCertificates>(data);
    json_round_trip::<ra::IssueComplete>(data);
    json_round_trip::<ra::CardStatusChange>(data);
    json_round_trip::<ra::DeskUnlockStart>(data);
}

/// New passcodes and security answers as people type them: the rules decide without a panic,
/// a passcode they accept is 6–8 digits, and an answer normalises to a fixed point.
pub fn passcodes_and_answers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (new, confirm) = text.split_once('\n').unwrap_or((&text, &text));
    if protocol::passcode::check(new, confirm).is_ok() {
        assert!((6..=8).contains(&new.len()) && new.bytes().all(|b| b.is_ascii_digit()), "{new:?} accepted");
        assert_eq!(new, confirm);
    }
    let _ = protocol::passcode::check_strength(new);
    let once = backend::questions::normalise(&text);
    assert_eq!(backend::questions::normalise(&once), once, "normalising twice changes {text:?}");
    assert_eq!(once.trim(), once);
}
