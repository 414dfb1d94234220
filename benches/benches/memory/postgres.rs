//! The memory server on PostgreSQL (`--features postgres`), beside the SQLite figures of the
//! same run:
//!
//! - [`at_scale`]: the world's million memories in `PostgresStore`, how long a replica takes
//!   to connect (its search index built from the table), and MCP `search_memory` latency
//!   for the 10k and the 100k user, as measured on SQLite. Loading a million memories
//!   through `MemoryStore::add` takes minutes, so under `cargo bench` the dataset is kept in
//!   the schema `bench_1m_v1` and reused while its count of live memories matches;
//!   `BENCH_PG_FRESH=1` loads it again. Under `cargo test` it loads the small world into a
//!   fresh schema and drops it.
//! - [`replicas`]: requests per second, SQLite on one node against PostgreSQL with one
//!   replica and with two (two `MemoryServer`s, each on its own `PostgresStore` pool, on one
//!   schema), one user with the small user's count of memories, in a fresh schema: MCP
//!   `search_memory` from 4 clients and REST inserts from 8 (split between the replicas),
//!   and how long a write through one replica takes to be found by a search on the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use benches::latency::Latencies;
use benches::postgres::Schema;
use benches::server::{loopback, serve_stoppable};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mcp_api::mcp::McpConfig;
use mcp_api::store::{PostgresOptions, PostgresStore, SqliteOptions};
use mcp_api::{
    Limits, ListQuery, MemoryServer, MemoryStore, NewMemory, Owner, SearchQuery, SqliteStore,
};

use super::table::{Table, ms};
use super::{
    Corpus, LOAD_BATCH, LOADERS, MakeRequest, Scale, World, load, mcp_search_latency, rate_across,
    search_memory_request,
};

/// The schema that keeps the million memories between runs; a new version of the dataset
/// gets a new name.
const CACHED_SCHEMA: &str = "bench_1m_v1";
/// Set to load the cached dataset again.
const FRESH_VARIABLE: &str = "BENCH_PG_FRESH";
/// Connections per replica, as `mcp-server`'s default `MCP_DATABASE_POOL`.
const POOL: usize = 8;

/// The world's memories on PostgreSQL: replica connect time and MCP search latency.
pub(crate) async fn at_scale(world: &World, corpus: &Arc<Corpus>, scale: Scale, table: &mut Table) {
    let total: usize = world.owners.iter().map(|(_, count)| count).sum();
    let schema = if benches::report::measuring() {
        let schema = Schema::cached(CACHED_SCHEMA).await;
        if std::env::var_os(FRESH_VARIABLE).is_some() {
            schema.reset().await;
        }
        schema
    } else {
        Schema::fresh("bench_memory").await
    };
    let live = schema
        .count("SELECT count(*) FROM memories WHERE state <> 'deleted'")
        .await;
    if live == i64::try_from(total).ok() {
        println!(
            "\n== PostgreSQL: reusing the {total} memories cached in schema {} \
             ({FRESH_VARIABLE}=1 loads them again) ==",
            schema.name()
        );
    } else {
        if let Some(live) = live {
            println!(
                "\nschema {} holds {live} live memories, not {total}: loading again",
                schema.name()
            );
            schema.reset().await;
        }
        let loader = Arc::new(connect(schema.name(), LOADERS + 4).await);
        let through = format!("PostgresStore, schema {}", schema.name());
        let elapsed = load(&loader, corpus, &world.owners, scale.progress, &through).await;
        loader.flush().await.expect("flush");
        table.row(
            format!("PostgreSQL: loading {total} memories through MemoryStore::add"),
            format!(
                "{:.0} s ({:.0}/s)",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64()
            ),
            None,
        );
    }

    let started = Instant::now();
    let store = Arc::new(connect(schema.name(), POOL).await);
    let joined = started.elapsed();
    println!(
        "a replica connects to {total} memories (migration check, search index built from \
         the table) in {joined:.2?}"
    );
    table.row(
        format!("PostgreSQL: replica connect incl. search index rebuild, {total} memories"),
        format!("{:.1} s", joined.as_secs_f64()),
        None,
    );
    let (server, stop) = memory_server(world, Arc::clone(&store)).await;
    mcp_search_latency(world, server, "PostgreSQL", corpus, scale, table).await;
    store.flush().await.expect("flush");
    // Stop the replica (its server, then its index follower with the last clone of the
    // store), so it takes no CPU from the measurements after it.
    stop.abort();
    drop(store);
    schema.finish().await;
}

