//! Tests of `keys/ring.rs`.

use std::cell::Cell;
use std::collections::HashMap;

use base64::Engine as _;
use jwks_verify::{ErrorKind, ManualClock, Policy, TypPolicy, Verifier};

use super::*;
use crate::jwt::encode_jwt;
use crate::keys::test_keys;

const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3600;
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";

/// Hands out the shared test keys in order, so tests need not generate RSA keys.
struct Pool(Cell<usize>);

impl Pool {
    fn new() -> Self {
        Pool(Cell::new(0))
    }

    fn starting_at(i: usize) -> Self {
        Pool(Cell::new(i))
    }
}

impl KeyGenerator for Pool {
    fn generate_key(&self) -> Result<SigningKey, KeyError> {
        let i = self.0.get();
        self.0.set(i + 1);
        Ok(test_keys::key(i))
    }
}

struct Failing;

impl KeyGenerator for Failing {
    fn generate_key(&self) -> Result<SigningKey, KeyError> {
        Err(KeyError::Generation)
    }
}

fn policy() -> RotationPolicy {
    RotationPolicy::default()
}

fn sign(ring: &KeyRing, now: u64, lifetime: u64) -> (String, u64) {
    let key = ring.signer(now).unwrap();
    let exp = now + lifetime;
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": exp,
    });
    (encode_jwt(key, "at+jwt", &claims).unwrap(), exp)
}

fn verifier(jwks: &str, now: u64) -> Verifier {
    Verifier::builder(Policy::new(ISSUER, AUDIENCE).typ(TypPolicy::AccessToken))
        .static_jwks(jwks)
        .token_cache_entries(0)
        .clock(ManualClock::at_unix(now))
        .build()
        .unwrap()
}

fn verify(jwks: &str, now: u64, token: &str) -> Result<(), ErrorKind> {
    verifier(jwks, now)
        .try_verify::<serde_json::Value>(token)
        .map(drop)
        .map_err(|e| e.kind())
}

fn kids(ring: &KeyRing) -> Vec<String> {
    ring.public_keys()
        .iter()
        .map(|k| k.kid().to_owned())
        .collect()
}

#[test]
fn default_policy_values() {
    let p = RotationPolicy::default();
    assert_eq!(p.rotate_every(), Duration::from_secs(30 * DAY));
    assert_eq!(p.publish_ahead(), Duration::from_secs(DAY));
    assert_eq!(p.jwks_max_age(), Duration::from_secs(600));
    assert_eq!(
        p.retain_after_retire(),
        Duration::from_secs(3600 + 600 + 3600)
    );
    assert!(p.validate().is_ok());
}

#[test]
fn policy_refuses_unsafe_combinations() {
    let p = RotationPolicy::default();
    let cache_outlives_lead = p.with_jwks_max_age(p.publish_ahead());
    assert!(matches!(
        cache_outlives_lead.validate(),
        Err(KeyRingError::InvalidPolicy(_))
    ));
    let lead_outlives_period = p.with_publish_ahead(p.rotate_every());
    assert!(lead_outlives_period.validate().is_err());
    let short_retention = p
        .with_jwks_max_age(Duration::from_secs(600))
        .with_retain_after_retire(Duration::from_secs(599));
    assert!(short_retention.validate().is_err());
    assert!(KeyRing::new(short_retention).is_err());
    assert!(KeyRing::from_records(short_retention, []).is_err());
}

#[test]
fn first_advance_bootstraps_a_signing_key() {
    let mut ring = KeyRing::new(policy()).unwrap();
    assert!(ring.signer(T0).is_none());
    let events = ring.advance(T0, &Pool::new()).unwrap();
    let kid = test_keys::key(0).kid().to_owned();
    assert_eq!(
        events,
        [
            KeyEvent::Generated {
                kid: kid.clone(),
                activates_at: T0
            },
            KeyEvent::Activated { kid: kid.clone() },
        ]
    );
    assert_eq!(ring.signer(T0).unwrap().kid(), kid);
    assert_eq!(ring.state(&kid, T0), Some(KeyState::Current));
    assert_eq!(kids(&ring), [kid]);
    // Nothing more to do until the successor is due.
    assert!(ring.advance(T0 + HOUR, &Failing).unwrap().is_empty());
    assert_eq!(ring.next_due(T0), T0 + 29 * DAY);
}

