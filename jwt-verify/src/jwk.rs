//! JWK Set parsing: every key is checked and parsed once, when the set is loaded.
//!
//! A malformed key is skipped (with a [`SkipReason`]) without dropping the rest of the set.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::base64url;
use crate::policy::{Algorithm, AlgorithmSet, KeyType};

/// Most keys a set may hold; more is refused as a resource-exhaustion attempt.
pub const MAX_KEYS: usize = 100;
const MAX_KID_BYTES: usize = 1024;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// A parsed, ready-to-use set of verification keys.
///
/// Built from JWK Set JSON with [`KeySet::from_jwks`]; only keys usable with an algorithm
/// of the allow-list are kept, each bound to exactly one algorithm.
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    jwk_count: usize,
    skipped: Vec<SkippedKey>,
    fingerprint: [u8; 32],
}

/// One public key bound to one algorithm.
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) alg: Algorithm,
    jwk_index: usize,
    key: ParsedPublicKey,
}

impl VerifyingKey {
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// A JWK that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a JWK was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not a JSON object of JWK members with the right types.
    Malformed,
    /// `kty` missing or not `RSA`, `EC` or `OKP`.
    UnsupportedKeyType,
    /// `use` is present and is not `sig`.
    NotForSignatures,
    /// `key_ops` is present and does not contain `verify`.
    NoVerifyOperation,
    /// The key carries private members (`d`, `p`, `q`, `k`, …): the set is misconfigured.
    PrivateKeyMaterial,
    /// `alg` names an algorithm this crate does not know.
    UnknownAlgorithm,
    /// `alg` (or, without it, every algorithm for the key type) is outside the allow-list.
    AlgorithmNotAllowed,
    /// `alg` belongs to another key type.
    AlgorithmKeyTypeMismatch,
    /// RSA modulus below 2048 or above 8192 bits.
    WeakOrOversizeKey,
    /// Key material that does not form a valid public key (bad base64, wrong curve, …).
    InvalidKeyMaterial,
    /// `kid` is longer than 1 KiB.
    OversizeKid,
    /// The set holds more than [`MAX_KEYS`] keys.
    TooManyKeys,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Malformed => "malformed jwk",
            SkipReason::UnsupportedKeyType => "unsupported kty",
            SkipReason::NotForSignatures => "use is not sig",
            SkipReason::NoVerifyOperation => "key_ops lacks verify",
            SkipReason::PrivateKeyMaterial => "private key material in a public set",
            SkipReason::UnknownAlgorithm => "unknown alg",
            SkipReason::AlgorithmNotAllowed => "alg not in the allow-list",
            SkipReason::AlgorithmKeyTypeMismatch => "alg does not fit kty",
            SkipReason::WeakOrOversizeKey => "rsa modulus outside 2048..=8192 bits",
            SkipReason::InvalidKeyMaterial => "invalid key material",
            SkipReason::OversizeKid => "kid longer than 1 KiB",
            SkipReason::TooManyKeys => "more keys than the limit",
        })
    }
}

/// The JWK Set document as a whole could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("not a jwk set: {0}")]
    NotAJwkSet(String),
    /// The set parsed but no key in it is usable.
    #[error("no usable key in the jwk set ({skipped} skipped)")]
    NoUsableKey {
        /// How many keys were skipped.
        skipped: usize,
    },
}

#[derive(Deserialize)]
struct RawSet<'a> {
    #[serde(borrow)]
    keys: Vec<&'a RawValue>,
}

/// The members of a JWK this crate looks at. Unknown members are ignored; known ones must
/// have the right type, and duplicates are refused by serde.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    oth: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

