//! Readies a blank card for the journeys, the way an issuing station would: authenticate with
//! the management key, GENERATE P-256 keys in 9A and 9E on the card, have a demo CA certify the
//! public keys, PUT DATA the certificates and a CHUID with a fresh GUID. Everything goes through
//! the card's own commands ([`piv::host::PivSession`]); the state file is never edited directly.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use der::{Decode, Encode, EncodePem};
use p256::{
    ecdsa::{DerSignature, SigningKey},
    pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding},
};
use piv::{
    host::{PivSession, Transport},
    ids::{alg, key, object},
    mgmt::{random_bytes, ManagementKey},
    tlv,
};
use rand_core::OsRng;
use x509_cert::{
    builder::{Builder, CertificateBuilder, Profile},
    name::Name,
    serial_number::SerialNumber,
    spki::SubjectPublicKeyInfoOwned,
    time::Validity,
    Certificate,
};

/// A FASC-N for a non-federal issuer (agency code 9999), as test PIV cards carry.
const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42,
    0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

const CERT_VALIDITY: Duration = Duration::from_secs(3 * 365 * 24 * 3600);

/// The demo certification authority: a P-256 key and a self-signed certificate in a folder.
#[derive(Debug)]
pub struct DemoCa {
    key: SigningKey,
    certificate: Certificate,
}

impl DemoCa {
    /// Loads `ca.key.pem` and `ca.cert.pem` from `dir`, creating both on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
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
        let subject = Name::from_str("CN=Smartcard Self-Service Demo CA,O=Demo Only")?;
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

    /// Certifies a P-256 public point (`04‖X‖Y`) for `holder`.
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
    let mut bytes = random_bytes(16);
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

/// The certificate object layout (Part 1 Table 10): `70` DER, `71` 00 (not compressed), `FE`.
pub fn certificate_object(der: &[u8]) -> Vec<u8> {
    tlv::encode_all(&[(0x70, der), (0x71, &[0x00]), (0xFE, &[])])
}

/// The CHUID (Part 1 Table 9) with the given GUID and an expiry date `YYYYMMDD`.
pub fn chuid(guid: &[u8; 16], expiry: &str) -> Vec<u8> {
    tlv::encode_all(&[(0x30, &FASC_N), (0x34, guid), (0x35, expiry.as_bytes()), (0x3E, &[]), (0xFE, &[])])
}

/// What personalisation produced.
#[derive(Debug)]
pub struct Personalised {
    pub guid: [u8; 16],
    pub piv_auth_certificate: Certificate,
    pub card_auth_certificate: Certificate,
}

/// Personalises the card behind `session` for `holder`.
pub fn personalise<T: Transport>(
    session: &mut PivSession<T>,
    mgmt: &ManagementKey,
    ca: &DemoCa,
    holder: &str,
) -> anyhow::Result<Personalised> {
    session.select().context("SELECT failed")?;
    session.authenticate_management(mgmt).context("Management key authentication failed")?;
    let mut certificates = Vec::new();
    for (slot, purpose) in
        [(key::PIV_AUTHENTICATION, "PIV Authentication"), (key::CARD_AUTHENTICATION, "Card Authentication")]
    {
        let point =
            session.generate_ec(slot, alg::ECC_P256).with_context(|| format!("GENERATE in {slot:02X}"))?;
        let certificate = ca.issue(&point, holder, purpose)?;
        let object = key::certificate_object(slot).context("slot without certificate object")?;
        session.put_data(object, &certificate_object(&certificate.to_der()?))?;
        certificates.push(certificate);
    }
    let guid: [u8; 16] = random_bytes(16).try_into().map_err(|_| anyhow::anyhow!("random GUID"))?;
    let expiry = certificates[0].tbs_certificate.validity.not_after.to_date_time();
    let expiry = format!("{:04}{:02}{:02}", expiry.year(), expiry.month(), expiry.day());
    session.put_data(object::CHUID, &chuid(&guid, &expiry))?;
    let card_auth_certificate = certificates.pop().context("no 9E certificate")?;
    let piv_auth_certificate = certificates.pop().context("no 9A certificate")?;
    Ok(Personalised { guid, piv_auth_certificate, card_auth_certificate })
}

/// Reads the GUID back from a CHUID.
pub fn guid_from_chuid(chuid: &[u8]) -> Option<[u8; 16]> {
    tlv::find(chuid, 0x34).ok().flatten().and_then(|g| g.try_into().ok())
}

/// Parses a certificate object's DER.
pub fn certificate_from_object(object: &[u8]) -> Option<Certificate> {
    let der = tlv::find(object, 0x70).ok().flatten()?;
    Certificate::from_der(der).ok()
}
