//! An RSA-2048 key and a set of distinct RS256 access tokens shaped like real ones.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The issuer in every token.
pub const ISSUER: &str = "https://auth.example.com";
/// The audience in every token.
pub const AUDIENCE: &str = "https://mcp.example.com/mcp";
/// How many distinct tokens the fixture holds.
pub const TOKENS: usize = 512;
/// The `kid` of the key.
pub const KID: &str = "bench-key-1";

/// A key pair and [`TOKENS`] distinct tokens signed with it.
pub struct Fixture {
    key: KeyPair,
    /// The tokens, all valid for an hour from creation.
    pub tokens: Vec<String>,
}

impl Fixture {
    /// Generates the key and signs the tokens.
    ///
    /// # Panics
    /// If key generation or signing fails (a broken crypto library; nothing to measure).
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let key = KeyPair::generate(KeySize::Rsa2048).expect("generate rsa-2048");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": KID});
        let tokens = (0..TOKENS)
            .map(|i| {
                let claims = serde_json::json!({
                    "iss": ISSUER,
                    "sub": format!("user-{i:06}"),
                    "aud": AUDIENCE,
                    "exp": now + 3600,
                    "iat": now,
                    "scope": "openid memories:read memories:write",
                });
                sign(&key, &header.to_string(), &claims.to_string())
            })
            .collect();
        Fixture { key, tokens }
    }

    /// The public key as a JWK Set document.
    pub fn jwks(&self) -> String {
        serde_json::json!({"keys": [{
            "kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig",
            "n": self.jwk_n(), "e": self.jwk_e(),
        }]})
        .to_string()
    }

    /// The modulus, big-endian without leading zeros.
    pub fn modulus(&self) -> Vec<u8> {
        self.key
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// The public exponent, big-endian without leading zeros.
    pub fn exponent(&self) -> Vec<u8> {
        self.key
            .public_key()
            .exponent()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// The modulus as JWK `n`.
    pub fn jwk_n(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.modulus())
    }

    /// The exponent as JWK `e`.
    pub fn jwk_e(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.exponent())
    }

    /// Signs `claims` under `header` (both JSON text) with the fixture's key (RS256).
    pub fn sign(&self, header: &str, claims: &str) -> String {
        sign(&self.key, header, claims)
    }

    /// Each token's signing input and decoded signature: what a raw verify consumes.
    ///
    /// # Panics
    /// If a token is not three segments (the fixture made them, so it never happens).
    #[allow(clippy::expect_used)]
    pub fn raw_inputs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.tokens
            .iter()
            .map(|t| {
                let (input, sig) = t.rsplit_once('.').expect("three segments");
                (
                    input.as_bytes().to_vec(),
                    URL_SAFE_NO_PAD.decode(sig).expect("base64url"),
                )
            })
            .collect()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(clippy::expect_used)]
fn sign(key: &KeyPair, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
