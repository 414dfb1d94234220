//! RS256 bearer-token verification: `jwks-verify` against raw aws-lc-rs and `jsonwebtoken`,
//! all measured in this process, then printed as ratios.
//!
//! Run with: `cargo bench -p benches --bench verify`
//! (add `-- <filter>` to run a subset; the ratio table covers what ran).

// A benchmark harness: any failure should stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation
)]

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use std::io::Write as _;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput};
use http::{Request, Response};
use jwks_verify::jwks::{BoxFuture, FetchError, FetchRequest, HttpFetcher};
use jwks_verify::status_list::StatusListConfig;
use jwks_verify::{BearerAuthLayer, Policy, StandardClaims, TypPolicy, Verifier};
use tower::{Layer, Service, service_fn};

use benches::fixture::{AUDIENCE, Fixture, ISSUER, KID, TOKENS};
use benches::paired::{self, Paired};
use benches::report::{self, Row};

fn main() {
    let fixture = Fixture::new();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&report::criterion_dir())
        .configure_from_args();

    let status = StatusFixture::new(&fixture);
    single_thread(&mut c, &fixture);
    tower_layer(&mut c, &fixture);
    status_check(&mut c, &status);
    c.final_summary();
    let paired = PairedRatios::measure(&fixture);
    let status_paired = StatusRatios::measure(&status);

    report::print(
        "RS256 verification (ratios measured in this run)",
        &[
            Row::paired(
                "jwks-verify distinct tokens / raw aws-lc-rs verify (paired)",
                paired.distinct_vs_raw,
                0.95,
            ),
            // Informational: with the cache on, every request also hashes the whole token
            // (SHA-256, about 0.4 us for a 640-byte token) to look it up.
            Row::paired(
                "jwks-verify distinct tokens, token cache on (all misses) / raw (paired)",
                paired.cache_misses_vs_raw,
                0.0,
            ),
            Row::paired(
                "jwks-verify distinct tokens / jsonwebtoken 11 decode (paired)",
                paired.distinct_vs_jsonwebtoken,
                1.2,
            ),
            Row::ratio(
                "jwks-verify distinct tokens / raw aws-lc-rs verify (criterion)",
                ("verify", "jwks_verify_distinct"),
                ("verify", "raw_aws_lc_rs"),
                0.0,
            ),
            Row::ratio(
                "jwks-verify distinct tokens / jsonwebtoken 11 decode (criterion)",
                ("verify", "jwks_verify_distinct"),
                ("verify", "jsonwebtoken_decode"),
                0.0,
            ),
            Row::throughput(
                "jwks-verify same token (verified-token cache hit)",
                ("verify", "jwks_verify_cache_hit"),
                2_000_000.0,
            ),
            Row::paired(
                "jwks-verify 2 threads / 1 thread, distinct tokens (paired)",
                paired.two_threads_distinct,
                1.85,
            ),
            Row::paired(
                "jwks-verify 2 threads / 1 thread, cache hits (paired)",
                paired.two_threads_cache_hit,
                1.85,
            ),
            Row::paired(
                "raw aws-lc-rs 2 threads / 1 thread (paired; what the machine allows)",
                paired.two_threads_raw,
                0.0,
            ),
            Row::overhead(
                "tower layer overhead per request (cache hit)",
                ("tower", "layer_cache_hit"),
                ("tower", "bare_service"),
            ),
            Row::overhead(
                "tower layer overhead per request (full verify)",
                ("tower", "layer_full_verify"),
                ("tower", "bare_service"),
            ),
            // Targets: the status check costs at most 2% of a verification.
            Row::paired(
                "status list check on / off, distinct tokens (paired)",
                status_paired.distinct,
                0.98,
            ),
            Row::paired(
                "status list check on / off, verified-token cache hits (paired)",
                status_paired.cache_hit,
                0.98,
            ),
            Row::ratio(
                "status list check on / off, distinct tokens (criterion)",
                ("status", "on_distinct"),
                ("status", "off_distinct"),
                0.0,
            ),
            Row::ratio(
                "status list check on / off, cache hits (criterion)",
                ("status", "on_cache_hit"),
                ("status", "off_cache_hit"),
                0.0,
            ),
            Row::overhead(
                "status list check per cache hit",
                ("status", "on_cache_hit"),
                ("status", "off_cache_hit"),
            ),
        ],
    );
}

const STATUS_LIST_URI: &str = "https://auth.example.com/statuslists/1";

/// Tokens carrying a `status` claim, and verifiers with the status check on (list loaded)
/// and off. The tokio runtime drives the list's refresh task.
struct StatusFixture {
    tokens: Vec<String>,
    on: Verifier,
    off: Verifier,
    on_cached: Verifier,
    off_cached: Verifier,
    _runtime: tokio::runtime::Runtime,
}

