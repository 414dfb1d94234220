//! The memory service: full-text search latency as the store grows (10,000 and 100,000
//! memories of one user), and authenticated REST and MCP `tools/call` requests per second
//! over loopback, against the same routes without the auth layer, in the same run.
//!
//! Run with: `cargo bench -p benches --bench memory`
//!
//! Memory texts and queries come from the LoCoMo conversations in `../shared/data` when that
//! file is present (CC BY-NC 4.0, used for evaluation only and never copied into the
//! repository), otherwise from generated sentences.

// A benchmark harness: any failure should stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jwks_verify::{BearerAuthLayer, Verified, Verifier};
use mcp_api::http::ResponseBody;
use mcp_api::mcp::{McpConfig, McpService};
use mcp_api::rest::RestApi;
use mcp_api::server::access_token_policy;
use mcp_api::{
    AccessClaims, Limits, MemoryStore, NewMemory, Owner, ProtectedResource, SearchQuery,
    SqliteStore,
};
use tower::{Layer, Service, ServiceExt};

use benches::fixture::{AUDIENCE, Fixture, ISSUER};

const BASE_URL: &str = "https://mcp.example.com";

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
    let corpus = Corpus::load();
    println!(
        "corpus: {} texts, {} queries ({})",
        corpus.texts.len(),
        corpus.queries.len(),
        corpus.source
    );
    runtime.block_on(async {
        search_latency(&corpus, scale).await;
        requests_per_second(&corpus, scale).await;
    });
}

/// How much work a run does.
#[derive(Clone, Copy)]
struct Scale {
    sizes: [usize; 2],
    others: usize,
    window: Duration,
}

impl Scale {
    const FULL: Scale = Scale {
        sizes: [10_000, 100_000],
        others: 5_000,
        window: Duration::from_secs(4),
    };
    const SMOKE: Scale = Scale {
        sizes: [200, 400],
        others: 100,
        window: Duration::from_millis(200),
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
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/locomo10.json");
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
        let queries = (0..200)
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
                for (name, turns) in sessions {
                    if !name.starts_with("session_") || name.ends_with("date_time") {
                        continue;
                    }
                    for turn in turns.as_array().into_iter().flatten() {
                        if let Some(text) = turn["text"].as_str() {
                            texts.push(text.to_owned());
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
        queries.truncate(300);
        (!texts.is_empty() && !queries.is_empty()).then_some(Corpus {
            texts,
            queries,
            source: "LoCoMo (shared/data/locomo10.json)",
        })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((last as f64) * p).round() as usize;
    sorted[index.min(last)]
}

#[allow(clippy::print_stdout, clippy::expect_used)]
async fn search_latency(corpus: &Corpus, scale: Scale) {
    println!("\n== search latency: one user's memories, other users present ==");
    println!(
        "{:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
        "memories", "p50", "p95", "p99", "insert/s"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("bench.db"), Limits::default()).expect("store");
    let alice = Owner::new("alice").expect("owner");
    let mut stored = 0usize;
    // Other users' data, so owner scoping is part of what is measured.
    for other in 0..4 {
        let owner = Owner::new(format!("other-{other}")).expect("owner");
        add(&store, &owner, corpus, 0, scale.others).await;
    }
    for target in scale.sizes {
        let started = Instant::now();
        add(&store, &alice, corpus, stored, target - stored).await;
        #[allow(clippy::cast_precision_loss)]
        let insert_rate = (target - stored) as f64 / started.elapsed().as_secs_f64();
        stored = target;
        let mut latencies = Vec::with_capacity(corpus.queries.len() * 3);
        for _ in 0..3 {
            for query in &corpus.queries {
                let started = Instant::now();
                let hits = store
                    .search(&alice, &SearchQuery::new(query.as_str()))
                    .await
                    .expect("search");
                latencies.push(started.elapsed());
                std::hint::black_box(hits);
            }
        }
        latencies.sort_unstable();
        println!(
            "{target:>9}  {:>9.2?}  {:>9.2?}  {:>9.2?}  {insert_rate:>9.0}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99)
        );
    }
}

#[allow(clippy::expect_used)]
async fn add(store: &SqliteStore, owner: &Owner, corpus: &Corpus, offset: usize, count: usize) {
    let mut done = 0;
    while done < count {
        let batch: Vec<NewMemory> = (done..count.min(done + 100))
            .map(|i| {
                let n = offset + i;
                let text = &corpus.texts[n % corpus.texts.len()];
                NewMemory::new(format!("{text} (#{n})"), "bench")
            })
            .collect();
        done += batch.len();
        store.add(owner, batch).await.expect("add");
    }
}

/// Inserts already-verified claims: the same routes, without the auth layer.
#[derive(Clone)]
struct InsertClaims<S> {
    inner: S,
    claims: Verified<AccessClaims>,
}

impl<S, B> Service<Request<B>> for InsertClaims<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.claims.clone());
        self.inner.call(request)
    }
}

/// `/mcp` to the MCP service, everything else to the REST API.
#[derive(Clone)]
struct Routes<M, R> {
    mcp: M,
    rest: R,
}

impl<M, R, B> Service<Request<B>> for Routes<M, R>
where
    M: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    M::Future: Send,
    R: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    R::Future: Send,
    B: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/mcp") {
            Box::pin(self.mcp.clone().oneshot(request))
        } else {
            Box::pin(self.rest.clone().oneshot(request))
        }
    }
}

