//! PIV (NIST SP 800-73-4) protocol pieces shared by the card agent and the virtual card.
//!
//! - [`apdu`]: command and response APDUs (short and extended length).
//! - [`status`]: status words as an enum (`63Cx` → `WrongSecret { tries_left }`).
//! - [`tlv`]: BER-TLV encoding and parsing, strict about lengths.
//! - [`ids`]: the AID, instructions, object tags, key references and algorithms.
//! - [`mgmt`]: the card management key (9B) ciphers, 3DES and AES.
//! - [`objects`]: the CHUID and certificate objects an issuer writes.
//! - [`host`]: a host-side PIV session over any [`host::Transport`] (PC/SC, or in-process).

pub mod apdu;
pub mod host;
pub mod ids;
pub mod mgmt;
pub mod objects;
pub mod pin;
pub mod status;
pub mod tlv;