#[test]
fn rotation_follows_the_schedule() {
    let p = policy();
    let mut ring = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    ring.advance(T0, &pool).unwrap();
    let (k0, k1) = (
        test_keys::key(0).kid().to_owned(),
        test_keys::key(1).kid().to_owned(),
    );

    let due = T0 + 30 * DAY - DAY;
    assert!(ring.advance(due - 1, &pool).unwrap().is_empty());
    let events = ring.advance(due, &pool).unwrap();
    assert_eq!(
        events,
        [KeyEvent::Generated {
            kid: k1.clone(),
            activates_at: T0 + 30 * DAY
        }]
    );
    assert_eq!(ring.state(&k1, due), Some(KeyState::Next));
    assert_eq!(ring.signer(due).unwrap().kid(), k0);
    assert_eq!(ring.next_due(due), T0 + 30 * DAY);

    let activation = T0 + 30 * DAY;
    assert_eq!(ring.signer(activation - 1).unwrap().kid(), k0);
    assert_eq!(ring.signer(activation).unwrap().kid(), k1);
    let retain = p.retain_after_retire().as_secs();
    let events = ring.advance(activation, &pool).unwrap();
    assert_eq!(
        events,
        [
            KeyEvent::Retired {
                kid: k0.clone(),
                drop_after: activation + retain
            },
            KeyEvent::Activated { kid: k1.clone() },
        ]
    );
    assert_eq!(ring.state(&k0, activation), Some(KeyState::Retired));
    assert_eq!(ring.next_due(activation), activation + retain);

    assert!(
        ring.advance(activation + retain - 1, &pool)
            .unwrap()
            .is_empty()
    );
    assert_eq!(kids(&ring), [k0.clone(), k1.clone()]);
    let events = ring.advance(activation + retain, &pool).unwrap();
    assert_eq!(events, [KeyEvent::Dropped { kid: k0.clone() }]);
    assert!(events[0].changes_records());
    assert_eq!(kids(&ring), [k1]);
    assert_eq!(ring.state(&k0, activation + retain), None);
}

/// Drives the ring for three rotation periods on a virtual clock, signing a token with
/// the maximum lifetime every 15 minutes, and checks at every step that the JWKS then
/// served verifies every live token, and that every key was published at least
/// `publish_ahead` before it signed.
#[test]
fn jwks_never_lacks_a_key_that_signed_a_live_token() {
    let p = policy();
    let lifetime = DEFAULT_MAX_TOKEN_LIFETIME.as_secs();
    let step = 15 * 60;
    let mut ring = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    let mut live: Vec<(String, u64)> = Vec::new();
    let mut first_published: HashMap<String, u64> = HashMap::new();
    let mut first_signed: HashMap<String, u64> = HashMap::new();
    let mut now = T0;
    while now < T0 + 95 * DAY {
        ring.advance(now, &pool).unwrap();
        let jwks = ring.jwks();
        for kid in kids(&ring) {
            first_published.entry(kid).or_insert(now);
        }
        live.retain(|(_, exp)| *exp > now);
        for (token, _) in &live {
            assert_eq!(verify(&jwks, now, token), Ok(()), "at {}", now - T0);
        }
        let signer = ring.signer(now).unwrap().kid().to_owned();
        first_signed.entry(signer).or_insert(now);
        live.push(sign(&ring, now, lifetime));
        assert!(ring.public_keys().len() <= 3);
        now += step;
    }
    assert_eq!(first_signed.len(), 4, "three rotations happened");
    for (kid, signed) in &first_signed {
        let published = first_published[kid];
        if *signed == T0 {
            continue; // the bootstrap key signs at once: nothing was published before it
        }
        assert!(
            signed - published >= p.publish_ahead().as_secs(),
            "{kid} published at {published}, signed at {signed}"
        );
    }
}

