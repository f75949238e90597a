//! Cards as their makers ship them (`virtual-card init --profile`): a maker's CHUID, a YubiKey
//! 5.7's AES-192 key and GET METADATA, and a strict card (3DES and AES-256 only, bare `6300`,
//! 5 PUK tries after a change, data only through GET RESPONSE, the full AID only). Each is issued
//! by `backend admin issue-card`, signs in and registers, and is unlocked twice: by the holder's
//! self-service journey, then at the desk (the second works only if the PUK the first one set is
//! the one the backend holds). A card with a management key of someone else's is refused with
//! nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    self_service::{register, release, unlock_past_the_code, Api},
    smartcard::{exclusive, CardFile, InsertedCard},
    system::Site,
};

const PIN: &str = "86420917";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_makers_card_is_issued_signs_in_and_is_unlocked_twice() {
    let _lock = exclusive().unwrap();
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    let agent_url = agent.url();

    for (n, (profile, algorithm, puk_tries)) in
        [("factory-chuid", 0x03, 3), ("yubikey-5.7", 0x0A, 3), ("strict", 0x03, 5)].into_iter().enumerate()
    {
        let card = CardFile::blank_with(&["--profile", profile]).unwrap();
        let maker_chuid = card.state_json().unwrap()["objects"].as_object().unwrap().contains_key("5fc102");
        assert_eq!(maker_chuid, profile != "yubikey-5.7", "{profile}");
        let _inserted = InsertedCard::insert(&card).unwrap();
        client.wait_for_card().await.unwrap();

        let user_id = format!("87000000000{n}");
        let email = format!("holder{n}@nhs.net");
        backend
            .admin(&["add-user", "--user-id", &user_id, "--name", "Mia Maker", "--email", &email])
            .unwrap();
        let issue =
            ["issue-card", "--user-id", &user_id, "--agent-url", &agent_url, "--origin", &backend.url];
        let out = backend.admin_with_input(&issue, &format!("{PIN}\n")).unwrap();
        assert!(out.contains(&format!("is issued to {user_id}")), "{profile}: {out}");

        let state = card.state_json().unwrap();
        assert_eq!(state["mgmt_algorithm"], algorithm, "{profile}: the card keeps its kind of key");
        assert!(
            !"0102030405060708".repeat(4).starts_with(state["mgmt_key_hex"].as_str().unwrap()),
            "{profile}: a new management key"
        );
        let guid = client.identity().await.unwrap().guid;
        assert!(out.contains(guid.as_str()), "{profile}: our GUID over the maker's: {out}");
        register(&backend, &mut client, &smtp, &guid, PIN, &email).await.unwrap();

        // Unlocked by the holder's self-service journey, then at the desk (`unlock-card`): the
        // second needs the PUK the first one set to be the one the backend holds.
        client.block_pin().await.unwrap();
        let api = Api::new(&backend).unwrap();
        let attempt = unlock_past_the_code(&api, &mut client, &smtp, &guid, &email, 1).await.unwrap();
        let (report, status) = release(&api, &mut client, &attempt, "24681357").await.unwrap();
        assert_eq!((report.failure, status.as_u16()), (None, 204), "{profile}: self-service unlock");
        assert_eq!(card.state_json().unwrap()["pin"], "24681357", "{profile}");
        client.block_pin().await.unwrap();
        let unlock = [
            "unlock-card",
            "--user-id",
            &user_id,
            "--identity-check",
            "Photo ID seen (passport)",
            "--reason",
            "Locked again",
            "--agent-url",
            &agent_url,
            "--origin",
            &backend.url,
        ];
        let out = backend.admin_with_input(&unlock, "13572468\n").unwrap();
        assert!(out.contains("is unlocked"), "{profile}: {out}");
        assert_eq!(card.state_json().unwrap()["pin"], "13572468", "{profile}");
        assert_eq!(card.state_json().unwrap()["puk_tries_left"], puk_tries, "{profile}");
    }

    // A card whose management key is not a factory one (someone else's): refused at the start,
    // in words the operator can act on, with nothing written to the card.
    let foreign = CardFile::blank_with(&["--mgmt-key", &"5a".repeat(24)]).unwrap();
    let before = foreign.state_json().unwrap();
    let _inserted = InsertedCard::insert(&foreign).unwrap();
    client.wait_for_card().await.unwrap();
    backend
        .admin(&["add-user", "--user-id", "870000000009", "--name", "Fay Foreign", "--email", "fay@nhs.net"])
        .unwrap();
    let issue =
        ["issue-card", "--user-id", "870000000009", "--agent-url", &agent_url, "--origin", &backend.url];
    let refused = backend.admin_with_input(&issue, &format!("{PIN}\n")).unwrap_err();
    let refused = format!("{refused:#}");
    assert!(
        refused.contains("not a factory default") && refused.contains("Nothing was written"),
        "{refused}"
    );
    assert_eq!(foreign.state_json().unwrap(), before, "nothing was written");
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
