//! A real SMTP server process for the tests: Debian's aiosmtpd, delivering into a Maildir.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SmtpServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { port, maildir: dir.path().join("Maildir"), child: None, _dir: dir };
        server.restart();
        server
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
    pub fn restart(&mut self) {
        self.stop();
        // Debian's python3 (not one a version manager put first on PATH) has the package.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd (Debian package python3-aiosmtpd; scripts/install.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
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
    pub async fn wait_for(&self, to: &str, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<String> =
                self.messages().into_iter().filter(|m| m.contains(to) && m.contains(needle)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} containing {needle:?}; got {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The 8-digit code in a message ("…code is: 12345678").
pub fn code_in(message: &str) -> String {
    let at = message.find("code is: ").expect("a code in the message") + "code is: ".len();
    message[at..at + 8].to_owned()
}
