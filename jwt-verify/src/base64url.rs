//! Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, canonical trailing bits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes strict base64url into a new vector; `None` for padded, non-canonical or invalid input.
pub(crate) fn decode_to_vec(input: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(input).ok()
}

/// Decodes strict base64url into `out`, returning the decoded length.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if decoded_len(input.len())? > out.len() {
        return None;
    }
    URL_SAFE_NO_PAD.decode_slice(input, out).ok()
}

/// The exact decoded length of `len` unpadded base64 characters, or `None` if no input of
/// that length is valid.
pub(crate) const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        rem => Some(len / 4 * 3 + rem.saturating_sub(1)),
    }
}

/// Encodes as unpadded base64url.
#[cfg(test)]
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..40 {
            let data: Vec<u8> = (0u8..).take(len).map(|i| i.wrapping_mul(37)).collect();
            let enc = encode(&data);
            assert_eq!(decoded_len(enc.len()), Some(len));
            assert_eq!(decode_to_vec(enc.as_bytes()).unwrap(), data);
            let mut buf = [0u8; 64];
            assert_eq!(decode_into(enc.as_bytes(), &mut buf), Some(len));
            assert_eq!(&buf[..len], &data[..]);
        }
    }

    #[test]
    fn refuses_padding_standard_alphabet_and_non_canonical_bits() {
        assert!(decode_to_vec(b"YQ==").is_none(), "padding");
        assert!(decode_to_vec(b"YQ").is_some());
        assert!(
            decode_to_vec(b"YR").is_none(),
            "non-canonical trailing bits"
        );
        assert!(decode_to_vec(b"+/8").is_none(), "standard alphabet");
        assert!(decode_to_vec(b"-_8").is_some());
        assert!(decode_to_vec(b"Y").is_none(), "impossible length");
        assert!(decode_to_vec(b"YQ ").is_none(), "whitespace");
    }

    #[test]
    fn decode_into_refuses_short_buffers() {
        let mut buf = [0u8; 2];
        assert_eq!(decode_into(b"YWJj", &mut buf), None);
    }
}