/// SQLite on one node against PostgreSQL with one and two replicas: requests per second
/// through `MemoryServer`, and how soon one replica finds another's write.
pub(crate) async fn replicas(world: &World, corpus: &Arc<Corpus>, scale: Scale, table: &mut Table) {
    let memories = scale.users[0];
    let owners = vec![(Owner::new("user-000000").expect("owner"), memories)];
    println!(
        "\n== SQLite on one node vs PostgreSQL with one and two replicas: one user with \
         {memories} memories, MemoryServer over loopback =="
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Arc::new(
        SqliteStore::open_with_options(
            dir.path().join("replicas.db"),
            SqliteOptions::new().with_limits(limits()),
        )
        .expect("store"),
    );
    load(&sqlite, corpus, &owners, memories, "SqliteStore").await;
    let schema = Schema::fresh("bench_replicas").await;
    let first = Arc::new(connect(schema.name(), POOL).await);
    load(&first, corpus, &owners, memories, "PostgresStore").await;
    let started = Instant::now();
    let second = Arc::new(connect(schema.name(), POOL).await);
    println!(
        "second replica connected (index built from {memories} memories) in {:.1?}",
        started.elapsed()
    );

    let (sqlite_server, stop_sqlite) = memory_server(world, Arc::clone(&sqlite)).await;
    let (first_server, stop_first) = memory_server(world, Arc::clone(&first)).await;
    let (second_server, stop_second) = memory_server(world, Arc::clone(&second)).await;
    let deployments: [(&str, Vec<SocketAddr>); 3] = [
        ("SQLite, one node", vec![sqlite_server]),
        ("PostgreSQL, one replica", vec![first_server]),
        (
            "PostgreSQL, two replicas",
            vec![first_server, second_server],
        ),
    ];
    let half = scale.window / 2;
    // Two rounds of half windows, the second in reverse order, so drift hits all alike.
    let order = |round: u64| -> Vec<usize> {
        if round == 0 {
            vec![0, 1, 2]
        } else {
            vec![2, 1, 0]
        }
    };

    let queries = Arc::new(corpus.queries.clone());
    let search: MakeRequest = {
        let bearer = world.bearer(0);
        Arc::new(move |n| search_memory_request(&bearer, &queries[n as usize % queries.len()]))
    };
    let mut searches = [0.0; 3];
    for round in 0..2 {
        for index in order(round) {
            let addrs = &deployments[index].1;
            let (per_second, _) =
                rate_across(addrs, 4, Arc::clone(&search), StatusCode::OK, half).await;
            searches[index] += per_second / 2.0;
        }
    }

    // Each deployment's inserts go to an owner of their own in its store (the two
    // PostgreSQL deployments share a schema), so the count afterwards is exactly the
    // inserts acknowledged.
    let writers = [2, 2, 3];
    let texts = Arc::new(corpus.texts.clone());
    let mut inserts = [0.0; 3];
    let mut acknowledged = [0u64; 3];
    for round in 0..2 {
        for index in order(round) {
            // Numbers continue past the first round's, so no text repeats.
            let offset = round << 32;
            let (bearer, texts) = (world.bearer(writers[index]), Arc::clone(&texts));
            let insert: MakeRequest = Arc::new(move |n| {
                let n = offset + n;
                let text = format!("{} (insert {n})", texts[n as usize % texts.len()]);
                Request::post("/api/v1/memories/")
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(
                        serde_json::json!({ "text": text }).to_string(),
                    )))
                    .expect("request")
            });
            let addrs = &deployments[index].1;
            let (per_second, answered) =
                rate_across(addrs, 8, insert, StatusCode::CREATED, half).await;
            inserts[index] += per_second / 2.0;
            acknowledged[index] += answered;
        }
    }
    let writer = |index: usize| Owner::new(format!("user-{:06}", writers[index])).expect("owner");
    let stored = [
        stored(&*sqlite, &writer(0)).await,
        stored(&*first, &writer(1)).await,
        stored(&*second, &writer(2)).await,
    ];
    assert_eq!(stored, acknowledged, "every acknowledged insert is stored");

    let probes = if benches::report::measuring() { 20 } else { 2 };
    let catch_up = catch_up(&second, &first, probes).await;

    println!(
        "{:<28} {:>16} {:>10} {:>16} {:>10}",
        "deployment", "search_memory/s", "vs SQLite", "REST inserts/s", "vs SQLite"
    );
    for (index, (label, _)) in deployments.iter().enumerate() {
        println!(
            "{label:<28} {:>16.0} {:>9.2}x {:>16.0} {:>9.2}x",
            searches[index],
            searches[index] / searches[0],
            inserts[index],
            inserts[index] / inserts[0]
        );
        table.row(
            format!("MCP search_memory calls/s, 4 clients, {memories} memories, {label}"),
            format!(
                "{:.0}/s ({:.2}x of SQLite)",
                searches[index],
                searches[index] / searches[0]
            ),
            None,
        );
    }
    for (index, (label, _)) in deployments.iter().enumerate() {
        table.row(
            format!("REST inserts/s, 8 clients, one owner, {label}"),
            format!(
                "{:.0}/s ({:.2}x of SQLite; {} stored)",
                inserts[index],
                inserts[index] / inserts[0],
                stored[index]
            ),
            None,
        );
    }
    println!(
        "a write through one replica found by a search on the other after: p50 {:.1?}, \
         max {:.1?} ({probes} probes)",
        catch_up.p50(),
        catch_up.percentile(1.0)
    );
    table.row(
        "PostgreSQL: another replica's write found by search (LISTEN/NOTIFY)",
        format!(
            "p50 {:.1} ms, max {:.1} ms ({probes} writes)",
            ms(catch_up.p50()),
            ms(catch_up.percentile(1.0))
        ),
        None,
    );
    for store in [&first, &second] {
        store.flush().await.expect("flush");
    }
    for stop in [stop_sqlite, stop_first, stop_second] {
        stop.abort();
    }
    drop((first, second));
    schema.finish().await;
}

