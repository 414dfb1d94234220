//! [`BearerAuthLayer`].

use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use super::challenge::Challenge;
use super::service::BearerAuth;
use crate::standard_claims::StandardClaims;
use crate::verifier::Verifier;

/// Requires a valid `Authorization: Bearer` token on every request of the wrapped service.
///
/// On success the [`Verified<C>`](crate::Verified) claims are in the request extensions. On
/// failure the inner service is not called: a missing token gets `401` with a bare
/// challenge, a refused token `401` with `error="invalid_token"` (plus
/// `error_description="token revoked"` when its status list says so), several
/// `Authorization` headers `400` with `error="invalid_request"`, and an unavailable key set
/// or status list (under fail-closed) `503` with `Retry-After`.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use jwks_verify::{BearerAuthLayer, Challenge, Policy, StandardClaims, Verified, Verifier};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let jwks = br#"{"keys":[{"kty":"RSA","kid":"k1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
/// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
///     .static_jwks(jwks)
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(BearerAuthLayer::<StandardClaims>::new(verifier).challenge(Challenge::new().realm("api")))
///     .service_fn(|req: Request<String>| async move {
///         let who = req.extensions().get::<Verified<StandardClaims>>().and_then(|v| v.sub.clone());
///         Ok::<_, Infallible>(Response::new(format!("hello {}", who.unwrap_or_default())))
///     });
///
/// let response = service.oneshot(Request::new(String::new())).await?;
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="api""#);
/// # Ok(()) }
/// ```
pub struct BearerAuthLayer<C = StandardClaims> {
    verifier: Verifier,
    challenge: Arc<Challenge>,
    allow_preflight: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<C> BearerAuthLayer<C> {
    /// Checks tokens with `verifier`, deserializing claims into `C`.
    pub fn new(verifier: Verifier) -> Self {
        BearerAuthLayer {
            verifier,
            challenge: Arc::new(Challenge::new()),
            allow_preflight: false,
            _claims: PhantomData,
        }
    }

    /// The parameters of the `WWW-Authenticate` challenges.
    #[must_use]
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Arc::new(challenge);
        self
    }

    /// Let CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) through without
    /// a token, so a CORS layer inside can answer them. Off by default.
    #[must_use]
    pub fn allow_preflight(mut self, allow: bool) -> Self {
        self.allow_preflight = allow;
        self
    }
}

impl<C> Clone for BearerAuthLayer<C> {
    fn clone(&self) -> Self {
        BearerAuthLayer {
            verifier: self.verifier.clone(),
            challenge: Arc::clone(&self.challenge),
            allow_preflight: self.allow_preflight,
            _claims: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for BearerAuthLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("verifier", &self.verifier)
            .field("challenge", &self.challenge)
            .field("allow_preflight", &self.allow_preflight)
            .finish()
    }
}

impl<S, C> Layer<S> for BearerAuthLayer<C> {
    type Service = BearerAuth<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth::new(
            inner,
            self.verifier.clone(),
            Arc::clone(&self.challenge),
            self.allow_preflight,
        )
    }
}
