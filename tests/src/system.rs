//! The system under test: the real backend (in this process, on a free port) serving the real
//! built SPA from `<workspace>/dist`.

use anyhow::{ensure, Context};
use backend::{config::Settings, startup::Application};

use crate::{
    agent::RunningAgent,
    process::{free_port, ChildGuard},
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
    /// Set when the backend runs as the real `backend serve` child process (see
    /// [`RunningBackend::start_process`]), with the settings it was given.
    process: Option<(ChildGuard, Vec<(String, String)>)>,
    /// The database when it is not the data folder's SQLite file.
    database_url: Option<String>,
}

/// The variable the backend's crash points read (its `crash-points` feature).
pub const BACKEND_CRASH_AT: &str = "BACKEND_CRASH_AT";

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
        Ok(Self { url, data_dir, attestation_roots, process: None, database_url: None })
    }

    /// Starts the real `backend serve` as a child process, on SQLite in a fresh data folder,
    /// with `settings` (`SELFSERVICE_*` variables, e.g. `("SELFSERVICE_SMTP_URL", …)`), so that a
    /// test can kill it (`kill -9`, or a crash point) and start another on the same folder.
    pub async fn start_process(settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        std::fs::write(data_dir.path().join("envelope-signing.key"), crate::agent::backend_seed_base64())?;
        let port = free_port()?;
        let mut env: Vec<(String, String)> =
            settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        env.push(("SELFSERVICE_LISTEN".into(), format!("127.0.0.1:{port}")));
        env.push(("SELFSERVICE_DATA_DIR".into(), data_dir.path().display().to_string()));
        env.push(("SELFSERVICE_DIST_DIR".into(), workspace_root().join("dist").display().to_string()));
        let mut backend = Self {
            url: format!("http://127.0.0.1:{port}"),
            data_dir,
            attestation_roots: Vec::new(),
            process: None,
            database_url: settings
                .iter()
                .find(|(k, _)| *k == "SELFSERVICE_DATABASE_URL")
                .map(|(_, v)| (*v).to_owned()),
        };
        backend.spawn(env, None).await?;
        Ok(backend)
    }

    /// Starts the backend process again (after it was killed), crashing at `crash_at` if given.
    pub async fn restart(&mut self, crash_at: Option<&str>) -> anyhow::Result<()> {
        let (child, env) = self.process.take().context("not a backend process")?;
        drop(child);
        self.spawn(env, crash_at).await
    }

    /// `kill -9` of the backend process, as the OOM killer or an operator sends it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let (child, _) = self.process.as_mut().context("not a backend process")?;
        child.kill_hard();
        child.wait_exit(std::time::Duration::from_secs(10)).await?;
        Ok(())
    }

    /// Waits for the backend process to die at its crash point (`SIGKILL`, nothing cleaned up).
    pub async fn crashed(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let (child, _) = self.process.as_mut().context("not a backend process")?;
        let status = child.wait_exit(std::time::Duration::from_secs(30)).await?;
        ensure!(status.signal() == Some(9), "the backend ended with {status}, not at its crash point");
        Ok(())
    }

    async fn spawn(&mut self, env: Vec<(String, String)>, crash_at: Option<&str>) -> anyhow::Result<()> {
        let mut command = std::process::Command::new(workspace_binary("backend")?);
        command.arg("serve").env("SELFSERVICE_LOG", "warn").envs(env.iter().map(|(k, v)| (k, v)));
        command.env_remove(BACKEND_CRASH_AT);
        if let Some(point) = crash_at {
            command.env(BACKEND_CRASH_AT, point);
        }
        let mut child = ChildGuard::spawn("backend", command.stdout(std::process::Stdio::null()))?;
        let health = format!("{}/api/health", self.url);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            child.check_alive()?;
            if reqwest::get(&health).await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            ensure!(std::time::Instant::now() < deadline, "the backend process did not get ready");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.process = Some((child, env));
        Ok(())
    }

    /// Runs `backend admin <args>` (the real binary) on this backend's database.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        self.admin_with_input(args, "")
    }

    /// As [`RunningBackend::admin`], writing `input` to its standard input.
    pub fn admin_with_input(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        self.admin_command(args, input, None)
    }

    /// As [`RunningBackend::admin_with_input`], the command crashing at `crash_at`: `Ok(true)`
    /// when it died there (`SIGKILL`), `Ok(false)` when it ran to the end without reaching it.
    pub fn admin_crashing_at(&self, args: &[&str], input: &str, crash_at: &str) -> anyhow::Result<bool> {
        match self.admin_command(args, input, Some(crash_at)) {
            Ok(_) => Ok(false),
            Err(e) if format!("{e:#}").contains("signal: 9") => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn admin_command(&self, args: &[&str], input: &str, crash_at: Option<&str>) -> anyhow::Result<String> {
        use std::{io::Write, process::Stdio};
        let mut command = std::process::Command::new(workspace_binary("backend")?);
        command.env_remove(BACKEND_CRASH_AT);
        if let Some(point) = crash_at {
            command.env(BACKEND_CRASH_AT, point);
        }
        if !self.attestation_roots.is_empty() {
            // As an operator's environment gives it (an array in figment's syntax).
            let roots: Vec<String> =
                self.attestation_roots.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
            command.env("SELFSERVICE_ATTESTATION_ROOTS", format!("[{}]", roots.join(",")));
        }
        let mut child = command
            .env("SELFSERVICE_DATA_DIR", self.data_dir.path())
            .envs(self.database_url.iter().map(|url| ("SELFSERVICE_DATABASE_URL", url)))
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
        anyhow::ensure!(
            output.status.success(),
            "backend admin {args:?} failed ({}):\n{text}",
            output.status
        );
        Ok(text)
    }

    /// This backend's settings (its data directory holds the SQLite file and local keys).
    pub fn settings(&self) -> Settings {
        Settings {
            data_dir: self.data_dir.path().to_owned(),
            database_url: self.database_url.clone(),
            ..Settings::default()
        }
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
