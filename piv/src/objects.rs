//! The data objects an issuer writes (SP 800-73-4 Part 1 Tables 9 and 10), as the contents that
//! go inside PUT DATA's `53`.

use crate::tlv;

/// A FASC-N for a non-federal issuer (agency code 9999), as test and non-US PIV cards carry.
pub const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42,
    0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// A certificate object: `70` DER, `71` 00 (not compressed), `FE` (error detection code).
pub fn certificate_object(der: &[u8]) -> Vec<u8> {
    tlv::encode_all(&[(0x70, der), (0x71, &[0x00]), (0xFE, &[])])
}

/// The DER inside a certificate object.
pub fn certificate_der(object: &[u8]) -> Option<&[u8]> {
    tlv::find(object, 0x70).ok().flatten()
}

/// The CHUID with the given GUID and expiry date (`YYYYMMDD`), unsigned (`3E` empty).
pub fn chuid(guid: &[u8; 16], expiry: &str) -> Vec<u8> {
    tlv::encode_all(&[(0x30, &FASC_N), (0x34, guid), (0x35, expiry.as_bytes()), (0x3E, &[]), (0xFE, &[])])
}

/// The GUID inside a CHUID.
pub fn chuid_guid(chuid: &[u8]) -> Option<[u8; 16]> {
    tlv::find(chuid, 0x34).ok().flatten().and_then(|g| g.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip() {
        let guid = [7u8; 16];
        assert_eq!(chuid_guid(&chuid(&guid, "20291231")), Some(guid));
        assert_eq!(certificate_der(&certificate_object(&[1, 2, 3])), Some(&[1u8, 2, 3][..]));
        assert_eq!(chuid_guid(&[0x30, 0x00]), None);
    }
}
