//! What the backend and the card agent trust each other with, through a browser that is trusted
//! with nothing: the PUKs of an unlock ([`UnlockSecrets`]), and for an issuance the card's
//! current credentials ([`IssueSecrets`]) and its new ones ([`IssueNewSecrets`], sealed only to a
//! key the card's new 9E key vouched for: [`issue_offer_digest`]).
//!
//! 1. The agent makes a [`OneTimeKey`] for one unlock and offers its public half, bound to the
//!    card in the reader by a 9E signature over [`offer_digest`] (the backend checks it with the
//!    card's registered key, so nobody without the card can get PUKs sealed to a key of theirs).
//! 2. The backend [`seal`]s the [`UnlockSecrets`] to that key: X25519 with a fresh sender key,
//!    HKDF-SHA256, AES-256-GCM (the shape of HPKE base mode, with fixed algorithms), and signs the
//!    result with its [`EnvelopeSigner`] — over the kind, the recipient key and the ciphertext.
//! 3. The agent [`OneTimeKey::open`]s it only if the signature verifies with a [`TrustedKey`] it
//!    holds for the page's origin in its own settings (so a page can never seal secrets of its
//!    own choosing to the agent's key), once, since opening consumes the key, and uses the PUKs
//!    only if [`UnlockSecrets::check`] says they name the card in the reader and are fresh.
//!
//! Every signature a card makes for a page is over [`signed_digest`]: a [`Purpose`] label plus
//! the backend's challenge, so a signature made for one purpose never verifies for another.
//!
//! Wire form (base64): `version (2) ‖ sender public key (32) ‖ AES-GCM ciphertext and tag ‖
//! Ed25519 signature (64)`. Version 1 was unsigned; it is refused.

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use rand_core::OsRng;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

pub const VERSION: u8 = 2;
const SIGNATURE_CONTEXT: &[u8] = b"smartcard-selfservice envelope signature v1";
const SIGNATURE_BYTES: usize = 64;
const OFFER_CONTEXT: &[u8] = b"smartcard-selfservice unblock offer v1";
const ISSUE_OFFER_CONTEXT: &[u8] = b"smartcard-selfservice issue offer v1";
const RESUME_OFFER_CONTEXT: &[u8] = b"smartcard-selfservice issue resume offer v1";
/// At most the PUK the backend believes is on the card and the pending one from an unlock that
/// may have stopped half-way (see [`UnlockSecrets::current_puks`]).
pub const MAX_CANDIDATES: usize = 2;
/// Management keys to try when issuing: the factory key and a half-issued card's recorded key,
/// each under the four algorithms (cards differ in which their factory key is, e.g. YubiKey
/// firmware 5.7 moved to AES-192). A wrong management key costs no try on PIV cards.
pub const MAX_MANAGEMENT_KEY_CANDIDATES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the envelope is not in the expected format")]
    Malformed,
    #[error("the public key is not a valid X25519 key")]
    BadPublicKey,
    #[error("the envelope was not sealed to this operation's key, or was altered")]
    NotForThisKey,
    #[error("the envelope's contents are not valid")]
    BadContents,
    #[error("the envelope names another card")]
    WrongCard,
    #[error("the envelope has expired")]
    Expired,
    #[error("the envelope is not signed")]
    Unsigned,
    #[error("the envelope was not signed by a key trusted for this site")]
    Untrusted,
}

/// Contents of an envelope. Each kind has its own key-derivation label, so an envelope of one
/// kind can never be opened as another.
pub trait Sealable: Serialize + DeserializeOwned {
    const KEY_INFO: &'static [u8];
}

impl Sealable for UnlockSecrets {
    const KEY_INFO: &'static [u8] = b"smartcard-selfservice unblock envelope v1";
}

impl Sealable for IssueSecrets {
    const KEY_INFO: &'static [u8] = b"smartcard-selfservice issue envelope v1";
}

impl Sealable for IssueNewSecrets {
    const KEY_INFO: &'static [u8] = b"smartcard-selfservice issue new secrets v1";
}

