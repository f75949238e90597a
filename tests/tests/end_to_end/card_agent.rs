//! The card agent over its real WebSocket, with pcscd + vpcd + the virtual card.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(
    clippy::await_holding_lock,
    reason = "the lock serialises tests that share the one virtual reader; each test has its own runtime"
)]

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::ecdsa::{signature::hazmat::PrehashVerifier, Signature};
use protocol::agent::{
    AgentErrorCode, AgentMessage, Event, Operation, Outcome, PinPurpose, PinState, PukOnCard, Reply,
    UnlockReport, UnlockStep, PROTOCOL_VERSION,
};
use tests::{
    agent::{seal_for, verifying_key, AgentClient, RunningAgent, ALLOWED_ORIGIN},
    smartcard::{exclusive, yubico, CardFile, InsertedCard, READER},
};

fn signature_of(outcome: Outcome) -> Signature {
    match outcome {
        Outcome::Ok(Reply::Signature { signature }) => {
            Signature::from_der(&STANDARD.decode(signature).unwrap()).unwrap()
        }
        other => panic!("expected a signature, got {other:?}"),
    }
}

#[tokio::test]
async fn identity_sign_in_presence_and_pin_change_over_the_websocket() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Carol Example").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, hello) = AgentClient::connect(&agent).await.unwrap();
    assert!(matches!(hello, AgentMessage::Hello { protocol_version: PROTOCOL_VERSION, .. }), "{hello:?}");
    client.wait_for_card().await.unwrap();

    let identity = match client.request(Operation::CardIdentity { reader: READER.into() }).await.unwrap() {
        Outcome::Ok(Reply::Identity(identity)) => identity,
        other => panic!("{other:?}"),
    };
    assert_eq!(identity.guid.len(), 32);
    assert_eq!(identity.pin, PinState::Ready { tries_left: Some(3) });
    let piv_auth = verifying_key(identity.piv_auth_certificate.as_deref().unwrap()).unwrap();
    let card_auth = verifying_key(identity.card_auth_certificate.as_deref().unwrap()).unwrap();

    let challenge = [0x42u8; 32];
    let sign = |pin: &str| Operation::SignWithPin {
        reader: READER.into(),
        guid: identity.guid.clone(),
        pin: pin.into(),
        challenge: STANDARD.encode(challenge),
        purpose: PinPurpose::SignIn,
    };
    let signature = signature_of(client.request(sign("123456")).await.unwrap());
    // The card signs the purpose's digest, never the bytes a page sent.
    let signed_in = envelope::signed_digest(envelope::Purpose::SignIn, &challenge);
    piv_auth.verify_prehash(&signed_in, &signature).expect("9A signature verifies with the 9A certificate");
    assert!(piv_auth.verify_prehash(&challenge, &signature).is_err());

    match client.request(sign("999999")).await.unwrap() {
        Outcome::Error(e) => {
            assert_eq!(e.code, AgentErrorCode::WrongPin { tries_left: Some(2) });
            assert!(e.message.contains("2 tries left"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }

    let presence = Operation::ProvePresence { reader: READER.into(), challenge: STANDARD.encode(challenge) };
    let signature = signature_of(client.request(presence).await.unwrap());
    let present = envelope::signed_digest(envelope::Purpose::Presence, &challenge);
    card_auth.verify_prehash(&present, &signature).expect("9E signature verifies with the 9E certificate");

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
    client.wait_for_card().await.unwrap();

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
    tests::agent::assert_guarded(&agent).await;
}

fn report_of(outcome: Outcome) -> UnlockReport {
    match outcome {
        Outcome::Ok(Reply::Unlocked(report)) => report,
        other => panic!("expected an unlock report, got {other:?}"),
    }
}

fn rejected(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Error(e) if matches!(e.code, AgentErrorCode::EnvelopeRejected | AgentErrorCode::EnvelopeUntrusted)
    )
}

fn untrusted(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Error(e) if e.code == AgentErrorCode::EnvelopeUntrusted)
}

