//! The card's persistent state: what a real card keeps in its secure element.
//!
//! Stored as JSON with mode 0600 and written atomically (temporary file in the same folder,
//! fsync, rename, fsync of the folder), so a crash leaves either the old or the new card,
//! never a corrupt one. Counters are saved before the card answers, so a crash can never
//! give back a spent PIN try.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write,
    path::Path,
};

use anyhow::Context;
use piv::{
    ids::alg,
    mgmt::{decode_hex, encode_hex, random_bytes},
};
use serde::{Deserialize, Serialize};

pub const DEFAULT_PIN: &str = piv::pin::FACTORY_PIN;
pub const DEFAULT_PUK: &str = piv::pin::FACTORY_PUK;
pub const DEFAULT_TRIES: u8 = 3;

/// A private key in a slot (raw scalar bytes, hex).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub algorithm: u8,
    pub scalar_hex: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredKey({:#04x}, ***)", self.algorithm)
    }
}

/// The card's attestation key (slot F9) and its certificate from the maker (hex).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttestation {
    pub scalar_hex: String,
    pub certificate_hex: String,
}

impl std::fmt::Debug for StoredAttestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredAttestation(***)")
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// Card serial (what `GET SERIAL` answers and tools show).
    pub serial: u32,
    /// PIN and PUK as the digits the holder knows (6–8 ASCII digits).
    pub pin: String,
    pub puk: String,
    pub pin_tries_max: u8,
    pub pin_tries_left: u8,
    pub puk_tries_max: u8,
    pub puk_tries_left: u8,
    pub mgmt_algorithm: u8,
    pub mgmt_key_hex: String,
    /// Slot (`9A`…) → private key.
    pub keys: BTreeMap<String, StoredKey>,
    /// Object tag (hex, e.g. `5fc102`) → object contents (hex, what is inside `53`).
    pub objects: BTreeMap<String, String>,
    /// The attestation key, if the card was made with one (`init --maker-ca`); without it the
    /// card answers ATTEST with `6D00`, like PIV cards that have no attestation.
    #[serde(default)]
    pub attestation: Option<StoredAttestation>,
    /// How this card departs from the typical one (nothing, unless made so).
    #[serde(default)]
    pub quirks: crate::quirks::Quirks,
}

impl std::fmt::Debug for CardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardState")
            .field("serial", &self.serial)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("puk_tries_left", &self.puk_tries_left)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CardState {
    /// A blank card as it leaves the factory: defaults, no keys, only the Discovery object.
    pub fn blank(pin: &str, puk: &str, mgmt_algorithm: u8, mgmt_key: &[u8]) -> Self {
        let serial_bytes = random_bytes(4);
        let serial =
            u32::from_be_bytes([serial_bytes[0] & 0x7F, serial_bytes[1], serial_bytes[2], serial_bytes[3]]);
        let mut state = Self {
            serial,
            pin: pin.to_owned(),
            puk: puk.to_owned(),
            pin_tries_max: DEFAULT_TRIES,
            pin_tries_left: DEFAULT_TRIES,
            puk_tries_max: DEFAULT_TRIES,
            puk_tries_left: DEFAULT_TRIES,
            mgmt_algorithm,
            mgmt_key_hex: encode_hex(mgmt_key),
            keys: BTreeMap::new(),
            objects: BTreeMap::new(),
            attestation: None,
            quirks: Default::default(),
        };
        // Discovery (SP 800-73-4 Part 1 §3.3.2): the AID, and PIN usage policy 4000
        // ("PIV application PIN satisfies the access control rules").
        let mut discovery = piv::tlv::encode(0x4F, &piv::ids::PIV_AID);
        discovery.extend(piv::tlv::encode(0x5F2F, &[0x40, 0x00]));
        state.set_object(piv::ids::object::DISCOVERY, Some(&discovery));
        state
    }

    /// Gives the card an attestation key certified by `maker`, as a maker does at the factory;
    /// its certificate is readable in object `5FFF01`.
    pub fn provision_attestation(&mut self, maker: &card_ca::CertificateAuthority) -> anyhow::Result<()> {
        use der::Encode;
        let key = maker.provision_attestation_key(self.serial)?;
        let der = key.certificate().to_der()?;
        self.attestation = Some(StoredAttestation {
            scalar_hex: encode_hex(&key.scalar()),
            certificate_hex: encode_hex(&der),
        });
        self.set_object(
            piv::ids::object::ATTESTATION_CERTIFICATE,
            Some(&piv::objects::certificate_object(&der)),
        );
        Ok(())
    }

    /// Writes a CHUID with a random GUID, as some makers' applets do when they first run: the
    /// card is still blank (factory credentials), whatever its CHUID says.
    pub fn write_factory_chuid(&mut self) -> [u8; 16] {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&random_bytes(16));
        let chuid = piv::objects::chuid(&guid, "20991231");
        self.set_object(piv::ids::object::CHUID, Some(&chuid));
        guid
    }

    pub fn mgmt_key(&self) -> Option<Vec<u8>> {
        decode_hex(&self.mgmt_key_hex)
    }

    pub fn object(&self, tag: u32) -> Option<Vec<u8>> {
        self.objects.get(&format!("{tag:06x}")).and_then(|hex| decode_hex(hex))
    }

    pub fn set_object(&mut self, tag: u32, contents: Option<&[u8]>) {
        let key = format!("{tag:06x}");
        match contents {
            Some(bytes) => self.objects.insert(key, encode_hex(bytes)),
            None => self.objects.remove(&key),
        };
    }

    pub fn key(&self, slot: u8) -> Option<&StoredKey> {
        self.keys.get(&format!("{slot:02x}"))
    }

    pub fn set_key(&mut self, slot: u8, key: StoredKey) {
        self.keys.insert(format!("{slot:02x}"), key);
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("Failed to read the card state {}", path.display()))?;
        let state: Self = serde_json::from_str(&text)
            .with_context(|| format!("The card state {} is not valid", path.display()))?;
        anyhow::ensure!(
            matches!(state.mgmt_algorithm, alg::TDES | alg::AES_128 | alg::AES_192 | alg::AES_256),
            "The card state has an unknown management key algorithm"
        );
        Ok(state)
    }

    /// Writes atomically: temp file, fsync, rename over the old file, fsync the folder.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let file_name = path.file_name().context("The state path has no file name")?.to_string_lossy();
        let temp = folder.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let json = serde_json::to_vec_pretty(self)?;
        {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file =
                options.open(&temp).with_context(|| format!("Failed to write {}", temp.display()))?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        fs::rename(&temp, path).with_context(|| format!("Failed to replace {}", path.display()))?;
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_card_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let state = CardState::blank(DEFAULT_PIN, DEFAULT_PUK, alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY);
        state.save(&path).unwrap();
        assert_eq!(CardState::load(&path).unwrap(), state);
        assert!(state.object(piv::ids::object::DISCOVERY).is_some());
        assert!(state.keys.is_empty());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        fs::write(&path, "{ not json").unwrap();
        let err = CardState::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("is not valid"), "{err:#}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut state = CardState::blank("987654", "87654321", alg::TDES, &piv::mgmt::DEFAULT_3DES_KEY);
        // The serial is random: fixed here so its digits cannot look like a leaked secret.
        state.serial = 7;
        let debug = format!("{state:?}");
        assert!(debug.contains("serial: 7"), "{debug}");
        assert!(
            !debug.contains("987654")
                && !debug.contains("87654321")
                && !debug.contains(&state.mgmt_key_hex[..8]),
            "{debug}"
        );
    }
}