/// What the backend releases for one unlock. Secrets are zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockSecrets {
    /// The card these PUKs belong to: its CHUID GUID, 32 hex digits.
    pub guid: String,
    /// Unix seconds after which the agent refuses the envelope.
    pub expires_at: u64,
    /// Unix seconds (the backend's clock) when the envelope was made: with the agent's own
    /// monotonic clock, it tells the envelope's age without trusting the workstation's clock
    /// (see [`service_now`]). 0 from a backend that predates it.
    #[serde(default)]
    pub issued_at: u64,
    /// The PUKs the card may hold, most likely first. The second exists for a card whose last
    /// unlock rotated the PUK but whose report never reached the backend.
    pub current_puks: Vec<Zeroizing<String>>,
    /// The PUK to rotate to, already recorded by the backend as pending.
    pub new_puk: Zeroizing<String>,
    /// The challenge (base64, 32 bytes) the card's 9A proof signs once the PUK is rotated. It
    /// travels here, signed, not from the page: the backend binds it to this release's pending
    /// PUK, so a proof always speaks for the envelope whose rotation it follows.
    pub proof_challenge: String,
}

impl std::fmt::Debug for UnlockSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockSecrets")
            .field("guid", &self.guid)
            .field("expires_at", &self.expires_at)
            .field("current_puks", &format_args!("[{} × ***]", self.current_puks.len()))
            .field("new_puk", &format_args!("***"))
            .finish()
    }
}

impl UnlockSecrets {
    /// Accepts the secrets only for the card with `guid`, before they expire, with 1–2 candidates.
    pub fn check(&self, guid: &str, now_unix: u64) -> Result<(), EnvelopeError> {
        if self.current_puks.is_empty() || self.current_puks.len() > MAX_CANDIDATES {
            return Err(EnvelopeError::BadContents);
        }
        if !self.guid.eq_ignore_ascii_case(guid) {
            return Err(EnvelopeError::WrongCard);
        }
        if now_unix > self.expires_at {
            return Err(EnvelopeError::Expired);
        }
        Ok(())
    }
}

/// The backend's clock now, as far as the agent can tell without trusting its own: the
/// envelope's `issued_at` plus the time the agent measured, on its monotonic clock, since it made
/// the one-time key the envelope is sealed to (`since_offer`; the envelope cannot be older). It is
/// never behind the backend's real time, so no envelope outlives its lifetime, and a workstation
/// whose clock is wrong by hours unlocks like any other. An envelope without `issued_at` (from an
/// older backend) is judged by the workstation's clock, `local_now`.
pub fn service_now(issued_at: u64, since_offer: std::time::Duration, local_now: u64) -> u64 {
    if issued_at == 0 {
        return local_now;
    }
    // Rounded up: a second begun counts.
    issued_at.saturating_add(since_offer.as_secs()).saturating_add(1)
}

/// How far the workstation's clock is off the backend's, in seconds (positive: ahead), when it
/// is off by more than `since_offer` can explain plus a minute; `None` when the clocks agree.
pub fn clock_offset(issued_at: u64, since_offer: std::time::Duration, local_now: u64) -> Option<i64> {
    if issued_at == 0 {
        return None;
    }
    let offset = i64::try_from(local_now).ok()? - i64::try_from(issued_at).ok()?;
    let slack = i64::try_from(since_offer.as_secs()).ok()?.saturating_add(60);
    (offset > slack || offset < -60).then_some(offset)
}

/// A management key in an envelope: its algorithm (`03` 3DES, `08`/`0A`/`0C` AES) and hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagementKeySecret {
    pub algorithm: u8,
    pub key_hex: Zeroizing<String>,
}

/// What the backend releases to start issuing one card: the credentials the blank card still has
/// (or, for a card whose last issuance stopped half-way, may have), to generate its keys with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSecrets {
    /// The issuance these secrets belong to.
    pub issuance_id: String,
    /// The GUID the card offered (`None`: it had no CHUID); the agent re-reads it before use.
    pub offered_guid: Option<String>,
    /// The GUID to write in the card's CHUID, 32 hex digits.
    pub new_guid: String,
    /// Unix seconds after which the agent refuses the envelope.
    pub expires_at: u64,
    /// When the envelope was made, by the backend's clock (see [`UnlockSecrets::issued_at`]).
    #[serde(default)]
    pub issued_at: u64,
    /// Management keys the card may have, the factory default first (1–4, see
    /// [`MAX_MANAGEMENT_KEY_CANDIDATES`]).
    pub current_management_keys: Vec<ManagementKeySecret>,
    /// PUKs the card may have, the factory default first.
    pub current_puks: Vec<Zeroizing<String>>,
    /// The backend certifies only keys the card attests: a card without attestation is refused
    /// before anything is generated on it.
    #[serde(default)]
    pub attestation_required: bool,
}

