//! The card management key (9B): 3DES or AES, used one block at a time in the
//! GENERAL AUTHENTICATE challenge–response (SP 800-73-4 Part 2 Appendix A.1, SP 800-78-4).

use cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use zeroize::Zeroizing;

use crate::ids::alg;

/// The well-known default of fresh cards (YubiKey and most PIV test cards).
pub const DEFAULT_3DES_KEY: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// The management-key algorithms of PIV, in the order a host tries a factory key: 3DES (most
/// cards), AES-192 (YubiKey 5.7+), then the two other AES lengths.
pub const ALGORITHMS: [u8; 4] = [alg::TDES, alg::AES_192, alg::AES_128, alg::AES_256];

/// Key bytes of a management-key algorithm (`None`: not a management-key algorithm).
pub fn key_length(algorithm: u8) -> Option<usize> {
    match algorithm {
        alg::TDES | alg::AES_192 => Some(24),
        alg::AES_128 => Some(16),
        alg::AES_256 => Some(32),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgmtKeyError {
    #[error("management key algorithm {0:#04x} is not 3DES or AES")]
    UnknownAlgorithm(u8),
    #[error("a {algorithm} management key is {expected} bytes, not {actual}")]
    WrongLength { algorithm: &'static str, expected: usize, actual: usize },
    #[error("the block is {actual} bytes; this algorithm uses {expected}")]
    WrongBlockLength { expected: usize, actual: usize },
    #[error("the management key is not valid hex")]
    NotHex,
}

/// A symmetric management key; the bytes are zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagementKey {
    algorithm: u8,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagementKey({}, ***)", self.algorithm_name())
    }
}

impl ManagementKey {
    pub fn new(algorithm: u8, key: &[u8]) -> Result<Self, MgmtKeyError> {
        let expected = key_length(algorithm).ok_or(MgmtKeyError::UnknownAlgorithm(algorithm))?;
        if key.len() != expected {
            let algorithm = name_of(algorithm);
            return Err(MgmtKeyError::WrongLength { algorithm, expected, actual: key.len() });
        }
        Ok(Self { algorithm, key: Zeroizing::new(key.to_vec()) })
    }

    /// Parses hex; the length picks 3DES (24 bytes) unless `algorithm` says otherwise.
    pub fn from_hex(algorithm: u8, hex: &str) -> Result<Self, MgmtKeyError> {
        let bytes = Zeroizing::new(decode_hex(hex).ok_or(MgmtKeyError::NotHex)?);
        Self::new(algorithm, &bytes)
    }

    pub fn default_3des() -> Self {
        Self { algorithm: alg::TDES, key: Zeroizing::new(DEFAULT_3DES_KEY.to_vec()) }
    }

    /// A key of `algorithm` made of the first bytes of `material` (which must be long enough):
    /// one random secret serves whichever algorithm the card turns out to take.
    pub fn from_material(algorithm: u8, material: &[u8]) -> Result<Self, MgmtKeyError> {
        let length = key_length(algorithm).ok_or(MgmtKeyError::UnknownAlgorithm(algorithm))?;
        let key = material.get(..length).ok_or(MgmtKeyError::WrongLength {
            algorithm: name_of(algorithm),
            expected: length,
            actual: material.len(),
        })?;
        Self::new(algorithm, key)
    }

    /// The factory default under `algorithm`: `01 02 … 08` repeated to the key's length (the
    /// 3DES and AES-192 defaults are the same 24 bytes).
    pub fn factory(algorithm: u8) -> Result<Self, MgmtKeyError> {
        let material: Vec<u8> = (1..=8u8).cycle().take(32).collect();
        Self::from_material(algorithm, &material)
    }

    /// Whether this is the factory default of its algorithm.
    pub fn is_factory(&self) -> bool {
        Self::factory(self.algorithm).is_ok_and(|factory| factory == *self)
    }

    pub fn algorithm(&self) -> u8 {
        self.algorithm
    }

    pub fn algorithm_name(&self) -> &'static str {
        name_of(self.algorithm)
    }

    pub fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    /// Challenge and witness size: the cipher's block.
    pub fn block_size(&self) -> usize {
        if self.algorithm == alg::TDES {
            8
        } else {
            16
        }
    }

    pub fn encrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, MgmtKeyError> {
        self.crypt(block, true)
    }

    pub fn decrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, MgmtKeyError> {
        self.crypt(block, false)
    }

    fn crypt(&self, block: &[u8], encrypt: bool) -> Result<Vec<u8>, MgmtKeyError> {
        if block.len() != self.block_size() {
            return Err(MgmtKeyError::WrongBlockLength { expected: self.block_size(), actual: block.len() });
        }
        let mut buf = block.to_vec();
        fn run<C: BlockEncrypt + BlockDecrypt + KeyInit>(key: &[u8], buf: &mut [u8], encrypt: bool) {
            // Lengths were checked in `new`, so `new_from_slice` cannot fail here.
            if let Ok(cipher) = C::new_from_slice(key) {
                let block = GenericArray::from_mut_slice(buf);
                if encrypt {
                    cipher.encrypt_block(block);
                } else {
                    cipher.decrypt_block(block);
                }
            }
        }
        match self.algorithm {
            alg::TDES => run::<des::TdesEde3>(&self.key, &mut buf, encrypt),
            alg::AES_128 => run::<aes::Aes128>(&self.key, &mut buf, encrypt),
            alg::AES_192 => run::<aes::Aes192>(&self.key, &mut buf, encrypt),
            _ => run::<aes::Aes256>(&self.key, &mut buf, encrypt),
        }
        Ok(buf)
    }
}