/// Serves one status list token (all statuses VALID) for every fetch.
struct OneList(String);

impl HttpFetcher for OneList {
    fn get(
        &self,
        _request: FetchRequest,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
        let body = self.0.clone().into_bytes();
        Box::pin(async move {
            Ok(http::Response::builder()
                .header("content-type", "application/statuslist+jwt")
                .body(body)
                .expect("response"))
        })
    }
}

impl StatusFixture {
    fn new(fixture: &Fixture) -> StatusFixture {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": KID}).to_string();
        let tokens: Vec<String> = (0..TOKENS)
            .map(|i| {
                let claims = serde_json::json!({
                    "iss": ISSUER,
                    "sub": format!("user-{i:06}"),
                    "aud": AUDIENCE,
                    "exp": now + 3600,
                    "iat": now,
                    "scope": "openid memories:read memories:write",
                    "status": {"status_list": {"idx": i * 37, "uri": STATUS_LIST_URI}},
                });
                fixture.sign(&header, &claims.to_string())
            })
            .collect();
        // 1 bit per token, 2^17 tokens: a realistic list, all VALID.
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[0u8; 16 * 1024]).expect("compress");
        let lst = URL_SAFE_NO_PAD.encode(encoder.finish().expect("compress"));
        let list_token = fixture.sign(
            &serde_json::json!({"alg": "RS256", "typ": "statuslist+jwt", "kid": KID}).to_string(),
            &serde_json::json!({
                "iss": ISSUER, "sub": STATUS_LIST_URI, "iat": now, "exp": now + 7200,
                "ttl": 3600, "status_list": {"bits": 1, "lst": lst},
            })
            .to_string(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (on, off, on_cached, off_cached) = {
            let _entered = runtime.enter();
            let build = |status: bool, entries: usize| {
                let mut builder =
                    Verifier::builder(Policy::new(ISSUER, AUDIENCE).typ(TypPolicy::AccessToken))
                        .static_jwks(fixture.jwks())
                        .token_cache_entries(entries);
                if status {
                    builder = builder
                        .http_fetcher(OneList(list_token.clone()))
                        .status_lists(StatusListConfig::new().max_age(Duration::from_secs(3600)));
                }
                let verifier = builder.build().expect("verifier");
                // Warm: the first token waits for the list.
                runtime
                    .block_on(verifier.verify::<StandardClaims>(&tokens[0]))
                    .expect("valid");
                verifier
            };
            (
                build(true, 0),
                build(false, 0),
                build(true, 4096),
                build(false, 4096),
            )
        };
        StatusFixture {
            tokens,
            on,
            off,
            on_cached,
            off_cached,
            _runtime: runtime,
        }
    }
}

fn status_check(c: &mut Criterion, status: &StatusFixture) {
    let mut group = c.benchmark_group("status");
    group.throughput(Throughput::Elements(1));
    for (name, verifier) in [("off_distinct", &status.off), ("on_distinct", &status.on)] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                let token = &status.tokens[i % TOKENS];
                i += 1;
                verifier
                    .try_verify::<StandardClaims>(black_box(token))
                    .expect("valid")
            });
        });
    }
    for (name, verifier) in [
        ("off_cache_hit", &status.off_cached),
        ("on_cache_hit", &status.on_cached),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                verifier
                    .try_verify::<StandardClaims>(black_box(&status.tokens[0]))
                    .expect("valid")
            });
        });
    }
    group.finish();
}

/// The status-check ratios, each from a paired measurement.
struct StatusRatios {
    distinct: Option<Paired>,
    cache_hit: Option<Paired>,
}

impl StatusRatios {
    fn measure(status: &StatusFixture) -> StatusRatios {
        let verify_with = |verifier: &Verifier, i: u64| {
            verifier
                .try_verify::<StandardClaims>(black_box(&status.tokens[i as usize % TOKENS]))
                .expect("valid");
        };
        let offset = Cell::new(0u64);
        let block = |ops: u64, op: &dyn Fn(u64)| {
            offset.set(offset.get().wrapping_add(ops));
            paired::per_op(ops, offset.get(), op)
        };
        StatusRatios {
            distinct: run(
                "status/paired/distinct",
                || block(PairedRatios::RSA_OPS, &|i| verify_with(&status.off, i)),
                || block(PairedRatios::RSA_OPS, &|i| verify_with(&status.on, i)),
            ),
            cache_hit: run(
                "status/paired/cache_hit",
                || {
                    block(PairedRatios::HIT_OPS, &|_| {
                        verify_with(&status.off_cached, 0);
                    })
                },
                || {
                    block(PairedRatios::HIT_OPS, &|_| {
                        verify_with(&status.on_cached, 0);
                    })
                },
            ),
        }
    }
}

