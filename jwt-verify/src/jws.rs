//! Compact JWS structure and the JOSE header (RFC 7515 §3.1, §4.1, §5.2).

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::base64url;
use crate::error::{Error, ErrorKind};
use crate::json::{JsonStr, SeenNames};

/// Largest signature accepted: RSA-8192 is 1024 bytes.
pub(crate) const MAX_SIGNATURE_BYTES: usize = 1024;
const MAX_HEADER_MEMBERS: usize = 32;

/// The three segments of a compact JWS, still encoded.
pub(crate) struct Compact<'t> {
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'t [u8],
    pub(crate) header: &'t [u8],
    pub(crate) payload: &'t [u8],
    pub(crate) signature: &'t [u8],
}

/// Splits a compact JWS into exactly three segments.
pub(crate) fn split(token: &str) -> Result<Compact<'_>, Error> {
    let bytes = token.as_bytes();
    let malformed = || {
        Error::new(
            ErrorKind::Malformed,
            "token is not three base64url segments",
        )
    };
    let mut dots = memchr::memchr_iter(b'.', bytes);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(malformed());
    };
    let signature = &bytes[second + 1..];
    if first == 0 || second == first + 1 || signature.is_empty() {
        return Err(malformed());
    }
    Ok(Compact {
        signing_input: &bytes[..second],
        header: &bytes[..first],
        payload: &bytes[first + 1..second],
        signature,
    })
}

/// The header members the verifier acts on.
pub(crate) struct Header<'h> {
    pub(crate) alg: Cow<'h, str>,
    pub(crate) typ: Option<Cow<'h, str>>,
    pub(crate) kid: Option<Cow<'h, str>>,
    /// `crit`, `b64` or another member that changes how the token must be processed.
    pub(crate) has_extension: bool,
}

/// Headers up to this size are decoded on the stack (typical ones are under 100 bytes).
const HEADER_STACK_BYTES: usize = 128;

/// Signatures up to this size (RSA-4096) are decoded on the stack.
const SIGNATURE_STACK_BYTES: usize = 512;

/// Decodes and parses the header segment and hands the header to `use_header`.
pub(crate) fn with_header<R>(
    encoded: &[u8],
    use_header: impl FnOnce(Header<'_>) -> R,
) -> Result<R, Error> {
    base64url::with_decoded::<HEADER_STACK_BYTES, _>(encoded, |json| {
        parse_header(json).map(use_header)
    })
    .ok_or(Error::new(
        ErrorKind::Malformed,
        "header is not canonical base64url",
    ))?
}

/// Decodes the signature segment, refusing anything longer than an RSA-8192 signature,
/// and returns what `verify` says about the signature bytes.
pub(crate) fn verify_signature(
    encoded: &[u8],
    verify: impl FnOnce(&[u8]) -> bool,
) -> Result<bool, Error> {
    let malformed = Error::new(ErrorKind::Malformed, "signature is not canonical base64url");
    if base64url::decoded_len(encoded.len()).is_none_or(|len| len > MAX_SIGNATURE_BYTES) {
        return Err(malformed);
    }
    base64url::with_decoded::<SIGNATURE_STACK_BYTES, _>(encoded, verify).ok_or(malformed)
}

/// Parses the JOSE header: a JSON object without duplicate members, with a string `alg`,
/// and string `typ`/`kid` when present.
pub(crate) fn parse_header(json: &[u8]) -> Result<Header<'_>, Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let header = (&mut de)
        .deserialize_map(HeaderVisitor)
        .map_err(|_| Error::new(ErrorKind::Malformed, "header is not a valid jose header"))?;
    de.end()
        .map_err(|_| Error::new(ErrorKind::Malformed, "trailing data after the header"))?;
    header.ok_or(Error::new(ErrorKind::Malformed, "header has no alg"))
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Option<Header<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a jose header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = SeenNames::default();
        let mut alg = None;
        let mut typ = None;
        let mut kid = None;
        let mut has_extension = false;
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom("duplicate header member"));
            }
            if seen.len() > MAX_HEADER_MEMBERS {
                return Err(de::Error::custom("too many header members"));
            }
            match &*name {
                "alg" => alg = Some(map.next_value::<JsonStr<'de>>()?.0),
                "typ" => typ = Some(map.next_value::<JsonStr<'de>>()?.0),
                "kid" => kid = Some(map.next_value::<JsonStr<'de>>()?.0),
                // RFC 7515 §4.1.11: `crit` lists extensions that must be understood; we
                // understand none. RFC 7797 `b64` changes what is signed.
                "crit" | "b64" => {
                    has_extension = true;
                    map.next_value::<IgnoredAny>()?;
                }
                // `jku`, `x5u`, `jwk`, `x5c` and the rest are never used: keys come only
                // from the configured key set.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(alg.map(|alg| Header {
            alg,
            typ,
            kid,
            has_extension,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_requires_exactly_three_non_empty_segments() {
        assert!(split("a.b.c").is_ok());
        for bad in [
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            ".b.c",
            "a..c",
            "a.b.",
            "abc",
            "",
        ] {
            assert_eq!(
                split(bad).err().map(|e| e.kind()),
                Some(ErrorKind::Malformed),
                "{bad}"
            );
        }
        let c = split("hh.pp.ss").unwrap();
        assert_eq!(c.signing_input, b"hh.pp");
        assert_eq!(c.header, b"hh");
        assert_eq!(c.payload, b"pp");
        assert_eq!(c.signature, b"ss");
    }

    #[test]
    fn header_members() {
        let h = parse_header(br#"{"alg":"RS256","typ":"at+jwt","kid":"k1","x5u":"https://evil"}"#)
            .unwrap();
        assert_eq!(h.alg, "RS256");
        assert_eq!(h.typ.as_deref(), Some("at+jwt"));
        assert_eq!(h.kid.as_deref(), Some("k1"));
        assert!(!h.has_extension);
        assert!(
            parse_header(br#"{"alg":"RS256","crit":["exp"]}"#)
                .unwrap()
                .has_extension
        );
        assert!(
            parse_header(br#"{"alg":"RS256","b64":false}"#)
                .unwrap()
                .has_extension
        );
    }

    #[test]
    fn header_refusals() {
        for bad in [
            &br#"{"alg":"RS256","alg":"none"}"#[..],
            br#"{"alg":"RS256","kid":1}"#,
            br#"{"alg":["RS256"]}"#,
            br#"{"typ":"JWT"}"#,
            br#"["alg","RS256"]"#,
            br#"{"alg":"RS256"}x"#,
            b"",
        ] {
            assert!(
                parse_header(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn escaped_duplicate_names_are_still_duplicates() {
        assert!(parse_header(br#"{"alg":"RS256","\u0061lg":"none"}"#).is_err());
    }

    #[test]
    fn large_header_decodes_on_the_heap() {
        let json = format!(r#"{{"alg":"RS256","x5c":["{}"]}}"#, "A".repeat(2000));
        let encoded = crate::base64url::encode(json.as_bytes());
        let alg = with_header(encoded.as_bytes(), |h| h.alg.into_owned()).unwrap();
        assert_eq!(alg, "RS256");
    }
}
