//! Upgrades: a database an older release left behind migrates without losing what is in it.

use backend::{config::Settings, db::Database};

use crate::{
    helpers::{fresh_postgres_database, Engine},
    on_both_databases,
};

/// A database of `engine` with no migrations run yet, and the folder its SQLite file lives in.
async fn unmigrated(engine: Engine) -> (tempfile::TempDir, Database) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings { data_dir: data_dir.path().join("data"), ..Settings::default() };
    if let Engine::Postgres = engine {
        settings.database_url = Some(fresh_postgres_database().await);
    }
    let db = Database::connect(&settings).await.unwrap();
    (data_dir, db)
}

/// Audit rows `(at, event)` straight into the table, in one statement, as a bulk load would.
async fn write_audit_rows(db: &Database, rows: &[(i64, &str)], tag: &str) {
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (at, event))| format!("({at}, 'system', '{event}', '{{}}', $1, ${}, 0)", i + 2))
        .collect();
    let sql = format!(
        "INSERT INTO audit_log (at, actor, event, details, prev_hash, hash, keyed) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(vec![0u8; 32]);
    for i in 0..rows.len() {
        query = query.bind(format!("{tag}{i}").into_bytes());
    }
    query.execute(db.pool()).await.unwrap();
}

on_both_databases! {
    async fn the_questions_of_attempts_in_progress_survive_the_move_to_rows(engine: Engine) {
        let (_data_dir, db) = unmigrated(engine).await;
        db.migrate_through(7).await.unwrap();
        sqlx::query("INSERT INTO users (user_id, name, roles, created_at) VALUES ('u1', 'Fay Holder', '', 0)")
            .execute(db.pool())
            .await
            .unwrap();
        for (id, list) in [("asking", "11,3,7"), ("free", "")] {
            sqlx::query(
                "INSERT INTO unlock_attempts (id, user_ref, card_guid, question_ids, status, created_at, expires_at) \
                 VALUES ($1, (SELECT id FROM users), '00112233445566778899aabbccddeeff', $2, 'questions', 0, 9999999999)",
            )
            .bind(id)
            .bind(list)
            .execute(db.pool())
            .await
            .unwrap();
        }

        db.migrate().await.unwrap();
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT attempt_id, position, question_id FROM unlock_attempt_questions ORDER BY attempt_id, position",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let asked: Vec<i64> = rows.iter().map(|(_, _, q)| *q).collect();
        assert_eq!(asked, [11, 3, 7], "in the order asked: {rows:?}");
        assert!(rows.iter().all(|(id, _, _)| id == "asking"), "none for a registration-free attempt");
        assert!(rows.windows(2).all(|w| w[0].1 < w[1].1));
    }
}

on_both_databases! {
    async fn the_reports_day_counts_cover_an_older_trail_and_every_later_row(engine: Engine) {
        let (_data_dir, db) = unmigrated(engine).await;
        db.migrate_through(13).await.unwrap();
        let day = 20_000 * 86_400;
        let older = [(day, "card_unlocked"), (day + 86_399, "card_unlocked"), (day + 86_400, "card_unlocked"), (day + 5, "sign_in")];
        write_audit_rows(&db, &older, "old").await;

        db.migrate().await.unwrap();
        let later = [(day + 10, "card_unlocked"), (day + 86_401, "sign_in"), (day + 86_402, "sign_in")];
        write_audit_rows(&db, &later, "new").await;

        let counted: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT day, event, n FROM audit_daily WHERE event <> 'audit_lanes_opened' ORDER BY day, event").fetch_all(db.pool()).await.unwrap();
        let grouped: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT at / 86400, event, COUNT(*) FROM audit_log WHERE event <> 'audit_lanes_opened' GROUP BY at / 86400, event ORDER BY 1, 2",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert_eq!(counted, grouped);
        let unlocks_and_signins: Vec<(i64, String, i64)> =
            [(20_000, "card_unlocked", 3), (20_000, "sign_in", 1), (20_001, "card_unlocked", 1), (20_001, "sign_in", 2)]
                .map(|(d, e, n)| (d, e.to_owned(), n))
                .to_vec();
        assert_eq!(counted, unlocks_and_signins);
    }
}

on_both_databases! {
    async fn a_trail_from_before_the_lanes_verifies_after_them_and_takes_new_rows(engine: Engine) {
        let (_data_dir, db) = unmigrated(engine).await;
        db.migrate_through(15).await.unwrap();
        // A chain the release before the key left (its rows' plain SHA-256 hashes, its head
        // never sealed): the oldest trail an upgrade meets.
        let mut previous = vec![0u8; 32];
        for i in 0..3_i64 {
            let details = format!(r#"{{"i":{i}}}"#);
            let hash = backend::audit::chain_hash(&previous, 1_700_000_000 + i, "system", "sign_in", None, &details).to_vec();
            sqlx::query("INSERT INTO audit_log (at, actor, event, details, prev_hash, hash) VALUES ($1, 'system', 'sign_in', $2, $3, $4)")
                .bind(1_700_000_000 + i)
                .bind(&details)
                .bind(&previous)
                .bind(&hash)
                .execute(db.pool())
                .await
                .unwrap();
            previous = hash;
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&previous).execute(db.pool()).await.unwrap();

        db.migrate().await.unwrap();
        // Start-up does not seal a trail it finds unsealed (it cannot tell it from one someone
        // unsealed); the operator does, once.
        assert!(backend::audit::first_broken_row(&db).await.unwrap().is_some());
        // The service records meanwhile, all of it on lane 1: the other lanes are not open yet.
        for _ in 0..3 {
            backend::audit::record(&db, backend::audit::Entry::new(backend::audit::SYSTEM, "test_event")).await.unwrap();
        }
        let off_lane_one: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE lane <> 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(off_lane_one, 0);
        assert!(backend::audit::seal_as_it_stands(&db).await.unwrap());
        assert!(!backend::audit::seal_as_it_stands(&db).await.unwrap(), "once");
        assert_eq!(backend::audit::first_broken_row(&db).await.unwrap(), None);
        let sealed: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_head WHERE seal IS NOT NULL ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let lanes = backend::audit::lanes(db.kind());
        assert_eq!(sealed, (1..=lanes).collect::<Vec<_>>(), "every lane sealed");
        backend::audit::record(&db, backend::audit::Entry::new(backend::audit::SYSTEM, "test_event")).await.unwrap();
        assert_eq!(backend::audit::first_broken_row(&db).await.unwrap(), None);
        let opened: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = $1 AND lane = 1")
            .bind(backend::audit::LANES_OPENED)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(opened, i64::from(lanes > 1), "the lanes' opening is on lane 1's record");
    }
}
