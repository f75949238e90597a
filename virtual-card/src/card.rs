//! The card: answers command APDUs as a PIV card does (SP 800-73-4 Part 2), with the status
//! words a real card gives. Everything a power cycle forgets lives in [`Session`]; everything a
//! card remembers lives in [`CardState`] and is saved before the answer leaves the card.

use std::path::PathBuf;

use piv::{
    apdu::{Command, CLA_CHAINING},
    ids::{alg, ins, key, object, PIV_AID, PIV_RID_LEN},
    mgmt::{random_bytes, ManagementKey},
    pin::PaddedPin,
    status::StatusWord,
    tlv,
};
use zeroize::Zeroizing;

use crate::{
    ec,
    state::{CardState, StoredKey},
};

type Answer = Result<Vec<u8>, StatusWord>;

/// The largest command a chain may build: the biggest object plus its tag list.
const MAX_CHAINED_BYTES: usize = 8 * 1024;

/// An unfinished management-key authentication.
#[derive(Debug)]
enum PendingAuth {
    /// Mutual: the plain witness the card sent encrypted.
    Witness(Zeroizing<Vec<u8>>),
    /// External: the challenge the card sent in clear.
    Challenge(Zeroizing<Vec<u8>>),
}

/// A command's INS, P1 and P2: chained blocks must all carry the same.
type Header = (u8, u8, u8);

/// What a reset or power cycle forgets.
#[derive(Debug, Default)]
struct Session {
    selected: bool,
    pin_verified: bool,
    /// 9C ("PIN always") needs a VERIFY immediately before each signature.
    pin_just_verified: bool,
    mgmt_authenticated: bool,
    pending_auth: Option<PendingAuth>,
    /// Command chaining: (INS, P1, P2) and the data received so far.
    chain: Option<(Header, Zeroizing<Vec<u8>>)>,
    /// Response bytes still to be fetched with GET RESPONSE.
    pending_response: Vec<u8>,
}

#[derive(Debug)]
pub struct Card {
    state: CardState,
    /// Where the state is saved after every change (`None` in unit tests).
    path: Option<PathBuf>,
    session: Session,
}

