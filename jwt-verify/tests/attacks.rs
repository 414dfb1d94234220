//! The attack suite: one test per attack, with tokens crafted here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use jwks_verify::{
    Algorithm, DEFAULT_TOKEN_CACHE_ENTRIES, Error, ErrorKind, ManualClock, Policy, SkipReason,
    StandardClaims, TypPolicy, Verifier,
};
use serde_json::{Value, json};

mod common;
use common::{AUDIENCE, ISSUER, TestKey, b64, claims};

const NOW: u64 = 1_800_000_000;

fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("k1"))
}

fn attacker() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("k1"))
}

fn verifier_with(policy: Policy, jwks: &str, token_cache_entries: usize) -> Verifier {
    Verifier::builder(policy)
        .static_jwks(jwks)
        .clock(ManualClock::at_unix(NOW))
        .token_cache_entries(token_cache_entries)
        .build()
        .unwrap()
}

fn policy() -> Policy {
    Policy::new(ISSUER, AUDIENCE)
}

fn verify(token: &str) -> Result<(), ErrorKind> {
    verify_with(policy(), token)
}

fn verify_with(policy: Policy, token: &str) -> Result<(), ErrorKind> {
    verify_against(&common::jwks(&[key()]), policy, token)
}

/// Verifies `token` three times and insists on one outcome: once with the verified-token
/// cache off, and twice through a verifier with the default cache that has already
/// accepted a good token (so its header is remembered, and the second pass meets whatever
/// the first left behind). No error may quote the token.
fn verify_against(jwks: &str, policy: Policy, token: &str) -> Result<(), ErrorKind> {
    let uncached = verifier_with(policy.clone(), jwks, 0);
    let cached = verifier_with(policy, jwks, DEFAULT_TOKEN_CACHE_ENTRIES);
    // The warm-up token may be refused under some policies and key sets; that is fine.
    let _ = cached.try_verify::<StandardClaims>(good_token());
    let outcome = verify_once(&uncached, token);
    for pass in ["first", "second"] {
        assert_eq!(
            verify_once(&cached, token),
            outcome,
            "{pass} pass through the cached verifier"
        );
    }
    outcome
}

fn verify_once(verifier: &Verifier, token: &str) -> Result<(), ErrorKind> {
    verifier
        .try_verify::<StandardClaims>(token)
        .map(|_| ())
        .map_err(|error| {
            assert_token_not_quoted(&error, token);
            error.kind()
        })
}

/// A token must never reach an error message: no recognisable segment of it may appear in
/// the error's `Display` or `Debug` output.
fn assert_token_not_quoted(error: &Error, token: &str) {
    for shown in [error.to_string(), format!("{error:?}")] {
        for segment in token.split('.').filter(|segment| segment.len() > 8) {
            assert!(
                !shown.contains(segment),
                "the error {shown:?} quotes a token segment"
            );
        }
    }
}

fn good_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| key().token(NOW))
}

fn header() -> Value {
    json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"})
}

fn with_claim(name: &str, value: Value) -> Value {
    let mut c = claims(NOW);
    c[name] = value;
    c
}

fn without_claim(name: &str) -> Value {
    let mut c = claims(NOW);
    c.as_object_mut().unwrap().remove(name);
    c
}

/// Header and payload of a good token, re-encoded with a different header.
fn unsigned(header: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims(NOW).to_string().as_bytes())
    )
}

#[test]
fn baseline_good_token_verifies() {
    assert_eq!(verify(&key().token(NOW)), Ok(()));
}

#[test]
fn alg_none_in_every_casing_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE", "none "] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k1"});
        // With an empty signature (the classic form) the token is not even three segments.
        assert_eq!(
            verify(&unsigned(&header, "")),
            Err(ErrorKind::Malformed),
            "{alg}"
        );
        // With any signature bytes, the algorithm allow-list refuses it before any crypto.
        assert_eq!(
            verify(&unsigned(&header, "AAAA")),
            Err(ErrorKind::AlgorithmNotAllowed),
            "{alg}"
        );
    }
}

