//! The certification authority behind issued cards: certifies the P-256 keys generated on the
//! card in 9A (PIV Authentication) and 9E (Card Authentication). The key and its self-signed
//! certificate live in a folder (`ca.key.pem`, mode 0600, and `ca.cert.pem`), created on first
//! use; in production the folder is the organisation's issuing CA's, or an HSM stands behind it.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use der::EncodePem;
use p256::{
    ecdsa::{DerSignature, SigningKey},
    pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding},
};
use rand_core::OsRng;

pub mod attestation;
use x509_cert::{
    builder::{Builder, CertificateBuilder, Profile},
    name::Name,
    serial_number::SerialNumber,
    spki::SubjectPublicKeyInfoOwned,
    time::Validity,
    Certificate,
};

const CERT_VALIDITY: Duration = Duration::from_secs(3 * 365 * 24 * 3600);

/// A certification authority: a P-256 key and a self-signed certificate in a folder.
#[derive(Debug)]
pub struct CertificateAuthority {
    key: SigningKey,
    certificate: Certificate,
}

impl CertificateAuthority {
    /// Loads `ca.key.pem` and `ca.cert.pem` from `dir`, creating both on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        Self::load_or_create_named(dir, "CN=Smartcard Self-Service Card CA,O=Smartcard Self-Service")
    }

    fn load_or_create_named(dir: &Path, subject: &str) -> anyhow::Result<Self> {
        let key_path = dir.join("ca.key.pem");
        let cert_path = dir.join("ca.cert.pem");
        if key_path.exists() && cert_path.exists() {
            let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
            let pem = std::fs::read_to_string(&cert_path)?;
            let certificate = <Certificate as der::DecodePem>::from_pem(pem.as_bytes())
                .with_context(|| format!("{} is not a certificate", cert_path.display()))?;
            return Ok(Self { key, certificate });
        }
        std::fs::create_dir_all(dir)?;
        let key = SigningKey::random(&mut OsRng);
        let subject = Name::from_str(subject)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?;
        let validity = Validity::from_now(Duration::from_secs(10 * 365 * 24 * 3600))?;
        let builder = CertificateBuilder::new(Profile::Root, serial(), validity, subject, spki, &key)?;
        let certificate = builder.build::<DerSignature>()?;
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| anyhow::anyhow!("{e}"))?;
        write_private(&key_path, key_pem.as_bytes())?;
        std::fs::write(&cert_path, certificate.to_pem(LineEnding::LF)?)?;
        Ok(Self { key, certificate })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Certifies a P-256 public point (`04‖X‖Y`) for `holder`; `purpose` names the slot.
    pub fn issue(&self, public_point: &[u8], holder: &str, purpose: &str) -> anyhow::Result<Certificate> {
        let public =
            p256::PublicKey::from_sec1_bytes(public_point).context("the card returned a bad point")?;
        let spki = SubjectPublicKeyInfoOwned::from_key(public)?;
        let subject = Name::from_str(&format!("CN={},OU={purpose}", escape_rdn(holder)))?;
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let validity = Validity::from_now(CERT_VALIDITY)?;
        let builder = CertificateBuilder::new(profile, serial(), validity, subject, spki, &self.key)?;
        Ok(builder.build::<DerSignature>()?)
    }
}

fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // getrandom only fails on platforms without an entropy source, where nothing here can work.
    if getrandom::getrandom(&mut bytes).is_err() {
        panic!("the operating system has no random number source");
    }
    bytes[0] &= 0x7F; // positive
    bytes[0] |= 0x01; // no leading zero byte
    SerialNumber::new(&bytes).unwrap_or_else(|_| SerialNumber::from(1u32))
}

fn escape_rdn(value: &str) -> String {
    value.chars().flat_map(|c| if ",+=\"\\<>;#".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use der::Encode;

    use super::*;

    #[test]
    fn the_authority_persists_and_certifies_a_point() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let point = p256::PublicKey::from_secret_scalar(&p256::NonZeroScalar::random(&mut OsRng));
        let certificate = ca
            .issue(&p256::EncodedPoint::from(point).to_bytes(), "Ann, Example", "PIV Authentication")
            .unwrap();
        assert_eq!(certificate.tbs_certificate.issuer, ca.certificate().tbs_certificate.subject);
        assert!(certificate.tbs_certificate.subject.to_string().contains("Ann\\, Example"));
        let again = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(again.certificate().to_der().unwrap(), ca.certificate().to_der().unwrap());
        assert!(ca.issue(&[4, 1, 2], "x", "y").is_err(), "not a point");
    }
}
