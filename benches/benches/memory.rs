//! The memory service under load, through the real stack over loopback, at the scale of
//! issue 9: one user with 10,000 memories and one with 100,000, among about a million
//! memories of 102 owners in one database.
//!
//! - `search_memory` latency over MCP (`tools/call` with a bearer token, through
//!   `MemoryServer`), p50 and p99, for the 10k and the 100k user;
//! - `search_memory` calls per second from 4 concurrent clients at 10k memories, and
//!   `POST /api/v1/memories/` inserts per second from 8 concurrent clients (each answered
//!   only once durable; the memories acknowledged are counted back afterwards), each
//!   against the same calls made straight to `MemoryStore` in the same run;
//! - store-level search latency of the search engine against the previous one, SQLite FTS5
//!   as the store used it up to schema v1, built here over the same memories and owners and
//!   queried in alternation with the engine in the same run (the ratio engine / FTS5 of
//!   the p50s, and the engine's slowest queries), and against itself without related-term
//!   expansion;
//! - authenticated requests per second against the same routes without the auth layer;
//! - with `--features postgres`, on PostgreSQL at `BENCH_DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`): the same million memories
//!   in `PostgresStore`, how long a replica takes to connect (its search index rebuilt from
//!   the table) and the same MCP latencies; and requests per second of SQLite on one node
//!   against PostgreSQL with one and two replicas at the small user's size, with how soon a
//!   replica finds another's write (`memory/postgres.rs`). The million is loaded once and
//!   kept in the schema `bench_1m_v1` for later runs (`BENCH_PG_FRESH=1` loads it again);
//!   everything else runs in fresh schemas that are dropped.
//!
//! Run with: `cargo bench -p benches --bench memory [--features postgres]`
//!
//! Under `cargo test -p benches --benches` it runs once at a small scale, to prove it still
//! works. Memory texts and queries come from the LoCoMo conversations in `../shared/data`
//! when that file is present (CC BY-NC 4.0, used for evaluation only and never copied into
//! the repository): dialog turns cycled with a counter word, questions as queries;
//! otherwise from generated sentences.

// A benchmark harness: any failure should stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jwks_verify::Verifier;
use mcp_api::mcp::McpConfig;
use mcp_api::server::access_token_policy;
use mcp_api::store::{SearchParams, SqliteOptions};
use mcp_api::{
    Limits, ListQuery, MemoryServer, MemoryStore, NewMemory, Owner, ProtectedResource, SearchQuery,
    SqliteStore,
};

#[path = "memory/auth_overhead.rs"]
mod auth_overhead;
#[path = "memory/fts5.rs"]
mod fts5;
#[cfg(feature = "postgres")]
#[path = "memory/postgres.rs"]
mod postgres;
#[path = "memory/table.rs"]
mod table;

use auth_overhead::auth_overhead;
use benches::fixture::{AUDIENCE, Fixture, ISSUER};
use benches::latency::Latencies;
use benches::server::{loopback, serve};
use fts5::Fts5;
use table::{Table, ms};

const BASE_URL: &str = "https://mcp.example.com";
/// Memories per `MemoryStore::add` call while loading.
const LOAD_BATCH: usize = 1_000;
/// `add` calls in flight while loading, so the writer commits several per group.
const LOADERS: usize = 4;
/// Hits per search, as `search_memory` asks by default.
const HITS: u32 = 10;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Under `cargo test` the bench runs once, small and quick, to prove it still works.
    let scale = if benches::report::measuring() {
        Scale::FULL
    } else {
        Scale::SMOKE
    };
    let corpus = Arc::new(Corpus::load());
    println!(
        "corpus: {} texts, {} queries ({})",
        corpus.texts.len(),
        corpus.queries.len(),
        corpus.source
    );
    let mut table = Table::default();
    runtime.block_on(async {
        let world = World::load(Arc::clone(&corpus), scale).await;
        mcp_search_latency(&world, world.server, "SQLite", &corpus, scale, &mut table).await;
        throughput(&world, &corpus, scale, &mut table).await;
        #[cfg(feature = "postgres")]
        {
            postgres::at_scale(&world, &corpus, scale, &mut table).await;
            postgres::replicas(&world, &corpus, scale, &mut table).await;
        }
        engine_against_fts5(&world, &corpus, scale, &mut table).await;
        auth_overhead(&world, scale).await;
    });
    table.print();
}

