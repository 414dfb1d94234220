//! Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, canonical trailing bits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes strict base64url into exactly `N` bytes; `None` for any other length, padding,
/// non-canonical trailing bits or a character outside the alphabet.
pub(crate) fn decode_array<const N: usize>(input: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    // The buffer is sized for N bytes; decode_slice refuses input that decodes to more.
    let len = URL_SAFE_NO_PAD
        .decode_slice(input.as_bytes(), &mut out)
        .ok()?;
    (len == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let bytes = [0xfbu8; 32];
        let enc = encode(&bytes);
        assert_eq!(enc.len(), 43);
        assert_eq!(decode_array::<32>(&enc), Some(bytes));
        assert_eq!(decode_array::<31>(&enc), None, "wrong length");
        assert_eq!(decode_array::<32>(&format!("{enc}=")), None, "padding");
        assert_eq!(decode_array::<1>("YR"), None, "non-canonical trailing bits");
        assert_eq!(decode_array::<1>("YQ"), Some([b'a']));
        assert_eq!(decode_array::<2>("+/8"), None, "standard alphabet");
    }
}
