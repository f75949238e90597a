//! `backend admin unlock-card`, the operator's desk unlock: the real backend command, agent,
//! pcscd and virtual card. A locked card of a holder who never registered is unlocked with the
//! passcode typed on standard input; an independent PIV tool accepts it and refuses the old PUK.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    system::Site,
};

const PIN: &str = "86420917";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_unlocks_a_locked_card_of_a_holder_who_never_registered() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Uma Example").unwrap();
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    backend.issue_card(&card, "860000000001", "Uma Example", "uma@nhs.net").unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    client.block_pin().await.unwrap();

    let agent_url = agent.url();
    let unlock = [
        "unlock-card",
        "--user-id",
        "860000000001",
        "--identity-check",
        "Photo ID seen (driving licence)",
        "--reason",
        "Forgot passcode, not registered",
        "--agent-url",
        &agent_url,
        "--origin",
        &backend.url,
    ];
    // A passcode the service's rules refuse never reaches the card.
    let weak = backend.admin_with_input(&unlock, "123456\n").unwrap_err();
    assert!(format!("{weak:#}").contains("run of digits"), "{weak:#}");
    let out = backend.admin_with_input(&unlock, &format!("{PIN}\n")).unwrap();
    assert!(out.contains("is unlocked"), "{out}");

    let (verified, text) = yubico(&["-a", "verify-pin", "-P", PIN]).unwrap();
    assert!(verified, "the new passcode works on the card: {text}");
    let (ok, _) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11335577"]).unwrap();
    assert!(!ok, "the old PUK no longer works");
    let notice = smtp.wait_for("uma@nhs.net", "was unlocked", 1).await.unwrap();
    assert!(notice.contains("by the service's operator"), "{notice}");
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
