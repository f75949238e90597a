//! The unlock page while the mail relay is down (the real SMTP server process stopped): the page
//! says the email will be late instead of leaving the holder to ask for code after code, and
//! the code arrives, and works, once the relay is back.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use std::time::Duration;

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::register,
    smartcard::{exclusive, CardFile, InsertedCard},
    smtp::code_in,
    system::Site,
};

use crate::journey_unlock::answer_questions;

const EMAIL: &str = "mo.mail@nhs.net";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_relay_is_down_the_unlock_page_says_the_code_will_be_late_and_it_comes() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Mo Mail").unwrap();
    let Site { agent, mut smtp, backend } = Site::start().await.unwrap();
    let guid = backend.issue_card(&card, "860000000001", "Mo Mail", EMAIL).unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    register(&backend, &mut client, &smtp, &guid, "123456", EMAIL).await.unwrap();
    smtp.wait_for(EMAIL, "You are registered", 1).await.unwrap();
    client.block_pin().await.unwrap();

    // The relay goes down, and someone else's notice is already waiting behind it, tried and
    // failed: that is how the backend knows the relay is not taking mail.
    smtp.stop();
    let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
    sqlx::query(
        "INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at, last_error) \
         VALUES ('someone.else@nhs.net', 'A notice', 'Hello', $1, 1, $1, 'Connection refused')",
    )
    .bind(backend::time::now_unix())
    .execute(db.pool())
    .await
    .unwrap();

    let browser = Browser::start(Engine::Chromium).await.unwrap();
    browser.goto(&format!("{}/unlock", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "It is locked").await.unwrap();
    browser.click_on("[data-testid=start-unlock]").await.unwrap();
    browser.wait_for_text("h2", "Answer your security questions").await.unwrap();
    answer_questions(&browser, true).await;
    browser.wait_for_text("h2", "Check your email").await.unwrap();
    let line = browser.wait_for_text("[data-testid=code-sent]", "may take a little longer").await.unwrap();
    assert!(line.contains("It will come") && line.contains("m***@nhs.net"), "{line}");
    browser.assert_accessible("unlock: check your email, mail delayed").await.unwrap();
    browser.screenshot("unlock-mail-delayed").await.unwrap();
    assert!(smtp.messages_to(EMAIL).iter().all(|m| !m.contains("unlock code")), "nothing sent yet");

    smtp.restart().unwrap();
    let mail = smtp.wait_for_within(EMAIL, "unlock code", 1, Duration::from_secs(60)).await.unwrap();
    browser.fill("#unlock-code", &code_in(&mail).unwrap()).await.unwrap();
    browser.click_on("[data-testid=continue]").await.unwrap();
    browser.wait_for_text("h2", "Choose a new passcode").await.unwrap();
    browser.fill("#new-passcode", "86207531").await.unwrap();
    browser.fill("#confirm-passcode", "86207531").await.unwrap();
    browser.click_on("[data-testid=unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=unlocked]", "Your card is unlocked").await.unwrap();
    smtp.wait_for(EMAIL, "was unlocked", 1).await.unwrap();
    smtp.wait_for("someone.else@nhs.net", "Hello", 1).await.unwrap();
    browser.quit().await.unwrap();
}
