//! BER-TLV as PIV uses it (SP 800-73-4 Part 1 §3.3 / ISO 7816-4 §5.2): tags of 1–3 bytes,
//! lengths in the short form or `81 xx` / `82 xx xx`. Parsing is strict: a length that runs past
//! the input is an error, never a silent truncation.

/// Why a TLV byte string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV ends inside a tag")]
    TruncatedTag,
    #[error("TLV tag longer than 3 bytes")]
    TagTooLong,
    #[error("TLV ends inside a length")]
    TruncatedLength,
    #[error("TLV length form {0:#04x} is not supported")]
    UnsupportedLength(u8),
    #[error("TLV value of {declared} bytes runs past the {available} bytes available")]
    TruncatedValue { declared: usize, available: usize },
}

/// One parsed element, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// Parses one element from the front of `input`, returning it and the rest.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = input.split_first().ok_or(TlvError::TruncatedTag)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Multi-byte tag: subsequent bytes while bit 8 is set, at most 3 bytes in all (a 4th
        // used to be taken into the tag, which then encoded as another one).
        loop {
            let (&b, r) = rest.split_first().ok_or(TlvError::TruncatedTag)?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
            if tag > 0xFFFF {
                return Err(TlvError::TagTooLong);
            }
        }
    }
    let (&len0, r) = rest.split_first().ok_or(TlvError::TruncatedLength)?;
    rest = r;
    let length = match len0 {
        0x00..=0x7F => usize::from(len0),
        0x81 => {
            let (&b, r) = rest.split_first().ok_or(TlvError::TruncatedLength)?;
            rest = r;
            usize::from(b)
        }
        0x82 => {
            let [hi, lo, ..] = rest else { return Err(TlvError::TruncatedLength) };
            let length = usize::from(*hi) << 8 | usize::from(*lo);
            rest = &rest[2..];
            length
        }
        other => return Err(TlvError::UnsupportedLength(other)),
    };
    if rest.len() < length {
        return Err(TlvError::TruncatedValue { declared: length, available: rest.len() });
    }
    let (value, rest) = rest.split_at(length);
    Ok((Tlv { tag, value }, rest))
}

/// Parses a sequence of elements that must fill `input` exactly.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// The value of the first element with `tag` in a sequence, if any.
pub fn find(input: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    Ok(parse_all(input)?.into_iter().find(|t| t.tag == tag).map(|t| t.value))
}

/// Appends the BER length of `length` to `out`.
pub fn push_length(out: &mut Vec<u8>, length: usize) {
    match length {
        0..=0x7F => out.push(length as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, length as u8]),
        _ => out.extend_from_slice(&[0x82, (length >> 8) as u8, length as u8]),
    }
}

/// Appends `tag` (1–3 bytes, as written) to `out`.
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    if tag > 0xFFFF {
        out.push((tag >> 16) as u8);
    }
    if tag > 0xFF {
        out.push((tag >> 8) as u8);
    }
    out.push(tag as u8);
}

/// One encoded element.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push_tag(&mut out, tag);
    push_length(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Several elements concatenated.
pub fn encode_all(elements: &[(u32, &[u8])]) -> Vec<u8> {
    elements.iter().flat_map(|(tag, value)| encode(*tag, value)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_all_three_forms() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
            let value = vec![0xAB; len];
            let encoded = encode(0x53, &value);
            let (tlv, rest) = parse_one(&encoded).unwrap();
            assert_eq!((tlv.tag, tlv.value.len(), rest.len()), (0x53, len, 0));
        }
    }

    #[test]
    fn multi_byte_tags_parse() {
        let encoded = encode(0x5FC102, b"x");
        assert_eq!(encoded[..3], [0x5F, 0xC1, 0x02]);
        assert_eq!(parse_one(&encoded).unwrap().0, Tlv { tag: 0x5FC102, value: b"x" });
        let encoded = encode(0x7F49, &[1, 2]);
        assert_eq!(parse_one(&encoded).unwrap().0.tag, 0x7F49);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_short_value() {
        assert_eq!(
            parse_one(&[0x53, 0x05, 1, 2]),
            Err(TlvError::TruncatedValue { declared: 5, available: 2 })
        );
        assert_eq!(parse_one(&[0x53, 0x82, 0x01]), Err(TlvError::TruncatedLength));
        assert_eq!(parse_one(&[0x5F, 0xC1]), Err(TlvError::TruncatedTag));
        assert_eq!(parse_one(&[]), Err(TlvError::TruncatedTag));
        assert_eq!(parse_one(&[0x53, 0x84, 0, 0, 0, 1]), Err(TlvError::UnsupportedLength(0x84)));
    }

    #[test]
    fn find_looks_through_a_sequence() {
        let seq = encode_all(&[(0x82, &[]), (0x81, &[7; 32])]);
        assert_eq!(find(&seq, 0x81).unwrap(), Some(&[7u8; 32][..]));
        assert_eq!(find(&seq, 0x82).unwrap(), Some(&[][..]));
        assert_eq!(find(&seq, 0x80).unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_element_we_encode_parses_back(
            tag in proptest::sample::select(vec![0x53u32, 0x7C, 0x80, 0x81, 0x82, 0x5C, 0x70, 0x71, 0x7F49, 0x5FC102, 0x5FC105, 0x5FFF01]),
            value in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..4),
        ) {
            let mut encoded = encode(tag, &value);
            encoded.extend_from_slice(&tail);
            let (tlv, rest) = parse_one(&encoded).unwrap();
            proptest::prop_assert_eq!((tlv.tag, tlv.value, rest), (tag, value.as_slice(), tail.as_slice()));
        }

        #[test]
        fn whatever_parses_re_encodes_to_the_same_element(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok((tlv, _)) = parse_one(&bytes) {
                let encoded = encode(tlv.tag, tlv.value);
                let (again, rest) = parse_one(&encoded).unwrap();
                proptest::prop_assert_eq!((again.tag, again.value, rest.len()), (tlv.tag, tlv.value, 0));
            }
        }
    }

    #[test]
    fn a_tag_of_four_bytes_is_refused() {
        // From the fuzz corpus (tlv/regression-four-byte-tag).
        assert_eq!(parse_one(&[0x5F, 0x81, 0x81, 0x81, 0x00]), Err(TlvError::TagTooLong));
        assert_eq!(parse_one(&[0x5F, 0xC1, 0x02, 0x00]).map(|(t, _)| t.tag), Ok(0x5FC102));
    }
}
