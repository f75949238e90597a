//! Card secrets at rest, PUKs and management keys (DESIGN.md, security model): AES-256-GCM under
//! a key-encryption key (KEK) from configuration, never stored beside the data in production.
//! Each sealed secret is bound to its card's GUID (associated data), so a sealed value copied to
//! another card's row does not open.
//!
//! Stored form: `version (1) ‖ nonce (12) ‖ ciphertext and tag`.

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit, Nonce};
use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use zeroize::Zeroizing;

use crate::{config::Settings, keys, secrets::random_bytes};

const VERSION: u8 = 1;

#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the sealed PUK is damaged, belongs to another card, or was sealed under another key")]
    CannotOpen,
}

impl Vault {
    pub fn new(kek: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(kek.into()) }
    }

    /// `puk_kek` from the settings, or (embedded default only) a key kept in `<data_dir>/puk.kek`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let kek = match &settings.puk_kek {
            Some(b64) => {
                let bytes: [u8; 32] = STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .context("puk_kek must be 32 bytes in base64")?;
                bytes
            }
            None => keys::local_key(&settings.data_dir.join("puk.kek"))?,
        };
        Ok(Self::new(&kek))
    }

    pub fn seal(&self, guid: &str, puk: &str) -> anyhow::Result<Vec<u8>> {
        self.seal_with(&aad(PUK_LABEL, guid), puk)
    }

    pub fn open(&self, guid: &str, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        self.open_with(&aad(PUK_LABEL, guid), sealed)
    }

    /// A card's management key (`<algorithm>:<hex>`), under its own label so a sealed PUK and
    /// a sealed management key can never stand in for each other.
    pub fn seal_management_key(&self, guid: &str, key: &str) -> anyhow::Result<Vec<u8>> {
        self.seal_with(&aad(MANAGEMENT_KEY_LABEL, guid), key)
    }

    pub fn open_management_key(&self, guid: &str, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        self.open_with(&aad(MANAGEMENT_KEY_LABEL, guid), sealed)
    }

    /// A queued email's body (it may hold a one-time code), bound to its recipient.
    pub fn seal_mail(&self, to: &str, body: &str) -> anyhow::Result<Vec<u8>> {
        self.seal_with(&aad(MAIL_LABEL, to), body)
    }

    pub fn open_mail(&self, to: &str, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        self.open_with(&aad(MAIL_LABEL, to), sealed)
    }

    fn seal_with(&self, aad: &[u8], secret: &str) -> anyhow::Result<Vec<u8>> {
        let nonce_bytes = random_bytes::<12>();
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), aes_gcm::aead::Payload { msg: secret.as_bytes(), aad })
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + 12 + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        let [version, rest @ ..] = sealed else { return Err(VaultError::CannotOpen) };
        if *version != VERSION || rest.len() < 12 + 16 {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, ciphertext) = rest.split_at(12);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), aes_gcm::aead::Payload { msg: ciphertext, aad })
                .map_err(|_| VaultError::CannotOpen)?,
        );
        String::from_utf8(plaintext.to_vec()).map(Zeroizing::new).map_err(|_| VaultError::CannotOpen)
    }
}

const PUK_LABEL: &[u8] = b"smartcard-selfservice puk v1 ";
const MANAGEMENT_KEY_LABEL: &[u8] = b"smartcard-selfservice management key v1 ";
const MAIL_LABEL: &[u8] = b"smartcard-selfservice mail v1 ";

fn aad(label: &[u8], guid: &str) -> Vec<u8> {
    let mut aad = label.to_vec();
    aad.extend_from_slice(guid.to_ascii_lowercase().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_puk_opens_only_for_its_card_under_its_key() {
        let vault = Vault::new(&[1; 32]);
        let sealed = vault.seal("aa", "12345678").unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"12345678"), "not in clear");
        assert_eq!(vault.open("AA", &sealed).unwrap().as_str(), "12345678");
        assert_eq!(vault.open("bb", &sealed), Err(VaultError::CannotOpen), "another card");
        assert_eq!(Vault::new(&[2; 32]).open("aa", &sealed), Err(VaultError::CannotOpen), "another key");
        let mut altered = sealed.clone();
        altered[20] ^= 1;
        assert_eq!(vault.open("aa", &altered), Err(VaultError::CannotOpen), "altered");
        assert_ne!(vault.seal("aa", "12345678").unwrap(), sealed, "fresh nonce each time");
        assert_eq!(
            vault.open_management_key("aa", &sealed),
            Err(VaultError::CannotOpen),
            "a PUK is not a key"
        );
        let key = vault.seal_management_key("aa", "3:0102").unwrap();
        assert_eq!(vault.open_management_key("aa", &key).unwrap().as_str(), "3:0102");
        assert_eq!(vault.open("aa", &key), Err(VaultError::CannotOpen), "a key is not a PUK");
    }
}
