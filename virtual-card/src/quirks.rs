//! How a card departs from the typical one: the ways real makers' PIV applets differ that a host
//! must cope with (PIV.md, "Being a robust host"). The virtual card can be made with any of them,
//! so the agent and the issuance are tested against each, and [`Profile`] names the combinations
//! real cards come as.

use piv::ids::alg;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quirks {
    /// The management-key algorithms the card takes (empty: all four). Another algorithm is
    /// refused with `6A80` by SET MANAGEMENT KEY and `6A86` by GENERAL AUTHENTICATE.
    pub mgmt_algorithms: Vec<u8>,
    /// A wrong PIN or PUK in CHANGE REFERENCE DATA or RESET RETRY COUNTER is answered `6300`,
    /// without the count (the card still counts).
    pub bare_6300: bool,
    /// The PUK's tries once it has been changed (some cards give 5); `None` keeps the count.
    pub puk_tries_after_change: Option<u8>,
    /// Response data comes only through GET RESPONSE: every answer with data is `61xx` first,
    /// as T=0 cards answer (and some cards answer a command without `Le`).
    pub data_by_get_response: bool,
    /// SELECT needs the full AID; a right-truncated one is answered `6A82`.
    pub full_aid_only: bool,
    /// The card answers Yubico's GET METADATA (firmware 5.3+): a key's algorithm and whether a
    /// key, PIN or PUK still has its factory value.
    pub metadata: bool,
}

impl Quirks {
    pub fn takes_mgmt_algorithm(&self, algorithm: u8) -> bool {
        self.mgmt_algorithms.is_empty() || self.mgmt_algorithms.contains(&algorithm)
    }
}

/// Cards as they come from their makers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// No CHUID, a 3DES factory key, every algorithm, the spec's status words.
    #[default]
    Plain,
    /// As `plain`, with a CHUID and a random GUID the maker's applet wrote when it first ran.
    FactoryChuid,
    /// A YubiKey from firmware 5.7: an AES-192 factory key and GET METADATA.
    #[value(name = "yubikey-5.7")]
    Yubikey57,
    /// A card that takes only 3DES and AES-256 management keys, answers a wrong secret with a bare
    /// `6300`, gives the PUK 5 tries once changed, sends data only through GET RESPONSE, refuses
    /// a truncated AID, and comes with a maker's CHUID.
    Strict,
}

impl Profile {
    pub const ALL: [Profile; 4] =
        [Profile::Plain, Profile::FactoryChuid, Profile::Yubikey57, Profile::Strict];

    pub fn quirks(self) -> Quirks {
        match self {
            Profile::Plain | Profile::FactoryChuid => Quirks::default(),
            Profile::Yubikey57 => Quirks { metadata: true, ..Quirks::default() },
            Profile::Strict => Quirks {
                mgmt_algorithms: vec![alg::TDES, alg::AES_256],
                bare_6300: true,
                puk_tries_after_change: Some(5),
                data_by_get_response: true,
                full_aid_only: true,
                metadata: false,
            },
        }
    }

    /// The algorithm of the card's factory management key.
    pub fn factory_algorithm(self) -> u8 {
        match self {
            Profile::Yubikey57 => alg::AES_192,
            _ => alg::TDES,
        }
    }

    /// Whether the card leaves the factory with a CHUID of the maker's.
    pub fn factory_chuid(self) -> bool {
        matches!(self, Profile::FactoryChuid | Profile::Strict)
    }

    /// A blank card as this maker ships it: factory PIN, PUK and management key, its quirks,
    /// and its CHUID if it comes with one.
    pub fn blank_card(self) -> crate::state::CardState {
        use crate::state::{CardState, DEFAULT_PIN, DEFAULT_PUK};
        let factory = piv::mgmt::ManagementKey::factory(self.factory_algorithm());
        // The factory key of every algorithm exists; the fallback is never taken.
        let key = factory.map(|k| k.key_bytes().to_vec()).unwrap_or_default();
        let mut card = CardState::blank(DEFAULT_PIN, DEFAULT_PUK, self.factory_algorithm(), &key);
        card.quirks = self.quirks();
        if self.factory_chuid() {
            card.write_factory_chuid();
        }
        card
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::FactoryChuid => "factory-chuid",
            Profile::Yubikey57 => "yubikey-5.7",
            Profile::Strict => "strict",
        }
    }
}
