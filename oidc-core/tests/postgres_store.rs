//! `PostgresStore` as replicas use it: two stores (two pools, as two processes would have)
//! on one schema racing on every compare-and-swap, migrations started together, a
//! database from a newer version, the server going away and coming back, and
//! configuration errors. Needs PostgreSQL at `OIDC_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); fails, never skips, without it.
#![cfg(feature = "postgres")]
// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::collections::BTreeSet;
use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use http::StatusCode;
use oidc_core::authn::{AuthenticatedUser, LoginMethod, TransactionId};
use oidc_core::client::ClientKind;
use oidc_core::keys::{KeyRing, RotationPolicy};
use oidc_core::pkce::CodeChallenge;
use oidc_core::provider::Provider;
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::store::{
    AuthorizationCodeRecord, GrantId, GrantRecord, NewRefreshToken, NewTokens,
    PendingAuthorization, PendingKey, PostgresOptions, PostgresStore, ProviderStore, RedeemOutcome,
    ReleasedClaims, RotateOutcome, StoreErrorKind,
};
use oidc_core::types::{ClientId, ResourceIndicator, Scope, Subject};
use provider_common::postgres::{TestSchema, admin_client, database_url};
use provider_common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Rounds of each race.
const ROUNDS: usize = 10;
/// Concurrent callers in each round, split over the two stores.
const CALLERS: usize = 20;

/// Two replicas: two stores with their own pools on one fresh schema.
async fn replicas() -> (TestSchema, [Arc<dyn ProviderStore>; 2]) {
    let schema = TestSchema::create().await;
    let a: Arc<dyn ProviderStore> = Arc::new(schema.store().await);
    let b: Arc<dyn ProviderStore> = Arc::new(schema.store().await);
    (schema, [a, b])
}

fn grant(id: &GrantId, refresh_expires_at: Option<u64>) -> GrantRecord {
    GrantRecord::new(
        id.clone(),
        ClientId::parse(PUBLIC).unwrap(),
        Subject::parse(SUBJECT).unwrap(),
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        T0,
        ReleasedClaims::default(),
        T0,
        refresh_expires_at,
    )
}