/// The card's new secrets, released only once the card's freshly generated 9E key has signed the
/// agent's second one-time key ([`issue_offer_digest`]), so they can only reach that card's agent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueNewSecrets {
    pub issuance_id: String,
    /// The GUID being written (the same as in [`IssueSecrets::new_guid`]).
    pub guid: String,
    pub expires_at: u64,
    /// When the envelope was made, by the backend's clock (see [`UnlockSecrets::issued_at`]).
    #[serde(default)]
    pub issued_at: u64,
    /// 32 random bytes (`algorithm` AES-256): the card gets as many of them as the algorithm of
    /// the current key it accepted takes, under that algorithm, so a card keeps the kind of key
    /// it was made for and the one it certainly supports.
    pub new_management_key: ManagementKeySecret,
    pub new_puk: Zeroizing<String>,
}

impl std::fmt::Debug for IssueNewSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueNewSecrets")
            .field("issuance_id", &self.issuance_id)
            .field("guid", &self.guid)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IssueNewSecrets {
    /// Accepts the secrets only for the issuance and GUID under way, before they expire.
    pub fn check(&self, issuance_id: &str, guid: &str, now_unix: u64) -> Result<(), EnvelopeError> {
        if self.issuance_id != issuance_id || !self.guid.eq_ignore_ascii_case(guid) {
            return Err(EnvelopeError::WrongCard);
        }
        if now_unix > self.expires_at {
            return Err(EnvelopeError::Expired);
        }
        Ok(())
    }
}

impl std::fmt::Debug for ManagementKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagementKeySecret({:#04x}, ***)", self.algorithm)
    }
}

impl std::fmt::Debug for IssueSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueSecrets")
            .field("issuance_id", &self.issuance_id)
            .field("offered_guid", &self.offered_guid)
            .field("new_guid", &self.new_guid)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IssueSecrets {
    /// Accepts the secrets only for the card that made the offer (same GUID, or still none),
    /// before they expire, with 1–2 candidates of each kind.
    pub fn check(&self, guid_on_card: Option<&str>, now_unix: u64) -> Result<(), EnvelopeError> {
        if !(1..=MAX_CANDIDATES).contains(&self.current_puks.len())
            || !(1..=MAX_MANAGEMENT_KEY_CANDIDATES).contains(&self.current_management_keys.len())
        {
            return Err(EnvelopeError::BadContents);
        }
        let same = match (&self.offered_guid, guid_on_card) {
            (None, None) => true,
            (Some(offered), Some(on_card)) => offered.eq_ignore_ascii_case(on_card),
            _ => false,
        };
        if !same {
            return Err(EnvelopeError::WrongCard);
        }
        if now_unix > self.expires_at {
            return Err(EnvelopeError::Expired);
        }
        Ok(())
    }
}

/// The agent's key pair for one unlock or issuance. Opening an envelope consumes it.
pub struct OneTimeKey {
    secret: EphemeralSecret,
    public: PublicKey,
}

impl std::fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OneTimeKey({})", self.public_key())
    }
}

impl OneTimeKey {
    pub fn generate() -> Self {
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The public key, base64.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.public.as_bytes())
    }

    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Opens an envelope signed by one of `trusted` (the keys the agent's settings hold for the
    /// page's origin). The signature is checked before anything else is done with the contents.
    pub fn open<T: Sealable>(self, envelope: &str, trusted: &[TrustedKey]) -> Result<T, EnvelopeError> {
        let bytes = STANDARD.decode(envelope).map_err(|_| EnvelopeError::Malformed)?;
        let [version, rest @ ..] = bytes.as_slice() else { return Err(EnvelopeError::Malformed) };
        if *version == 1 {
            return Err(EnvelopeError::Unsigned);
        }
        if *version != VERSION || rest.len() < 32 + 16 + SIGNATURE_BYTES {
            return Err(EnvelopeError::Malformed);
        }
        let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| EnvelopeError::Malformed)?;
        let message = signed_message(T::KEY_INFO, &self.public, body);
        if !trusted.iter().any(|key| key.0.verify(&message, &signature).is_ok()) {
            return Err(EnvelopeError::Untrusted);
        }
        let (sender, ciphertext) = body[1..].split_at(32);
        let sender: [u8; 32] = sender.try_into().map_err(|_| EnvelopeError::Malformed)?;
        let sender = PublicKey::from(sender);
        let shared = self.secret.diffie_hellman(&sender);
        if !shared.was_contributory() {
            return Err(EnvelopeError::BadPublicKey);
        }
        let (cipher, nonce, aad) = derive(T::KEY_INFO, shared.as_bytes(), &sender, &self.public)?;
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(&nonce, aes_gcm::aead::Payload { msg: ciphertext, aad: &aad })
                .map_err(|_| EnvelopeError::NotForThisKey)?,
        );
        serde_json::from_slice(&plaintext).map_err(|_| EnvelopeError::BadContents)
    }
}