#[tokio::test]
async fn unlock_resets_the_pin_rotates_the_puk_and_proves_it_over_the_websocket() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Erin Example").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let id = client.identity().await.unwrap();
    let piv_auth = verifying_key(id.piv_auth_certificate.as_deref().unwrap()).unwrap();
    let card_auth = verifying_key(id.card_auth_certificate.as_deref().unwrap()).unwrap();
    client.block_pin().await.unwrap();

    let (guid, public_key) = client.begin_unlock(&card_auth).await.unwrap();
    assert_eq!(guid, id.guid);
    // An envelope the backend sealed to any other key is refused (its signature names the key it
    // was sealed to), and spends the offer.
    let stranger = envelope::OneTimeKey::generate();
    let forged = seal_for(&stranger.public_key(), &guid, &["12345678"], "24682468", [1; 32]).unwrap();
    assert!(rejected(&client.unlock(forged, "97531864").await.unwrap()));

    let (_, public_key_2) = client.begin_unlock(&card_auth).await.unwrap();
    assert_ne!(public_key, public_key_2, "each offer has a fresh key");
    let challenge = [0x5Au8; 32];
    let envelope = seal_for(&public_key_2, &guid, &["12345678"], "24682468", challenge).unwrap();
    let report = report_of(client.unlock(envelope.clone(), "97531864").await.unwrap());
    assert_eq!(report.failure, None);
    assert!(report.pin_reset);
    assert_eq!(report.puk, PukOnCard::Rotated);
    let proof = Signature::from_der(&STANDARD.decode(report.proof.unwrap()).unwrap()).unwrap();
    let proved = envelope::signed_digest(envelope::Purpose::UnlockProof, &challenge);
    piv_auth.verify_prehash(&proved, &proof).expect("the proof is the card's 9A signature");
    assert!(rejected(&client.unlock(envelope, "97531864").await.unwrap()), "no replay");
    assert_eq!(client.identity().await.unwrap().pin, PinState::Ready { tries_left: Some(3) });

    // An independent tool agrees: the new PIN works, the old PUK is gone, the new one works.
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "97531864"]).unwrap();
    assert!(ok, "{out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11335577"]).unwrap();
    assert!(!ok, "the old PUK must no longer work: {out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "24682468", "-N", "11335577"]).unwrap();
    assert!(ok, "the new PUK works: {out}");
}

#[tokio::test]
async fn a_card_pulled_out_during_the_puk_change_is_reported_and_the_next_unlock_recovers() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Fay Example").unwrap();
    // CHANGE REFERENCE DATA (24): the card rotates its PUK, then is gone before it answers.
    let inserted = InsertedCard::insert_with(&card, &["--remove-on-ins", "24"]).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let card_auth =
        verifying_key(client.identity().await.unwrap().card_auth_certificate.as_deref().unwrap()).unwrap();
    client.block_pin().await.unwrap();

    let (guid, public_key) = client.begin_unlock(&card_auth).await.unwrap();
    let envelope = seal_for(&public_key, &guid, &["12345678"], "24682468", [3; 32]).unwrap();
    let report = report_of(client.unlock(envelope, "97531864").await.unwrap());
    assert!(report.pin_reset);
    assert_eq!(report.puk, PukOnCard::Unknown { index: 0 }, "the agent cannot know; it says so");
    let failure = report.failure.unwrap();
    assert_eq!((failure.step, failure.error.code), (UnlockStep::ChangePuk, AgentErrorCode::CardRemoved));
    assert!(failure.error.message.contains("removed"), "{}", failure.error.message);

    drop(inserted);
    let _inserted = InsertedCard::insert(&card).unwrap();
    client.wait_for_card().await.unwrap();
    // The backend offers both PUKs it may have left on the card; the card had rotated.
    let (guid, public_key) = client.begin_unlock(&card_auth).await.unwrap();
    let envelope = seal_for(&public_key, &guid, &["12345678", "24682468"], "86428642", [4; 32]).unwrap();
    let report = report_of(client.unlock(envelope, "13572468").await.unwrap());
    assert_eq!((report.puk, report.failure), (PukOnCard::Rotated, None));
    assert!(report.proof.is_some());
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", "86428642", "-N", "11335577"]).unwrap();
    assert!(ok, "the rotated PUK works: {out}");
}

