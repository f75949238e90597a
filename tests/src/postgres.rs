//! A PostgreSQL server process of a test's own (Debian's package), which the test may stop and
//! start again: the one `scripts/test.sh` starts is shared by every test and must stay up.
//! (Also compiled into the backend's API tests, by path: it uses only std, tempfile and anyhow.)

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{ensure, Context};

/// Where Debian's `postgresql` package puts the server programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

#[derive(Debug)]
pub struct PostgresServer {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// A fresh cluster (`initdb`) on a free port, started.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("selfservice-test-pg").tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = Self { port, dir };
        // PostgreSQL refuses to run as root; the package's `postgres` user owns the cluster then.
        if is_root() {
            run(Command::new("chown").arg("postgres:").arg(server.dir.path()))?;
        }
        let data = server.data();
        run(server
            .as_owner("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data))?;
        server.start_again()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m fast`: every connection is closed, as in a restart for maintenance.
    pub fn stop(&self) -> anyhow::Result<()> {
        run(self.as_owner("pg_ctl").args(["-w", "-m", "fast", "stop", "-D"]).arg(self.data()))
    }

    /// Starts the stopped server on the same port and data.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_owner("pg_ctl")
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .arg("start"))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_owner(&self, program: &str) -> Command {
        let path = Path::new(PG_BIN).join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.as_owner("pg_ctl").args(["-m", "immediate", "stop", "-D"]).arg(self.data()).output();
    }
}

fn is_root() -> bool {
    // `id -u`, without a libc dependency for one call.
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{command:?}: is PostgreSQL installed? (scripts/install.sh)"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