/// What the signature covers: the envelope's kind, the key it is sealed to, and all its bytes,
/// so a signed envelope can be neither re-targeted nor passed off as another kind.
fn signed_message(key_info: &[u8], recipient: &PublicKey, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + 4 + key_info.len() + 32 + body.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(&(key_info.len() as u32).to_be_bytes());
    message.extend_from_slice(key_info);
    message.extend_from_slice(recipient.as_bytes());
    message.extend_from_slice(body);
    message
}

/// The backend's envelope-signing key (Ed25519). Its [`TrustedKey`] goes into every card agent's
/// settings for the backend's origin.
pub struct EnvelopeSigner(SigningKey);

impl std::fmt::Debug for EnvelopeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvelopeSigner({})", self.trusted_key())
    }
}

impl EnvelopeSigner {
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut OsRng))
    }

    /// From the 32-byte secret seed (as kept in the data folder or a secret store).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    pub fn trusted_key(&self) -> TrustedKey {
        TrustedKey(self.0.verifying_key())
    }
}

/// A public envelope-signing key the agent trusts for one origin: 32 bytes, base64.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey(VerifyingKey);

impl TrustedKey {
    pub fn parse(b64: &str) -> Result<Self, EnvelopeError> {
        let bytes: [u8; 32] = STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(EnvelopeError::BadPublicKey)?;
        VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| EnvelopeError::BadPublicKey)
    }
}

impl std::fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&STANDARD.encode(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({self})")
    }
}

/// Seals `secrets` to the agent's one-time public key (base64), with a fresh sender key, and
/// signs the envelope with the backend's key.
pub fn seal<T: Sealable>(
    signer: &EnvelopeSigner,
    agent_public_key: &str,
    secrets: &T,
) -> Result<String, EnvelopeError> {
    let recipient = parse_public_key(agent_public_key)?;
    let sender_secret = EphemeralSecret::random_from_rng(OsRng);
    let sender = PublicKey::from(&sender_secret);
    let shared = sender_secret.diffie_hellman(&recipient);
    if !shared.was_contributory() {
        return Err(EnvelopeError::BadPublicKey);
    }
    let (cipher, nonce, aad) = derive(T::KEY_INFO, shared.as_bytes(), &sender, &recipient)?;
    let plaintext = Zeroizing::new(serde_json::to_vec(secrets).map_err(|_| EnvelopeError::BadContents)?);
    let ciphertext = cipher
        .encrypt(&nonce, aes_gcm::aead::Payload { msg: &plaintext, aad: &aad })
        .map_err(|_| EnvelopeError::BadContents)?;
    let mut out = Vec::with_capacity(1 + 32 + ciphertext.len() + SIGNATURE_BYTES);
    out.push(VERSION);
    out.extend_from_slice(sender.as_bytes());
    out.extend_from_slice(&ciphertext);
    let signature = signer.0.sign(&signed_message(T::KEY_INFO, &recipient, &out));
    out.extend_from_slice(&signature.to_bytes());
    Ok(STANDARD.encode(out))
}

pub fn parse_public_key(b64: &str) -> Result<PublicKey, EnvelopeError> {
    let bytes: [u8; 32] =
        STANDARD.decode(b64).ok().and_then(|b| b.try_into().ok()).ok_or(EnvelopeError::BadPublicKey)?;
    Ok(PublicKey::from(bytes))
}

