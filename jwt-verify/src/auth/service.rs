//! [`BearerAuth`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::challenge::Challenge;
use super::future::ResponseFuture;
use crate::error::ErrorKind;
use crate::verifier::{Attempt, Verifier};

/// The service made by [`BearerAuthLayer`](super::BearerAuthLayer).
pub struct BearerAuth<S, C> {
    inner: S,
    verifier: Verifier,
    challenge: Arc<Challenge>,
    allow_preflight: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> BearerAuth<S, C> {
    pub(crate) fn new(
        inner: S,
        verifier: Verifier,
        challenge: Arc<Challenge>,
        allow_preflight: bool,
    ) -> Self {
        BearerAuth {
            inner,
            verifier,
            challenge,
            allow_preflight,
            _claims: PhantomData,
        }
    }
}

impl<S: Clone, C> Clone for BearerAuth<S, C> {
    fn clone(&self) -> Self {
        BearerAuth {
            inner: self.inner.clone(),
            verifier: self.verifier.clone(),
            challenge: Arc::clone(&self.challenge),
            allow_preflight: self.allow_preflight,
            _claims: PhantomData,
        }
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for BearerAuth<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// What the `Authorization` header holds.
enum Credentials<'a> {
    Bearer(&'a str),
    /// No `Authorization` header, or another scheme.
    Missing,
    /// Several `Authorization` headers, or a bearer value that is not a token68.
    Malformed,
}

fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credentials::Missing;
    };
    if values.next().is_some() {
        return Credentials::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("bearer") {
            Credentials::Malformed
        } else {
            Credentials::Missing
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Missing;
    }
    let token = token.trim_start_matches(' ');
    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let is_b64token = !token.is_empty()
        && token.trim_end_matches('=').bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if is_b64token {
        Credentials::Bearer(token)
    } else {
        Credentials::Malformed
    }
}

fn is_preflight<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The response for a token that did not verify: 401 `invalid_token` (with
/// `error_description="token revoked"` for a revoked token), or 503 with `Retry-After` and
/// no challenge when the key set or the token's status list is unavailable (RFC 6750 has
/// no error code for "cannot check right now", and the token may well be fine).
pub(crate) fn refusal_response<B: Default>(challenge: &Challenge, kind: ErrorKind) -> Response<B> {
    if kind == ErrorKind::Revoked {
        return challenge.response(
            StatusCode::UNAUTHORIZED,
            challenge.revoked_token_header().clone(),
        );
    }
    if matches!(
        kind,
        ErrorKind::KeySetUnavailable | ErrorKind::StatusUnavailable
    ) {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    }
    challenge.response(
        StatusCode::UNAUTHORIZED,
        challenge.invalid_token_header().clone(),
    )
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self.allow_preflight && is_preflight(&request) {
            return ResponseFuture::inner(self.inner.call(request));
        }
        let token = match credentials(request.headers()) {
            Credentials::Bearer(token) => token,
            Credentials::Missing => {
                let header = self.challenge.missing_token_header().clone();
                return ResponseFuture::ready(
                    self.challenge.response(StatusCode::UNAUTHORIZED, header),
                );
            }
            Credentials::Malformed => {
                let header = HeaderValue::from_static("Bearer error=\"invalid_request\"");
                return ResponseFuture::ready(
                    self.challenge.response(StatusCode::BAD_REQUEST, header),
                );
            }
        };
        // The public two-phase seam, as any framework would use it.
        match self.verifier.attempt::<C>(token) {
            Attempt::Verified(verified) => {
                request.extensions_mut().insert(verified);
                ResponseFuture::inner(self.inner.call(request))
            }
            Attempt::Refused(error) => {
                ResponseFuture::ready(refusal_response(&self.challenge, error.kind()))
            }
            Attempt::Pending(pending) => {
                // Cold path: wait for the key (or first status list) fetch, then verify again.
                let token = token.to_owned();
                let challenge = Arc::clone(&self.challenge);
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(Box::pin(async move {
                    match pending.verify::<C>(&token).await {
                        Ok(verified) => {
                            request.extensions_mut().insert(verified);
                            inner.call(request).await
                        }
                        Err(error) => Ok(refusal_response(&challenge, error.kind())),
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> &'static str {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        match credentials(&headers) {
            Credentials::Bearer(_) => "bearer",
            Credentials::Missing => "missing",
            Credentials::Malformed => "malformed",
        }
    }

    #[test]
    fn authorization_header_parsing() {
        assert_eq!(parse(&[]), "missing");
        assert_eq!(parse(&["Bearer abc.def.ghi"]), "bearer");
        assert_eq!(parse(&["bearer abc.def.ghi"]), "bearer");
        assert_eq!(parse(&["BEARER  abc"]), "bearer");
        assert_eq!(parse(&["Basic dXNlcjpwYXNz"]), "missing");
        assert_eq!(parse(&["Bearer"]), "malformed");
        assert_eq!(parse(&["Bearer "]), "malformed");
        assert_eq!(parse(&["Bearer a b"]), "malformed");
        assert_eq!(parse(&["Bearer a\"b"]), "malformed");
        assert_eq!(parse(&["Bearer a", "Bearer b"]), "malformed");
    }

    #[test]
    fn revoked_and_unavailable_status_responses() {
        let challenge = Challenge::new().realm("api");
        let revoked = refusal_response::<String>(&challenge, ErrorKind::Revoked);
        assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            revoked.headers()[http::header::WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token", error_description="token revoked""#
        );
        let unavailable = refusal_response::<String>(&challenge, ErrorKind::StatusUnavailable);
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.headers()[RETRY_AFTER], "5");
        assert!(
            !unavailable
                .headers()
                .contains_key(http::header::WWW_AUTHENTICATE)
        );
        let other = refusal_response::<String>(&challenge, ErrorKind::Expired);
        assert_eq!(
            other.headers()[http::header::WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token""#
        );
    }
}
