//! Tests of the status list driver (`driver.rs`), on a virtual clock with a fake list server.

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::jwks::BoxFuture;
use crate::status_list::StatusListConfig;
use crate::status_list::list::lst_of;
use crate::{ErrorKind, Policy, Verifier, test_keys};

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";
const LIST: &str = "https://issuer.example/statuslists/1";

/// Serves a signed status list for any URI; counts calls; can be told to fail.
#[derive(Clone)]
struct FakeLists {
    clock: ManualClock,
    statuses: Arc<Mutex<Vec<u8>>>,
    failing: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    /// Released to let a fetch answer; `None` answers at once.
    gate: Option<Arc<Notify>>,
}

impl FakeLists {
    fn new(clock: &ManualClock) -> Self {
        FakeLists {
            clock: clock.clone(),
            statuses: Arc::new(Mutex::new(vec![0; 4])),
            failing: Arc::new(AtomicBool::new(false)),
            calls: Arc::new(AtomicUsize::new(0)),
            gate: None,
        }
    }

    fn revoke(&self, index: usize) {
        self.statuses.lock().unwrap()[index / 8] |= 1 << (index % 8);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HttpFetcher for FakeLists {
    fn get(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert_eq!(request.accept, "application/statuslist+jwt");
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(FetchError::Status(503));
            }
            let bytes = self.statuses.lock().unwrap().clone();
            let token = test_keys::sign(
                &serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"}),
                &serde_json::json!({
                    "iss": ISSUER, "sub": request.uri.to_string(),
                    "iat": self.clock.unix_time(), "ttl": 10,
                    "status_list": {"bits": 1, "lst": lst_of(&bytes)},
                }),
            );
            Ok(http::Response::builder()
                .header("content-type", "application/statuslist+jwt")
                .body(token.into_bytes())
                .unwrap())
        })
    }
}

fn verifier(fake: &FakeLists, config: StatusListConfig, cache_entries: usize) -> Verifier {
    Verifier::builder(Policy::new(ISSUER, "api"))
        .static_jwks(test_keys::jwks(&[test_keys::rsa_jwk("k1")]))
        .token_cache_entries(cache_entries)
        .clock(fake.clock.clone())
        .http_fetcher(fake.clone())
        .status_lists(config)
        .build()
        .unwrap()
}

fn token_with(status: Option<serde_json::Value>) -> String {
    let mut claims =
        serde_json::json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": NOW + 3600});
    if let Some(status) = status {
        claims["status"] = status;
    }
    test_keys::sign(&serde_json::json!({"alg": "RS256", "kid": "k1"}), &claims)
}

fn token(idx: u64, uri: &str) -> String {
    token_with(Some(
        serde_json::json!({"status_list": {"idx": idx, "uri": uri}}),
    ))
}

async fn kind(v: &Verifier, token: &str) -> Option<ErrorKind> {
    v.verify::<serde_json::Value>(token)
        .await
        .err()
        .map(|e| e.kind())
}

/// Lets background tasks run until `done` holds (bounded, so a bug fails instead of hanging).
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn revoked_token_is_refused_and_others_pass() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    fake.revoke(5);
    let v = verifier(&fake, StatusListConfig::new(), 0);
    assert_eq!(kind(&v, &token(4, LIST)).await, None);
    assert_eq!(kind(&v, &token(5, LIST)).await, Some(ErrorKind::Revoked));
    assert_eq!(kind(&v, &token(31, LIST)).await, None);
    assert_eq!(
        kind(&v, &token(32, LIST)).await,
        Some(ErrorKind::InvalidClaim),
        "out of range"
    );
    assert_eq!(
        kind(&v, &token_with(None)).await,
        None,
        "status optional by default"
    );
    assert_eq!(fake.calls(), 1);
    let m = v.metrics();
    assert_eq!(m.status_lookups, 4);
    assert_eq!(m.status_revoked, 1);
    assert_eq!(m.rejected(ErrorKind::Revoked), 1);
    assert_eq!(m.status_list_fetches, 1);
    assert_eq!(m.status_lists, 1);
}

#[tokio::test]
async fn token_cache_hit_still_sees_a_later_revocation() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 64);
    let t = token(2, LIST);
    assert_eq!(kind(&v, &t).await, None);
    assert_eq!(kind(&v, &t).await, None);
    // The first verification waited for the list, then answered from the cache.
    assert_eq!(v.metrics().token_cache_hits, 2);
    fake.revoke(2);
    // The list's ttl (10 s) passes: the next verification nudges a refresh.
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        kind(&v, &t).await,
        None,
        "the old list still holds until replaced"
    );
    until(|| v.metrics().status_list_fetches == 2 && fake.calls() == 2).await;
    until(|| v.try_verify::<serde_json::Value>(&t).is_err()).await;
    assert_eq!(kind(&v, &t).await, Some(ErrorKind::Revoked));
    assert!(
        v.metrics().token_cache_hits >= 3,
        "refused from the cache, not re-verified"
    );
}