/// Key, nonce and associated data for one envelope. Both public keys go into the salt and the
/// associated data, so an envelope cannot be re-targeted to another key.
fn derive(
    key_info: &[u8],
    shared: &[u8; 32],
    sender: &PublicKey,
    recipient: &PublicKey,
) -> Result<(Aes256Gcm, Nonce<aes_gcm::aead::consts::U12>, Vec<u8>), EnvelopeError> {
    let mut salt = Vec::with_capacity(64);
    salt.extend_from_slice(sender.as_bytes());
    salt.extend_from_slice(recipient.as_bytes());
    let mut okm = Zeroizing::new([0u8; 44]);
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(key_info, okm.as_mut())
        .map_err(|_| EnvelopeError::Malformed)?;
    let cipher = Aes256Gcm::new_from_slice(&okm[..32]).map_err(|_| EnvelopeError::Malformed)?;
    // Key and nonce are both fresh per envelope (the sender key is), so a derived nonce is safe.
    let nonce = *Nonce::from_slice(&okm[32..]);
    let mut aad = Vec::with_capacity(65);
    aad.push(VERSION);
    aad.extend_from_slice(&salt);
    Ok((cipher, nonce, aad))
}

/// What a card signature is for. The agent has the card sign [`signed_digest`] of the label and
/// the backend's challenge, never the challenge itself, and the backend verifies with the label
/// of the purpose it issued the challenge for — so no signature stands in for another purpose.
/// (The offer digests below carry labels of their own and are built by the agent over its own
/// one-time key.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// 9A after VERIFY: signing in.
    SignIn,
    /// 9A after VERIFY: re-proving the card before registering it for self-service.
    RegistrationProof,
    /// 9E, no PIN: the card is in the reader (start of an unlock).
    Presence,
    /// 9A after VERIFY with the new PIN, made by the agent only after it rotated the PUK.
    UnlockProof,
    /// 9A after VERIFY with the holder's PIN, made by the agent at the end of an issuance.
    IssueProofPivAuth,
    /// 9E at the end of an issuance.
    IssueProofCardAuth,
}

impl Purpose {
    pub const fn label(self) -> &'static [u8] {
        match self {
            Purpose::SignIn => b"smartcard-selfservice sign-in v1",
            Purpose::RegistrationProof => b"smartcard-selfservice registration proof v1",
            Purpose::Presence => b"smartcard-selfservice presence v1",
            Purpose::UnlockProof => b"smartcard-selfservice unlock proof v1",
            Purpose::IssueProofPivAuth => b"smartcard-selfservice issue proof 9a v1",
            Purpose::IssueProofCardAuth => b"smartcard-selfservice issue proof 9e v1",
        }
    }
}

/// What the card signs for `purpose`: SHA-256 over [`signed_preimage`].
pub fn signed_digest(purpose: Purpose, challenge: &[u8]) -> [u8; 32] {
    Sha256::digest(signed_preimage(purpose, challenge)).into()
}

/// The bytes [`signed_digest`] hashes: the label, the challenge's length and the challenge (a
/// verifier that hashes for itself is given these).
pub fn signed_preimage(purpose: Purpose, challenge: &[u8]) -> Vec<u8> {
    let label = purpose.label();
    let mut message = Vec::with_capacity(label.len() + 4 + challenge.len());
    message.extend_from_slice(label);
    message.extend_from_slice(&(challenge.len() as u32).to_be_bytes());
    message.extend_from_slice(challenge);
    message
}

/// What an issued card's final proofs sign: the backend's challenge and the algorithm the card
/// took its new management key under, so that the algorithm recorded is the card's word, not the
/// page's.
pub fn issue_proof_challenge(challenge: &[u8], management_key_algorithm: u8) -> Vec<u8> {
    let mut signed = challenge.to_vec();
    signed.push(management_key_algorithm);
    signed
}

/// What a card being issued signs with its new 9E key to vouch for the agent's second one-time
/// key: SHA-256 over a context label, the issuance id, the public key and the GUID being written.
pub fn issue_offer_digest(issuance_id: &str, agent_public_key: &[u8; 32], guid: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(ISSUE_OFFER_CONTEXT);
    hash.update((issuance_id.len() as u32).to_be_bytes());
    hash.update(issuance_id.as_bytes());
    hash.update(agent_public_key);
    hash.update(guid.to_ascii_lowercase().as_bytes());
    hash.finalize().into()
}

