//! What a token must look like to be accepted: algorithms, issuer, audience, `typ`, time and size.

use std::fmt;
use std::time::Duration;

/// A JWS signature algorithm this crate can verify.
///
/// Only algorithms in the [`Policy`]'s allow-list are ever considered; the default list is
/// [`Algorithm::RS256`] alone. `none` and the HMAC algorithms have no variant: a verifier
/// that works from public keys has no business accepting them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every algorithm this crate can verify, in a fixed order.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The `alg` header value, e.g. `"RS256"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses an `alg` header value. The comparison is exact (case-sensitive), as RFC 7515
    /// requires: `rs256` is not `RS256`.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// The JWK `kty` a key for this algorithm has.
    pub(crate) const fn key_type(self) -> KeyType {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyType::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => KeyType::Ec,
            Algorithm::EdDSA => KeyType::Okp,
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JWK key families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    Ec,
    Okp,
}

/// A set of [`Algorithm`]s, used as the allow-list.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const fn empty() -> Self {
        AlgorithmSet(0)
    }

    /// A set holding one algorithm.
    pub const fn only(alg: Algorithm) -> Self {
        AlgorithmSet(alg.bit())
    }

    /// This set with `alg` added.
    #[must_use]
    pub const fn with(self, alg: Algorithm) -> Self {
        AlgorithmSet(self.0 | alg.bit())
    }

    /// Whether `alg` is in the set.
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |alg| self.contains(*alg))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter()
            .fold(AlgorithmSet::empty(), AlgorithmSet::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Which JOSE `typ` header values are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypPolicy {
    /// The default: `typ` absent, `JWT`, or `at+jwt` (with or without the `application/`
    /// prefix, case-insensitively). Anything else (`dpop+jwt`, `logout+jwt`,
    /// `secevent+jwt`, …) is some other kind of token and is refused.
    Jwt,
    /// RFC 9068 access tokens only: `typ` must be `at+jwt` or `application/at+jwt`. An ID
    /// token (no `typ` or `JWT`) can never pass this check.
    AccessToken,
    /// `typ` must be present and equal (case-insensitively, `application/` prefix optional)
    /// to one of these media types.
    OneOf(Vec<String>),
    /// No check at all. Only for issuers whose `typ` values are known to be useless.
    InsecureAny,
}

impl TypPolicy {
    pub(crate) fn accepts(&self, typ: Option<&str>) -> bool {
        match self {
            TypPolicy::Jwt => {
                typ.is_none_or(|t| media_type_is(t, "jwt") || media_type_is(t, "at+jwt"))
            }
            TypPolicy::AccessToken => typ.is_some_and(|t| media_type_is(t, "at+jwt")),
            TypPolicy::OneOf(allowed) => typ.is_some_and(|t| {
                allowed
                    .iter()
                    .any(|a| media_type_is(t, strip_application(a)))
            }),
            TypPolicy::InsecureAny => true,
        }
    }
}

/// RFC 7515 §4.1.9: `typ` is a media type, compared case-insensitively, and the
/// `application/` prefix may be left out.
fn media_type_is(value: &str, expected: &str) -> bool {
    strip_application(value).eq_ignore_ascii_case(expected)
}

fn strip_application(value: &str) -> &str {
    match value.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &value[12..],
        _ => value,
    }
}

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default maximum token length in bytes, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The rules a token must satisfy, safe by default.
///
/// `Policy::new(issuer, audience)` gives: `RS256` only, `iss` required and exactly equal,
/// `aud` required and containing `audience`, `exp` required, `nbf`/`iat` checked when
/// present with 30 s leeway, [`TypPolicy::Jwt`], tokens over 8 KiB refused before any
/// decoding, and any `crit` header refused.
///
/// ```
/// use std::time::Duration;
/// use jwks_verify::{Algorithm, Policy, TypPolicy};
///
/// let policy = Policy::new("https://issuer.example", "https://api.example/mcp")
///     .also_accept_audience("https://api.example")
///     .typ(TypPolicy::AccessToken)
///     .leeway(Duration::from_secs(10))
///     .algorithms([Algorithm::RS256, Algorithm::ES256]);
/// assert_eq!(policy.issuers(), ["https://issuer.example"]);
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) check_audience: bool,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) typ: TypPolicy,
    pub(crate) leeway_secs: u64,
    pub(crate) max_token_bytes: usize,
}

impl Policy {
    /// A policy for tokens from `issuer` meant for `audience`.
    ///
    /// The first issuer is also the one discovery uses (`{issuer}/.well-known/openid-configuration`).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Policy {
            issuers: vec![issuer.into()],
            audiences: vec![audience.into()],
            check_audience: true,
            algorithms: AlgorithmSet::only(Algorithm::RS256),
            typ: TypPolicy::Jwt,
            leeway_secs: DEFAULT_LEEWAY.as_secs(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Also accept tokens whose `iss` is exactly `issuer` (e.g. Google's legacy
    /// `accounts.google.com` beside `https://accounts.google.com`).
    #[must_use]
    pub fn also_accept_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Also accept tokens whose `aud` contains `audience`.
    #[must_use]
    pub fn also_accept_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Replace the algorithm allow-list. An empty list accepts nothing.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Set the `typ` header policy.
    #[must_use]
    pub fn typ(mut self, typ: TypPolicy) -> Self {
        self.typ = typ;
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 30 s; whole seconds).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs();
        self
    }

    /// Maximum token length in bytes (default 8 KiB), enforced before any decoding.
    #[must_use]
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Accept tokens without checking `aud` at all.
    ///
    /// Dangerous: a token minted for any other service of the same issuer is then accepted.
    /// Only for issuers that cannot put an audience into their tokens.
    #[must_use]
    pub fn insecure_skip_audience_check(mut self) -> Self {
        self.check_audience = false;
        self
    }

    /// The accepted issuers, the discovery issuer first.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The algorithm allow-list.
    pub fn allowed_algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_exact() {
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::RS256));
        assert_eq!(Algorithm::from_name("rs256"), None);
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name("HS256"), None);
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
    }

    #[test]
    fn algorithm_set_membership() {
        let set: AlgorithmSet = [Algorithm::RS256, Algorithm::EdDSA].into_iter().collect();
        assert!(set.contains(Algorithm::RS256));
        assert!(set.contains(Algorithm::EdDSA));
        assert!(!set.contains(Algorithm::PS256));
        assert_eq!(set.iter().count(), 2);
        assert!(AlgorithmSet::empty().is_empty());
    }

    #[test]
    fn typ_policies() {
        let jwt = TypPolicy::Jwt;
        assert!(jwt.accepts(None));
        assert!(jwt.accepts(Some("JWT")));
        assert!(jwt.accepts(Some("application/jwt")));
        assert!(jwt.accepts(Some("at+jwt")));
        assert!(!jwt.accepts(Some("dpop+jwt")));
        assert!(!jwt.accepts(Some("logout+jwt")));

        let at = TypPolicy::AccessToken;
        assert!(at.accepts(Some("at+jwt")));
        assert!(at.accepts(Some("Application/AT+JWT")));
        assert!(!at.accepts(None));
        assert!(!at.accepts(Some("JWT")));
        assert!(!at.accepts(Some("application/")));

        let one = TypPolicy::OneOf(vec!["application/token-introspection+jwt".into()]);
        assert!(one.accepts(Some("token-introspection+jwt")));
        assert!(!one.accepts(None));
    }
}