/// How much work a run does.
#[derive(Clone, Copy)]
struct Scale {
    /// Memories of the small user and of the large user.
    users: [usize; 2],
    /// Other owners, and memories of each.
    others: (usize, usize),
    /// Queries asked per latency measurement (each once per round).
    queries: usize,
    /// Rounds over the queries through MCP.
    rounds: usize,
    /// How long each throughput measurement runs.
    window: Duration,
    /// Print loading progress every this many memories.
    progress: usize,
}

impl Scale {
    /// 10k and 100k of the two users plus 900k of 100 other owners: 1.01M memories.
    const FULL: Scale = Scale {
        users: [10_000, 100_000],
        others: (100, 9_000),
        queries: 300,
        rounds: 2,
        window: Duration::from_secs(4),
        progress: 100_000,
    };
    const SMOKE: Scale = Scale {
        users: [200, 400],
        others: (5, 100),
        queries: 20,
        rounds: 1,
        window: Duration::from_millis(200),
        progress: 1_000,
    };
}

/// Texts to store and questions to ask.
struct Corpus {
    texts: Vec<String>,
    queries: Vec<String>,
    source: &'static str,
}

impl Corpus {
    fn load() -> Corpus {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/locomo10.json");
        if let Some(corpus) = std::fs::read(&path)
            .ok()
            .and_then(|bytes| Corpus::from_locomo(&bytes))
        {
            return corpus;
        }
        let words = [
            "coffee", "hiking", "Paris", "guitar", "allergy", "peanuts", "birthday", "sister",
            "marathon", "garden", "novel", "python", "recipe", "vacation", "dentist", "painting",
            "jazz", "kayak", "museum", "yoga",
        ];
        let texts = (0..5000)
            .map(|i| {
                format!(
                    "I mentioned {} and {} on day {i}, along with {}.",
                    words[i % 20],
                    words[(i * 7 + 3) % 20],
                    words[(i * 13 + 5) % 20]
                )
            })
            .collect();
        let queries = (0..300)
            .map(|i| {
                format!(
                    "what about {} and {}?",
                    words[i % 20],
                    words[(i * 3 + 1) % 20]
                )
            })
            .collect();
        Corpus {
            texts,
            queries,
            source: "generated sentences",
        }
    }

    fn from_locomo(bytes: &[u8]) -> Option<Corpus> {
        let conversations: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let mut texts = Vec::new();
        let mut queries = Vec::new();
        for conversation in conversations.as_array()? {
            if let Some(sessions) = conversation["conversation"].as_object() {
                // Sessions in order (`session_2` before `session_10`), turns in order.
                let mut names: Vec<(u32, &String)> = sessions
                    .keys()
                    .filter_map(|name| {
                        let number = name.strip_prefix("session_")?.parse().ok()?;
                        Some((number, name))
                    })
                    .collect();
                names.sort_unstable();
                for (_, name) in names {
                    for turn in sessions[name].as_array().into_iter().flatten() {
                        if let (Some(speaker), Some(text)) =
                            (turn["speaker"].as_str(), turn["text"].as_str())
                        {
                            texts.push(format!("{speaker}: {text}"));
                        }
                    }
                }
            }
            for item in conversation["qa"].as_array().into_iter().flatten() {
                if let Some(question) = item["question"].as_str() {
                    queries.push(question.to_owned());
                }
            }
        }
        // Spread over all ten conversations rather than the first few.
        let step = (queries.len() / 300).max(1);
        let queries: Vec<String> = queries.into_iter().step_by(step).take(300).collect();
        (!texts.is_empty() && !queries.is_empty()).then_some(Corpus {
            texts,
            queries,
            source: "LoCoMo (shared/data/locomo10.json)",
        })
    }

    /// The `n`th memory of the owner numbered `owner`: dialog turns in order from an
    /// owner-specific start, cycled, each made distinct by its number (so the store never
    /// takes one for a near-duplicate of another).
    fn memory_text(&self, owner: usize, n: usize) -> String {
        let turn = &self.texts[(owner * 7_919 + n) % self.texts.len()];
        format!("{turn} (#{n})")
    }

    /// The first `count` queries, cycled if there are fewer.
    fn queries(&self, count: usize) -> impl Iterator<Item = &str> + Clone {
        self.queries.iter().cycle().take(count).map(String::as_str)
    }
}

/// The database every measurement shares, the server in front of it, and the tokens.
struct World {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    /// Every owner and how many memories it has; the small user first, the large second.
    owners: Vec<(Owner, usize)>,
    fixture: Fixture,
    resource: ProtectedResource,
    verifier: Verifier,
    /// `MemoryServer`, the real stack with bearer authentication, on loopback.
    server: SocketAddr,
    client: HttpClient,
}

