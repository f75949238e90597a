//! The programs measured, started as the operator starts them (`backend serve`, `card-agent`),
//! and what Linux says they use: resident memory and CPU time from `/proc/<pid>`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// A child process, killed when dropped so a failed run leaves nothing behind.
#[derive(Debug)]
pub struct Running {
    child: Child,
    name: &'static str,
}

impl Running {
    pub fn spawn(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command.spawn().with_context(|| format!("Failed to start {name} ({command:?})"))?;
        Ok(Self { child, name })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory now, in MB (VmRSS).
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// User and system CPU time so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)?.1)
}

/// A `/proc/.../stat` line's command name and its user + system CPU time in seconds.
fn stat_cpu(stat: &str) -> anyhow::Result<(&str, f64)> {
    // The command name (field 2) may hold spaces: fields are counted after its closing bracket.
    let (before, after) = stat.rsplit_once(')').context("malformed stat")?;
    let name = before.split_once('(').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks =
        |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).context("short stat")?.parse::<f64>()?) };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name. Linux
    // counts them in USER_HZ, which is 100 on every architecture it exposes to user space.
    Ok((name, (ticks(11)? + ticks(12)?) / 100.0))
}

/// Where the machine's CPU went, in seconds so far: what a run's cost per request is made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSplit {
    /// The backend's argon2 worker threads (`argon2-N`).
    pub argon2: f64,
    /// The rest of the backend: HTTP, the database driver, the mail outbox, the runtime.
    pub backend: f64,
    /// Every `postgres` process (none for SQLite, which runs inside the backend).
    pub database: f64,
    /// This load generator.
    pub harness: f64,
}

impl CpuSplit {
    pub fn now(backend: u32) -> Self {
        let mut split = Self::default();
        split.argon2 = tasks(&format!("/proc/{backend}/task"))
            .filter(|(name, _)| name.starts_with("argon2-"))
            .map(|(_, cpu)| cpu)
            .sum();
        // From the process's total, which keeps the time of threads that have ended (tokio's
        // blocking threads end when idle); the argon2 workers never do.
        split.backend = cpu_seconds(backend).unwrap_or(0.0) - split.argon2;
        split.database = tasks("/proc").filter(|(name, _)| name == "postgres").map(|(_, cpu)| cpu).sum();
        split.harness = cpu_seconds(std::process::id()).unwrap_or(0.0);
        split
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            argon2: self.argon2 - earlier.argon2,
            backend: self.backend - earlier.backend,
            database: self.database - earlier.database,
            harness: self.harness - earlier.harness,
        }
    }

    /// Each part divided by `n`, in milliseconds: the CPU one request cost.
    pub fn per_request_ms(self, n: u64) -> Self {
        let each = |seconds: f64| 1000.0 * seconds / n.max(1) as f64;
        Self {
            argon2: each(self.argon2),
            backend: each(self.backend),
            database: each(self.database),
            harness: each(self.harness),
        }
    }
}

/// The command name and CPU seconds of every numbered entry in `folder` (processes or threads);
/// one that ends while it is read is left out.
fn tasks(folder: &str) -> impl Iterator<Item = (String, f64)> {
    std::fs::read_dir(folder).into_iter().flatten().flatten().filter_map(|entry| {
        entry.file_name().to_str()?.parse::<u32>().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let (name, cpu) = stat_cpu(&stat).ok()?;
        Some((name.to_owned(), cpu))
    })
}

/// Samples a process's RSS every 50 ms in the background and keeps the highest seen.
#[derive(Debug)]
pub struct PeakRss {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub fn start(pid: u32) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mb) = rss_mb(pid) {
                        peak_kb.fetch_max((mb * 1024.0) as u64, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self { peak_kb, stop, task }
    }

    /// The highest RSS seen, in MB.
    pub async fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// What a process used over a stretch of load: its highest RSS, and its CPU.
#[derive(Debug)]
pub struct Probe {
    pid: u32,
    peak: PeakRss,
    split: CpuSplit,
    started: Instant,
}

/// [`Probe`]'s findings.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub peak_rss_mb: f64,
    /// CPU time over wall time, in % of one core (200 % is both cores of a 2-core machine).
    pub cpu_percent: f64,
    /// The CPU seconds the run cost, part by part.
    pub split: CpuSplit,
}

impl Probe {
    pub fn start(pid: u32) -> Self {
        Self { pid, peak: PeakRss::start(pid), split: CpuSplit::now(pid), started: Instant::now() }
    }

    pub async fn finish(self) -> Usage {
        let split = CpuSplit::now(self.pid).since(self.split);
        // The backend's two parts are its whole process (a process that has ended reads as 0).
        let cpu = (split.argon2 + split.backend).max(0.0);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        Usage { peak_rss_mb: self.peak.finish().await, cpu_percent: 100.0 * cpu / elapsed, split }
    }
}

/// Which database a backend uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    /// A database URL on the bench's PostgreSQL server.
    Postgres(String),
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres(_) => "PostgreSQL",
        }
    }
}

/// A `backend serve` process.
#[derive(Debug)]
pub struct Backend {
    process: Running,
    pub url: String,
    /// Spawn to the first `200` from `/api/health`.
    pub time_to_ready: Duration,
}

/// Where the programs and the SPA are, and the settings every backend of a run shares.
#[derive(Debug, Clone)]
pub struct Programs {
    pub backend: PathBuf,
    pub agent: PathBuf,
    pub dist: PathBuf,
}

impl Backend {
    /// The environment `backend` gets for `engine` with its data in `data_dir`: what an operator
    /// would set behind a reverse proxy that names the client in `X-Forwarded-For` (each
    /// simulated person comes from an address of their own, as on a real network).
    pub fn environment(programs: &Programs, engine: &Engine, data_dir: &Path) -> Vec<(String, String)> {
        let mut env = vec![
            ("SELFSERVICE_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("SELFSERVICE_DIST_DIR".to_owned(), programs.dist.display().to_string()),
            ("SELFSERVICE_CLIENT_ADDRESS_HEADER".to_owned(), "x-forwarded-for".to_owned()),
            ("SELFSERVICE_LOG".to_owned(), "warn".to_owned()),
        ];
        if let Engine::Postgres(url) = engine {
            env.push(("SELFSERVICE_DATABASE_URL".to_owned(), url.clone()));
        }
        env
    }

    pub async fn start(programs: &Programs, env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(&programs.backend);
        command
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("SELFSERVICE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null());
        let started = Instant::now();
        let mut process = Running::spawn("backend", &mut command)?;
        let health = format!("{url}/api/health");
        let client = reqwest::Client::new();
        loop {
            process.check_alive()?;
            if client.get(&health).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the backend was not ready after 2 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self { process, url, time_to_ready: started.elapsed() })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn rss_mb(&self) -> anyhow::Result<f64> {
        rss_mb(self.pid())
    }

    /// `backend admin ARGS` on this backend's settings; its standard output.
    pub fn admin(programs: &Programs, env: &[(String, String)], args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&programs.backend)
            .arg("admin")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .context("Failed to run backend admin")?;
        if !output.status.success() {
            bail!("backend admin {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8(output.stdout)?)
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
