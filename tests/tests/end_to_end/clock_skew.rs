//! A workstation whose clock is hours off the backend's (the real agent under `faketime`, the
//! real backend, pcscd and virtual card): the unlock's envelope is judged by its age on the
//! agent's own monotonic clock, so the unlock goes ahead, once, and the agent's log says to set
//! the clock right.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use protocol::agent::PukOnCard;
use tests::{
    agent::{AgentClient, RunningAgent},
    self_service::{codes_sent_long_ago, held_puks, register, release, unlock_past_the_code, Api},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    smtp::SmtpServer,
    system::RunningBackend,
};

const EMAIL: &str = "tia.time@nhs.net";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workstation_clock_hours_off_neither_blocks_nor_stretches_an_unlock() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Tia Time").unwrap();
    let smtp = SmtpServer::start().unwrap();
    let smtp_url = smtp.url();
    let backend = RunningBackend::start_with(|s| s.smtp_url = Some(smtp_url)).await.unwrap();
    let guid = backend.issue_card(&card, "850000000001", "Tia Time", EMAIL).unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut registered = false;

    for (n, (offset, side)) in [("+3h", "ahead of"), ("-3h", "behind")].into_iter().enumerate() {
        let log = logs.path().join(format!("agent-{n}.log"));
        let agent = RunningAgent::start_with_clock_offset(offset, &log).await.unwrap();
        let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        if !registered {
            register(&backend, &mut client, &smtp, &guid, "123456", EMAIL).await.unwrap();
            registered = true;
        }
        client.block_pin().await.unwrap();
        codes_sent_long_ago(&backend).await.unwrap();
        let api = Api::new(&backend).unwrap();
        let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, EMAIL, n + 1).await.unwrap();
        let new_pin = ["86207531", "97531864"][n];
        let (report, status) = release(&api, &mut client, &attempt, new_pin).await.unwrap();
        assert_eq!(
            (report.puk, &report.failure, status.as_u16()),
            (PukOnCard::Rotated, &None, 204),
            "clock {offset}: {report:?}"
        );
        let (ok, out) = yubico(&["-a", "verify-pin", "-P", new_pin]).unwrap();
        assert!(ok, "clock {offset}: the new passcode works: {out}");
        let (puk, pending) = held_puks(&backend, &guid).await.unwrap();
        assert!(pending.is_none());
        let (ok, out) = yubico(&["-a", "change-puk", "-P", &puk, "-N", &puk]).unwrap();
        assert!(ok, "clock {offset}: the PUK the backend holds is the card's: {out}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains(&format!("minutes {side} the self-service site's")), "clock {offset}: {text}");
    }
}
