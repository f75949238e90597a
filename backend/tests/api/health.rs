//! `GET /api/health` and the API's error envelope.

use protocol::api::{ApiErrorBody, Health, HealthStatus};

use crate::{
    helpers::{admin_connection, Engine, TestApp},
    on_both_databases,
};

on_both_databases! {
    async fn health_reports_version_database_and_applied_schema(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let response = app.get("/api/health").await;
        assert_eq!(response.status(), 200);
        let health: Health = response.json().await.unwrap();
        assert_eq!(health.status, HealthStatus::Ok);
        assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
        assert!(health.database.reachable);
        let expected_kind = match engine { Engine::Sqlite => "sqlite", Engine::Postgres => "postgres" };
        assert_eq!(health.database.kind, expected_kind);
        assert!(health.database.schema_version.is_some_and(|v| v >= 1), "migrations ran at start-up");
    }
}

#[tokio::test]
async fn health_is_503_degraded_when_the_database_refuses_connections() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let name: String =
        sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)").fetch_one(app.db.pool()).await.unwrap();
    // From the server's maintenance database: refuse new connections, then cut the open ones.
    let mut admin = admin_connection().await;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        .execute(&mut admin)
        .await
        .unwrap();
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 503);
    let health: Health = response.json().await.unwrap();
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(!health.database.reachable);
}

on_both_databases! {
    async fn unknown_api_routes_get_a_json_404_not_the_spa(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let response = app.get("/api/no-such-route").await;
        assert_eq!(response.status(), 404);
        let body: ApiErrorBody = response.json().await.unwrap();
        assert_eq!(body.code, protocol::error_code::ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn the_sqlite_file_and_data_directory_are_created_on_first_run() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    assert!(app.data_dir().join("selfservice.db").is_file());
}

on_both_databases! {
    async fn the_client_config_names_the_first_allowed_agent_url(engine: Engine) {
        let app = TestApp::spawn_with(engine, |s| s.agent_urls = vec!["ws://127.0.0.1:47999".into()]).await;
        let config: protocol::api::ClientConfig = app.get("/api/client-config").await.json().await.unwrap();
        assert_eq!(config.agent_url, "ws://127.0.0.1:47999");
    }
}
