//! Two cards at one desk (the holder's in reader 00 00, the RA officer's in 00 01), in a real
//! browser on the real parts: the sign-in and unlock pages show both, by name, reader and state,
//! and send nothing to a card until the person chooses it; the passcode typed goes only to the
//! card chosen (the other keeps every try). Also: every page has an icon.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use tests::{
    agent::AgentClient,
    browser::{Browser, Engine},
    self_service::register,
    smartcard::{exclusive, CardFile, InsertedCard},
    system::Site,
};

const HOLDER_EMAIL: &str = "lee.example@nhs.net";

async fn passcode_box_shown(browser: &Browser) -> bool {
    browser.execute("return document.getElementById('passcode').offsetParent !== null").await.unwrap() == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_cards_in_the_passcode_goes_only_to_the_card_chosen() {
    let _lock = exclusive().unwrap();
    let (holder_card, ra_card) =
        (CardFile::personalised("Lee Example").unwrap(), CardFile::personalised("Ria Officer").unwrap());
    let Site { agent, smtp, backend } = Site::start().await.unwrap();
    let holder = backend.issue_card(&holder_card, "840000000001", "Lee Example", HOLDER_EMAIL).unwrap();
    backend.issue_card_with_roles(&ra_card, "840000000009", "Ria Officer", "ria@nhs.net", &["ra"]).unwrap();
    let _holder_inserted = InsertedCard::insert(&holder_card).unwrap();
    {
        let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        register(&backend, &mut client, &smtp, &holder, "123456", HOLDER_EMAIL).await.unwrap();
    }
    let _ra_inserted = InsertedCard::insert_second(&ra_card).unwrap();
    let browser = Browser::start(Engine::Chromium).await.unwrap();

    // Both cards are shown; no passcode box until one is chosen.
    browser.goto(&format!("{}/sign-in", backend.url)).await.unwrap();
    browser
        .wait_for_text("[data-testid=card-picker]", "There are 2 cards in the card readers")
        .await
        .unwrap();
    let picker = browser.wait_for_text("[data-testid=card-picker]", "Ria Officer’s card").await.unwrap();
    assert!(picker.contains("Lee Example’s card") && picker.contains("Virtual PCD 00 00"), "{picker}");
    assert!(picker.contains("Virtual PCD 00 01") && picker.contains("3 passcode tries left"), "{picker}");
    assert!(!passcode_box_shown(&browser).await, "no passcode box before a card is chosen");
    browser.assert_accessible("sign in: two cards").await.unwrap();
    browser.screenshot("sign-in-two-cards").await.unwrap();

    // The RA chooses their own card and signs in: the holder's card spent nothing.
    browser.choose_card("Ria Officer").await.unwrap();
    browser.wait_for_text("[data-testid=card-ready]", "Card found (Ria Officer)").await.unwrap();
    assert!(passcode_box_shown(&browser).await);
    browser.fill("#passcode", "999999").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=error-message]", "2 tries left").await.unwrap();
    // The error is marked on the field as well as in the summary.
    browser
        .wait_for_text(".nhsuk-form-group--error [data-testid=field-error]", "2 tries left")
        .await
        .unwrap();
    browser.assert_accessible("sign in: two cards, a wrong passcode").await.unwrap();
    browser.screenshot("sign-in-wrong-passcode").await.unwrap();
    assert_eq!(
        ra_card.state_json().unwrap()["pin_tries_left"],
        2,
        "the wrong passcode went to the RA's card"
    );
    assert_eq!(holder_card.state_json().unwrap()["pin_tries_left"], 3, "and not to the holder's");
    browser.fill("#passcode", "123456").await.unwrap();
    browser.click_on("[data-testid=sign-in]").await.unwrap();
    browser.wait_for_text("[data-testid=profile-name]", "Ria Officer").await.unwrap();
    assert_eq!(holder_card.state_json().unwrap()["pin_tries_left"], 3);

    // The unlock page shows both too, remembering the choice on the way there; the holder
    // chooses theirs.
    browser.click_on(".nhsuk-header__service-logo").await.unwrap();
    browser.click_on("[data-testid=home-unlock]").await.unwrap();
    browser.wait_for_text("[data-testid=card-picker]", "Lee Example’s card").await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "(Ria Officer)").await.unwrap();
    browser.choose_card("Lee Example").await.unwrap();
    browser.wait_for_text("[data-testid=card-found]", "(Lee Example)").await.unwrap();
    browser.assert_accessible("unlock: two cards").await.unwrap();
    browser.screenshot("unlock-two-cards").await.unwrap();
    browser.click_on("[data-testid=start-unlock]").await.unwrap();
    browser.wait_for_text("h2", "Answer your security questions").await.unwrap();
    let db = backend::db::Database::connect(&backend.settings()).await.unwrap();
    let started_for: String =
        sqlx::query_scalar("SELECT card_guid FROM unlock_attempts").fetch_one(db.pool()).await.unwrap();
    assert_eq!(started_for, holder, "the unlock is for the card chosen");
    browser.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_an_icon() {
    let backend = tests::system::RunningBackend::start().await.unwrap();
    let http = backend.client().unwrap();
    let icon = http.get(format!("{}/favicon.ico", backend.url)).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/x-icon");
    assert!(icon.bytes().await.unwrap().starts_with(&[0, 0, 1, 0]), "an ICO file");
    for page in ["/", "/ra/"] {
        let html = http.get(format!("{}{page}", backend.url)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(r#"rel="icon""#), "{page} links its icon: {html}");
    }
}
