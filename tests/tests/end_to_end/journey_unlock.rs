//! Journey 2 in a real browser, on the real parts: pcscd + vpcd + the virtual card, the card
//! agent, the backend serving the built SPA, a real SMTP server. A registered holder locks their
//! card with three wrong passcodes, follows the page to unlock it (a wrong set of answers first,
//! then the attempt runs out and the page starts again, saying so; then the right answers, the
//! code from the delivered email, a refused trivial passcode, then a good
//! one), and signs in with the new passcode. Afterwards `yubico-piv-tool`, independent of this
//! project, confirms on the card that the new passcode works and the old PUK does not.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::{register, ANSWERS},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    smtp::code_in,
    system::Site,
};

const EMAIL: &str = "lee.example@nhs.net";
const NEW_PASSCODE: &str = "86207531";

async fn wrong_passcode(browser: &Browser, expected: &str) {
    browser.fill("#passcode", "999999").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", expected).await.unwrap();
}

/// Fills each asked question with its registered answer (or a wrong one), by the label's text.
pub(crate) async fn answer_questions(browser: &Browser, right: bool) {
    let labels = browser
        .execute("return Array.from(document.querySelectorAll('label[for^=unlock-answer]')).map(l => l.textContent)")
        .await
        .unwrap();
    let labels: Vec<String> = serde_json::from_value(labels).unwrap();
    assert!((2..=4).contains(&labels.len()), "{labels:?}");
    for (i, label) in labels.iter().enumerate() {
        let answer = ANSWERS
            .iter()
            .find(|(id, _)| backend::questions::question(*id) == Some(label.as_str()))
            .map(|(_, answer)| *answer)
            .unwrap_or_else(|| panic!("{label:?} is not one of the registered questions"));
        browser
            .fill(&format!("#unlock-answer-{}", i + 1), if right { answer } else { "not it" })
            .await
            .unwrap();
    }
    browser.click_on("[data-testid=continue]").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_unlocks_their_locked_card_and_signs_in_with_the_new_passcode() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Lee Example").unwrap();
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    let guid = backend.issue_card(&card, "820000000001", "Lee Example", EMAIL).unwrap();
    let _inserted = InsertedCard::insert(&card).unwrap();
    {
        // Registered earlier (journey 1 has its own browser test).
        let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        register(&backend, &mut client, &smtp, &guid, "123456", EMAIL).await.unwrap();
    }
    let browser = Browser::start(Engine::Chromium).await.unwrap();

    // Three wrong passcodes lock the card; the sign-in page points to the unlock page.
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found").await.unwrap();
    wrong_passcode(&browser, "2 tries left").await;
    wrong_passcode(&browser, "1 try left").await;
    wrong_passcode(&browser, "locked").await;
    // A locked card takes no passcode: the page leads to unlocking instead.
    browser.wait_for_text("[data-testid=card-locked]", "is locked").await.unwrap();
    let hidden =
        browser.execute("return document.getElementById('passcode').offsetParent === null").await.unwrap();
    assert_eq!(hidden, true, "no passcode box for a locked card");
    browser.assert_accessible("sign in: a locked card").await.unwrap();
    browser.screenshot("sign-in-locked-card").await.unwrap();
    browser.click_on("[data-testid=unlock-locked]").await.unwrap();

    browser.wait_for_text("h1", "Unlock your smartcard").await.unwrap();
    browser.wait_for_text("[data-testid=misconduct]", "misconduct").await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "It is locked").await.unwrap();
    browser.assert_accessible("unlock: start").await.unwrap();
    browser.click_on("[data-testid=start-unlock]").await.unwrap();

    browser.wait_for_text("h2", "Answer your security questions").await.unwrap();
    browser.wait_for_text("[data-testid=attempts-left]", "3 attempts").await.unwrap();
    browser.assert_accessible("unlock: questions").await.unwrap();
    answer_questions(&browser, false).await;
    // One count on the page, the backend's; the wrong answers are not left in the boxes.
    browser.wait_for_text("[data-testid=error-message]", "One or more answers are not right").await.unwrap();
    browser.wait_for_text("[data-testid=attempts-left]", "You have 2 attempts").await.unwrap();
    let counts = browser
        .execute("return document.querySelector('main').innerText.match(/\\d+ (more )?attempts?/g)")
        .await
        .unwrap();
    assert_eq!(counts, serde_json::json!(["2 attempts"]), "every count on the page agrees");
    let left_in_boxes = browser
        .execute("return Array.from(document.querySelectorAll('input[id^=unlock-answer]')).map(i => i.value).join('')")
        .await
        .unwrap();
    assert_eq!(left_in_boxes, "", "wrong answers are cleared");
    browser.wait_for_text(".nhsuk-form-group--error [data-testid=field-error]", "not right").await.unwrap();
    browser.assert_accessible("unlock: questions with an error").await.unwrap();
    browser.screenshot("unlock-wrong-answers").await.unwrap();

    // The attempt runs out while the holder is on the questions: back to the start, saying so.
    let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
    sqlx::query("UPDATE unlock_attempts SET expires_at = 0").execute(db.pool()).await.unwrap();
    answer_questions(&browser, true).await;
    browser.wait_for_text("[data-testid=error-message]", "This unlock attempt has ended").await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "It is locked").await.unwrap();
    browser.click_on("[data-testid=start-unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=attempts-left]", "2 attempts").await.unwrap();
    answer_questions(&browser, true).await;

    browser.wait_for_text("h2", "Check your email").await.unwrap();
    browser.wait_for_text("[data-testid=code-sent]", "Junk").await.unwrap();
    browser.wait_for_text("[data-testid=code-sent]", "l***@nhs.net").await.unwrap();
    browser.assert_accessible("unlock: check your email").await.unwrap();
    let mail = smtp.wait_for(EMAIL, "unlock code", 1).await.unwrap();
    assert!(mail.contains("NOT your new passcode"), "{mail}");

    // The page is reloaded and the holder starts again at once: the right answers are not
    // refused for the mail limits; the code just emailed still works, and the page says so.
    browser.goto(&format!("{}/unlock", backend.url)).await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "It is locked").await.unwrap();
    browser.click_on("[data-testid=start-unlock]").await.unwrap();
    browser.wait_for_text("h2", "Answer your security questions").await.unwrap();
    answer_questions(&browser, true).await;
    browser.wait_for_text("[data-testid=code-sent]", "No new code was sent").await.unwrap();
    let line = browser.wait_for_text("[data-testid=code-sent]", "it works until").await.unwrap();
    assert!(
        line.contains("We emailed you a code at ") && (line.contains("am") || line.contains("pm")),
        "{line}"
    );
    browser.fill("#unlock-code", &code_in(&mail).unwrap()).await.unwrap();
    browser.click_on("[data-testid=continue]").await.unwrap();

    browser.wait_for_text("h2", "Choose a new passcode").await.unwrap();
    browser.assert_accessible("unlock: new passcode").await.unwrap();
    browser.fill("#new-passcode", "123456").await.unwrap();
    browser.fill("#confirm-passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "run of digits").await.unwrap();
    browser.fill("#new-passcode", NEW_PASSCODE).await.unwrap();
    browser.fill("#confirm-passcode", NEW_PASSCODE).await.unwrap();
    browser.click_on("[data-testid=unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=unlocked]", "Your card is unlocked").await.unwrap();
    browser.assert_accessible("unlock: done").await.unwrap();
    let notice = smtp.wait_for(EMAIL, "was unlocked", 1).await.unwrap();
    assert!(notice.contains("If this wasn't you"), "{notice}");

    browser.click_on("[data-testid=sign-in-now]").await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found").await.unwrap();
    browser.fill("#passcode", NEW_PASSCODE).await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Lee Example").await.unwrap();
    browser.quit().await.unwrap();

    // An independent PIV tool, on the card itself.
    let (ok, out) = yubico(&["-a", "verify-pin", "-P", NEW_PASSCODE]).unwrap();
    assert!(ok, "the new passcode works on the card: {out}");
    let (ok, _) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11335577"]).unwrap();
    assert!(!ok, "the old PUK no longer works");
    assert!(backend.admin(&["verify-audit"]).unwrap().contains("intact"));
}
