//! The `status` claim of a referenced token (draft-ietf-oauth-status-list §6.1): parsed in
//! the same pass as the other claims when status lists are checked.
#![cfg_attr(not(feature = "status-list"), allow(dead_code))]

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::json::JsonStr;

/// Where a referenced token's status lives: `status.status_list.{idx, uri}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusRef {
    pub(crate) idx: u64,
    pub(crate) uri: Box<str>,
    /// [`uri_hash`] of `uri`, computed once when the claim is parsed.
    pub(crate) hash: u64,
}

/// A cheap hash of a status list URI (FxHash-style, eight bytes a step), to find its list
/// without comparing strings. The table it indexes is small and holds only allowed URIs, so
/// hash flooding is not a concern.
pub(crate) fn uri_hash(uri: &str) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let bytes = uri.as_bytes();
    let mut hash = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
    }
    hash
}

/// Parses the JSON text of a `status` claim. The claim must be an object with a
/// `status_list` object holding a non-negative integer `idx` and a string `uri`; other
/// members (other status mechanisms) are ignored; `status_list`, `idx` and `uri` may
/// appear once. (Duplicates among other nested members are not ours to judge, as for any
/// claim's nested objects; top-level claim names are checked by the claims reader.)
pub(crate) fn parse_status_claim(json: &str) -> Result<StatusRef, &'static str> {
    if let Some((idx, uri)) = compact_status_claim(json) {
        return Ok(StatusRef {
            idx,
            uri: uri.into(),
            hash: uri_hash(uri),
        });
    }
    let malformed = "status claim is not an object with status_list idx and uri";
    let mut de = serde_json::Deserializer::from_str(json);
    let found = (&mut de)
        .deserialize_map(StatusVisitor)
        .map_err(|_| malformed)?;
    de.end().map_err(|_| malformed)?;
    let (idx, uri) = found.ok_or("status claim has no status_list")?;
    let hash = uri_hash(&uri);
    Ok(StatusRef {
        idx,
        uri: uri.into_boxed_str(),
        hash,
    })
}

/// The claim exactly as issuers serialize it, `{"status_list":{"idx":7,"uri":"…"}}` (either
/// member order, no whitespace, no escapes in the URI): read without a JSON parser, since the
/// claims reader already checked that `json` is one well-formed JSON value. Anything else
/// goes through the full parser.
fn compact_status_claim(json: &str) -> Option<(u64, &str)> {
    let members = json
        .strip_prefix(r#"{"status_list":{"#)?
        .strip_suffix("}}")?;
    let (idx, uri) = if let Some(rest) = members.strip_prefix(r#""idx":"#) {
        let (idx, rest) = rest.split_once(',')?;
        (idx, rest.strip_prefix(r#""uri":""#)?.strip_suffix('"')?)
    } else {
        let rest = members.strip_prefix(r#""uri":""#)?;
        let (uri, idx) = rest.split_once(r#"","idx":"#)?;
        (idx, uri)
    };
    // A JSON integer: digits only, no leading zero, and in range.
    if idx.is_empty()
        || (idx.len() > 1 && idx.starts_with('0'))
        || !idx.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let idx = idx.parse::<u64>().ok()?;
    if uri.contains(['"', '\\']) {
        return None;
    }
    Some((idx, uri))
}

struct StatusVisitor;

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = Option<(u64, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            if name == "status_list" {
                if found.is_some() {
                    return Err(de::Error::custom("duplicate status_list"));
                }
                let ListRef(idx, uri) = map.next_value()?;
                found = Some((idx, uri));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `{"idx": <u64>, "uri": <string>}`.
struct ListRef(u64, String);

impl<'de> Deserialize<'de> for ListRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ListRefVisitor)
    }
}

struct ListRefVisitor;

impl<'de> Visitor<'de> for ListRefVisitor {
    type Value = ListRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status_list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut idx = None;
        let mut uri = None;
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            match &*name {
                // A JSON integer in 0..2^64: no string, fraction, exponent or sign.
                "idx" if idx.is_none() => idx = Some(map.next_value::<u64>()?),
                "uri" if uri.is_none() => {
                    uri = Some(map.next_value::<JsonStr<'de>>()?.0.into_owned());
                }
                "idx" | "uri" => return Err(de::Error::custom("duplicate member")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (idx, uri) {
            (Some(idx), Some(uri)) => Ok(ListRef(idx, uri)),
            _ => Err(de::Error::custom("status_list needs idx and uri")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_claim_parsing() {
        let ok = parse_status_claim(r#"{"status_list":{"idx":7,"uri":"https://a/b"},"other":{}}"#)
            .unwrap();
        assert_eq!(ok.idx, 7);
        assert_eq!(&*ok.uri, "https://a/b");
        assert_eq!(ok.hash, uri_hash("https://a/b"));
        // The compact form and the full parser agree.
        for json in [
            r#"{"status_list":{"idx":7,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"uri":"https://a/b","idx":7}}"#,
            r#"{"status_list":{"idx":0,"uri":""}}"#,
            r#"{"status_list":{"idx":18446744073709551615,"uri":"https://a/b?x=1,2"}}"#,
        ] {
            let fast = compact_status_claim(json).unwrap();
            let mut de = serde_json::Deserializer::from_str(json);
            let full = (&mut de).deserialize_map(StatusVisitor).unwrap().unwrap();
            assert_eq!((fast.0, fast.1.to_owned()), full, "{json}");
        }
        for slow in [
            r#"{"status_list":{"idx":7,"uri":"https://a/\u0062"}}"#,
            r#"{"status_list":{"idx":7,"uri":"https://a/b","x":1}}"#,
            r#"{"status_list":{"idx":7,"uri":"https://a/b"},"x":{}}"#,
            r#"{"status_list":{"idx":18446744073709551616,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":7.0,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":-7,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":07,"uri":"https://a/b"}}"#,
            r#"{"status_list": {"idx":7,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":7,"idx":8,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"uri":"https://a/b","idx":7,"uri":"https://c/d"}}"#,
        ] {
            assert!(compact_status_claim(slow).is_none(), "{slow}");
        }
        assert_eq!(
            parse_status_claim(r#"{"status_list":{"idx":7,"uri":"https://a/\u0062"}}"#)
                .unwrap()
                .uri
                .as_ref(),
            "https://a/b"
        );
        for bad in [
            r#"[]"#,
            r#""x""#,
            r#"{}"#,
            r#"{"other":{}}"#,
            r#"{"status_list":[7,"https://a/b"]}"#,
            r#"{"status_list":{"idx":-1,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":1.0,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":"1","uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":18446744073709551616,"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":1,"uri":7}}"#,
            r#"{"status_list":{"idx":1}}"#,
            r#"{"status_list":{"uri":"https://a/b"}}"#,
            r#"{"status_list":{"idx":1,"uri":"https://a/b","idx":2}}"#,
            r#"{"status_list":{"idx":1,"uri":"https://a/b"},"status_list":{"idx":2,"uri":"https://a/b"}}"#,
        ] {
            assert!(parse_status_claim(bad).is_err(), "{bad}");
        }
    }
}
