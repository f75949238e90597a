//! Sign-in on the real parts without a browser: the virtual card in pcscd, the real agent signing
//! the backend's challenge after VERIFY, the real backend (its admin commands issued the card).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use protocol::{
    agent::{Operation, Outcome, PinPurpose, Reply},
    api::{ChallengeIssued, Profile, SignInRequest},
};
use tests::{
    agent::{AgentClient, RunningAgent},
    smartcard::{exclusive, CardFile, InsertedCard, READER},
    system::RunningBackend,
};

#[tokio::test]
async fn the_agent_signs_the_backends_challenge_and_the_backend_opens_a_session() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Iris Example").unwrap();
    let backend = RunningBackend::start().await.unwrap();
    let guid = backend.issue_card(&card, "700000000001", "Iris Example", "iris@nhs.net").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    assert_eq!(client.identity().await.unwrap().guid, guid);

    let http = backend.client().unwrap();
    let issued: ChallengeIssued = http
        .post(format!("{}/api/sign-in/challenge", backend.url))
        .json(&())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sign = Operation::SignWithPin {
        reader: READER.into(),
        guid: guid.parse().unwrap(),
        pin: "123456".into(),
        challenge: issued.challenge,
        purpose: PinPurpose::SignIn,
    };
    let signature = match client.request(sign).await.unwrap() {
        Outcome::Ok(Reply::Signature { signature }) => signature,
        other => panic!("{other:?}"),
    };
    let request = SignInRequest { challenge_id: issued.challenge_id, guid: guid.parse().unwrap(), signature };
    let response = http.post(format!("{}/api/sign-in", backend.url)).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let profile: Profile =
        http.get(format!("{}/api/me", backend.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!((profile.name.as_str(), profile.signed_in_with.as_str()), ("Iris Example", guid.as_str()));
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));

    // The card's PUK was recorded sealed, bound to the card, and re-binding leaves it alone.
    let settings = backend.settings();
    let db = backend::db::Database::connect(&settings).await.unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT puk_sealed FROM cards WHERE guid = $1")
        .bind(&guid)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(!sealed.windows(8).any(|w| w == b"12345678"), "never in clear");
    let vault = backend::vault::Vault::from_settings(&settings).unwrap();
    assert_eq!(vault.open(&guid, &sealed).unwrap().as_str(), "12345678");
    assert!(vault.open("00000000000000000000000000000000", &sealed).is_err(), "bound to its card");
    let again = backend.bind_card(&card, "700000000001", &guid, "99999999").unwrap();
    assert!(again.contains("already recorded"), "{again}");
    let still: Vec<u8> = sqlx::query_scalar("SELECT puk_sealed FROM cards WHERE guid = $1")
        .bind(&guid)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(vault.open(&guid, &still).unwrap().as_str(), "12345678");
}
