//! The Windows card agent and its MSI (both built by `scripts/test.sh` with
//! `scripts/package-agent-windows.sh`), checked under Wine in a throw-away prefix: the MSI
//! installs the program, its Start-menu entry, autostart at sign-in and the machine's settings
//! from its properties; the installed agent prints its version and diagnostics, serves the
//! WebSocket behind the Origin/Host guard and says plainly that PC/SC is not there (Wine's
//! WinSCard is a stub); a newer MSI upgrades in place; a wrong property fails the installation
//! with nothing left behind; removing the product removes everything.
//!
//! Not checked here (Wine cannot): real WinSCard with a reader, and the tray and balloon on a
//! real Windows shell — README, "Install on Windows", has the checklist for a real machine.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use protocol::agent::{AgentErrorCode, AgentMessage, Operation, Outcome, PROTOCOL_VERSION};
use tests::{
    agent::{backend_signer, envelope_key_flag, RunningAgent, ALLOWED_ORIGIN},
    workspace_root,
};

const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const RUN_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run";
const UNINSTALL_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";

/// A Wine prefix of its own (a Windows "machine"), shut down and deleted when dropped.
struct Wine {
    prefix: tempfile::TempDir,
}

impl Wine {
    fn new() -> Self {
        assert!(Path::new(WINE).is_file(), "no {WINE}: run scripts/install.sh (it installs wine64)");
        let wine = Self { prefix: tempfile::tempdir().unwrap() };
        // Makes the prefix (C: and the registry) once, before anything is copied onto it.
        let made = wine.run("wineboot", &["--init"]);
        assert!(made.status.success() && wine.drive_c().is_dir(), "wineboot failed: {}", text(&made));
        wine
    }

    /// `program` run by Wine, killed after five minutes should anything in it wait for a person.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("timeout");
        command
            .args(["300", WINE])
            .arg(program)
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko to offer to download (nothing here needs them).
            .env("WINEDLLOVERRIDES", "mscoree=;mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    fn drive_c(&self) -> PathBuf {
        self.prefix.path().join("drive_c")
    }

    /// The agent's Start-menu entries. Windows puts a per-machine package's in ProgramData's
    /// Start Menu; Wine's msi resolves ProgramMenuFolder to the user's whatever ALLUSERS says.
    fn start_menu_entries(&self) -> Vec<PathBuf> {
        let entry = "Microsoft/Windows/Start Menu/Programs/Smartcard self-service agent.lnk";
        let users = std::fs::read_dir(self.drive_c().join("users")).into_iter().flatten().flatten();
        users
            .map(|user| user.path().join("AppData/Roaming").join(entry))
            .chain([self.drive_c().join("ProgramData").join(entry)])
            .filter(|p| p.is_file())
            .collect()
    }

    /// Copies `msi` onto C: (msiexec takes a Windows path) and runs `msiexec /i` on it quietly.
    fn install(&self, msi: &Path, properties: &[String]) -> Output {
        let name = msi.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(msi, self.drive_c().join(&name)).unwrap();
        let mut command = self.command("msiexec");
        command.args(["/i", &format!(r"C:\{name}"), "/qn"]).args(properties);
        command.output().unwrap()
    }

    /// The value of `name` under `key`, as `reg query` shows it; `None` if there is none.
    fn registry(&self, key: &str, name: &str) -> Option<String> {
        let output = self.run("reg", &["query", key, "/v", name]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && text.contains(name)).then_some(text)
    }

