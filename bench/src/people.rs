//! The simulated people: software PIV identities (P-256 9A and 9E keys, as a personalised card
//! holds), brought in by the bulk path a real migration uses (`backend admin import-cards`), each
//! coming from an address of their own.

use std::fmt::Write as _;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use envelope::Purpose;
use p256::{
    ecdsa::{signature::hazmat::PrehashSigner, Signature, SigningKey},
    pkcs8::EncodePublicKey,
};

/// The answers every simulated person registers (question ids from the catalogue).
pub const ANSWERS: [(u32, &str); 4] = [(1, "St Mary's"), (2, "Oak Road"), (3, "Jaws"), (6, "Biscuit")];
/// The PUK every simulated card is imported with.
pub const PUK: &str = "12345678";

const FIRST: [&str; 16] = [
    "Fay", "Ann", "Jon", "Priya", "Mohammed", "Grace", "Oliver", "Amelia", "Ravi", "Siobhan", "Kwame",
    "Lucy", "Tomasz", "Aisha", "Gareth", "Mei",
];
const LAST: [&str; 16] = [
    "Holder", "Smith", "Jones", "Patel", "Khan", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
    "Thomas", "Roberts", "Walker", "Okafor", "Nowak",
];

#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: String,
    pub name: String,
    pub email: String,
    /// The card's GUID, 32 lowercase hex digits.
    pub guid: String,
    pub piv_auth: SigningKey,
    pub card_auth: SigningKey,
    /// The address their requests come from (`X-Forwarded-For`).
    pub address: String,
    pub roles: &'static str,
}

/// Keys for `count` people: drawn from a pool of real key pairs, so making a million people does
/// not take a million key generations (two cards may share a key; nothing in the service
/// relies on keys being unique, only GUIDs and user ids).
#[derive(Debug)]
pub struct KeyPool(Vec<SigningKey>);

impl KeyPool {
    pub fn new(size: usize) -> Self {
        Self((0..size.max(2)).map(|_| SigningKey::random(&mut rand_core::OsRng)).collect())
    }

    pub fn person(&self, index: usize, run: &str) -> Person {
        let keys = self.0.len();
        let name =
            format!("{} {} {index}", FIRST[index % FIRST.len()], LAST[(index / FIRST.len()) % LAST.len()]);
        Person {
            user_id: format!("{run}{index:07}"),
            email: format!("{}.{index}@bench.nhs.net", name.split(' ').next().unwrap_or("p").to_lowercase()),
            name,
            guid: format!("{}{index:08x}", run_hex(run)),
            piv_auth: self.0[index % keys].clone(),
            card_auth: self.0[(index + 1) % keys].clone(),
            address: format!("10.{}.{}.{}", (index >> 16) & 255, (index >> 8) & 255, index & 255),
            roles: "",
        }
    }
}

/// A run's tag as 24 hex digits, so two runs on one database never share a GUID.
fn run_hex(run: &str) -> String {
    let mut hex: String = run.bytes().map(|b| format!("{b:02x}")).collect();
    hex.truncate(24);
    format!("{hex:0>24}")
}

impl Person {
    /// The 9A signature (after VERIFY) of a base64 challenge for `purpose`, base64 DER.
    pub fn sign_9a(&self, purpose: Purpose, challenge: &str) -> anyhow::Result<String> {
        sign(&self.piv_auth, &envelope::signed_digest(purpose, &STANDARD.decode(challenge)?))
    }

    /// The 9E signature (no PIN) of a base64 unlock challenge.
    pub fn sign_9e(&self, challenge: &str) -> anyhow::Result<String> {
        sign(&self.card_auth, &envelope::signed_digest(Purpose::Presence, &STANDARD.decode(challenge)?))
    }
}

fn sign(key: &SigningKey, digest: &[u8; 32]) -> anyhow::Result<String> {
    let signature: Signature = key.sign_prehash(digest)?;
    Ok(STANDARD.encode(signature.to_der().as_bytes()))
}

fn spki(key: &SigningKey) -> anyhow::Result<String> {
    Ok(STANDARD.encode(key.verifying_key().to_public_key_der()?.as_bytes()))
}

/// The `import-cards` file for `people` (README, "Importing cards").
pub fn import_csv<'a>(people: impl Iterator<Item = &'a Person>) -> anyhow::Result<String> {
    let mut csv = String::from("user_id,name,email,roles,guid,piv_auth,card_auth,puk\n");
    for p in people {
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{PUK}",
            p.user_id,
            p.name,
            p.email,
            p.roles,
            p.guid,
            spki(&p.piv_auth)?,
            spki(&p.card_auth)?
        )?;
    }
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_differ_in_every_identifier_and_their_cards_in_their_two_keys() {
        let pool = KeyPool::new(3);
        let (a, b) = (pool.person(0, "r1"), pool.person(1, "r1"));
        assert_ne!(a.user_id, b.user_id);
        assert_ne!(a.guid, b.guid);
        assert_ne!(a.address, b.address);
        assert_eq!(a.guid.len(), 32);
        assert!(a.guid.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{}", a.guid);
        assert_ne!(a.piv_auth.verifying_key(), a.card_auth.verifying_key());
        assert_ne!(pool.person(0, "r2").guid, a.guid, "another run, other GUIDs");
    }

    #[test]
    fn the_import_file_has_the_header_and_one_row_a_person() {
        let pool = KeyPool::new(2);
        let people = [pool.person(0, "r"), pool.person(1, "r")];
        let csv = import_csv(people.iter()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "user_id,name,email,roles,guid,piv_auth,card_auth,puk");
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("r0000000,Fay Holder 0,fay.0@bench.nhs.net,,"), "{}", lines[1]);
    }
}