/// What a half-issued card signs with its 9E key (the one the backend certified) to vouch for
/// the agent's first one-time key when its issuance is resumed: the card's recorded secrets are
/// then sealed only to the agent holding that card, never to a key a page chose.
pub fn resume_offer_digest(agent_public_key: &[u8; 32], guid: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(RESUME_OFFER_CONTEXT);
    hash.update(agent_public_key);
    hash.update(guid.to_ascii_lowercase().as_bytes());
    hash.finalize().into()
}

/// What the card signs with 9E to bind the agent's one-time key to itself and to the backend's
/// challenge: SHA-256 over a context label, the challenge, the public key and the GUID.
pub fn offer_digest(challenge: &[u8], agent_public_key: &[u8; 32], guid: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(OFFER_CONTEXT);
    hash.update((challenge.len() as u32).to_be_bytes());
    hash.update(challenge);
    hash.update(agent_public_key);
    hash.update(guid.to_ascii_lowercase().as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> EnvelopeSigner {
        EnvelopeSigner::from_seed(&[7; 32])
    }

    fn trusted() -> [TrustedKey; 1] {
        [backend().trusted_key()]
    }

    fn secrets() -> UnlockSecrets {
        UnlockSecrets {
            guid: "00112233445566778899aabbccddeeff".into(),
            expires_at: 2_000_000_000,
            issued_at: 0,
            current_puks: vec![Zeroizing::new("12345678".into())],
            new_puk: Zeroizing::new("87654321".into()),
            proof_challenge: STANDARD.encode([5u8; 32]),
        }
    }

    #[test]
    fn an_envelope_opens_only_with_its_key_and_only_once() {
        let key = OneTimeKey::generate();
        let sealed = seal(&backend(), &key.public_key(), &secrets()).unwrap();
        assert!(!sealed.contains("12345678"));
        assert_eq!(key.open::<UnlockSecrets>(&sealed, &trusted()).unwrap(), secrets());

        // The signature covers the recipient: another key's agent refuses it before decrypting.
        let other = OneTimeKey::generate();
        assert_eq!(other.open::<UnlockSecrets>(&sealed, &trusted()).unwrap_err(), EnvelopeError::Untrusted);
    }

    #[test]
    fn only_an_envelope_signed_by_a_trusted_key_opens() {
        // What a page on the allowed origin can do: seal its own guesses to the offered key.
        let key = OneTimeKey::generate();
        let page = EnvelopeSigner::generate();
        let forged = seal(&page, &key.public_key(), &secrets()).unwrap();
        assert_eq!(key.open::<UnlockSecrets>(&forged, &trusted()).unwrap_err(), EnvelopeError::Untrusted);
        // No key configured for the origin: nothing opens.
        let key = OneTimeKey::generate();
        let sealed = seal(&backend(), &key.public_key(), &secrets()).unwrap();
        assert_eq!(key.open::<UnlockSecrets>(&sealed, &[]).unwrap_err(), EnvelopeError::Untrusted);
        // Version 1 had no signature.
        let mut unsigned = STANDARD.decode(&sealed).unwrap();
        unsigned[0] = 1;
        let key = OneTimeKey::generate();
        assert_eq!(
            key.open::<UnlockSecrets>(&STANDARD.encode(unsigned), &trusted()).unwrap_err(),
            EnvelopeError::Unsigned
        );
        // Two trusted keys (a rotation): either opens.
        let key = OneTimeKey::generate();
        let sealed = seal(&page, &key.public_key(), &secrets()).unwrap();
        let both = [backend().trusted_key(), page.trusted_key()];
        assert_eq!(key.open::<UnlockSecrets>(&sealed, &both).unwrap(), secrets());
        let text = backend().trusted_key().to_string();
        assert_eq!(TrustedKey::parse(&text).unwrap(), backend().trusted_key());
        assert_eq!(TrustedKey::parse("AAAA").unwrap_err(), EnvelopeError::BadPublicKey);
    }

    #[test]
    fn any_altered_byte_is_detected() {
        let key = OneTimeKey::generate();
        let public = key.public_key();
        let sealed = STANDARD.decode(seal(&backend(), &public, &secrets()).unwrap()).unwrap();
        drop(key);
        for i in [0, 1, 20, 33, sealed.len() - 65, sealed.len() - 1] {
            let key = OneTimeKey::generate();
            let mut altered = sealed.clone();
            altered[i] ^= 0x01;
            assert!(key.open::<UnlockSecrets>(&STANDARD.encode(&altered), &trusted()).is_err(), "byte {i}");
        }
        let key = OneTimeKey::generate();
        assert_eq!(
            key.open::<UnlockSecrets>("not base64", &trusted()).unwrap_err(),
            EnvelopeError::Malformed
        );
        assert_eq!(
            OneTimeKey::generate().open::<UnlockSecrets>("Ag==", &trusted()).unwrap_err(),
            EnvelopeError::Malformed
        );
    }

    #[test]
    fn a_low_order_public_key_is_refused() {
        assert_eq!(
            seal(&backend(), &STANDARD.encode([0u8; 32]), &secrets()).unwrap_err(),
            EnvelopeError::BadPublicKey
        );
        assert_eq!(seal(&backend(), "AAAA", &secrets()).unwrap_err(), EnvelopeError::BadPublicKey);
    }

    #[test]
    fn secrets_name_their_card_and_expire() {
        let s = secrets();
        assert_eq!(s.check("00112233445566778899AABBCCDDEEFF", 1_999_999_999), Ok(()));
        assert_eq!(s.check("ffffffffffffffffffffffffffffffff", 0), Err(EnvelopeError::WrongCard));
        assert_eq!(s.check(&s.guid, 2_000_000_001), Err(EnvelopeError::Expired));
        let mut none = secrets();
        none.current_puks.clear();
        assert_eq!(none.check(&none.guid, 0), Err(EnvelopeError::BadContents));
        assert!(!format!("{s:?}").contains("1234"), "Debug hides PUKs");
    }

    fn issue_secrets() -> IssueSecrets {
        let key = |hex: &str| ManagementKeySecret { algorithm: 0x03, key_hex: Zeroizing::new(hex.into()) };
        IssueSecrets {
            issuance_id: "i1".into(),
            offered_guid: None,
            new_guid: "00112233445566778899aabbccddeeff".into(),
            expires_at: 2_000_000_000,
            issued_at: 0,
            current_management_keys: vec![key("010203040506070801020304050607080102030405060708")],
            current_puks: vec![Zeroizing::new("12345678".into())],
            attestation_required: false,
        }
    }

    fn new_secrets() -> IssueNewSecrets {
        IssueNewSecrets {
            issuance_id: "i1".into(),
            guid: "00112233445566778899aabbccddeeff".into(),
            expires_at: 2_000_000_000,
            issued_at: 0,
            new_management_key: ManagementKeySecret {
                algorithm: 0x03,
                key_hex: Zeroizing::new("a1a2a3a4a5a6a7a8a1a2a3a4a5a6a7a8a1a2a3a4a5a6a7a8".into()),
            },
            new_puk: Zeroizing::new("87654321".into()),
        }
    }

    #[test]
    fn an_issue_envelope_is_not_an_unlock_envelope() {
        // The kind is covered by the signature as well as by the key derivation.
        let key = OneTimeKey::generate();
        let sealed = seal(&backend(), &key.public_key(), &issue_secrets()).unwrap();
        assert_eq!(key.open::<UnlockSecrets>(&sealed, &trusted()).unwrap_err(), EnvelopeError::Untrusted);
        let key = OneTimeKey::generate();
        let sealed = seal(&backend(), &key.public_key(), &issue_secrets()).unwrap();
        assert_eq!(key.open::<IssueSecrets>(&sealed, &trusted()).unwrap(), issue_secrets());
        let key = OneTimeKey::generate();
        let sealed = seal(&backend(), &key.public_key(), &new_secrets()).unwrap();
        assert_eq!(key.open::<IssueSecrets>(&sealed, &trusted()).unwrap_err(), EnvelopeError::Untrusted);
    }

    #[test]
    fn new_secrets_are_for_their_issuance_and_card_only() {
        let s = new_secrets();
        assert_eq!(s.check("i1", "00112233445566778899AABBCCDDEEFF", 1_999_999_999), Ok(()));
        assert_eq!(s.check("i2", &s.guid, 0), Err(EnvelopeError::WrongCard));
        assert_eq!(s.check("i1", "ffffffffffffffffffffffffffffffff", 0), Err(EnvelopeError::WrongCard));
        assert_eq!(s.check("i1", &s.guid, 2_000_000_001), Err(EnvelopeError::Expired));
        let debug = format!("{s:?}");
        assert!(!debug.contains("8765") && !debug.contains("a1a2"), "{debug}");
        assert_ne!(issue_offer_digest("i1", &[2; 32], "aa"), offer_digest(b"i1", &[2; 32], "aa"));
        assert_ne!(issue_offer_digest("i1", &[2; 32], "aa"), issue_offer_digest("i2", &[2; 32], "aa"));
    }

    #[test]
    fn issue_secrets_are_for_the_offering_card_only() {
        let s = issue_secrets();
        assert_eq!(s.check(None, 1_999_999_999), Ok(()));
        assert_eq!(s.check(Some("00112233445566778899aabbccddeeff"), 0), Err(EnvelopeError::WrongCard));
        assert_eq!(s.check(None, 2_000_000_001), Err(EnvelopeError::Expired));
        let mut half_done = issue_secrets();
        half_done.offered_guid = Some("AABB".into());
        assert_eq!(half_done.check(Some("aabb"), 0), Ok(()));
        assert_eq!(half_done.check(None, 0), Err(EnvelopeError::WrongCard));
        let debug = format!("{s:?}");
        assert!(!debug.contains("1234") && !debug.contains("0102"), "{debug}");
    }

    #[test]
    fn each_purpose_signs_its_own_digest() {
        let all = [
            Purpose::SignIn,
            Purpose::RegistrationProof,
            Purpose::Presence,
            Purpose::UnlockProof,
            Purpose::IssueProofPivAuth,
            Purpose::IssueProofCardAuth,
        ];
        let challenge = [1u8; 32];
        let digests: std::collections::HashSet<_> =
            all.iter().map(|p| signed_digest(*p, &challenge)).collect();
        assert_eq!(digests.len(), all.len());
        assert!(!digests.contains(&challenge));
        assert!(!digests.contains(&offer_digest(&challenge, &[2; 32], "aa")));
        assert_ne!(signed_digest(Purpose::SignIn, &[1; 32]), signed_digest(Purpose::SignIn, &[2; 32]));
    }

    #[test]
    fn the_offer_digest_covers_challenge_key_and_card() {
        let base = offer_digest(&[1; 32], &[2; 32], "aa");
        assert_eq!(base, offer_digest(&[1; 32], &[2; 32], "AA"));
        assert_ne!(base, offer_digest(&[9; 32], &[2; 32], "aa"));
        assert_ne!(base, offer_digest(&[1; 32], &[9; 32], "aa"));
        assert_ne!(base, offer_digest(&[1; 32], &[2; 32], "bb"));
    }

    #[test]
    fn an_envelopes_age_is_the_agents_monotonic_time_since_its_offer_whatever_its_clock_says() {
        use std::time::Duration;
        let issued = 2_000_000_000;
        // Three hours ahead or behind: the backend's time is still issued + time since the offer.
        for local in [issued + 3 * 3600, issued - 3 * 3600] {
            assert_eq!(service_now(issued, Duration::from_secs(10), local), issued + 11);
        }
        // Ten minutes since the offer: a five-minute envelope has expired, whatever the clock.
        let old = UnlockSecrets {
            guid: "aa".into(),
            expires_at: issued + 300,
            issued_at: issued,
            current_puks: vec![Zeroizing::new("12345678".into())],
            new_puk: Zeroizing::new("87654321".into()),
            proof_challenge: String::new(),
        };
        let late = service_now(issued, Duration::from_secs(600), issued - 3 * 3600);
        assert_eq!(old.check("aa", late), Err(EnvelopeError::Expired));
        assert_eq!(old.check("aa", service_now(issued, Duration::from_secs(5), issued + 7200)), Ok(()));
        // An older backend's envelope (no issued_at) is judged by the workstation's clock.
        assert_eq!(service_now(0, Duration::from_secs(5), 42), 42);
        // The offset is reported when the time since the offer cannot explain it.
        assert_eq!(clock_offset(issued, Duration::from_secs(10), issued + 3 * 3600), Some(3 * 3600));
        assert_eq!(clock_offset(issued, Duration::from_secs(10), issued - 3 * 3600), Some(-3 * 3600));
        assert_eq!(clock_offset(issued, Duration::from_secs(10), issued + 30), None);
        assert_eq!(clock_offset(0, Duration::from_secs(10), 5), None);
    }
}