    /// How many installed products carry the agent's name (Add/Remove Programs).
    fn products_installed(&self) -> usize {
        let output = self.run("reg", &["query", UNINSTALL_KEY, "/s"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.contains("DisplayName") && l.contains("Smartcard Self-Service agent"))
            .count()
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        let _ = Command::new(WINESERVER).arg("-k").env("WINEPREFIX", self.prefix.path()).status();
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The MSI scripts/test.sh built.
fn built_msi() -> PathBuf {
    let msi = workspace_root().join(format!("target/windows/smartcard-selfservice-agent-{VERSION}.msi"));
    assert!(
        msi.is_file(),
        "no {}: run scripts/test.sh (it runs scripts/package-agent-windows.sh)",
        msi.display()
    );
    msi
}

/// The same program packaged as a later version, as the next release's MSI would be.
fn next_version_msi(dir: &Path) -> PathBuf {
    let out = dir.join("smartcard-selfservice-agent-next.msi");
    let script = workspace_root().join("scripts/package-agent-windows.sh");
    let status = Command::new(script)
        .args(["--profile", "dev", "--no-build", "--version", "99.0.0", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "could not package the next version");
    out
}

#[tokio::test]
async fn the_msi_installs_a_working_agent_upgrades_it_in_place_and_removes_it() {
    let wine = Wine::new();
    let install_dir = wine.drive_c().join("Program Files/Smartcard Self-Service");
    let program = install_dir.join("card-agent.exe");
    let settings = wine.drive_c().join("ProgramData/SmartcardSelfService/agent.toml");

    // A software-distribution tool's silent install, with the site and its envelope key.
    let key = envelope_key_flag(ALLOWED_ORIGIN);
    let properties = [
        format!("ALLOWED_ORIGIN={ALLOWED_ORIGIN}"),
        format!("SELF_SERVICE_URL={ALLOWED_ORIGIN}"),
        format!("ENVELOPE_KEY={key}"),
    ];
    let installed = wine.install(&built_msi(), &properties);
    assert!(installed.status.success(), "msiexec /i failed: {}", text(&installed));
    assert!(program.is_file() && install_dir.join("README.md").is_file(), "the program is installed");
    assert_eq!(wine.start_menu_entries().len(), 1, "one Start-menu entry");
    let autostart = wine.registry(RUN_KEY, "SmartcardSelfServiceAgent").expect("an autostart entry");
    assert!(autostart.contains(r"Smartcard Self-Service\card-agent.exe"), "{autostart}");
    let written = std::fs::read_to_string(&settings).unwrap();
    assert!(
        written.contains(ALLOWED_ORIGIN) && written.contains(&backend_signer().trusted_key().to_string()),
        "{written}"
    );
    assert_eq!(wine.products_installed(), 1);

    let version = wine.run(program.to_str().unwrap(), &["--version"]);
    assert!(text(&version).contains(&format!("card-agent {VERSION}")), "{}", text(&version));
    // Wine's WinSCard is a stub: exactly the machine whose Smart Card service is not running.
    let diagnostics = text(&wine.run(program.to_str().unwrap(), &["--diagnostics"]));
    assert!(diagnostics.contains(&format!("card agent {VERSION}")), "{diagnostics}");
    assert!(
        diagnostics.contains(r"Settings: C:\ProgramData\SmartcardSelfService\agent.toml"),
        "{diagnostics}"
    );
    assert!(diagnostics.contains(ALLOWED_ORIGIN), "{diagnostics}");
    assert!(
        diagnostics.contains("Smart card service (Smart Card, SCardSvr): NOT RUNNING — start it"),
        "{diagnostics}"
    );

    // The installed agent, as autostart runs it (headless here: no desktop), with only the
    // settings the MSI wrote.
    let mut command = wine.command(&program);
    command.args(["--headless", "--port", "0"]);
    let agent = RunningAgent::start_command(command).await.unwrap();
    let (mut client, hello) = agent_client::AgentClient::connect(&agent.url(), ALLOWED_ORIGIN).await.unwrap();
    assert!(matches!(hello, AgentMessage::Hello { protocol_version: PROTOCOL_VERSION, .. }), "{hello:?}");
    tests::agent::assert_guarded(&agent).await;
    let outcome = client.request(Operation::CardIdentity { reader: "Any reader".into() }).await.unwrap();
    match outcome {
        Outcome::Error(error) => {
            assert_eq!(error.code, AgentErrorCode::ServiceUnavailable, "{error:?}");
            assert!(error.message.contains("(Smart Card, SCardSvr) is not running"), "{error:?}");
        }
        other => panic!("a card operation without PC/SC answered {other:?}"),
    }
    drop(client);
    drop(agent);

    // The next version over it: one product. With the same properties, as a distribution tool
    // sends them: the same settings. (Given none, Windows keeps the settings: the older version's
    // removal runs with UPGRADINGPRODUCTCODE set. Wine's msiexec does not set it, so that case is
    // on the README's checklist for a real machine, not here.)
    let dir = tempfile::tempdir().unwrap();
    let upgraded = wine.install(&next_version_msi(dir.path()), &properties);
    assert!(upgraded.status.success(), "the upgrade failed: {}", text(&upgraded));
    assert_eq!(wine.products_installed(), 1, "upgraded in place, not installed beside");
    assert!(program.is_file() && wine.registry(RUN_KEY, "SmartcardSelfServiceAgent").is_some());
    assert_eq!(wine.start_menu_entries().len(), 1);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), written, "the same settings after the upgrade");
    let version = wine.run(program.to_str().unwrap(), &["--version"]);
    assert!(text(&version).contains("card-agent"), "the upgraded program runs: {}", text(&version));
    let listed = wine.run("reg", &["query", UNINSTALL_KEY, "/s"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("99.0.0"), "Apps lists the new version");

    // Removal takes everything it put there, settings included.
    let removed = wine.run("msiexec", &["/x", r"C:\smartcard-selfservice-agent-next.msi", "/qn"]);
    assert!(removed.status.success(), "msiexec /x failed: {}", text(&removed));
    assert!(
        !program.exists() && !settings.exists() && !settings.parent().unwrap().exists(),
        "files left behind"
    );
    assert!(wine.start_menu_entries().is_empty(), "the Start-menu entry is left");
    assert!(wine.registry(RUN_KEY, "SmartcardSelfServiceAgent").is_none(), "the autostart entry is left");
    assert_eq!(wine.products_installed(), 0);

    // A key that is not one fails the installation, and nothing is left installed.
    let wrong = wine.install(
        &built_msi(),
        &[format!("ALLOWED_ORIGIN={ALLOWED_ORIGIN}"), format!("ENVELOPE_KEY={ALLOWED_ORIGIN}=junk")],
    );
    assert!(!wrong.status.success(), "an MSI with a junk envelope key installed");
    assert!(!program.exists() && !settings.exists(), "a failed installation left files");
    assert!(wine.registry(RUN_KEY, "SmartcardSelfServiceAgent").is_none());
    assert_eq!(wine.products_installed(), 0);
}
