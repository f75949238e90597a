//! What the public can grow is swept: expired challenges, sessions and unlock attempts, and the
//! records of mail sent long ago go as new ones come, so each table holds at most what its rate
//! limit and lifetime allow, however long a flood lasts.

use protocol::api::UnlockQuestions;

use crate::{
    helpers::TestApp,
    on_both_databases,
    smtp::code_in,
    unlock::{answers_for, holder, start},
};

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(app.db.pool()).await.unwrap()
}

on_both_databases! {
    async fn a_flood_of_challenges_leaves_only_the_live_ones(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        for _ in 0..200 {
            assert_eq!(app.post("/api/sign-in/challenge", &()).await.status(), 200);
            assert_eq!(app.post("/api/unlock/challenge", &()).await.status(), 200);
        }
        assert_eq!(count(&app, "challenges").await, 400, "each lives two minutes");
        sqlx::query("UPDATE challenges SET expires_at = 0").execute(app.db.pool()).await.unwrap();
        assert_eq!(app.post("/api/unlock/challenge", &()).await.status(), 200);
        assert_eq!(count(&app, "challenges").await, 1, "the expired ones went with the next");
    }
}

on_both_databases! {
    async fn ended_sessions_and_unlock_attempts_do_not_pile_up(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        for _ in 0..20 {
            assert_eq!(card.sign_in(&app).await.status(), 200);
        }
        sqlx::query("UPDATE sessions SET expires_at = 0").execute(app.db.pool()).await.unwrap();
        assert_eq!(card.sign_in(&app).await.status(), 200);
        assert_eq!(count(&app, "sessions").await, 1);

        let first: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        // Long ended: a day past its expiry.
        sqlx::query("UPDATE unlock_attempts SET expires_at = expires_at - 2 * 86400").execute(app.db.pool()).await.unwrap();
        let second: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_ne!(first.attempt_id, second.attempt_id);
        assert_eq!(count(&app, "unlock_attempts").await, 1, "the old attempt was swept");
        let asked: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT attempt_id) FROM unlock_attempt_questions")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(asked, 1, "and its questions with it");
    }
}

on_both_databases! {
    async fn records_of_mail_sent_long_ago_are_swept(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        // Registration sent two messages; wait until both are out.
        for _ in 0..100 {
            let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
            if unsent == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(count(&app, "mail_outbox").await, 2);
        sqlx::query("UPDATE mail_outbox SET sent_at = sent_at - 8 * 86400").execute(app.db.pool()).await.unwrap();
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
        code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        assert_eq!(count(&app, "mail_outbox").await, 1, "only the new message");
    }
}
