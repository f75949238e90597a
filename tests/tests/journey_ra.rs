//! The RA console in a real browser, on the real parts. A holder registered for self-service
//! locks themselves out with three wrong sets of answers; an RA officer signs in with their own
//! card, opens the RA console (its own bundle), finds the holder, clears the lockout with a reason,
//! sees it in the audit trail, verifies the chain and reads the report; the holder then unlocks
//! their card. axe-core checks every console page.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::{lock_out, register, release, unlock_past_the_code, Api},
    smartcard::{exclusive, CardFile, InsertedCard},
    system::Site,
};

const HOLDER_EMAIL: &str = "mo.example@nhs.net";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_officer_clears_a_lockout_and_the_holder_then_unlocks() {
    let _lock = exclusive().unwrap();
    let (holder_card, ra_card) =
        (CardFile::personalised("Mo Example").unwrap(), CardFile::personalised("Ria Officer").unwrap());
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    let holder = backend.issue_card(&holder_card, "830000000001", "Mo Example", HOLDER_EMAIL).unwrap();
    backend.issue_card_with_roles(&ra_card, "830000000009", "Ria Officer", "ria@nhs.net", &["ra"]).unwrap();

    // The holder registered earlier, and has just locked themselves out.
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    let inserted = InsertedCard::insert(&holder_card).unwrap();
    client.wait_for_card().await.unwrap();
    register(&backend, &mut client, &smtp, &holder, "123456", HOLDER_EMAIL).await.unwrap();
    let holder_api = Api::new(&backend).unwrap();
    lock_out(&holder_api, &mut client, &holder).await.unwrap();
    drop(inserted);

    // The RA officer, with their own card.
    let inserted = InsertedCard::insert(&ra_card).unwrap();
    let browser = Browser::start(Engine::Chromium).await.unwrap();
    browser.goto(&format!("{}/ra", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=ra-sign-in]", "Sign in").await.unwrap();
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found").await.unwrap();
    browser.fill("#passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Ria Officer").await.unwrap();
    browser.click_on("[data-testid=ra-console]").await.unwrap();

    browser.wait_for_text("h1", "Find a person").await.unwrap();
    browser.assert_accessible("RA: find a person").await.unwrap();
    browser.fill("#ra-query", "mo ex").await.unwrap();
    browser.click_on("[data-testid=ra-search]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-result]", "Mo Example").await.unwrap();
    browser.assert_accessible("RA: search results").await.unwrap();
    browser.click_on("[data-testid=ra-result]").await.unwrap();

    browser.wait_for_text("[data-testid=ra-person-name]", "Mo Example").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "Locked out since").await.unwrap();
    browser.wait_for_text("[data-testid=ra-self-service]", HOLDER_EMAIL).await.unwrap();
    browser.assert_accessible("RA: a person").await.unwrap();
    browser.click_on("[data-testid=ra-clear-lockout]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "Say why").await.unwrap();
    browser.fill("#ra-reason-lockout", "Photo ID checked at the RA desk").await.unwrap();
    browser.click_on("[data-testid=ra-clear-lockout]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-done]", "lockout cleared").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "No failed unlock attempts").await.unwrap();

    browser.click_on("[data-testid=ra-person-audit]").await.unwrap();
    browser.wait_for_text("h1", "Audit trail").await.unwrap();
    browser.wait_for_text("[data-testid=ra-audit]", "ra_lockout_cleared").await.unwrap();
    browser.wait_for_text("[data-testid=ra-audit]", "Photo ID checked").await.unwrap();
    browser.assert_accessible("RA: audit trail").await.unwrap();
    browser.click_on("[data-testid=ra-verify]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-verification]", "intact").await.unwrap();

    browser.goto(&format!("{}/ra/report", backend.url)).await.unwrap();
    // Registrations, unlocks, lockouts, lockouts cleared over the last 30 days.
    browser.wait_for_text("[data-testid=ra-report-total]", "Total 1 0 1 1").await.unwrap();
    browser.assert_accessible("RA: report").await.unwrap();
    browser.quit().await.unwrap();
    drop(inserted);

    // The holder can unlock again.
    let _inserted = InsertedCard::insert(&holder_card).unwrap();
    client.wait_for_card().await.unwrap();
    client.block_pin().await.unwrap();
    let attempt =
        unlock_past_the_code(&holder_api, &mut client, &smtp, &holder, HOLDER_EMAIL, 1).await.unwrap();
    let (_, status) = release(&holder_api, &mut client, &attempt, "86207531").await.unwrap();
    assert_eq!(status.as_u16(), 204);
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
