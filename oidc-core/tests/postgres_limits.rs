//! Lockout counters and rate limits shared by replicas through `PostgresLimitStore`, on a
//! real PostgreSQL server (see `pg_common`: `OIDC_TEST_DATABASE_URL`, a fresh schema per
//! test). Each replica is its own store on its own pool; the login state (CSRF tokens) is
//! shared, as the provider store would share it.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod pg_common;
mod provider_common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params};
use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::authn::{
    Authenticator, BoxFuture, LoginOutcome, LoginRequest, LoginStateStore, StateStoreError,
    TransactionId,
};
use oidc_core::login::{ClientIp, LocalUser, LockoutStore, PasswordHashString, Passwords};
use oidc_core::provider::{
    LimitedEndpoint, MemoryRateLimitStore, Provider, RateDecision, RateLimit, RateLimitStore,
};
use oidc_core::store::{PostgresLimitStore, SqliteStore};
use oidc_core::types::Issuer;
use url::form_urlencoded;

use pg_common::TestSchema;
use provider_common::{ISSUER, TestLogin, TestProvider, VirtualClock, base_config, from_ip};

const NOW: u64 = 1_700_000_000;
const PASSWORD: &str = "correct horse battery staple";
const ATTACKER: &str = "203.0.113.66";

// ---------------------------------------------------------------------------------------
// Password login replicas

fn cheap_hash(password: &str) -> PasswordHashString {
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let argon = Argon2::new(
        Algorithm::Argon2id,
        argon2::Version::V0x13,
        Params::new(256, 1, 1, None).unwrap(),
    );
    let phc = argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string();
    PasswordHashString::parse(&phc).unwrap()
}

/// `n` replicas of the password login, each with its own store and pool on `schema`,
/// sharing the login state store.
async fn password_replicas(schema: &TestSchema, n: usize) -> Vec<Arc<Passwords>> {
    let state = state_store();
    let issuer = Issuer::parse("https://op.example").unwrap();
    let mut replicas = Vec::new();
    for _ in 0..n {
        let users = vec![LocalUser::new("alice", cheap_hash(PASSWORD))];
        let lockouts: Arc<dyn LockoutStore> = Arc::new(schema.replica().await);
        let passwords = Passwords::new(users, &issuer, state.clone())
            .unwrap()
            .with_lockout_store(lockouts);
        replicas.push(Arc::new(passwords));
    }
    replicas
}

/// The login state (CSRF tokens) every replica shares, as the provider store would.
fn state_store() -> Arc<SharedState> {
    Arc::new(SharedState::default())
}

#[derive(Default)]
struct SharedState(Mutex<HashMap<String, Vec<u8>>>);

impl LoginStateStore for SharedState {
    fn put(&self, key: &str, value: Vec<u8>, _: u64) -> BoxFuture<'_, Result<(), StateStoreError>> {
        self.0.lock().unwrap().insert(key.to_owned(), value);
        Box::pin(async { Ok(()) })
    }

    fn take(&self, key: &str, _: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> {
        let value = self.0.lock().unwrap().remove(key);
        Box::pin(async move { Ok(value) })
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// One attempt with a fresh form (rendered by `form_from`, posted to `passwords`).
async fn attempt(
    form_from: &Passwords,
    passwords: &Passwords,
    username: &str,
    password: &str,
    ip: &str,
    now: u64,
) -> StatusCode {
    let request = LoginRequest::new(TransactionId::generate(&SystemRandom::new()).unwrap(), "c");
    let page = form_from.start(request, now).await;
    let page = String::from_utf8(page.body().to_vec()).unwrap();
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("transaction", hidden(&page, "transaction").as_str()),
            ("csrf", hidden(&page, "csrf").as_str()),
            ("username", username),
            ("password", password),
        ])
        .finish();
    let mut post = Request::post("/login/password")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(encoded))
        .unwrap();
    post.extensions_mut()
        .insert(ClientIp(ip.parse::<IpAddr>().unwrap()));
    match passwords.handle(post, now).await {
        LoginOutcome::Respond(response) => response.status(),
        LoginOutcome::Authenticated { .. } => StatusCode::OK,
    }
}

