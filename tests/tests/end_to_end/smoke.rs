//! Browser smoke test: the real backend serves the real built SPA; Chromium and Firefox ESR both
//! run the wasm, render the start page, navigate client-side, and load a deep link directly.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use tests::{
    browser::{Browser, Engine},
    system::RunningBackend,
};

async fn app_renders_and_navigates(engine: Engine) -> anyhow::Result<()> {
    let backend = RunningBackend::start().await?;
    let browser = Browser::start(engine).await?;

    browser.goto(&backend.url).await?;
    browser.wait_for_text("h1", "Smartcard self-service").await?;

    // Client-side navigation to a route that calls the API.
    let link = browser.find("footer a[href='/status']").await?;
    browser.click(&link).await?;
    browser.wait_for_text("h1", "Service status").await?;
    let version = browser.wait_for_text("[data-testid=status-version]", env!("CARGO_PKG_VERSION")).await?;
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    browser.wait_for_text("[data-testid=status-overall]", "Working normally").await?;
    assert!(browser.current_url().await?.ends_with("/status"));

    // A deep link loads the app shell through the backend's fallback and routes to the page.
    browser.goto(&format!("{}/no/such/page", backend.url)).await?;
    browser.wait_for_text("h1", "Page not found").await?;

    browser.quit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_the_app() -> anyhow::Result<()> {
    app_renders_and_navigates(Engine::Chromium).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_runs_the_app() -> anyhow::Result<()> {
    app_renders_and_navigates(Engine::Firefox).await
}
