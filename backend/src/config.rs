//! Typed, layered settings: built-in defaults, then an optional TOML file, then the environment.
//!
//! Environment variables are `SELFSERVICE_<FIELD>` (nested fields joined with `__`), plus the
//! conventional `DATABASE_URL`. Every field is documented in the README's configuration table.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics listener (`GET /metrics`), e.g. `127.0.0.1:9464`; never
    /// served on the public port. Unset: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Folder for the embedded SQLite database and other local state; created on first run.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; unset means the SQLite file `<data_dir>/selfservice.db`.
    pub database_url: Option<String>,
    /// The built SPA (`trunk build` output) served at `/`; if it is missing only the API is served.
    pub dist_dir: PathBuf,
    /// WebSocket URLs of the card agent that the SPA may open (they go into the CSP's connect-src).
    pub agent_urls: Vec<String>,
    /// Default `tracing` filter; `RUST_LOG` overrides it.
    pub log: String,
    /// `text` (for people) or `json` (one object a line, for a log collector).
    pub log_format: LogFormat,
    /// Behind a proxy that gives each request an id: the header it sets (e.g. `x-request-id`),
    /// used as the request's id in logs and the response. Unset: ids are generated, and such a
    /// header from a client is ignored.
    pub request_id_header: Option<String>,
    /// The address people use (e.g. `https://selfservice.example.nhs.uk` behind a TLS proxy):
    /// links in emails, and `https` here makes the session cookie `Secure`. Unset: the listen URL.
    pub public_url: Option<String>,
    /// Outgoing mail server: `smtps://host[:465]` (TLS from the start), `smtp+starttls://host[:587]`
    /// (STARTTLS, required), or `smtp://host[:25]` (plain, for a relay on the same host); user and
    /// password may go before the host and are only ever sent over TLS on the first two.
    /// Unset: mail is written as `.eml` files to `<data_dir>/mail`.
    pub smtp_url: Option<String>,
    /// PEM file of the CA that signed the mail relay's certificate (an internal relay); set, only
    /// it is trusted for `smtps://` and `smtp+starttls://`. Unset: the public web PKI roots.
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender of every email.
    pub mail_from: String,
    /// If not empty, registration emails must be at one of these domains (or a subdomain).
    pub email_domains: Vec<String>,
    /// 32 random bytes, base64, the same on every instance: keys the hashes of one-time codes.
    /// Unset: generated once into `<data_dir>/secret.key`.
    pub secret_key: Option<String>,
    /// The key-encryption key for PUKs at rest: 32 bytes, base64, from a secret store, never in
    /// the repository. Unset: generated once into `<data_dir>/puk.kek` (embedded default only).
    pub puk_kek: Option<String>,
    /// Further KEKs (base64) that open secrets but never seal: the next key, on every instance,
    /// before `backend admin rotate-kek` runs; the previous one until every instance has moved.
    pub puk_kek_others: Vec<String>,
    /// The folder of the CA that certifies issued cards' keys (`ca.key.pem`, `ca.cert.pem`).
    /// Unset: `<data_dir>/ca`, created on first use (embedded default only).
    pub ca_dir: Option<PathBuf>,
    /// The Ed25519 key the backend signs envelopes with: a 32-byte seed, base64, from a secret
    /// store, the same on every instance. Card agents trust its public half for this site's
    /// origin (`backend admin envelope-key` prints it). Unset: generated once into
    /// `<data_dir>/envelope-signing.key` (embedded default only).
    pub envelope_signing_key: Option<String>,
    /// PEM files of the card makers' attestation roots (e.g. Yubico's PIV root). Set: the CA
    /// certifies only keys a card attests it generated, under one of these. Unset: issuance is
    /// not attested (the audit trail says so).
    pub attestation_roots: Vec<PathBuf>,
    /// How many of the holder's 4 questions an unlock asks (2–4).
    pub unlock_questions: u8,
    /// Off by default. On: a holder who never registered can still unlock, in the style of NHS
    /// England's 2023 service — the unlock code goes to the contact email on their record (set
    /// by the RA, so verified) instead of asking questions they never chose.
    pub unlock_without_registration: bool,
    /// Requests a second one client address may make to the API, on average…
    pub rate_limit_per_second: u32,
    /// …and at once after a quiet spell. Over it: 429 with `Retry-After`.
    pub rate_limit_burst: u32,
    /// Requests a second the whole API takes from everyone together.
    pub global_rate_limit_per_second: u32,
    /// Behind a reverse proxy: the header it puts the client's address in (e.g.
    /// `x-forwarded-for`; its last entry, the one the proxy added, is used). Unset: the address
    /// the connection comes from; such a header from a client is ignored, never trusted.
    pub client_address_header: Option<String>,
    /// Longest a request may take before it is answered 503; the client can try again.
    pub request_timeout_seconds: u64,
    /// Requests served at once; more wait their turn (the database pool and the argon2 pool
    /// bound the work anyway; this bounds the memory of what waits).
    pub max_concurrent_requests: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            dist_dir: PathBuf::from("dist"),
            agent_urls: vec!["ws://127.0.0.1:47101".into(), "ws://localhost:47101".into()],
            log: "info,sqlx=warn,tower_http=info".into(),
            log_format: LogFormat::Text,
            request_id_header: None,
            public_url: None,
            smtp_url: None,
            smtp_ca_file: None,
            mail_from: "Smartcard Self-Service <no-reply@selfservice.localhost>".into(),
            email_domains: Vec::new(),
            secret_key: None,
            puk_kek: None,
            puk_kek_others: Vec::new(),
            ca_dir: None,
            envelope_signing_key: None,
            attestation_roots: Vec::new(),
            unlock_questions: 3,
            unlock_without_registration: false,
            rate_limit_per_second: 20,
            rate_limit_burst: 100,
            global_rate_limit_per_second: 2000,
            client_address_header: None,
            request_timeout_seconds: 30,
            max_concurrent_requests: 1024,
        }
    }
}

