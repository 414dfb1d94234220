//! RSA signing keys (aws-lc-rs) and the rotating [`KeyRing`] that publishes them.
//!
//! A [`SigningKey`] is parsed once, when it is generated or loaded, and signs RS256 with
//! the parsed key pair. Its `kid` is its RFC 7638 JWK thumbprint, so the same key has the
//! same `kid` on every replica and after every restart. Its public half is a
//! [`PublicJwk`]; the private half never leaves except through
//! [`to_pkcs8_pem`](SigningKey::to_pkcs8_pem) and [`Pkcs8Secret`], both zeroed on drop.
//!
//! The [`KeyRing`] holds the keys of one issuer and moves them through *next* (published,
//! not yet signing), *current* (signing) and *retired* (published until every token it
//! signed and every cached JWK Set has expired), driven by the `now` its caller passes.

mod ring;

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{self, KeyPair};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use zeroize::{Zeroize as _, Zeroizing};

use crate::base64url;

pub use ring::{
    DEFAULT_MAX_TOKEN_LIFETIME, KeyEvent, KeyGenerator, KeyRecord, KeyRing, KeyRingError, KeyState,
    RotationPolicy,
};

/// The JWS algorithm every key of this module signs with.
pub const ALG_RS256: &str = "RS256";

/// Smallest RSA modulus accepted when loading a key, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// RSA modulus sizes for newly generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeySize {
    /// 2048 bits (the default; what most verifiers expect).
    #[default]
    Rsa2048,
    /// 3072 bits.
    Rsa3072,
    /// 4096 bits.
    Rsa4096,
}

impl KeySize {
    /// The modulus size in bits.
    pub fn bits(self) -> usize {
        match self {
            KeySize::Rsa2048 => 2048,
            KeySize::Rsa3072 => 3072,
            KeySize::Rsa4096 => 4096,
        }
    }

    fn to_aws_lc(self) -> rsa::KeySize {
        match self {
            KeySize::Rsa2048 => rsa::KeySize::Rsa2048,
            KeySize::Rsa3072 => rsa::KeySize::Rsa3072,
            KeySize::Rsa4096 => rsa::KeySize::Rsa4096,
        }
    }
}

