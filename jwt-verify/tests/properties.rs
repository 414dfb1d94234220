//! Property-based tests of the token parser, the claims reader and the JWK Set parser.
//!
//! Each property names what must hold for every generated input. The default run is short
//! (CI); a longer one is `PROPTEST_CASES=100000 cargo test --release -p jwks-verify --test
//! properties`. A failure prints the minimal failing input: turn it into a named
//! regression test in `tests/attacks.rs` (no `proptest-regressions/` files are written).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use jwks_verify::{
    Algorithm, AlgorithmSet, DEFAULT_TOKEN_CACHE_ENTRIES, Error, ErrorKind, KeySet, ManualClock,
    Policy, StandardClaims, Verifier,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

mod common;
use common::{AUDIENCE, ISSUER, TestKey, b64};

const NOW: u64 = 1_800_000_000;
const LEEWAY: u64 = 30;
const ED_KID: &str = "ed";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// ---------------------------------------------------------------------------------------
// Keys, verifiers and tokens

fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("k1"))
}

/// An Ed25519 key: signing is cheap enough to sign a fresh token in every case.
fn ed_key() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    })
}

fn ed_jwk() -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": ED_KID,
        "alg": "EdDSA",
        "use": "sig",
        "x": b64(ed_key().public_key().as_ref()),
    })
}

fn jwks() -> String {
    json!({"keys": [rsa_key().jwk(), ed_jwk()]}).to_string()
}

fn policy() -> Policy {
    Policy::new(ISSUER, AUDIENCE).algorithms([Algorithm::RS256, Algorithm::EdDSA])
}

/// Two verifiers over the same keys: one without the verified-token cache, and one with it
/// that has already accepted a good token of each key (so headers are remembered).
fn verifiers() -> &'static [Verifier; 2] {
    static VERIFIERS: OnceLock<[Verifier; 2]> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let build = |entries| {
            Verifier::builder(policy())
                .static_jwks(jwks())
                .clock(ManualClock::at_unix(NOW))
                .token_cache_entries(entries)
                .build()
                .unwrap()
        };
        let cached = build(DEFAULT_TOKEN_CACHE_ENTRIES);
        for good in [rsa_token(), ed_token(&ed_header(), &claims())] {
            cached.try_verify::<StandardClaims>(&good).unwrap();
        }
        [build(0), cached]
    })
}

/// Verifies with both verifiers, insists they agree and that no error quotes the token.
fn verify(token: &str) -> Result<StandardClaims, ErrorKind> {
    let [uncached, cached] = verifiers();
    let outcome = verify_once(uncached, token);
    assert_eq!(
        verify_once(cached, token).map(|c| c.iss),
        outcome
            .as_ref()
            .map(|c| c.iss.clone())
            .map_err(|kind| *kind),
        "the cached verifier disagrees"
    );
    outcome
}

fn verify_once(verifier: &Verifier, token: &str) -> Result<StandardClaims, ErrorKind> {
    verifier
        .try_verify::<StandardClaims>(token)
        .map(|verified| verified.claims().clone())
        .map_err(|error| {
            assert_token_not_quoted(&error, token);
            error.kind()
        })
}

fn assert_token_not_quoted(error: &Error, token: &str) {
    for shown in [error.to_string(), format!("{error:?}")] {
        for segment in token.split('.').filter(|segment| segment.len() > 8) {
            assert!(!shown.contains(segment), "{shown:?} quotes the token");
        }
    }
}

fn claims() -> Value {
    common::claims(NOW)
}

fn ed_header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ED_KID})
}

/// A good RS256 token, signed once.
fn rsa_token() -> String {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| rsa_key().token(NOW)).clone()
}