#[test]
fn rs256_to_hs256_key_confusion_with_public_key_bytes_is_refused() {
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims(NOW).to_string().as_bytes())
    );
    // Try the usual candidates for "the public key as an HMAC secret".
    let candidates = [
        key().modulus(),
        key().jwk().to_string().into_bytes(),
        common::jwks(&[key()]).into_bytes(),
    ];
    for secret in candidates {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(verify(&token), Err(ErrorKind::AlgorithmNotAllowed));
        // Even with every supported algorithm allowed, HS256 is not among them.
        let all = policy().algorithms(Algorithm::ALL);
        assert_eq!(
            verify_with(all, &token),
            Err(ErrorKind::AlgorithmNotAllowed)
        );
    }
}

#[test]
fn alg_key_mismatch_is_refused() {
    // The JWK says RS256; a PS256 (or ES256) token naming it must not be checked with it.
    let allowed = policy().algorithms([Algorithm::RS256, Algorithm::PS256, Algorithm::ES256]);
    for (alg, refusal) in [
        // Allowed by the policy, but the only key named k1 is bound to RS256: no key fits,
        // and the static set has nothing to refresh.
        ("PS256", ErrorKind::UnknownKey),
        ("ES256", ErrorKind::UnknownKey),
        // Not in the allow-list: refused before any key is looked up.
        ("RS512", ErrorKind::AlgorithmNotAllowed),
    ] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k1"});
        let token = key().sign(&header, &claims(NOW));
        let result = verify_with(allowed.clone(), &token);
        assert!(
            matches!(
                result,
                Err(ErrorKind::UnknownKey | ErrorKind::AlgorithmNotAllowed)
            ),
            "{alg}: {result:?}"
        );
        assert_eq!(result, Err(refusal), "{alg}");
    }
}

#[test]
fn kid_injection_path_traversal_is_just_an_unknown_key() {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "../../../../etc/passwd"});
    assert_eq!(
        verify(&key().sign(&header, &claims(NOW))),
        Err(ErrorKind::UnknownKey)
    );
}

#[test]
fn kid_injection_sql_is_just_an_unknown_key() {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1' OR '1'='1"});
    assert_eq!(
        verify(&key().sign(&header, &claims(NOW))),
        Err(ErrorKind::UnknownKey)
    );
}

#[test]
fn kid_injection_10kb_is_refused_by_size_before_decoding() {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k".repeat(10 * 1024)});
    let token = unsigned(&header, "AAAA");
    assert_eq!(verify(&token), Err(ErrorKind::TooLarge));
    // With the size limit raised, it is still only an unknown key.
    let roomy = policy().max_token_bytes(64 * 1024);
    assert_eq!(verify_with(roomy, &token), Err(ErrorKind::UnknownKey));
}

#[test]
fn kid_injection_non_string_is_malformed() {
    for kid in [
        json!(1),
        json!(null),
        json!(["k1"]),
        json!({"kid": "k1"}),
        json!(true),
    ] {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        assert_eq!(
            verify(&key().sign(&header, &claims(NOW))),
            Err(ErrorKind::Malformed),
            "{kid}"
        );
    }
}

#[test]
fn jku_x5u_and_embedded_jwk_pointing_elsewhere_are_ignored() {
    // The attacker signs with their own key and points every key-source header at it.
    let evil = attacker();
    let header = json!({
        "alg": "RS256",
        "typ": "at+jwt",
        "kid": "k1",
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
        "jwk": evil.jwk(),
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    });
    assert_eq!(
        verify(&evil.sign(&header, &claims(NOW))),
        Err(ErrorKind::InvalidSignature)
    );
    // The same headers on a token signed by the real key change nothing either.
    assert_eq!(verify(&key().sign(&header, &claims(NOW))), Ok(()));
}

#[test]
fn unknown_crit_is_refused() {
    for crit in [
        json!(["exp"]),
        json!(["urn:example:unknown"]),
        json!([]),
        json!("b64"),
    ] {
        let mut header = header();
        header["crit"] = crit.clone();
        header["urn:example:unknown"] = json!(true);
        assert_eq!(
            verify(&key().sign(&header, &claims(NOW))),
            Err(ErrorKind::UnsupportedCritical),
            "{crit}"
        );
    }
    let mut b64_false = header();
    b64_false["b64"] = json!(false);
    assert_eq!(
        verify(&key().sign(&b64_false, &claims(NOW))),
        Err(ErrorKind::UnsupportedCritical)
    );
}

