//! `TestApp`: the real application spawned on port 0 over a fresh database.

use std::path::Path;

use backend::{config::Settings, db::Database, startup::Application};
use sqlx::{Connection, PgConnection};

/// Fails the test if an API answer is not what the OpenAPI document says it is (its status
/// documented for the route, its body of the status's schema); the answer, unread, otherwise.
pub async fn documented(method: &str, path: &str, response: reqwest::Response) -> reqwest::Response {
    if !path.starts_with("/api/") {
        return response;
    }
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a body");
    if let Err(problem) = backend::openapi::check_response(method, path, status.as_u16(), &body) {
        panic!("the answer breaks the OpenAPI document: {problem}\n{}", String::from_utf8_lossy(&body));
    }
    let mut rebuilt = http::Response::builder().status(status);
    for (name, value) in &headers {
        rebuilt = rebuilt.header(name, value);
    }
    reqwest::Response::from(rebuilt.body(body).expect("the same answer"))
}

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Database,
    pub settings: Settings,
    /// The app's Prometheus listener (`…/metrics`); every test app has one.
    pub metrics_url: Option<String>,
    _data_dir: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, |_| {}).await
    }

    /// Spawns with settings adjusted by `configure` (after the test defaults are applied).
    pub async fn spawn_with(engine: Engine, configure: impl FnOnce(&mut Settings)) -> Self {
        backend::telemetry::init("warn");
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: data_dir.path().join("data"),
            dist_dir: data_dir.path().join("no-dist"),
            // The tests fire dozens of requests at once from one address; the limits have their own.
            rate_limit_per_second: 10_000,
            rate_limit_burst: 10_000,
            metrics_listen: Some("127.0.0.1:0".parse().expect("address")),
            ..Settings::default()
        };
        if let Engine::Postgres = engine {
            settings.database_url = Some(fresh_postgres_database().await);
        }
        configure(&mut settings);
        let app = Application::build(settings.clone()).await.expect("application builds");
        let address = app.url();
        let metrics_url = app.metrics_url();
        let db = Database::connect(&settings).await.expect("second pool");
        tokio::spawn(app.run_until_stopped());
        let client = Self::browser_like_client(&address);
        Self { address, client, db, settings, metrics_url, _data_dir: Some(data_dir) }
    }

    /// Keeps cookies and sends this site's `Origin`, as the SPA in a browser does.
    pub fn browser_like_client(address: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, address.parse().expect("origin header"));
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .default_headers(headers)
            .build()
            .expect("client")
    }

    pub async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> reqwest::Response {
        let response = self.client.post(format!("{}{path}", self.address)).json(body).send().await;
        documented("POST", path, response.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        documented(
            "GET",
            path,
            self.client.get(format!("{}{path}", self.address)).send().await.expect("request"),
        )
        .await
    }

    /// The same database and data folder, served by another backend at `address` (a second
    /// instance, or the real binary run as a child process); a client of its own.
    pub fn through(&self, address: &str) -> TestApp {
        TestApp {
            address: address.to_owned(),
            client: Self::browser_like_client(address),
            db: self.db.clone(),
            settings: self.settings.clone(),
            metrics_url: None,
            _data_dir: None,
        }
    }

    /// The real `backend` binary, set to this app's database and data folder (and nothing of the
    /// environment's own `SELFSERVICE_*` settings).
    pub fn backend_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_backend"));
        command.env_remove("DATABASE_URL");
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SELFSERVICE_")) {
            command.env_remove(name);
        }
        command.env("SELFSERVICE_DATA_DIR", &self.settings.data_dir);
        if let Some(url) = &self.settings.database_url {
            command.env("SELFSERVICE_DATABASE_URL", url);
        }
        command
    }

    /// Runs `backend admin …` as an operator would on the server; its exit status and output.
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        self.backend_command()
            .arg("admin")
            .args(args)
            .env("SELFSERVICE_LOG", "warn")
            .output()
            .expect("backend admin runs")
    }

    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// The key this backend signs envelopes with, as an agent configured for it trusts it.
    pub fn trusted(&self) -> [envelope::TrustedKey; 1] {
        [backend::trust::envelope_signer(&self.settings).expect("signing key").trusted_key()]
    }
}

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts a PostgreSQL server, \
         or point it at one (postgres://user@host:port/postgres)",
    )
}

/// A connection to the test server's maintenance database.
pub async fn admin_connection() -> PgConnection {
    PgConnection::connect(&admin_url()).await.expect("connect to test PostgreSQL")
}

/// Creates an empty database on the test PostgreSQL server and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = admin_url();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection().await;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database path");
    format!("{base}/{name}")
}

/// Defines `mod $name { sqlite(); postgres(); }` running the same async body on both engines.
#[macro_export]
macro_rules! on_both_databases {
    ($(#[$meta:meta])* async fn $name:ident($engine:ident: Engine) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($engine: $crate::helpers::Engine) $body
            #[tokio::test]
            async fn sqlite() { run($crate::helpers::Engine::Sqlite).await }
            #[tokio::test]
            async fn postgres() { run($crate::helpers::Engine::Postgres).await }
        }
    };
}

/// The status and the error code of an error response, as the wire spells it: the tests pin the
/// API's contract, not the enum's Rust names.
pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("an error envelope");
    let code = body["code"].as_str().expect("a string code in the error envelope").to_owned();
    (status, code)
}
