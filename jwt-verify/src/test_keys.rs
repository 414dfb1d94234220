//! Test-only key material and token minting.

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

use crate::base64url;

fn key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate(KeySize::Rsa2048).expect("generate rsa key"))
}

/// The test key as a public JWK with `kid`.
pub(crate) fn rsa_jwk(kid: &str) -> serde_json::Value {
    let public = key().public_key();
    serde_json::json!({
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        "n": base64url::encode(public.modulus().big_endian_without_leading_zero()),
        "e": base64url::encode(public.exponent().big_endian_without_leading_zero()),
    })
}

pub(crate) fn jwks(keys: &[serde_json::Value]) -> String {
    serde_json::json!({ "keys": keys }).to_string()
}

/// Signs `header.claims` with the test key (RS256).
pub(crate) fn sign(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        base64url::encode(header.to_string().as_bytes()),
        base64url::encode(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; key().public_modulus_len()];
    key()
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
    format!("{input}.{}", base64url::encode(&sig))
}
