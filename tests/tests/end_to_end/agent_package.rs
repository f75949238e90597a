//! The card agent's Debian package (built by `scripts/test.sh` with cargo-deb): installed with
//! `dpkg -i` into a throw-away root (so the test machine is left alone), the installed program
//! started headless answers the WebSocket hello, and purging removes every file it installed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::{path::PathBuf, process::Command};

use protocol::agent::{AgentMessage, PROTOCOL_VERSION};
use tests::{
    agent::{AgentClient, RunningAgent},
    smartcard::run_ok,
    workspace_root,
};

const PACKAGE: &str = "smartcard-selfservice-agent";

fn built_package() -> PathBuf {
    let dir = workspace_root().join("target/debian");
    std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PACKAGE)))
        .max()
        .unwrap_or_else(|| {
            panic!("no {PACKAGE} package in {}: run scripts/test.sh (it runs cargo deb)", dir.display())
        })
}

/// `dpkg --root=<root> …` on a root with its own (empty) package database.
fn dpkg(root: &std::path::Path, args: &[&str]) -> String {
    let mut command = Command::new("dpkg");
    command
        .arg(format!("--root={}", root.display()))
        .args(["--force-not-root", "--log=/dev/null"])
        .args(args);
    run_ok(&mut command).unwrap()
}

#[tokio::test]
async fn the_package_installs_starts_headless_and_purges_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let database = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(database.join("info")).unwrap();
    std::fs::create_dir_all(database.join("updates")).unwrap();
    std::fs::write(database.join("status"), "").unwrap();
    std::fs::write(database.join("available"), "").unwrap();

    // The throw-away root has no pcscd package; the real machine's pcscd serves the agent.
    dpkg(root.path(), &["--force-depends", "-i", &built_package().to_string_lossy()]);
    let status = dpkg(root.path(), &["-s", PACKAGE]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(status.contains("Depends:") && status.contains("pcscd"), "{status}");
    let program = root.path().join("usr/bin/card-agent");
    let autostart =
        std::fs::read_to_string(root.path().join("etc/xdg/autostart/smartcard-selfservice-agent.desktop"))
            .unwrap();
    assert!(autostart.contains("Exec=/usr/bin/card-agent"), "{autostart}");
    let config = root.path().join("etc/smartcard-selfservice/agent.toml");
    assert!(std::fs::read_to_string(&config).unwrap().contains("self_service_url"));
    assert!(root.path().join("usr/share/doc/smartcard-selfservice-agent/README.md").is_file());

    tests::smartcard::ensure_pcscd().unwrap();
    let agent =
        RunningAgent::start_program(&program, &["--config".as_ref(), config.as_os_str()]).await.unwrap();
    let (_client, hello) = AgentClient::connect(&agent).await.unwrap();
    assert!(matches!(hello, AgentMessage::Hello { protocol_version: PROTOCOL_VERSION, .. }), "{hello:?}");
    drop(agent);

    dpkg(root.path(), &["--purge", PACKAGE]);
    assert!(!program.exists() && !config.exists(), "purge removes the program and its settings");
}
