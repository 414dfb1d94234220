//! Recall of the memory search engine on LoCoMo: does `search` find the dialog turns that
//! answer a question?
//!
//! Run with: `cargo bench -p benches --bench recall`
//! (`RECALL_PARAMS="k1=0.6,own_b=0.1,neighbour_b=0.5,near=0.3,far=0.15,min_relevance=0.2,context_floor=0.6"`
//! overrides ranking parameters, for tuning; `RECALL_TIMING=sessions` writes each LoCoMo
//! session a day apart instead of all memories in one burst.)
//!
//! LoCoMo (`../shared/data/locomo10.json`, CC BY-NC 4.0, evaluation only, never copied into
//! the repository): 10 long conversations, each stored as one user's memories, one memory
//! per dialog turn (`[session date] Speaker: text`), added in conversation order. Each
//! question is asked as is; recall@k is the share of its gold evidence turns among the first
//! k hits, averaged over questions. Parameters were tuned on conversations 1–5 only; 6–10
//! are reported separately as held out. The same run also reports plain BM25 (no context,
//! no floors) as the baseline.
//!
//! The tuned engine is measured twice: straight through `MemoryStore`, and through the
//! server (`MemoryServer` with bearer tokens: MCP `tools/call` of `add_memories` for each
//! turn and of `search_memory` for each question, the answers parsed as a client would).
//! The two must agree.
//!
//! With `--features postgres` the tuned engine is measured a third time, on `PostgresStore`
//! (at `MCP_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`, in a
//! schema of its own that is dropped after): the same engine behind another database, so
//! it must find what the SQLite store finds.
//!
//! Under `cargo test` it runs on the first conversation only, to prove it still works; if
//! the data file is absent it says so and does nothing.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use benches::fixture::{Fixture, ISSUER};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use jwks_verify::Verifier;
use mcp_api::mcp::McpConfig;
use mcp_api::server::access_token_policy;
use mcp_api::store::{SearchParams, SqliteOptions};
use mcp_api::{
    MemoryId, MemoryServer, MemoryStore, NewMemory, Owner, ProtectedResource, SearchQuery,
    SqliteStore,
};
use serde_json::{Value, json};
use tower::ServiceExt;

/// One conversation: its turns in order and its questions.
struct Conversation {
    /// `(dialog id, session number, memory text)` in order.
    turns: Vec<(String, u32, String)>,
    questions: Vec<Question>,
}

struct Question {
    text: String,
    category: u64,
    evidence: HashSet<String>,
}

/// Recall sums for one group of questions.
#[derive(Default, Clone, Copy)]
struct Recall {
    questions: u32,
    at5: f64,
    at10: f64,
    hits_returned: u64,
}

impl Recall {
    fn add(&mut self, other: Recall) {
        self.questions += other.questions;
        self.at5 += other.at5;
        self.at10 += other.at10;
        self.hits_returned += other.hits_returned;
    }

    fn percent(&self) -> (f64, f64) {
        let n = f64::from(self.questions.max(1));
        (100.0 * self.at5 / n, 100.0 * self.at10 / n)
    }
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/locomo10.json");
    let Ok(bytes) = std::fs::read(&path) else {
        println!("recall: {} is absent; nothing to measure", path.display());
        return;
    };
    let mut conversations = parse(&bytes);
    if !benches::report::measuring() {
        conversations.truncate(1);
    }
    let tuned = params_from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let plain = SearchParams::default()
        .with_context_weights(0.0, 0.0, 0.0)
        .with_related_weight(0.0)
        .with_min_relevance(0.0)
        .with_context_floor(0.0);
    let mut tuned_per = BTreeMap::new();
    for (name, params) in [("engine (tuned)", tuned), ("plain BM25 baseline", plain)] {
        let per = runtime.block_on(evaluate(&conversations, params, Through::Store));
        report(name, &params, &per);
        if tuned_per.is_empty() {
            tuned_per = per;
        }
    }
    let name = "engine (tuned), through the server: MCP add_memories and search_memory";
    let per = runtime.block_on(evaluate(&conversations, tuned, Through::Server));
    report(name, &tuned, &per);
    let total = |per: &BTreeMap<(usize, u64), Recall>| {
        let mut sum = Recall::default();
        per.values().for_each(|recall| sum.add(*recall));
        sum.percent()
    };
    assert_eq!(
        total(&per),
        total(&tuned_per),
        "the server finds what the store finds"
    );
    #[cfg(feature = "postgres")]
    {
        let per = runtime.block_on(postgres::evaluate(&conversations, tuned));
        report("engine (tuned), on PostgresStore", &tuned, &per);
        let ((pg5, pg10), (sq5, sq10)) = (total(&per), total(&tuned_per));
        println!("R@5/R@10: SQLite {sq5:.1}/{sq10:.1}, PostgreSQL {pg5:.1}/{pg10:.1}");
        assert!(
            (pg5 - sq5).abs() <= 2.0 && (pg10 - sq10).abs() <= 2.0,
            "PostgreSQL finds what SQLite finds"
        );
    }
}

