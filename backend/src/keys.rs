//! The server's secret key (for hashing one-time codes). Production sets `secret_key` (32 bytes,
//! base64) identically on every instance; without it a random key is kept in
//! `<data_dir>/secret.key` (mode 0600), which suits one instance and the embedded default.

use std::path::Path;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};

use crate::{config::Settings, secrets::random_bytes};

pub fn server_key(settings: &Settings) -> anyhow::Result<[u8; 32]> {
    if let Some(b64) = &settings.secret_key {
        return decode(b64).context("secret_key must be 32 bytes in base64");
    }
    local_key(&settings.data_dir.join("secret.key"))
}

/// A 32-byte key kept in a file (base64, mode 0600), made on first use: for the embedded
/// single-instance default only; production configures its keys instead.
pub fn local_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode(text.trim()).with_context(|| format!("{} is not a valid key", path.display()));
    }
    let key = random_bytes::<32>();
    write_private(path, &STANDARD.encode(key))?;
    Ok(key)
}

fn decode(b64: &str) -> anyhow::Result<[u8; 32]> {
    STANDARD.decode(b64)?.try_into().map_err(|_| anyhow::anyhow!("not 32 bytes"))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("Failed to create {}", path.display()))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_a_configured_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().to_owned(), ..Settings::default() };
        let first = server_key(&settings).unwrap();
        assert_eq!(server_key(&settings).unwrap(), first, "stable across restarts");
        let configured = Settings { secret_key: Some(STANDARD.encode([9u8; 32])), ..settings };
        assert_eq!(server_key(&configured).unwrap(), [9u8; 32]);
        let bad = Settings { secret_key: Some("short".into()), ..Settings::default() };
        assert!(server_key(&bad).is_err());
    }
}