impl World {
    /// Opens a fresh store and loads every owner's memories through `MemoryStore::add`.
    async fn load(corpus: Arc<Corpus>, scale: Scale) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut limits = Limits::default();
        limits.max_batch = LOAD_BATCH;
        let store = Arc::new(
            SqliteStore::open_with_options(
                dir.path().join("memories.db"),
                SqliteOptions::new().with_limits(limits),
            )
            .expect("store"),
        );
        // The fixture's tokens are for `user-000000`, `user-000001`, ...
        let mut owners = vec![
            (Owner::new("user-000000").expect("owner"), scale.users[0]),
            (Owner::new("user-000001").expect("owner"), scale.users[1]),
        ];
        for other in 0..scale.others.0 {
            let owner = Owner::new(format!("other-{other:03}")).expect("owner");
            owners.push((owner, scale.others.1));
        }
        load(&store, &corpus, &owners, scale.progress, "SqliteStore").await;
        store.flush().await.expect("flush");

        let fixture = Fixture::new();
        let resource = ProtectedResource::new(BASE_URL, ISSUER);
        assert_eq!(resource.resource(), AUDIENCE);
        let verifier = Verifier::builder(access_token_policy(&resource))
            .static_jwks(fixture.jwks())
            .build()
            .expect("verifier");
        let server = serve(
            loopback().await,
            MemoryServer::new(
                Arc::clone(&store),
                verifier.clone(),
                resource.clone(),
                McpConfig::default(),
            ),
        );
        World {
            dir,
            store,
            owners,
            fixture,
            resource,
            verifier,
            server,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `Bearer <token>` of the owner numbered `owner` (the small user is 0).
    fn bearer(&self, owner: usize) -> String {
        format!("Bearer {}", self.fixture.tokens[owner])
    }
}

/// Loads every owner's memories into `store` through `MemoryStore::add` ([`LOAD_BATCH`] per
/// call, [`LOADERS`] calls in flight), printing progress every `progress` memories;
/// returns how long it took.
async fn load<S: MemoryStore + 'static>(
    store: &Arc<S>,
    corpus: &Arc<Corpus>,
    owners: &[(Owner, usize)],
    progress: usize,
    through: &str,
) -> Duration {
    let total: usize = owners.iter().map(|(_, count)| count).sum();
    println!(
        "\n== loading {total} memories of {} owners through {through} \
         ({LOAD_BATCH} per call, {LOADERS} calls in flight) ==",
        owners.len()
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut loaded = 0;
    let mut next_report = progress;
    for (owner_index, start) in load_order(owners) {
        let (owner, count) = owners[owner_index].clone();
        let batch: Vec<NewMemory> = (start..count.min(start + LOAD_BATCH))
            .map(|n| NewMemory::new(corpus.memory_text(owner_index, n), "bench"))
            .collect();
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let added = store.add(&owner, batch).await.expect("add");
            added.len()
        });
        while tasks.len() >= LOADERS {
            loaded += tasks.join_next().await.expect("task").expect("load task");
        }
        if loaded >= next_report {
            next_report += progress;
            println!(
                "  {loaded:>9} memories in {:>6.1?} ({:.0}/s)",
                started.elapsed(),
                loaded as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    while let Some(added) = tasks.join_next().await {
        loaded += added.expect("load task");
    }
    let elapsed = started.elapsed();
    println!(
        "  {loaded:>9} memories in {elapsed:>6.1?} ({:.0}/s)",
        loaded as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(loaded, total, "every memory was stored");
    elapsed
}

/// (owner, first memory number) of every batch, owners interleaved batch by batch as
/// several users writing at once would be.
fn load_order(owners: &[(Owner, usize)]) -> Vec<(usize, usize)> {
    let rounds = owners
        .iter()
        .map(|(_, count)| count.div_ceil(LOAD_BATCH))
        .max()
        .unwrap_or(0);
    let mut order = Vec::new();
    for round in 0..rounds {
        for (index, (_, count)) in owners.iter().enumerate() {
            let start = round * LOAD_BATCH;
            if start < *count {
                order.push((index, start));
            }
        }
    }
    order
}

/// A `tools/call` of `search_memory` for `query`.
fn search_memory_request(bearer: &str, query: &str) -> Request<Full<Bytes>> {
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search_memory", "arguments": {"query": query}}});
    Request::post("/mcp")
        .header("authorization", bearer)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(Bytes::from(call.to_string())))
        .expect("request")
}

/// Sends `request` to `addr`; the status and body.
async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    mut request: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    let uri = format!("http://{addr}{}", request.uri());
    *request.uri_mut() = uri.parse().expect("uri");
    let response = client.request(request).await.expect("request");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body");
    (status, body.to_bytes())
}

/// How many results a successful `search_memory` answer holds; panics on any error.
fn search_results(status: StatusCode, body: &[u8]) -> usize {
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(body));
    let answer: serde_json::Value = serde_json::from_slice(body).expect("JSON-RPC answer");
    let result = &answer["result"];
    assert!(
        answer.get("error").is_none() && result["isError"] != true,
        "search_memory failed: {answer}"
    );
    result["structuredContent"]["results"]
        .as_array()
        .map_or(0, Vec::len)
}

