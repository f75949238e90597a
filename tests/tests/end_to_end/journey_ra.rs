//! The RA console in a real browser, on the real parts. An RA officer signs in with their own
//! card, opens the RA console (its own bundle), adds a new person and issues them a blank virtual
//! card through the card agent (the holder types their passcode). The holder signs in with it and
//! registers for self-service, then locks themselves out with three wrong sets of answers; the RA
//! finds them, clears the lockout with a reason, sees it in the audit trail, verifies the chain
//! and reads the report; the holder then unlocks their card. axe-core checks every console page.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::{lock_out, register, release, unlock_past_the_code, Api},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    system::Site,
};

const HOLDER_EMAIL: &str = "mo.example@nhs.net";
const HOLDER_PIN: &str = "86420917";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_issues_a_card_clears_its_holders_lockout_and_the_holder_then_unlocks() {
    let _lock = exclusive().unwrap();
    // The holder's card is new from a maker whose applet wrote a CHUID of its own: still blank.
    let holder_card = CardFile::blank_with(&["--profile", "factory-chuid"]).unwrap();
    let ra_card = CardFile::personalised("Ria Officer").unwrap();
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    backend.issue_card_with_roles(&ra_card, "830000000009", "Ria Officer", "ria@nhs.net", &["ra"]).unwrap();

    // The RA officer signs in with their own card (in the desk's second reader) and opens the
    // console.
    let _ra_inserted = InsertedCard::insert_second(&ra_card).unwrap();
    let browser = Browser::start(Engine::Chromium).await.unwrap();
    browser.goto(&format!("{}/ra", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=ra-sign-in]", "Sign in").await.unwrap();
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found (Ria Officer)").await.unwrap();
    browser.fill("#passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Ria Officer").await.unwrap();
    browser.click_on("[data-testid=ra-console]").await.unwrap();
    browser.wait_for_text("h1", "Find a person").await.unwrap();
    browser.assert_accessible("RA: find a person").await.unwrap();

    // A new person, checked at the desk, gets a new card.
    browser.goto(&format!("{}/ra/people/new", backend.url)).await.unwrap();
    browser.wait_for_text("h1", "Add a person").await.unwrap();
    browser.assert_accessible("RA: add a person").await.unwrap();
    browser.fill("#ra-new-user-id", "830000000001").await.unwrap();
    browser.fill("#ra-new-name", "Mo Example").await.unwrap();
    browser.fill("#ra-new-email", HOLDER_EMAIL).await.unwrap();
    browser.fill("#ra-new-reason", "New starter, passport checked").await.unwrap();
    browser.click_on("[data-testid=ra-add-person]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-person-name]", "Mo Example").await.unwrap();
    browser.click_on("[data-testid=ra-issue-card]").await.unwrap();
    browser.wait_for_text("h1", "Issue a card").await.unwrap();
    // The blank card goes in the other reader: the console shows both, and the RA picks.
    let inserted = InsertedCard::insert(&holder_card).unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "There are 2 cards").await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "Ria Officer’s card").await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "A blank card").await.unwrap();
    browser.assert_accessible("RA: issue a card, two cards in").await.unwrap();
    browser.screenshot("ra-issue-two-cards").await.unwrap();
    browser.fill("#ra-issue-reason", "New starter, passport checked").await.unwrap();
    browser.fill("#ra-issue-pin", HOLDER_PIN).await.unwrap();
    browser.fill("#ra-issue-confirm", HOLDER_PIN).await.unwrap();
    browser.click_on("[data-testid=ra-issue]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "choose it").await.unwrap();
    browser.choose_card("A blank card").await.unwrap();
    browser.wait_for_text("[data-testid=card-blank]", "ready to be issued").await.unwrap();
    // The holder's first choice is too easy to guess; the second is fine.
    browser.fill("#ra-issue-pin", "123456").await.unwrap();
    browser.fill("#ra-issue-confirm", "123456").await.unwrap();
    browser.click_on("[data-testid=ra-issue]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "run of digits").await.unwrap();
    browser.fill("#ra-issue-pin", HOLDER_PIN).await.unwrap();
    browser.fill("#ra-issue-confirm", HOLDER_PIN).await.unwrap();
    browser.click_on("[data-testid=ra-issue]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-issued]", "Card issued").await.unwrap();
    browser.assert_accessible("RA: card issued").await.unwrap();

    // The card has the holder's passcode and none of its factory secrets.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&holder_card.state).unwrap()).unwrap();
    assert_eq!(state["pin"], HOLDER_PIN);
    assert_ne!(state["puk"], "12345678");
    assert_ne!(state["mgmt_key_hex"], "010203040506070801020304050607080102030405060708");
    // Refused for the key, not for some other reason (no reader, say).
    let (yubico_ok, text) = yubico(&["-a", "set-chuid"]).unwrap();
    assert!(
        !yubico_ok && text.contains("Failed authentication"),
        "the factory management key no longer works: {text}"
    );

    // The holder signs in with it and registers, then locks themselves out.
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    let holder = client.identity().await.unwrap().guid;
    browser.wait_for_text("[data-testid=ra-issued-card]", &holder).await.unwrap();
    register(&backend, &mut client, &smtp, &holder, HOLDER_PIN, HOLDER_EMAIL).await.unwrap();
    let holder_api = Api::new(&backend).unwrap();
    lock_out(&holder_api, &mut client, &holder).await.unwrap();

    // The RA finds them (the RA's session goes on without their card in the reader).
    browser.goto(&format!("{}/ra", backend.url)).await.unwrap();
    browser.wait_for_text("h1", "Find a person").await.unwrap();
    browser.fill("#ra-query", "mo ex").await.unwrap();
    browser.click_on("[data-testid=ra-search]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-result]", "Mo Example").await.unwrap();
    browser.assert_accessible("RA: search results").await.unwrap();
    browser.click_on("[data-testid=ra-result]").await.unwrap();

    browser.wait_for_text("[data-testid=ra-person-name]", "Mo Example").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "Locked out since").await.unwrap();
    browser.wait_for_text("[data-testid=ra-self-service]", HOLDER_EMAIL).await.unwrap();
    // The record says "active"; the card in the reader says what it is.
    browser
        .wait_for_text("[data-testid=ra-card-in-reader]", "Virtual PCD 00 00” now: 3 passcode tries left")
        .await
        .unwrap();
    client.block_pin().await.unwrap();
    let page = browser.current_url().await.unwrap();
    browser.goto(&page).await.unwrap();
    browser.wait_for_text("[data-testid=ra-card-in-reader]", "now: locked").await.unwrap();
    // One date format, in local time: no UTC stamp.
    let status = browser.wait_for_text("[data-testid=ra-card-status]", " at ").await.unwrap();
    assert!(!status.contains("UTC") && !status.contains('-'), "{status}");
    browser.assert_accessible("RA: a person").await.unwrap();
    // Revoking is final: it warns and asks first; not confirming changes nothing.
    browser.click_on("[data-testid=ra-card-revoke]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-revoke-warning]", "can never be used again").await.unwrap();
    browser.assert_accessible("RA: revoke?").await.unwrap();
    browser.screenshot("ra-revoke").await.unwrap();
    browser.click_on("[data-testid=ra-card-keep]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-card-status]", "Status: active").await.unwrap();
    let status: String = {
        let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
        sqlx::query_scalar("SELECT status FROM cards WHERE guid = $1")
            .bind(holder.as_str())
            .fetch_one(db.pool())
            .await
            .unwrap()
    };
    assert_eq!(status, "active");
    browser.click_on("[data-testid=ra-clear-lockout]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "Say why").await.unwrap();
    browser.fill("#ra-reason-lockout", "Photo ID checked at the RA desk").await.unwrap();
    browser.click_on("[data-testid=ra-clear-lockout]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-done]", "lockout cleared").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "No failed unlock attempts").await.unwrap();

    browser.click_on("[data-testid=ra-person-audit]").await.unwrap();
    browser.wait_for_text("h1", "Audit trail").await.unwrap();
    // Plain words, not event codes or JSON.
    browser.wait_for_text("[data-testid=ra-audit]", "RA cleared the self-service lockout").await.unwrap();
    browser
        .wait_for_text("[data-testid=ra-audit]", "Reason: Photo ID checked at the RA desk.")
        .await
        .unwrap();
    let table = browser.wait_for_text("[data-testid=ra-audit]", "Registered for self-service").await.unwrap();
    assert!(!table.contains("ra_lockout_cleared") && !table.contains("{\""), "{table}");
    browser.assert_accessible("RA: audit trail").await.unwrap();
    browser.screenshot("ra-audit").await.unwrap();
    browser.click_on("[data-testid=ra-verify]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-verification]", "intact").await.unwrap();

    browser.goto(&format!("{}/ra/report", backend.url)).await.unwrap();
    // Registrations, unlocks, lockouts, lockouts cleared over the last 30 days.
    browser.wait_for_text("[data-testid=ra-report-total]", "Total 1 0 1 1").await.unwrap();
    // …and as a bar chart, whose text alternative says the same in words.
    let chart = "Totals: 1 registrations, 0 unlocks, 1 lockouts and 1 lockouts cleared.";
    browser.wait_for_text("[data-testid=ra-report-chart-text]", chart).await.unwrap();
    browser.assert_accessible("RA: report").await.unwrap();
    browser.screenshot("ra-report").await.unwrap();
    // The console signs out too, and says so.
    browser.click_on("[data-testid=ra-sign-out]").await.unwrap();
    browser.wait_for_text("[data-testid=signed-out-title]", "You have signed out").await.unwrap();
    browser.goto(&format!("{}/ra", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=ra-sign-in]", "Sign in").await.unwrap();
    browser.quit().await.unwrap();

    // The holder can unlock again (the card is locked since the RA's desk saw it).
    let _inserted = inserted;
    let attempt =
        unlock_past_the_code(&holder_api, &mut client, &smtp, &holder, HOLDER_EMAIL, 1).await.unwrap();
    let (_, status) = release(&holder_api, &mut client, &attempt, "86207531").await.unwrap();
    assert_eq!(status.as_u16(), 204);
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
