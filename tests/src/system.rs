//! The system under test: the real backend (in this process, on a free port) serving the real
//! built SPA from `<workspace>/dist`.

use anyhow::{ensure, Context};
use backend::{config::Settings, startup::Application};

use crate::{
    agent::RunningAgent,
    process::free_port,
    smartcard::{run_ok, workspace_binary, CardFile},
    smtp::SmtpServer,
    workspace_root,
};

/// Everything a browser journey runs against: the card agent allowing the site's origin, a real
/// SMTP server, and the backend on that origin, knowing the agent's URL and sending mail there.
#[derive(Debug)]
pub struct Site {
    pub agent: RunningAgent,
    pub smtp: SmtpServer,
    pub backend: RunningBackend,
}

impl Site {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// As [`Site::start`], with the backend's settings adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let port = free_port()?;
        let origin = format!("http://127.0.0.1:{port}");
        let key = crate::agent::envelope_key_flag(&origin);
        let agent = RunningAgent::start_with(&[
            "--allow-origin".as_ref(),
            origin.as_ref(),
            "--envelope-key".as_ref(),
            key.as_ref(),
        ])
        .await?;
        let smtp = SmtpServer::start()?;
        let (agent_url, smtp_url) = (agent.url(), smtp.url());
        let backend = RunningBackend::start_with(|s| {
            s.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            s.agent_urls = vec![agent_url];
            s.smtp_url = Some(smtp_url);
            configure(s);
        })
        .await?;
        Ok(Self { agent, smtp, backend })
    }
}

#[derive(Debug)]
pub struct RunningBackend {
    pub url: String,
    data_dir: tempfile::TempDir,
    /// Passed on to `backend admin` (which reads the rest of its settings from the data folder).
    attestation_roots: Vec<std::path::PathBuf>,
}

impl RunningBackend {
    /// Starts the backend on SQLite in a fresh data directory, serving `dist/`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// As [`RunningBackend::start`], with settings adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let dist = workspace_root().join("dist");
        ensure!(
            dist.join("index.html").is_file(),
            "{} has no built SPA: run scripts/test.sh (it runs trunk build first)",
            dist.display()
        );
        let data_dir = tempfile::tempdir()?;
        // The key the test agents trust; kept in the data folder so `backend admin` uses it too.
        std::fs::write(data_dir.path().join("envelope-signing.key"), crate::agent::backend_seed_base64())?;
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse()?,
            data_dir: data_dir.path().to_owned(),
            dist_dir: dist,
            ..Settings::default()
        };
        configure(&mut settings);
        let attestation_roots = settings.attestation_roots.clone();
        let app = Application::build(settings).await.context("Failed to start the backend")?;
        let url = app.url();
        tokio::spawn(app.run_until_stopped());
        Ok(Self { url, data_dir, attestation_roots })
    }

    /// Runs `backend admin <args>` (the real binary) on this backend's database.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        self.admin_with_input(args, "")
    }

    /// As [`RunningBackend::admin`], writing `input` to its standard input.
    pub fn admin_with_input(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        use std::{io::Write, process::Stdio};
        let mut command = std::process::Command::new(workspace_binary("backend")?);
        if !self.attestation_roots.is_empty() {
            // As an operator's environment gives it (an array in figment's syntax).
            let roots: Vec<String> =
                self.attestation_roots.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
            command.env("SELFSERVICE_ATTESTATION_ROOTS", format!("[{}]", roots.join(",")));
        }
        let mut child = command
            .env("SELFSERVICE_DATA_DIR", self.data_dir.path())
            .arg("admin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        anyhow::ensure!(output.status.success(), "backend admin {args:?} failed:\n{text}");
        Ok(text)
    }

    /// This backend's settings (its data directory holds the SQLite file and local keys).
    pub fn settings(&self) -> Settings {
        Settings { data_dir: self.data_dir.path().to_owned(), ..Settings::default() }
    }

    /// Creates a user and binds the (personalised) card to them with the admin commands, as
    /// the run command's bootstrap does. Returns the card's GUID.
    pub fn issue_card(
        &self,
        card: &CardFile,
        user_id: &str,
        name: &str,
        email: &str,
    ) -> anyhow::Result<String> {
        self.issue_card_with_roles(card, user_id, name, email, &[])
    }

    /// As [`RunningBackend::issue_card`], for a person with `roles` (e.g. `ra`).
    pub fn issue_card_with_roles(
        &self,
        card: &CardFile,
        user_id: &str,
        name: &str,
        email: &str,
        roles: &[&str],
    ) -> anyhow::Result<String> {
        let export = card.dir.path().join("export");
        run_ok(
            std::process::Command::new(workspace_binary("virtual-card")?)
                .arg("export")
                .arg("--state")
                .arg(&card.state)
                .arg("--out-dir")
                .arg(&export),
        )?;
        let guid = std::fs::read_to_string(export.join("guid"))?;
        let mut add = vec!["add-user", "--user-id", user_id, "--name", name, "--email", email];
        for role in roles {
            add.extend(["--role", role]);
        }
        self.admin(&add)?;
        // The virtual card's initial PUK, as the run command records it.
        self.bind_card(card, user_id, &guid, "12345678")?;
        Ok(guid)
    }

    /// `backend admin bind-card … --puk-stdin` for a card exported by [`RunningBackend::issue_card`].
    pub fn bind_card(&self, card: &CardFile, user_id: &str, guid: &str, puk: &str) -> anyhow::Result<String> {
        let export = card.dir.path().join("export");
        let (piv_auth, card_auth) = (export.join("piv-auth.pem"), export.join("card-auth.pem"));
        self.admin_with_input(
            &[
                "bind-card",
                "--user-id",
                user_id,
                "--guid",
                guid,
                "--piv-auth-cert",
                &piv_auth.to_string_lossy(),
                "--card-auth-cert",
                &card_auth.to_string_lossy(),
                "--puk-stdin",
            ],
            &format!("{puk}\n"),
        )
    }

    /// An HTTP client that behaves like the SPA in a browser: cookies, and this site's Origin.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.url.parse()?);
        Ok(reqwest::Client::builder().cookie_store(true).default_headers(headers).build()?)
    }
}
