//! Wasm tests in headless Chromium (`wasm-bindgen-test-runner`): the app mounts, routes and
//! renders API failures as a readable error rather than a blank page.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

fn mount_fresh() -> web_sys::HtmlElement {
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

#[wasm_bindgen_test]
fn the_start_page_renders_its_heading_and_the_misconduct_warning() {
    let root = mount_fresh();
    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("Smartcard self-service"), "{text}");
    assert!(text.contains("Only unlock your own card"), "{text}");
    assert!(root.query_selector("a.skip-link").unwrap().is_some(), "skip link for keyboard users");
}

#[wasm_bindgen_test]
async fn the_status_page_shows_a_readable_error_when_the_api_is_absent() {
    // The test runner's server has no /api: the page must say so, not stay blank.
    web_sys::window()
        .unwrap()
        .history()
        .unwrap()
        .push_state_with_url(&JsValue::NULL, "", Some("/status"))
        .unwrap();
    let root = mount_fresh();
    let mut text = String::new();
    for _ in 0..50 {
        sleep(50).await;
        text = root.text_content().unwrap_or_default();
        if text.contains("could not be read") {
            break;
        }
    }
    assert!(text.contains("Service status"), "{text}");
    assert!(text.contains("The service status could not be read"), "{text}");
}