/// The ratios with targets, each from a paired measurement (see `benches::paired`).
struct PairedRatios {
    distinct_vs_raw: Option<Paired>,
    cache_misses_vs_raw: Option<Paired>,
    distinct_vs_jsonwebtoken: Option<Paired>,
    two_threads_distinct: Option<Paired>,
    two_threads_cache_hit: Option<Paired>,
    two_threads_raw: Option<Paired>,
}

impl PairedRatios {
    /// Rounds per ratio, and operations per block: RSA blocks take about 50 ms, cache-hit
    /// blocks about as long.
    const ROUNDS: usize = 40;
    const RSA_OPS: u64 = 3_000;
    const HIT_OPS: u64 = 100_000;

    fn measure(fixture: &Fixture) -> PairedRatios {
        let key = raw_key(fixture);
        let raw = fixture.raw_inputs();
        let plain = verifier(fixture, 0);
        let small_cache = verifier(fixture, 16);
        let cached = verifier(fixture, 4096);
        let (decoding_key, validation) = jsonwebtoken_setup(fixture);

        let raw_verify = |i: u64| {
            let (message, signature) = &raw[i as usize % TOKENS];
            key.verify_sig(black_box(message), black_box(signature))
                .expect("valid");
        };
        let verify_with = |verifier: &Verifier, i: u64| {
            verifier
                .try_verify::<StandardClaims>(black_box(&fixture.tokens[i as usize % TOKENS]))
                .expect("valid");
        };
        let jsonwebtoken = |i: u64| {
            jsonwebtoken::decode::<JsonwebtokenClaims>(
                black_box(&fixture.tokens[i as usize % TOKENS]),
                &decoding_key,
                &validation,
            )
            .expect("valid");
        };
        // Each block starts where the last one ended, so tokens keep changing.
        let offset = Cell::new(0u64);
        let block = |ops: u64, op: &dyn Fn(u64)| {
            offset.set(offset.get().wrapping_add(ops));
            paired::per_op(ops, offset.get(), op)
        };
        // Per-operation time of `ops` operations spread over `threads` threads.
        let threaded = |threads: usize, ops: u64, op: &(dyn Fn(usize, u64) + Sync)| {
            #[allow(clippy::cast_precision_loss)] // block sizes are far below 2^52
            let ns = timed_on_threads(threads, ops, op).as_nanos() as f64 / ops as f64;
            ns
        };

        PairedRatios {
            distinct_vs_raw: run(
                "verify/paired/distinct_vs_raw",
                || block(Self::RSA_OPS, &raw_verify),
                || block(Self::RSA_OPS, &|i| verify_with(&plain, i)),
            ),
            cache_misses_vs_raw: run(
                "verify/paired/cache_misses_vs_raw",
                || block(Self::RSA_OPS, &raw_verify),
                || block(Self::RSA_OPS, &|i| verify_with(&small_cache, i)),
            ),
            distinct_vs_jsonwebtoken: run(
                "verify/paired/distinct_vs_jsonwebtoken",
                || block(Self::RSA_OPS, &jsonwebtoken),
                || block(Self::RSA_OPS, &|i| verify_with(&plain, i)),
            ),
            two_threads_distinct: run(
                "two_threads/paired/distinct",
                || threaded(1, Self::RSA_OPS, &|t, i| verify_with(&plain, spread(t, i))),
                || threaded(2, Self::RSA_OPS, &|t, i| verify_with(&plain, spread(t, i))),
            ),
            // One hot token per thread: the steady state of a busy client.
            two_threads_cache_hit: run(
                "two_threads/paired/cache_hit",
                || threaded(1, Self::HIT_OPS, &|t, _| verify_with(&cached, t as u64)),
                || threaded(2, Self::HIT_OPS, &|t, _| verify_with(&cached, t as u64)),
            ),
            two_threads_raw: run(
                "two_threads/paired/raw",
                || threaded(1, Self::RSA_OPS, &|t, i| raw_verify(spread(t, i))),
                || threaded(2, Self::RSA_OPS, &|t, i| raw_verify(spread(t, i))),
            ),
        }
    }
}

/// A paired measurement named `name`, if the command line selects it.
#[allow(clippy::print_stdout)]
fn run(name: &str, baseline: impl FnMut() -> f64, subject: impl FnMut() -> f64) -> Option<Paired> {
    report::selected(name).then(|| {
        println!("paired: {name} ({} rounds)", PairedRatios::ROUNDS);
        paired::measure(PairedRatios::ROUNDS, baseline, subject)
    })
}