/// Why a key could not be generated, loaded, exported or used. Messages never contain key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// aws-lc-rs could not generate a key pair.
    #[error("rsa key generation failed")]
    Generation,
    /// The PEM text is malformed (bad armour or base64).
    #[error("malformed pem")]
    MalformedPem,
    /// The PEM text holds no `PRIVATE KEY` or `RSA PRIVATE KEY` section.
    #[error("no private key found in the pem")]
    NoPrivateKey,
    /// The PEM text holds more than one private key, so which one is meant is ambiguous.
    #[error("more than one private key in the pem")]
    MultiplePrivateKeys,
    /// The key is not an RSA key (e.g. an `EC PRIVATE KEY`, or PKCS#8 for another
    /// algorithm).
    #[error("not an rsa private key")]
    NotRsa,
    /// The RSA modulus is smaller than [`MIN_RSA_BITS`].
    #[error("rsa key smaller than 2048 bits")]
    TooSmall,
    /// aws-lc-rs refused the key; the reason is its fixed description (e.g.
    /// `InvalidEncoding`), never key material.
    #[error("rsa key rejected: {0}")]
    Rejected(&'static str),
    /// The key could not be serialized as PKCS#8.
    #[error("private key could not be encoded")]
    Encoding,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// An RSA private key, parsed once, that signs RS256.
///
/// `Debug` shows only the `kid`; the key is not `Clone` (a second copy of a private key
/// is a second thing to protect). AWS-LC frees the key with `OPENSSL_free`, which clears
/// the memory (with its default allocator).
pub struct SigningKey {
    pair: KeyPair,
    kid: String,
    n: String,
    e: String,
}

impl SigningKey {
    /// Generates a new key pair with AWS-LC's own DRBG.
    ///
    /// ```
    /// use oidc_core::keys::{KeySize, SigningKey};
    ///
    /// let key = SigningKey::generate(KeySize::Rsa2048)?;
    /// assert_eq!(key.kid().len(), 43);
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn generate(size: KeySize) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::generate(size.to_aws_lc()).map_err(|_| KeyError::Generation)?;
        SigningKey::from_key_pair(pair)
    }

    /// Loads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Other PEM sections (certificates) are ignored; exactly one
    /// private key must be present.
    ///
    /// ```
    /// use oidc_core::keys::{KeySize, SigningKey};
    ///
    /// let original = SigningKey::generate(KeySize::Rsa2048)?;
    /// let pem = original.to_pkcs8_pem()?;
    /// let loaded = SigningKey::from_pem(&pem)?;
    /// assert_eq!(loaded.kid(), original.kid());
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let mut sections = PrivateKeyDer::pem_slice_iter(pem.as_bytes());
        let mut der = match sections.next() {
            Some(Ok(der)) => der,
            Some(Err(_)) => return Err(KeyError::MalformedPem),
            None => return Err(KeyError::NoPrivateKey),
        };
        let extra = sections.next();
        let result = match (&der, &extra) {
            (_, Some(Err(_))) => Err(KeyError::MalformedPem),
            (_, Some(Ok(_))) => Err(KeyError::MultiplePrivateKeys),
            (PrivateKeyDer::Pkcs8(pkcs8), None) => {
                SigningKey::from_pkcs8_der(pkcs8.secret_pkcs8_der())
            }
            (PrivateKeyDer::Pkcs1(pkcs1), None) => KeyPair::from_der(pkcs1.secret_pkcs1_der())
                .map_err(rejected)
                .and_then(SigningKey::from_key_pair),
            (_, None) => Err(KeyError::NotRsa),
        };
        der.zeroize();
        if let Some(Ok(mut extra)) = extra {
            extra.zeroize();
        }
        result
    }

    /// Loads a PKCS#8 DER private key (as stored in a [`KeyRecord`]).
    ///
    /// ```
    /// use oidc_core::keys::{KeySize, SigningKey};
    ///
    /// let original = SigningKey::generate(KeySize::Rsa2048)?;
    /// let der = original.to_pkcs8_der()?;
    /// assert_eq!(SigningKey::from_pkcs8_der(der.secret_der())?.kid(), original.kid());
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::from_pkcs8(der).map_err(rejected)?;
        SigningKey::from_key_pair(pair)
    }

    fn from_key_pair(pair: KeyPair) -> Result<SigningKey, KeyError> {
        if pair.public_modulus_len() * 8 < MIN_RSA_BITS {
            return Err(KeyError::TooSmall);
        }
        let public = pair.public_key();
        let n = base64url::encode(public.modulus().big_endian_without_leading_zero());
        let e = base64url::encode(public.exponent().big_endian_without_leading_zero());
        let kid = rsa_thumbprint(&n, &e);
        Ok(SigningKey { pair, kid, n, e })
    }

    /// The private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), for persistence. The string is
    /// zeroed when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der()?;
        Ok(pem_encode("PRIVATE KEY", der.secret_der()))
    }

    /// The private key as PKCS#8 DER, zeroed when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Pkcs8Secret, KeyError> {
        let der = self.pair.as_der().map_err(|_| KeyError::Encoding)?;
        Ok(Pkcs8Secret::from_der(der.as_ref().to_vec()))
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The size of the RSA modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// The public key as a JWK with `kty`, `use`, `alg`, `kid`, `n` and `e` only.
    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "RSA",
            use_: "sig",
            alg: ALG_RS256,
            kid: self.kid.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
        }
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 and SHA-256 (JWS `RS256`).
    ///
    /// ```
    /// use oidc_core::keys::{KeySize, SigningKey};
    ///
    /// let key = SigningKey::generate(KeySize::Rsa2048)?;
    /// assert_eq!(key.sign_rs256(b"header.payload")?.len(), 256);
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        // aws-lc-rs ignores the RNG for PKCS#1 v1.5 signatures; SystemRandom is a unit
        // struct, so this costs nothing.
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| KeyError::Signing)?;
        Ok(signature)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public RSA signing key as a JWK (RFC 7517): `kty`, `use`, `alg`, `kid`, `n`, `e`.
///
/// `n` and `e` are unpadded base64url of the big-endian integers without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    kid: String,
    n: String,
    e: String,
}

impl PublicJwk {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The modulus, base64url.
    pub fn n(&self) -> &str {
        &self.n
    }

    /// The public exponent, base64url.
    pub fn e(&self) -> &str {
        &self.e
    }

    /// The JWK as compact JSON.
    pub fn to_json(&self) -> String {
        // Every member is a JSON-safe ASCII string (fixed names, base64url values), so the
        // document is written directly; a test checks it against serde_json.
        format!(
            r#"{{"kty":"{}","use":"{}","alg":"{}","kid":"{}","n":"{}","e":"{}"}}"#,
            self.kty, self.use_, self.alg, self.kid, self.n, self.e
        )
    }
}