/// `search_memory` over MCP to the `MemoryServer` at `server` on `backend`'s store of the
/// world's memories, one client, one call after another.
async fn mcp_search_latency(
    world: &World,
    server: SocketAddr,
    backend: &str,
    corpus: &Corpus,
    scale: Scale,
    table: &mut Table,
) {
    println!(
        "\n== search_memory over MCP on loopback (MemoryServer on {backend}, bearer token, \
         1 client) =="
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}  {:>6}",
        "user", "p50", "p95", "p99", "max", "hits"
    );
    let total: usize = world.owners.iter().map(|(_, count)| count).sum();
    for (user, target) in [(0, 2.0), (1, 5.0)] {
        let bearer = world.bearer(user);
        // Warm up the connection and the owner's index pages.
        for query in corpus.queries(20) {
            let (status, body) =
                send(&world.client, server, search_memory_request(&bearer, query)).await;
            search_results(status, &body);
        }
        let mut samples = Vec::with_capacity(scale.queries * scale.rounds);
        let mut hits = 0;
        for _ in 0..scale.rounds {
            for query in corpus.queries(scale.queries) {
                let request = search_memory_request(&bearer, query);
                let started = Instant::now();
                let (status, body) = send(&world.client, server, request).await;
                samples.push(started.elapsed());
                hits += search_results(status, &body);
            }
        }
        let latencies = Latencies::new(samples);
        let label = format!("{} memories of {total}", world.owners[user].1);
        println!(
            "{label:<34} {:>9.2?} {:>9.2?} {:>9.2?} {:>9.2?}  {:>6.1}",
            latencies.p50(),
            latencies.percentile(0.95),
            latencies.p99(),
            latencies.percentile(1.0),
            hits as f64 / latencies.len() as f64
        );
        let (p50, p99) = (ms(latencies.p50()), ms(latencies.p99()));
        let mut targets = format!("p50 < {target} ms");
        let mut met = p50 < target;
        if user == 1 {
            targets.push_str(", p99 < 20 ms");
            met &= p99 < 20.0;
        }
        table.row(
            format!("MCP search_memory latency, {backend}, user with {label}"),
            format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
            Some((targets, met)),
        );
    }
}

