//! Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, canonical trailing bits.
//!
//! A table-driven decoder written for this hot path: every token costs three decodes, and
//! the general-purpose decoders spend more per character than the rest of parsing together.
//! It is checked against the `base64` crate's strict `URL_SAFE_NO_PAD` engine in the tests.

/// Marks bytes outside the alphabet (any value with bit 6 or 7 set).
const INVALID: u8 = 0xFF;

/// Sextet value of each byte, or [`INVALID`].
#[allow(clippy::cast_possible_truncation)] // `i < 64`
static DECODE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes strict base64url into a new vector; `None` for padded, non-canonical or invalid input.
pub(crate) fn decode_to_vec(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; decoded_len(input.len())?];
    decode_into(input, &mut out)?;
    Some(out)
}

/// Decodes strict base64url into the front of `out`, returning the decoded length.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    let mut quads = input.chunks_exact(4);
    let mut triples = out.chunks_exact_mut(3);
    for (quad, triple) in (&mut quads).zip(&mut triples) {
        let [a, b, c, d] = [quad[0], quad[1], quad[2], quad[3]].map(|x| DECODE[usize::from(x)]);
        if (a | b | c | d) & 0xC0 != 0 {
            return None;
        }
        let word = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        triple.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    let tail = quads.remainder();
    let rest = triples.into_remainder();
    match *tail {
        [] => {}
        [a, b] => {
            let [a, b] = [a, b].map(|x| DECODE[usize::from(x)]);
            // Two characters carry one byte; the last 4 bits must be zero (canonical).
            if (a | b) & 0xC0 != 0 || b & 0x0F != 0 {
                return None;
            }
            rest[0] = a << 2 | b >> 4;
        }
        [a, b, c] => {
            let [a, b, c] = [a, b, c].map(|x| DECODE[usize::from(x)]);
            // Three characters carry two bytes; the last 2 bits must be zero (canonical).
            if (a | b | c) & 0xC0 != 0 || c & 0x03 != 0 {
                return None;
            }
            rest[0] = a << 2 | b >> 4;
            rest[1] = (b & 0x0F) << 4 | c >> 2;
        }
        _ => return None,
    }
    Some(len)
}

/// The exact decoded length of `len` unpadded base64 characters, or `None` if no input of
/// that length is valid.
pub(crate) const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        rem => Some(len / 4 * 3 + rem.saturating_sub(1)),
    }
}

/// Decoded bytes: on the stack when they fit in `N` bytes, on the heap otherwise.
// It lives on the stack for one call; the size difference is the point (no allocation).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decoded<const N: usize> {
    Stack([u8; N], usize),
    Heap(Vec<u8>),
}

impl<const N: usize> Decoded<N> {
    /// Decodes strict base64url; `None` for invalid input.
    pub(crate) fn decode(input: &[u8]) -> Option<Self> {
        let len = decoded_len(input.len())?;
        if len <= N {
            let mut buf = [0u8; N];
            let n = decode_into(input, &mut buf)?;
            Some(Decoded::Stack(buf, n))
        } else {
            decode_to_vec(input).map(Decoded::Heap)
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Decoded::Stack(buf, n) => &buf[..*n],
            Decoded::Heap(v) => v,
        }
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
            let mut buf = [0u8; 128];
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
    /// large deterministic corpus: valid encodings, single-character corruptions,
    /// truncations and random strings over the alphabet and its neighbours.
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
        for len in 0..64usize {
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
            assert_eq!(
                decode_to_vec(&case),
                URL_SAFE_NO_PAD.decode(&case).ok(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn decode_into_refuses_short_buffers() {
        let mut buf = [0u8; 2];
        assert_eq!(decode_into(b"YWJj", &mut buf), None);
    }

    #[test]
    fn decoded_spills_to_the_heap() {
        let small = Decoded::<4>::decode(b"YWJj").unwrap();
        assert!(matches!(small, Decoded::Stack(..)));
        assert_eq!(small.as_slice(), b"abc");
        let large = Decoded::<2>::decode(b"YWJj").unwrap();
        assert!(matches!(large, Decoded::Heap(_)));
        assert_eq!(large.as_slice(), b"abc");
        assert!(Decoded::<4>::decode(b"YWJ=").is_none());
    }
}
