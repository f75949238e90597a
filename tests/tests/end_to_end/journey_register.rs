//! Journey 1 in a real browser, on the real parts: pcscd + vpcd + the virtual card, the card
//! agent, the backend serving the built SPA, a real SMTP server. Sign in (a wrong passcode
//! first), My Profile, register for self-service (passcode, 4 questions, email, the code from the
//! delivered email), success on the profile, sign out; then pulling the card out signs out.
//! axe-core checks every page on the way.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    browser::{Browser, Engine},
    smartcard::{exclusive, CardFile, InsertedCard},
    smtp::code_in,
    system::Site,
};

async fn sign_in(browser: &Browser, passcode: &str) {
    browser.wait_for_text("[data-testid=card-ready]", "Card found").await.unwrap();
    browser.fill("#passcode", passcode).await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_signs_in_registers_for_self_service_and_signs_out() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Jo Example").unwrap();
    // The agent must allow the site's origin and the site must know the agent's URL.
    let Site { agent: _agent, smtp, backend } = Site::start().await.unwrap();
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

    // Register: passcode, questions, email, code.
    browser.click_on("[data-testid=register]").await.unwrap();
    browser.wait_for_text("h2", "Confirm it is your card").await.unwrap();
    browser.assert_accessible("registration: passcode").await.unwrap();
    browser.fill("#reg-passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=continue]").await.unwrap();
    browser.wait_for_text("h2", "Choose 4 security questions").await.unwrap();
    browser.wait_for_text("#question-1", "first school").await.unwrap();
    browser.assert_accessible("registration: questions").await.unwrap();
    // Each question is its own group, named for its place.
    let legends = browser
        .execute("return Array.from(document.querySelectorAll('[data-testid=question-group] legend')).map(l => l.textContent)")
        .await
        .unwrap();
    assert_eq!(
        legends,
        serde_json::json!(["Question 1 of 4", "Question 2 of 4", "Question 3 of 4", "Question 4 of 4"])
    );
    // An error marks the group it is about, beside the field and in the summary.
    browser.click_on("[data-testid=continue]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "Choose a question for each").await.unwrap();
    browser
        .wait_for_text(".nhsuk-form-group--error [data-testid=field-error]", "Choose a question")
        .await
        .unwrap();
    let marked = browser
        .execute("return document.querySelector('.nhsuk-form-group--error').contains(document.getElementById('question-1'))")
        .await
        .unwrap();
    assert_eq!(marked, true, "the first empty group is marked");
    browser.assert_accessible("registration: questions with an error").await.unwrap();
    browser.screenshot("register-questions-error").await.unwrap();
    for (slot, (question, answer)) in
        [(1, "St Mary's"), (2, "Oak Road"), (3, "Jaws"), (6, "Biscuit")].iter().enumerate()
    {
        browser.click_on(&format!("#question-{} option[value='{question}']", slot + 1)).await.unwrap();
        browser.fill(&format!("#answer-{}", slot + 1), answer).await.unwrap();
    }
    browser.click_on("[data-testid=continue]").await.unwrap();
    browser.wait_for_text("h2", "Confirm your email address").await.unwrap();
    let prefilled = browser.execute("return document.getElementById('email').value").await.unwrap();
    assert_eq!(prefilled, "jo.example@nhs.net", "pre-filled from the contact details");
    browser.assert_accessible("registration: email").await.unwrap();
    browser.click_on("[data-testid=continue]").await.unwrap();
    browser.wait_for_text("[data-testid=code-sent]", "Junk").await.unwrap();
    browser.assert_accessible("registration: code").await.unwrap();
    let mail = smtp.wait_for("jo.example@nhs.net", "registration code", 1).await.unwrap();
    browser.fill("#code", &code_in(&mail).unwrap()).await.unwrap();
    browser.click_on("[data-testid=confirm]").await.unwrap();
    browser.wait_for_text("[data-testid=registered-panel]", "Registration complete").await.unwrap();
    browser.wait_for_text("[data-testid=self-service-status]", "You are registered").await.unwrap();
    browser.assert_accessible("My Profile after registering").await.unwrap();
    smtp.wait_for("jo.example@nhs.net", "You are registered", 1).await.unwrap();

    // Withdraw asks first, says what it means, and then withdraws.
    browser.click_on("[data-testid=withdraw]").await.unwrap();
    browser
        .wait_for_text("[data-testid=withdraw-warning]", "no longer be able to unlock your card yourself")
        .await
        .unwrap();
    browser.assert_accessible("My Profile: withdraw?").await.unwrap();
    browser.screenshot("profile-withdraw").await.unwrap();
    browser.click_on("[data-testid=withdraw-confirm]").await.unwrap();
    browser.wait_for_text("[data-testid=self-service-status]", "not registered").await.unwrap();
    let registrations: i64 = {
        let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM registrations").fetch_one(db.pool()).await.unwrap()
    };
    assert_eq!(registrations, 0, "the registration is gone");
    let headings = browser
        .execute("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        .await
        .unwrap();
    assert!(headings.as_array().unwrap().iter().any(|h| h == "Self-service"), "{headings}");
    let spelling = browser.execute("return document.body.innerText.includes('Self Service')").await.unwrap();
    assert_eq!(spelling, false, "one spelling: self-service");

    browser.click_on("[data-testid=sign-out]").await.unwrap();
    browser.wait_for_text("[data-testid=signed-out-title]", "You have signed out").await.unwrap();
    browser.wait_for_text("[data-testid=signed-out]", "Take your smartcard out").await.unwrap();

    // Signed in again, pulling the card out signs out — even after the page was reloaded.
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    sign_in(&browser, "123456").await;
    browser.wait_for_text("[data-testid=profile-name]", "Jo Example").await.unwrap();
    browser.goto(&format!("{}/profile", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Jo Example").await.unwrap();
    browser.wait_for_text("[data-testid=card-watch]", "Taking it out signs you out").await.unwrap();
    drop(inserted);
    browser.wait_for_text("[data-testid=signed-out]", "Your smartcard was removed").await.unwrap();
    browser.assert_accessible("the signed-out page").await.unwrap();
    browser.goto(&format!("{}/profile", backend.url)).await.unwrap();
    browser.wait_for_text("h1", "Sign in with your smartcard").await.unwrap();
    browser.quit().await.unwrap();
}