/// `search_memory` calls per second (4 clients) and REST inserts per second (8 clients),
/// each against the same calls made straight to the store: two half windows of each,
/// alternating, so drift hits both alike.
async fn throughput(world: &World, corpus: &Corpus, scale: Scale, table: &mut Table) {
    println!("\n== throughput over loopback (MemoryServer, bearer tokens) vs the store itself ==");
    let half = scale.window / 2;
    let queries: Arc<Vec<String>> = Arc::new(corpus.queries.clone());
    let search: MakeRequest = {
        let (bearer, queries) = (world.bearer(0), Arc::clone(&queries));
        Arc::new(move |n| search_memory_request(&bearer, &queries[n as usize % queries.len()]))
    };
    // The same searches straight into the store: what HTTP, auth, JSON-RPC and the
    // access-log entries add on top.
    let store_search = {
        let (store, owner) = (Arc::clone(&world.store), world.owners[0].0.clone());
        Arc::new(move |n: u64| {
            let (store, owner) = (Arc::clone(&store), owner.clone());
            let query = SearchQuery::new(queries[n as usize % queries.len()].as_str());
            async move {
                std::hint::black_box(store.search(&owner, &query).await.expect("search"));
            }
        })
    };
    let (mut searches, mut store_searches) = (0.0, 0.0);
    for _ in 0..2 {
        searches += rate(world.server, 4, Arc::clone(&search), StatusCode::OK, half)
            .await
            .0
            / 2.0;
        store_searches += store_rate(4, half, Arc::clone(&store_search)).await / 2.0;
    }
    let users = world.owners[0].1;
    println!(
        "search_memory, {users} memories, 4 clients: {searches:.0}/s; \
         MemoryStore::search, 4 tasks: {store_searches:.0}/s"
    );
    table.row(
        format!("MCP search_memory calls/s, 4 clients, {users} memories"),
        format!("{searches:.0}/s"),
        Some(("target >= 2000/s".to_owned(), searches >= 2000.0)),
    );
    table.row(
        "  baseline: MemoryStore::search calls/s, 4 tasks, same user",
        format!(
            "{store_searches:.0}/s (MCP reaches {:.2}x of it)",
            searches / store_searches
        ),
        None,
    );

    // A fresh owner, so the count afterwards is exactly the inserts acknowledged.
    let writer = 2;
    let owner = Owner::new(format!("user-{writer:06}")).expect("owner");
    let texts = Arc::new(corpus.texts.clone());
    let insert: MakeRequest = {
        let (bearer, texts) = (world.bearer(writer), Arc::clone(&texts));
        Arc::new(move |n| {
            let text = format!("{} (insert {n})", texts[n as usize % texts.len()]);
            Request::post("/api/v1/memories/")
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::json!({ "text": text }).to_string(),
                )))
                .expect("request")
        })
    };
    // The same inserts straight into the store, one memory per call, for another owner.
    let store_insert = {
        let store = Arc::clone(&world.store);
        let owner = Owner::new("user-000003").expect("owner");
        Arc::new(move |n: u64| {
            let (store, owner) = (Arc::clone(&store), owner.clone());
            let memory = NewMemory::new(
                format!("{} (insert {n})", texts[n as usize % texts.len()]),
                "bench",
            );
            async move {
                store.add(&owner, vec![memory]).await.expect("add");
            }
        })
    };
    let (mut inserts, mut store_inserts, mut acknowledged) = (0.0, 0.0, 0);
    for round in 0..2u64 {
        // Numbers continue past the first round's, so no text repeats.
        let offset = round << 32;
        let numbered: MakeRequest = {
            let insert = Arc::clone(&insert);
            Arc::new(move |n| insert(offset + n))
        };
        let (per_second, answered) =
            rate(world.server, 8, numbered, StatusCode::CREATED, half).await;
        inserts += per_second / 2.0;
        acknowledged += answered;
        let store_insert = Arc::clone(&store_insert);
        let numbered = Arc::new(move |n| store_insert(offset + n));
        store_inserts += store_rate(8, half, numbered).await / 2.0;
    }
    let stored = world
        .store
        .list(&owner, &ListQuery::new().with_page(1, 1))
        .await
        .expect("list")
        .total;
    assert_eq!(stored, acknowledged, "every acknowledged insert is stored");
    println!(
        "POST /api/v1/memories/, 8 clients: {inserts:.0}/s ({acknowledged} acknowledged, \
         {stored} stored); MemoryStore::add of one memory, 8 tasks: {store_inserts:.0}/s"
    );
    table.row(
        "REST inserts/s, 8 clients, each acknowledged once durable",
        format!("{inserts:.0}/s"),
        Some(("target >= 5000/s".to_owned(), inserts >= 5000.0)),
    );
    table.row(
        "  baseline: MemoryStore::add calls/s (one memory each), 8 tasks",
        format!(
            "{store_inserts:.0}/s (REST reaches {:.2}x of it)",
            inserts / store_inserts
        ),
        None,
    );
}

