//! Tests of [`Verifier`](super::Verifier) with static keys on a virtual clock.

use std::sync::OnceLock;

use super::*;
use crate::clock::ManualClock;
use crate::published::ACCEPTED_HEADERS;
use crate::test_keys;
use crate::{Algorithm, ErrorKind};

const NOW: u64 = 1_700_000_000;

#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: String,
}

fn verifier(entries: usize) -> (Verifier, ManualClock) {
    let clock = ManualClock::at_unix(NOW);
    let jwks = test_keys::jwks(&[test_keys::rsa_jwk("k1")]);
    let v = Verifier::builder(Policy::new("https://issuer.example", "api"))
        .static_jwks(jwks)
        .token_cache_entries(entries)
        .clock(clock.clone())
        .build()
        .unwrap();
    (v, clock)
}

fn token(exp: u64) -> String {
    test_keys::sign(
        &serde_json::json!({"alg": "RS256", "kid": "k1"}),
        &serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": exp}),
    )
}

#[test]
fn verifies_and_counts() {
    let (v, _) = verifier(0);
    let verified = v.try_verify::<Claims>(&token(NOW + 60)).unwrap();
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.key_id(), Some("k1"));
    assert_eq!(verified.algorithm(), Algorithm::RS256);
    assert_eq!(verified.expires_at(), NOW + 60);
    let err = v.try_verify::<Claims>("a.b.c").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    let m = v.metrics();
    assert_eq!(m.verified, 1);
    assert_eq!(m.rejected(ErrorKind::Malformed), 1);
    assert_eq!(m.keys_in_use, 1);
}

#[test]
fn token_cache_hits_and_respects_exp() {
    let (v, clock) = verifier(64);
    let t = token(NOW + 60);
    for _ in 0..3 {
        v.try_verify::<Claims>(&t).unwrap();
    }
    assert_eq!(v.metrics().token_cache_hits, 2);
    clock.advance(std::time::Duration::from_secs(60));
    // At exp the cache no longer serves it; full verification applies the leeway.
    v.try_verify::<Claims>(&t).unwrap();
    assert_eq!(v.metrics().token_cache_hits, 2);
    clock.advance(std::time::Duration::from_secs(30));
    assert_eq!(
        v.try_verify::<Claims>(&t).unwrap_err().kind(),
        ErrorKind::Expired
    );
}

#[test]
fn token_cache_is_per_claims_type() {
    let (v, _) = verifier(64);
    let t = token(NOW + 60);
    v.try_verify::<Claims>(&t).unwrap();
    let value = v.try_verify::<serde_json::Value>(&t).unwrap();
    assert_eq!(value["sub"], "alice");
}

fn remembered_headers(v: &Verifier) -> usize {
    let loaded = v.shared.keys.load_full().unwrap();
    loaded
        .accepted_headers
        .iter()
        .filter_map(OnceLock::get)
        .count()
}

fn claims_for(sub: &str) -> serde_json::Value {
    serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": sub, "exp": NOW + 60})
}

#[test]
fn remembered_header_still_needs_a_valid_signature() {
    let (v, _) = verifier(0);
    let good = token(NOW + 60);
    v.try_verify::<Claims>(&good).unwrap();
    assert_eq!(remembered_headers(&v), 1);
    // The remembered header with a swapped payload and the original signature.
    let other = test_keys::sign(
        &serde_json::json!({"alg": "RS256", "kid": "k1"}),
        &claims_for("mallory"),
    );
    let [header, _, signature]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{header}.{payload}.{signature}");
    assert_eq!(
        v.try_verify::<Claims>(&spliced).unwrap_err().kind(),
        ErrorKind::InvalidSignature
    );
}

#[test]
fn forged_tokens_do_not_fill_the_remembered_header_slots() {
    let (v, _) = verifier(0);
    for i in 0..10 {
        let forged = test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "k1", "x": i}),
            &claims_for("mallory"),
        );
        // Change one signature character well before the end (all six bits count).
        let at = forged.len() - 10;
        let swap = if &forged[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swap}{}", &forged[..at], &forged[at + 1..]);
        assert_eq!(
            v.try_verify::<Claims>(&tampered).unwrap_err().kind(),
            ErrorKind::InvalidSignature
        );
    }
    assert_eq!(remembered_headers(&v), 0);
    v.try_verify::<Claims>(&token(NOW + 60)).unwrap();
    assert_eq!(remembered_headers(&v), 1);
}

#[test]
fn remembered_header_slots_are_bounded() {
    let (v, _) = verifier(0);
    for i in 0..2 * ACCEPTED_HEADERS {
        let t = test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "k1", "x": i}),
            &claims_for("alice"),
        );
        // Twice: the second time through the remembered header when one was kept.
        v.try_verify::<Claims>(&t).unwrap();
        v.try_verify::<Claims>(&t).unwrap();
    }
    assert_eq!(remembered_headers(&v), ACCEPTED_HEADERS);
}

#[test]
fn static_unknown_kid_fails_without_waiting() {
    let (v, _) = verifier(0);
    let t = test_keys::sign(
        &serde_json::json!({"alg": "RS256", "kid": "other"}),
        &serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": "a", "exp": NOW + 60}),
    );
    assert_eq!(
        v.try_verify::<Claims>(&t).unwrap_err().kind(),
        ErrorKind::UnknownKey
    );
}

#[test]
fn builder_refuses_incomplete_configuration() {
    let no_source = Verifier::builder(Policy::new("https://i", "a")).build();
    assert_eq!(no_source.unwrap_err(), BuildError::NoKeySource);
    let empty = Verifier::builder(Policy::new("", "a"))
        .static_jwks("{}")
        .build();
    assert_eq!(empty.unwrap_err(), BuildError::IncompletePolicy);
    let no_algs = Verifier::builder(Policy::new("https://i", "a").algorithms([]))
        .static_jwks("{}")
        .build();
    assert_eq!(no_algs.unwrap_err(), BuildError::NoAlgorithms);
    let bad_jwks = Verifier::builder(Policy::new("https://i", "a"))
        .static_jwks("{}")
        .build();
    assert!(matches!(bad_jwks.unwrap_err(), BuildError::StaticJwks(_)));
}

#[test]
fn attempt_answers_from_memory_and_counts_once() {
    let (v, _) = verifier(64);
    let t = token(NOW + 60);
    let Attempt::Verified(verified) = v.attempt::<Claims>(&t) else {
        panic!("static keys answer at once");
    };
    assert_eq!(verified.sub, "alice");
    assert!(matches!(v.attempt::<Claims>(&t), Attempt::Verified(_)));
    assert!(matches!(
        v.attempt::<Claims>("a.b.c"),
        Attempt::Refused(error) if error.kind() == ErrorKind::Malformed
    ));
    let m = v.metrics();
    assert_eq!(m.verified, 2);
    assert_eq!(m.token_cache_hits, 1);
    assert_eq!(m.rejected(ErrorKind::Malformed), 1);
}
