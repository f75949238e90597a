//! `backend admin backup`: a consistent copy of the embedded database, taken while the service
//! runs, that a backend opens as it is; PostgreSQL is pointed to its own tools.

use backend::{config::Settings, db::Database};

use crate::{
    cards::TestCard,
    helpers::{Engine, TestApp},
    on_both_databases,
};

on_both_databases! {
    async fn a_backup_taken_while_running_opens_as_the_database_it_copied(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "720000000001", "Bea Backup", "bea@nhs.net").await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("copy.db");
        let path = file.to_str().unwrap();
        let taken = app.admin(&["backup", path]);
        let (out, err) = (String::from_utf8_lossy(&taken.stdout), String::from_utf8_lossy(&taken.stderr));
        if let Engine::Postgres = engine {
            assert!(!taken.status.success() && err.contains("pg_dump"), "{out}{err}");
            assert!(!file.exists());
            return;
        }
        assert!(taken.status.success(), "{out}{err}");
        // The service carries on, and the copy is a database a backend opens (restore = put it back).
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let restored = Settings { database_url: Some(format!("sqlite://{path}")), ..app.settings.clone() };
        let db = Database::connect(&restored).await.unwrap();
        db.migrate().await.unwrap();
        let name: String = sqlx::query_scalar("SELECT name FROM users WHERE user_id = '720000000001'")
            .fetch_one(db.pool()).await.unwrap();
        assert_eq!(name, "Bea Backup");
        assert!(backend::audit::first_broken_row(&db).await.unwrap().is_none(), "its audit chain holds");
        // Never over an existing file.
        let again = app.admin(&["backup", path]);
        assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));
    }
}
