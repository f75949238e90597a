//! A real SMTP server process for the tests: Debian's aiosmtpd, delivering into a Maildir.
//! (Also compiled into the backend's API tests, by path: it uses only std, tempfile, tokio and
//! anyhow, which both crates have.)

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    /// What `/usr/bin/python3` runs (the port and Maildir follow from the fields).
    program: Program,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
enum Program {
    /// aiosmtpd's command line, with these TLS flags (none: plain SMTP).
    Cli { tls: Vec<String> },
    /// `smtp_auth.py`: STARTTLS and AUTH required, with this certificate, key, user and password.
    Auth { cert: PathBuf, key: PathBuf, user: String, password: String },
}

/// TLS for the test server: a certificate and key (PEM files).
#[derive(Debug, Clone, Copy)]
pub enum SmtpTls<'a> {
    /// `smtps://`: TLS from the first byte.
    Implicit { cert: &'a std::path::Path, key: &'a std::path::Path },
    /// STARTTLS, required before any mail is taken.
    StartTls { cert: &'a std::path::Path, key: &'a std::path::Path },
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SmtpServer {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    pub fn start_with(tls: Option<SmtpTls<'_>>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let flags = |cert_flag: &str, key_flag: &str, cert: &std::path::Path, key: &std::path::Path| {
            vec![
                cert_flag.to_owned(),
                cert.display().to_string(),
                key_flag.to_owned(),
                key.display().to_string(),
            ]
        };
        let tls = match tls {
            None => Vec::new(),
            Some(SmtpTls::Implicit { cert, key }) => flags("--smtpscert", "--smtpskey", cert, key),
            Some(SmtpTls::StartTls { cert, key }) => flags("--tlscert", "--tlskey", cert, key),
        };
        Self::start_program(dir, port, Program::Cli { tls })
    }

    /// A relay as organisations run them: STARTTLS required, then AUTH with `user`/`password`.
    pub fn start_authenticating(
        cert: &std::path::Path,
        key: &std::path::Path,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let program = Program::Auth {
            cert: cert.into(),
            key: key.into(),
            user: user.into(),
            password: password.into(),
        };
        Self::start_program(dir, port, program)
    }

    fn start_program(dir: tempfile::TempDir, port: u16, program: Program) -> anyhow::Result<Self> {
        let mut server = Self { port, maildir: dir.path().join("Maildir"), program, child: None, _dir: dir };
        server.restart()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and Maildir.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        // Debian's python3 (not one a version manager put first on PATH) has the package.
        let mut command = Command::new("/usr/bin/python3");
        match &self.program {
            Program::Cli { tls } => command
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
                .args(tls)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&self.maildir),
            // Both crates that build this file sit beside `tests/` in the workspace.
            Program::Auth { cert, key, user, password } => command
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/src/smtp_auth.py"))
                .arg(self.port.to_string())
                .args([cert, key, &self.maildir])
                .args([user, password]),
        };
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| {
            anyhow::anyhow!("aiosmtpd (python3-aiosmtpd; scripts/install.sh installs it): {e}")
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The messages delivered to `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.messages().into_iter().filter(|m| m.contains(&format!("To: {to}"))).collect()
    }

    /// Every delivered message, raw, with quoted-printable soft line breaks joined.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        let mut messages: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                let text = std::fs::read_to_string(e.path()).ok()?;
                Some((modified, text.replace("=\r\n", "").replace("=\n", "")))
            })
            .collect();
        messages.sort();
        messages.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits for the `n`-th message (1-based) to `to` whose text contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str, n: usize) -> anyhow::Result<String> {
        self.wait_for_within(to, needle, n, Duration::from_secs(30)).await
    }

    /// As [`SmtpServer::wait_for`], waiting up to `timeout` (a sender backing off after an outage).
    pub async fn wait_for_within(
        &self,
        to: &str,
        needle: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<String> =
                self.messages().into_iter().filter(|m| m.contains(to) && m.contains(needle)).collect();
            if let Some(message) = found.get(n.saturating_sub(1)) {
                return Ok(message.clone());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no mail to {to} containing {needle:?}; got {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The 8-digit code in a message ("…code is: 12345678").
pub fn code_in(message: &str) -> anyhow::Result<String> {
    let at =
        message.find("code is: ").ok_or_else(|| anyhow::anyhow!("no code in {message}"))? + "code is: ".len();
    message.get(at..at + 8).map(str::to_owned).ok_or_else(|| anyhow::anyhow!("a short code in {message}"))
}