/// `header` and `payload` as raw JSON text, EdDSA-signed.
fn ed_sign_raw(header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = ed_key().sign(input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

fn ed_token(header: &Value, claims: &Value) -> String {
    ed_sign_raw(&header.to_string(), &claims.to_string())
}

// ---------------------------------------------------------------------------------------
// Strategies

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A JOSE header that looks almost right: known and unknown algorithms, kids and types.
fn header_like() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        Just(json!("RS256")),
        Just(json!("EdDSA")),
        Just(json!("none")),
        Just(json!("HS256")),
        Just(json!("rs256")),
        json_value(),
    ];
    let kid = prop_oneof![Just(json!("k1")), Just(json!(ED_KID)), json_value()];
    let typ = prop_oneof![Just(json!("at+jwt")), Just(json!("JWT")), json_value()];
    (
        prop::option::of(alg),
        prop::option::of(kid),
        prop::option::of(typ),
        prop::option::of(json_value()),
    )
        .prop_map(|(alg, kid, typ, crit)| {
            let mut header = Map::new();
            for (name, value) in [("alg", alg), ("kid", kid), ("typ", typ), ("crit", crit)] {
                if let Some(value) = value {
                    header.insert(name.to_owned(), value);
                }
            }
            Value::Object(header)
        })
}

/// One segment of a would-be token: base64url text, its neighbours, or the encoding of
/// bytes, JSON or an almost-right header.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,48}",
        "[A-Za-z0-9_+/= .\u{e9}-]{0,16}",
        prop::collection::vec(any::<u8>(), 0..600).prop_map(|bytes| b64(&bytes)),
        json_value().prop_map(|value| b64(value.to_string().as_bytes())),
        header_like().prop_map(|value| b64(value.to_string().as_bytes())),
    ]
}

/// A character to put into a token: base64url, a separator, padding, the standard
/// alphabet, whitespace or anything at all.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(BASE64URL).prop_map(char::from),
        prop::sample::select(&b".=+/ \t\n%"[..]).prop_map(char::from),
        any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), token_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), token_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Delete),
    ]
}

/// `token` with one edit; `None` if the edit changes nothing.
fn apply(token: &str, edit: &Edit) -> Option<String> {
    let mut chars: Vec<char> = token.chars().collect();
    match edit {
        Edit::Replace(at, c) => {
            let at = at.index(chars.len());
            if chars[at] == *c {
                return None;
            }
            chars[at] = *c;
        }
        Edit::Insert(at, c) => chars.insert(at.index(chars.len() + 1), *c),
        Edit::Delete(at) => {
            chars.remove(at.index(chars.len()));
        }
    }
    Some(chars.into_iter().collect())
}

/// A way to spell a segment's bytes that strict base64url (RFC 7515 §2) does not allow.
#[derive(Debug, Clone)]
enum NonCanonical {
    /// `=` padding to a multiple of four.
    Padding,
    /// The unused low bits of the last character set.
    TrailingBits(u8),
    /// `-` and `_` written in the standard alphabet.
    StandardAlphabet,
    /// A whitespace character inside.
    Whitespace(Index, char),
}

fn non_canonical() -> impl Strategy<Value = NonCanonical> {
    prop_oneof![
        Just(NonCanonical::Padding),
        (1u8..16).prop_map(NonCanonical::TrailingBits),
        Just(NonCanonical::StandardAlphabet),
        (
            any::<Index>(),
            prop::sample::select(&[' ', '\t', '\n', '\r'][..])
        )
            .prop_map(|(i, c)| NonCanonical::Whitespace(i, c)),
    ]
}

/// `segment` spelled non-canonically; `None` if the spelling does not apply to it (no
/// padding or unused bits at this length, no `-`/`_` in it).
fn respell(segment: &str, how: &NonCanonical) -> Option<String> {
    match how {
        NonCanonical::Padding => {
            let pad = (4 - segment.len() % 4) % 4;
            (pad > 0).then(|| format!("{segment}{}", "=".repeat(pad)))
        }
        NonCanonical::TrailingBits(bits) => {
            let unused = match segment.len() % 4 {
                2 => 4,
                3 => 2,
                _ => return None,
            };
            let mask = bits & ((1 << unused) - 1);
            if mask == 0 {
                return None;
            }
            let last = *segment.as_bytes().last()?;
            let value = BASE64URL.iter().position(|&b| b == last)?;
            let respelled = char::from(BASE64URL[value ^ usize::from(mask)]);
            Some(format!("{}{respelled}", &segment[..segment.len() - 1]))
        }
        NonCanonical::StandardAlphabet => segment
            .contains(['-', '_'])
            .then(|| segment.replace('-', "+").replace('_', "/")),
        NonCanonical::Whitespace(at, c) => {
            let mut respelled = segment.to_owned();
            respelled.insert(at.index(segment.len() + 1), *c);
            Some(respelled)
        }
    }
}

