//! The card agent over its real WebSocket, with pcscd + vpcd + the virtual card.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(
    clippy::await_holding_lock,
    reason = "the lock serialises tests that share the one virtual reader; each test has its own runtime"
)]

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine};
use der::{Decode, Encode};
use p256::{
    ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
};
use protocol::agent::{
    AgentErrorCode, AgentMessage, Event, Operation, Outcome, PinState, Reply, PROTOCOL_VERSION,
};
use tests::{
    agent::{handshake, AgentClient, RunningAgent, ALLOWED_ORIGIN},
    smartcard::{exclusive, CardFile, InsertedCard, READER},
};

fn verifying_key(certificate_b64: &str) -> VerifyingKey {
    let der = STANDARD.decode(certificate_b64).unwrap();
    let certificate = x509_cert::Certificate::from_der(&der).unwrap();
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der().unwrap();
    VerifyingKey::from_public_key_der(&spki).unwrap()
}

fn signature_of(outcome: Outcome) -> Signature {
    match outcome {
        Outcome::Ok(Reply::Signature { signature }) => {
            Signature::from_der(&STANDARD.decode(signature).unwrap()).unwrap()
        }
        other => panic!("expected a signature, got {other:?}"),
    }
}

async fn wait_for_card(client: &mut AgentClient) {
    for _ in 0..100 {
        if let Outcome::Ok(Reply::Readers { readers }) = client.request(Operation::ListReaders).await.unwrap()
        {
            if readers.iter().any(|r| r.name == READER && r.card_present) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent never saw the card in {READER}");
}

#[tokio::test]
async fn identity_sign_in_presence_and_pin_change_over_the_websocket() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Carol Example").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, hello) = AgentClient::connect(&agent).await.unwrap();
    assert!(matches!(hello, AgentMessage::Hello { protocol_version: PROTOCOL_VERSION, .. }), "{hello:?}");
    wait_for_card(&mut client).await;

    let identity = match client.request(Operation::CardIdentity { reader: READER.into() }).await.unwrap() {
        Outcome::Ok(Reply::Identity(identity)) => identity,
        other => panic!("{other:?}"),
    };
    assert_eq!(identity.guid.len(), 32);
    assert_eq!(identity.pin, PinState::Ready { tries_left: Some(3) });
    let piv_auth = verifying_key(identity.piv_auth_certificate.as_deref().unwrap());
    let card_auth = verifying_key(identity.card_auth_certificate.as_deref().unwrap());

    let challenge = [0x42u8; 32];
    let sign = |pin: &str| Operation::SignWithPin {
        reader: READER.into(),
        pin: pin.into(),
        challenge: STANDARD.encode(challenge),
    };
    let signature = signature_of(client.request(sign("123456")).await.unwrap());
    piv_auth.verify_prehash(&challenge, &signature).expect("9A signature verifies with the 9A certificate");

    match client.request(sign("999999")).await.unwrap() {
        Outcome::Error(e) => {
            assert_eq!(e.code, AgentErrorCode::WrongPin { tries_left: Some(2) });
            assert!(e.message.contains("2 tries left"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }

    let presence = Operation::ProvePresence { reader: READER.into(), challenge: STANDARD.encode(challenge) };
    let signature = signature_of(client.request(presence).await.unwrap());
    card_auth.verify_prehash(&challenge, &signature).expect("9E signature verifies with the 9E certificate");

    let change =
        Operation::ChangePin { reader: READER.into(), old_pin: "123456".into(), new_pin: "24681357".into() };
    assert_eq!(client.request(change).await.unwrap(), Outcome::Ok(Reply::Done));
    signature_of(client.request(sign("24681357")).await.unwrap());

    // Bad input gets a typed error and the connection stays usable.
    client.send_raw("{\"id\": 9, \"op\": \"send_apdu\", \"apdu\": \"00A4\"}").await.unwrap();
    match client.next_message(Duration::from_secs(5)).await.unwrap() {
        AgentMessage::Response { outcome: Outcome::Error(e), .. } => {
            assert_eq!(e.code, AgentErrorCode::BadRequest)
        }
        other => panic!("{other:?}"),
    }
    let bad_challenge = Operation::ProvePresence { reader: READER.into(), challenge: "AAAA".into() };
    assert!(
        matches!(client.request(bad_challenge).await.unwrap(), Outcome::Error(e) if e.code == AgentErrorCode::BadRequest)
    );
    let no_reader = Operation::CardIdentity { reader: "No Such Reader 00 00".into() };
    assert!(
        matches!(client.request(no_reader).await.unwrap(), Outcome::Error(e) if e.code == AgentErrorCode::NoReader)
    );
}

#[tokio::test]
async fn card_removal_and_insertion_are_pushed_as_events() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Dan Example").unwrap();
    let inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    wait_for_card(&mut client).await;

    let removed_at = Instant::now();
    drop(inserted);
    client
        .wait_for_event(&Event::CardRemoved { reader: READER.into() }, Duration::from_secs(10))
        .await
        .unwrap();
    println!("card removal → event: {:?} (includes waiting for pcscd to notice)", removed_at.elapsed());
    match client.request(Operation::CardIdentity { reader: READER.into() }).await.unwrap() {
        Outcome::Error(e) => assert_eq!(e.code, AgentErrorCode::NoCard),
        other => panic!("{other:?}"),
    }

    let _inserted = InsertedCard::insert(&card).unwrap();
    client
        .wait_for_event(&Event::CardInserted { reader: READER.into() }, Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn foreign_origins_and_rebinding_hosts_are_refused_with_403() {
    let agent = RunningAgent::start().await.unwrap();
    let forbidden = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status() == 403,
        _ => false,
    };
    assert!(forbidden(handshake(&agent.url(), "https://evil.example", None).await), "foreign origin");
    let rebinding_host = format!("evil.example:{}", agent.port);
    assert!(
        forbidden(handshake(&agent.url(), ALLOWED_ORIGIN, Some(&rebinding_host)).await),
        "rebinding host"
    );
    assert!(handshake(&agent.url(), ALLOWED_ORIGIN, None).await.is_ok(), "the allowed origin still gets in");
}
