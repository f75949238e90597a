//! Request rates: one client looping on a public route is slowed to its allowance, told how
//! long to wait, and writes no more than its allowance; other clients are not held up.

use crate::helpers::{error_code, Engine, TestApp};

async fn challenge(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/api/sign-in/challenge", app.address)).json(&());
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

async fn challenges(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM challenges").fetch_one(app.db.pool()).await.unwrap()
}

#[tokio::test]
async fn a_client_over_its_allowance_gets_429_with_retry_after_and_writes_nothing_more() {
    let app = TestApp::spawn_with(Engine::Sqlite, |s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 5;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(challenge(&app, None).await.status(), 200);
    }
    for forged in [None, Some("203.0.113.1"), Some("203.0.113.2")] {
        let refused = challenge(&app, forged).await;
        let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(
            error_code(refused).await,
            (429, "rate_limited".into()),
            "a header no proxy set changes nothing"
        );
    }
    assert_eq!(challenges(&app).await, 5);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(challenge(&app, None).await.status(), 200, "the allowance comes back");
}

#[tokio::test]
async fn behind_the_configured_proxy_each_forwarded_client_has_its_own_allowance() {
    let app = TestApp::spawn_with(Engine::Sqlite, |s| {
        s.rate_limit_per_second = 1;
        s.rate_limit_burst = 2;
        s.client_address_header = Some("x-forwarded-for".into());
    })
    .await;
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            assert_eq!(challenge(&app, Some(&format!("192.0.2.77, {client}"))).await.status(), 200);
        }
        assert_eq!(challenge(&app, Some(client)).await.status(), 429);
    }
}

#[tokio::test]
async fn a_request_that_cannot_finish_in_time_is_answered_503_and_changes_nothing() {
    let app = TestApp::spawn_with(Engine::Sqlite, |s| s.request_timeout_seconds = 1).await;
    // Another writer holds SQLite's write lock for longer than the request may take.
    let mut held = app.db.begin_write().await.unwrap();
    sqlx::query("UPDATE audit_head SET hash = hash").execute(&mut **held).await.unwrap();
    let answer = challenge(&app, None).await;
    assert!(answer.headers().contains_key("retry-after"));
    assert_eq!(error_code(answer).await, (503, "unavailable".into()), "the usual envelope");
    drop(held);
    assert_eq!(challenges(&app).await, 0, "the request that timed out wrote nothing");
    assert_eq!(challenge(&app, None).await.status(), 200, "and the next one is served");
}
