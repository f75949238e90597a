//! The hash-chained audit trail: appended by the routes, verified end to end, tampering found.

use backend::audit;

use crate::{cards::TestCard, helpers::TestApp, on_both_databases};

on_both_databases! {
    async fn sign_ins_are_audited_in_a_chain_that_detects_an_edited_row(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "u9", "Eve Holder", "eve@nhs.net").await;
        for _ in 0..3 {
            assert_eq!(card.sign_in(&app).await.status(), 200);
        }
        assert_eq!(TestCard::new().sign_in(&app).await.status(), 403);
        // (PostgreSQL's trail starts with the entry that opened its lanes.)
        let events: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_log WHERE event <> 'audit_lanes_opened' ORDER BY id")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(events, ["sign_in", "sign_in", "sign_in", "sign_in_refused"]);
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), None);

        let second: i64 = sqlx::query_scalar("SELECT id FROM audit_log WHERE event = 'sign_in' ORDER BY id LIMIT 1 OFFSET 1")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE id = $1")
            .bind(second)
            .execute(app.db.pool())
            .await
            .unwrap();
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), Some(second));
    }
}

on_both_databases! {
    async fn concurrent_appends_keep_every_lane_unbroken(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let db = app.db.clone();
                tokio::spawn(async move {
                    // Two entries a transaction, with its other work between them and after:
                    // the rows are chained at the commit, so the transactions interleave freely.
                    let mut tx = db.begin_write().await?;
                    audit::append(&mut tx, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({"i": i}))).await?;
                    sqlx::query("SELECT COUNT(*) FROM audit_log").execute(&mut **tx).await?;
                    tokio::task::yield_now().await;
                    audit::append(&mut tx, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({"i": i, "second": true}))).await?;
                    tokio::task::yield_now().await;
                    tx.commit().await?;
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'test_event'").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(count, 40);
        // Each transaction's two rows are next to each other in its lane's chain.
        let details: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log WHERE event = 'test_event' ORDER BY lane, id").fetch_all(app.db.pool()).await.unwrap();
        for pair in details.chunks(2) {
            let (first, second): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(&pair[0]).unwrap(), serde_json::from_str(&pair[1]).unwrap());
            assert_eq!(first["i"], second["i"]);
            assert_eq!(second["second"], true);
        }
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), None);
    }
}

on_both_databases! {
    async fn deleting_the_newest_rows_is_found(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        // More rows than the verifier reads at a time, so the walk crosses pages.
        for i in 0..1205 {
            audit::record(&app.db, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({"i": i})))
                .await
                .unwrap();
        }
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), None);
        let newest: i64 = sqlx::query_scalar("SELECT MAX(id) FROM audit_log").fetch_one(app.db.pool()).await.unwrap();
        // What an intruder covering their tracks would do: the last two rows go, the chain
        // before them is still whole…
        sqlx::query("DELETE FROM audit_log WHERE id >= $1").bind(newest - 1).execute(app.db.pool()).await.unwrap();
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), Some(newest - 1));
        // …and the head is pointed at the new last row: its seal is not the key's.
        sqlx::query("UPDATE audit_head SET hash = (SELECT hash FROM audit_log WHERE id = $1) WHERE id = 1")
            .bind(newest - 2)
            .execute(app.db.pool())
            .await
            .unwrap();
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), Some(newest - 1));
    }
}

on_both_databases! {
    async fn a_chain_recomputed_without_the_key_is_found(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        for i in 0..5 {
            audit::record(&app.db, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({"i": i})))
                .await
                .unwrap();
        }
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> =
            sqlx::query_as("SELECT id, at, actor, event, subject, details FROM audit_log ORDER BY id")
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        // Someone with write access to the database rewrites the second row and recomputes the
        // whole chain after it, and the head, as best they can without the key: the plain
        // SHA-256 chain the rows used to have.
        let mut previous = vec![0u8; 32];
        for (id, at, actor, event, subject, details) in &rows {
            let actor = if *id == rows[1].0 { "someone-else" } else { actor.as_str() };
            let hash = audit::chain_hash(&previous, *at, actor, event, subject.as_deref(), details).to_vec();
            sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3, keyed = 0 WHERE id = $4")
                .bind(actor)
                .bind(&previous)
                .bind(&hash)
                .bind(id)
                .execute(app.db.pool())
                .await
                .unwrap();
            previous = hash;
        }
        sqlx::query("UPDATE audit_head SET hash = $1, seal = NULL WHERE id = 1").bind(&previous).execute(app.db.pool()).await.unwrap();
        assert!(audit::first_broken_row(&app.db).await.unwrap().is_some(), "a chain without the key does not pass");
        // Nor after a restart: every row now says it is unkeyed, but start-up seals only an empty
        // trail, whatever the rows say of themselves.
        app.db.migrate().await.unwrap();
        assert!(audit::first_broken_row(&app.db).await.unwrap().is_some(), "a restart does not seal it");
        // Nor with a key of their own.
        sqlx::query("UPDATE audit_head SET seal = $1 WHERE id = 1").bind(vec![0u8; 32]).execute(app.db.pool()).await.unwrap();
        assert!(audit::first_broken_row(&app.db).await.unwrap().is_some());
    }
}

on_both_databases! {
    async fn rows_appended_while_verifying_are_not_damage(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let writers: Vec<_> = (0..200)
            .map(|i| {
                let db = app.db.clone();
                tokio::spawn(async move {
                    audit::record(&db, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({"i": i})))
                        .await
                })
            })
            .collect();
        for _ in 0..5 {
            assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), None);
        }
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), None);
    }
}