#[test]
fn token_signed_before_rotation_verifies_until_its_expiry() {
    let p = policy();
    let mut ring = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    ring.advance(T0, &pool).unwrap();
    let activation = T0 + 30 * DAY;
    ring.advance(activation - DAY, &pool).unwrap();

    let (token, exp) = sign(&ring, activation - 1, DEFAULT_MAX_TOKEN_LIFETIME.as_secs());
    ring.advance(activation, &pool).unwrap();
    assert_ne!(
        ring.signer(activation).unwrap().kid(),
        test_keys::key(0).kid()
    );
    for t in [activation, activation + 1800, exp - 1] {
        ring.advance(t, &pool).unwrap();
        assert_eq!(
            verify(&ring.jwks(), t, &token),
            Ok(()),
            "at exp - {}",
            exp - t
        );
    }
    // After expiry (and the verifier's leeway) it is refused for being expired, while
    // the key is still published.
    ring.advance(exp + 31, &pool).unwrap();
    assert_eq!(
        verify(&ring.jwks(), exp + 31, &token),
        Err(ErrorKind::Expired)
    );
    // Only once the retention has passed does the key disappear.
    let drop_at = activation + p.retain_after_retire().as_secs();
    assert!(drop_at > exp + 31);
    ring.advance(drop_at, &pool).unwrap();
    assert_eq!(
        verify(&ring.jwks(), drop_at, &token),
        Err(ErrorKind::UnknownKey)
    );
}

#[test]
fn new_key_is_published_at_least_publish_ahead_before_it_signs() {
    let p = policy();
    let mut ring = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    ring.advance(T0, &pool).unwrap();
    let generated_at = T0 + 29 * DAY;
    let events = ring.advance(generated_at, &pool).unwrap();
    let [KeyEvent::Generated { kid, activates_at }] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert!(ring.jwks().contains(kid.as_str()));
    assert!(activates_at - generated_at >= p.publish_ahead().as_secs());
    // A verifier that cached the JWKS just before the new key appeared has refreshed
    // (max-age) long before the key signs.
    assert!(generated_at + p.jwks_max_age().as_secs() < *activates_at);
}

#[test]
fn late_advance_postpones_rotation_instead_of_signing_with_an_unpublished_key() {
    let p = policy();
    let mut ring = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    ring.advance(T0, &pool).unwrap();
    // The instance was down for 40 days: the planned rotation (day 30) was missed.
    let late = T0 + 40 * DAY;
    assert!(ring.next_due(late) < late);
    assert_eq!(
        ring.signer(late).unwrap().kid(),
        test_keys::key(0).kid(),
        "keeps signing"
    );
    let events = ring.advance(late, &pool).unwrap();
    let expected_activation = late + p.publish_ahead().as_secs();
    assert_eq!(
        events,
        [KeyEvent::Generated {
            kid: test_keys::key(1).kid().to_owned(),
            activates_at: expected_activation
        }]
    );
    assert_eq!(
        ring.signer(expected_activation - 1).unwrap().kid(),
        test_keys::key(0).kid()
    );
    assert_eq!(
        ring.signer(expected_activation).unwrap().kid(),
        test_keys::key(1).kid()
    );
    let records = ring.records();
    assert_eq!(records[0].retires_at, expected_activation);
    assert_eq!(
        records[0].drop_after,
        expected_activation + p.retain_after_retire().as_secs()
    );
}

