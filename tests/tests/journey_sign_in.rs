//! Journey 1 in a real browser, on the real parts: pcscd + vpcd + the virtual card, the card
//! agent, the backend serving the built SPA. Sign in (a wrong passcode first), My Profile,
//! pulling the card out signs out. axe-core checks every page on the way.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::RunningAgent,
    browser::{Browser, Engine},
    process::free_port,
    smartcard::{exclusive, CardFile, InsertedCard},
    system::RunningBackend,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_signs_in_with_the_card_sees_their_profile_and_is_signed_out_when_the_card_leaves() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Jo Example").unwrap();
    // The agent must allow the site's origin and the site must know the agent's URL.
    let port = free_port().unwrap();
    let site = format!("http://127.0.0.1:{port}");
    let agent = RunningAgent::start_with(&["--allow-origin".as_ref(), site.as_ref()]).await.unwrap();
    let agent_url = agent.url();
    let backend = RunningBackend::start_with(|s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.agent_urls = vec![agent_url];
    })
    .await
    .unwrap();
    backend.issue_card(&card, "800000000001", "Jo Example", "jo.example@nhs.net").unwrap();
    let inserted = InsertedCard::insert(&card).unwrap();
    let browser = Browser::start(Engine::Chromium).await.unwrap();

    browser.goto(&backend.url).await.unwrap();
    browser.wait_for_text("h1", "Smartcard self-service").await.unwrap();
    browser.assert_accessible("the start page").await.unwrap();
    browser.click(&browser.find("[data-testid=start-sign-in]").await.unwrap()).await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found").await.unwrap();
    browser.assert_accessible("the sign-in page").await.unwrap();

    let passcode = browser.find("#passcode").await.unwrap();
    browser.type_into(&passcode, "999999").await.unwrap();
    browser.click(&browser.find("[data-testid=sign-in]").await.unwrap()).await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "2 tries left").await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "2 tries left").await.unwrap();
    browser.assert_accessible("the sign-in page with an error").await.unwrap();

    let passcode = browser.find("#passcode").await.unwrap();
    browser.type_into(&passcode, "123456").await.unwrap();
    browser.click(&browser.find("[data-testid=sign-in]").await.unwrap()).await.unwrap();
    browser.wait_for_text("h1", "My profile").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Jo Example").await.unwrap();
    browser.wait_for_text("[data-testid=self-service-status]", "not registered").await.unwrap();
    browser.assert_accessible("My Profile").await.unwrap();

    drop(inserted);
    browser.wait_for_text("h1", "You have been signed out").await.unwrap();
    browser.assert_accessible("the signed-out page").await.unwrap();
    browser.goto(&format!("{}/profile", backend.url)).await.unwrap();
    browser.wait_for_text("h1", "Sign in with your smartcard").await.unwrap();
    browser.quit().await.unwrap();
}