/// The algorithm's name as people know it.
pub fn name_of(algorithm: u8) -> &'static str {
    match algorithm {
        alg::TDES => "3DES",
        alg::AES_128 => "AES-128",
        alg::AES_192 => "AES-192",
        alg::AES_256 => "AES-256",
        _ => "unknown",
    }
}

/// Random bytes from the operating system (challenges, witnesses, new keys).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    // getrandom only fails on platforms without an entropy source, where nothing here can work.
    if getrandom::getrandom(&mut out).is_err() {
        panic!("the operating system has no random number source");
    }
    out
}

pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_round_trips_a_block() {
        for (algorithm, len) in [(alg::TDES, 24), (alg::AES_128, 16), (alg::AES_192, 24), (alg::AES_256, 32)]
        {
            let key = ManagementKey::new(algorithm, &vec![7; len]).unwrap();
            let block = vec![0x42; key.block_size()];
            let encrypted = key.encrypt_block(&block).unwrap();
            assert_ne!(encrypted, block);
            assert_eq!(key.decrypt_block(&encrypted).unwrap(), block);
        }
    }

    #[test]
    fn aes_128_matches_the_fips_197_vector() {
        let key = ManagementKey::from_hex(alg::AES_128, "000102030405060708090a0b0c0d0e0f").unwrap();
        let plain = decode_hex("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(encode_hex(&key.encrypt_block(&plain).unwrap()), "69c4e0d86a7b0430d8cdb78070b4c55a");
    }

    #[test]
    fn the_factory_key_of_each_algorithm_is_the_one_pattern_at_its_length() {
        assert_eq!(ManagementKey::factory(alg::TDES).unwrap(), ManagementKey::default_3des());
        assert_eq!(ManagementKey::factory(alg::AES_192).unwrap().key_bytes(), DEFAULT_3DES_KEY);
        assert_eq!(ManagementKey::factory(alg::AES_128).unwrap().key_bytes(), &DEFAULT_3DES_KEY[..16]);
        let aes_256 = ManagementKey::factory(alg::AES_256).unwrap();
        assert_eq!(
            (aes_256.key_bytes().len(), aes_256.key_bytes()[24..].to_vec()),
            (32, vec![1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(ALGORITHMS.iter().all(|&a| ManagementKey::factory(a).unwrap().is_factory()));
        assert!(!ManagementKey::new(alg::TDES, &[9; 24]).unwrap().is_factory());
        let material = [7u8; 32];
        assert_eq!(ManagementKey::from_material(alg::AES_128, &material).unwrap().key_bytes(), &[7; 16]);
        assert!(matches!(
            ManagementKey::from_material(alg::AES_256, &[7; 24]),
            Err(MgmtKeyError::WrongLength { .. })
        ));
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        assert!(matches!(ManagementKey::new(alg::AES_128, &[0; 24]), Err(MgmtKeyError::WrongLength { .. })));
        assert_eq!(ManagementKey::new(0x11, &[0; 24]), Err(MgmtKeyError::UnknownAlgorithm(0x11)));
        let key = ManagementKey::default_3des();
        assert!(matches!(key.encrypt_block(&[0; 16]), Err(MgmtKeyError::WrongBlockLength { .. })));
        assert_eq!(ManagementKey::from_hex(alg::TDES, "zz"), Err(MgmtKeyError::NotHex));
        assert_eq!(format!("{key:?}"), "ManagementKey(3DES, ***)");
    }
}
