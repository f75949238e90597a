//! A request cut off after its answers were found right (the request timeout here; a client
//! hanging up is the same for the handler): the try still goes back and the code still goes.

use std::time::{Duration, Instant};

use protocol::api::UnlockQuestions;

use crate::{
    helpers::Engine,
    smtp::code_in,
    unlock::{answers_for, failures, holder_with, start},
};

/// PostgreSQL only: the test holds the attempt's row lock from a connection of its own, so the
/// work after the hashing waits on it past the request timeout; SQLite has no row locks to hold.
#[tokio::test]
async fn right_answers_cut_off_after_the_hashing_still_give_the_try_back_and_send_the_code() {
    let (app, smtp, card) = holder_with(Engine::Postgres, true, |s| s.request_timeout_seconds = 2).await;
    let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    // The attempt's row, locked: the answers are read and the try counted (no lock on it), the
    // hashes run, and moving the attempt on to its code waits here.
    let mut blocker = app.db.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM unlock_attempts WHERE id = $1 FOR UPDATE")
        .bind(&questions.attempt_id)
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    let sent = Instant::now();
    let cut = app.post("/api/unlock/answers", &answers_for(&questions, true)).await;
    assert_eq!(cut.status(), 503, "the request timeout cut it off");
    assert!(sent.elapsed() >= Duration::from_secs(2));
    assert_eq!(failures(&app).await, 1, "the try was counted before the hashing, and is held meanwhile");
    blocker.rollback().await.unwrap();

    // What was cut off is the answer, not the work: the code goes and the try comes back.
    code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
    assert_eq!(failures(&app).await, 0, "right answers are not a failed try");
    let status: String = sqlx::query_scalar("SELECT status FROM unlock_attempts WHERE id = $1")
        .bind(&questions.attempt_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(status, "code");
}