/// A replica's store on `schema`, with the world's limits and a pool of `pool` connections.
async fn connect(schema: &str, pool: usize) -> PostgresStore {
    let options = PostgresOptions::new()
        .with_limits(limits())
        .with_pool_size(pool)
        .with_schema(schema);
    PostgresStore::connect(&benches::postgres::url(), options)
        .await
        .expect("PostgreSQL at BENCH_DATABASE_URL")
}

/// The default limits with batches as large as the loader's.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_batch = LOAD_BATCH;
    limits
}

/// `MemoryServer` on `store` with the world's verifier, served on a loopback port until
/// the handle is aborted.
async fn memory_server<S: MemoryStore + 'static>(
    world: &World,
    store: Arc<S>,
) -> (SocketAddr, AbortHandle) {
    serve_stoppable(
        loopback().await,
        MemoryServer::new(
            store,
            world.verifier.clone(),
            world.resource.clone(),
            McpConfig::default(),
        ),
    )
}

/// How many live memories `owner` has.
async fn stored<S: MemoryStore>(store: &S, owner: &Owner) -> u64 {
    store
        .list(owner, &ListQuery::new().with_page(1, 1))
        .await
        .expect("list")
        .total
}

/// For each of `probes` memories added through `writer` (with a word of its own), how long
/// after the add returned a search on `reader` first finds it.
async fn catch_up(writer: &PostgresStore, reader: &PostgresStore, probes: usize) -> Latencies {
    let owner = Owner::new("user-000004").expect("owner");
    let mut samples = Vec::with_capacity(probes);
    for probe in 0..probes {
        // Letters only, so the word is one term: "zq" and the probe's digits as letters.
        let word: String = format!("zq{probe:04}{}", std::process::id())
            .bytes()
            .map(|b| {
                if b.is_ascii_digit() {
                    char::from(b - b'0' + b'a')
                } else {
                    char::from(b)
                }
            })
            .collect();
        let memory = NewMemory::new(format!("catch-up probe {word}"), "bench");
        writer.add(&owner, vec![memory]).await.expect("add");
        let started = Instant::now();
        let query = SearchQuery::new(word.as_str());
        while reader
            .search(&owner, &query)
            .await
            .expect("search")
            .is_empty()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the other replica never found the write"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
    }
    Latencies::new(samples)
}
