//! Token issuance: signing and encoding an RFC 9068 access token with `oidc-core`, against a
//! raw aws-lc-rs RSA-2048 PKCS#1 v1.5 signature with a pre-parsed key, in the same run.
//!
//! Run with: `cargo bench -p benches --bench issue`

// A benchmark harness: any failure should stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation
)]

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use criterion::{Criterion, Throughput};
use oidc_core::jwt::{AccessTokenClaims, encode_access_token};
use oidc_core::keys::{KeySize, SigningKey};
use oidc_core::types::{ClientId, Issuer, ResourceIndicator, Scope, Subject};

use benches::paired;
use benches::report::{self, Row};

#[allow(clippy::expect_used)]
fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .output_directory(&report::criterion_dir())
        .configure_from_args();

    let key = SigningKey::generate(KeySize::Rsa2048).expect("generate");
    let raw =
        KeyPair::from_pkcs8(key.to_pkcs8_der().expect("export").secret_der()).expect("import");
    let now = 1_800_000_000;
    let claims = AccessTokenClaims {
        iss: Issuer::parse("https://auth.example.com").expect("issuer"),
        sub: Subject::parse("Zb3x0Kp1vQq4n9hWc2JtY8sLr6dFgA5mNeUoIiTyRw0").expect("subject"),
        aud: ResourceIndicator::parse("https://mcp.example.com/mcp").expect("resource"),
        client_id: ClientId::parse("https://chatgpt.com/oauth/client.json").expect("client"),
        iat: now,
        exp: now + 3600,
        jti: "h3Yw8QvN2kLm5pR7sT9uXa".to_owned(),
        scope: Scope::parse("openid email memories:read memories:write").expect("scope"),
    };
    let token = encode_access_token(&key, &claims).expect("encode");
    let signing_input = token
        .rsplit_once('.')
        .map(|(input, _)| input.to_owned())
        .expect("jws");

    let mut group = c.benchmark_group("issue");
    group.throughput(Throughput::Elements(1));
    let rng = SystemRandom::new();
    let signature = RefCell::new(vec![0u8; raw.public_modulus_len()]);
    let raw_sign = || {
        raw.sign(
            &RSA_PKCS1_SHA256,
            &rng,
            black_box(signing_input.as_bytes()),
            &mut signature.borrow_mut(),
        )
        .expect("sign");
    };
    group.bench_function("raw_aws_lc_rs_sign", |b| b.iter(raw_sign));
    group.bench_function("oidc_core_access_token", |b| {
        b.iter(|| encode_access_token(&key, black_box(&claims)).expect("encode"));
    });
    group.finish();
    c.final_summary();

    let paired = report::selected("issue/paired/access_token_vs_raw_sign").then(|| {
        // RSA-2048 signing takes about 0.25 ms: 40 rounds of two 50-operation blocks.
        paired::measure(
            40,
            || paired::per_op(50, 0, |_| raw_sign()),
            || {
                paired::per_op(50, 0, |_| {
                    black_box(encode_access_token(&key, black_box(&claims)).expect("encode"));
                })
            },
        )
    });

    report::print(
        "Access-token issuance (ratio measured in this run)",
        &[
            Row::paired(
                "oidc-core sign+encode access token / raw aws-lc-rs RSA-2048 sign (paired)",
                paired,
                0.9,
            ),
            Row::ratio(
                "oidc-core sign+encode access token / raw aws-lc-rs sign (criterion)",
                ("issue", "oidc_core_access_token"),
                ("issue", "raw_aws_lc_rs_sign"),
                0.0,
            ),
            Row::throughput(
                "oidc-core access tokens per second per core",
                ("issue", "oidc_core_access_token"),
                0.0,
            ),
        ],
    );
}
