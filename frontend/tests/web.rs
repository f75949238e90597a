//! Wasm tests in headless Chromium (`wasm-bindgen-test-runner`): the app mounts, routes and
//! renders API failures as a readable error rather than a blank page.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

/// Mounts the app at `path` into a new element (tests share one page, so each sets its route).
fn mount_at(path: &str) -> web_sys::HtmlElement {
    web_sys::window()
        .unwrap()
        .history()
        .unwrap()
        .push_state_with_url(&JsValue::NULL, "", Some(path))
        .unwrap();
    let root: web_sys::HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root).unwrap();
    let handle = leptos::mount::mount_to(root.clone(), frontend::App);
    handle.forget();
    root
}

async fn sleep(ms: u64) {
    gloo_timers_sleep(Duration::from_millis(ms)).await;
}

async fn gloo_timers_sleep(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, duration.as_millis() as i32)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// The router renders a route's view asynchronously: poll the text for up to 2.5 s.
async fn text_once_it_contains(root: &web_sys::HtmlElement, needle: &str) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = root.text_content().unwrap_or_default();
        if text.contains(needle) {
            break;
        }
        sleep(50).await;
    }
    text
}

#[wasm_bindgen_test]
async fn the_start_page_renders_its_heading_and_the_misconduct_warning() {
    let root = mount_at("/");
    let text = text_once_it_contains(&root, "Only unlock your own card").await;
    assert!(text.contains("Smartcard self-service"), "{text}");
    assert!(text.contains("Only unlock your own card"), "{text}");
    assert!(root.query_selector("a.nhsuk-skip-link").unwrap().is_some(), "skip link for keyboard users");
}

#[wasm_bindgen_test]
async fn the_sign_in_page_says_plainly_when_the_card_agent_is_not_running() {
    // No agent answers the test runner's page (none runs, or it refuses this origin).
    let root = mount_at("/sign-in");
    let text = text_once_it_contains(&root, "card agent is not running").await;
    assert!(text.contains("Sign in with your smartcard"), "{text}");
    assert!(text.contains("The card agent is not running"), "{text}");
    assert!(
        root.query_selector("form[hidden] input#passcode[type=password]").unwrap().is_some(),
        "a masked passcode field, hidden while there is no card to send it to"
    );
}

#[wasm_bindgen_test]
async fn the_status_page_shows_a_readable_error_when_the_api_is_absent() {
    // The test runner's server has no /api: the page must say so, not stay blank.
    let root = mount_at("/status");
    let text = text_once_it_contains(&root, "could not be read").await;
    assert!(text.contains("Service status"), "{text}");
    assert!(text.contains("The service status could not be read"), "{text}");
}