/// Calls per second of `op(n)` (`n` counting up across tasks) from `tasks` concurrent
/// tasks for `window`.
async fn store_rate<F, Fut>(tasks: usize, window: Duration, op: Arc<F>) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, counter) = (Arc::clone(&op), Arc::clone(&counter));
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    op(counter.fetch_add(1, Ordering::Relaxed)).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("store task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Requests per second from `clients` concurrent keep-alive clients for `window`, each
/// answer checked for `expect`; the rate and how many requests were answered.
async fn rate(
    addr: SocketAddr,
    clients: usize,
    make: MakeRequest,
    expect: StatusCode,
    window: Duration,
) -> (f64, u64) {
    rate_across(&[addr], clients, make, expect, window).await
}

/// [`rate`] against several replicas: client `i` sends to `addrs[i % addrs.len()]`.
async fn rate_across(
    addrs: &[SocketAddr],
    clients: usize,
    make: MakeRequest,
    expect: StatusCode,
    window: Duration,
) -> (f64, u64) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let (client, make, counter) = (client.clone(), Arc::clone(&make), Arc::clone(&counter));
            let addr = addrs[index % addrs.len()];
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let request = make(counter.fetch_add(1, Ordering::Relaxed));
                    let (status, body) = send(&client, addr, request).await;
                    assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("client task");
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

/// The store-level search: the engine against SQLite FTS5 over the same memories, and
/// against itself without related-term expansion (a second store over the same file).
async fn engine_against_fts5(world: &World, corpus: &Arc<Corpus>, scale: Scale, table: &mut Table) {
    let total: usize = world.owners.iter().map(|(_, count)| count).sum();
    println!(
        "\n== store-level search: the engine vs SQLite FTS5 (the previous engine), \
         {total} memories =="
    );
    let path = world.dir.path().join("fts5.db");
    let owners = world.owners.clone();
    let corpus_for_build = Arc::clone(corpus);
    let progress = scale.progress;
    let fts5 = tokio::task::spawn_blocking(move || {
        Fts5::build(&path, &corpus_for_build, &owners, progress)
    })
    .await
    .expect("build task");
    let plain = {
        let path = world.dir.path().join("memories.db");
        let started = Instant::now();
        let options = SqliteOptions::new()
            .with_search_params(SearchParams::default().with_related_weight(0.0));
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_with_options(path, options))
                .await
                .expect("open task")
                .expect("store");
        println!(
            "  engine without related terms: index rebuilt from the same file in {:.1?}",
            started.elapsed()
        );
        store
    };

    println!(
        "{:<34} {:>10} {:>9} {:>11} {:>9} {:>10} {:>9} {:>9}",
        "user", "engine p50", "p99", "-related p50", "p99", "FTS5 p50", "p99", "new/old"
    );
    for user in [0, 1] {
        let owner = world.owners[user].0.clone();
        let query_of = |text: &str| SearchQuery::new(text).with_limit(HITS);
        let mut samples: [Vec<Duration>; 3] = Default::default();
        let mut slowest = Vec::with_capacity(scale.queries);
        // Warm all up, then rotate which goes first, query by query.
        for query in corpus.queries(10) {
            fts5.search(&owner, query).await;
            world
                .store
                .search(&owner, &query_of(query))
                .await
                .expect("search");
            plain
                .search(&owner, &query_of(query))
                .await
                .expect("search");
        }
        for (i, query) in corpus.queries(scale.queries).enumerate() {
            for side in [i % 3, (i + 1) % 3, (i + 2) % 3] {
                let started = Instant::now();
                match side {
                    0 => {
                        let hits = world.store.search(&owner, &query_of(query)).await;
                        std::hint::black_box(hits.expect("search"));
                        slowest.push((started.elapsed(), query));
                    }
                    1 => {
                        let hits = plain.search(&owner, &query_of(query)).await;
                        std::hint::black_box(hits.expect("search"));
                    }
                    _ => {
                        std::hint::black_box(fts5.search(&owner, query).await);
                    }
                }
                samples[side].push(started.elapsed());
            }
        }
        let [engine, plain_engine, previous] = samples.map(Latencies::new);
        let ratio = ms(engine.p50()) / ms(previous.p50());
        let label = format!("{} memories of {total}", world.owners[user].1);
        println!(
            "{label:<34} {:>10.2?} {:>9.2?} {:>11.2?} {:>9.2?} {:>10.2?} {:>9.2?} {ratio:>9.4}",
            engine.p50(),
            engine.p99(),
            plain_engine.p50(),
            plain_engine.p99(),
            previous.p50(),
            previous.p99()
        );
        // Where the engine's tail comes from.
        slowest.sort_unstable_by_key(|&(elapsed, _)| std::cmp::Reverse(elapsed));
        for (elapsed, query) in slowest.iter().take(3) {
            println!("    engine's slowest: {elapsed:>9.2?}  {query:?}");
        }
        table.row(
            format!("store search p50, engine / FTS5, {label}"),
            format!(
                "{ratio:.4}x ({:.3} vs {:.3} ms; {:.0}x faster)",
                ms(engine.p50()),
                ms(previous.p50()),
                1.0 / ratio
            ),
            None,
        );
        table.row(
            "  store search p50, engine / engine without related terms",
            format!(
                "{:.2}x ({:.3} vs {:.3} ms)",
                ms(engine.p50()) / ms(plain_engine.p50()),
                ms(engine.p50()),
                ms(plain_engine.p50())
            ),
            None,
        );
    }
}
