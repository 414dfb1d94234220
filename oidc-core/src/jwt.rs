//! Signed JWTs (compact JWS, RS256): access tokens (RFC 9068) and ID tokens.
//!
//! Access tokens and ID tokens are explicitly typed (RFC 8725 §3.11): access tokens carry
//! `typ: at+jwt` and the resource as `aud`; ID tokens carry `typ: JWT` and the client id as
//! `aud`. A verifier that requires `at+jwt` can therefore never accept an ID token as an
//! access token.
//!
//! ```
//! use oidc_core::jwt::{AccessTokenClaims, encode_access_token};
//! use oidc_core::keys::{KeySize, SigningKey};
//! use oidc_core::types::{ClientId, Issuer, ResourceIndicator, Scope, Subject};
//!
//! let key = SigningKey::generate(KeySize::Rsa2048)?;
//! let claims = AccessTokenClaims {
//!     iss: Issuer::parse("https://auth.example.com")?,
//!     sub: Subject::parse("u-123")?,
//!     aud: ResourceIndicator::parse("https://mcp.example.com/mcp")?,
//!     client_id: ClientId::parse("client-1")?,
//!     iat: 1_700_000_000,
//!     exp: 1_700_000_900,
//!     jti: "8c7bd3c2-0f0d-4c59-bb5b-5d2c4f3b9a10".to_owned(),
//!     scope: Scope::parse("memories:read")?,
//! };
//! let token = encode_access_token(&key, &claims)?;
//! assert_eq!(token.split('.').count(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use aws_lc_rs::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use crate::base64url;
use crate::error::RandomError;
use crate::keys::{ALG_RS256, KeyError, SigningKey};
use crate::status_claim::StatusClaim;
use crate::types::{ClientId, Issuer, ResourceIndicator, Scope, Subject};

/// `typ` of RFC 9068 access tokens.
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// `typ` of ID tokens.
pub const TYP_ID_TOKEN: &str = "JWT";

/// Longest `typ` accepted by [`encode_jwt`].
const MAX_TYP_LEN: usize = 64;

/// Why a JWT could not be produced. Messages never contain claims or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The claims could not be serialized to JSON.
    #[error("claims could not be serialized")]
    Claims,
    /// The claims serialized to something other than a JSON object.
    #[error("claims are not a json object")]
    ClaimsNotAnObject,
    /// `typ` is empty, too long, or not printable ASCII.
    #[error("invalid typ header value")]
    InvalidTyp,
    /// `exp` is not after `iat`.
    #[error("exp must be after iat")]
    InvalidLifetime,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(#[from] KeyError),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Encodes `claims` as a compact JWS signed with `key`, with the header
/// `{"alg":"RS256","typ":typ,"kid":key.kid()}`.
///
/// ```
/// use oidc_core::jwt::encode_jwt;
/// use oidc_core::keys::{KeySize, SigningKey};
///
/// let key = SigningKey::generate(KeySize::Rsa2048)?;
/// let token = encode_jwt(&key, "JWT", &serde_json::json!({"sub": "alice"}))?;
/// assert!(token.starts_with("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_jwt<C: Serialize + ?Sized>(
    key: &SigningKey,
    typ: &str,
    claims: &C,
) -> Result<String, JwtError> {
    if typ.is_empty() || typ.len() > MAX_TYP_LEN || !typ.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(JwtError::InvalidTyp);
    }
    let header = Header {
        alg: ALG_RS256,
        typ,
        kid: key.kid(),
    };
    let header_json = serde_json::to_vec(&header).map_err(|_| JwtError::Claims)?;
    let claims_json = serde_json::to_vec(claims).map_err(|_| JwtError::Claims)?;
    if claims_json.first() != Some(&b'{') {
        return Err(JwtError::ClaimsNotAnObject);
    }
    let mut token = base64url::encode(&header_json);
    token.push('.');
    token.push_str(&base64url::encode(&claims_json));
    let signature = key.sign_rs256(token.as_bytes())?;
    token.push('.');
    token.push_str(&base64url::encode(&signature));
    Ok(token)
}

/// The claims of an RFC 9068 access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer.
    pub iss: Issuer,
    /// The end user.
    pub sub: Subject,
    /// The resource the token is for (RFC 8707 `resource`).
    pub aud: ResourceIndicator,
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Unique token id, e.g. from [`generate_jti`].
    pub jti: String,
    /// The granted scope, space-delimited.
    pub scope: Scope,
}

