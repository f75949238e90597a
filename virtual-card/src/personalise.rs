//! A test fixture: readies a blank card in one step, the way an issuing station would (the
//! product's own path is the RA console's issuance through the card agent, which also sets the
//! holder's PIN, a random PUK and a per-card management key): authenticate with
//! the management key, GENERATE P-256 keys in 9A and 9E on the card, have a demo CA certify the
//! public keys, PUT DATA the certificates and a CHUID with a fresh GUID. Everything goes through
//! the card's own commands ([`piv::host::PivSession`]); the state file is never edited directly.

use anyhow::Context;
pub use card_ca::CertificateAuthority;
use der::{Decode, Encode};
use piv::{
    host::{PivSession, Transport},
    ids::{alg, key, object},
    mgmt::{random_bytes, ManagementKey},
    objects::{certificate_object, chuid},
};
use x509_cert::Certificate;

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
    ca: &CertificateAuthority,
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
    piv::objects::chuid_guid(chuid)
}

/// Parses a certificate object's DER.
pub fn certificate_from_object(object: &[u8]) -> Option<Certificate> {
    let der = piv::objects::certificate_der(object)?;
    Certificate::from_der(der).ok()
}
