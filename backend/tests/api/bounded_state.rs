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
        // All expired, each at its own second (rows sharing the batch's last second go with it).
        sqlx::query("UPDATE challenges SET expires_at = (SELECT COUNT(*) FROM challenges AS c WHERE c.id < challenges.id)")
            .execute(app.db.pool())
            .await
            .unwrap();
        assert_eq!(app.post("/api/unlock/challenge", &()).await.status(), 200);
        // Each new challenge sweeps a batch of 64, the oldest: bounded work in the request, and
        // a backlog that shrinks by 63 a request.
        assert_eq!(count(&app, "challenges").await, 400 - 64 + 1, "one batch went with the next");
        for _ in 0..6 {
            assert_eq!(app.post("/api/unlock/challenge", &()).await.status(), 200);
        }
        assert_eq!(count(&app, "challenges").await, 7, "and the rest with the next six: only live ones are left");
    }
}

on_both_databases! {
    /// What PostgreSQL makes of the sweep on a table that has grown by thousands since it was
    /// last analysed: a walk along the index, not a scan of every row (issue 16).
    async fn a_sweep_walks_the_index_on_a_table_grown_since_it_was_analysed(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        sqlx::query(
            "INSERT INTO challenges (id, purpose, challenge, session_ref, expires_at) \
             SELECT 'c' || n, 'sign_in', 'x', NULL, 4000000000 + n FROM (WITH RECURSIVE s(n) AS \
             (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000) SELECT n FROM s) AS numbers",
        )
        .execute(app.db.pool())
        .await
        .unwrap();
        let plan = plan_of(&app, &backend::db::sweep_statement("challenges", "expires_at"), "4000000000").await;
        assert!(plan.contains("challenges_expires"), "the sweep walks the expiry index:\n{plan}");
        assert!(!plan.contains("Seq Scan on challenges") && !plan.contains("SCAN challenges"), "{plan}");
        assert_eq!(count(&app, "challenges").await, 20000, "EXPLAIN deleted nothing");
    }
}

/// The query plan of `statement` with `$1` as `value`, one line a step.
async fn plan_of(app: &TestApp, statement: &str, value: &str) -> String {
    let explain = match app.db.kind() {
        backend::db::DatabaseKind::Postgres => format!("EXPLAIN {}", statement.replace("$1", value)),
        backend::db::DatabaseKind::Sqlite => format!("EXPLAIN QUERY PLAN {}", statement.replace("$1", value)),
    };
    let rows = sqlx::query(&explain).fetch_all(app.db.pool()).await.unwrap();
    let plan: Vec<String> = rows
        .iter()
        .map(|row| {
            use sqlx::Row;
            row.try_get::<String, _>(row.len() - 1).unwrap()
        })
        .collect();
    plan.join("\n")
}

on_both_databases! {
    /// Every message queued sweeps the week-old records: along the indexes, not through the
    /// whole outbox (it read every row at each code sent before migration 0017).
    async fn the_mail_sweep_walks_the_indexes(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        sqlx::query(
            "INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at, sent_at) \
             SELECT 'p' || n || '@nhs.net', 'Code', '', 4000000000, 1, 4000000000, 4000000000 + n FROM (WITH RECURSIVE s(n) AS \
             (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000) SELECT n FROM s) AS numbers",
        )
        .execute(app.db.pool())
        .await
        .unwrap();
        if app.db.kind() == backend::db::DatabaseKind::Postgres {
            sqlx::query("ANALYZE mail_outbox").execute(app.db.pool()).await.unwrap();
        }
        let plan = plan_of(&app, backend::mail::SWEEP, "4000000000").await;
        assert!(plan.contains("mail_outbox_due") && plan.contains("mail_outbox_failed"), "both indexes:\n{plan}");
        assert!(!plan.contains("Seq Scan on mail_outbox") && !plan.contains("SCAN mail_outbox"), "{plan}");
        assert_eq!(count(&app, "mail_outbox").await, 20000, "EXPLAIN deleted nothing");
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