#[tokio::test]
async fn attack_ssrf_status_uri_outside_allowed_origin_is_refused_without_fetch() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 64);
    for uri in [
        "https://evil.example/statuslists/1",
        "http://169.254.169.254/latest/meta-data/iam",
        "http://issuer.example/statuslists/1",
        "https://issuer.example:8443/statuslists/1",
        "https://issuer.example/statuslists/../admin",
    ] {
        assert_eq!(
            kind(&v, &token(0, uri)).await,
            Some(ErrorKind::InvalidClaim),
            "{uri}"
        );
        assert_eq!(
            v.try_verify::<serde_json::Value>(&token(0, uri))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidClaim
        );
    }
    tokio::task::yield_now().await;
    assert_eq!(fake.calls(), 0, "the fetcher was never called");
    // An explicitly allowed prefix is fetched.
    let allowed = verifier(
        &fake,
        StatusListConfig::new().allow_uri_prefix("https://status.example/lists/"),
        0,
    );
    assert_eq!(
        kind(&allowed, &token(0, "https://status.example/lists/9")).await,
        None
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn concurrent_first_uses_wait_for_one_fetch() {
    let clock = ManualClock::at_unix(NOW);
    let mut fake = FakeLists::new(&clock);
    let gate = Arc::new(Notify::new());
    fake.gate = Some(Arc::clone(&gate));
    let v = verifier(&fake, StatusListConfig::new(), 0);
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let v = v.clone();
            tokio::spawn(async move { kind(&v, &token(i, LIST)).await })
        })
        .collect();
    until(|| fake.calls() == 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.notify_one();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), None);
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn try_verify_never_waits_for_a_first_list() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 0);
    let t = token(0, LIST);
    assert_eq!(
        v.try_verify::<serde_json::Value>(&t).unwrap_err().kind(),
        ErrorKind::StatusUnavailable
    );
    until(|| v.metrics().status_lists == 1).await;
    assert!(v.try_verify::<serde_json::Value>(&t).is_ok());
}

#[tokio::test]
async fn stale_if_error_then_fail_closed() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 64);
    let t = token(0, LIST);
    assert_eq!(kind(&v, &t).await, None);
    fake.failing.store(true, Ordering::SeqCst);
    // Refreshes fail; within ttl (10 s) + 5 min the old list is used.
    clock.advance(Duration::from_secs(300));
    assert_eq!(kind(&v, &t).await, None);
    until(|| v.metrics().status_list_fetch_failures >= 1).await;
    clock.advance(Duration::from_secs(10));
    assert_eq!(kind(&v, &t).await, Some(ErrorKind::StatusUnavailable));
    assert!(!ErrorKind::StatusUnavailable.is_token_error());
    // The list server recovers: the driver's retry brings the list back.
    fake.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    let _ = v.try_verify::<serde_json::Value>(&t);
    until(|| v.try_verify::<serde_json::Value>(&t).is_ok()).await;
}

#[tokio::test]
async fn stale_if_error_then_fail_open_counts() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    fake.revoke(1);
    let config = StatusListConfig::new()
        .failure_mode(FailureMode::FailOpen)
        .stale_if_error(Duration::from_secs(20));
    let v = verifier(&fake, config, 0);
    assert_eq!(kind(&v, &token(1, LIST)).await, Some(ErrorKind::Revoked));
    fake.failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(31));
    assert_eq!(kind(&v, &token(0, LIST)).await, None);
    assert_eq!(kind(&v, &token(1, LIST)).await, None, "fail-open accepts");
    assert_eq!(v.metrics().status_fail_open, 2);
    // A list never fetched is accepted too, after one failed wait.
    assert_eq!(
        kind(&v, &token(0, "https://issuer.example/statuslists/2")).await,
        None
    );
    assert_eq!(v.metrics().status_fail_open, 3);
}

#[tokio::test]
async fn first_fetch_failure_under_fail_closed_is_unavailable() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    fake.failing.store(true, Ordering::SeqCst);
    let v = verifier(&fake, StatusListConfig::new(), 0);
    assert_eq!(
        kind(&v, &token(0, LIST)).await,
        Some(ErrorKind::StatusUnavailable)
    );
    assert_eq!(fake.calls(), 1);
    // Backing off: the next token is answered at once, without another fetch.
    assert_eq!(
        kind(&v, &token(0, LIST)).await,
        Some(ErrorKind::StatusUnavailable)
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn required_and_malformed_status_claims() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new().require_status(true), 64);
    let without = token_with(None);
    assert_eq!(kind(&v, &without).await, Some(ErrorKind::MissingClaim));
    assert_eq!(
        kind(&v, &without).await,
        Some(ErrorKind::MissingClaim),
        "cache hit too"
    );
    for status in [
        serde_json::json!("https://issuer.example/statuslists/1"),
        serde_json::json!({}),
        serde_json::json!({"status_list": {"idx": -1, "uri": LIST}}),
        serde_json::json!({"status_list": {"idx": 1.5, "uri": LIST}}),
        serde_json::json!({"status_list": {"idx": 1, "uri": 7}}),
        serde_json::json!({"status_list": [1, LIST]}),
    ] {
        assert_eq!(
            kind(&v, &token_with(Some(status.clone()))).await,
            Some(ErrorKind::InvalidClaim),
            "{status}"
        );
    }
    assert_eq!(fake.calls(), 0);
}

