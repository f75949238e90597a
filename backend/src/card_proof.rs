//! Checks what a card signed: ECDSA P-256 over a 32-byte challenge the backend issued, with the
//! public key recorded for that card (the card signs the challenge as a prehashed digest).

use p256::{
    ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
};
use protocol::error_code::ErrorCode;

/// Whether `signature_der` is that key's signature over the challenge the backend issued for
/// `purpose` (the card signs `envelope::signed_digest(purpose, challenge)`, so a signature made
/// for another purpose is simply "no").
///
/// ring checks these, over the message it hashes itself: a quarter of the CPU of p256's
/// verifier (86 against 368 µs a signature on the benchmark machine), on the routes that check
/// one at every request, sign-in and unlock (issue 16). The rare digests the agent builds are
/// checked by [`verifies`].
pub fn verifies_for(
    public_key_spki_der: &[u8],
    purpose: envelope::Purpose,
    challenge: &[u8],
    signature_der: &[u8],
) -> bool {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    // p256 parses the SubjectPublicKeyInfo (and checks the point is on the curve); ring takes
    // the bare point.
    let Ok(key) = VerifyingKey::from_public_key_der(public_key_spki_der) else { return false };
    let point = key.to_encoded_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes())
        .verify(&envelope::signed_preimage(purpose, challenge), signature_der)
        .is_ok()
}

/// Whether `signature_der` is that key's signature over the 32-byte `digest` (an offer digest
/// the agent built, or a purpose's digest). Malformed keys or signatures are simply "no".
pub fn verifies(public_key_spki_der: &[u8], digest: &[u8], signature_der: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_public_key_der(public_key_spki_der) else { return false };
    let Ok(signature) = Signature::from_der(signature_der) else { return false };
    key.verify_prehash(digest, &signature).is_ok()
}

/// A signature as the agent returns it (DER, base64), or the API's 400 for anything else.
pub fn signature_from_base64(b64: &str) -> Result<Vec<u8>, crate::error::ApiError> {
    use base64::{engine::general_purpose::STANDARD, Engine};
    STANDARD.decode(b64).map_err(|_| {
        crate::error::ApiError::rejected(ErrorCode::InvalidRequest, "The signature must be base64.")
    })
}

/// The SubjectPublicKeyInfo of a DER or PEM X.509 certificate (for binding a card by its
/// certificates).
pub fn public_key_of_certificate(certificate: &[u8]) -> anyhow::Result<Vec<u8>> {
    use der::{Decode, DecodePem, Encode};
    let parsed = if certificate.starts_with(b"-----BEGIN") {
        x509_cert::Certificate::from_pem(certificate)?
    } else {
        x509_cert::Certificate::from_der(certificate)?
    };
    Ok(parsed.tbs_certificate.subject_public_key_info.to_der()?)
}

#[cfg(test)]
mod tests {
    use p256::{
        ecdsa::{signature::hazmat::PrehashSigner, SigningKey},
        pkcs8::EncodePublicKey,
    };

    use super::*;

    #[test]
    fn only_the_right_key_over_the_right_challenge_verifies() {
        let card = SigningKey::random(&mut rand_core::OsRng);
        let spki = card.verifying_key().to_public_key_der().unwrap().into_vec();
        let challenge = [3u8; 32];
        let signature: Signature = card.sign_prehash(&challenge).unwrap();
        let der = signature.to_der();
        assert!(verifies(&spki, &challenge, der.as_bytes()));
        assert!(!verifies(&spki, &[4u8; 32], der.as_bytes()));
        let other = SigningKey::random(&mut rand_core::OsRng);
        let other_spki = other.verifying_key().to_public_key_der().unwrap().into_vec();
        assert!(!verifies(&other_spki, &challenge, der.as_bytes()));
        assert!(!verifies(b"junk", &challenge, der.as_bytes()));
        assert!(!verifies(&spki, &challenge, b"junk"));
    }

    #[test]
    fn a_purposes_signature_is_accepted_exactly_when_the_digest_check_accepts_it() {
        use envelope::Purpose;
        let card = SigningKey::random(&mut rand_core::OsRng);
        let spki = card.verifying_key().to_public_key_der().unwrap().into_vec();
        let challenge = [9u8; 32];
        let digest = envelope::signed_digest(Purpose::SignIn, &challenge);
        let signature: Signature = card.sign_prehash(&digest).unwrap();
        let der = signature.to_der();
        assert!(verifies(&spki, &digest, der.as_bytes()));
        assert!(verifies_for(&spki, Purpose::SignIn, &challenge, der.as_bytes()));
        // Made for sign-in, it proves nothing else; nor over another challenge, nor by another key.
        assert!(!verifies_for(&spki, Purpose::UnlockProof, &challenge, der.as_bytes()));
        assert!(!verifies_for(&spki, Purpose::SignIn, &[8u8; 32], der.as_bytes()));
        let other = SigningKey::random(&mut rand_core::OsRng);
        let other_spki = other.verifying_key().to_public_key_der().unwrap().into_vec();
        assert!(!verifies_for(&other_spki, Purpose::SignIn, &challenge, der.as_bytes()));
        // A signature's (r, s) as raw bytes, not DER, is refused by both.
        let raw = signature.to_bytes();
        assert!(!verifies(&spki, &digest, &raw));
        assert!(!verifies_for(&spki, Purpose::SignIn, &challenge, &raw));
        assert!(!verifies_for(b"junk", Purpose::SignIn, &challenge, der.as_bytes()));
        assert!(!verifies_for(&spki, Purpose::SignIn, &challenge, b""));
    }
}
