//! Agent settings: defaults, then an optional TOML file, then the command line.

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context};
use envelope::TrustedKey;
use serde::{Deserialize, Serialize};

pub const DEFAULT_PORT: u16 = 47101;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// TCP port on 127.0.0.1 (the agent never listens on another address).
    pub port: u16,
    /// Web origins allowed to open the WebSocket, e.g. `https://selfservice.example.nhs.uk`.
    pub allowed_origins: Vec<String>,
    /// For each allowed origin, the public keys its backend signs envelopes with (base64, from
    /// `backend admin envelope-key`; at most two, so the backend's key can be rotated without a
    /// flag day). The agent acts on an envelope — spends a PUK try, changes a key — only if one
    /// of these signed it; an origin without keys can sign in and prove presence, nothing more.
    pub envelope_keys: BTreeMap<String, Vec<String>>,
    /// Largest accepted WebSocket message, bytes.
    pub max_message_bytes: usize,
    /// Requests per second one connection may send before it is closed.
    pub max_requests_per_second: u32,
    /// The self-service site (e.g. `https://selfservice.example.nhs.uk`): where "Unlock my card"
    /// leads from the locked-card notification and the tray menu.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_service_url: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            allowed_origins: Vec::new(),
            envelope_keys: BTreeMap::new(),
            max_message_bytes: 16 * 1024,
            max_requests_per_second: 50,
            self_service_url: None,
        }
    }
}

/// At most this many envelope keys per origin: the backend's current key and the next one.
pub const MAX_ENVELOPE_KEYS: usize = 2;