/// A registered claim's value: well-typed values around `NOW`, and the wrong JSON types
/// real tokens get wrong (`"exp": "123"`, fractions, negatives, arrays, null).
fn date_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (NOW - 3600..NOW + 3600).prop_map(Value::from),
        3 => (NOW - 2 * LEEWAY..NOW + 2 * LEEWAY).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (i64::MIN..0).prop_map(Value::from),
        1 => (0.0f64..4e9).prop_map(Value::from),
        1 => (NOW - 3600..NOW + 3600).prop_map(|n| Value::from(n.to_string())),
        1 => json_value(),
    ]
}

fn string_value(good: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::from(good)),
        1 => ".{0,12}".prop_map(Value::from),
        1 => Just(json!([good])),
        1 => json_value(),
    ]
}

fn audience_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => Just(Value::from(AUDIENCE)),
        2 => prop::collection::vec(
            prop_oneof![Just(Value::from(AUDIENCE)), "[a-z]{1,8}".prop_map(Value::from)],
            0..4
        )
        .prop_map(Value::Array),
        1 => "[a-z]{0,8}".prop_map(Value::from),
        1 => json_value(),
    ]
}

/// Claims with every registered claim present or not, well or badly typed, plus extra
/// members whose names no registered or `StandardClaims` member has.
fn claims_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::option::weighted(0.9, string_value(ISSUER)),
        prop::option::weighted(0.9, audience_value()),
        prop::option::weighted(0.9, date_value()),
        prop::option::of(date_value()),
        prop::option::of(date_value()),
        prop::option::of(string_value("alice")),
        prop::option::of(string_value("jti-1")),
        prop::collection::btree_map("x_[a-z0-9]{0,6}", json_value(), 0..4),
    )
        .prop_map(|(iss, aud, exp, nbf, iat, sub, jti, extra)| {
            let mut claims: Map<String, Value> = extra.into_iter().collect();
            let registered = [
                ("iss", iss),
                ("aud", aud),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
                ("sub", sub),
                ("jti", jti),
            ];
            for (name, value) in registered {
                if let Some(value) = value {
                    claims.insert(name.to_owned(), value);
                }
            }
            claims
        })
}

/// What RFC 7519 and the crate's documented rules say about `claims` at `NOW`.
fn expected(claims: &Map<String, Value>) -> Result<(), ErrorKind> {
    let date = |name| claims.get(name).map(Value::as_u64);
    let is_string = |name| claims.get(name).is_none_or(Value::is_string);
    let aud_ok = claims.get("aud").is_none_or(|aud| match aud {
        Value::String(_) => true,
        Value::Array(list) => !list.is_empty() && list.iter().all(Value::is_string),
        _ => false,
    });
    let dates_ok = ["exp", "nbf", "iat"]
        .into_iter()
        .all(|name| date(name).is_none_or(|d| d.is_some()));
    if !(is_string("iss") && is_string("sub") && is_string("jti") && aud_ok && dates_ok) {
        return Err(ErrorKind::InvalidClaim);
    }
    match claims.get("iss") {
        None => return Err(ErrorKind::MissingClaim),
        Some(iss) if iss != ISSUER => return Err(ErrorKind::WrongIssuer),
        Some(_) => {}
    }
    match claims.get("aud") {
        None => return Err(ErrorKind::MissingClaim),
        Some(Value::Array(list)) if !list.iter().any(|a| a == AUDIENCE) => {
            return Err(ErrorKind::WrongAudience);
        }
        Some(Value::String(aud)) if aud != AUDIENCE => return Err(ErrorKind::WrongAudience),
        Some(_) => {}
    }
    let Some(Some(exp)) = date("exp") else {
        return Err(ErrorKind::MissingClaim);
    };
    if NOW >= exp.saturating_add(LEEWAY) {
        return Err(ErrorKind::Expired);
    }
    if let Some(Some(nbf)) = date("nbf")
        && nbf > NOW + LEEWAY
    {
        return Err(ErrorKind::NotYetValid);
    }
    if let Some(Some(iat)) = date("iat")
        && iat > NOW + LEEWAY
    {
        return Err(ErrorKind::IssuedInFuture);
    }
    Ok(())
}

