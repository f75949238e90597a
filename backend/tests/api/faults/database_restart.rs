//! PostgreSQL restarted under steady load (a server of the test's own, stopped and started):
//! the backend rides it out without a restart, answering a clear 503 meanwhile.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use protocol::{
    agent::PukOnCard,
    api::{UnlockCode, UnlockQuestions},
};

use crate::{
    helpers::{error_code, Engine, TestApp},
    postgres::PostgresServer,
    smtp::code_in,
    unlock::{answers_for, holder_with, start},
    unlock_release::{proved, puks, release_opened},
};

/// One request of the steady load: when it started and what it got.
#[derive(Debug, Clone)]
struct Answer {
    started: Instant,
    status: u16,
    code: Option<String>,
    retry_after: bool,
}

/// Requests that read and write (a challenge is a row) at a steady pace, each recorded.
fn steady_load(app: &TestApp, answers: Arc<Mutex<Vec<Answer>>>) -> tokio::task::JoinHandle<()> {
    let (client, url) = (app.client.clone(), format!("{}/api/unlock/challenge", app.address));
    tokio::spawn(async move {
        loop {
            let started = Instant::now();
            if let Ok(response) = client.post(&url).json(&()).send().await {
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let code = body["code"].as_str().map(str::to_owned);
                answers.lock().unwrap().push(Answer { started, status, code, retry_after });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

async fn health(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.get("/api/health").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_postgres_restart_under_load_is_a_clear_503_and_nothing_half_written() {
    let server = PostgresServer::start().unwrap();
    let url = server.url();
    let (app, smtp, card) = holder_with(Engine::Postgres, true, |s| s.database_url = Some(url)).await;
    // An unlock in progress when the database goes: answered, its code emailed, not yet entered.
    let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
    let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();

    let answers = Arc::new(Mutex::new(Vec::new()));
    // Several clients at once: while the database is down each waits for the pool's timeout.
    let load: Vec<_> = (0..8).map(|_| steady_load(&app, answers.clone())).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop().unwrap();
    let stopped = Instant::now();
    let (status, body) = health(&app).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("degraded")), "{body}");
    assert_eq!(body["database"]["reachable"], false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let entered = UnlockCode { attempt_id: questions.attempt_id.clone(), code: code.clone() };
    assert_eq!(
        error_code(app.post("/api/unlock/code", &entered).await).await,
        (503, "unavailable".into()),
        "the code typed while the database is down is not spent"
    );

    server.start_again().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        if health(&app).await.0 == 200 {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "the backend did not reconnect by itself");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.iter().for_each(tokio::task::JoinHandle::abort);

    let answers = answers.lock().unwrap().clone();
    let during: Vec<&Answer> =
        answers.iter().filter(|a| a.started > stopped && a.started < recovered).collect();
    let after: Vec<&Answer> = answers.iter().filter(|a| a.started > recovered).collect();
    assert!(
        during.len() >= 8 && after.len() > 10,
        "the load ran: {} during, {} after",
        during.len(),
        after.len()
    );
    for answer in &during {
        assert!(
            answer.status == 503 && answer.code.as_deref() == Some("unavailable") && answer.retry_after
                || answer.status == 200,
            "during the outage only a clear 503 with Retry-After (or a success racing it): {answer:?}"
        );
    }
    assert!(during.iter().any(|a| a.status == 503), "the outage was seen");
    let failed_after: Vec<&&Answer> = after.iter().filter(|a| a.status != 200).collect();
    assert!(failed_after.is_empty(), "no failure after recovery: {failed_after:?}");
    assert!(answers.iter().all(|a| a.status != 500), "never a 500");

    // The unlock resumes where it was: the same code, then the release and the report.
    assert_eq!(app.post("/api/unlock/code", &entered).await.status(), 204);
    let (released, secrets) = release_opened(&app, &card, &questions.attempt_id).await;
    let reported = proved(&card, &questions.attempt_id, &released, PukOnCard::Rotated);
    assert_eq!(app.post("/api/unlock/report", &reported).await.status(), 204);
    let (current, pending, _) = puks(&app, &card).await;
    assert_eq!((current.as_str(), pending), (secrets.new_puk.as_str(), None));
}

/// PostgreSQL ends the backend's idle connections (an idle timeout, a failover, an operator's
/// `pg_terminate_backend`) while the backend has no reason to notice: the next requests are
/// served on connections that answer, not failed on the dead ones. (The pool no longer pings a
/// connection at every hand-out, only one that sat idle, issue 16.)
#[tokio::test]
async fn connections_the_database_ended_while_idle_are_replaced_unseen() {
    let app = Arc::new(TestApp::spawn(Engine::Postgres).await);
    // Several connections in the pool: requests at once each take one.
    assert_eq!(challenges_at_once(&app, 8).await, [200; 8]);
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert!(ended >= 2, "the backend's connections were ended: {ended}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..20 {
        let response = app.post("/api/unlock/challenge", &()).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    assert_eq!(challenges_at_once(&app, 8).await, [200; 8]);
}

/// The statuses of `n` challenges asked for at once.
async fn challenges_at_once(app: &Arc<TestApp>, n: usize) -> Vec<u16> {
    let asked: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.post("/api/unlock/challenge", &()).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in asked {
        statuses.push(task.await.unwrap());
    }
    statuses
}