/// The same evaluation on `PostgresStore`, in a schema of its own.
#[cfg(feature = "postgres")]
mod postgres {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicI64;

    use mcp_api::store::{PostgresOptions, PostgresStore, SearchParams};

    use super::{Backend, Conversation, Recall, START_MS, SetClock, Through, run};

    /// The database: `MCP_TEST_DATABASE_URL`, without TLS unless it names an `sslmode`.
    fn url() -> String {
        let url = std::env::var("MCP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        if url.contains("sslmode=") {
            url
        } else if url.contains('?') {
            format!("{url}&sslmode=disable")
        } else {
            format!("{url}?sslmode=disable")
        }
    }

    pub(super) async fn evaluate(
        conversations: &[Conversation],
        params: SearchParams,
    ) -> BTreeMap<(usize, u64), Recall> {
        let schema = format!("recall_{}", std::process::id());
        let now = Arc::new(AtomicI64::new(START_MS));
        let mut options = PostgresOptions::new()
            .with_search_params(params)
            .with_schema(schema.clone());
        if std::env::var("RECALL_TIMING").is_ok_and(|t| t == "sessions") {
            options = options.with_clock(SetClock(Arc::clone(&now)));
        }
        let store = PostgresStore::connect(&url(), options)
            .await
            .expect("PostgreSQL at MCP_TEST_DATABASE_URL");
        let per = run(conversations, &Backend::new(store, Through::Store), &now).await;
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL at MCP_TEST_DATABASE_URL");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .expect("drop the schema");
        per
    }
}

/// The way memories are written and questions asked.
#[derive(Clone, Copy, PartialEq)]
enum Through {
    /// `MemoryStore::add` and `MemoryStore::search`.
    Store,
    /// MCP `tools/call` to `MemoryServer` (in process, through its whole HTTP stack).
    Server,
}

/// A store, and the server in front of it with a bearer token per conversation.
struct Backend<S: MemoryStore> {
    store: Arc<S>,
    server: Option<(MemoryServer<S>, Fixture)>,
}

impl<S: MemoryStore> Backend<S> {
    fn new(store: S, through: Through) -> Backend<S> {
        let store = Arc::new(store);
        let server = (through == Through::Server).then(|| {
            let fixture = Fixture::new();
            let resource = ProtectedResource::new("https://mcp.example.com", ISSUER);
            let verifier = Verifier::builder(access_token_policy(&resource))
                .static_jwks(fixture.jwks())
                .build()
                .expect("verifier");
            let server =
                MemoryServer::new(Arc::clone(&store), verifier, resource, McpConfig::default());
            (server, fixture)
        });
        Backend { store, server }
    }

    /// The owner of conversation `index`: the fixture's token subject `user-{index:06}`.
    fn owner(index: usize) -> Owner {
        Owner::new(format!("user-{index:06}")).expect("owner")
    }

