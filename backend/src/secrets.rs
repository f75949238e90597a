//! Random tokens and codes, and how they are kept: only hashes are stored, and comparisons of
//! secrets take the same time whatever the input.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 32 random bytes, URL-safe base64: session tokens and challenge ids.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// `digits` uniformly random decimal digits (rejection sampling, no modulo bias).
pub fn random_digits(digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    while out.len() < digits {
        let byte = random_bytes::<1>()[0];
        if byte < 250 {
            out.push(char::from(b'0' + byte % 10));
        }
    }
    out
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Hashes one-time codes under a server key, so a copy of the database alone does not let
/// anyone try the (small) code space offline.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher(***)")
    }
}

impl CodeHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// HMAC-SHA-256 over the purpose and the code, so a code for one purpose never matches another.
    pub fn hash(&self, purpose: &str, code: &str) -> Vec<u8> {
        #[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn matches(&self, purpose: &str, code: &str, stored: &[u8]) -> bool {
        self.hash(purpose, code).ct_eq(stored).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_asked_length_and_vary() {
        let a = random_digits(8);
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn a_code_matches_only_its_own_hash_and_purpose() {
        let hasher = CodeHasher::new([7; 32]);
        let stored = hasher.hash("registration", "12345678");
        assert!(hasher.matches("registration", "12345678", &stored));
        assert!(!hasher.matches("registration", "12345679", &stored));
        assert!(!hasher.matches("unlock", "12345678", &stored));
        assert!(!CodeHasher::new([8; 32]).matches("registration", "12345678", &stored));
    }
}
