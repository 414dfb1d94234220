//! RS256 bearer-token verification: `jwt-verify` against raw aws-lc-rs and `jsonwebtoken`,
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

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use criterion::{BenchmarkId, Criterion, Throughput};
use http::{Request, Response};
use jwt_verify::{BearerAuthLayer, Policy, StandardClaims, TypPolicy, Verifier};
use tower::{Layer, Service, service_fn};

use benches::fixture::{AUDIENCE, Fixture, ISSUER, TOKENS};
use benches::report::{self, Row};

fn main() {
    let fixture = Fixture::new();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&report::criterion_dir())
        .configure_from_args();

    single_thread(&mut c, &fixture);
    two_threads(&mut c, &fixture);
    tower_layer(&mut c, &fixture);
    c.final_summary();

    report::print(
        "RS256 verification (ratios measured in this run)",
        &[
            Row::ratio(
                "jwt-verify distinct tokens / raw aws-lc-rs verify",
                ("verify", "jwt_verify_distinct"),
                ("verify", "raw_aws_lc_rs"),
                0.95,
            ),
            Row::ratio(
                "jwt-verify distinct tokens, token cache on (misses) / raw aws-lc-rs",
                ("verify", "jwt_verify_distinct_cache_misses"),
                ("verify", "raw_aws_lc_rs"),
                0.95,
            ),
            Row::ratio(
                "jwt-verify distinct tokens / jsonwebtoken 11 decode",
                ("verify", "jwt_verify_distinct"),
                ("verify", "jsonwebtoken_decode"),
                1.2,
            ),
            Row::throughput(
                "jwt-verify same token (verified-token cache hit)",
                ("verify", "jwt_verify_cache_hit"),
                2_000_000.0,
            ),
            Row::ratio(
                "jwt-verify 2 threads / 1 thread (distinct tokens)",
                ("two_threads", "jwt_verify_distinct/2"),
                ("two_threads", "jwt_verify_distinct/1"),
                1.85,
            ),
            Row::ratio(
                "jwt-verify 2 threads / 1 thread (cache hits)",
                ("two_threads", "jwt_verify_cache_hit/2"),
                ("two_threads", "jwt_verify_cache_hit/1"),
                1.85,
            ),
            Row::ratio(
                "raw aws-lc-rs 2 threads / 1 thread",
                ("two_threads", "raw_aws_lc_rs/2"),
                ("two_threads", "raw_aws_lc_rs/1"),
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
        ],
    );
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
    group.bench_function("jwt_verify_distinct", |b| {
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
    group.bench_function("jwt_verify_distinct_cache_misses", |b| {
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
    group.bench_function("jwt_verify_cache_hit", |b| {
        b.iter(|| {
            cached
                .try_verify::<StandardClaims>(black_box(token))
                .expect("valid")
        });
    });

    let decoding_key =
        jsonwebtoken::DecodingKey::from_rsa_components(&fixture.jwk_n(), &fixture.jwk_e())
            .expect("jsonwebtoken key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
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

fn two_threads(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("two_threads");
    group.throughput(Throughput::Elements(1));
    let plain = verifier(fixture, 0);
    let cached = verifier(fixture, 4096);
    let key = raw_key(fixture);
    let raw = fixture.raw_inputs();
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("jwt_verify_distinct", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    timed_on_threads(threads, iters, &|t, i| {
                        let token = &fixture.tokens[(t * 7919 + i as usize) % TOKENS];
                        plain
                            .try_verify::<StandardClaims>(black_box(token))
                            .expect("valid");
                    })
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("jwt_verify_cache_hit", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    timed_on_threads(threads, iters, &|t, _| {
                        // One hot token per thread: the steady state of a busy client.
                        let token = &fixture.tokens[t];
                        cached
                            .try_verify::<StandardClaims>(black_box(token))
                            .expect("valid");
                    })
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("raw_aws_lc_rs", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    timed_on_threads(threads, iters, &|t, i| {
                        let (message, signature) = &raw[(t * 7919 + i as usize) % TOKENS];
                        key.verify_sig(black_box(message), black_box(signature))
                            .expect("valid");
                    })
                });
            },
        );
    }
    group.finish();
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
