//! A card's identity: the GUID in its CHUID, parsed once where it enters (a request body, the
//! card's CHUID) so nothing unparsed reaches the database, the audit trail or a seal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// 32 hex digits, kept lowercase: two spellings of one card are one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardGuid(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAGuid;

impl fmt::Display for NotAGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a card GUID is 32 hex digits")
    }
}

impl std::error::Error for NotAGuid {}

/// In the OpenAPI document: a string of 32 lowercase hex digits.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CardGuid {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-fA-F]{32}$"))
            .description(Some("A card's GUID (its CHUID): 32 hex digits, answered in lowercase"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CardGuid {}

impl CardGuid {
    pub fn parse(text: &str) -> Result<Self, NotAGuid> {
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(NotAGuid)
        }
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardGuid {
    type Error = NotAGuid;

    fn try_from(text: String) -> Result<Self, NotAGuid> {
        Self::parse(&text)
    }
}

impl From<CardGuid> for String {
    fn from(guid: CardGuid) -> Self {
        guid.0
    }
}

impl std::str::FromStr for CardGuid {
    type Err = NotAGuid;

    fn from_str(text: &str) -> Result<Self, NotAGuid> {
        Self::parse(text)
    }
}

impl fmt::Display for CardGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for CardGuid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CardGuid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for CardGuid {
    fn eq(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl PartialEq<&str> for CardGuid {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for CardGuid {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<CardGuid> for String {
    fn eq(&self, other: &CardGuid) -> bool {
        other == self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_two_hex_digits_parse_lowercased() {
        let guid = CardGuid::parse("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(guid.as_str(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            guid,
            CardGuid::from_bytes(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff")
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "0011",
            "00112233445566778899aabbccddeeffaa",
            "g0112233445566778899aabbccddeeff",
            "00112233-4455-6677-8899-aabbccddeeff",
        ] {
            assert_eq!(CardGuid::parse(bad), Err(NotAGuid), "{bad}");
        }
        let long = "a".repeat(4096);
        assert!(serde_json::from_str::<CardGuid>(&format!("\"{long}\"")).is_err());
    }

    #[test]
    fn it_travels_as_a_plain_string() {
        let guid = CardGuid::parse("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(serde_json::to_string(&guid).unwrap(), "\"00112233445566778899aabbccddeeff\"");
        assert_eq!(serde_json::from_str::<CardGuid>("\"00112233445566778899AABBCCDDEEFF\"").unwrap(), guid);
    }
}