#[test]
fn replicas_and_restarts_converge_from_records() {
    let p = policy();
    let mut leader = KeyRing::new(p).unwrap();
    let pool = Pool::new();
    leader.advance(T0, &pool).unwrap();
    leader.advance(T0 + 29 * DAY, &pool).unwrap();

    let follower = KeyRing::from_records(p, leader.records()).unwrap();
    assert_eq!(follower.jwks(), leader.jwks());
    for t in [
        T0,
        T0 + 29 * DAY,
        T0 + 30 * DAY - 1,
        T0 + 30 * DAY,
        T0 + 31 * DAY,
    ] {
        assert_eq!(
            follower.signer(t).unwrap().kid(),
            leader.signer(t).unwrap().kid(),
            "at {t}"
        );
    }
    // Records are stored in any order; the ring is the same.
    let mut shuffled = leader.records();
    shuffled.reverse();
    let reordered = KeyRing::from_records(p, shuffled).unwrap();
    assert_eq!(reordered.jwks(), leader.jwks());

    // A restarted instance with nothing due generates nothing.
    let mut restarted = KeyRing::from_records(p, leader.records()).unwrap();
    assert!(
        restarted
            .advance(T0 + 29 * DAY + HOUR, &Failing)
            .unwrap()
            .is_empty()
    );
    let before: Vec<_> = leader
        .records()
        .iter()
        .map(|r| (r.kid.clone(), r.activates_at, r.retires_at, r.drop_after))
        .collect();
    let after: Vec<_> = restarted
        .records()
        .iter()
        .map(|r| (r.kid.clone(), r.activates_at, r.retires_at, r.drop_after))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn from_records_refuses_tampered_records() {
    let p = policy();
    let mut ring = KeyRing::new(p).unwrap();
    ring.advance(T0, &Pool::new()).unwrap();
    let other = test_keys::key(5);

    let mut records = ring.records();
    records[0].kid = other.kid().to_owned();
    assert!(matches!(
        KeyRing::from_records(p, records),
        Err(KeyRingError::KidMismatch { .. })
    ));

    let mut records = ring.records();
    records[0].pkcs8 = Pkcs8Secret::from_der(b"not a key".to_vec());
    let err = KeyRing::from_records(p, records).unwrap_err();
    assert!(
        matches!(err, KeyRingError::UnreadableRecord { .. }),
        "{err:?}"
    );

    let mut records = ring.records();
    records[0].drop_after = records[0].retires_at - 1;
    assert!(matches!(
        KeyRing::from_records(p, records),
        Err(KeyRingError::InconsistentTimes { .. })
    ));

    let mut records = ring.records();
    records.extend(ring.records());
    assert!(matches!(
        KeyRing::from_records(p, records),
        Err(KeyRingError::DuplicateKid { .. })
    ));

    let mut records = ring.records();
    records.push(KeyRecord::new(
        other.kid().to_owned(),
        other.to_pkcs8_der().unwrap(),
        T0,
        T0,
        T0 + DAY,
        T0 + 2 * DAY,
    ));
    assert_eq!(
        KeyRing::from_records(p, records).unwrap_err(),
        KeyRingError::SameActivation
    );
}

#[test]
fn failed_generation_changes_nothing() {
    let mut ring = KeyRing::new(policy()).unwrap();
    let err = ring.advance(T0, &Failing).unwrap_err();
    assert_eq!(err, KeyRingError::Generation(KeyError::Generation));
    assert!(ring.signer(T0).is_none());
    ring.advance(T0, &Pool::new()).unwrap();
    let before = ring.jwks();
    assert!(ring.advance(T0 + 29 * DAY, &Failing).is_err());
    assert_eq!(ring.jwks(), before);
    assert_eq!(ring.records()[0].retires_at, T0 + 30 * DAY);
}

#[test]
fn attack_generator_returning_a_known_key_is_refused() {
    let mut ring = KeyRing::new(policy()).unwrap();
    ring.advance(T0, &Pool::new()).unwrap();
    let err = ring
        .advance(T0 + 29 * DAY, &Pool::starting_at(0))
        .unwrap_err();
    assert!(matches!(err, KeyRingError::DuplicateKid { .. }));
}

#[test]
fn clock_going_backwards_is_harmless() {
    let mut ring = KeyRing::new(policy()).unwrap();
    let pool = Pool::new();
    ring.advance(T0 + DAY, &pool).unwrap();
    assert!(ring.advance(T0, &pool).unwrap().is_empty());
    assert!(
        ring.signer(T0).is_none(),
        "no key signs before its activation"
    );
    assert!(ring.signer(T0 + DAY).is_some());
}

#[test]
fn private_key_never_appears_in_jwks_or_debug() {
    let mut ring = KeyRing::new(policy()).unwrap();
    let pool = Pool::new();
    ring.advance(T0, &pool).unwrap();
    ring.advance(T0 + 29 * DAY, &pool).unwrap();

    let jwks: serde_json::Value = serde_json::from_str(&ring.jwks()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    }

    let records = ring.records();
    let debug = format!("{ring:?} {records:?} {:?}", ring.signer(T0).unwrap());
    for record in &records {
        let der = record.pkcs8.secret_der();
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der);
        // The PKCS#8 prefix is the same for every RSA key; look at the private part.
        // Past the modulus and exponent: the private exponent and primes.
        for encoded in [&std_b64, &url_b64] {
            for window in encoded.as_bytes()[420..].chunks(16).take(20) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!debug.contains(window), "debug leaks {window}");
                assert!(!ring.jwks().contains(window), "jwks leaks {window}");
            }
        }
        let hex: String = der[320..352].iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&hex));
    }
    assert!(debug.contains("<redacted>"));
}
