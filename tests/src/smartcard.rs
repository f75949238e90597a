//! The real PC/SC stack for tests: pcscd with vsmartcard's vpcd driver, and the virtual card
//! process inserted into its first reader ("Virtual PCD 00 00", vpcd port 35963).
//!
//! There is one pcscd per machine, so card tests take [`exclusive`] for their whole run.

use std::{
    path::PathBuf,
    process::Command,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::process::ChildGuard;

/// The vpcd slot the tests use (Debian's `/etc/reader.conf.d/vpcd`: 0x8C7B).
pub const VPCD_PORT: u16 = 35963;
/// The reader pcscd shows for that slot.
pub const READER: &str = "Virtual PCD 00 00";

static CARD_LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests that use the (single) virtual reader, and makes sure pcscd runs.
pub fn exclusive() -> anyhow::Result<MutexGuard<'static, ()>> {
    let guard = CARD_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    ensure_pcscd()?;
    Ok(guard)
}

fn pcscd_running() -> bool {
    Command::new("pgrep").args(["-x", "pcscd"]).output().is_ok_and(|o| o.status.success())
}

/// Starts pcscd if nothing runs it (scripts/test.sh normally has, and stops it at the end).
pub fn ensure_pcscd() -> anyhow::Result<()> {
    if pcscd_running() {
        return Ok(());
    }
    start_pcscd()
}

pub fn start_pcscd() -> anyhow::Result<()> {
    // Not `--auto-exit`: a pcscd that quits during a quiet minute of the suite would race the
    // next card test's check that it runs.
    let status = Command::new("pcscd")
        .status()
        .context("Failed to start pcscd; install it with scripts/install.sh")?;
    if !status.success() {
        bail!("pcscd exited with {status}");
    }
    Ok(())
}

/// Stops the machine's pcscd (for tests of the agent surviving a restart) and waits until gone.
pub fn stop_pcscd() -> anyhow::Result<()> {
    Command::new("pkill").args(["-x", "pcscd"]).status()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pcscd_running() {
        if Instant::now() > deadline {
            bail!("pcscd did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A workspace binary of the same build profile: next to this executable (a binary such as
/// the benchmark) or one folder up (a test, which lives in `deps/`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let here = exe.parent().context("executable has no folder")?;
    for dir in [Some(here), here.parent()].into_iter().flatten() {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "{name} is not built next to {}; run `cargo build --workspace --bins` (scripts/test.sh does)",
        here.display()
    )
}

/// A virtual card file: `virtual-card init` (+ `personalise`) in a temporary folder.
#[derive(Debug)]
pub struct CardFile {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub ca_dir: PathBuf,
}

impl CardFile {
    pub fn blank() -> anyhow::Result<Self> {
        Self::blank_with(&[])
    }

    /// A blank card made with more `virtual-card init` options (e.g. `--mgmt-algorithm aes192`).
    pub fn blank_with(options: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("card.json");
        let ca_dir = dir.path().join("ca");
        run_ok(
            Command::new(workspace_binary("virtual-card")?)
                .arg("init")
                .arg("--state")
                .arg(&state)
                .args(options),
        )?;
        Ok(Self { dir, state, ca_dir })
    }

    /// The card's memory as the virtual card keeps it (for checks no PIV command can make).
    pub fn state_json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(&self.state)?)?)
    }

    pub fn personalised(holder: &str) -> anyhow::Result<Self> {
        let card = Self::blank()?;
        run_ok(
            Command::new(workspace_binary("virtual-card")?)
                .arg("personalise")
                .arg("--state")
                .arg(&card.state)
                .arg("--ca-dir")
                .arg(&card.ca_dir)
                .args(["--name", holder]),
        )?;
        Ok(card)
    }
}

/// vpcd's second slot, and the reader pcscd shows for it: a desk with two cards (an RA's own and
/// the holder's).
pub const SECOND_VPCD_PORT: u16 = 35964;
pub const SECOND_READER: &str = "Virtual PCD 00 01";

/// The virtual card inserted in [`READER`] (or [`SECOND_READER`]); dropping it removes the card.
#[derive(Debug)]
pub struct InsertedCard {
    process: Option<ChildGuard>,
    reader: &'static str,
}

impl Drop for InsertedCard {
    /// Removes the card and waits until pcscd has noticed, so the next insertion is seen as new.
    fn drop(&mut self) {
        drop(self.process.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while card_present_in(self.reader) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl InsertedCard {
    pub fn insert(card: &CardFile) -> anyhow::Result<Self> {
        Self::insert_with(card, &[])
    }

    /// Inserts the card with extra `virtual-card run` arguments (e.g. fault injection).
    pub fn insert_with(card: &CardFile, extra: &[&str]) -> anyhow::Result<Self> {
        Self::insert_at(card, VPCD_PORT, READER, extra)
    }

    /// Inserts the card in [`SECOND_READER`].
    pub fn insert_second(card: &CardFile) -> anyhow::Result<Self> {
        Self::insert_at(card, SECOND_VPCD_PORT, SECOND_READER, &[])
    }

    fn insert_at(card: &CardFile, port: u16, reader: &'static str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut command = Command::new(workspace_binary("virtual-card")?);
        command.arg("run").arg("--state").arg(&card.state).arg("--vpcd").arg(format!("127.0.0.1:{port}"));
        command.arg("--once").args(extra);
        let mut process = ChildGuard::spawn("virtual-card", &mut command)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !card_present_in(reader) {
            process.check_alive()?;
            if Instant::now() > deadline {
                bail!("the virtual card did not appear in {reader}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { process: Some(process), reader })
    }
}

/// Whether pcscd reports a card in [`READER`] (asked through OpenSC, an independent client).
pub fn card_present() -> bool {
    card_present_in(READER)
}

pub fn card_present_in(reader: &str) -> bool {
    Command::new("opensc-tool")
        .arg("--list-readers")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.contains(reader) && l.contains("Yes")))
        .unwrap_or(false)
}

/// Yubico's PIV tool on [`READER`]: an independent check of what is on the card.
pub fn yubico(args: &[&str]) -> anyhow::Result<(bool, String)> {
    run(Command::new("yubico-piv-tool").args(["-r", READER]).args(args))
}

/// Runs a command, failing with its output if it does not succeed; returns stdout + stderr.
pub fn run_ok(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("Failed to run {command:?}"))?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{text}", output.status);
    }
    Ok(text)
}

/// Runs a command that may fail; returns (success, stdout + stderr).
pub fn run(command: &mut Command) -> anyhow::Result<(bool, String)> {
    let output = command.output().with_context(|| format!("Failed to run {command:?}"))?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}
