//! Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, canonical trailing bits.
//!
//! Every token costs three decodes, so this uses `base64-simd` (SIMD where the CPU has it,
//! about three times faster than a table-driven decoder here). Its `URL_SAFE_NO_PAD` engine
//! is strict: padding, other alphabets and non-canonical trailing bits are refused — checked
//! against the `base64` crate's strict engine in the tests.

use std::mem::MaybeUninit;

use base64_simd::{Out, URL_SAFE_NO_PAD};

/// Decodes strict base64url into a new vector; `None` for padded, non-canonical or invalid input.
pub(crate) fn decode_to_vec(input: &[u8]) -> Option<Vec<u8>> {
    decoded_len(input.len())?;
    URL_SAFE_NO_PAD.decode_to_vec(input).ok()
}

/// The exact decoded length of `len` unpadded base64 characters, or `None` if no input of
/// that length is valid.
pub(crate) const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        rem => Some(len / 4 * 3 + rem.saturating_sub(1)),
    }
}

/// Decodes strict base64url and hands the bytes to `use_bytes`: through a stack buffer
/// when they fit in `N` bytes, a heap buffer otherwise. `None` for invalid input.
///
/// A callback rather than a returned buffer, so the bytes are never moved.
pub(crate) fn with_decoded<const N: usize, R>(
    input: &[u8],
    use_bytes: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    let len = decoded_len(input.len())?;
    if len <= N {
        // Left uninitialised: the decoder writes the first `len` bytes and hands back
        // exactly those, so only the lines in use are touched.
        let mut buf = [const { MaybeUninit::<u8>::uninit() }; N];
        let decoded = URL_SAFE_NO_PAD
            .decode(input, Out::from_uninit_slice(&mut buf[..len]))
            .ok()?;
        Some(use_bytes(decoded))
    } else {
        decode_to_vec(input).map(|bytes| use_bytes(&bytes))
    }
}

/// Encodes as unpadded base64url.
#[cfg(test)]
pub(crate) fn encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..80 {
            let data: Vec<u8> = (0u8..)
                .take(len)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            let enc = encode(&data);
            assert_eq!(decoded_len(enc.len()), Some(len));
            assert_eq!(decode_to_vec(enc.as_bytes()).unwrap(), data);
            assert_eq!(
                with_decoded::<128, _>(enc.as_bytes(), <[u8]>::to_vec),
                Some(data.clone())
            );
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
        assert!(decode_to_vec(b"YWI").is_some());
        assert!(
            decode_to_vec(b"YWJ").is_none(),
            "non-canonical trailing bits"
        );
        assert!(decode_to_vec(b"+/8").is_none(), "standard alphabet");
        assert!(decode_to_vec(b"-_8").is_some());
        assert!(decode_to_vec(b"Y").is_none(), "impossible length");
        assert!(decode_to_vec(b"YQ ").is_none(), "whitespace");
        assert!(
            decode_to_vec("YWJj\u{e9}".as_bytes()).is_none(),
            "non-ascii"
        );
    }

    /// The decoder agrees with the `base64` crate's strict engine on every input of a
    /// large deterministic corpus: valid encodings of short and long inputs,
    /// single-character corruptions, truncations and random strings over the alphabet and
    /// its neighbours.
    #[test]
    fn agrees_with_the_reference_decoder() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let symbols =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \x00\xff";
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Long inputs too: they take the SIMD paths (RSA signatures are 342+ characters).
        for len in (0..64usize).chain([100, 255, 256, 384, 512, 1000]) {
            let data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            let enc = encode(&data).into_bytes();
            for i in 0..enc.len() {
                let mut corrupt = enc.clone();
                corrupt[i] = symbols[usize::from(next().to_le_bytes()[0]) % symbols.len()];
                cases.push(corrupt);
            }
            cases.push(enc[..enc.len() / 2].to_vec());
            cases.push(enc);
        }
        for _ in 0..20_000 {
            let len = usize::from(next().to_le_bytes()[0] % 24);
            cases.push(
                (0..len)
                    .map(|_| symbols[usize::from(next().to_le_bytes()[0]) % symbols.len()])
                    .collect(),
            );
        }
        for case in cases {
            let expected = URL_SAFE_NO_PAD.decode(&case).ok();
            assert_eq!(decode_to_vec(&case), expected, "{case:?}");
            // The stack path (what tokens take) and the heap path behind it.
            assert_eq!(
                with_decoded::<2048, _>(&case, <[u8]>::to_vec),
                expected,
                "{case:?}"
            );
            assert_eq!(
                with_decoded::<8, _>(&case, <[u8]>::to_vec),
                expected,
                "{case:?}"
            );
        }
    }

    #[test]
    fn with_decoded_uses_the_stack_or_the_heap() {
        assert_eq!(
            with_decoded::<4, _>(b"YWJj", <[u8]>::to_vec),
            Some(b"abc".to_vec())
        );
        assert_eq!(
            with_decoded::<2, _>(b"YWJj", <[u8]>::to_vec),
            Some(b"abc".to_vec())
        );
        assert_eq!(with_decoded::<4, _>(b"YWJ=", <[u8]>::len), None);
        assert_eq!(with_decoded::<2, _>(b"YWJ=", <[u8]>::len), None);
    }
}
