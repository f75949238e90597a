//! PIV key attestation as YubiKeys do it: each card holds an attestation key (slot F9) whose
//! certificate its maker signed, and answers ATTEST for a slot with an X.509 certificate of the
//! key generated there, signed by that F9 key. A chain maker root → F9 → slot key shows that
//! the key was made on a card of that maker and never existed outside it.
//!
//! The slot certificate follows Yubico's layout: the attested key's SubjectPublicKeyInfo, and
//! extensions for the card's serial (`1.3.6.1.4.1.41482.3.7`, an INTEGER) and its PIN and touch
//! policies (`…3.8`, two bytes).

use std::{str::FromStr, time::Duration};

use der::{
    oid::{AssociatedOid, ObjectIdentifier},
    Decode, Encode,
};
use p256::ecdsa::{signature::Verifier, DerSignature, Signature, SigningKey, VerifyingKey};
use x509_cert::{
    builder::{Builder, CertificateBuilder, Profile},
    ext::{AsExtension, Extension},
    name::Name,
    spki::SubjectPublicKeyInfoOwned,
    time::Validity,
    Certificate,
};

use crate::{serial, CertificateAuthority};

/// Yubico's extension with the card's serial number.
pub const SERIAL_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// Yubico's extension with the key's PIN policy and touch policy, one byte each.
pub const POLICY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// PIN policy byte values (Yubico): `1` never, `2` once per session, `3` always.
pub const PIN_POLICY_NEVER: u8 = 1;
pub const PIN_POLICY_ONCE: u8 = 2;
/// Touch policy byte values (Yubico): `1` never.
pub const TOUCH_POLICY_NEVER: u8 = 1;

const VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

struct SerialExtension(u32);

impl AssociatedOid for SerialExtension {
    const OID: ObjectIdentifier = SERIAL_OID;
}

impl Encode for SerialExtension {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.0.encoded_len()
    }

    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        self.0.encode(writer)
    }
}

impl AsExtension for SerialExtension {
    fn critical(&self, _: &Name, _: &[Extension]) -> bool {
        false
    }
}

/// The two policy bytes as they are, not wrapped in a DER element (as YubiKeys write them).
struct PolicyExtension([u8; 2]);

impl AssociatedOid for PolicyExtension {
    const OID: ObjectIdentifier = POLICY_OID;
}

impl Encode for PolicyExtension {
    fn encoded_len(&self) -> der::Result<der::Length> {
        Ok(der::Length::new(2))
    }

    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl AsExtension for PolicyExtension {
    fn critical(&self, _: &Name, _: &[Extension]) -> bool {
        false
    }
}

impl CertificateAuthority {
    /// The card maker's root (for the virtual card: created by `virtual-card init --maker-ca`):
    /// it certifies each card's attestation key.
    pub fn load_or_create_maker(dir: &std::path::Path) -> anyhow::Result<Self> {
        Self::load_or_create_named(dir, "CN=Virtual PIV Card Maker Attestation Root,O=Smartcard Self-Service")
    }

    /// A new attestation key for the card with `serial`, and its certificate from this maker.
    pub fn provision_attestation_key(&self, serial_number: u32) -> anyhow::Result<AttestationKey> {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?;
        let subject = Name::from_str(&format!("CN=Virtual PIV Attestation,serialNumber={serial_number}"))?;
        let profile = Profile::SubCA {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            path_len_constraint: Some(0),
        };
        let builder = CertificateBuilder::new(
            profile,
            serial(),
            Validity::from_now(VALIDITY)?,
            subject,
            spki,
            &self.key,
        )?;
        Ok(AttestationKey { key, certificate: builder.build::<DerSignature>()? })
    }
}

/// One card's attestation key (slot F9) and its certificate from the maker.
#[derive(Debug, Clone)]
pub struct AttestationKey {
    key: SigningKey,
    certificate: Certificate,
}

impl AttestationKey {
    /// From the stored scalar and certificate (DER).
    pub fn from_parts(scalar: &[u8], certificate_der: &[u8]) -> anyhow::Result<Self> {
        let key = SigningKey::from_slice(scalar).map_err(|e| anyhow::anyhow!("attestation key: {e}"))?;
        Ok(Self { key, certificate: Certificate::from_der(certificate_der)? })
    }

    pub fn scalar(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificate for a P-256 key (`04‖X‖Y`) generated in `slot` of the card `serial`.
    pub fn attest(
        &self,
        slot: u8,
        public_point: &[u8],
        serial_number: u32,
        pin_policy: u8,
    ) -> anyhow::Result<Certificate> {
        let public = p256::PublicKey::from_sec1_bytes(public_point)
            .map_err(|_| anyhow::anyhow!("not a P-256 point"))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(public)?;
        let subject = Name::from_str(&format!("CN=Virtual PIV Attestation {slot:02x}"))?;
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let mut builder = CertificateBuilder::new(
            profile,
            serial(),
            Validity::from_now(VALIDITY)?,
            subject,
            spki,
            &self.key,
        )?;
        builder.add_extension(&SerialExtension(serial_number))?;
        builder.add_extension(&PolicyExtension([pin_policy, TOUCH_POLICY_NEVER]))?;
        Ok(builder.build::<DerSignature>()?)
    }
}

/// Who vouched for a key: the maker root's subject and the card's serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    pub root: String,
    pub serial: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error("an attestation certificate is not valid DER X.509")]
    Malformed,
    #[error("the card's attestation certificate is not from a trusted maker")]
    UntrustedMaker,
    #[error("an attestation signature does not verify")]
    BadSignature,
    #[error("the attestation is for another key than the one reported")]
    OtherKey,
    #[error("the attestation uses an algorithm this service does not check (only ECDSA P-256 with SHA-256)")]
    UnsupportedAlgorithm,
}