/// Encodes an access token: [`encode_jwt`] with `typ: at+jwt`, after checking that `exp`
/// is after `iat`.
///
/// ```
/// # use oidc_core::jwt::{AccessTokenClaims, JwtError, encode_access_token};
/// # use oidc_core::keys::{KeySize, SigningKey};
/// # use oidc_core::types::*;
/// # let key = SigningKey::generate(KeySize::Rsa2048)?;
/// let claims = AccessTokenClaims {
///     iss: Issuer::parse("https://auth.example.com")?,
///     sub: Subject::parse("u-123")?,
///     aud: ResourceIndicator::parse("https://mcp.example.com/mcp")?,
///     client_id: ClientId::parse("client-1")?,
///     iat: 1_700_000_000,
///     exp: 1_700_000_000,
///     jti: "id-1".to_owned(),
///     scope: Scope::parse("memories:read")?,
/// };
/// assert_eq!(encode_access_token(&key, &claims), Err(JwtError::InvalidLifetime));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_access_token(
    key: &SigningKey,
    claims: &AccessTokenClaims,
) -> Result<String, JwtError> {
    if claims.exp <= claims.iat {
        return Err(JwtError::InvalidLifetime);
    }
    encode_jwt(key, TYP_ACCESS_TOKEN, claims)
}

/// Encodes an access token with a `status` claim (draft-ietf-oauth-status-list) after
/// the claims of `claims`: [`encode_access_token`] when `status` is `None`.
///
/// ```
/// # use oidc_core::jwt::{AccessTokenClaims, encode_access_token_with_status};
/// # use oidc_core::keys::{KeySize, SigningKey};
/// # use oidc_core::status_list::{StatusClaim, StatusIndex};
/// # use oidc_core::types::*;
/// # let key = SigningKey::generate(KeySize::Rsa2048)?;
/// let issuer = Issuer::parse("https://auth.example.com")?;
/// let claims = AccessTokenClaims {
///     iss: issuer.clone(),
///     sub: Subject::parse("u-123")?,
///     aud: ResourceIndicator::parse("https://mcp.example.com/mcp")?,
///     client_id: ClientId::parse("client-1")?,
///     iat: 1_700_000_000,
///     exp: 1_700_003_600,
///     jti: "id-1".to_owned(),
///     scope: Scope::parse("memories:read")?,
/// };
/// let status = StatusClaim::new(&issuer, StatusIndex::new(1, 42));
/// let token = encode_access_token_with_status(&key, &claims, Some(&status))?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As [`encode_access_token`].
pub fn encode_access_token_with_status(
    key: &SigningKey,
    claims: &AccessTokenClaims,
    status: Option<&StatusClaim>,
) -> Result<String, JwtError> {
    #[derive(Serialize)]
    struct WithStatus<'a> {
        #[serde(flatten)]
        claims: &'a AccessTokenClaims,
        status: &'a StatusClaim,
    }
    let Some(status) = status else {
        return encode_access_token(key, claims);
    };
    if claims.exp <= claims.iat {
        return Err(JwtError::InvalidLifetime);
    }
    encode_jwt(key, TYP_ACCESS_TOKEN, &WithStatus { claims, status })
}

/// The claims of an OpenID Connect ID token. Optional claims are left out when `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: Issuer,
    /// The end user.
    pub sub: Subject,
    /// The client the ID token is for.
    pub aud: ClientId,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// When the end user authenticated (required when `max_age` was requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The `nonce` of the authorization request, copied unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The end user's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the email address was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The end user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Authorized party: the client id, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<ClientId>,
}

impl IdTokenClaims {
    /// The required claims; every optional one is `None`.
    ///
    /// ```
    /// use oidc_core::jwt::IdTokenClaims;
    /// use oidc_core::types::{ClientId, Issuer, Subject};
    ///
    /// let mut claims = IdTokenClaims::new(
    ///     Issuer::parse("https://auth.example.com")?,
    ///     Subject::parse("u-123")?,
    ///     ClientId::parse("client-1")?,
    ///     1_700_000_000,
    ///     1_700_000_300,
    /// );
    /// claims.nonce = Some("n-0S6_WzA2Mj".to_owned());
    /// let json = serde_json::to_value(&claims)?;
    /// assert_eq!(json["nonce"], "n-0S6_WzA2Mj");
    /// assert!(json.get("email").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(iss: Issuer, sub: Subject, aud: ClientId, iat: u64, exp: u64) -> IdTokenClaims {
        IdTokenClaims {
            iss,
            sub,
            aud,
            exp,
            iat,
            auth_time: None,
            nonce: None,
            email: None,
            email_verified: None,
            name: None,
            azp: None,
        }
    }
}

