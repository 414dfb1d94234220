//! JWKS cache behaviour against a real HTTP server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use jwks_verify::jwks::JwksCacheConfig;
use jwks_verify::{ErrorKind, ManualClock, Policy, StandardClaims, Verifier};
use serde_json::json;

mod common;
use common::{AUDIENCE, ISSUER, JwksServer, Mode, TestKey, b64, unix_now};

fn config() -> JwksCacheConfig {
    let mut config = JwksCacheConfig::default();
    config.fetch_timeout = Duration::from_secs(3);
    config
}

fn verifier(server: &JwksServer, clock: &ManualClock, config: JwksCacheConfig) -> Verifier {
    Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url(server.jwks_url())
        .jwks_cache(config)
        .clock(clock.clone())
        .token_cache_entries(0)
        .build()
        .unwrap()
}

/// A token whose signature is never checked: its `kid` is unknown.
fn token_with_kid(kid: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    format!("{}.{}.AAAA", b64(header.to_string().as_bytes()), b64(b"{}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_accepted_after_one_unknown_kid_refresh() {
    let now = unix_now();
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let server = JwksServer::start(common::jwks(&[&old])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());

    v.verify::<StandardClaims>(&old.token(now)).await.unwrap();
    assert_eq!(server.jwks_hits(), 1);

    // The issuer rotates: the new key appears and the old one is withdrawn.
    server.set_jwks(common::jwks(&[&new]));
    let verified = v.verify::<StandardClaims>(&new.token(now)).await.unwrap();
    assert_eq!(verified.key_id(), Some("new"));
    assert_eq!(
        server.jwks_hits(),
        2,
        "exactly one refresh for the unknown kid"
    );
    // The withdrawn key is no longer trusted.
    let err = v
        .verify::<StandardClaims>(&old.token(now))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert_eq!(
        server.jwks_hits(),
        2,
        "within the cooldown: no further fetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_verifications_on_a_cold_cache_cause_one_fetch() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    let token = Arc::new(key.token(now));

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let v = v.clone();
            let token = Arc::clone(&token);
            tokio::spawn(async move { v.verify::<StandardClaims>(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.jwks_hits(), 1);
    let m = v.metrics();
    assert_eq!(m.verified, 1000);
    assert_eq!(m.jwks_fetches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_random_kids_causes_at_most_one_fetch_per_cooldown() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    assert!(v.ready().await);
    assert_eq!(server.jwks_hits(), 1);

    for round in 1..=2 {
        let tasks: Vec<_> = (0..10_000)
            .map(|i| {
                let v = v.clone();
                tokio::spawn(async move {
                    v.verify::<StandardClaims>(&token_with_kid(&format!("random-{round}-{i}")))
                        .await
                        .unwrap_err()
                        .kind()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), ErrorKind::UnknownKey);
        }
        assert_eq!(server.jwks_hits(), 1 + round, "round {round}");
        clock.advance(Duration::from_secs(30));
    }
    // The good key kept working throughout.
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_down_keeps_stale_keys_until_max_age_then_fails_clearly() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let mut config = config();
    config.max_stale = Duration::from_secs(3600);
    let v = verifier(&server, &clock, config);
    let long_lived =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "a", "iat": now, "exp": now + 100_000});
    let token = key.sign(&key.header(), &long_lived);
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();

    server.set_mode(Mode::Status(503));
    // Past the 10-minute TTL: a background refresh is attempted and fails; keys stay.
    clock.advance(Duration::from_secs(700));
    let hits_before = server.jwks_hits();
    v.verify::<StandardClaims>(&token).await.unwrap();
    wait_until(|| v.metrics().jwks_fetch_failures >= 1).await;
    assert!(
        server.jwks_hits() > hits_before,
        "a background refresh was attempted"
    );
    v.verify::<StandardClaims>(&token).await.unwrap();

    // Past TTL + max stale age: the keys may not be used any more.
    clock.advance(Duration::from_secs(3600));
    let err = v.verify::<StandardClaims>(&token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeySetUnavailable);
    assert_eq!(err.to_string(), "no usable key set");

    // The endpoint recovers: the next request loads keys again.
    server.set_mode(Mode::Serve);
    clock.advance(Duration::from_secs(120));
    v.verify::<StandardClaims>(&token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_returning_html_keeps_the_old_keys() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();

    server.set_mode(Mode::Garbage);
    let err = v
        .verify::<StandardClaims>(&token_with_kid("rotated"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert_eq!(server.jwks_hits(), 2);
    assert_eq!(v.metrics().jwks_fetch_failures, 1);
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
    assert_eq!(v.metrics().keys_in_use, 1);

    // An empty key set is garbage too.
    server.set_mode(Mode::Serve);
    server.set_jwks(r#"{"keys":[]}"#.to_owned());
    clock.advance(Duration::from_secs(31));
    let _ = v
        .verify::<StandardClaims>(&token_with_kid("rotated-again"))
        .await;
    assert_eq!(v.metrics().jwks_fetch_failures, 2);
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_endpoint_times_out_without_blocking_verifications_that_have_keys() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();

    server.set_mode(Mode::Hang);
    let hanging = server.hanging.notified();
    let slow = {
        let v = v.clone();
        tokio::spawn(async move { v.verify::<StandardClaims>(&token_with_kid("new")).await })
    };
    hanging.await;
    // The refresh is stuck on the network; known keys still verify immediately.
    let token = key.token(now);
    for _ in 0..100 {
        v.verify::<StandardClaims>(&token).await.unwrap();
    }
    assert!(
        !slow.is_finished(),
        "the unknown-kid request is still waiting for the refresh"
    );
    let err = slow.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    wait_until(|| v.metrics().jwks_fetch_failures == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_with_dead_endpoint_fails_fast_after_one_attempt() {
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    server.set_mode(Mode::Status(500));
    let clock = ManualClock::at_unix(unix_now());
    let v = verifier(&server, &clock, config());
    let token = key.token(unix_now());
    let err = v.verify::<StandardClaims>(&token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeySetUnavailable);
    // Within the retry delay, further callers get the answer without another fetch.
    let hits = server.jwks_hits();
    for _ in 0..50 {
        let err = v.verify::<StandardClaims>(&token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeySetUnavailable);
    }
    assert_eq!(server.jwks_hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_issuer_must_match_and_jwks_uri_is_followed() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let issuer = server.issuer();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "a", "exp": now + 600});
    let token = key.sign(&key.header(), &claims);

    let good = Verifier::builder(Policy::new(issuer.clone(), AUDIENCE))
        .discover()
        .build()
        .unwrap();
    good.verify::<StandardClaims>(&token).await.unwrap();
    assert_eq!(server.jwks_hits(), 1);
    assert_eq!(server.other_hits(), 1, "one discovery fetch");

    // Configured with a trailing slash, the document's issuer does not match exactly.
    let bad = Verifier::builder(Policy::new(format!("{issuer}/"), AUDIENCE))
        .discover()
        .build()
        .unwrap();
    let err = bad.verify::<StandardClaims>(&token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeySetUnavailable);
    assert_eq!(
        server.jwks_hits(),
        1,
        "no jwks fetched for a mismatched issuer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_max_age_sets_the_refresh_time() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    server.set_cache_control("public, max-age=120");
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
    clock.advance(Duration::from_secs(100));
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
    assert_eq!(server.jwks_hits(), 1, "fresh for 120 s");
    clock.advance(Duration::from_secs(30));
    v.verify::<StandardClaims>(&key.token(now)).await.unwrap();
    wait_until(|| server.jwks_hits() == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_token_cache_is_dropped_when_the_key_set_changes() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let other = TestKey::generate("k2");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url(server.jwks_url())
        .jwks_cache(config())
        .clock(clock.clone())
        .build()
        .unwrap();
    let token = key.token(now);
    v.verify::<StandardClaims>(&token).await.unwrap();
    v.verify::<StandardClaims>(&token).await.unwrap();
    assert_eq!(v.metrics().token_cache_hits, 1);

    // k1 is revoked: the cached verification must not outlive it.
    server.set_jwks(common::jwks(&[&other]));
    let rotated = v.verify::<StandardClaims>(&other.token(now)).await;
    assert!(
        rotated.is_ok(),
        "{rotated:?} {:?} hits {}",
        v.metrics(),
        server.jwks_hits()
    );
    let err = v.verify::<StandardClaims>(&token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert_eq!(v.metrics().token_cache_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_jwks_body_is_refused() {
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let mut config = config();
    config.max_body_bytes = 64;
    let clock = ManualClock::at_unix(unix_now());
    let v = verifier(&server, &clock, config);
    let err = v
        .verify::<StandardClaims>(&key.token(unix_now()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeySetUnavailable);
    assert_eq!(v.metrics().jwks_fetch_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_fetch_does_not_follow_redirects() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let token = key.token(now);
    for status in [301, 302, 303, 307, 308] {
        server.set_mode(Mode::Redirect(status));
        let hits = server.jwks_hits();
        let v = verifier(&server, &clock, config());
        let err = v.verify::<StandardClaims>(&token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeySetUnavailable, "{status}");
        assert_eq!(server.jwks_hits(), hits + 1, "{status}");
        assert_eq!(v.metrics().jwks_fetch_failures, 1, "{status}");
        assert_eq!(
            server.redirect_target_hits(),
            0,
            "{status}: the redirect target was requested"
        );
    }
    // The target serves good keys: only not following the redirect kept them out.
    let direct = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url(server.redirect_target_url())
        .clock(clock.clone())
        .build()
        .unwrap();
    direct.verify::<StandardClaims>(&token).await.unwrap();
    assert_eq!(server.redirect_target_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_jws_payload_nudges_a_due_refresh() {
    let now = unix_now();
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    let clock = ManualClock::at_unix(now);
    let v = verifier(&server, &clock, config());
    assert!(v.ready().await);
    assert_eq!(server.jwks_hits(), 1);
    // Past the 10-minute TTL, a JWS-only verification wakes the refresh task like
    // `verify` does (its real-time sleep alone would take the whole TTL).
    clock.advance(Duration::from_secs(601));
    v.verify_jws_payload(&key.token(now)).await.unwrap();
    wait_until(|| server.jwks_hits() == 2).await;
}

#[test]
fn attack_jwks_url_with_credentials_is_refused() {
    let jwks_url = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url("https://user:hunter2@issuer.example/jwks?api_key=hunter2")
        .build()
        .unwrap_err();
    let discovered =
        Verifier::builder(Policy::new("https://user:hunter2@issuer.example", AUDIENCE))
            .discover()
            .build()
            .unwrap_err();
    for err in [jwks_url, discovered] {
        assert_eq!(err, jwks_verify::BuildError::CredentialsInUrl);
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}

#[test]
fn remote_key_source_without_a_runtime_is_a_build_error() {
    let err = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url("https://issuer.example/jwks")
        .build()
        .unwrap_err();
    assert_eq!(err, jwks_verify::BuildError::NoRuntime);
}

#[tokio::test]
async fn plain_http_key_source_is_refused_unless_loopback() {
    let err = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url("http://issuer.example/jwks")
        .build()
        .unwrap_err();
    assert!(matches!(err, jwks_verify::BuildError::InsecureUrl(_)));
    // The refused URL is shown without its query string, where API keys live.
    let err = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url("http://issuer.example/jwks?api_key=hunter2")
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        jwks_verify::BuildError::InsecureUrl("http://issuer.example/jwks".to_owned())
    );
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}