/// Checks that the card's `device` certificate (F9) was signed by one of `roots` and that
/// `slot` certifies `public_point` under the F9 key.
pub fn verify(
    roots: &[Certificate],
    device_der: &[u8],
    slot_der: &[u8],
    public_point: &[u8],
) -> Result<Attested, AttestationError> {
    let device = Certificate::from_der(device_der).map_err(|_| AttestationError::Malformed)?;
    let slot = Certificate::from_der(slot_der).map_err(|_| AttestationError::Malformed)?;
    let root = roots
        .iter()
        .filter(|root| root.tbs_certificate.subject == device.tbs_certificate.issuer)
        .find(|root| signed_by(&device, root).is_ok())
        .ok_or(AttestationError::UntrustedMaker)?;
    if slot.tbs_certificate.issuer != device.tbs_certificate.subject {
        return Err(AttestationError::BadSignature);
    }
    signed_by(&slot, &device)?;
    if slot.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes() != public_point {
        return Err(AttestationError::OtherKey);
    }
    let serial = slot
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SERIAL_OID)
        .and_then(|e| u32::from_der(e.extn_value.as_bytes()).ok());
    Ok(Attested { root: root.tbs_certificate.subject.to_string(), serial })
}

fn signed_by(certificate: &Certificate, issuer: &Certificate) -> Result<(), AttestationError> {
    if certificate.signature_algorithm.oid != ECDSA_WITH_SHA256 {
        return Err(AttestationError::UnsupportedAlgorithm);
    }
    let key_bytes = issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
    let key = VerifyingKey::from_sec1_bytes(key_bytes).map_err(|_| AttestationError::UnsupportedAlgorithm)?;
    let signature = certificate.signature.as_bytes().ok_or(AttestationError::Malformed)?;
    let signature = Signature::from_der(signature).map_err(|_| AttestationError::BadSignature)?;
    let tbs = certificate.tbs_certificate.to_der().map_err(|_| AttestationError::Malformed)?;
    key.verify(&tbs, &signature).map_err(|_| AttestationError::BadSignature)
}

#[cfg(test)]
mod tests {
    use der::Encode;

    use super::*;

    fn point() -> Vec<u8> {
        let key = SigningKey::random(&mut rand_core::OsRng);
        key.verifying_key().to_encoded_point(false).as_bytes().to_vec()
    }

    #[test]
    fn a_key_attested_by_a_card_of_a_trusted_maker_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let maker = CertificateAuthority::load_or_create_maker(dir.path()).unwrap();
        let card = maker.provision_attestation_key(1234).unwrap();
        let key = point();
        let slot = card.attest(0x9a, &key, 1234, PIN_POLICY_ONCE).unwrap().to_der().unwrap();
        let device = card.certificate().to_der().unwrap();
        let roots = [maker.certificate().clone()];
        let attested = verify(&roots, &device, &slot, &key).unwrap();
        assert_eq!(attested.serial, Some(1234));
        assert!(attested.root.contains("Card Maker"), "{}", attested.root);

        // The same card attesting another key does not vouch for this one.
        assert_eq!(verify(&roots, &device, &slot, &point()), Err(AttestationError::OtherKey));
        // Stored and loaded again, the card's key still attests.
        let again = AttestationKey::from_parts(&card.scalar(), &device).unwrap();
        let slot = again.attest(0x9e, &key, 1234, PIN_POLICY_NEVER).unwrap().to_der().unwrap();
        assert!(verify(&roots, &device, &slot, &key).is_ok());
    }

    #[test]
    fn an_attestation_from_an_untrusted_maker_or_a_software_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let maker = CertificateAuthority::load_or_create_maker(&dir.path().join("maker")).unwrap();
        // What an attacker without a card does: their own "maker" with the same name.
        let forger = CertificateAuthority::load_or_create_maker(&dir.path().join("forger")).unwrap();
        let fake_card = forger.provision_attestation_key(1).unwrap();
        let key = point();
        let slot = fake_card.attest(0x9a, &key, 1, PIN_POLICY_ONCE).unwrap().to_der().unwrap();
        let device = fake_card.certificate().to_der().unwrap();
        assert_eq!(
            verify(&[maker.certificate().clone()], &device, &slot, &key),
            Err(AttestationError::UntrustedMaker)
        );
        // A genuine device certificate with a slot certificate the attacker signed.
        let card = maker.provision_attestation_key(2).unwrap();
        let genuine_device = card.certificate().to_der().unwrap();
        assert_eq!(
            verify(&[maker.certificate().clone()], &genuine_device, &slot, &key),
            Err(AttestationError::BadSignature)
        );
        assert_eq!(verify(&[], &device, &slot, &key), Err(AttestationError::UntrustedMaker));
        assert_eq!(
            verify(&[maker.certificate().clone()], b"junk", &slot, &key),
            Err(AttestationError::Malformed)
        );
    }
}