    async fn add(&self, index: usize, text: &str) -> MemoryId {
        let Some((server, fixture)) = &self.server else {
            let added = self
                .store
                .add(&Self::owner(index), vec![NewMemory::new(text, "locomo")])
                .await
                .expect("add");
            return added[0].id;
        };
        let result = call(
            server,
            &fixture.tokens[index],
            "add_memories",
            json!({"text": text}),
        )
        .await;
        result["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("memory id")
    }

    async fn search(&self, index: usize, question: &str) -> Vec<MemoryId> {
        let Some((server, fixture)) = &self.server else {
            let query = SearchQuery::new(question).with_limit(10);
            let hits = self
                .store
                .search(&Self::owner(index), &query)
                .await
                .expect("search");
            return hits.iter().map(|hit| hit.memory.id).collect();
        };
        let arguments = json!({"query": question, "limit": 10});
        let result = call(server, &fixture.tokens[index], "search_memory", arguments).await;
        result["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|hit| hit["id"].as_str().expect("id").parse().expect("memory id"))
            .collect()
    }
}

/// One MCP `tools/call` to the server; the tool's structured result (panics on any error).
async fn call<S: MemoryStore>(
    server: &MemoryServer<S>,
    token: &str,
    tool: &str,
    arguments: Value,
) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}});
    let request = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = server.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(
        status.is_success(),
        "{tool}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let answer: Value = serde_json::from_slice(&body).expect("JSON-RPC answer");
    let result = &answer["result"];
    assert!(
        answer.get("error").is_none() && result["isError"] != true,
        "{tool} failed: {answer}"
    );
    result["structuredContent"].clone()
}

fn parse(bytes: &[u8]) -> Vec<Conversation> {
    let data: Value = serde_json::from_slice(bytes).expect("LoCoMo JSON");
    let mut conversations = Vec::new();
    for sample in data.as_array().expect("array of conversations") {
        let sessions = sample["conversation"].as_object().expect("conversation");
        let mut numbers: Vec<u32> = sessions
            .keys()
            .filter_map(|key| key.strip_prefix("session_")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        let mut turns = Vec::new();
        for number in numbers {
            let date = sessions
                .get(&format!("session_{number}_date_time"))
                .and_then(Value::as_str)
                .unwrap_or("");
            for turn in sessions[&format!("session_{number}")]
                .as_array()
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(speaker), Some(text)) = (
                    turn["dia_id"].as_str(),
                    turn["speaker"].as_str(),
                    turn["text"].as_str(),
                ) else {
                    continue;
                };
                let memory = match std::env::var("RECALL_FORMAT").as_deref() {
                    Ok("text") => text.to_owned(),
                    Ok("speaker") => format!("{speaker}: {text}"),
                    _ => format!("[{date}] {speaker}: {text}"),
                };
                turns.push((id.to_owned(), number, memory));
            }
        }
        let questions = sample["qa"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|qa| {
                let evidence: HashSet<String> = qa["evidence"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .flat_map(|e| e.split([';', ',', ' ']))
                    .map(str::trim)
                    .filter(|e| e.starts_with('D'))
                    .map(str::to_owned)
                    .collect();
                (!evidence.is_empty()).then(|| Question {
                    text: qa["question"].as_str().unwrap_or_default().to_owned(),
                    category: qa["category"].as_u64().unwrap_or(0),
                    evidence,
                })
            })
            .collect();
        conversations.push(Conversation { turns, questions });
    }
    conversations
}

/// A store clock the evaluation sets (and moves back between conversations, which a
/// `ManualClock` cannot): Unix milliseconds. The store reads only wall time.
struct SetClock(Arc<AtomicI64>);

