//! The RA unlocks a card at the desk, in a real browser on the real parts, at a desk with two
//! readers: the holder's card (locked, and the holder locked out of self-service) in 00 00, the
//! RA officer's own in 00 01. The RA signs in choosing their own card, finds the holder, chooses
//! the holder's card, records how they checked who the holder is and why, and the holder types
//! the new passcode twice; "Card unlocked". The holder then signs in with it. `yubico-piv-tool`
//! confirms on the card that the new passcode works and the old PUK does not; the audit trail
//! and the report show the desk unlock, and self-service is unlocked too.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::{lock_out, register, Api},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    system::Site,
};

const HOLDER_EMAIL: &str = "kim.example@nhs.net";
const NEW_PASSCODE: &str = "58203716";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ra_unlocks_a_locked_card_at_a_two_reader_desk_and_the_holder_signs_in_with_it() {
    let _lock = exclusive().unwrap();
    let (holder_card, ra_card) =
        (CardFile::personalised("Kim Example").unwrap(), CardFile::personalised("Ria Officer").unwrap());
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    let holder = backend.issue_card(&holder_card, "850000000001", "Kim Example", HOLDER_EMAIL).unwrap();
    backend.issue_card_with_roles(&ra_card, "850000000009", "Ria Officer", "ria@nhs.net", &["ra"]).unwrap();
    let _holder_inserted = InsertedCard::insert(&holder_card).unwrap();
    {
        // The holder registered once, then locked their card and their self-service.
        let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        register(&backend, &mut client, &smtp, &holder, "123456", HOLDER_EMAIL).await.unwrap();
        lock_out(&Api::new(&backend).unwrap(), &mut client, &holder).await.unwrap();
        client.block_pin().await.unwrap();
    }
    let _ra_inserted = InsertedCard::insert_second(&ra_card).unwrap();
    // Firefox: the RA console (its card picker, its chart) in the other browser people use.
    let browser = Browser::start(Engine::Firefox).await.unwrap();

    // The RA signs in with their own card, the other of the two.
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "Kim Example’s card").await.unwrap();
    browser.choose_card("Ria Officer").await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found (Ria Officer)").await.unwrap();
    browser.fill("#passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Ria Officer").await.unwrap();

    // They find the holder and unlock the card at the desk.
    browser.goto(&format!("{}/ra", backend.url)).await.unwrap();
    browser.wait_for_text("h1", "Find a person").await.unwrap();
    browser.fill("#ra-query", "kim ex").await.unwrap();
    browser.click_on("[data-testid=ra-search]").await.unwrap();
    browser.click_on("[data-testid=ra-result]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "Locked out since").await.unwrap();
    browser.click_on("[data-testid=ra-desk-unlock-start]").await.unwrap();
    browser.wait_for_text("h1", "Unlock their card").await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "There are 2 cards").await.unwrap();
    browser.choose_card("Kim Example").await.unwrap();
    browser.wait_for_text("[data-testid=ra-desk-card]", "Kim Example’s card is locked").await.unwrap();
    browser.assert_accessible("RA: unlock their card").await.unwrap();
    browser.screenshot("ra-desk-unlock").await.unwrap();
    browser.fill("#ra-desk-identity", "Photo ID seen (passport)").await.unwrap();
    browser.fill("#ra-desk-reason", "Locked out of self-service, at the desk").await.unwrap();
    browser.fill("#ra-desk-pin", NEW_PASSCODE).await.unwrap();
    browser.fill("#ra-desk-confirm", NEW_PASSCODE).await.unwrap();
    browser.click_on("[data-testid=ra-desk-unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-unlocked]", "Card unlocked").await.unwrap();
    browser.assert_accessible("RA: card unlocked").await.unwrap();
    let notice = smtp.wait_for(HOLDER_EMAIL, "was unlocked", 1).await.unwrap();
    assert!(notice.contains("at the Registration Authority (RA) desk by Ria Officer"), "{notice}");

    // The audit trail and the report show it, apart from self-service.
    browser.click_on("[data-testid=ra-back-to-person]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-lockout]", "No failed unlock attempts").await.unwrap();
    browser.click_on("[data-testid=ra-person-audit]").await.unwrap();
    browser.wait_for_text("[data-testid=ra-audit]", "RA unlocked the card at the desk").await.unwrap();
    browser
        .wait_for_text("[data-testid=ra-audit]", "Identity checked: Photo ID seen (passport).")
        .await
        .unwrap();
    browser
        .wait_for_text("[data-testid=ra-audit]", "Reason: Locked out of self-service, at the desk.")
        .await
        .unwrap();
    browser.goto(&format!("{}/ra/report", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=ra-report-desk-unlocks]", "1").await.unwrap();
    browser.wait_for_text("[data-testid=ra-report-chart-text]", "1 registrations, 1 unlocks").await.unwrap();
    browser.assert_accessible("RA: report (Firefox)").await.unwrap();
    browser.screenshot("ra-report-firefox").await.unwrap();
    browser.click_on("[data-testid=ra-sign-out]").await.unwrap();
    browser.wait_for_text("[data-testid=signed-out-title]", "You have signed out").await.unwrap();

    // The holder signs in with the new passcode, choosing their card.
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "Kim Example’s card").await.unwrap();
    browser.choose_card("Kim Example").await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found (Kim Example)").await.unwrap();
    browser.fill("#passcode", NEW_PASSCODE).await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Kim Example").await.unwrap();
    browser.quit().await.unwrap();

    // An independent PIV tool, on the holder's card (in the first reader).
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", NEW_PASSCODE]).unwrap();
    assert!(ok, "the new passcode works on the card: {out}");
    let (ok, _) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11335577"]).unwrap();
    assert!(!ok, "the old PUK no longer works");
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