async fn serve<S>(service: S) -> SocketAddr
where
    S: Service<
            Request<hyper::body::Incoming>,
            Response = Response<ResponseBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Requests per second from 4 concurrent keep-alive clients for `window`.
#[allow(clippy::expect_used)]
async fn rate(
    addr: SocketAddr,
    make: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>,
    window: Duration,
) -> f64 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, make) = (client.clone(), Arc::clone(&make));
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let mut request = make();
                    let uri = format!("http://{addr}{}", request.uri());
                    *request.uri_mut() = uri.parse().expect("uri");
                    let response = client.request(request).await.expect("request");
                    assert!(
                        response.status().is_success(),
                        "status {}",
                        response.status()
                    );
                    response.into_body().collect().await.expect("body");
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
    #[allow(clippy::cast_precision_loss)]
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    per_second
}

#[allow(clippy::print_stdout, clippy::expect_used)]
async fn requests_per_second(corpus: &Corpus, scale: Scale) {
    println!(
        "\n== authenticated requests per second over loopback (4 clients), auth layer vs none =="
    );
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(SqliteStore::open(dir.path().join("rps.db"), Limits::default()).expect("store"));
    let resource = ProtectedResource::new(BASE_URL, ISSUER);
    assert_eq!(resource.resource(), AUDIENCE);
    let verifier = Verifier::builder(access_token_policy(&resource))
        .static_jwks(fixture.jwks())
        .build()
        .expect("verifier");
    let token = fixture.tokens[0].clone();
    let owner = Owner::new("user-000000").expect("owner");
    add(&store, &owner, corpus, 0, scale.others.min(2_000)).await;
    let claims = verifier
        .verify::<AccessClaims>(&token)
        .await
        .expect("token");

    let mcp = McpService::new(Arc::clone(&store), resource.clone(), McpConfig::default());
    let rest = RestApi::new(Arc::clone(&store), resource.clone());
    let auth =
        BearerAuthLayer::<AccessClaims>::new(verifier.clone()).challenge(resource.challenge());
    let with_auth = serve(Routes {
        mcp: auth.layer(mcp.clone()),
        rest: auth.layer(rest.clone()),
    })
    .await;
    let without_auth = serve(Routes {
        mcp: InsertClaims {
            inner: mcp,
            claims: claims.clone(),
        },
        rest: InsertClaims {
            inner: rest,
            claims,
        },
    })
    .await;

    let bearer = format!("Bearer {token}");
    let rest_request: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync> = {
        let bearer = bearer.clone();
        Arc::new(move || {
            Request::get("/api/v1/memories/?page=1&size=10")
                .header("authorization", &bearer)
                .body(Full::default())
                .expect("request")
        })
    };
    let mcp_request: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync> = Arc::new(move || {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "weekend plans with family"}}});
        Request::post("/mcp")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from(call.to_string())))
            .expect("request")
    });

    let window = scale.window;
    for (label, make) in [
        ("REST GET /api/v1/memories/", rest_request),
        ("MCP tools/call search", mcp_request),
    ] {
        // Interleave the two servers twice each to even out drift on a noisy machine.
        let mut with = 0.0;
        let mut without = 0.0;
        for _ in 0..2 {
            without += rate(without_auth, Arc::clone(&make), window).await;
            with += rate(with_auth, Arc::clone(&make), window).await;
        }
        let overhead = (without - with) / without * 100.0;
        println!(
            "{label:<30} with auth {:>8.0}/s   without {:>8.0}/s   auth overhead {overhead:>5.1}% (target <= 10%)",
            with / 2.0,
            without / 2.0
        );
    }
    println!("token verifications: {:?}", verifier.metrics());
}