impl jwks_verify::Clock for SetClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    fn unix_time(&self) -> u64 {
        self.unix_time_ms() / 1000
    }

    fn unix_time_ms(&self) -> u64 {
        u64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// The store clock's first reading.
const START_MS: i64 = 1_700_000_000_000;

/// Recall per (conversation index, category).
async fn evaluate(
    conversations: &[Conversation],
    params: SearchParams,
    through: Through,
) -> BTreeMap<(usize, u64), Recall> {
    let dir = tempfile::tempdir().expect("temp dir");
    // By default every memory is written now, in one burst, as through the server. With
    // RECALL_TIMING=sessions the store's clock puts each LoCoMo session a day after the
    // previous one and its turns 30 s apart, as a person chatting over weeks would write.
    let sessions = std::env::var("RECALL_TIMING").is_ok_and(|t| t == "sessions");
    let now = Arc::new(AtomicI64::new(START_MS));
    let mut options = SqliteOptions::new().with_search_params(params);
    if sessions {
        let clock = Arc::clone(&now);
        options = options.with_clock(SetClock(clock));
    }
    let store =
        SqliteStore::open_with_options(dir.path().join("memories.db"), options).expect("store");
    run(conversations, &Backend::new(store, through), &now).await
}

/// Adds each conversation's turns as its user's memories, asks its questions, and
/// measures recall.
async fn run<S: MemoryStore>(
    conversations: &[Conversation],
    backend: &Backend<S>,
    now: &AtomicI64,
) -> BTreeMap<(usize, u64), Recall> {
    let mut per = BTreeMap::new();
    for (index, conversation) in conversations.iter().enumerate() {
        let mut by_memory: HashMap<MemoryId, String> = HashMap::new();
        for (turn, (id, session, text)) in conversation.turns.iter().enumerate() {
            let day = 24 * 60 * 60 * 1000;
            now.store(
                1_700_000_000_000 + i64::from(*session) * day + turn as i64 * 30_000,
                Ordering::Relaxed,
            );
            let added = backend.add(index, text).await;
            by_memory.insert(added, id.clone());
        }
        for question in &conversation.questions {
            let hits = backend.search(index, &question.text).await;
            let found: Vec<&String> = hits.iter().filter_map(|id| by_memory.get(id)).collect();
            let share = |k: usize| {
                let top: HashSet<&String> = found.iter().take(k).copied().collect();
                question.evidence.iter().filter(|e| top.contains(e)).count() as f64
                    / question.evidence.len() as f64
            };
            per.entry((index, question.category))
                .or_insert_with(Recall::default)
                .add(Recall {
                    questions: 1,
                    at5: share(5),
                    at10: share(10),
                    hits_returned: hits.len() as u64,
                });
        }
    }
    per
}

fn report(name: &str, params: &SearchParams, per: &BTreeMap<(usize, u64), Recall>) {
    println!("\n== LoCoMo recall: {name} ==\n{params:?}");
    let group = |conversations: std::ops::Range<usize>, category: Option<u64>| {
        let mut sum = Recall::default();
        for ((index, cat), recall) in per {
            if conversations.contains(index) && category.is_none_or(|c| c == *cat) {
                sum.add(*recall);
            }
        }
        sum
    };
    println!("| questions | group | R@5 | R@10 | hits per query |");
    println!("|---|---|---|---|---|");
    let rows: Vec<(String, Recall)> = [
        ("all conversations".to_owned(), group(0..10, None)),
        ("tuning (1-5)".to_owned(), group(0..5, None)),
        ("held out (6-10)".to_owned(), group(5..10, None)),
    ]
    .into_iter()
    .chain((1..=5).map(|c| (format!("category {c}"), group(0..10, Some(c)))))
    .collect();
    for (label, recall) in rows {
        let (at5, at10) = recall.percent();
        println!(
            "| {} | {label} | {at5:.1} | {at10:.1} | {:.1} |",
            recall.questions,
            recall.hits_returned as f64 / f64::from(recall.questions.max(1))
        );
    }
}

/// Ranking parameters from `RECALL_PARAMS`, over the defaults.
fn params_from_env() -> SearchParams {
    let mut params = SearchParams::default();
    let Ok(spec) = std::env::var("RECALL_PARAMS") else {
        return params;
    };
    let (mut near, mut far, mut third) =
        (params.near_weight, params.far_weight, params.third_weight);
    let (mut own_b, mut neighbour_b) = (params.own_b, params.neighbour_b);
    for pair in spec.split(',').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').expect("key=value");
        let value: f32 = value.parse().expect("a number");
        match key {
            "k1" => params = params.with_k1(value),
            "own_b" => own_b = value,
            "neighbour_b" => neighbour_b = value,
            "near" => near = value,
            "far" => far = value,
            "third" => third = value,
            "min_relevance" => params = params.with_min_relevance(value),
            "context_floor" => params = params.with_context_floor(value),
            "burst_gap_ms" => params = params.with_burst_gap_ms(value as i64),
            "related" => params = params.with_related_weight(value),
            other => panic!("unknown parameter {other}"),
        }
    }
    params
        .with_context_weights(near, far, third)
        .with_b(own_b, neighbour_b)
}
