//! Upgrades: a database an older release left behind migrates without losing what is in it.

use backend::{config::Settings, db::Database};

use crate::{
    helpers::{fresh_postgres_database, Engine},
    on_both_databases,
};

on_both_databases! {
    async fn the_questions_of_attempts_in_progress_survive_the_move_to_rows(engine: Engine) {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings { data_dir: data_dir.path().join("data"), ..Settings::default() };
        if let Engine::Postgres = engine {
            settings.database_url = Some(fresh_postgres_database().await);
        }
        let db = Database::connect(&settings).await.unwrap();
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
