//! An issuance (`backend admin issue-card`, the real command, agent, pcscd and virtual card)
//! killed at each step: the agent between setting the passcode and changing the management key,
//! the backend's command after each of its records and between its last write and its commit.
//! After every crash the card's PUK is one the backend holds (tried with yubico-piv-tool), and
//! the next attempt finishes the issuance.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::{AgentClient, RunningAgent, ALLOWED_ORIGIN},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    system::RunningBackend,
};

const PIN: &str = "86420917";
const USER: &str = "830000000001";
/// A blank card's PUK, as its maker ships it.
const FACTORY_PUK: &str = "12345678";

/// Where the backend's command dies, in the order of an issuance. The last one is after the
/// commit that binds the card: the next attempt then finds it issued.
const BACKEND_POINTS: [&str; 4] = [
    "issuance.start.after_commit",
    "issuance.certify.after_commit",
    "issuance.complete.before_commit",
    "issuance.complete.after_commit",
];

/// The PUKs the backend holds for the card: every issuance's recorded one and the bound card's.
async fn recorded_puks(backend: &RunningBackend) -> Vec<String> {
    let settings = backend.settings();
    let db = backend::db::Database::connect(&settings).await.unwrap();
    let mut rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT card_guid, puk_sealed FROM issuances ORDER BY created_at DESC")
            .fetch_all(db.pool())
            .await
            .unwrap();
    rows.extend(
        sqlx::query_as::<_, (String, Vec<u8>)>("SELECT guid, puk_sealed FROM cards")
            .fetch_all(db.pool())
            .await
            .unwrap(),
    );
    db.close().await;
    let vault = backend::vault::Vault::from_settings(&settings).unwrap();
    let mut puks: Vec<String> = Vec::new();
    for (guid, sealed) in rows {
        let puk = vault.open(&guid, &sealed).unwrap().to_string();
        if !puks.contains(&puk) {
            puks.push(puk);
        }
    }
    puks
}

/// The card's PUK is the factory one or one the backend holds. Changing the PUK to itself proves
/// it without changing anything; a resumed issuance keeps its PUK, so there are at most two to
/// try, and the right one resets the card's counter.
async fn card_puk_is_known(backend: &RunningBackend, after: &str) -> String {
    let mut candidates = recorded_puks(backend).await;
    candidates.push(FACTORY_PUK.into());
    candidates.dedup();
    assert!(candidates.len() <= 2, "after {after}: more PUKs than a resumed issuance makes: {candidates:?}");
    for puk in &candidates {
        if yubico(&["-a", "change-puk", "-P", puk, "-N", puk]).unwrap().0 {
            return if puk == FACTORY_PUK { "factory".into() } else { "recorded".into() };
        }
    }
    panic!("after {after}: the card's PUK is none the backend holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuance_killed_at_any_step_keeps_the_puk_known_and_the_next_attempt_finishes_it() {
    let _lock = exclusive().unwrap();
    let card = CardFile::blank().unwrap();
    let backend = RunningBackend::start().await.unwrap();
    backend
        .admin(&["add-user", "--user-id", USER, "--name", "Ida Issued", "--email", "ida@nhs.net"])
        .unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let mut seen = Vec::new();

    // The agent killed between the passcode it set and the management key it was to change.
    let mut agent = RunningAgent::start_crashing_at("issue.after_pin_set").await.unwrap();
    let issue = |agent: &RunningAgent| {
        ["issue-card", "--user-id", USER, "--agent-url", &agent.url(), "--origin", ALLOWED_ORIGIN]
            .map(str::to_owned)
    };
    let args = issue(&agent);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(backend.admin_with_input(&args, &format!("{PIN}\n")).is_err(), "the agent died");
    agent.crashed().await.unwrap();
    seen.push(("agent: issue.after_pin_set", card_puk_is_known(&backend, "the agent's crash").await));

    agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let args = issue(&agent);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for point in BACKEND_POINTS {
        let crashed = backend.admin_crashing_at(&args, &format!("{PIN}\n"), point).unwrap();
        assert!(crashed, "the command reached {point}");
        seen.push((point, card_puk_is_known(&backend, point).await));
    }
    // The agent died after the card took its new PUK, so from then on the card holds the PUK
    // recorded for its issuance (a resumed issuance keeps it).
    assert!(seen.iter().all(|(_, puk)| puk == "recorded"), "{seen:?}");

    // The last crash came after the commit: the card is issued, once.
    let again = backend.admin_with_input(&args, &format!("{PIN}\n")).unwrap_err();
    assert!(format!("{again:#}").contains("already issued"), "{again:#}");
    let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
    let (guid, puk_sealed): (String, Vec<u8>) =
        sqlx::query_as("SELECT guid, puk_sealed FROM cards").fetch_one(db.pool()).await.unwrap();
    db.close().await;
    assert_eq!(
        client.identity().await.unwrap().guid.as_str(),
        guid,
        "the card in the reader is the one bound"
    );
    let puk =
        backend::vault::Vault::from_settings(&backend.settings()).unwrap().open(&guid, &puk_sealed).unwrap();
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", PIN]).unwrap();
    assert!(ok, "the holder's passcode works: {out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", &puk, "-N", "24681357"]).unwrap();
    assert!(ok, "the PUK the backend holds is the card's: {out}");
    let audit = backend.admin(&["verify-audit"]).unwrap();
    assert!(audit.contains("intact"), "{audit}");
}