/// The ATR: T=0 and T=1, historical bytes "VirtualPIV", with its check byte.
pub fn atr() -> Vec<u8> {
    let historical = b"VirtualPIV";
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(historical);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

impl Card {
    pub fn new(state: CardState, path: Option<PathBuf>) -> Self {
        Self { state, path, session: Session::default() }
    }

    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// For tests that make a card odd after it was made.
    pub fn state_mut(&mut self) -> &mut CardState {
        &mut self.state
    }

    /// Power off, power on or reset: the selection and every verified state are gone.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Answers one command APDU with a response APDU.
    pub fn process(&mut self, bytes: &[u8]) -> Vec<u8> {
        let command = match Command::parse(bytes) {
            Ok(command) => command,
            Err(_) => return StatusWord::WrongLength.to_bytes().to_vec(),
        };
        let (data, sw) = self.dispatch(command);
        let mut out = data;
        out.extend_from_slice(&sw.to_bytes());
        out
    }

    fn dispatch(&mut self, mut command: Command) -> (Vec<u8>, StatusWord) {
        if command.cla & !CLA_CHAINING != 0 {
            return (Vec::new(), StatusWord::ClaNotSupported);
        }
        if command.ins == ins::GET_RESPONSE {
            return self.get_response(command.max_response());
        }
        self.session.pending_response.clear();

        // Command chaining: collect the blocks, then process the whole command once.
        let header = (command.ins, command.p1, command.p2);
        if command.is_chained() {
            match &mut self.session.chain {
                Some((h, buffer)) if *h == header => buffer.extend_from_slice(&command.data),
                Some(_) => {
                    self.session.chain = None;
                    return (Vec::new(), StatusWord::Other(0x6883)); // last command of chain expected
                }
                None => self.session.chain = Some((header, Zeroizing::new(command.data.clone()))),
            }
            if self.session.chain.as_ref().is_some_and(|(_, b)| b.len() > MAX_CHAINED_BYTES) {
                self.session.chain = None;
                return (Vec::new(), StatusWord::NotEnoughMemory);
            }
            return (Vec::new(), StatusWord::Success);
        }
        if let Some((h, mut buffer)) = self.session.chain.take() {
            if h != header {
                return (Vec::new(), StatusWord::Other(0x6883));
            }
            buffer.extend_from_slice(&command.data);
            command.data = buffer.to_vec();
        }

        let max = match command.max_response() {
            0 => 256,
            n => n,
        };
        match self.execute(&command) {
            // As a T=0 card: the data waits for GET RESPONSE.
            Ok(data) if self.state.quirks.data_by_get_response && !data.is_empty() => {
                let sw = StatusWord::MoreData(data.len().min(256) as u8);
                self.session.pending_response = data;
                (Vec::new(), sw)
            }
            Ok(mut data) if data.len() > max => {
                let rest = data.split_off(max);
                self.session.pending_response = rest;
                let sw = StatusWord::MoreData(self.session.pending_response.len().min(256) as u8);
                (data, sw)
            }
            Ok(data) => (data, StatusWord::Success),
            Err(sw) => (Vec::new(), sw),
        }
    }

    fn get_response(&mut self, max: usize) -> (Vec<u8>, StatusWord) {
        if self.session.pending_response.is_empty() {
            return (Vec::new(), StatusWord::ConditionsNotSatisfied);
        }
        let take = max.min(self.session.pending_response.len());
        let data: Vec<u8> = self.session.pending_response.drain(..take).collect();
        match self.session.pending_response.len() {
            0 => (data, StatusWord::Success),
            left => (data, StatusWord::MoreData(left.min(256) as u8)),
        }
    }

    fn execute(&mut self, command: &Command) -> Answer {
        if command.ins == ins::SELECT {
            return self.select(command);
        }
        if !self.session.selected {
            return Err(StatusWord::InsNotSupported);
        }
        match command.ins {
            ins::GET_DATA => self.get_data(command),
            ins::PUT_DATA => self.put_data(command),
            ins::VERIFY => self.verify(command),
            ins::CHANGE_REFERENCE_DATA => self.change_reference_data(command),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(command),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(command),
            ins::GENERATE_ASYMMETRIC_KEY_PAIR => self.generate(command),
            ins::YK_GET_SERIAL => Ok(self.state.serial.to_be_bytes().to_vec()),
            ins::YK_SET_MANAGEMENT_KEY => self.set_management_key(command),
            ins::YK_ATTEST => self.attest(command),
            ins::YK_GET_METADATA if self.state.quirks.metadata => self.metadata(command),
            _ => Err(StatusWord::InsNotSupported),
        }
    }

    /// Saves the state; a card that cannot write its memory answers `6581` (memory failure).
    fn persist(&self) -> Result<(), StatusWord> {
        match &self.path {
            Some(path) => self.state.save(path).map_err(|error| {
                tracing::error!(%error, "cannot save the card state");
                StatusWord::Other(0x6581)
            }),
            None => Ok(()),
        }
    }

    // SELECT (Part 2 §3.1.1): the full AID or any right-truncation down to the RID.
    fn select(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x04 || command.p2 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let aid = &command.data;
        let shortest = if self.state.quirks.full_aid_only { PIV_AID.len() } else { PIV_RID_LEN };
        if aid.len() < shortest || aid.len() > PIV_AID.len() || !PIV_AID.starts_with(aid) {
            // ISO 7816-4 §7.1.1: a failed SELECT leaves the current selection as it was (tools
            // probe for other applets, e.g. yubico-piv-tool for Yubico's OTP applet).
            return Err(StatusWord::NotFound);
        }
        self.session.selected = true;
        let algorithms: Vec<u8> =
            [alg::TDES, alg::AES_128, alg::AES_192, alg::AES_256, alg::ECC_P256, alg::ECC_P384]
                .iter()
                .flat_map(|a| tlv::encode(0x80, &[*a]))
                .chain(tlv::encode(0x06, &[]))
                .collect();
        let template = [
            tlv::encode(0x4F, &PIV_AID[PIV_RID_LEN..]),
            tlv::encode(0x79, &tlv::encode(0x4F, &PIV_AID[..PIV_RID_LEN])),
            tlv::encode(0x50, b"Virtual PIV Card"),
            tlv::encode(0xAC, &algorithms),
        ]
        .concat();
        Ok(tlv::encode(0x61, &template))
    }

    fn requested_tag(data: &[u8]) -> Result<u32, StatusWord> {
        let (tag_list, rest) = tlv::parse_one(data).map_err(|_| StatusWord::IncorrectData)?;
        if tag_list.tag != 0x5C || !rest.is_empty() || tag_list.value.is_empty() || tag_list.value.len() > 3 {
            return Err(StatusWord::IncorrectData);
        }
        let tag = tag_list.value.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        if !object::is_piv_object(tag) && tag != object::ATTESTATION_CERTIFICATE {
            return Err(StatusWord::IncorrectData);
        }
        Ok(tag)
    }

    // GET DATA (Part 2 §3.1.2).
    fn get_data(&mut self, command: &Command) -> Answer {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::IncorrectP1P2);
        }
        let tag = Self::requested_tag(&command.data)?;
        if object::read_needs_pin(tag) && !self.session.pin_verified {
            return Err(StatusWord::SecurityNotSatisfied);
        }
        let contents = self.state.object(tag).ok_or(StatusWord::NotFound)?;
        let wrapper = match tag {
            object::DISCOVERY => 0x7E,
            object::BIOMETRIC_GROUP_TEMPLATE => 0x7F61,
            _ => 0x53,
        };
        Ok(tlv::encode(wrapper, &contents))
    }

    // PUT DATA (Part 2 §3.2.1): needs the management key.
    fn put_data(&mut self, command: &Command) -> Answer {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::IncorrectP1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(StatusWord::SecurityNotSatisfied);
        }
        let elements = tlv::parse_all(&command.data).map_err(|_| StatusWord::IncorrectData)?;
        let (tag, contents) = match elements.as_slice() {
            [only] if only.tag == object::DISCOVERY || only.tag == object::BIOMETRIC_GROUP_TEMPLATE => {
                (only.tag, only.value)
            }
            [tag_list, body] if tag_list.tag == 0x5C && body.tag == 0x53 => {
                (Self::requested_tag(&command.data[..command.data.len() - encoded_len(body)])?, body.value)
            }
            _ => return Err(StatusWord::IncorrectData),
        };
        if contents.len() > 3 * 1024 * 2 {
            return Err(StatusWord::NotEnoughMemory);
        }
        self.state.set_object(tag, if contents.is_empty() { None } else { Some(contents) });
        self.persist()?;
        Ok(Vec::new())
    }

    // VERIFY (Part 2 §3.2.1).
    fn verify(&mut self, command: &Command) -> Answer {
        if command.p2 != key::PIN {
            return Err(StatusWord::ReferenceNotFound);
        }
        match command.p1 {
            0xFF if command.data.is_empty() => {
                self.session.pin_verified = false;
                self.session.pin_just_verified = false;
                return Ok(Vec::new());
            }
            0x00 => {}
            _ => return Err(StatusWord::IncorrectP1P2),
        }
        if command.data.is_empty() {
            return if self.state.pin_tries_left == 0 {
                Err(StatusWord::Blocked)
            } else if self.session.pin_verified {
                Ok(Vec::new())
            } else {
                Err(StatusWord::WrongSecret { tries_left: Some(self.state.pin_tries_left) })
            };
        }
        if command.data.len() != 8 {
            return Err(StatusWord::WrongLength);
        }
        if self.state.pin_tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        let offered = PaddedPin::from_padded(&command.data).ok_or(StatusWord::IncorrectData)?;
        if self.check_secret(key::PIN, &offered)? {
            self.session.pin_verified = true;
            self.session.pin_just_verified = true;
            Ok(Vec::new())
        } else {
            Err(StatusWord::WrongSecret { tries_left: Some(self.state.pin_tries_left) })
        }
    }

    /// Checks the PIN (`key::PIN`) or PUK (`key::PUK`) in constant time; a wrong one spends a
    /// try (saved before answering), a right one restores the counter.
    fn check_secret(&mut self, reference: u8, offered: &PaddedPin) -> Result<bool, StatusWord> {
        let is_pin = reference == key::PIN;
        let stored = padded_stored(if is_pin { &self.state.pin } else { &self.state.puk })?;
        let correct = stored.ct_eq(offered);
        let (left, max) = if is_pin {
            (&mut self.state.pin_tries_left, self.state.pin_tries_max)
        } else {
            (&mut self.state.puk_tries_left, self.state.puk_tries_max)
        };
        let before = *left;
        *left = if correct { max } else { before.saturating_sub(1) };
        let changed = *left != before;
        if !correct && is_pin {
            self.session.pin_verified = false;
            self.session.pin_just_verified = false;
        }
        if changed || !correct {
            self.persist()?;
        }
        Ok(correct)
    }

    /// Splits `old ‖ new` (8 + 8 bytes), checking both formats before any try is spent.
    fn split_pair(data: &[u8], new_is_pin: bool) -> Result<(PaddedPin, PaddedPin), StatusWord> {
        if data.len() != 16 {
            return Err(StatusWord::WrongLength);
        }
        let first = PaddedPin::from_padded(&data[..8]).ok_or(StatusWord::IncorrectData)?;
        let second = PaddedPin::from_padded(&data[8..]).ok_or(StatusWord::IncorrectData)?;
        let acceptable = if new_is_pin {
            std::str::from_utf8(second.unpadded()).ok().and_then(|d| PaddedPin::new(d).ok()).is_some()
        } else {
            // Stored as text: anything but printable ASCII would not round-trip.
            (6..=8).contains(&second.unpadded().len()) && second.unpadded().iter().all(u8::is_ascii_graphic)
        };
        if !acceptable {
            return Err(StatusWord::IncorrectData);
        }
        Ok((first, second))
    }

    // CHANGE REFERENCE DATA (Part 2 §3.2.2): PIN (80) or PUK (81).
    fn change_reference_data(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        if !matches!(command.p2, key::PIN | key::PUK) {
            return Err(StatusWord::ReferenceNotFound);
        }
        let is_pin = command.p2 == key::PIN;
        let (old, new) = Self::split_pair(&command.data, is_pin)?;
        let tries_left = if is_pin { self.state.pin_tries_left } else { self.state.puk_tries_left };
        if tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        let correct = self.check_secret(command.p2, &old)?;
        if !correct {
            let left = if is_pin { self.state.pin_tries_left } else { self.state.puk_tries_left };
            return Err(self.wrong_secret(left));
        }
        let new_value = String::from_utf8_lossy(new.unpadded()).into_owned();
        if is_pin {
            self.state.pin = new_value;
        } else {
            self.state.puk = new_value;
            if let Some(tries) = self.state.quirks.puk_tries_after_change {
                self.state.puk_tries_max = tries;
                self.state.puk_tries_left = tries;
            }
        }
        self.persist()?;
        Ok(Vec::new())
    }

    /// A wrong secret in a change or reset, with its count unless the card keeps it to itself.
    fn wrong_secret(&self, tries_left: u8) -> StatusWord {
        let tries_left = (!self.state.quirks.bare_6300).then_some(tries_left);
        StatusWord::WrongSecret { tries_left }
    }

    // RESET RETRY COUNTER (Part 2 §3.2.3): PUK ‖ new PIN.
    fn reset_retry_counter(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        if command.p2 != key::PIN {
            return Err(StatusWord::ReferenceNotFound);
        }
        let (puk, new_pin) = Self::split_pair(&command.data, true)?;
        if self.state.puk_tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        if !self.check_secret(key::PUK, &puk)? {
            return Err(self.wrong_secret(self.state.puk_tries_left));
        }
        self.state.pin = String::from_utf8_lossy(new_pin.unpadded()).into_owned();
        self.state.pin_tries_left = self.state.pin_tries_max;
        self.session.pin_verified = false;
        self.session.pin_just_verified = false;
        self.persist()?;
        Ok(Vec::new())
    }

    // GENERAL AUTHENTICATE (Part 2 §3.2.4).
    fn general_authenticate(&mut self, command: &Command) -> Answer {
        let (template, rest) = tlv::parse_one(&command.data).map_err(|_| StatusWord::IncorrectData)?;
        if template.tag != 0x7C || !rest.is_empty() {
            return Err(StatusWord::IncorrectData);
        }
        let elements = tlv::parse_all(template.value).map_err(|_| StatusWord::IncorrectData)?;
        let get = |tag: u32| elements.iter().find(|e| e.tag == tag).map(|e| e.value);
        let result = if command.p2 == key::CARD_MANAGEMENT {
            self.authenticate_management(command.p1, get(0x80), get(0x81), get(0x82))
        } else {
            // Only a signature request keeps a half-done management authentication alive.
            self.session.pending_auth = None;
            self.sign(command.p1, command.p2, get(0x81), get(0x82))
        };
        result.map(|body| tlv::encode(0x7C, &body))
    }

    fn authenticate_management(
        &mut self,
        algorithm: u8,
        witness: Option<&[u8]>,
        challenge: Option<&[u8]>,
        response: Option<&[u8]>,
    ) -> Answer {
        if algorithm != self.state.mgmt_algorithm || !self.state.quirks.takes_mgmt_algorithm(algorithm) {
            return Err(StatusWord::IncorrectP1P2);
        }
        let key_bytes = Zeroizing::new(self.state.mgmt_key().ok_or(StatusWord::Other(0x6F00))?);
        let mgmt = ManagementKey::new(algorithm, &key_bytes).map_err(|_| StatusWord::Other(0x6F00))?;
        let size = mgmt.block_size();
        let pending = self.session.pending_auth.take();
        self.session.mgmt_authenticated = false;
        match (witness, challenge, response, pending) {
            // Mutual, step 1: the card sends a witness encrypted under the key.
            (Some([]), None, None, _) => {
                let plain = Zeroizing::new(random_bytes(size));
                let encrypted = mgmt.encrypt_block(&plain).map_err(|_| StatusWord::IncorrectData)?;
                self.session.pending_auth = Some(PendingAuth::Witness(plain));
                Ok(tlv::encode(0x80, &encrypted))
            }
            // Mutual, step 2: the host proves it decrypted the witness and challenges the card.
            (
                Some(decrypted),
                Some(host_challenge),
                Some([]) | None,
                Some(PendingAuth::Witness(expected)),
            ) => {
                if decrypted.len() != size || host_challenge.len() != size {
                    return Err(StatusWord::IncorrectData);
                }
                if !ct_eq(decrypted, &expected) {
                    return Err(StatusWord::SecurityNotSatisfied);
                }
                let answer = mgmt.encrypt_block(host_challenge).map_err(|_| StatusWord::IncorrectData)?;
                self.session.mgmt_authenticated = true;
                Ok(tlv::encode(0x82, &answer))
            }
            // External, step 1: the card sends a challenge in clear.
            (None, Some([]), None, _) => {
                let plain = Zeroizing::new(random_bytes(size));
                let body = tlv::encode(0x81, &plain);
                self.session.pending_auth = Some(PendingAuth::Challenge(plain));
                Ok(body)
            }
            // External, step 2: the host returns it encrypted.
            (None, None, Some(encrypted), Some(PendingAuth::Challenge(expected)))
                if !encrypted.is_empty() =>
            {
                if encrypted.len() != size {
                    return Err(StatusWord::IncorrectData);
                }
                let decrypted = mgmt.decrypt_block(encrypted).map_err(|_| StatusWord::IncorrectData)?;
                if !ct_eq(&decrypted, &expected) {
                    return Err(StatusWord::SecurityNotSatisfied);
                }
                self.session.mgmt_authenticated = true;
                Ok(Vec::new())
            }
            (_, _, _, None)
                if witness.is_some_and(|w| !w.is_empty()) || response.is_some_and(|r| !r.is_empty()) =>
            {
                // A second step without a first.
                Err(StatusWord::ConditionsNotSatisfied)
            }
            _ => Err(StatusWord::IncorrectData),
        }
    }

    fn sign(&mut self, algorithm: u8, slot: u8, digest: Option<&[u8]>, response: Option<&[u8]>) -> Answer {
        if !matches!(
            slot,
            key::PIV_AUTHENTICATION | key::DIGITAL_SIGNATURE | key::KEY_MANAGEMENT | key::CARD_AUTHENTICATION
        ) {
            return Err(StatusWord::IncorrectP1P2);
        }
        let stored = self.state.key(slot).cloned().ok_or(StatusWord::ReferenceNotFound)?;
        if stored.algorithm != algorithm {
            return Err(StatusWord::IncorrectP1P2);
        }
        let (Some(digest), Some([])) = (digest, response) else { return Err(StatusWord::IncorrectData) };
        let allowed = match slot {
            key::CARD_AUTHENTICATION => true,
            key::DIGITAL_SIGNATURE => std::mem::take(&mut self.session.pin_just_verified),
            _ => self.session.pin_verified,
        };
        if !allowed {
            return Err(StatusWord::SecurityNotSatisfied);
        }
        if Some(digest.len()) != ec::digest_len(algorithm) {
            return Err(StatusWord::IncorrectData);
        }
        let scalar =
            Zeroizing::new(piv::mgmt::decode_hex(&stored.scalar_hex).ok_or(StatusWord::Other(0x6F00))?);
        let signature = ec::sign(algorithm, &scalar, digest).ok_or(StatusWord::IncorrectData)?;
        Ok(tlv::encode(0x82, &signature))
    }

    // SET MANAGEMENT KEY (Yubico's extension): `<alg> 9B <len> <key>`, after authenticating with
    // the current key. P2 `FE` (touch required) is accepted as `FF`: there is nothing to touch.
    fn set_management_key(&mut self, command: &Command) -> Answer {
        if command.p1 != 0xFF || !matches!(command.p2, 0xFF | 0xFE) {
            return Err(StatusWord::IncorrectP1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(StatusWord::SecurityNotSatisfied);
        }
        let [algorithm, reference, length, key_bytes @ ..] = command.data.as_slice() else {
            return Err(StatusWord::WrongLength);
        };
        if *reference != key::CARD_MANAGEMENT || usize::from(*length) != key_bytes.len() {
            return Err(StatusWord::IncorrectData);
        }
        // The same checks as the host's: a known algorithm and its key length.
        ManagementKey::new(*algorithm, key_bytes).map_err(|_| StatusWord::IncorrectData)?;
        if !self.state.quirks.takes_mgmt_algorithm(*algorithm) {
            return Err(StatusWord::IncorrectData);
        }
        self.state.mgmt_algorithm = *algorithm;
        self.state.mgmt_key_hex = piv::mgmt::encode_hex(key_bytes);
        // The old key's authentication does not carry over to the new one.
        self.session.mgmt_authenticated = false;
        self.persist()?;
        Ok(Vec::new())
    }

    // ATTEST (Yubico's extension): a certificate of the key generated in slot P1, signed by the
    // attestation key F9. Every key on this card was generated on it (it has no import).
    fn attest(&mut self, command: &Command) -> Answer {
        let Some(stored) = self.state.attestation.clone() else { return Err(StatusWord::InsNotSupported) };
        let slot = command.p1;
        if command.p2 != 0x00
            || !matches!(
                slot,
                key::PIV_AUTHENTICATION
                    | key::DIGITAL_SIGNATURE
                    | key::KEY_MANAGEMENT
                    | key::CARD_AUTHENTICATION
            )
        {
            return Err(StatusWord::IncorrectP1P2);
        }
        let key = self.state.key(slot).cloned().ok_or(StatusWord::ReferenceNotFound)?;
        if key.algorithm != alg::ECC_P256 {
            return Err(StatusWord::IncorrectData);
        }
        let memory_fault = StatusWord::Other(0x6F00);
        let scalar = Zeroizing::new(piv::mgmt::decode_hex(&key.scalar_hex).ok_or(memory_fault)?);
        let point = ec::public_point(alg::ECC_P256, &scalar).ok_or(memory_fault)?;
        let attestation_scalar =
            Zeroizing::new(piv::mgmt::decode_hex(&stored.scalar_hex).ok_or(memory_fault)?);
        let certificate = piv::mgmt::decode_hex(&stored.certificate_hex).ok_or(memory_fault)?;
        let attestation_key =
            card_ca::attestation::AttestationKey::from_parts(&attestation_scalar, &certificate)
                .map_err(|_| memory_fault)?;
        let pin_policy = if slot == key::CARD_AUTHENTICATION {
            card_ca::attestation::PIN_POLICY_NEVER
        } else {
            card_ca::attestation::PIN_POLICY_ONCE
        };
        let attested =
            attestation_key.attest(slot, &point, self.state.serial, pin_policy).map_err(|_| memory_fault)?;
        der::Encode::to_der(&attested).map_err(|_| memory_fault)
    }

    // GET METADATA (Yubico's extension, firmware 5.3+): what a reference is, without using it.
    // `01` algorithm (FF for a PIN), `02` policy, `03` origin, `05` default value, `06` tries.
    fn metadata(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let state = &self.state;
        let flag = |default: bool| [u8::from(default)];
        Ok(match command.p2 {
            key::CARD_MANAGEMENT => {
                let current =
                    state.mgmt_key().and_then(|k| ManagementKey::new(state.mgmt_algorithm, &k).ok());
                let default = current.is_some_and(|k| k.is_factory());
                tlv::encode_all(&[
                    (0x01, &[state.mgmt_algorithm]),
                    (0x02, &[0x00, 0x01]),
                    (0x05, &flag(default)),
                ])
            }
            reference @ (key::PIN | key::PUK) => {
                let (value, factory, tries) = if reference == key::PIN {
                    (&state.pin, piv::pin::FACTORY_PIN, [state.pin_tries_max, state.pin_tries_left])
                } else {
                    (&state.puk, piv::pin::FACTORY_PUK, [state.puk_tries_max, state.puk_tries_left])
                };
                let default = flag(value == factory);
                tlv::encode_all(&[(0x01, &[0xFF]), (0x02, &[0x00, 0x00]), (0x05, &default), (0x06, &tries)])
            }
            slot => {
                let stored = state.key(slot).ok_or(StatusWord::ReferenceNotFound)?;
                tlv::encode_all(&[(0x01, &[stored.algorithm]), (0x02, &[0x01, 0x01]), (0x03, &[0x01])])
            }
        })
    }

    // GENERATE ASYMMETRIC KEY PAIR (Part 2 §3.3.2): needs the management key.
    fn generate(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x00 || key::certificate_object(command.p2).is_none() {
            return Err(StatusWord::IncorrectP1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(StatusWord::SecurityNotSatisfied);
        }
        let (control, rest) = tlv::parse_one(&command.data).map_err(|_| StatusWord::IncorrectData)?;
        if control.tag != 0xAC || !rest.is_empty() {
            return Err(StatusWord::IncorrectData);
        }
        let algorithm = match tlv::find(control.value, 0x80) {
            Ok(Some([algorithm])) => *algorithm,
            _ => return Err(StatusWord::IncorrectData),
        };
        let new_key = ec::generate(algorithm).ok_or(StatusWord::IncorrectData)?;
        self.state
            .set_key(command.p2, StoredKey { algorithm, scalar_hex: piv::mgmt::encode_hex(&new_key.scalar) });
        self.persist()?;
        Ok(tlv::encode(0x7F49, &tlv::encode(0x86, &new_key.public_point)))
    }
}

fn padded_stored(puk: &str) -> Result<PaddedPin, StatusWord> {
    let mut bytes = [0xFF; 8];
    let raw = puk.as_bytes();
    if raw.is_empty() || raw.len() > 8 {
        return Err(StatusWord::Other(0x6F00));
    }
    bytes[..raw.len()].copy_from_slice(raw);
    PaddedPin::from_padded(&bytes).ok_or(StatusWord::Other(0x6F00))
}

fn encoded_len(element: &tlv::Tlv<'_>) -> usize {
    tlv::encode(element.tag, element.value).len()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
