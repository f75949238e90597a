//! The backend process or the card agent killed (`SIGKILL`) at each step of an unlock: the real
//! `backend serve`, agent, pcscd and virtual card. After every crash the card's PUK is one the
//! backend holds (tried with yubico-piv-tool), and a new process and the next attempt finish
//! the unlock. (Each kill waits for the mail already written to be sent: a backend killed in the
//! middle of handing a message to the relay sends it again, and holds that person's later mail
//! behind it until its claim lapses, so that mail keeps its order.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use protocol::agent::PukOnCard;
use tests::{
    agent::{AgentClient, RunningAgent},
    self_service::{
        all_mail_sent, codes_sent_long_ago, held_puks, register, release, release_unreported,
        unlock_past_the_code, Api,
    },
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    smtp::SmtpServer,
    system::RunningBackend,
};

const EMAIL: &str = "cy.crash@nhs.net";

/// Where the backend dies, in the order of an unlock.
const BACKEND_POINTS: [&str; 4] = [
    "unlock.release.before_commit",
    "unlock.release.after_commit",
    "unlock.report.before_commit",
    "unlock.report.after_commit",
];

/// Where the agent dies: between the card's passcode reset and its PUK change, and after both.
const AGENT_POINTS: [&str; 2] = ["unlock.after_reset", "unlock.after_puk_change"];

/// Which PUK the backend holds is the card's: "current" or "pending". Changing the PUK to
/// itself proves it without changing anything; at most one wrong guess is spent, and the right
/// one resets the card's PUK counter.
async fn card_puk_is_held(backend: &RunningBackend, guid: &str, after: &str) -> &'static str {
    let (current, pending) = held_puks(backend, guid).await.unwrap();
    let (ok, _) = yubico(&["-a", "change-puk", "-P", &current, "-N", &current]).unwrap();
    if ok {
        return "current";
    }
    let pending = pending.unwrap_or_else(|| {
        panic!("after {after}: the card's PUK is not the current one, and none is pending")
    });
    let (ok, out) = yubico(&["-a", "change-puk", "-P", &pending, "-N", &pending]).unwrap();
    assert!(ok, "after {after}: the card's PUK is neither PUK the backend holds: {out}");
    "pending"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_killed_at_any_step_keeps_the_puk_known_and_the_next_attempt_finishes_it() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Cy Crash").unwrap();
    let smtp = SmtpServer::start().unwrap();
    let smtp_url = smtp.url();
    let mut backend = RunningBackend::start_process(&[("SELFSERVICE_SMTP_URL", &smtp_url)]).await.unwrap();
    let guid = backend.issue_card(&card, "820000000001", "Cy Crash", EMAIL).unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let mut agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    register(&backend, &mut client, &smtp, &guid, "123456", EMAIL).await.unwrap();
    all_mail_sent(&backend).await.unwrap();
    let mut codes = 0;
    let mut seen = Vec::new();

    for point in BACKEND_POINTS {
        client.block_pin().await.unwrap();
        backend.restart(Some(point)).await.unwrap();
        codes_sent_long_ago(&backend).await.unwrap();
        let api = Api::new(&backend).unwrap();
        codes += 1;
        let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, EMAIL, codes).await.unwrap();
        all_mail_sent(&backend).await.unwrap();
        assert!(release(&api, &mut client, &attempt, "86207531").await.is_err(), "{point}: the backend died");
        backend.crashed().await.unwrap();
        seen.push((point, card_puk_is_held(&backend, &guid, point).await));
    }

    // Killed from outside after the card finished, before its report arrived.
    client.block_pin().await.unwrap();
    backend.restart(None).await.unwrap();
    codes_sent_long_ago(&backend).await.unwrap();
    let api = Api::new(&backend).unwrap();
    codes += 1;
    let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, EMAIL, codes).await.unwrap();
    all_mail_sent(&backend).await.unwrap();
    let unreported = release_unreported(&api, &mut client, &attempt, "86207531").await.unwrap();
    assert_eq!(unreported.report.puk, PukOnCard::Rotated);
    drop(api);
    backend.kill().await.unwrap();
    seen.push(("killed before the report", card_puk_is_held(&backend, &guid, "the kill").await));

    for point in AGENT_POINTS {
        client.block_pin().await.unwrap();
        backend.restart(None).await.unwrap();
        codes_sent_long_ago(&backend).await.unwrap();
        drop(client);
        agent = RunningAgent::start_crashing_at(point).await.unwrap();
        (client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        let api = Api::new(&backend).unwrap();
        codes += 1;
        let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, EMAIL, codes).await.unwrap();
        all_mail_sent(&backend).await.unwrap();
        assert!(release(&api, &mut client, &attempt, "86207531").await.is_err(), "{point}: the agent died");
        agent.crashed().await.unwrap();
        seen.push((point, card_puk_is_held(&backend, &guid, point).await));
        agent = RunningAgent::start().await.unwrap();
        (client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
    }
    // The crashes left the card on each of the two PUKs at least once.
    assert!(seen.iter().any(|(_, held)| *held == "pending"), "{seen:?}");
    assert!(seen.iter().any(|(_, held)| *held == "current"), "{seen:?}");

    // The next attempt, on a healthy backend and agent, finishes the unlock.
    client.block_pin().await.unwrap();
    codes_sent_long_ago(&backend).await.unwrap();
    let api = Api::new(&backend).unwrap();
    codes += 1;
    let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, EMAIL, codes).await.unwrap();
    all_mail_sent(&backend).await.unwrap();
    let (report, status) = release(&api, &mut client, &attempt, "86207531").await.unwrap();
    assert_eq!(
        (report.puk, &report.failure, status.as_u16()),
        (PukOnCard::Rotated, &None, 204),
        "{report:?}"
    );
    let (puk, pending) = held_puks(&backend, &guid).await.unwrap();
    assert!(pending.is_none() && puk != "12345678");
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", "86207531"]).unwrap();
    assert!(ok, "the new passcode works: {out}");
    let (ok, out) = yubico(&["-a", "unblock-pin", "-P", &puk, "-N", "24681357"]).unwrap();
    assert!(ok, "the PUK the backend holds is the card's: {out}");
    let audit = backend.admin(&["verify-audit"]).unwrap();
    assert!(audit.contains("intact"), "{audit}");
}