/// A PKCS#8 DER private key in memory: redacted `Debug`, zeroed on drop, not `Clone`.
pub struct Pkcs8Secret(Zeroizing<Vec<u8>>);

impl Pkcs8Secret {
    /// Wraps DER bytes (taking ownership, so no copy is left behind).
    ///
    /// ```
    /// use oidc_core::keys::{KeySize, Pkcs8Secret, SigningKey};
    ///
    /// let der: Vec<u8> = SigningKey::generate(KeySize::Rsa2048)?.to_pkcs8_der()?.secret_der().to_vec();
    /// let secret = Pkcs8Secret::from_der(der);
    /// assert_eq!(format!("{secret:?}"), "Pkcs8Secret(<redacted>)");
    /// # Ok::<(), oidc_core::keys::KeyError>(())
    /// ```
    pub fn from_der(der: Vec<u8>) -> Pkcs8Secret {
        Pkcs8Secret(Zeroizing::new(der))
    }

    /// The DER bytes. Handle with care.
    pub fn secret_der(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn duplicate(&self) -> Pkcs8Secret {
        Pkcs8Secret(Zeroizing::new(self.0.to_vec()))
    }
}

impl fmt::Debug for Pkcs8Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs8Secret(<redacted>)")
    }
}

fn rejected(e: aws_lc_rs::error::KeyRejected) -> KeyError {
    match e.description_() {
        "WrongAlgorithm" => KeyError::NotRsa,
        "TooSmall" => KeyError::TooSmall,
        reason => KeyError::Rejected(reason),
    }
}

/// RFC 7638 §3.2: SHA-256 over `{"e":…,"kty":"RSA","n":…}` (members in lexicographic
/// order, no whitespace), base64url.
fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    base64url::encode(digest(&SHA256, canonical.as_bytes()).as_ref())
}