#[test]
fn wrong_typ_is_refused() {
    for typ in [
        "dpop+jwt",
        "logout+jwt",
        "secevent+jwt",
        "JWE",
        "application/example+jwt",
    ] {
        let header = json!({"alg": "RS256", "typ": typ, "kid": "k1"});
        assert_eq!(
            verify(&key().sign(&header, &claims(NOW))),
            Err(ErrorKind::WrongType),
            "{typ}"
        );
    }
}

#[test]
fn id_token_presented_as_access_token_is_refused() {
    let access_only = policy().typ(TypPolicy::AccessToken);
    for header in [
        json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
        json!({"alg": "RS256", "kid": "k1"}),
    ] {
        let id_token = key().sign(&header, &claims(NOW));
        assert_eq!(
            verify_with(access_only.clone(), &id_token),
            Err(ErrorKind::WrongType)
        );
    }
    let access_token = key().token(NOW);
    assert_eq!(verify_with(access_only, &access_token), Ok(()));
}

#[test]
fn padded_base64_is_refused() {
    let header = b64(header().to_string().as_bytes());
    let payload = b64(claims(NOW).to_string().as_bytes());
    // Even when the issuer itself signed the padded form, padding is refused.
    let padded_header = key().sign_input(&format!("{header}==.{payload}"));
    assert_eq!(verify(&padded_header), Err(ErrorKind::Malformed));
    let padded_payload = key().sign_input(&format!("{header}.{payload}=="));
    assert_eq!(verify(&padded_payload), Err(ErrorKind::Malformed));
    let padded_signature = format!("{}==", key().token(NOW));
    assert_eq!(verify(&padded_signature), Err(ErrorKind::Malformed));
}

#[test]
fn non_canonical_base64_is_refused() {
    let good = key().token(NOW);
    let (rest, sig) = good.rsplit_once('.').unwrap();
    // A 256-byte signature is 342 characters: the last one carries 2 unused bits. Setting
    // them gives a different string that decodes to the same bytes in lax decoders.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let twin = alphabet.chars().nth(index | 0b11).unwrap();
    assert_ne!(twin, last);
    let forged = format!("{rest}.{}{twin}", &sig[..sig.len() - 1]);
    assert_eq!(verify(&forged), Err(ErrorKind::Malformed));
    // Standard-alphabet characters are not base64url.
    let std_alphabet = good.replacen('-', "+", 1).replacen('_', "/", 1);
    if std_alphabet != good {
        assert_eq!(verify(&std_alphabet), Err(ErrorKind::Malformed));
    }
}

#[test]
fn four_and_five_segments_are_refused() {
    let good = key().token(NOW);
    assert_eq!(verify(&format!("{good}.AAAA")), Err(ErrorKind::Malformed));
    assert_eq!(
        verify(&format!("{good}.AAAA.AAAA")),
        Err(ErrorKind::Malformed)
    );
    let (rest, _) = good.rsplit_once('.').unwrap();
    assert_eq!(
        verify(rest),
        Err(ErrorKind::Malformed),
        "signature stripped"
    );
}

#[test]
fn duplicate_claims_are_refused() {
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{},"exp":{}}}"#,
        NOW - 3600,
        NOW + 3600
    );
    let token = key().sign_raw(&header().to_string(), &payload);
    assert_eq!(verify(&token), Err(ErrorKind::Malformed));
    let sub_twice = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","sub":"admin","exp":{}}}"#,
        NOW + 3600
    );
    assert_eq!(
        verify(&key().sign_raw(&header().to_string(), &sub_twice)),
        Err(ErrorKind::Malformed)
    );
}

#[test]
fn duplicate_header_members_are_refused() {
    let header = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1","kid":"k2"}"#;
    let token = key().sign_raw(header, &claims(NOW).to_string());
    assert_eq!(verify(&token), Err(ErrorKind::Malformed));
}

