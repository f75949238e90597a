//! Card secrets at rest, PUKs and management keys (DESIGN.md, security model): AES-256-GCM under
//! a key-encryption key (KEK) from configuration, never stored beside the data in production.
//! Each sealed secret is bound to its card's GUID (associated data), so a sealed value copied to
//! another card's row does not open.
//!
//! Stored form: `2 ‖ KEK id (8) ‖ nonce (12) ‖ ciphertext and tag`, the KEK id being the first
//! bytes of the KEK's SHA-256, so that during a key rotation (`backend admin rotate-kek`) every
//! value says which key opens it and values under the old and the new key both open. Values
//! sealed before ids existed (`1 ‖ nonce ‖ …`) open too, with any configured key.

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit, Nonce};
use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{config::Settings, keys, secrets::random_bytes};

const VERSION: u8 = 2;
/// Sealed without a KEK id (before rotation existed).
const VERSION_WITHOUT_ID: u8 = 1;

/// Which KEK sealed a value.
pub type KekId = [u8; 8];

/// One key-encryption key and its id.
#[derive(Clone)]
struct Kek {
    id: KekId,
    cipher: Aes256Gcm,
}

impl Kek {
    fn new(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self { id, cipher: Aes256Gcm::new(key.into()) }
    }
}

/// Seals under one KEK; opens under it and any others configured (a rotation's old or next key).
#[derive(Clone)]
pub struct Vault {
    sealing: Kek,
    others: Vec<Kek>,
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

/// Where the embedded default keeps the KEK a rotation replaced, until the operator removes it.
pub const PREVIOUS_KEK_FILE: &str = "puk.kek.previous";

impl Vault {
    pub fn new(kek: &[u8; 32]) -> Self {
        Self { sealing: Kek::new(kek), others: Vec::new() }
    }

    /// Seals under `kek`, and also opens what any of `others` sealed.
    pub fn with_others(kek: &[u8; 32], others: &[[u8; 32]]) -> Self {
        let others = others.iter().map(Kek::new).filter(|k| k.id != Kek::new(kek).id).collect();
        Self { sealing: Kek::new(kek), others }
    }

    /// `puk_kek` from the settings, or (embedded default only) a key kept in `<data_dir>/puk.kek`;
    /// plus the keys that only open: `puk_kek_others`, and the embedded default's previous key.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let (kek, others) = keks(settings)?;
        Ok(Self::with_others(&kek, &others))
    }

    /// The id of the KEK this vault seals with.
    pub fn kek_id(&self) -> KekId {
        self.sealing.id
    }

    /// The id of the KEK that sealed `sealed` (`None`: sealed before ids, or not a sealed value).
    pub fn sealed_by(sealed: &[u8]) -> Option<KekId> {
        match sealed {
            [VERSION, id @ ..] if id.len() >= 8 => id[..8].try_into().ok(),
            _ => None,
        }
    }

    /// Opens a value under whichever key sealed it and seals it again under this vault's own
    /// (a KEK rotation); the secret itself never leaves this function.
    pub fn reseal_puk(&self, guid: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.reseal_with(&aad(PUK_LABEL, guid), sealed)
    }

    pub fn reseal_management_key(&self, guid: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.reseal_with(&aad(MANAGEMENT_KEY_LABEL, guid), sealed)
    }

    pub fn reseal_mail(&self, to: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.reseal_with(&aad(MAIL_LABEL, to), sealed)
    }

    fn reseal_with(&self, aad: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let secret =
            self.open_with(aad, sealed).context("a sealed value does not open under any configured KEK")?;
        self.seal_with(aad, &secret)
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
            .sealing
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), aes_gcm::aead::Payload { msg: secret.as_bytes(), aad })
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + 8 + 12 + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.sealing.id);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        let keys = || std::iter::once(&self.sealing).chain(&self.others);
        let (candidates, rest): (Vec<&Kek>, &[u8]) = match sealed {
            [VERSION, rest @ ..] if rest.len() >= 8 => {
                let (id, rest) = rest.split_at(8);
                (keys().filter(|k| k.id == id).collect(), rest)
            }
            [VERSION_WITHOUT_ID, rest @ ..] => (keys().collect(), rest),
            _ => return Err(VaultError::CannotOpen),
        };
        if rest.len() < 12 + 16 {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, ciphertext) = rest.split_at(12);
        for kek in candidates {
            let payload = aes_gcm::aead::Payload { msg: ciphertext, aad };
            if let Ok(plaintext) = kek.cipher.decrypt(Nonce::from_slice(nonce), payload) {
                let plaintext = Zeroizing::new(plaintext);
                return String::from_utf8(plaintext.to_vec())
                    .map(Zeroizing::new)
                    .map_err(|_| VaultError::CannotOpen);
            }
        }
        Err(VaultError::CannotOpen)
    }
}

/// The KEK the settings seal with, and the others they open with (see [`Vault::from_settings`]).
pub fn keks(settings: &Settings) -> anyhow::Result<([u8; 32], Vec<[u8; 32]>)> {
    let kek = match &settings.puk_kek {
        Some(b64) => decode_kek(b64).context("puk_kek must be 32 bytes in base64")?,
        None => keys::local_key(&settings.data_dir.join("puk.kek"))?,
    };
    let mut others = settings
        .puk_kek_others
        .iter()
        .map(|b64| decode_kek(b64).context("each of puk_kek_others must be 32 bytes in base64"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if settings.puk_kek.is_none() {
        if let Ok(text) = std::fs::read_to_string(settings.data_dir.join(PREVIOUS_KEK_FILE)) {
            others.push(decode_kek(&text).context("puk.kek.previous is not a valid key")?);
        }
    }
    Ok((kek, others))
}

/// A KEK as configured or kept in a file: 32 bytes in base64.
pub fn decode_kek(b64: &str) -> Option<[u8; 32]> {
    STANDARD.decode(b64.trim()).ok().and_then(|b| b.try_into().ok())
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

    #[test]
    fn during_a_rotation_values_under_the_old_and_the_new_key_both_open() {
        let old = Vault::new(&[1; 32]);
        let sealed = old.seal("aa", "12345678").unwrap();
        assert_eq!(Vault::sealed_by(&sealed), Some(old.kek_id()));
        let rotating = Vault::with_others(&[2; 32], &[[1; 32]]);
        let resealed = rotating.reseal_puk("aa", &sealed).unwrap();
        assert_eq!(Vault::sealed_by(&resealed), Some(rotating.kek_id()));
        assert_ne!(rotating.kek_id(), old.kek_id());
        for value in [&sealed, &resealed] {
            assert_eq!(rotating.open("aa", value).unwrap().as_str(), "12345678");
        }
        // Once the old key is gone, only the re-sealed value opens.
        let after = Vault::new(&[2; 32]);
        assert_eq!(after.open("aa", &resealed).unwrap().as_str(), "12345678");
        assert_eq!(after.open("aa", &sealed), Err(VaultError::CannotOpen));
        // A value sealed before KEK ids still opens under its key.
        let mut legacy = vec![VERSION_WITHOUT_ID];
        legacy.extend_from_slice(&sealed[9..]);
        assert_eq!(rotating.open("aa", &legacy).unwrap().as_str(), "12345678");
        assert_eq!(Vault::sealed_by(&legacy), None);
        assert!(rotating.reseal_puk("bb", &sealed).is_err(), "bound to its card still");
    }
}
