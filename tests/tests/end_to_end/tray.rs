//! The card agent's tray icon, seen the way a desktop panel sees it: a private session D-Bus, a
//! StatusNotifierWatcher (`tests/src/sni_watcher.py`, what a panel provides), the agent started
//! as in a desktop session with a locked virtual card in the reader. The icon registers, says
//! the card is locked, offers "Unlock my card" first in its menu, and follows the card out.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use std::{
    io::BufRead,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    agent::{AgentClient, RunningAgent, ALLOWED_ORIGIN},
    process::ChildGuard,
    smartcard::{exclusive, workspace_binary, CardFile, InsertedCard},
    workspace_root,
};

/// A child's stdout, line by line, read on a thread.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut ChildGuard) -> Self {
        let stdout = child.take_stdout().expect("piped stdout");
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Self(receive)
    }

    /// The next line that starts with `prefix` (within 20 s).
    fn starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.0.recv_timeout(left).unwrap_or_else(|_| panic!("no line starting {prefix:?}"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

/// `gdbus call` on the private bus; its output is GVariant text.
fn gdbus(bus: &str, destination: &str, path: &str, method: &str, args: &[&str]) -> String {
    let output = Command::new("gdbus")
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .args(["call", "--session", "--dest", destination, "--object-path", path, "--method", method])
        .args(args)
        .output()
        .expect("gdbus runs (libglib2.0-bin)");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn property(bus: &str, name: &str, path: &str, property: &str) -> String {
    gdbus(bus, name, path, "org.freedesktop.DBus.Properties.Get", &["org.kde.StatusNotifierItem", property])
}

fn wait_for_property(bus: &str, name: &str, path: &str, key: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let value = property(bus, name, path, key);
        if value.contains(expected) {
            return value;
        }
        assert!(Instant::now() < deadline, "{key} never contained {expected:?}; last: {value}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn the_tray_icon_registers_shows_a_locked_card_and_offers_to_unlock_it() {
    let _lock = exclusive().unwrap();
    let card = CardFile::personalised("Pat Example").unwrap();
    let inserted = InsertedCard::insert(&card).unwrap();
    {
        let agent = RunningAgent::start().await.unwrap();
        let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
        client.wait_for_card().await.unwrap();
        client.block_pin().await.unwrap();
    }

    let mut bus_daemon = ChildGuard::spawn(
        "dbus-daemon",
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let bus = Lines::of(&mut bus_daemon).starting("unix:");
    let mut watcher = ChildGuard::spawn(
        "sni_watcher.py",
        Command::new("/usr/bin/python3")
            .arg(workspace_root().join("tests/src/sni_watcher.py"))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let watcher_lines = Lines::of(&mut watcher);
    assert_eq!(watcher_lines.starting("ready"), "ready");

    // As started by the autostart entry in a desktop session (its log goes to a file there).
    let state_home = tempfile::tempdir().unwrap();
    let _agent = ChildGuard::spawn(
        "card-agent",
        Command::new(workspace_binary("card-agent").unwrap())
            .args([
                "--port",
                "0",
                "--allow-origin",
                ALLOWED_ORIGIN,
                "--self-service-url",
                "http://127.0.0.1:8080",
            ])
            .env("DISPLAY", ":99")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("XDG_CONFIG_HOME", std::env::temp_dir().join("card-agent-tests-no-config"))
            .env("XDG_STATE_HOME", state_home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let registered = watcher_lines.starting("registered ");
    let mut parts = registered.split_whitespace().skip(1);
    let (name, path) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());

    wait_for_property(&bus, &name, &path, "IconName", "dialog-warning");
    assert!(property(&bus, &name, &path, "Title").contains("Smartcard self-service"));
    assert!(property(&bus, &name, &path, "ToolTip").contains("Your smartcard is locked"));
    assert!(property(&bus, &name, &path, "Status").contains("NeedsAttention"));

    let menu_path = property(&bus, &name, &path, "Menu");
    let menu_path = menu_path.split('\'').nth(1).expect("a menu object path");
    let layout =
        gdbus(&bus, &name, menu_path, "com.canonical.dbusmenu.GetLayout", &["int32 0", "int32 -1", "@as []"]);
    let labels: Vec<usize> = ["Unlock my card", "Open self-service", "Diagnostics", "Quit"]
        .iter()
        .map(|label| layout.find(label).unwrap_or_else(|| panic!("{label:?} not in the menu: {layout}")))
        .collect();
    assert!(labels.windows(2).all(|w| w[0] < w[1]), "a locked card puts Unlock first: {layout}");

    drop(inserted);
    wait_for_property(&bus, &name, &path, "IconName", "media-removable");
    assert!(property(&bus, &name, &path, "ToolTip").contains("No smartcard in the reader"));

    let log =
        std::fs::read_to_string(state_home.path().join("smartcard-selfservice/card-agent.log")).unwrap();
    assert!(log.contains("locked card inserted") && log.contains("state=CardLocked"), "{log}");
}
