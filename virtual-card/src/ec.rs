//! The card's elliptic-curve keys: generation and signing of a digest the host computed.

use ecdsa::signature::hazmat::PrehashSigner;
use piv::ids::alg;
use rand_core::OsRng;
use zeroize::Zeroizing;

/// A new key: private scalar (zeroized on drop) and the public point `04‖X‖Y`.
#[derive(Debug)]
pub struct NewKey {
    pub scalar: Zeroizing<Vec<u8>>,
    pub public_point: Vec<u8>,
}

/// Generates a key on the card; `None` for an algorithm the card does not support.
pub fn generate(algorithm: u8) -> Option<NewKey> {
    match algorithm {
        alg::ECC_P256 => {
            let key = p256::ecdsa::SigningKey::random(&mut OsRng);
            let point = key.verifying_key().to_encoded_point(false).as_bytes().to_vec();
            Some(NewKey { scalar: Zeroizing::new(key.to_bytes().to_vec()), public_point: point })
        }
        alg::ECC_P384 => {
            let key = p384::ecdsa::SigningKey::random(&mut OsRng);
            let point = key.verifying_key().to_encoded_point(false).as_bytes().to_vec();
            Some(NewKey { scalar: Zeroizing::new(key.to_bytes().to_vec()), public_point: point })
        }
        _ => None,
    }
}

/// The public point `04‖X‖Y` of a stored scalar.
pub fn public_point(algorithm: u8, scalar: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        alg::ECC_P256 => {
            let key = p256::ecdsa::SigningKey::from_slice(scalar).ok()?;
            Some(key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
        }
        alg::ECC_P384 => {
            let key = p384::ecdsa::SigningKey::from_slice(scalar).ok()?;
            Some(key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
        }
        _ => None,
    }
}

/// The digest length an ECC algorithm signs (the curve's field size).
pub fn digest_len(algorithm: u8) -> Option<usize> {
    match algorithm {
        alg::ECC_P256 => Some(32),
        alg::ECC_P384 => Some(48),
        _ => None,
    }
}

/// ECDSA over `digest` with the stored scalar; the signature in DER, as PIV returns it.
pub fn sign(algorithm: u8, scalar: &[u8], digest: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        alg::ECC_P256 => {
            let key = p256::ecdsa::SigningKey::from_slice(scalar).ok()?;
            let signature: p256::ecdsa::Signature = key.sign_prehash(digest).ok()?;
            Some(signature.to_der().as_bytes().to_vec())
        }
        alg::ECC_P384 => {
            let key = p384::ecdsa::SigningKey::from_slice(scalar).ok()?;
            let signature: p384::ecdsa::Signature = key.sign_prehash(digest).ok()?;
            Some(signature.to_der().as_bytes().to_vec())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ecdsa::signature::hazmat::PrehashVerifier;

    use super::*;

    #[test]
    fn a_p256_signature_verifies_with_the_generated_public_point() {
        let key = generate(alg::ECC_P256).unwrap();
        let digest = [0x5A; 32];
        let der = sign(alg::ECC_P256, &key.scalar, &digest).unwrap();
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_point).unwrap();
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        public.verify_prehash(&digest, &signature).unwrap();
    }

    #[test]
    fn p384_works_and_rsa_is_not_offered() {
        let key = generate(alg::ECC_P384).unwrap();
        assert_eq!(key.public_point.len(), 97);
        assert!(sign(alg::ECC_P384, &key.scalar, &[1; 48]).is_some());
        assert!(generate(alg::RSA_2048).is_none());
    }
}