/// Origins compare without a trailing slash and case-blind, as the handshake guard does.
fn same_origin(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

impl AgentConfig {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid agent configuration", path.display()))
    }

    /// `ORIGIN=KEY` from the command line (`--envelope-key`). The key is base64 and may end
    /// in `=`, so the split is at the first `=` after the origin's `://`.
    pub fn add_envelope_key(&mut self, flag: &str) -> anyhow::Result<()> {
        let split = flag.find("://").and_then(|scheme| flag[scheme..].find('=').map(|i| scheme + i));
        let Some(split) = split else {
            bail!("--envelope-key takes ORIGIN=KEY, e.g. https://selfservice.example.nhs.uk=<key>");
        };
        let (origin, key) = (&flag[..split], &flag[split + 1..]);
        self.envelope_keys.entry(origin.to_owned()).or_default().push(key.to_owned());
        Ok(())
    }

    /// Every envelope key parses, at most two per origin, each for an allowed origin.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (origin, keys) in &self.envelope_keys {
            if !self.allowed_origins.iter().any(|allowed| same_origin(allowed, origin)) {
                bail!("envelope_keys names {origin}, which is not in allowed_origins");
            }
            if keys.len() > MAX_ENVELOPE_KEYS {
                bail!(
                    "envelope_keys for {origin}: at most {MAX_ENVELOPE_KEYS} keys (the current and the next)"
                );
            }
            for key in keys {
                TrustedKey::parse(key).map_err(|_| {
                    anyhow::anyhow!(
                        "envelope_keys for {origin}: {key:?} is not an Ed25519 public key in base64"
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The keys trusted to sign envelopes for pages of `origin` (none: it may not use envelopes).
    pub fn trusted_keys(&self, origin: &str) -> Vec<TrustedKey> {
        self.envelope_keys
            .iter()
            .filter(|(configured, _)| same_origin(configured, origin))
            .flat_map(|(_, keys)| keys.iter().filter_map(|k| TrustedKey::parse(k).ok()))
            .collect()
    }
}

/// What an installer sets (`--write-settings`): each setting given replaces the file's, each left
/// out or empty keeps it, so an upgrade that passes nothing changes nothing.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub port: Option<u16>,
    /// Origins; one value may hold several, separated by spaces or commas (an MSI property).
    pub allowed_origins: Vec<String>,
    /// `ORIGIN=KEY`s, likewise; they replace the keys of the origins they name.
    pub envelope_keys: Vec<String>,
    pub self_service_url: Option<String>,
}

/// The values in `values`, split at spaces and commas, empty ones dropped.
fn words(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().flat_map(|v| v.split(|c: char| c.is_whitespace() || c == ',')).filter(|w| !w.is_empty())
}

impl SettingsChange {
    fn apply_to(&self, config: &mut AgentConfig) -> anyhow::Result<()> {
        if let Some(port) = self.port {
            config.port = port;
        }
        let origins: Vec<String> = words(&self.allowed_origins).map(str::to_owned).collect();
        if !origins.is_empty() {
            config.allowed_origins = origins;
        }
        let mut keys = AgentConfig::default();
        for flag in words(&self.envelope_keys) {
            keys.add_envelope_key(flag)?;
        }
        config
            .envelope_keys
            .retain(|origin, _| !keys.envelope_keys.keys().any(|given| same_origin(given, origin)));
        config.envelope_keys.extend(keys.envelope_keys);
        if let Some(url) = self.self_service_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            config.self_service_url = Some(url.to_owned());
        }
        Ok(())
    }
}

const WRITTEN_HEADER: &str = "\
# Smartcard self-service card agent: this computer's settings, written by `card-agent
# --write-settings` (the Windows installer runs it with its properties). A person's own settings
# file, if there is one, is read instead of this one.
";

/// Changes the settings file at `path` (made if missing) and returns what it now says. Nothing
/// is written unless the result is valid, and the file is replaced whole, never half-written.
pub fn write_settings(path: &Path, change: &SettingsChange) -> anyhow::Result<AgentConfig> {
    let mut config = if path.exists() { AgentConfig::from_file(path)? } else { AgentConfig::default() };
    change.apply_to(&mut config)?;
    config.validate()?;
    let text = toml::to_string(&config).context("Failed to write the settings as TOML")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    }
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, format!("{WRITTEN_HEADER}\n{text}"))
        .with_context(|| format!("Failed to write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("Failed to replace {}", path.display()))?;
    Ok(config)
}

/// Removes the settings file at `path` and its folder if that is left empty (an uninstaller's
/// last step). A file already gone is not an error.
pub fn remove_settings(path: &Path) -> anyhow::Result<()> {
    // Only ever a settings file: the uninstaller runs this as the system.
    if path.file_name().and_then(|n| n.to_str()) != Some("agent.toml") {
        bail!("{} is not an agent.toml", path.display());
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("Failed to remove {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        // Fails, as it should, while something else is in the folder.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
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

    #[test]
    fn envelope_keys_belong_to_allowed_origins_two_at_most() {
        let key = envelope::EnvelopeSigner::from_seed(&[1; 32]).trusted_key().to_string();
        let next = envelope::EnvelopeSigner::from_seed(&[2; 32]).trusted_key().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            format!(
                "allowed_origins = [\"https://ss.example.nhs.uk\", \"http://127.0.0.1:8080\"]\n\
                 [envelope_keys]\n\"https://ss.example.nhs.uk/\" = [\"{key}\", \"{next}\"]\n"
            ),
        )
        .unwrap();
        let mut config = AgentConfig::from_file(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(config.trusted_keys("https://SS.example.nhs.uk").len(), 2);
        assert!(config.trusted_keys("http://127.0.0.1:8080").is_empty(), "an origin without keys gets none");

        config.add_envelope_key(&format!("http://127.0.0.1:8080={key}")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.trusted_keys("http://127.0.0.1:8080").len(), 1);
        assert!(config.add_envelope_key("no-origin").is_err());

        config.add_envelope_key(&format!("https://evil.example={key}")).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("not in allowed_origins"));
        let mut three = AgentConfig::from_file(&path).unwrap();
        three.envelope_keys.values_mut().for_each(|keys| keys.push(key.clone()));
        assert!(three.validate().is_err());
        let mut junk = AgentConfig::from_file(&path).unwrap();
        junk.envelope_keys.values_mut().for_each(|keys| keys[0] = "junk".into());
        assert!(junk.validate().is_err());
    }

    #[test]
    fn written_settings_merge_what_is_given_and_refuse_what_is_wrong() {
        let key = envelope::EnvelopeSigner::from_seed(&[1; 32]).trusted_key().to_string();
        let next = envelope::EnvelopeSigner::from_seed(&[2; 32]).trusted_key().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("SmartcardSelfService/agent.toml");
        let site = "https://ss.example.nhs.uk";
        // As the MSI passes its properties: several origins in one value, empty ones left out.
        let install = SettingsChange {
            allowed_origins: vec![format!("{site} http://127.0.0.1:8080")],
            envelope_keys: vec![format!("{site}={key}")],
            self_service_url: Some(site.to_owned()),
            ..SettingsChange::default()
        };
        let written = write_settings(&path, &install).unwrap();
        assert_eq!(AgentConfig::from_file(&path).unwrap(), written, "the file reads back as written");
        assert_eq!(written.allowed_origins, [site, "http://127.0.0.1:8080"]);
        assert_eq!(written.trusted_keys(site).len(), 1);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("# Smartcard self-service"));

        // An upgrade passing nothing (empty properties) keeps everything.
        let nothing = SettingsChange {
            allowed_origins: vec![String::new()],
            envelope_keys: vec![" ".into()],
            self_service_url: Some(String::new()),
            ..SettingsChange::default()
        };
        assert_eq!(write_settings(&path, &nothing).unwrap(), written);
        // A rotation replaces the origin's keys with the ones given.
        let rotation = SettingsChange {
            envelope_keys: vec![format!("{site}={key} {site}={next}")],
            ..SettingsChange::default()
        };
        assert_eq!(write_settings(&path, &rotation).unwrap().trusted_keys(site).len(), 2);

        // A wrong key, or a key for an origin not allowed, fails and leaves the file as it was.
        let before = std::fs::read(&path).unwrap();
        let junk =
            SettingsChange { envelope_keys: vec![format!("{site}=junk")], ..SettingsChange::default() };
        assert!(write_settings(&path, &junk).unwrap_err().to_string().contains("not an Ed25519 public key"));
        let stranger = SettingsChange {
            envelope_keys: vec![format!("https://evil.example={key}")],
            ..SettingsChange::default()
        };
        assert!(write_settings(&path, &stranger).unwrap_err().to_string().contains("not in allowed_origins"));
        assert_eq!(std::fs::read(&path).unwrap(), before);

        remove_settings(&path).unwrap();
        assert!(!path.exists() && !path.parent().unwrap().exists(), "the file and its folder are gone");
        remove_settings(&path).unwrap();
        let other = dir.path().join("precious.txt");
        std::fs::write(&other, "keep").unwrap();
        assert!(remove_settings(&other).is_err() && other.exists(), "only a settings file is removed");
    }
}