#[test]
fn slot_reads_what_the_list_reads_and_updates_in_place() {
    let bytes: Vec<u8> = (0u8..=40).map(|b| b.wrapping_mul(37)).collect();
    for bits in [1u8, 2, 4, 8] {
        let list = StatusList::from_bytes(bits, bytes.clone()).unwrap();
        let slot = ListSlot::new(LIST, &list, 1, 2);
        for index in 0..=list.len() + 70 {
            assert_eq!(
                slot.status(index),
                list.status(index),
                "bits {bits} index {index}"
            );
        }
        assert_eq!(slot.status(u64::MAX), None);
        // A shorter list fits in place; a longer one or other bits do not.
        let shorter = StatusList::from_bytes(bits, vec![0xFF; 3]).unwrap();
        assert!(slot.fits(&shorter));
        slot.store(&shorter, 3, 4);
        for index in 0..=list.len() {
            assert_eq!(slot.status(index), shorter.status(index));
        }
        assert_eq!(slot.usable_until.load(Ordering::Relaxed), 4);
        assert!(!slot.fits(&StatusList::from_bytes(bits, vec![0; 49]).unwrap()));
        let other = if bits == 1 { 2 } else { 1 };
        assert!(!slot.fits(&StatusList::from_bytes(other, vec![0; 1]).unwrap()));
    }
}

#[tokio::test]
async fn cached_token_follows_its_list_into_a_new_slot() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 64);
    let t = token(3, LIST);
    assert_eq!(kind(&v, &t).await, None);
    // The list grows past its slot (4 bytes to 64) and index 3 is revoked.
    *fake.statuses.lock().unwrap() = vec![0; 64];
    fake.revoke(3);
    clock.advance(Duration::from_secs(10));
    let _ = v.try_verify::<serde_json::Value>(&t);
    until(|| v.try_verify::<serde_json::Value>(&t).is_err()).await;
    assert_eq!(kind(&v, &t).await, Some(ErrorKind::Revoked));
    assert_eq!(
        kind(&v, &token(500, LIST)).await,
        None,
        "the longer list is in use"
    );
}

#[tokio::test]
async fn two_phase_attempt_is_pending_only_for_a_first_list() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 0);
    let t = token(0, LIST);
    let crate::Attempt::Pending(pending) = v.attempt::<serde_json::Value>(&t) else {
        panic!("a list never fetched is pending");
    };
    assert_eq!(pending.kind(), ErrorKind::StatusUnavailable);
    assert_eq!(fake.calls(), 0, "nothing scheduled before the second phase");
    assert_eq!(v.metrics().verified, 0, "counted when finished");
    let verified = pending.verify::<serde_json::Value>(&t).await.unwrap();
    assert_eq!(verified["sub"], "alice");
    assert_eq!(fake.calls(), 1);
    assert!(matches!(
        v.attempt::<serde_json::Value>(&token(1, LIST)),
        crate::Attempt::Verified(_)
    ));
    assert!(matches!(
        v.attempt::<serde_json::Value>(&token(0, "https://evil.example/statuslists/1")),
        crate::Attempt::Refused(error) if error.kind() == ErrorKind::InvalidClaim
    ));
    let m = v.metrics();
    assert_eq!(m.verified, 2);
    assert_eq!(m.rejected(ErrorKind::InvalidClaim), 1);
}

#[tokio::test]
async fn pending_verify_now_schedules_and_answers_with_the_failure_mode() {
    let clock = ManualClock::at_unix(NOW);
    let fake = FakeLists::new(&clock);
    let v = verifier(&fake, StatusListConfig::new(), 0);
    let t = token(0, LIST);
    let crate::Attempt::Pending(pending) = v.attempt::<serde_json::Value>(&t) else {
        panic!("a list never fetched is pending");
    };
    assert_eq!(
        pending
            .verify_now::<serde_json::Value>(&t)
            .unwrap_err()
            .kind(),
        ErrorKind::StatusUnavailable
    );
    assert_eq!(v.metrics().rejected(ErrorKind::StatusUnavailable), 1);
    until(|| v.metrics().status_lists == 1).await;
    assert!(matches!(
        v.attempt::<serde_json::Value>(&t),
        crate::Attempt::Verified(_)
    ));
}