#[test]
fn exp_as_string_float_or_negative_is_refused() {
    for exp in [
        json!((NOW + 600).to_string()),
        json!(NOW as f64 + 600.5),
        json!(-1),
        json!(1e300),
        json!(null),
    ] {
        let token = key().sign(&header(), &with_claim("exp", exp.clone()));
        assert_eq!(verify(&token), Err(ErrorKind::InvalidClaim), "{exp}");
    }
}

#[test]
fn nbf_of_the_wrong_type_is_refused_not_skipped() {
    // CVE-2026-25537: a wrongly typed nbf was treated as absent.
    let token = key().sign(
        &header(),
        &with_claim("nbf", json!((NOW + 9999).to_string())),
    );
    assert_eq!(verify(&token), Err(ErrorKind::InvalidClaim));
}

#[test]
fn iss_as_array_is_refused() {
    let token = key().sign(
        &header(),
        &with_claim("iss", json!([ISSUER, "https://evil.example"])),
    );
    assert_eq!(verify(&token), Err(ErrorKind::InvalidClaim));
}

#[test]
fn missing_iss_is_refused() {
    assert_eq!(
        verify(&key().sign(&header(), &without_claim("iss"))),
        Err(ErrorKind::MissingClaim)
    );
}

#[test]
fn missing_aud_is_refused() {
    assert_eq!(
        verify(&key().sign(&header(), &without_claim("aud"))),
        Err(ErrorKind::MissingClaim)
    );
}

