//! Linux (freedesktop.org desktops): settings in `$XDG_CONFIG_HOME` and `/etc`, the log in
//! `$XDG_STATE_HOME`, the tray as a StatusNotifierItem over D-Bus (drawn by the desktop's panel),
//! notifications through `notify-send` (libnotify) and pages opened with `xdg-open`.

use std::{path::PathBuf, sync::Arc};

use ksni::TrayMethods;

use crate::tray_model::{indicator, menu, MenuAction, TrayState, LOCKED_TEXT, LOCKED_TITLE};

/// The PC/SC service as people and IT support here know it, and how to get it running.
pub const SMART_CARD_SERVICE: &str = "pcscd";
pub const SMART_CARD_SERVICE_FIX: &str =
    "install it (apt install pcscd) and start it (systemctl start pcscd.socket)";

/// Nothing to do here: a program started from a terminal prints to it.
pub fn attach_console() {}

/// The settings file when `--config` is not given: the person's own, else the system-wide one
/// the package installs; the first that exists.
pub fn default_config_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")))
        .map(|dir| dir.join("smartcard-selfservice/agent.toml"));
    user.into_iter().chain([PathBuf::from("/etc/smartcard-selfservice/agent.toml")]).find(|p| p.is_file())
}

/// The desktop-mode log, `$XDG_STATE_HOME/smartcard-selfservice/card-agent.log`
/// (`~/.local/state/…`), opened for appending; `None` if it cannot be made.
pub fn desktop_log_file() -> Option<(PathBuf, std::fs::File)> {
    let dir = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?
        .join("smartcard-selfservice");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("card-agent.log");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
    Some((path, file))
}

/// A graphical session to show the tray and notifications in (X11 or Wayland).
pub fn has_desktop_session() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some())
}

/// Opens `url` in the person's browser; returns at once.
pub fn open_page(url: String) {
    std::thread::spawn(move || {
        if let Err(e) = std::process::Command::new("xdg-open").arg(&url).status() {
            tracing::warn!(error = %e, %url, "could not open the page");
        }
    });
}

/// Shows a report (the diagnostics) as a notification.
pub async fn show_report(title: &str, report: &str) {
    let shown = tokio::process::Command::new("notify-send")
        .args(["--app-name=Smartcard self-service", title, report])
        .status()
        .await;
    if let Err(e) = shown {
        tracing::warn!(error = %e, "could not show the report");
    }
}

/// "Your smartcard is locked": a notification with an "Unlock my card" action that opens
/// `unlock_url`. Returns at once; a desktop without a notification service is logged, not fatal.
pub fn offer_unlock(unlock_url: String) {
    std::thread::spawn(move || {
        let chosen = std::process::Command::new("notify-send")
            .args([
                "--app-name=Smartcard self-service",
                "--icon=dialog-warning",
                "--urgency=critical",
                "--action=unlock=Unlock my card",
                "--wait",
                LOCKED_TITLE,
                LOCKED_TEXT,
            ])
            .output();
        match chosen {
            Ok(output) if String::from_utf8_lossy(&output.stdout).trim() == "unlock" => open_page(unlock_url),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "no desktop notifications (is libnotify-bin installed?)"),
        }
    });
}

/// What the person chose in the tray's menu.
pub type OnAction = Arc<dyn Fn(MenuAction) + Send + Sync>;

/// The tray icon, kept current with [`Tray::show_state`].
pub struct Tray {
    handle: ksni::Handle<Icon>,
}

impl std::fmt::Debug for Tray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tray(StatusNotifierItem)")
    }
}

impl Tray {
    /// Puts the icon in the panel. `links` says whether the menu's page links can work (a
    /// self-service URL is configured). `None` when this desktop has no tray at all.
    pub async fn show(links: bool, on_action: OnAction) -> Option<Self> {
        let icon = Icon { state: TrayState::NoReader, links, on_action };
        // At login the agent may start before the panel: the icon appears when the panel's
        // StatusNotifierWatcher comes online, and again if the panel restarts.
        match icon.assume_sni_available(true).spawn().await {
            Ok(handle) => Some(Self { handle }),
            Err(e) => {
                tracing::warn!(error = %e, "no system tray on this desktop; notifications only");
                None
            }
        }
    }

    pub async fn show_state(&self, state: TrayState) {
        self.handle.update(|icon| icon.state = state).await;
    }
}

/// The tray as the panel sees it.
struct Icon {
    state: TrayState,
    links: bool,
    on_action: OnAction,
}

impl std::fmt::Debug for Icon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icon").field("state", &self.state).field("links", &self.links).finish_non_exhaustive()
    }
}

impl ksni::Tray for Icon {
    const MENU_ON_ACTIVATE: bool = true;

    fn id(&self) -> String {
        "smartcard-selfservice-agent".into()
    }

    fn title(&self) -> String {
        "Smartcard self-service".into()
    }

    fn icon_name(&self) -> String {
        indicator(&self.state).icon.into()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: "Smartcard self-service".into(),
            description: indicator(&self.state).tooltip,
            ..Default::default()
        }
    }

    fn status(&self) -> ksni::Status {
        if self.state == TrayState::CardLocked {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn watcher_online(&self) {
        tracing::info!("tray icon shown (a StatusNotifierWatcher is online)");
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!(?reason, "no panel shows the tray icon now; waiting for one");
        true
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        menu(&self.state)
            .into_iter()
            .map(|item| {
                let action = item.action;
                let enabled = match action {
                    MenuAction::OpenSelfService | MenuAction::UnlockMyCard => self.links,
                    MenuAction::Diagnostics | MenuAction::Quit => true,
                };
                ksni::menu::StandardItem {
                    label: item.label.into(),
                    enabled,
                    activate: Box::new(move |icon: &mut Self| (icon.on_action)(action)),
                    ..Default::default()
                }
                .into()
            })
            .collect()
    }
}
