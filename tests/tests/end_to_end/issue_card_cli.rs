//! `backend admin issue-card`, the operator's issuance (the first RA's card, the demo's cards):
//! the real backend command, agent, pcscd and virtual card. The issued card then signs in and
//! registers, an independent PIV tool accepts the holder's passcode, and the same card cannot be
//! issued twice; a card whose factory management key is AES-192 is issued too.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    self_service::register,
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    system::Site,
};

const PIN: &str = "86420917";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_issues_a_blank_card_that_then_signs_in_and_registers() {
    let _lock = exclusive().unwrap();
    // The cards' maker certifies each card's attestation key; the backend trusts only its root.
    let maker = tempfile::tempdir().unwrap();
    let maker_ca = maker.path().join("ca");
    let maker_arg = maker_ca.to_str().unwrap();
    let card = CardFile::blank_with(&["--maker-ca", maker_arg]).unwrap();
    let roots = maker_ca.join("ca.cert.pem");
    let Site { agent, smtp, backend } =
        Site::start_with(|s| s.attestation_roots = vec![roots.clone()]).await.unwrap();
    backend
        .admin(&[
            "add-user",
            "--user-id",
            "840000000001",
            "--name",
            "Ola Operatorissued",
            "--email",
            "ola@nhs.net",
        ])
        .unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();

    let agent_url = agent.url();
    let issue =
        ["issue-card", "--user-id", "840000000001", "--agent-url", &agent_url, "--origin", &backend.url];
    let out = backend.admin_with_input(&issue, &format!("{PIN}\n")).unwrap();
    assert!(out.contains("is issued to 840000000001"), "{out}");

    let guid = client.identity().await.unwrap().guid;
    assert!(out.contains(guid.as_str()), "{out}");
    let (verified, text) = yubico(&["-a", "verify-pin", "-P", PIN]).unwrap();
    assert!(verified, "{text}");
    register(&backend, &mut client, &smtp, &guid, PIN, "ola@nhs.net").await.unwrap();

    let audit = backend.admin(&["verify-audit"]).unwrap();
    assert!(audit.contains("intact"), "{audit}");

    let again = backend.admin_with_input(&issue, &format!("{PIN}\n")).unwrap_err();
    assert!(format!("{again:#}").contains("already issued"), "{again:#}");
    // A passcode the service's rules refuse never reaches a card. (This blank card's factory
    // management key is AES-192, as on YubiKeys from firmware 5.7.)
    let blank = CardFile::blank_with(&["--mgmt-algorithm", "aes192", "--maker-ca", maker_arg]).unwrap();
    drop(_inserted);
    let _inserted = InsertedCard::insert(&blank).unwrap();
    client.wait_for_card().await.unwrap();
    let weak = backend.admin_with_input(&issue, "111111\n").unwrap_err();
    assert!(format!("{weak:#}").contains("one digit repeated"), "{weak:#}");
    assert!(
        !blank.state_json().unwrap()["keys"].as_object().unwrap().contains_key("9a"),
        "the card was not touched"
    );
    // Issued, it keeps an AES-192 management key (a new one).
    backend
        .admin(&["add-user", "--user-id", "840000000002", "--name", "Abe Aes", "--email", "abe@nhs.net"])
        .unwrap();
    let aes =
        ["issue-card", "--user-id", "840000000002", "--agent-url", &agent_url, "--origin", &backend.url];
    assert!(backend
        .admin_with_input(&aes, &format!("{PIN}\n"))
        .unwrap()
        .contains("is issued to 840000000002"));
    let state = blank.state_json().unwrap();
    assert_eq!(state["mgmt_algorithm"], 0x0A);
    assert_ne!(state["mgmt_key_hex"], "010203040506070801020304050607080102030405060708");

    // A card without attestation (as many PIV cards are) is refused where attestation is
    // required, in words the operator can act on; it keeps its factory credentials.
    let plain = CardFile::blank().unwrap();
    drop(_inserted);
    let _inserted = InsertedCard::insert(&plain).unwrap();
    client.wait_for_card().await.unwrap();
    backend
        .admin(&["add-user", "--user-id", "840000000003", "--name", "Pat Plain", "--email", "pat@nhs.net"])
        .unwrap();
    let unattested =
        ["issue-card", "--user-id", "840000000003", "--agent-url", &agent_url, "--origin", &backend.url];
    let refused = backend.admin_with_input(&unattested, &format!("{PIN}\n")).unwrap_err();
    assert!(format!("{refused:#}").contains("no attestation"), "{refused:#}");
    let state = plain.state_json().unwrap();
    assert_eq!(state["mgmt_key_hex"], "010203040506070801020304050607080102030405060708");
    assert_eq!(state["puk"], "12345678");
    assert!(
        state["objects"].as_object().unwrap().keys().all(|tag| tag == "00007e"),
        "no certificate, no CHUID"
    );
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