/// An attempt rendered and posted on the same replica.
async fn attempt_on(
    passwords: &Passwords,
    username: &str,
    password: &str,
    ip: &str,
    now: u64,
) -> StatusCode {
    attempt(passwords, passwords, username, password, ip, now).await
}

fn verifications(replicas: &[Arc<Passwords>]) -> u64 {
    replicas.iter().map(|p| p.stats().verifications).sum()
}

async fn stored_failures(schema: &TestSchema, kind: i16, key: &str) -> i64 {
    schema
        .client()
        .await
        .query_one(
            "SELECT failures FROM oidc_login_failures WHERE kind = $1 AND key = $2",
            &[&kind, &key],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn failures_spread_over_two_replicas_lock_the_pair_on_both() {
    let schema = TestSchema::create().await;
    let replicas = password_replicas(&schema, 2).await;
    let ip = "192.0.2.44";
    for i in 0..5 {
        let replica = &replicas[i % 2];
        assert_eq!(
            attempt_on(replica, "alice", "guess", ip, NOW + 1).await,
            StatusCode::BAD_REQUEST
        );
    }
    for replica in &replicas {
        assert_eq!(
            attempt_on(replica, "alice", PASSWORD, ip, NOW + 2).await,
            StatusCode::TOO_MANY_REQUESTS,
            "locked on every replica, even with the right password"
        );
    }
    // The lock is on the pair: the user elsewhere signs in on either replica.
    for replica in &replicas {
        assert_eq!(
            attempt_on(replica, "alice", PASSWORD, "198.51.100.1", NOW + 2).await,
            StatusCode::OK
        );
    }
    // After the first delay (1 min) the right password works on either.
    assert_eq!(
        attempt_on(&replicas[1], "alice", PASSWORD, ip, NOW + 62).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_failures_racing_across_two_replicas_count_exactly_twenty() {
    let schema = TestSchema::create().await;
    let replicas = password_replicas(&schema, 2).await;
    let ip = "203.0.113.9";
    let mut tasks = Vec::new();
    for i in 0..20 {
        let replica = Arc::clone(&replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            attempt_on(&replica, &format!("user{i}"), "x", ip, NOW).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(stored_failures(&schema, 2, &format!("ip:{ip}")).await, 20);
    // Twenty failures from one address lock it (the spray limit), on both replicas.
    for replica in &replicas {
        assert_eq!(
            attempt_on(replica, "alice", PASSWORD, ip, NOW).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    // One username from twenty addresses, concurrently: its counter holds twenty too.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let replica = Arc::clone(&replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            let ip = format!("198.51.100.{}", i + 1);
            attempt_on(&replica, "mallory", "x", &ip, NOW).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(stored_failures(&schema, 3, "user:mallory").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_attempts_at_the_last_allowed_slot_let_exactly_one_through() {
    let schema = TestSchema::create().await;
    let replicas = password_replicas(&schema, 2).await;
    for i in 0..4 {
        assert_eq!(
            attempt_on(&replicas[i % 2], "alice", "guess", ATTACKER, NOW).await,
            StatusCode::BAD_REQUEST
        );
    }
    let before = verifications(&replicas);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let replica = Arc::clone(&replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            attempt_on(&replica, "alice", "guess", ATTACKER, NOW).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (1, 11), "{statuses:?}");
    assert_eq!(verifications(&replicas) - before, 1, "one password check");
    assert_eq!(
        stored_failures(&schema, 1, &format!("user:alice|ip:{ATTACKER}")).await,
        5
    );
}

#[tokio::test]
async fn attack_password_guessing_spread_across_replicas_is_locked() {
    let schema = TestSchema::create().await;
    let replicas = password_replicas(&schema, 3).await;
    // The guesser sends each attempt to the next replica (round robin), for an hour, as
    // fast as it can. With counters per replica it would get 5 guesses on each, and keep
    // doubling only its per-replica waits.
    let mut now = NOW;
    let mut guesses = 0u64;
    let end = NOW + 3600;
    let mut i = 0;
    while now < end {
        let status = attempt_on(&replicas[i % 3], "alice", "guess", ATTACKER, now).await;
        if status == StatusCode::BAD_REQUEST {
            guesses += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
        i += 1;
        now += 5;
    }
    // 5 guesses before the first lock, then one per lock period (1, 2, 4, 8, 15, 15, …
    // minutes) whichever replica it asks: as one replica would allow.
    let expected = 5 + 6;
    assert_eq!(
        guesses, expected,
        "guesses over an hour, all replicas together"
    );
    assert_eq!(verifications(&replicas), expected);
    // Locked at its address on every replica, even for the right password…
    for replica in &replicas {
        assert_eq!(
            attempt_on(replica, "alice", PASSWORD, ATTACKER, now).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // …while the user, elsewhere, signs in on any replica.
    for replica in &replicas {
        assert_eq!(
            attempt_on(replica, "alice", PASSWORD, "192.0.2.10", now).await,
            StatusCode::OK
        );
    }
    // A form rendered on one replica and posted to another is counted all the same.
    assert_eq!(
        attempt(&replicas[0], &replicas[1], "alice", PASSWORD, ATTACKER, now).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn memory_and_postgres_lockouts_decide_alike_on_a_random_sequence() {
    let schema = TestSchema::create().await;
    let shared = &password_replicas(&schema, 2).await;
    let memory = {
        let users = vec![LocalUser::new("alice", cheap_hash(PASSWORD))];
        let issuer = Issuer::parse("https://op.example").unwrap();
        Passwords::new(users, &issuer, state_store()).unwrap()
    };
    let mut rng = Lcg(7);
    let mut now = NOW;
    for step in 0..300 {
        let user = ["alice", "alice", "bob"][rng.below(3)];
        let ip = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"][rng.below(4)];
        let password = if rng.below(5) == 0 { PASSWORD } else { "guess" };
        now += [0, 0, 1, 30, 61, 400, 1000][rng.below(7)];
        let expected = attempt_on(&memory, user, password, ip, now).await;
        let replica = &shared[rng.below(2)];
        let got = attempt_on(replica, user, password, ip, now).await;
        assert_eq!(got, expected, "step {step}: {user} at {ip} at {now}");
    }
}

#[tokio::test]
async fn forgotten_counters_are_purged() {
    let schema = TestSchema::create().await;
    let store = schema.replica().await;
    let replicas = password_replicas(&schema, 1).await;
    attempt_on(&replicas[0], "alice", "guess", ATTACKER, NOW).await;
    let count = || async {
        let row = schema
            .client()
            .await
            .query_one("SELECT count(*) FROM oidc_login_failures", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    assert_eq!(count().await, 3, "pair, address and username");
    assert_eq!(LockoutStore::purge(&store, NOW - 1).await.unwrap(), 0);
    assert_eq!(LockoutStore::purge(&store, NOW).await.unwrap(), 3);
    assert_eq!(count().await, 0);
}

#[tokio::test]
async fn an_unreachable_database_refuses_password_logins() {
    let store = Arc::new(PostgresLimitStore::with_existing_tables(unreachable_pool()));
    let users = vec![LocalUser::new("alice", cheap_hash(PASSWORD))];
    let issuer = Issuer::parse("https://op.example").unwrap();
    let passwords = Passwords::new(users, &issuer, state_store())
        .unwrap()
        .with_lockout_store(store);
    assert_eq!(
        attempt_on(&passwords, "alice", PASSWORD, "192.0.2.1", NOW).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "fail closed: no password is checked without counting"
    );
    assert_eq!(passwords.stats().verifications, 0);
}

/// A pool to a port where nothing listens.
fn unreachable_pool() -> Pool {
    let config: tokio_postgres::Config = "postgres://postgres@127.0.0.1:1/test".parse().unwrap();
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager).max_size(1).build().unwrap()
}

// ---------------------------------------------------------------------------------------
// Rate limits

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_split_across_two_replicas_allows_exactly_the_burst_then_refills() {
    let schema = TestSchema::create().await;
    let replicas = [
        Arc::new(schema.replica().await),
        Arc::new(schema.replica().await),
    ];
    let limit = RateLimit::new(10, 60);
    let client: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
    let race = |n: usize, now: u64| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let replica = Arc::clone(&replicas[i % 2]);
                tokio::spawn(async move {
                    replica
                        .take(LimitedEndpoint::Token, client, limit, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        async move {
            let mut decisions = Vec::new();
            for task in tasks {
                decisions.push(task.await.unwrap());
            }
            decisions
        }
    };
    let allowed = |decisions: &[RateDecision]| {
        decisions
            .iter()
            .filter(|d| **d == RateDecision::Allowed)
            .count()
    };
    let decisions = race(30, NOW).await;
    assert_eq!(
        allowed(&decisions),
        10,
        "exactly the burst, across replicas"
    );
    assert!(decisions.iter().all(|d| matches!(
        d,
        RateDecision::Allowed | RateDecision::Limited { retry_after: 1 }
    )));
    for replica in &replicas {
        assert_eq!(
            replica
                .take(LimitedEndpoint::Token, client, limit, NOW)
                .await
                .unwrap(),
            RateDecision::Limited { retry_after: 1 }
        );
    }
    // Another endpoint and another client have buckets of their own.
    assert_eq!(
        replicas[0]
            .take(LimitedEndpoint::Login, client, limit, NOW)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        replicas[1]
            .take(LimitedEndpoint::Token, None, limit, NOW)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    // One request per second refills: one second later, one more, whichever replica.
    assert_eq!(allowed(&race(6, NOW + 1).await), 1);
    assert_eq!(allowed(&race(6, NOW + 4).await), 3);
    // A minute later the bucket is full again, not fuller.
    assert_eq!(allowed(&race(30, NOW + 100).await), 10);
}

#[tokio::test]
async fn memory_and_postgres_buckets_decide_alike_on_a_random_sequence() {
    let schema = TestSchema::create().await;
    let replicas = [schema.replica().await, schema.replica().await];
    let memory = MemoryRateLimitStore::new();
    // Each endpoint keeps one limit, as a configuration would.
    let endpoints = [
        (LimitedEndpoint::Token, RateLimit::new(3, 7)),
        (LimitedEndpoint::Login, RateLimit::new(1, 1)),
        (LimitedEndpoint::Register, RateLimit::new(50, 600)),
    ];
    let clients: [Option<IpAddr>; 3] = [
        Some("192.0.2.1".parse().unwrap()),
        Some("2001:db8:1:2::".parse().unwrap()),
        None,
    ];
    let mut rng = Lcg(11);
    let mut now = NOW;
    for step in 0..600 {
        let (endpoint, limit) = endpoints[rng.below(3)];
        let client = clients[rng.below(3)];
        match rng.below(10) {
            0 => now = now.saturating_sub(3), // a replica whose clock is a little behind
            1 => now += 90,
            2..=4 => now += 1,
            _ => {}
        }
        let expected = memory.take(endpoint, client, limit, now).await.unwrap();
        let got = replicas[rng.below(2)]
            .take(endpoint, client, limit, now)
            .await
            .unwrap();
        assert_eq!(got, expected, "step {step}");
    }
}

#[tokio::test]
async fn full_buckets_are_purged_and_purging_changes_no_decision() {
    let schema = TestSchema::create().await;
    let store = schema.replica().await;
    let limit = RateLimit::new(2, 60);
    let client = Some("192.0.2.1".parse().unwrap());
    assert_eq!(
        store
            .take(LimitedEndpoint::Token, client, limit, NOW)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        RateLimitStore::purge(&store, LimitedEndpoint::Token, limit, NOW)
            .await
            .unwrap(),
        0,
        "not full yet"
    );
    assert_eq!(
        RateLimitStore::purge(&store, LimitedEndpoint::Login, limit, NOW + 5)
            .await
            .unwrap(),
        0,
        "another endpoint's"
    );
    assert_eq!(
        RateLimitStore::purge(&store, LimitedEndpoint::Token, limit, NOW + 1)
            .await
            .unwrap(),
        1
    );
    for _ in 0..2 {
        assert_eq!(
            store
                .take(LimitedEndpoint::Token, client, limit, NOW + 1)
                .await
                .unwrap(),
            RateDecision::Allowed
        );
    }
}

/// A provider replica: its own SQLite connection to the shared file in `dir`, the given
/// rate limit store, `/token` limited to 5 at once and 1 a minute.
async fn provider_replica(
    dir: &Arc<tempfile::TempDir>,
    clock: &VirtualClock,
    limits: Arc<dyn RateLimitStore>,
) -> TestProvider {
    let store = Arc::new(SqliteStore::open(dir.path().join("provider.db")).unwrap());
    let mut config = base_config(ISSUER);
    config.rate_limits.token = Some(RateLimit::new(5, 1));
    let login = TestLogin::new("test", "/login/test");
    let provider = Provider::builder(config, store.clone())
        .authenticator(login.clone())
        .clock(clock.manual())
        .rate_limit_store(limits)
        .build()
        .await
        .unwrap();
    TestProvider {
        provider,
        clock: clock.clone(),
        store,
        login,
        dir: Arc::clone(dir),
    }
}

fn token_request(ip: &str) -> Request<Full<Bytes>> {
    from_ip(
        Request::builder()
            .method(Method::POST)
            .uri("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from_static(
                b"grant_type=authorization_code&code=guess",
            )))
            .unwrap(),
        ip,
    )
}

/// How many of `n` token requests alternating between `replicas` were not rate limited.
async fn not_limited(replicas: &[TestProvider], n: usize) -> usize {
    let mut passed = 0;
    for i in 0..n {
        let response = replicas[i % replicas.len()]
            .send(token_request(ATTACKER))
            .await;
        if response.status != StatusCode::TOO_MANY_REQUESTS {
            passed += 1;
        }
    }
    passed
}

#[tokio::test]
async fn attack_rate_limit_bypass_by_alternating_replicas_is_refused() {
    let schema = TestSchema::create().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = VirtualClock::at(NOW);
    let shared = [
        provider_replica(&dir, &clock, Arc::new(schema.replica().await)).await,
        provider_replica(&dir, &clock, Arc::new(schema.replica().await)).await,
    ];
    assert_eq!(
        not_limited(&shared, 20).await,
        5,
        "one burst for the client, whichever replica it reaches"
    );
    for replica in &shared {
        let response = replica.send(token_request(ATTACKER)).await;
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.header("retry-after"), Some("60"));
    }
    clock.advance(60);
    assert_eq!(
        not_limited(&shared, 4).await,
        1,
        "refilled on the virtual clock"
    );

    // With the per-replica default, the same client gets a burst per replica.
    let apart = [
        provider_replica(&dir, &clock, Arc::new(MemoryRateLimitStore::new())).await,
        provider_replica(&dir, &clock, Arc::new(MemoryRateLimitStore::new())).await,
    ];
    assert_eq!(not_limited(&apart, 20).await, 10);
}

#[tokio::test]
async fn an_unreachable_database_lets_requests_through_the_rate_limit() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = VirtualClock::at(NOW);
    let limits = Arc::new(PostgresLimitStore::with_existing_tables(unreachable_pool()));
    let replica = [provider_replica(&dir, &clock, limits).await];
    assert_eq!(
        not_limited(&replica, 8).await,
        8,
        "fail open: the limit protects capacity, not accounts"
    );
}

#[tokio::test]
async fn maintenance_purges_full_buckets() {
    let schema = TestSchema::create().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = VirtualClock::at(NOW);
    let replica = provider_replica(&dir, &clock, Arc::new(schema.replica().await)).await;
    replica.send(token_request(ATTACKER)).await;
    let count = || async {
        let row = schema
            .client()
            .await
            .query_one("SELECT count(*) FROM oidc_rate_buckets", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    assert_eq!(count().await, 1);
    replica.provider.run_maintenance().await.unwrap();
    assert_eq!(count().await, 1, "not full yet");
    clock.advance(60);
    replica.provider.run_maintenance().await.unwrap();
    assert_eq!(count().await, 0);
}

/// A small deterministic generator for the random sequences.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap() % n
    }
}