impl Settings {
    /// Defaults → `file` (if given; it must exist) → environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        Self::figment(file, Env::prefixed("SELFSERVICE_"), Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .map_err(Box::new)
    }

    fn figment(file: Option<&Path>, prefixed: Env, raw: Env) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            // SELFSERVICE_CONFIG names the file itself (read by the CLI), not a field.
            .merge(prefixed.ignore(&["CONFIG"]).split("__"))
            .merge(raw.map(|_| "database_url".into()))
    }

    /// The CA's folder: `ca_dir`, or `<data_dir>/ca`.
    pub fn ca_dir(&self) -> PathBuf {
        self.ca_dir.clone().unwrap_or_else(|| self.data_dir.join("ca"))
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Cookies are `Secure` whenever people reach the service over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// The database URL in effect, with the embedded default resolved.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("selfservice.db").display()),
        }
    }

    /// The settings as JSON with any password in the database URL replaced by `***`.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        let mut copy = self.clone();
        copy.database_url = Some(redact_url_password(&self.effective_database_url()));
        copy.smtp_url = self.smtp_url.as_deref().map(redact_url_password);
        copy.secret_key = self.secret_key.as_ref().map(|_| "***".to_owned());
        copy.puk_kek = self.puk_kek.as_ref().map(|_| "***".to_owned());
        copy.puk_kek_others = self.puk_kek_others.iter().map(|_| "***".to_owned()).collect();
        copy.envelope_signing_key = self.envelope_signing_key.as_ref().map(|_| "***".to_owned());
        Ok(serde_json::to_string_pretty(&copy)?)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The user-info ends at the last '@' (a password may contain '@').
    let redacted = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    // sqlx also takes `?password=…`.
    match redacted.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> =
                query
                    .split('&')
                    .map(|pair| {
                        if pair.starts_with("password=") {
                            "password=***".to_owned()
                        } else {
                            pair.to_owned()
                        }
                    })
                    .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => redacted,
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment::Jail's closure signature is fixed")]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_defaults_file_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "listen = \"127.0.0.1:9000\"\ndist_dir = \"web\"\n")?;
            jail.set_env("SELFSERVICE_DIST_DIR", "from-env");
            jail.set_env("DATABASE_URL", "postgres://u:p@h/db");
            let s = Settings::load(Some(Path::new("s.toml"))).map_err(|e| *e)?;
            assert_eq!(s.listen.port(), 9000, "file overrides default");
            assert_eq!(s.dist_dir, PathBuf::from("from-env"), "environment overrides file");
            assert_eq!(s.database_url.as_deref(), Some("postgres://u:p@h/db"));
            assert_eq!(s.data_dir, PathBuf::from("data"), "untouched fields keep defaults");
            Ok(())
        });
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "lisen = \"127.0.0.1:9000\"\n")?;
            let err = Settings::load(Some(Path::new("s.toml"))).expect_err("typo must fail");
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_settings_file_is_an_error() {
        figment::Jail::expect_with(|_| {
            assert!(Settings::load(Some(Path::new("absent.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn sqlite_is_the_embedded_default() {
        let s = Settings::default();
        assert_eq!(s.effective_database_url(), "sqlite://data/selfservice.db?mode=rwc");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url_password("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact_url_password("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url_password("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url_password("postgres://h/db?user=u&password=s"),
            "postgres://h/db?user=u&password=***"
        );
    }
}