impl KeySet {
    /// Parses a JWK Set document, keeping the keys usable with `allowed` algorithms.
    ///
    /// ```
    /// use jwks_verify::{AlgorithmSet, Algorithm, KeySet};
    ///
    /// let json = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
    /// let err = KeySet::from_jwks(json, AlgorithmSet::only(Algorithm::RS256)).unwrap_err();
    /// assert_eq!(err.to_string(), "no usable key in the jwk set (1 skipped)");
    /// ```
    pub fn from_jwks(json: &[u8], allowed: AlgorithmSet) -> Result<KeySet, JwksError> {
        // A fixed message: serde's can quote the document, which is not ours to log.
        let set: RawSet<'_> = serde_json::from_slice(json).map_err(|_| {
            JwksError::NotAJwkSet("expected a json object with a keys array".into())
        })?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, raw) in set.keys.iter().enumerate() {
            if index >= MAX_KEYS {
                skipped.push(SkippedKey {
                    kid: kid_of(raw),
                    reason: SkipReason::TooManyKeys,
                });
                continue;
            }
            match parse_jwk(raw, allowed) {
                Ok((kid, parsed)) => {
                    keys.extend(parsed.into_iter().map(|(alg, key)| VerifyingKey {
                        kid: kid.clone(),
                        alg,
                        jwk_index: index,
                        key,
                    }));
                }
                Err(reason) => skipped.push(SkippedKey {
                    kid: kid_of(raw),
                    reason,
                }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                skipped: skipped.len(),
            });
        }
        let fingerprint = fingerprint(&keys);
        Ok(KeySet {
            jwk_count: set.keys.len() - skipped.len(),
            keys,
            skipped,
            fingerprint,
        })
    }

    /// How many JWKs of the document were loaded.
    pub fn len(&self) -> usize {
        self.jwk_count
    }

    /// Whether no key was loaded (never true for a set built by [`KeySet::from_jwks`]).
    pub fn is_empty(&self) -> bool {
        self.jwk_count == 0
    }

    /// The JWKs that were skipped, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The `kid`s of the loaded keys, in document order (a key without `kid` is left out).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        let mut last = usize::MAX;
        self.keys.iter().filter_map(move |k| {
            let first_for_jwk = k.jwk_index != last;
            last = k.jwk_index;
            if first_for_jwk {
                k.kid.as_deref()
            } else {
                None
            }
        })
    }

    /// Checks a raw signature over `message` with the key the set would use for a token with
    /// this `alg` and `kid` (see [`Verifier`](crate::Verifier) for the token-level API).
    ///
    /// For detached signatures and test vectors; tokens should go through the verifier.
    pub fn verify_signature(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        self.find(alg, kid)
            .is_some_and(|(_, key)| key.verify(message, signature))
    }

    /// A digest of the loaded keys: equal fingerprints mean the same keys.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The key for a token with this `alg` and `kid`.
    ///
    /// With a `kid`, the first key with that `kid` bound to `alg`. Without one, the single
    /// key bound to `alg`; if the set holds several, none is chosen (trying each would let
    /// one token cost many RSA operations).
    /// Returns the key with its index in the set (see [`KeySet::key`]).
    pub(crate) fn find(&self, alg: Algorithm, kid: Option<&str>) -> Option<(usize, &VerifyingKey)> {
        let mut candidates = self.keys.iter().enumerate().filter(|(_, k)| k.alg == alg);
        match kid {
            Some(kid) => candidates.find(|(_, k)| k.kid.as_deref() == Some(kid)),
            None => {
                let first = candidates.next()?;
                candidates.next().is_none().then_some(first)
            }
        }
    }

    /// The key at `index`, as returned by [`KeySet::find`].
    pub(crate) fn key(&self, index: usize) -> Option<&VerifyingKey> {
        self.keys.get(index)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn kid_of(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Kid {
        kid: Option<String>,
    }
    serde_json::from_str::<Kid>(raw.get())
        .ok()
        .and_then(|k| k.kid)
        .map(|kid| kid.chars().take(64).collect())
}

type ParsedJwk = (Option<Arc<str>>, Vec<(Algorithm, ParsedPublicKey)>);

fn parse_jwk(raw: &RawValue, allowed: AlgorithmSet) -> Result<ParsedJwk, SkipReason> {
    let jwk: RawJwk = serde_json::from_str(raw.get()).map_err(|_| SkipReason::Malformed)?;
    let has_private = jwk.d.is_some()
        || jwk.p.is_some()
        || jwk.q.is_some()
        || jwk.dp.is_some()
        || jwk.dq.is_some()
        || jwk.qi.is_some()
        || jwk.oth.is_some()
        || jwk.k.is_some();
    if has_private {
        return Err(SkipReason::PrivateKeyMaterial);
    }
    let key_type = match jwk.kty.as_deref() {
        Some("RSA") => KeyType::Rsa,
        Some("EC") => KeyType::Ec,
        Some("OKP") => KeyType::Okp,
        _ => return Err(SkipReason::UnsupportedKeyType),
    };
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(SkipReason::NotForSignatures);
    }
    if jwk
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(SkipReason::NoVerifyOperation);
    }
    if jwk
        .kid
        .as_ref()
        .is_some_and(|kid| kid.len() > MAX_KID_BYTES)
    {
        return Err(SkipReason::OversizeKid);
    }
    let algorithms: AlgorithmSet = match jwk.alg.as_deref() {
        Some(name) => {
            let alg = Algorithm::from_name(name).ok_or(SkipReason::UnknownAlgorithm)?;
            if alg.key_type() != key_type {
                return Err(SkipReason::AlgorithmKeyTypeMismatch);
            }
            AlgorithmSet::only(alg)
        }
        None => Algorithm::ALL
            .into_iter()
            .filter(|alg| alg.key_type() == key_type)
            .collect(),
    };
    let usable: Vec<Algorithm> = algorithms.iter().filter(|a| allowed.contains(*a)).collect();
    if usable.is_empty() {
        return Err(SkipReason::AlgorithmNotAllowed);
    }
    let mut parsed = Vec::with_capacity(usable.len());
    for alg in usable {
        let key = match key_type {
            KeyType::Rsa => rsa_key(&jwk, alg)?,
            KeyType::Ec => ec_key(&jwk, alg)?,
            KeyType::Okp => okp_key(&jwk)?,
        };
        parsed.push((alg, key));
    }
    Ok((jwk.kid.map(Arc::from), parsed))
}

