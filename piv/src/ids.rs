//! Identifiers from SP 800-73-4: the application, instructions, data objects, keys, algorithms.

/// The full PIV AID (Part 1 §2.2): RID `A0 00 00 03 08`, PIX `00 00 10 00 01 00`.
pub const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
/// The RID alone: the shortest right-truncated AID a card accepts.
pub const PIV_RID_LEN: usize = 5;

/// Instruction bytes (Part 2 §3).
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;
    pub const GET_RESPONSE: u8 = 0xC0;
    /// Yubico extension, answered by many PIV tools' cards: firmware version.
    pub const YK_GET_VERSION: u8 = 0xFD;
    /// Yubico extension: serial number.
    pub const YK_GET_SERIAL: u8 = 0xF8;
    /// Yubico extension, also answered by the virtual card: SET MANAGEMENT KEY
    /// (`00 FF FF FF 1B <alg> 9B <len> <key>`; P2 `FE` would also require a touch).
    pub const YK_SET_MANAGEMENT_KEY: u8 = 0xFF;
    /// Yubico extension, also answered by the virtual card: ATTEST (`00 F9 <slot> 00 00`), an
    /// X.509 certificate of the key generated in that slot, signed by the attestation key F9.
    pub const YK_ATTEST: u8 = 0xF9;
    /// Yubico extension (firmware 5.3+), also answered by the virtual card when made so: GET
    /// METADATA (`00 F7 00 <reference> 00`), what a key or PIN is without using it.
    pub const YK_GET_METADATA: u8 = 0xF7;
}

/// Data object tags (Part 1 Table 3).
pub mod object {
    pub const CHUID: u32 = 0x5FC102;
    pub const CERT_PIV_AUTH: u32 = 0x5FC105;
    pub const CERT_DIGITAL_SIGNATURE: u32 = 0x5FC10A;
    pub const CERT_KEY_MANAGEMENT: u32 = 0x5FC10B;
    pub const CERT_CARD_AUTH: u32 = 0x5FC101;
    pub const CCC: u32 = 0x5FC107;
    pub const FINGERPRINTS: u32 = 0x5FC103;
    pub const FACIAL_IMAGE: u32 = 0x5FC108;
    pub const PRINTED_INFORMATION: u32 = 0x5FC109;
    pub const IRIS_IMAGES: u32 = 0x5FC121;
    pub const KEY_HISTORY: u32 = 0x5FC10C;
    /// Yubico: the certificate of the attestation key (slot F9), from the card's maker.
    pub const ATTESTATION_CERTIFICATE: u32 = 0x5FFF01;
    pub const SECURITY_OBJECT: u32 = 0x5FC106;
    pub const DISCOVERY: u32 = 0x7E;
    pub const BIOMETRIC_GROUP_TEMPLATE: u32 = 0x7F61;

    /// Objects whose reading needs the PIN (Part 1 Table 3, access rule "PIN").
    pub fn read_needs_pin(tag: u32) -> bool {
        matches!(tag, FINGERPRINTS | FACIAL_IMAGE | PRINTED_INFORMATION | IRIS_IMAGES)
    }

    /// Every tag a PIV card stores: the 5FC1xx range plus Discovery and the BIT group template.
    pub fn is_piv_object(tag: u32) -> bool {
        (0x5FC101..=0x5FC123).contains(&tag) || tag == DISCOVERY || tag == BIOMETRIC_GROUP_TEMPLATE
    }
}

/// Key references (Part 1 Table 4b) and PIN references.
pub mod key {
    pub const PIV_AUTHENTICATION: u8 = 0x9A;
    pub const CARD_MANAGEMENT: u8 = 0x9B;
    pub const DIGITAL_SIGNATURE: u8 = 0x9C;
    pub const KEY_MANAGEMENT: u8 = 0x9D;
    pub const CARD_AUTHENTICATION: u8 = 0x9E;
    pub const PIN: u8 = 0x80;
    pub const PUK: u8 = 0x81;

    /// The certificate object that goes with an asymmetric key slot.
    pub fn certificate_object(slot: u8) -> Option<u32> {
        match slot {
            PIV_AUTHENTICATION => Some(super::object::CERT_PIV_AUTH),
            DIGITAL_SIGNATURE => Some(super::object::CERT_DIGITAL_SIGNATURE),
            KEY_MANAGEMENT => Some(super::object::CERT_KEY_MANAGEMENT),
            CARD_AUTHENTICATION => Some(super::object::CERT_CARD_AUTH),
            _ => None,
        }
    }
}

/// Cryptographic algorithm identifiers (SP 800-78-4 Table 6-2).
pub mod alg {
    pub const TDES: u8 = 0x03;
    pub const RSA_1024: u8 = 0x06;
    pub const RSA_2048: u8 = 0x07;
    pub const AES_128: u8 = 0x08;
    pub const AES_192: u8 = 0x0A;
    pub const AES_256: u8 = 0x0C;
    pub const ECC_P256: u8 = 0x11;
    pub const ECC_P384: u8 = 0x14;
}