/// Token index for operation `i` on thread `t`: threads walk the tokens from different places.
fn spread(t: usize, i: u64) -> u64 {
    (t as u64).wrapping_mul(7919).wrapping_add(i)
}

/// `jsonwebtoken` set up to check what `jwks-verify`'s policy checks.
fn jsonwebtoken_setup(fixture: &Fixture) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Validation) {
    let decoding_key =
        jsonwebtoken::DecodingKey::from_rsa_components(&fixture.jwk_n(), &fixture.jwk_e())
            .expect("jsonwebtoken key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    (decoding_key, validation)
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct JsonwebtokenClaims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    scope: String,
}

fn verifier(fixture: &Fixture, token_cache_entries: usize) -> Verifier {
    Verifier::builder(Policy::new(ISSUER, AUDIENCE).typ(TypPolicy::AccessToken))
        .static_jwks(fixture.jwks())
        .token_cache_entries(token_cache_entries)
        .build()
        .expect("static verifier")
}

fn raw_key(fixture: &Fixture) -> ParsedPublicKey {
    RsaPublicKeyComponents {
        n: fixture.modulus(),
        e: fixture.exponent(),
    }
    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
    .expect("parse key")
}

fn single_thread(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));

    let key = raw_key(fixture);
    let raw = fixture.raw_inputs();
    group.bench_function("raw_aws_lc_rs", |b| {
        let mut i = 0;
        b.iter(|| {
            let (message, signature) = &raw[i % TOKENS];
            i += 1;
            key.verify_sig(black_box(message), black_box(signature))
                .expect("valid");
        });
    });

    let plain = verifier(fixture, 0);
    group.bench_function("jwks_verify_distinct", |b| {
        let mut i = 0;
        b.iter(|| {
            let token = &fixture.tokens[i % TOKENS];
            i += 1;
            plain
                .try_verify::<StandardClaims>(black_box(token))
                .expect("valid")
        });
    });

    let small_cache = verifier(fixture, 16);
    group.bench_function("jwks_verify_distinct_cache_misses", |b| {
        let mut i = 0;
        b.iter(|| {
            let token = &fixture.tokens[i % TOKENS];
            i += 1;
            small_cache
                .try_verify::<StandardClaims>(black_box(token))
                .expect("valid")
        });
    });

    let cached = verifier(fixture, 4096);
    let token = &fixture.tokens[0];
    group.bench_function("jwks_verify_cache_hit", |b| {
        b.iter(|| {
            cached
                .try_verify::<StandardClaims>(black_box(token))
                .expect("valid")
        });
    });

    let (decoding_key, validation) = jsonwebtoken_setup(fixture);
    group.bench_function("jsonwebtoken_decode", |b| {
        let mut i = 0;
        b.iter(|| {
            let token = &fixture.tokens[i % TOKENS];
            i += 1;
            jsonwebtoken::decode::<JsonwebtokenClaims>(black_box(token), &decoding_key, &validation)
                .expect("valid")
        });
    });
    group.finish();
}

/// Runs `op(thread, i)` `iters` times in total, split over `threads` threads started together.
fn timed_on_threads(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let per_thread = iters.div_ceil(threads as u64);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    op(t, i);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// Polls a future that is expected to be ready at once (no runtime involved).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("future was not ready"),
    }
}

fn tower_layer(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("tower");
    group.throughput(Throughput::Elements(1));
    let trivial = service_fn(|_req: Request<()>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(
            String::new(),
        )))
    });
    let bearer = Arc::new(format!("Bearer {}", fixture.tokens[0]));
    let request = |auth: &str| {
        Request::get("/mcp")
            .header("authorization", auth)
            .body(())
            .expect("request")
    };

    let mut bare = trivial;
    group.bench_function("bare_service", |b| {
        b.iter(|| ready(bare.call(request(black_box(&bearer)))).expect("ok"));
    });

    let mut cached = BearerAuthLayer::<StandardClaims>::new(verifier(fixture, 4096)).layer(trivial);
    group.bench_function("layer_cache_hit", |b| {
        b.iter(|| {
            let response = ready(cached.call(request(black_box(&bearer)))).expect("ok");
            assert_eq!(response.status(), 200);
        });
    });

    let mut full = BearerAuthLayer::<StandardClaims>::new(verifier(fixture, 0)).layer(trivial);
    let bearers: Vec<String> = fixture
        .tokens
        .iter()
        .map(|t| format!("Bearer {t}"))
        .collect();
    group.bench_function("layer_full_verify", |b| {
        let mut i = 0;
        b.iter(|| {
            let auth = &bearers[i % TOKENS];
            i += 1;
            let response = ready(full.call(request(black_box(auth)))).expect("ok");
            assert_eq!(response.status(), 200);
        });
    });
    group.finish();
}