fn rsa_key(jwk: &RawJwk, alg: Algorithm) -> Result<ParsedPublicKey, SkipReason> {
    let n = member_bytes(jwk.n.as_deref())?;
    let e = member_bytes(jwk.e.as_deref())?;
    // Some publishers emit a leading zero byte (two's-complement habit); aws-lc refuses it.
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(SkipReason::WeakOrOversizeKey);
    }
    let params = match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return Err(SkipReason::AlgorithmKeyTypeMismatch),
    };
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(params)
        .map_err(|_| SkipReason::InvalidKeyMaterial)
}

fn ec_key(jwk: &RawJwk, alg: Algorithm) -> Result<ParsedPublicKey, SkipReason> {
    let (crv, len, verification): (_, _, &'static dyn signature::VerificationAlgorithm) = match alg
    {
        Algorithm::ES256 => ("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => ("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED),
        _ => return Err(SkipReason::AlgorithmKeyTypeMismatch),
    };
    if jwk.crv.as_deref() != Some(crv) {
        return Err(SkipReason::InvalidKeyMaterial);
    }
    let x = member_bytes(jwk.x.as_deref())?;
    let y = member_bytes(jwk.y.as_deref())?;
    if x.len() != len || y.len() != len {
        return Err(SkipReason::InvalidKeyMaterial);
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    ParsedPublicKey::new(verification, point).map_err(|_| SkipReason::InvalidKeyMaterial)
}

fn okp_key(jwk: &RawJwk) -> Result<ParsedPublicKey, SkipReason> {
    if jwk.crv.as_deref() != Some("Ed25519") {
        return Err(SkipReason::InvalidKeyMaterial);
    }
    let x = member_bytes(jwk.x.as_deref())?;
    if x.len() != 32 {
        return Err(SkipReason::InvalidKeyMaterial);
    }
    ParsedPublicKey::new(&signature::ED25519, x).map_err(|_| SkipReason::InvalidKeyMaterial)
}

fn member_bytes(value: Option<&str>) -> Result<Vec<u8>, SkipReason> {
    let value = value.ok_or(SkipReason::InvalidKeyMaterial)?;
    base64url::decode_to_vec(value.as_bytes()).ok_or(SkipReason::InvalidKeyMaterial)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn fingerprint(keys: &[VerifyingKey]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for key in keys {
        let kid = key.kid.as_deref().unwrap_or("");
        ctx.update(&(kid.len() as u64).to_be_bytes());
        ctx.update(kid.as_bytes());
        ctx.update(key.alg.as_str().as_bytes());
        let der: &[u8] = key.key.as_ref();
        ctx.update(&(der.len() as u64).to_be_bytes());
        ctx.update(der);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    fn rs256() -> AlgorithmSet {
        AlgorithmSet::only(Algorithm::RS256)
    }

    #[test]
    fn loads_rsa_key_with_kid() {
        let jwks = test_keys::jwks(&[test_keys::rsa_jwk("k1")]);
        let set = KeySet::from_jwks(jwks.as_bytes(), rs256()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.kids().collect::<Vec<_>>(), ["k1"]);
        assert!(set.find(Algorithm::RS256, Some("k1")).is_some());
        assert!(set.find(Algorithm::RS256, Some("k2")).is_none());
        assert!(set.find(Algorithm::RS256, None).is_some());
    }

    #[test]
    fn leading_zero_in_modulus_is_accepted() {
        let mut jwk = test_keys::rsa_jwk("k1");
        let n = base64url::decode_to_vec(jwk["n"].as_str().unwrap().as_bytes()).unwrap();
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        jwk["n"] = base64url::encode(&padded).into();
        let set = KeySet::from_jwks(test_keys::jwks(&[jwk]).as_bytes(), rs256()).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn one_bad_key_does_not_drop_the_rest() {
        let good = test_keys::rsa_jwk("good");
        let mut enc = test_keys::rsa_jwk("enc");
        enc["use"] = "enc".into();
        let mut private = test_keys::rsa_jwk("private");
        private["d"] = "AAAA".into();
        let mut ops = test_keys::rsa_jwk("ops");
        ops["key_ops"] = serde_json::json!(["encrypt"]);
        let mut kty = test_keys::rsa_jwk("kty");
        kty["kty"] = "oct".into();
        let mut weak = test_keys::rsa_jwk("weak");
        weak["n"] = base64url::encode(&[0xC5; 128]).into();
        let mut wrong_type = test_keys::rsa_jwk("wrong-type");
        wrong_type["n"] = serde_json::json!(12345);
        let mut es = test_keys::rsa_jwk("es");
        es["alg"] = "ES256".into();
        let mut hs = test_keys::rsa_jwk("hs");
        hs["alg"] = "HS256".into();
        let jwks = test_keys::jwks(&[enc, private, ops, kty, weak, wrong_type, es, hs, good]);
        let set = KeySet::from_jwks(jwks.as_bytes(), rs256()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), ["good"]);
        let reasons: Vec<_> = set.skipped().iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            [
                SkipReason::NotForSignatures,
                SkipReason::PrivateKeyMaterial,
                SkipReason::NoVerifyOperation,
                SkipReason::UnsupportedKeyType,
                SkipReason::WeakOrOversizeKey,
                SkipReason::Malformed,
                SkipReason::AlgorithmKeyTypeMismatch,
                SkipReason::UnknownAlgorithm,
            ]
        );
    }

    #[test]
    fn key_is_bound_to_its_alg() {
        let mut jwk = test_keys::rsa_jwk("k1");
        jwk["alg"] = "PS256".into();
        let allowed = [Algorithm::RS256, Algorithm::PS256].into_iter().collect();
        let set = KeySet::from_jwks(test_keys::jwks(&[jwk]).as_bytes(), allowed).unwrap();
        assert!(set.find(Algorithm::PS256, Some("k1")).is_some());
        assert!(set.find(Algorithm::RS256, Some("k1")).is_none());
    }

    #[test]
    fn key_without_alg_serves_only_allowed_algorithms() {
        let mut jwk = test_keys::rsa_jwk("k1");
        jwk.as_object_mut().unwrap().remove("alg");
        let set = KeySet::from_jwks(test_keys::jwks(&[jwk]).as_bytes(), rs256()).unwrap();
        assert!(set.find(Algorithm::RS256, Some("k1")).is_some());
        assert!(set.find(Algorithm::PS256, Some("k1")).is_none());
    }

    #[test]
    fn no_kid_with_several_candidates_chooses_none() {
        let a = test_keys::rsa_jwk("a");
        let b = test_keys::rsa_jwk("b");
        let set = KeySet::from_jwks(test_keys::jwks(&[a, b]).as_bytes(), rs256()).unwrap();
        assert!(set.find(Algorithm::RS256, None).is_none());
    }

    #[test]
    fn too_many_keys_are_cut_off() {
        let keys: Vec<_> = (0..MAX_KEYS + 5)
            .map(|i| test_keys::rsa_jwk(&format!("k{i}")))
            .collect();
        let set = KeySet::from_jwks(test_keys::jwks(&keys).as_bytes(), rs256()).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
        assert_eq!(set.skipped().len(), 5);
    }

    #[test]
    fn not_a_set_is_an_error() {
        for body in [&b"<html>nope</html>"[..], b"{}", b"{\"keys\":{}}", b"[]"] {
            assert!(matches!(
                KeySet::from_jwks(body, rs256()),
                Err(JwksError::NotAJwkSet(_))
            ));
        }
    }

    #[test]
    fn attack_jwks_content_is_not_quoted_in_errors() {
        // serde_json's own messages quote strings it did not expect.
        for body in [
            &br#"{"keys":"secret-looking-content"}"#[..],
            br#""secret-looking-content""#,
        ] {
            let err = KeySet::from_jwks(body, rs256()).unwrap_err();
            assert!(matches!(err, JwksError::NotAJwkSet(_)), "{err:?}");
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains("secret-looking"), "{shown}");
            }
        }
    }

    #[test]
    fn fingerprint_tracks_key_material() {
        let one = KeySet::from_jwks(
            test_keys::jwks(&[test_keys::rsa_jwk("a")]).as_bytes(),
            rs256(),
        )
        .unwrap();
        let same = KeySet::from_jwks(
            test_keys::jwks(&[test_keys::rsa_jwk("a")]).as_bytes(),
            rs256(),
        )
        .unwrap();
        let other = KeySet::from_jwks(
            test_keys::jwks(&[test_keys::rsa_jwk("b")]).as_bytes(),
            rs256(),
        )
        .unwrap();
        assert_eq!(one.fingerprint(), same.fingerprint());
        assert_ne!(one.fingerprint(), other.fingerprint());
    }
}