/// A fresh code, through pending authorization, login and consent.
async fn issue_code(store: &dyn ProviderStore, name: &str) -> SecretHash {
    let tx = TransactionId::generate(&SystemRandom::new()).unwrap();
    let key = PendingKey::for_transaction(&tx);
    let pending = PendingAuthorization::new(
        ClientId::parse(PUBLIC).unwrap(),
        "Public App".to_owned(),
        ClientKind::Static,
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        CodeChallenge::from_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        T0,
        T0 + 600,
    );
    store.insert_pending(key, pending).await.unwrap();
    let user = AuthenticatedUser::new(Subject::parse(SUBJECT).unwrap(), T0, LoginMethod::Password);
    store
        .complete_login(key, user, SecretHash::of("csrf"), T0)
        .await
        .unwrap()
        .unwrap();
    let code = SecretHash::of(name);
    let record = AuthorizationCodeRecord::new(
        ClientId::parse(PUBLIC).unwrap(),
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        None,
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        Subject::parse(SUBJECT).unwrap(),
        T0,
        T0,
        T0 + 60,
    );
    store
        .complete_consent(key, Some((code, record)), T0)
        .await
        .unwrap()
        .unwrap();
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_on_two_replicas_have_one_winner_and_the_replay_revokes_its_grant() {
    let (_schema, stores) = replicas().await;
    for round in 0..ROUNDS {
        let code = issue_code(&*stores[0], &format!("code-{round}")).await;
        let status = stores[1].allocate_status_index(1024, T0).await.unwrap();
        let mut tasks = JoinSet::new();
        for caller in 0..CALLERS {
            let store = Arc::clone(&stores[caller % 2]);
            tasks.spawn(async move {
                let id = GrantId::generate(&SystemRandom::new()).unwrap();
                let jti = format!("jti-{round}-{caller}");
                let outcome = store
                    .redeem_code(
                        code,
                        grant(&id, None).with_status(status),
                        NewTokens::new(jti.clone(), T0 + 3600, None),
                        T0 + 1,
                    )
                    .await
                    .unwrap();
                (id, jti, outcome)
            });
        }
        let outcomes = tasks.join_all().await;
        let winners: Vec<_> = outcomes
            .iter()
            .filter(|(_, _, outcome)| *outcome == RedeemOutcome::Redeemed)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let (winner, winner_jti, _) = winners[0];
        for (_, jti, outcome) in &outcomes {
            if jti != winner_jti {
                assert_eq!(
                    *outcome,
                    RedeemOutcome::AlreadyRedeemed {
                        grant_id: Some(winner.clone())
                    },
                    "round {round}"
                );
                assert!(stores[0].access_token(jti, T0).await.unwrap().is_none());
            }
        }
        let record = stores[1]
            .access_token(winner_jti, T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&record.grant.id, winner);
        assert!(record.grant.revoked, "the replays revoked the grant");
        let list = stores[0].status_list(status.list).await.unwrap().unwrap();
        assert!(
            list.revoked.contains(&status.index),
            "and set its status entry"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_on_two_replicas_have_one_winner_and_reuse_revokes_the_family() {
    let (_schema, stores) = replicas().await;
    for round in 0..ROUNDS {
        let code = issue_code(&*stores[0], &format!("code-{round}")).await;
        let id = GrantId::generate(&SystemRandom::new()).unwrap();
        let refresh = SecretHash::of(&format!("refresh-{round}"));
        let tokens = NewTokens::new(
            format!("jti-{round}"),
            T0 + 3600,
            Some(NewRefreshToken::new(
                refresh,
                Scope::parse("openid").unwrap(),
                T0 + 7200,
            )),
        );
        let outcome = stores[0]
            .redeem_code(code, grant(&id, Some(T0 + 90 * 86400)), tokens, T0)
            .await
            .unwrap();
        assert_eq!(outcome, RedeemOutcome::Redeemed);

        let mut tasks = JoinSet::new();
        for caller in 0..CALLERS {
            let store = Arc::clone(&stores[caller % 2]);
            tasks.spawn(async move {
                let successor = SecretHash::of(&format!("refresh-{round}-{caller}"));
                let tokens = NewTokens::new(
                    format!("jti-{round}-{caller}"),
                    T0 + 3700,
                    Some(NewRefreshToken::new(
                        successor,
                        Scope::parse("openid").unwrap(),
                        T0 + 7300,
                    )),
                );
                let outcome = store
                    .rotate_refresh_token(refresh, tokens, T0 + 100)
                    .await
                    .unwrap();
                (successor, outcome)
            });
        }
        let outcomes = tasks.join_all().await;
        let rotated: Vec<_> = outcomes
            .iter()
            .filter(|(_, outcome)| *outcome == RotateOutcome::Rotated)
            .collect();
        assert_eq!(rotated.len(), 1, "round {round}: {outcomes:?}");
        for (_, outcome) in &outcomes {
            assert!(
                *outcome == RotateOutcome::Rotated
                    || *outcome
                        == RotateOutcome::Reused {
                            grant_id: id.clone()
                        },
                "round {round}: {outcome:?}"
            );
        }
        // As on one node: the reuse revoked the family, the winner's successor included.
        let successor = stores[1]
            .refresh_token(rotated[0].0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(successor.grant.id, id);
        assert!(successor.grant.revoked);
        assert!(!successor.is_active(T0 + 100));
        let original = stores[0].refresh_token(refresh).await.unwrap().unwrap();
        assert!(original.used_at.is_some() && original.grant.revoked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_on_two_replicas_get_the_value_once() {
    let (_schema, stores) = replicas().await;
    for round in 0..ROUNDS {
        let key = format!("state-{round}");
        stores[round % 2]
            .put(&key, format!("value-{round}").into_bytes(), T0 + 60)
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        for caller in 0..CALLERS {
            let store = Arc::clone(&stores[caller % 2]);
            let key = key.clone();
            tasks.spawn(async move { store.take(&key, T0).await.unwrap() });
        }
        let values: Vec<Vec<u8>> = tasks.join_all().await.into_iter().flatten().collect();
        assert_eq!(
            values,
            vec![format!("value-{round}").into_bytes()],
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_status_allocations_on_two_replicas_are_distinct_and_gapless() {
    let (_schema, stores) = replicas().await;
    // Small lists, so that replicas also race to create the next one.
    const LIST_SIZE: u64 = 16;
    let mut all = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut tasks = JoinSet::new();
        for caller in 0..CALLERS {
            let store = Arc::clone(&stores[caller % 2]);
            tasks.spawn(async move { store.allocate_status_index(LIST_SIZE, T0).await.unwrap() });
        }
        for index in tasks.join_all().await {
            assert!(
                all.insert((index.list, index.index)),
                "round {round}: {index:?} handed out twice"
            );
        }
    }
    let expected: BTreeSet<(u64, u64)> = (0..(ROUNDS * CALLERS) as u64)
        .map(|n| (n / LIST_SIZE + 1, n % LIST_SIZE))
        .collect();
    assert_eq!(all, expected, "allocated in sequence without gaps");
    let lists = stores[0].status_lists().await.unwrap();
    assert_eq!(
        lists,
        (1..=(ROUNDS * CALLERS) as u64 / LIST_SIZE + 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_saves_on_two_replicas_with_one_version_have_one_winner() {
    let (_schema, stores) = replicas().await;
    let mut ring = KeyRing::new(RotationPolicy::default()).unwrap();
    ring.advance(T0, &PooledKeys::new()).unwrap();
    for round in 0..ROUNDS {
        let version = stores[round % 2].load_keys().await.unwrap().version;
        assert_eq!(version, round as u64);
        let mut tasks = JoinSet::new();
        for caller in 0..CALLERS {
            let store = Arc::clone(&stores[caller % 2]);
            let records = ring.records();
            tasks.spawn(async move { store.save_keys(records, version).await.unwrap() });
        }
        let saved: Vec<u64> = tasks.join_all().await.into_iter().flatten().collect();
        assert_eq!(saved, vec![version + 1], "round {round}");
    }
    let loaded = stores[1].load_keys().await.unwrap();
    assert_eq!(loaded.version, ROUNDS as u64);
    let reloaded = KeyRing::from_records(RotationPolicy::default(), loaded.records).unwrap();
    assert_eq!(reloaded.jwks(), ring.jwks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_a_fresh_schema_migrate_once() {
    for _ in 0..5 {
        let schema = TestSchema::create().await;
        let url = database_url();
        let (a, b) = tokio::join!(
            PostgresStore::connect(&url, schema.options()),
            PostgresStore::connect(&url, schema.options()),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        a.health().await.unwrap();
        b.health().await.unwrap();
        let versions: Vec<i64> = admin_client()
            .await
            .query(
                &format!("SELECT version FROM {}.schema_migrations", schema.name()),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(versions, vec![1]);
        // Reconnecting finds the schema current.
        drop(
            PostgresStore::connect(&database_url(), schema.options())
                .await
                .unwrap(),
        );
    }
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let schema = TestSchema::create().await;
    drop(schema.store().await);
    admin_client()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.schema_migrations (version) VALUES (99)",
                schema.name()
            ),
            &[],
        )
        .await
        .unwrap();
    let error = PostgresStore::connect(&database_url(), schema.options())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::UnsupportedSchema);
}

#[tokio::test]
async fn values_are_stored_with_postgres_types_and_bearer_values_only_as_hashes() {
    let schema = TestSchema::create().await;
    let store = schema.store().await;
    let code = issue_code(&store, "the-code-value").await;
    let id = GrantId::generate(&SystemRandom::new()).unwrap();
    store
        .redeem_code(
            code,
            grant(&id, None),
            NewTokens::new("jti-1".into(), T0 + 3600, None),
            T0,
        )
        .await
        .unwrap();
    let admin = admin_client().await;
    let types: Vec<(String, String)> = admin
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = 'authorization_codes' ORDER BY column_name",
            &[&schema.name()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        types,
        [
            ("data", "jsonb"),
            ("expires_at", "bigint"),
            ("grant_id", "text"),
            ("hash", "bytea"),
            ("redeemed_at", "bigint"),
        ]
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
    );
    let row = admin
        .query_one(
            &format!(
                "SELECT hash, data->>'subject' FROM {}.authorization_codes",
                schema.name()
            ),
            &[],
        )
        .await
        .unwrap();
    let hash: Vec<u8> = row.get(0);
    assert_eq!(hash, SecretHash::of("the-code-value").as_bytes().to_vec());
    assert_eq!(
        row.get::<_, String>(1),
        SUBJECT,
        "JSON columns are queryable"
    );
}

/// A TCP proxy in front of PostgreSQL that can be cut (closing every connection and
/// refusing new ones) and restored on the same port: the server going away and back.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    connections: tokio::sync::Mutex<JoinSet<()>>,
    listener: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    async fn start() -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Arc::new(Proxy {
            port: listener.local_addr().unwrap().port(),
            up: Arc::new(AtomicBool::new(true)),
            connections: tokio::sync::Mutex::new(JoinSet::new()),
            listener: tokio::sync::Mutex::new(None),
        });
        proxy.serve(listener).await;
        proxy
    }

    async fn serve(self: &Arc<Self>, listener: TcpListener) {
        let proxy = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else {
                    continue;
                };
                proxy.connections.lock().await.spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        *self.listener.lock().await = Some(task);
        self.up.store(true, Ordering::SeqCst);
    }

    /// Closes every connection and the listening socket.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(listener) = self.listener.lock().await.take() {
            listener.abort();
            let _ = listener.await;
        }
        self.connections.lock().await.shutdown().await;
    }

    async fn restore(self: &Arc<Self>) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener).await;
    }

    fn url(&self) -> String {
        let url = url::Url::parse(&database_url()).unwrap();
        let mut proxied = url.clone();
        proxied.set_host(Some("127.0.0.1")).unwrap();
        proxied.set_port(Some(self.port)).unwrap();
        proxied.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_is_unavailable_and_the_store_recovers_when_it_is_back() {
    let schema = TestSchema::create().await;
    let proxy = Proxy::start().await;
    let options = schema
        .options()
        .with_max_connections(2)
        .with_connect_timeout(Duration::from_secs(1))
        .with_acquire_timeout(Duration::from_secs(1));
    let store = Arc::new(PostgresStore::connect(&proxy.url(), options).await.unwrap());
    let clock = VirtualClock::at(T0);
    let mut config = base_config(ISSUER);
    config.maintenance.background = false;
    let login = TestLogin::new("test", "/login/test");
    let provider = Provider::builder(config, store.clone())
        .authenticator(login.clone())
        .clock(clock.manual())
        .build()
        .await
        .unwrap();
    let p = TestProvider {
        provider,
        clock,
        store: store.clone(),
        login,
        dir: Arc::new(tempfile::tempdir().unwrap()),
    };
    store.health().await.unwrap();
    assert_eq!(p.refresh("unknown", &[]).await.error(), "invalid_grant");

    proxy.cut().await;
    for _ in 0..3 {
        let error = store.health().await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
        let error = store.load_keys().await.unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
    }
    let response = p.refresh("unknown", &[]).await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text()
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(response.error(), "temporarily_unavailable");
    assert_eq!(
        p.get("/health").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    proxy.restore().await;
    store.health().await.unwrap();
    assert_eq!(store.load_keys().await.unwrap().version, 1);
    assert_eq!(p.refresh("unknown", &[]).await.error(), "invalid_grant");
    assert_eq!(p.get("/health").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_replaced() {
    let schema = TestSchema::create().await;
    let name = format!("{}_app", schema.name());
    let url = format!("{}&application_name={name}", database_url());
    let store = PostgresStore::connect(&url, schema.options().with_max_connections(4))
        .await
        .unwrap();
    // Open several pooled connections.
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move { store.health().await.unwrap() });
    }
    tasks.join_all().await;
    let terminated: i64 = admin_client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated >= 1);
    // A call may still meet a dying connection (then Unavailable, and that connection is
    // dropped); after at most one failure per pooled connection, calls succeed again.
    let mut failures = 0;
    for _ in 0..8 {
        match store.health().await {
            Ok(()) => {}
            Err(error) => {
                assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
                failures += 1;
            }
        }
    }
    assert!(failures <= 4, "{failures} failures");
    store.health().await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = PostgresStore::connect(
        &format!("postgres://postgres@127.0.0.1:{port}/test"),
        PostgresOptions::new().with_connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
}

#[tokio::test]
async fn configuration_errors_are_clear_and_never_show_the_password() {
    let cases = [
        ("mysql://u:hunter2@localhost/db", "postgres://"),
        ("postgres://u:hunter2@localhost:notaport/db", "malformed"),
        (
            "postgres://u:hunter2@localhost/db?sslmode=verify-full",
            "sslmode",
        ),
    ];
    for (url, expected) in cases {
        let error = PostgresStore::connect(url, PostgresOptions::new())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::InvalidConfig, "{url}");
        let message = format!("{error} / {:?}", error.source());
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let error = PostgresStore::connect(
        &database_url(),
        PostgresOptions::new().with_schema("Robert'); DROP TABLE students;--"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::InvalidConfig);
    let error = PostgresStore::connect(
        &database_url(),
        PostgresOptions::new().with_root_certificates("/nonexistent/ca.pem"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::InvalidConfig);
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let schema = TestSchema::create().await;
    // Trust authentication ignores the password; it must not show anyway.
    let mut url = url::Url::parse(&database_url()).unwrap();
    url.set_password(Some("hunter2")).unwrap();
    let store = PostgresStore::connect(url.as_str(), schema.options())
        .await
        .unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("127.0.0.1") || debug.contains("localhost"),
        "{debug}"
    );
}

#[tokio::test]
async fn tls_verifies_the_server_certificate() {
    let admin = admin_client().await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let schema = TestSchema::create().await;
    let mut url = url::Url::parse(&database_url()).unwrap();
    url.set_host(Some("localhost")).unwrap();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "sslmode")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(query)
        .append_pair("sslmode", "require");
    // Not signed by a webpki root (or no TLS at all): refused.
    let error = PostgresStore::connect(url.as_str(), schema.options())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error:?}");
    if ssl != "on" {
        return;
    }
    // Trusting the server's own certificate (a self-signed one for `localhost`, as
    // Debian's snakeoil): accepted, and the session is encrypted.
    let certificate: String = admin
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let name = format!("{}_tls", schema.name());
    url.query_pairs_mut().append_pair("application_name", &name);
    let store = PostgresStore::connect(
        url.as_str(),
        schema.options().with_root_certificates(&certificate),
    )
    .await
    .unwrap_or_else(|error| panic!("TLS with {certificate} as root: {error:?}"));
    store.health().await.unwrap();
    let encrypted: bool = admin
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);
}