#[test]
fn missing_exp_is_refused() {
    assert_eq!(
        verify(&key().sign(&header(), &without_claim("exp"))),
        Err(ErrorKind::MissingClaim)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let t = key().sign(
        &header(),
        &with_claim("iss", json!("https://issuer.example/")),
    );
    assert_eq!(verify(&t), Err(ErrorKind::WrongIssuer));
    let t = key().sign(
        &header(),
        &with_claim("aud", json!(["https://other.example"])),
    );
    assert_eq!(verify(&t), Err(ErrorKind::WrongAudience));
}

#[test]
fn expired_beyond_leeway_is_refused() {
    let t = key().sign(&header(), &with_claim("exp", json!(NOW - 31)));
    assert_eq!(verify(&t), Err(ErrorKind::Expired));
    let within = key().sign(&header(), &with_claim("exp", json!(NOW - 29)));
    assert_eq!(verify(&within), Ok(()));
}

#[test]
fn nbf_in_the_future_is_refused() {
    let t = key().sign(&header(), &with_claim("nbf", json!(NOW + 120)));
    assert_eq!(verify(&t), Err(ErrorKind::NotYetValid));
}

#[test]
fn iat_in_the_future_is_refused() {
    let t = key().sign(&header(), &with_claim("iat", json!(NOW + 120)));
    assert_eq!(verify(&t), Err(ErrorKind::IssuedInFuture));
}

#[test]
fn oversize_token_is_refused_before_decoding() {
    let big = key().sign(&header(), &with_claim("pad", json!("x".repeat(9000))));
    assert_eq!(verify(&big), Err(ErrorKind::TooLarge));
    // Not even valid base64 gets decoded when it is too long.
    assert_eq!(verify(&"!".repeat(9000)), Err(ErrorKind::TooLarge));
}

#[test]
fn signature_from_another_key_with_the_same_kid_is_refused() {
    assert_eq!(
        verify(&attacker().token(NOW)),
        Err(ErrorKind::InvalidSignature)
    );
}

#[test]
fn payload_swap_keeps_signature_invalid() {
    let good = key().token(NOW);
    let other = key().sign(&header(), &with_claim("sub", json!("admin")));
    let (h, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let other_payload = other.split('.').nth(1).unwrap();
    assert_eq!(
        verify(&format!("{h}.{other_payload}.{sig}")),
        Err(ErrorKind::InvalidSignature)
    );
}

#[test]
fn header_not_json_object_is_malformed() {
    for header in ["[]", "\"RS256\"", "{", "null"] {
        let token = format!("{}.{}.AAAA", b64(header.as_bytes()), b64(b"{}"));
        assert_eq!(verify(&token), Err(ErrorKind::Malformed), "{header}");
    }
}

#[test]
fn whitespace_in_tokens_is_refused() {
    let good = key().token(NOW);
    assert_eq!(verify(&format!(" {good}")), Err(ErrorKind::Malformed));
    assert_eq!(verify(&format!("{good}\n")), Err(ErrorKind::Malformed));
    // Inside the signed part the bytes no longer match the signature.
    assert_eq!(
        verify(&good.replacen('.', ". ", 1)),
        Err(ErrorKind::InvalidSignature)
    );
    // Signed by the issuer with the space in it, it is still not base64url.
    let header = b64(header().to_string().as_bytes());
    let payload = b64(claims(NOW).to_string().as_bytes());
    assert_eq!(
        verify(&key().sign_input(&format!("{header}. {payload}"))),
        Err(ErrorKind::Malformed)
    );
}

#[test]
fn oversize_signature_segment_is_refused_before_decoding() {
    // Room for any signature size: the RSA-8192 limit (1024 bytes) is what refuses.
    let roomy = || policy().max_token_bytes(64 * 1024);
    let input = format!(
        "{}.{}",
        b64(header().to_string().as_bytes()),
        b64(claims(NOW).to_string().as_bytes())
    );
    let at_limit = format!("{input}.{}", b64(&[0x5a; 1024]));
    assert_eq!(
        verify_with(roomy(), &at_limit),
        Err(ErrorKind::InvalidSignature)
    );
    for bytes in [1025, 4096, 40_000] {
        let oversize = format!("{input}.{}", b64(&vec![0x5a; bytes]));
        assert_eq!(
            verify_with(roomy(), &oversize),
            Err(ErrorKind::Malformed),
            "{bytes} bytes"
        );
    }
}

#[test]
fn header_with_too_many_members_is_refused() {
    let with_members = |count: usize| {
        let mut header = header();
        for i in 0..count - 3 {
            header[format!("x{i:03}").as_str()] = json!(0);
        }
        header
    };
    // 32 members is the limit, and a token at the limit is fine.
    assert_eq!(verify(&key().sign(&with_members(32), &claims(NOW))), Ok(()));
    for count in [33, 200] {
        assert_eq!(
            verify(&key().sign(&with_members(count), &claims(NOW))),
            Err(ErrorKind::Malformed),
            "{count} members"
        );
    }
}

#[test]
fn jwk_with_kid_over_1_kib_is_skipped() {
    let long_kid = "k".repeat(1025);
    let fitting_kid = "k".repeat(1024);
    let mut oversize = key().jwk();
    oversize["kid"] = json!(long_kid);
    let mut fitting = key().jwk();
    fitting["kid"] = json!(fitting_kid);
    let jwks = json!({"keys": [oversize, fitting]}).to_string();

    let key_set = verifier_with(policy(), &jwks, 0).key_set().unwrap();
    assert_eq!(key_set.kids().collect::<Vec<_>>(), [fitting_kid.as_str()]);
    let skipped = key_set.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].reason, SkipReason::OversizeKid);

    // A token naming the oversize kid, validly signed by that key, finds no key.
    let roomy = || policy().max_token_bytes(64 * 1024);
    let named = |kid: &str| {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        key().sign(&header, &claims(NOW))
    };
    assert_eq!(
        verify_against(&jwks, roomy(), &named(&long_kid)),
        Err(ErrorKind::UnknownKey)
    );
    assert_eq!(verify_against(&jwks, roomy(), &named(&fitting_kid)), Ok(()));
}

#[test]
fn token_without_kid_is_not_tried_against_each_key() {
    // Key-trial DoS: trying every key for a token without `kid` would let one token cost one
    // RSA operation per key in the set.
    let mut second = attacker().jwk();
    second["kid"] = json!("k2");
    let two_keys = json!({"keys": [key().jwk(), second]}).to_string();
    let no_kid = json!({"alg": "RS256", "typ": "at+jwt"});
    let token = key().sign(&no_kid, &claims(NOW));
    // Validly signed by the first key: only not trying keys explains the refusal.
    assert_eq!(
        verify_against(&two_keys, policy(), &token),
        Err(ErrorKind::UnknownKey)
    );
    // With one RS256 key there is nothing to choose between: it is used.
    assert_eq!(verify(&token), Ok(()));
}
