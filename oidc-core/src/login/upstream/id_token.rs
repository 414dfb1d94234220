//! The checks an upstream ID token must pass: the [`Verifier`]'s (signature against the
//! upstream JWKS, `iss`, `aud` = our client id, `exp`, algorithm, size), then this
//! login's (`nonce`, `azp`, extra audiences, `sub`), then the admission rules
//! (`hd`, verified email on the allow-lists). The subject is
//! [`federated_subject`]`(issuer, sub)`, never the email.

use jwks_verify::{Policy, Verifier, VerifierBuilder};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::config::{
    GOOGLE_LEGACY_ISSUER, MAX_CLAIM_BYTES, UpstreamConfig, UpstreamError, UpstreamFlavor,
};
use super::metadata::{UpstreamMetadata, id_token_algorithms};
use super::refusal::Refusal;
use crate::authn::{AuthenticatedUser, LoginMethod, federated_subject};

/// Largest ID token accepted from the token endpoint (the verifier's policy refuses longer
/// ones before decoding them).
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// The verifier of `config`'s ID tokens, without its keys: the driver adds the upstream
/// JWKS (`metadata.jwks_uri`), a test adds static keys.
pub(super) fn verifier_builder(
    config: &UpstreamConfig,
    metadata: &UpstreamMetadata,
) -> Result<VerifierBuilder, UpstreamError> {
    let algorithms = id_token_algorithms(&metadata.id_token_signing_algs).ok_or_else(|| {
        UpstreamError::Discovery("id tokens are signed with neither RS256 nor ES256".into())
    })?;
    let mut policy = Policy::new(config.issuer.as_str(), config.client_id.as_str())
        .algorithms(algorithms)
        .max_token_bytes(MAX_ID_TOKEN_BYTES);
    if config.flavor == UpstreamFlavor::Google {
        policy = policy.also_accept_issuer(GOOGLE_LEGACY_ISSUER);
    }
    // Each ID token is used once: caching verified tokens would only cost memory.
    Ok(Verifier::builder(policy).token_cache_entries(0))
}

/// Verifies `id_token` with `verifier`, checks it against the login's `nonce` and
/// `config`, and builds the user it admits.
pub(super) async fn admit_id_token(
    verifier: &Verifier,
    config: &UpstreamConfig,
    id_token: &str,
    nonce: &str,
    now: u64,
) -> Result<AuthenticatedUser, Refusal> {
    let verified = verifier
        .verify::<IdTokenClaims>(id_token)
        .await
        .map_err(|e| Refusal::InvalidIdToken(e.kind().label()))?;
    let claims = verified.claims();

    let nonce_ok: bool = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_ok {
        return Err(Refusal::NonceMismatch);
    }
    if claims
        .azp
        .as_deref()
        .is_some_and(|azp| azp != config.client_id)
    {
        return Err(Refusal::InvalidIdToken("azp"));
    }
    if let Audience::Many(audiences) = &claims.aud
        && audiences.iter().any(|a| *a != config.client_id)
    {
        return Err(Refusal::InvalidIdToken("untrusted_audience"));
    }
    if claims.sub.is_empty() || claims.sub.len() > MAX_CLAIM_BYTES {
        return Err(Refusal::InvalidIdToken("sub"));
    }
    admit(config, claims, now)
}

/// Applies the admission rules to verified claims and builds the user.
fn admit(
    config: &UpstreamConfig,
    claims: &IdTokenClaims,
    now: u64,
) -> Result<AuthenticatedUser, Refusal> {
    let email = claims.email.as_deref().filter(|e| {
        e.len() <= MAX_CLAIM_BYTES && e.contains('@') && !e.chars().any(char::is_control)
    });
    let email_verified = email.is_some() && claims.email_verified == Some(EmailVerified(true));

    if !config.hosted_domains.is_empty() {
        let hd = claims.hd.as_deref().map(str::to_ascii_lowercase);
        if !hd.is_some_and(|hd| config.hosted_domains.contains(&hd)) {
            return Err(Refusal::HostedDomainMismatch);
        }
    }
    if config.has_email_rule() {
        let Some(email) = email.filter(|_| email_verified) else {
            return Err(Refusal::EmailNotVerified);
        };
        if !config.email_allowed(email) {
            return Err(Refusal::EmailNotAllowed);
        }
    }

    let issuer = if claims.iss == GOOGLE_LEGACY_ISSUER && config.flavor == UpstreamFlavor::Google {
        config.issuer.as_str()
    } else {
        claims.iss.as_str()
    };
    let subject = federated_subject(issuer, &claims.sub);
    let auth_time = claims
        .auth_time
        .filter(|t| *t <= now && *t > 0)
        .unwrap_or(now);
    let mut user = AuthenticatedUser::new(
        subject,
        auth_time,
        LoginMethod::Upstream {
            issuer: claims.iss.clone(),
        },
    );
    if email_verified {
        user.email = email.map(str::to_owned);
        user.email_verified = true;
    }
    user.name = claims
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= MAX_CLAIM_BYTES && !n.chars().any(char::is_control))
        .map(str::to_owned);
    Ok(user)
}

/// The ID token claims this login reads.
#[derive(Deserialize)]
struct IdTokenClaims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<EmailVerified>,
    #[serde(default)]
    hd: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    auth_time: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(#[allow(dead_code)] String),
    Many(Vec<String>),
}

/// `email_verified`: a JSON boolean, or the strings `"true"`/`"false"` some providers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EmailVerified(bool);

impl<'de> Deserialize<'de> for EmailVerified {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        Ok(EmailVerified(match Raw::deserialize(deserializer)? {
            Raw::Bool(b) => b,
            Raw::Text(t) => t == "true",
        }))
    }
}

#[cfg(test)]
mod tests;
