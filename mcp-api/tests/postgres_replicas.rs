//! Two `PostgresStore`s on one schema, as two replicas behind a load balancer:
//! each one's search follows the other's writes within a second, quotas hold
//! across both, the index follower survives its connection being killed and
//! catches up a transaction that commits late, and a store that loses
//! PostgreSQL answers `Unavailable` and recovers by itself.
//!
//! PostgreSQL is found at `MCP_TEST_DATABASE_URL` (see `common/backend.rs`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/backend.rs"]
mod backend;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jwks_verify::ManualClock;
use mcp_api::store::{
    ErrorKind, Limits, MemoryStore, NewMemory, Owner, PostgresOptions, PostgresStore, SearchQuery,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use self::backend::{Backend, Postgres, database_url};

const T0: u64 = 1_700_000_000_000;

/// How long another replica's write may take to show up in search.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1);

fn alice() -> Owner {
    Owner::new("auth0|alice").unwrap()
}

fn bob() -> Owner {
    Owner::new("auth0|bob").unwrap()
}

/// A replica on the schema; `interval` is its catch-up timer.
async fn replica(db: &Postgres, name: &str, interval: Duration, limits: Limits) -> PostgresStore {
    let options = db
        .options(limits, ManualClock::at_unix_ms(T0))
        .with_sync_interval(interval)
        .with_application_name(name);
    PostgresStore::connect(&database_url(), options)
        .await
        .unwrap()
}

/// A unique application name for this test's connections.
fn app_name(db: &Postgres, role: &str) -> String {
    format!("{}_{role}", db.schema)
}

async fn texts(store: &PostgresStore, query: &str) -> Vec<String> {
    texts_of(store, &alice(), query).await
}

async fn texts_of(store: &PostgresStore, owner: &Owner, query: &str) -> Vec<String> {
    store
        .search(owner, &SearchQuery::new(query).with_limit(50))
        .await
        .unwrap()
        .into_iter()
        .map(|hit| hit.memory.text)
        .collect()
}

/// Whether a hit's text contains `needle`. (Memories written in the same burst
/// are each other's context, so a search may return more than the one it is about.)
fn has(hits: &[String], needle: &str) -> bool {
    hits.iter().any(|text| text.contains(needle))
}

/// Polls `store`'s search every 20 ms until `done` holds for its results;
/// how long that took. Fails after ten seconds.
async fn wait_for(
    store: &PostgresStore,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    wait_for_owner(store, &alice(), query, done).await
}

async fn wait_for_owner(
    store: &PostgresStore,
    owner: &Owner,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if done(&texts_of(store, owner, query).await) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never caught up with {query:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_one_replica_are_searchable_on_the_other_within_a_second() {
    let db = Postgres::create().await;
    let interval = Duration::from_millis(250);
    let a = replica(&db, &app_name(&db, "a"), interval, Limits::default()).await;
    let b = replica(&db, &app_name(&db, "b"), interval, Limits::default()).await;

    // Added through A: found on B.
    let added = a
        .add(
            &alice(),
            vec![NewMemory::new(
                "The kayak is stored in the blue shed",
                "app",
            )],
        )
        .await
        .unwrap()
        .remove(0);
    let took = wait_for(&b, "kayak shed", |hits| has(hits, "kayak")).await;
    assert!(
        took < CATCH_UP_LIMIT,
        "add took {took:?} to reach the other replica"
    );

    // Updated through A: B ranks the new text, not the old one.
    a.add(
        &alice(),
        vec![NewMemory::new(
            "Paddles for the canoe hang in the garage",
            "app",
        )],
    )
    .await
    .unwrap();
    a.update_text(
        &alice(),
        added.id,
        "The canoe is stored in the garage".to_owned(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let took = wait_for(&b, "canoe garage", |hits| {
        hits.first().map(String::as_str) == Some("The canoe is stored in the garage")
    })
    .await;
    assert!(took < CATCH_UP_LIMIT, "update took {took:?}");
    assert!(texts(&b, "kayak").await.is_empty());

    // Deleted through A: gone from B's search.
    a.delete(&alice(), &[added.id]).await.unwrap();
    let took = wait_for(&b, "canoe stored", |hits| {
        !hits.iter().any(|text| text.contains("stored"))
    })
    .await;
    assert!(took < CATCH_UP_LIMIT, "delete took {took:?}");

    // A reads its own writes at once, without waiting for any timer.
    let own = a
        .add(
            &alice(),
            vec![NewMemory::new("Bought a tandem bicycle", "app")],
        )
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(texts(&a, "tandem").await[0], "Bought a tandem bicycle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_alone_bring_other_replicas_writes_within_a_second() {
    let db = Postgres::create().await;
    // A timer so slow it cannot be what catches B up.
    let slow = Duration::from_secs(3600);
    let a = replica(&db, &app_name(&db, "a"), slow, Limits::default()).await;
    let b = replica(&db, &app_name(&db, "b"), slow, Limits::default()).await;
    // Let B's listener connect.
    wait_for_listener(&db, &app_name(&db, "b"), None).await;
    a.add(
        &alice(),
        vec![NewMemory::new("Lighthouse tour on Saturday", "app")],
    )
    .await
    .unwrap();
    let took = wait_for(&b, "lighthouse", |hits| has(hits, "Lighthouse")).await;
    assert!(took < CATCH_UP_LIMIT, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_on_two_replicas_never_exceed_the_quota() {
    let db = Postgres::create().await;
    let mut limits = Limits::default();
    limits.max_memories_per_owner = 25;
    let interval = Duration::from_millis(250);
    let a = replica(&db, &app_name(&db, "a"), interval, limits.clone()).await;
    let b = replica(&db, &app_name(&db, "b"), interval, limits).await;
    let mut tasks = JoinSet::new();
    for n in 0..40 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            store
                .add(
                    &alice(),
                    vec![NewMemory::new(format!("note number {n}"), "app")],
                )
                .await
        });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => stored += 1,
            Err(error) => {
                assert!(
                    matches!(
                        error.kind(),
                        ErrorKind::QuotaExceeded {
                            quota: "memories",
                            ..
                        }
                    ),
                    "{error:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!((stored, refused), (25, 15));
    assert_eq!(b.stats(&alice()).await.unwrap().total_memories, 25);
    assert_eq!(db.usage(&alice()).await.0, 25);
    db.assert_consistent().await;
}

/// The pid of the listening connection of the replica named `name`, once
/// there is one other than `except`.
async fn wait_for_listener(db: &Postgres, name: &str, except: Option<i32>) -> i32 {
    let client = db.client().await;
    let start = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2",
                &[&format!("{name} listener"), &except.unwrap_or(0)],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no listener connection named {name}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_still_catches_up() {
    let db = Postgres::create().await;
    let slow = Duration::from_secs(3600);
    let a = replica(&db, &app_name(&db, "a"), slow, Limits::default()).await;
    let b = replica(&db, &app_name(&db, "b"), slow, Limits::default()).await;
    let listener = wait_for_listener(&db, &app_name(&db, "b"), None).await;
    let killed: bool = db
        .client()
        .await
        .query_one("SELECT pg_terminate_backend($1)", &[&listener])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    // B listens again on a new connection, and catches up with what happened meanwhile.
    a.add(
        &alice(),
        vec![NewMemory::new("Written while B was deaf", "app")],
    )
    .await
    .unwrap();
    let again = wait_for_listener(&db, &app_name(&db, "b"), Some(listener)).await;
    assert_ne!(again, listener);
    wait_for(&b, "deaf", |hits| has(hits, "deaf")).await;
    // And notifications reach it again (its timer is an hour).
    a.add(
        &alice(),
        vec![NewMemory::new("Written after B reconnected", "app")],
    )
    .await
    .unwrap();
    let took = wait_for(&b, "reconnected", |hits| has(hits, "reconnected")).await;
    assert!(took < CATCH_UP_LIMIT, "took {took:?}");
}

/// A transaction that inserted a row before a later write, but commits only
/// after that write was caught up, is still caught up: the follower reads by
/// transaction (`changed_xid >= xmin`), not by row id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_committing_late_is_still_caught_up() {
    let db = Postgres::create().await;
    let interval = Duration::from_millis(50);
    let a = replica(&db, &app_name(&db, "a"), interval, Limits::default()).await;
    let b = replica(&db, &app_name(&db, "b"), interval, Limits::default()).await;
    a.add(&bob(), vec![NewMemory::new("First note", "app")])
        .await
        .unwrap();

    // A raw transaction inserts a row of Bob's (a smaller row id) and stays open.
    let mut late = db.client().await;
    let transaction = late.transaction().await.unwrap();
    transaction
        .execute(
            "INSERT INTO memories (id, owner_id, text, metadata, app, state, created_at, updated_at, text_key)
             SELECT $1, id, 'The zeppelin museum opens late', '{}', 'app', 'active', $2, $2, 1
             FROM owners WHERE subject = $3",
            &[&uuid::Uuid::now_v7(), &i64::try_from(T0).unwrap(), &bob().as_str()],
        )
        .await
        .unwrap();

    // A later write (Alice's) commits and is caught up on B, past the open
    // transaction's row id; several catch-ups run while it stays open.
    a.add(
        &alice(),
        vec![NewMemory::new("Zeppelin photos from the museum", "app")],
    )
    .await
    .unwrap();
    wait_for(&b, "zeppelin", |hits| has(hits, "Zeppelin photos")).await;
    b.catch_up().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(texts_of(&b, &bob(), "zeppelin").await.is_empty());

    // It commits (no notification: only the timer and the xmin rule can find it).
    transaction.commit().await.unwrap();
    let took = wait_for_owner(&b, &bob(), "zeppelin", |hits| has(hits, "zeppelin museum")).await;
    assert!(took < CATCH_UP_LIMIT, "took {took:?}");
    // A, which wrote nothing since, finds it too.
    wait_for_owner(&a, &bob(), "zeppelin", |hits| has(hits, "zeppelin museum")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_replaced_without_a_restart() {
    let db = Postgres::create().await;
    let name = app_name(&db, "a");
    let a = replica(&db, &name, Duration::from_millis(250), Limits::default()).await;
    a.add(&alice(), vec![NewMemory::new("Survives a failover", "app")])
        .await
        .unwrap();
    let terminated: i64 = db
        .client()
        .await
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name IN ($1, $1 || ' listener')",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated >= 2, "{terminated}");
    let start = Instant::now();
    loop {
        match a.search(&alice(), &SearchQuery::new("failover")).await {
            Ok(hits) => {
                assert_eq!(hits.len(), 1);
                break;
            }
            Err(error) => assert_eq!(error.kind(), &ErrorKind::Unavailable, "{error:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of PostgreSQL that can be cut off and restored.
struct Proxy {
    address: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", 5432)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { address, tasks }
    }

    /// Closes every proxied connection and stops accepting new ones.
    fn cut(mut self) -> SocketAddr {
        self.tasks.abort_all();
        self.address
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_postgresql_is_unavailable_and_recovers_when_it_is_back() {
    let db = Postgres::create().await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap()).await;
    let url = format!(
        "postgres://postgres@{}/{}?sslmode=disable",
        proxy.address,
        database_url()
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .unwrap()
    );
    let options: PostgresOptions = db
        .options(Limits::default(), ManualClock::at_unix_ms(T0))
        .with_connect_timeout(Duration::from_secs(1))
        .with_acquire_timeout(Duration::from_secs(2));
    let store = PostgresStore::connect(&url, options).await.unwrap();
    store
        .add(
            &alice(),
            vec![NewMemory::new("Kept through the outage", "app")],
        )
        .await
        .unwrap();

    let address = proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let error = store.health().await.unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::Unavailable, "{error:?}");
    }
    let error = store
        .add(
            &alice(),
            vec![NewMemory::new("Written during the outage", "app")],
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Unavailable, "{error:?}");

    let _proxy = Proxy::start(address).await;
    let start = Instant::now();
    while store.health().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store
            .search(&alice(), &SearchQuery::new("outage"))
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .add(
            &alice(),
            vec![NewMemory::new("Written after the outage", "app")],
        )
        .await
        .unwrap();
}

/// A search sees every write committed before it began, through any replica, without
/// waiting for a notification or the timer: as an MCP client that adds a memory through
/// one replica and searches at once through another (round-robin balancing) needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_sees_every_write_committed_before_it_without_a_notification() {
    let db = Postgres::create().await;
    let hour = Duration::from_secs(3600);
    let a = replica(&db, &app_name(&db, "a"), hour, Limits::default()).await;
    let b = replica(&db, &app_name(&db, "b"), hour, Limits::default()).await;
    a.add(&bob(), vec![NewMemory::new("First note", "app")])
        .await
        .unwrap();
    // Rows written without the store send no notification; the timer is an hour.
    let raw = db.client().await;
    for round in 0..5 {
        let word = format!("zeppelin{round}");
        raw.execute(
            "INSERT INTO memories (id, owner_id, text, metadata, app, state, created_at, updated_at, text_key)
             SELECT $1, id, $4, '{}', 'app', 'active', $2, $2, $5
             FROM owners WHERE subject = $3",
            &[
                &uuid::Uuid::now_v7(),
                &i64::try_from(T0).unwrap(),
                &bob().as_str(),
                &format!("Saw a {word} over the harbour"),
                &i64::from(round + 2),
            ],
        )
        .await
        .unwrap();
        for replica in [&a, &b] {
            let hits = texts_of(replica, &bob(), &word).await;
            assert!(has(&hits, &word), "round {round}: {hits:?}");
        }
    }
}
