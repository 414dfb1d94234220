//! The examples' services over real sockets, with a static key set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jwks_verify::{Policy, Verifier};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "example-api";

fn key_and_verifier() -> (KeyPair, Verifier) {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = key.public_key();
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": "k1", "alg": "RS256",
        "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
        "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
    }]});
    let verifier = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .static_jwks(jwks.to_string())
        .build()
        .unwrap();
    (key, verifier)
}

fn token(key: &KeyPair) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = B64.encode(r#"{"alg":"RS256","kid":"k1"}"#);
    let claims = B64.encode(
        serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 60})
            .to_string(),
    );
    let input = format!("{header}.{claims}");
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", B64.encode(sig))
}

async fn get(addr: std::net::SocketAddr, bearer: Option<&str>) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = http::Request::get(format!("http://{addr}/"));
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn hyper_example_answers_the_verified_subject() {
    let (key, verifier) = key_and_verifier();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(examples::serve(listener, verifier));
    assert_eq!(get(addr, None).await.0, 401);
    assert_eq!(get(addr, Some("not.a.token")).await.0, 401);
    assert_eq!(
        get(addr, Some(&token(&key))).await,
        (200, "hello alice\n".to_owned())
    );
}

#[tokio::test]
async fn axum_example_answers_the_verified_subject() {
    let (key, verifier) = key_and_verifier();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, examples::axum_app(verifier)).await });
    assert_eq!(get(addr, None).await.0, 401);
    assert_eq!(
        get(addr, Some(&token(&key))).await,
        (200, "hello alice\n".to_owned())
    );
}