/// A JSON object's text with the members in this order, names spelled as given (which may
/// hold escapes) and values serialised.
fn object_text(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("\"{name}\":{value}"))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// `name` as a JSON string body with its first character `\u`-escaped.
fn escaped(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().map_or(0, u32::from);
    format!("\\u{first:04x}{}", chars.as_str())
}

// ---------------------------------------------------------------------------------------
// The JWS/JWT parser

proptest! {
    #![proptest_config(common::proptest_config(512))]

    /// Any string at all is refused with a typed token error, never a panic, and the error
    /// never quotes it.
    #[test]
    fn arbitrary_strings_are_refused_with_a_typed_error(token in any::<String>()) {
        let kind = verify(&token).unwrap_err();
        prop_assert!(kind.is_token_error(), "{kind:?}");
    }

    /// Arbitrary bytes read as text (lossily, as a header value would be) are refused.
    #[test]
    fn arbitrary_bytes_are_refused_with_a_typed_error(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let token = String::from_utf8_lossy(&bytes);
        let kind = verify(&token).unwrap_err();
        prop_assert!(kind.is_token_error(), "{kind:?}");
    }

    /// A token over the size limit is refused as `TooLarge` whatever it holds (a valid
    /// token with padding appended included), before any decoding.
    #[test]
    fn oversize_tokens_are_refused_before_decoding(
        filler in prop::collection::vec(token_char(), 1..64),
        valid_prefix in any::<bool>(),
    ) {
        let mut token = if valid_prefix { rsa_token() } else { String::new() };
        let filler: String = filler.into_iter().collect();
        while token.len() <= jwks_verify::DEFAULT_MAX_TOKEN_BYTES {
            token.push_str(&filler);
        }
        prop_assert_eq!(verify(&token).unwrap_err(), ErrorKind::TooLarge);
    }

    /// Three dot-separated segments of base64url-ish text, encoded JSON or almost-right
    /// headers, with a signature no key made: always refused, never a panic.
    #[test]
    fn three_segment_strings_without_a_valid_signature_are_refused(
        header in segment(),
        payload in segment(),
        signature in segment(),
    ) {
        let token = format!("{header}.{payload}.{signature}");
        let kind = verify(&token).unwrap_err();
        prop_assert!(kind.is_token_error(), "{kind:?}");
    }

    /// The same with a well-formed, accepted header: the refusal comes from the signature
    /// (or the segment's encoding), never from a panic in the payload.
    #[test]
    fn a_good_header_with_any_payload_and_signature_is_refused(
        payload in segment(),
        signature in segment(),
        rsa in any::<bool>(),
    ) {
        let good = if rsa { rsa_token() } else { ed_token(&ed_header(), &claims()) };
        let header = good.split('.').next().unwrap();
        let token = format!("{header}.{payload}.{signature}");
        let kind = verify(&token).unwrap_err();
        prop_assert!(
            matches!(kind, ErrorKind::Malformed | ErrorKind::InvalidSignature),
            "{kind:?}"
        );
    }

    /// Any single-character edit (replace, insert, delete) of a valid token, in any of its
    /// three segments, is refused: nothing in a compact JWS is malleable.
    #[test]
    fn any_single_character_edit_of_a_valid_token_is_refused(
        edit in edit(),
        rsa in any::<bool>(),
        sub in "[a-z]{1,12}",
    ) {
        let good = if rsa {
            rsa_token()
        } else {
            let mut claims = claims();
            claims["sub"] = Value::from(sub);
            ed_token(&ed_header(), &claims)
        };
        prop_assert!(verify(&good).is_ok());
        if let Some(edited) = apply(&good, &edit) {
            prop_assert!(verify(&edited).is_err(), "{edit:?} accepted");
        }
    }

    /// A valid token with one segment spelled non-canonically (padding, set trailing bits,
    /// the standard alphabet, whitespace) is refused; in the header or the signature
    /// before any signature work, as `Malformed`.
    #[test]
    fn non_canonical_base64url_is_refused(
        how in non_canonical(),
        which in 0usize..3,
        kid_len in 0usize..8,
        sub in "[a-z]{0,7}",
    ) {
        let mut header = ed_header();
        header["x"] = Value::from("k".repeat(kid_len));
        let mut claims = claims();
        claims["sub"] = Value::from(sub);
        let good = ed_token(&header, &claims);
        prop_assert!(verify(&good).is_ok());
        let mut segments: Vec<String> = good.split('.').map(str::to_owned).collect();
        if let Some(respelled) = respell(&segments[which], &how) {
            segments[which] = respelled;
            let kind = verify(&segments.join(".")).unwrap_err();
            if which == 1 {
                prop_assert!(
                    matches!(kind, ErrorKind::Malformed | ErrorKind::InvalidSignature),
                    "{kind:?}"
                );
            } else {
                prop_assert_eq!(kind, ErrorKind::Malformed);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The claims reader and the header parser, through signed tokens

proptest! {
    #![proptest_config(common::proptest_config(512))]

    /// Signed claims are accepted exactly when RFC 7519 and the documented rules say so,
    /// with the refusal the rules name; accepted claims read back as they were written.
    #[test]
    fn signed_claims_are_judged_by_the_documented_rules(claims in claims_object()) {
        let token = ed_token(&ed_header(), &Value::Object(claims.clone()));
        let outcome = verify(&token);
        prop_assert_eq!(outcome.as_ref().map(|_| ()).map_err(|k| *k), expected(&claims));
        if let Ok(read) = outcome {
            prop_assert_eq!(Some(&Value::from(read.iss)), claims.get("iss"));
            prop_assert_eq!(Some(&Value::from(read.exp)), claims.get("exp"));
            prop_assert_eq!(read.sub.map(Value::from), claims.get("sub").cloned());
            prop_assert_eq!(read.jti.map(Value::from), claims.get("jti").cloned());
            prop_assert_eq!(read.nbf.map(Value::from), claims.get("nbf").cloned());
            prop_assert_eq!(read.iat.map(Value::from), claims.get("iat").cloned());
        }
    }

    /// A signed claims set with any member given twice (registered or not, the second
    /// spelled plainly or with a `\u` escape, anywhere in the object) is refused, whatever
    /// the two values are: as `Malformed`, or as `InvalidClaim` when the reader stopped at
    /// a badly typed first copy of a registered claim before meeting the second.
    #[test]
    fn signed_claims_with_a_duplicate_member_are_refused(
        name in prop_oneof![
            prop::sample::select(&["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "client_id"][..])
                .prop_map(str::to_owned),
            "x_[a-z]{0,6}",
        ],
        value in json_value(),
        escape in any::<bool>(),
        at in any::<Index>(),
    ) {
        let mut members: Vec<(String, Value)> = claims()
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        if !members.iter().any(|(n, _)| *n == name) {
            members.push((name.clone(), value.clone()));
        }
        let spelled = if escape { escaped(&name) } else { name };
        members.insert(at.index(members.len() + 1), (spelled, value));
        let token = ed_sign_raw(&ed_header().to_string(), &object_text(&members));
        let kind = verify(&token).unwrap_err();
        prop_assert!(matches!(kind, ErrorKind::Malformed | ErrorKind::InvalidClaim), "{kind:?}");
    }

    /// A signed token whose header gives any member twice is refused as `Malformed`.
    #[test]
    fn signed_headers_with_a_duplicate_member_are_refused(
        name in prop::sample::select(&["alg", "typ", "kid", "x5u", "jku"][..]),
        value in json_value(),
        escape in any::<bool>(),
        at in any::<Index>(),
    ) {
        let mut members: Vec<(String, Value)> = ed_header()
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        if !members.iter().any(|(n, _)| n == name) {
            members.push((name.to_owned(), value.clone()));
        }
        let spelled = if escape { escaped(name) } else { name.to_owned() };
        members.insert(at.index(members.len() + 1), (spelled, value));
        let token = ed_sign_raw(&object_text(&members), &claims().to_string());
        prop_assert_eq!(verify(&token).unwrap_err(), ErrorKind::Malformed);
    }

    /// A signed payload that is not a JSON object (any other JSON value, or arbitrary
    /// bytes) is refused, never a panic.
    #[test]
    fn signed_payloads_that_are_not_claims_objects_are_refused(
        payload in prop_oneof![
            json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..256),
        ],
    ) {
        let input = format!("{}.{}", b64(ed_header().to_string().as_bytes()), b64(&payload));
        let signature = ed_key().sign(input.as_bytes());
        let token = format!("{input}.{}", b64(signature.as_ref()));
        let kind = verify(&token).unwrap_err();
        prop_assert!(kind.is_token_error(), "{kind:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The JWK Set parser

/// A JWK that is almost right: real member names with values of any type, and real key
/// types, curves and algorithms.
fn jwk_like() -> impl Strategy<Value = Value> {
    let member = |good: Vec<&'static str>| {
        prop_oneof![
            prop::sample::select(good).prop_map(Value::from),
            json_value(),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| Value::from(b64(&bytes))),
        ]
    };
    (
        prop::option::of(member(vec!["RSA", "EC", "OKP", "oct"])),
        prop::option::of(member(vec!["P-256", "P-384", "Ed25519", "secp256k1"])),
        prop::option::of(member(vec!["RS256", "ES256", "EdDSA", "PS512", "HS256"])),
        prop::option::of(member(vec!["sig", "enc"])),
        prop::option::of(member(vec!["AQAB", "AAEAAQ"])),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
    )
        .prop_map(|(kty, crv, alg, use_, e, n, x, y, d)| {
            let mut jwk = Map::new();
            for (name, value) in [
                ("kty", kty),
                ("crv", crv),
                ("alg", alg),
                ("use", use_),
                ("e", e),
                ("n", n),
                ("x", x),
                ("y", y),
                ("d", d),
            ] {
                if let Some(value) = value {
                    jwk.insert(name.to_owned(), value);
                }
            }
            Value::Object(jwk)
        })
}

fn all_algorithms() -> AlgorithmSet {
    Algorithm::ALL.into_iter().collect()
}

proptest! {
    #![proptest_config(common::proptest_config(512))]

    /// Any bytes, any JSON, and any object with a `keys` array of anything: the JWK Set
    /// parser answers a set or a typed error, never a panic. A set it builds accounts for
    /// every member of `keys`: each was loaded or skipped with a reason.
    #[test]
    fn jwk_set_parsing_of_arbitrary_input_never_panics(
        document in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(prop_oneof![jwk_like(), json_value()], 0..6)
                .prop_map(|keys| json!({"keys": keys}).to_string().into_bytes()),
        ],
    ) {
        let keys_in_document = serde_json::from_slice::<Value>(&document)
            .ok()
            .and_then(|v| v.get("keys").and_then(Value::as_array).map(Vec::len));
        if let Ok(set) = KeySet::from_jwks(&document, all_algorithms()) {
            prop_assert!(!set.is_empty());
            prop_assert_eq!(Some(set.len() + set.skipped().len()), keys_in_document);
        }
    }

    /// A good key among any number of junk JWKs is still loaded and still verifies its
    /// tokens: junk is skipped, never fatal to the set.
    #[test]
    fn a_good_key_survives_any_junk_around_it(
        before in prop::collection::vec(jwk_like(), 0..4),
        after in prop::collection::vec(jwk_like(), 0..4),
    ) {
        let total = before.len() + 1 + after.len();
        let mut keys = before;
        keys.push(ed_jwk());
        keys.extend(after);
        let document = json!({"keys": keys}).to_string();
        let set = KeySet::from_jwks(document.as_bytes(), all_algorithms()).unwrap();
        prop_assert!(set.kids().any(|kid| kid == ED_KID));
        prop_assert_eq!(set.len() + set.skipped().len(), total);

        let verifier = Verifier::builder(Policy::new(ISSUER, AUDIENCE).algorithms([Algorithm::EdDSA]))
            .static_jwks(&document)
            .clock(ManualClock::at_unix(NOW))
            .build()
            .unwrap();
        let token = ed_token(&ed_header(), &claims());
        prop_assert!(verifier.try_verify::<StandardClaims>(&token).is_ok());
    }
}