#[tokio::test]
async fn a_card_pulled_out_mid_operation_gets_a_typed_error_and_an_event() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Gus Example").unwrap();
    // GENERAL AUTHENTICATE (87): pulled out while signing.
    let _inserted = InsertedCard::insert_with(&card, &["--remove-on-ins", "87"]).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let presence = Operation::ProvePresence { reader: READER.into(), challenge: STANDARD.encode([8; 32]) };
    match client.request(presence).await.unwrap() {
        Outcome::Error(e) => assert_eq!(e.code, AgentErrorCode::CardRemoved, "{e:?}"),
        other => panic!("{other:?}"),
    }
    client
        .wait_for_event(&Event::CardRemoved { reader: READER.into() }, Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn pcscd_restarting_under_the_agent_is_reported_and_survived() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Hal Example").unwrap();
    let inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();

    tests::smartcard::stop_pcscd().unwrap();
    client.wait_for_event(&Event::ServiceUnavailable, Duration::from_secs(20)).await.unwrap();
    match client.request(Operation::CardIdentity { reader: READER.into() }).await.unwrap() {
        Outcome::Error(e) => {
            assert!(matches!(e.code, AgentErrorCode::ServiceUnavailable | AgentErrorCode::NoReader), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    drop(inserted);

    tests::smartcard::start_pcscd().unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    client.wait_for_card().await.unwrap();
    assert_eq!(client.identity().await.unwrap().pin, PinState::Ready { tries_left: Some(3) });
}

#[tokio::test]
async fn request_floods_are_refused_then_cut_off_and_huge_messages_close_the_connection() {
    // A low limit, so that even on a loaded machine the whole flood lands within one second.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "max_requests_per_second = 5\n").unwrap();
    let agent = RunningAgent::start_with(&["--config".as_ref(), config.as_os_str()]).await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    // Past 5 a second requests are refused; past 10 the agent hangs up.
    let list = r#"{"id": 1, "op": "list_readers"}"#;
    let mut busy = 0;
    for _ in 0..30 {
        if client.send_raw(list).await.is_err() {
            break;
        }
    }
    let ended = loop {
        match client.next_message(Duration::from_secs(5)).await {
            Ok(AgentMessage::Response { outcome: Outcome::Error(e), .. })
                if e.code == AgentErrorCode::Busy =>
            {
                busy += 1
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(busy >= 1, "requests over the limit get a busy error ({busy})");
    let closed = !format!("{ended:#}").contains("timed out");
    assert!(closed, "a flood is cut off");

    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    let huge = format!(r#"{{"id": 1, "op": "card_identity", "reader": "{}"}}"#, "x".repeat(64 * 1024));
    let _ = client.send_raw(&huge).await;
    // Reader events may still arrive (other tests share pcscd); no answer may.
    let ended = loop {
        match client.next_message(Duration::from_secs(5)).await {
            Ok(AgentMessage::Event { .. }) => continue,
            Ok(other) => panic!("an oversized message was answered: {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(
        !format!("{ended:#}").contains("timed out"),
        "an oversized message ends the connection: {ended:#}"
    );
}

#[tokio::test]
async fn diagnostics_describe_the_reader_the_card_and_its_certificates() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Ola Example").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    // The card must be seen by pcscd before the report is taken.
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let guid = client.identity().await.unwrap().guid;

    let output = tests::smartcard::run_ok(
        std::process::Command::new(tests::smartcard::workspace_binary("card-agent").unwrap())
            .args(["--diagnostics", "--allow-origin", ALLOWED_ORIGIN])
            .env("XDG_CONFIG_HOME", std::env::temp_dir().join("card-agent-tests-no-config")),
    )
    .unwrap();
    assert!(output.contains("pcscd): running"), "{output}");
    assert!(output.contains(&format!("Allowed origins: {ALLOWED_ORIGIN}")), "{output}");
    assert!(
        output.contains(&format!("Reader \"{READER}\": card {guid} (Ola Example), 3 passcode tries left")),
        "{output}"
    );
    assert!(output.contains("PIV Authentication (9A) certificate: valid until 20"), "{output}");
    assert!(output.contains("Card Authentication (9E) certificate: valid until 20"), "{output}");
}

/// The attack of a script on the allowed origin (or the holder's own developer tools): the page
/// learns the agent's one-time key from `begin_unlock`, so it seals its own guesses of the PUK
/// to it — three would block the PUK and the card would have to be re-issued. And on a blank card
/// it seals the factory credentials itself to have the agent regenerate 9A and 9E. The agent
/// opens only envelopes its settings' key for the origin signed: every try is refused before a
/// card command, the PUK keeps all its tries and its value, and the blank card stays blank.
#[tokio::test]
async fn envelopes_a_page_sealed_itself_are_refused_before_the_card_is_touched() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Ivy Example").unwrap();
    let inserted = InsertedCard::insert(&card).unwrap();
    let other_origin = "http://other.selfservice.test";
    let agent = RunningAgent::start_with(&["--allow-origin".as_ref(), other_origin.as_ref()]).await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let card_auth =
        verifying_key(client.identity().await.unwrap().card_auth_certificate.as_deref().unwrap()).unwrap();
    client.block_pin().await.unwrap();
    let before = card.state_json().unwrap();

    let page = envelope::EnvelopeSigner::generate();
    for guess in ["12345670", "00000000", "11111111", "12341234"] {
        let (guid, public_key) = client.begin_unlock(&card_auth).await.unwrap();
        let expires_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
        let guessed = envelope::UnlockSecrets {
            guid,
            expires_at,
            issued_at: 0,
            current_puks: vec![zeroize::Zeroizing::new(guess.to_owned())],
            new_puk: zeroize::Zeroizing::new("24682468".into()),
            proof_challenge: STANDARD.encode([1u8; 32]),
        };
        let forged = envelope::seal(&page, &public_key, &guessed).unwrap();
        let outcome = client.unlock(forged, "97531864").await.unwrap();
        assert!(untrusted(&outcome), "{outcome:?}");
    }
    // An allowed origin for which no backend key is configured cannot even begin.
    let mut other = AgentClient::connect_as(&agent, other_origin).await.unwrap();
    let begin = Operation::BeginUnlock { reader: READER.into(), challenge: STANDARD.encode([2; 32]) };
    assert!(untrusted(&other.request(begin).await.unwrap()));
    let after = card.state_json().unwrap();
    for field in ["puk", "puk_tries_left", "pin", "pin_tries_left", "keys", "mgmt_key_hex"] {
        assert_eq!(before[field], after[field], "{field} changed");
    }
    assert_eq!(after["puk_tries_left"], 3);

    // A blank card still on its factory management key: the page seals the factory credentials
    // (public knowledge) itself, to have the agent generate new 9A/9E keys.
    drop(inserted);
    let blank = CardFile::blank().unwrap();
    let _inserted = InsertedCard::insert(&blank).unwrap();
    client.wait_for_card().await.unwrap();
    let public_key = match client.request(Operation::BeginIssue { reader: READER.into() }).await.unwrap() {
        Outcome::Ok(Reply::IssueOffer { public_key, guid: None, .. }) => public_key,
        other => panic!("{other:?}"),
    };
    let factory = envelope::IssueSecrets {
        issuance_id: "page".into(),
        offered_guid: None,
        new_guid: "00112233445566778899aabbccddeeff".into(),
        expires_at: u64::MAX,
        issued_at: 0,
        current_management_keys: vec![envelope::ManagementKeySecret {
            algorithm: 0x03,
            key_hex: zeroize::Zeroizing::new("010203040506070801020304050607080102030405060708".into()),
        }],
        current_puks: vec![zeroize::Zeroizing::new("12345678".into())],
        attestation_required: false,
    };
    let forged = envelope::seal(&page, &public_key, &factory).unwrap();
    let outcome = client
        .request(Operation::GenerateIssueKeys { reader: READER.into(), envelope: forged })
        .await
        .unwrap();
    assert!(untrusted(&outcome), "{outcome:?}");
    assert!(blank.state_json().unwrap()["keys"].as_object().unwrap().is_empty(), "no key was generated");
}
