//! Agent settings: defaults, then an optional TOML file, then the command line.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_PORT: u16 = 47101;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// TCP port on 127.0.0.1 (the agent never listens on another address).
    pub port: u16,
    /// Web origins allowed to open the WebSocket, e.g. `https://selfservice.example.nhs.uk`.
    pub allowed_origins: Vec<String>,
    /// Largest accepted WebSocket message, bytes.
    pub max_message_bytes: usize,
    /// Requests per second one connection may send before it is closed.
    pub max_requests_per_second: u32,
    /// The self-service site (e.g. `https://selfservice.example.nhs.uk`): where "Unlock my card"
    /// leads from the locked-card notification and the tray menu.
    pub self_service_url: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            allowed_origins: Vec::new(),
            max_message_bytes: 16 * 1024,
            max_requests_per_second: 50,
            self_service_url: None,
        }
    }
}

/// Where the settings live when `--config` is not given: the person's own file, else the
/// system-wide one the package installs. Returns the first that exists.
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

impl AgentConfig {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid agent configuration", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "port = 47200\nallowed_origins = [\"http://127.0.0.1:8080\"]\n").unwrap();
        let config = AgentConfig::from_file(&path).unwrap();
        assert_eq!(config.port, 47200);
        assert_eq!(config.allowed_origins, vec!["http://127.0.0.1:8080".to_owned()]);
        assert_eq!(config.max_message_bytes, AgentConfig::default().max_message_bytes);
        std::fs::write(&path, "prot = 1\n").unwrap();
        assert!(AgentConfig::from_file(&path).is_err());
    }
}
