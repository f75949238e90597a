//! What the backend vouches with and for: the key it signs envelopes with (card agents trust it
//! for this site's origin, so a page cannot hand the agent secrets of its own), and the card
//! makers' roots it trusts to attest that an issued card's keys were made on a card.

use std::path::PathBuf;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use envelope::EnvelopeSigner;
use x509_cert::Certificate;

use crate::{config::Settings, keys};

/// `envelope_signing_key` (a 32-byte Ed25519 seed, base64, the same on every instance), or on
/// the embedded default a key made once into `<data_dir>/envelope-signing.key`.
pub fn envelope_signer(settings: &Settings) -> anyhow::Result<EnvelopeSigner> {
    let seed = match &settings.envelope_signing_key {
        Some(b64) => STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .context("envelope_signing_key must be 32 bytes in base64")?,
        None => keys::local_key(&settings.data_dir.join("envelope-signing.key"))?,
    };
    Ok(EnvelopeSigner::from_seed(&seed))
}

/// The certificates in the `attestation_roots` PEM files (none: issuance is not attested).
pub fn attestation_roots(settings: &Settings) -> anyhow::Result<Vec<Certificate>> {
    let mut roots = Vec::new();
    for path in &settings.attestation_roots {
        roots.extend(read_pem_certificates(path)?);
    }
    Ok(roots)
}

fn read_pem_certificates(path: &PathBuf) -> anyhow::Result<Vec<Certificate>> {
    let pem = std::fs::read(path).with_context(|| format!("Failed to read {}", path.display()))?;
    let certificates = Certificate::load_pem_chain(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM file of certificates: {e}", path.display()))?;
    anyhow::ensure!(!certificates.is_empty(), "{} holds no certificate", path.display());
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_kept_in_the_data_folder_or_configured() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().to_owned(), ..Settings::default() };
        let first = envelope_signer(&settings).unwrap().trusted_key();
        assert_eq!(envelope_signer(&settings).unwrap().trusted_key(), first, "kept across restarts");
        let configured = Settings { envelope_signing_key: Some(STANDARD.encode([3u8; 32])), ..settings };
        assert_eq!(
            envelope_signer(&configured).unwrap().trusted_key(),
            EnvelopeSigner::from_seed(&[3; 32]).trusted_key()
        );
        let bad = Settings { envelope_signing_key: Some("short".into()), ..Settings::default() };
        assert!(envelope_signer(&bad).is_err());
    }

    #[test]
    fn roots_come_from_pem_files() {
        use der::EncodePem;
        let dir = tempfile::tempdir().unwrap();
        let maker = card_ca::CertificateAuthority::load_or_create_maker(dir.path()).unwrap();
        let pem = maker.certificate().to_pem(der::pem::LineEnding::LF).unwrap();
        let path = dir.path().join("roots.pem");
        std::fs::write(&path, format!("{pem}{pem}")).unwrap();
        let settings = Settings { attestation_roots: vec![path.clone()], ..Settings::default() };
        assert_eq!(attestation_roots(&settings).unwrap().len(), 2);
        std::fs::write(&path, "junk").unwrap();
        assert!(attestation_roots(&settings).is_err());
        assert!(attestation_roots(&Settings::default()).unwrap().is_empty());
    }
}