/// PEM armour with 64-character lines, built in one zeroizing allocation.
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut body = Zeroizing::new(String::with_capacity(der.len().div_ceil(3) * 4));
    STANDARD.encode_string(der, &mut body);
    let lines = body.len().div_ceil(64);
    let begin = format!("-----BEGIN {label}-----\n");
    let end = format!("-----END {label}-----\n");
    let mut out = Zeroizing::new(String::with_capacity(
        begin.len() + body.len() + lines + end.len(),
    ));
    out.push_str(&begin);
    for line in body.as_bytes().chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str(&end);
    out
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys shared by the tests of this crate: generated once per test binary.

    use std::sync::OnceLock;

    use super::{KeySize, SigningKey};

    /// The PEM of the `i`-th shared test key (0..8).
    pub(crate) fn pem(i: usize) -> &'static str {
        static PEMS: OnceLock<Vec<String>> = OnceLock::new();
        let pems = PEMS.get_or_init(|| {
            (0..8)
                .map(|_| {
                    let key = SigningKey::generate(KeySize::Rsa2048).unwrap();
                    key.to_pkcs8_pem().unwrap().to_string()
                })
                .collect()
        });
        &pems[i]
    }

    /// A fresh `SigningKey` for the `i`-th shared test key.
    pub(crate) fn key(i: usize) -> SigningKey {
        SigningKey::from_pem(pem(i)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;

    use super::*;

    const RFC7517_PKCS1: &str = include_str!("../testdata/rfc7517-a2-pkcs1.pem");
    const RFC7517_PKCS8: &str = include_str!("../testdata/rfc7517-a2-pkcs8.pem");
    const RSA_1024_PKCS8: &str = include_str!("../testdata/rsa-1024-pkcs8.pem");
    /// RFC 7638 §3.1: the thumbprint of the RFC 7517 A.1 RSA key.
    const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    const RFC7517_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn rfc_7638_thumbprint_vector() {
        assert_eq!(rsa_thumbprint(RFC7517_N, "AQAB"), RFC7638_THUMBPRINT);
    }

    #[test]
    fn kid_of_the_rfc_7517_key_is_its_rfc_7638_thumbprint() {
        for pem in [RFC7517_PKCS1, RFC7517_PKCS8] {
            let key = SigningKey::from_pem(pem).unwrap();
            assert_eq!(key.kid(), RFC7638_THUMBPRINT);
            assert_eq!(key.public_jwk().n(), RFC7517_N);
            assert_eq!(key.public_jwk().e(), "AQAB");
            assert_eq!(key.modulus_bits(), 2048);
        }
    }

    #[test]
    fn pkcs1_is_exported_as_pkcs8() {
        let key = SigningKey::from_pem(RFC7517_PKCS1).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(
            SigningKey::from_pem(&pem).unwrap().kid(),
            RFC7638_THUMBPRINT
        );
        // The same key as openssl writes it.
        let normalise = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(normalise(&pem), normalise(RFC7517_PKCS8));
    }

    #[test]
    fn generated_keys_round_trip_and_differ() {
        let a = test_keys::key(0);
        let b = test_keys::key(1);
        assert_ne!(a.kid(), b.kid());
        let reloaded = SigningKey::from_pkcs8_der(a.to_pkcs8_der().unwrap().secret_der()).unwrap();
        assert_eq!(reloaded.kid(), a.kid());
        let key = SigningKey::generate(KeySize::Rsa3072).unwrap();
        assert_eq!(key.modulus_bits(), KeySize::Rsa3072.bits());
        assert_eq!(key.sign_rs256(b"m").unwrap().len(), 384);
    }

    #[test]
    fn signature_verifies_with_the_public_jwk() {
        let key = SigningKey::from_pem(RFC7517_PKCS8).unwrap();
        let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
        let signature = key.sign_rs256(message).unwrap();
        let jwk = key.public_jwk();
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk.n())
            .unwrap();
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk.e())
            .unwrap();
        let public = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, &signature)
            .unwrap();
        assert!(
            public
                .verify(&RSA_PKCS1_2048_8192_SHA256, b"tampered", &signature)
                .is_err()
        );
        // RS256 (PKCS#1 v1.5) is deterministic.
        assert_eq!(key.sign_rs256(message).unwrap(), signature);
    }

    #[test]
    fn public_jwk_holds_public_members_only() {
        let key = SigningKey::from_pem(RFC7517_PKCS8).unwrap();
        let json = key.public_jwk().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let members: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = members.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(value["kty"], "RSA");
        assert_eq!(value["use"], "sig");
        assert_eq!(value["alg"], "RS256");
        assert_eq!(value["kid"], RFC7638_THUMBPRINT);
        assert_eq!(json, serde_json::to_string(&key.public_jwk()).unwrap());
        assert!(!json.contains('='), "no padding");
    }

    #[test]
    fn private_key_never_appears_in_debug() {
        let key = SigningKey::from_pem(RFC7517_PKCS8).unwrap();
        let debug = format!("{key:?} {:?}", key.to_pkcs8_der().unwrap());
        assert_eq!(
            debug,
            format!("SigningKey {{ kid: \"{RFC7638_THUMBPRINT}\", .. }} Pkcs8Secret(<redacted>)")
        );
    }

    #[test]
    fn attack_weak_rsa_1024_key_is_refused() {
        assert_eq!(
            SigningKey::from_pem(RSA_1024_PKCS8).unwrap_err(),
            KeyError::TooSmall
        );
    }

    #[test]
    fn attack_non_rsa_key_is_refused() {
        let rng = SystemRandom::new();
        let ec = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pem = pem_encode("PRIVATE KEY", ec.as_ref());
        assert_eq!(SigningKey::from_pem(&pem).unwrap_err(), KeyError::NotRsa);
        let sec1 = pem_encode("EC PRIVATE KEY", &[0x30, 0x00]);
        assert_eq!(SigningKey::from_pem(&sec1).unwrap_err(), KeyError::NotRsa);
    }

    #[test]
    fn pem_errors() {
        assert_eq!(
            SigningKey::from_pem("").unwrap_err(),
            KeyError::NoPrivateKey
        );
        assert_eq!(
            SigningKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err(),
            KeyError::NoPrivateKey
        );
        assert_eq!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n")
                .unwrap_err(),
            KeyError::MalformedPem
        );
        let garbage = pem_encode("PRIVATE KEY", b"not a key");
        assert!(matches!(
            SigningKey::from_pem(&garbage).unwrap_err(),
            KeyError::Rejected(_) | KeyError::NotRsa
        ));
        let two = format!("{RFC7517_PKCS8}{RFC7517_PKCS1}");
        assert_eq!(
            SigningKey::from_pem(&two).unwrap_err(),
            KeyError::MultiplePrivateKeys
        );
    }

    #[test]
    fn errors_do_not_leak_key_material() {
        let truncated = &RFC7517_PKCS8[..RFC7517_PKCS8.len() / 2];
        let err = SigningKey::from_pem(&format!("{truncated}\n-----END PRIVATE KEY-----\n"))
            .unwrap_err()
            .to_string();
        let body_line = RFC7517_PKCS8.lines().nth(3).unwrap();
        assert!(!err.contains(body_line), "{err}");
        assert!(err.len() < 64, "{err}");
    }
}