/// Encodes an ID token: [`encode_jwt`] with `typ: JWT`, after checking that `exp` is after
/// `iat`.
///
/// ```
/// use oidc_core::jwt::{IdTokenClaims, encode_id_token};
/// use oidc_core::keys::{KeySize, SigningKey};
/// use oidc_core::types::{ClientId, Issuer, Subject};
///
/// let key = SigningKey::generate(KeySize::Rsa2048)?;
/// let claims = IdTokenClaims::new(
///     Issuer::parse("https://auth.example.com")?,
///     Subject::parse("u-123")?,
///     ClientId::parse("client-1")?,
///     1_700_000_000,
///     1_700_000_300,
/// );
/// let token = encode_id_token(&key, &claims)?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_id_token(key: &SigningKey, claims: &IdTokenClaims) -> Result<String, JwtError> {
    if claims.exp <= claims.iat {
        return Err(JwtError::InvalidLifetime);
    }
    encode_jwt(key, TYP_ID_TOKEN, claims)
}

/// A fresh `jti`: 16 random bytes (128 bits) as 22 base64url characters.
///
/// ```
/// use aws_lc_rs::rand::SystemRandom;
/// use oidc_core::jwt::generate_jti;
///
/// let rng = SystemRandom::new();
/// assert_ne!(generate_jti(&rng)?, generate_jti(&rng)?);
/// # Ok::<(), oidc_core::RandomError>(())
/// ```
pub fn generate_jti(rng: &dyn SecureRandom) -> Result<String, RandomError> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)?;
    Ok(base64url::encode(&bytes))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::test::rand::FixedByteRandom;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jwks_verify::{ErrorKind, ManualClock, Policy, TypPolicy, Verifier};

    use super::*;
    use crate::keys::test_keys;

    const NOW: u64 = 1_700_000_000;
    const ISSUER: &str = "https://auth.example.com";
    const RESOURCE: &str = "https://mcp.example.com/mcp";
    const CLIENT: &str = "client-1";

    fn access_claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: Issuer::parse(ISSUER).unwrap(),
            sub: Subject::parse("u-123").unwrap(),
            aud: ResourceIndicator::parse(RESOURCE).unwrap(),
            client_id: ClientId::parse(CLIENT).unwrap(),
            iat: NOW,
            exp: NOW + 900,
            jti: generate_jti(&FixedByteRandom { byte: 7 }).unwrap(),
            scope: Scope::parse("memories:read memories:write").unwrap(),
        }
    }

    fn id_claims() -> IdTokenClaims {
        let mut claims = IdTokenClaims::new(
            Issuer::parse(ISSUER).unwrap(),
            Subject::parse("u-123").unwrap(),
            ClientId::parse(CLIENT).unwrap(),
            NOW,
            NOW + 300,
        );
        claims.auth_time = Some(NOW - 10);
        claims.nonce = Some("n-0S6_WzA2Mj".to_owned());
        claims.email = Some("alice@example.com".to_owned());
        claims.email_verified = Some(true);
        claims.name = Some("Alice".to_owned());
        claims
    }

    fn verifier(key: &SigningKey, audience: &str, typ: TypPolicy) -> Verifier {
        let jwks = format!(r#"{{"keys":[{}]}}"#, key.public_jwk().to_json());
        Verifier::builder(Policy::new(ISSUER, audience).typ(typ))
            .static_jwks(jwks)
            .clock(ManualClock::at_unix(NOW + 1))
            .build()
            .unwrap()
    }

    fn decode_part(token: &str, index: usize) -> serde_json::Value {
        let part = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn header_is_alg_typ_kid_in_order() {
        let key = test_keys::key(0);
        let token = encode_jwt(&key, "at+jwt", &serde_json::json!({"a": 1})).unwrap();
        let header = token.split('.').next().unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(
            header,
            format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, key.kid())
        );
    }

    #[test]
    fn access_token_is_accepted_by_an_access_token_verifier() {
        let key = test_keys::key(0);
        let token = encode_access_token(&key, &access_claims()).unwrap();
        let verified = verifier(&key, RESOURCE, TypPolicy::AccessToken)
            .try_verify::<AccessTokenClaims>(&token)
            .unwrap();
        assert_eq!(*verified.claims(), access_claims());
        assert_eq!(verified.key_id(), Some(key.kid()));
        let payload = decode_part(&token, 1);
        assert_eq!(payload["scope"], "memories:read memories:write");
        assert_eq!(payload["aud"], RESOURCE);
        assert_eq!(payload["client_id"], CLIENT);
        assert_eq!(payload["jti"], "BwcHBwcHBwcHBwcHBwcHBw");
    }

    #[test]
    fn id_token_is_accepted_by_the_default_verifier() {
        let key = test_keys::key(0);
        let token = encode_id_token(&key, &id_claims()).unwrap();
        let verified = verifier(&key, CLIENT, TypPolicy::Jwt)
            .try_verify::<IdTokenClaims>(&token)
            .unwrap();
        assert_eq!(*verified.claims(), id_claims());
        assert_eq!(decode_part(&token, 0)["typ"], "JWT");
    }

    #[test]
    fn id_token_cannot_pass_as_access_token() {
        let key = test_keys::key(0);
        let token = encode_id_token(&key, &id_claims()).unwrap();
        // Even with the audience set to the ID token's, the typ check refuses it.
        let err = verifier(&key, CLIENT, TypPolicy::AccessToken)
            .try_verify::<serde_json::Value>(&token)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongType);
    }

    #[test]
    fn access_token_cannot_pass_as_id_token() {
        let key = test_keys::key(0);
        let token = encode_access_token(&key, &access_claims()).unwrap();
        // Its audience is the resource, never the client.
        let err = verifier(&key, CLIENT, TypPolicy::Jwt)
            .try_verify::<serde_json::Value>(&token)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongAudience);
    }

    #[test]
    fn attack_token_signed_by_another_key_is_refused() {
        let token = encode_access_token(&test_keys::key(1), &access_claims()).unwrap();
        let err = verifier(&test_keys::key(0), RESOURCE, TypPolicy::AccessToken)
            .try_verify::<serde_json::Value>(&token)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownKey);
    }

    #[test]
    fn optional_id_token_claims_are_omitted() {
        let key = test_keys::key(0);
        let mut claims = id_claims();
        claims.auth_time = None;
        claims.nonce = None;
        claims.email = None;
        claims.email_verified = None;
        claims.name = None;
        let payload = decode_part(&encode_id_token(&key, &claims).unwrap(), 1);
        let mut members: Vec<&str> = payload
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["aud", "exp", "iat", "iss", "sub"]);
        claims.azp = Some(ClientId::parse(CLIENT).unwrap());
        let payload = decode_part(&encode_id_token(&key, &claims).unwrap(), 1);
        assert_eq!(payload["azp"], CLIENT);
    }

    #[test]
    fn encode_refuses_bad_input() {
        let key = test_keys::key(0);
        assert_eq!(
            encode_jwt(&key, "", &serde_json::json!({})),
            Err(JwtError::InvalidTyp)
        );
        assert_eq!(
            encode_jwt(&key, "a b", &serde_json::json!({})),
            Err(JwtError::InvalidTyp)
        );
        assert_eq!(
            encode_jwt(&key, "JWT", &serde_json::json!([1])),
            Err(JwtError::ClaimsNotAnObject)
        );
        assert_eq!(
            encode_jwt(&key, "JWT", "claims"),
            Err(JwtError::ClaimsNotAnObject)
        );
        let mut claims = access_claims();
        claims.exp = claims.iat - 1;
        assert_eq!(
            encode_access_token(&key, &claims),
            Err(JwtError::InvalidLifetime)
        );
        let mut claims = id_claims();
        claims.exp = claims.iat;
        assert_eq!(
            encode_id_token(&key, &claims),
            Err(JwtError::InvalidLifetime)
        );
    }

    #[test]
    fn status_claim_follows_the_access_token_claims() {
        let key = test_keys::key(0);
        let issuer = Issuer::parse(ISSUER).unwrap();
        let status = StatusClaim::new(&issuer, crate::status_list::StatusIndex::new(3, 9));
        let token = encode_access_token_with_status(&key, &access_claims(), Some(&status)).unwrap();
        let payload = decode_part(&token, 1);
        assert_eq!(
            payload["status"],
            serde_json::json!({"status_list": {"idx": 9, "uri": "https://auth.example.com/statuslists/3"}})
        );
        assert_eq!(payload["jti"], "BwcHBwcHBwcHBwcHBwcHBw");
        let verified = verifier(&key, RESOURCE, TypPolicy::AccessToken)
            .try_verify::<AccessTokenClaims>(&token)
            .unwrap();
        assert_eq!(*verified.claims(), access_claims());
        let without = encode_access_token_with_status(&key, &access_claims(), None).unwrap();
        assert!(decode_part(&without, 1).get("status").is_none());
    }

    #[test]
    fn typ_is_escaped_by_json_not_spliced() {
        let key = test_keys::key(0);
        let token = encode_jwt(&key, r#"x","alg":"none"#, &serde_json::json!({})).unwrap();
        let header = decode_part(&token, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], r#"x","alg":"none"#);
    }
}
