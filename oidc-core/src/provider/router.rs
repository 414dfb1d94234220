//! The one module between HTTP and the endpoints: it routes a request, applies CORS,
//! rate limits and the body limit, runs the shared preludes (client authentication,
//! bearer tokens), parses each endpoint's typed request once, calls the endpoint with
//! `now`, and turns its typed result into the HTTP response.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::{ORIGIN, REFERRER_POLICY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS};
use http::request::Parts;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::json;

use super::account::{self, AccountRevokeRequest};
use super::authorize::{self, AuthorizeRequest, SelectLoginRequest};
use super::client_auth::authenticated_form;
use super::consent::{self, ConsentForm};
use super::errors::{ErrorCode, OAuthError};
use super::health::{self, HealthRequest};
use super::introspection::{self, IntrospectionRequest};
use super::pages::BrowserAnswer;
use super::rate_limit::{self, LimitedEndpoint, RateDecision};
use super::registration::{self, Registration};
use super::response::{self, HttpResponse};
use super::revocation::{self, RevocationRequest};
use super::routes::Route;
use super::state::ProviderState;
use super::token::{self, TokenRequest};
use super::userinfo::{self, UserinfoRequest};
use super::{cors, status_lists};
use crate::audit::{self, AuditEvent};
use crate::authn::LoginOutcome;

/// Answers one request.
pub(crate) async fn handle<B>(state: &ProviderState, request: Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let now = state.now();
    let route = state.paths().route(state.config(), request.uri().path());
    let cors_enabled = matches!(
        route,
        Route::Discovery
            | Route::Jwks
            | Route::Token
            | Route::Userinfo
            | Route::Register
            | Route::Revoke
            | Route::StatusListAggregation
            | Route::StatusList(_)
    );
    let cors_policy = &state.config().cors;
    let mut response = if cors_enabled && request.method() == Method::OPTIONS {
        let mut response = response::with_body(StatusCode::NO_CONTENT, Bytes::new());
        let origin = request.headers().get(ORIGIN);
        cors::apply_preflight(cors_policy, origin, response.headers_mut());
        response
    } else {
        // Only the `Origin` is kept: the other headers may hold credentials.
        let origin = cors_enabled.then(|| request.headers().get(ORIGIN).cloned());
        let mut response = dispatch(state, route, request, now).await;
        if let Some(origin) = origin {
            cors::apply(cors_policy, origin.as_ref(), response.headers_mut());
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(REFERRER_POLICY) {
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

async fn dispatch<B>(
    state: &ProviderState,
    route: Route,
    request: Request<B>,
    now: u64,
) -> HttpResponse
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = &state.config().rate_limits;
    let limited = match route {
        Route::Authorize => Some((LimitedEndpoint::Authorize, limits.authorize)),
        Route::SelectLogin | Route::Consent | Route::Login(_) => {
            Some((LimitedEndpoint::Login, limits.login))
        }
        Route::Token
        | Route::Revoke
        | Route::Introspect
        | Route::AccountGrants
        | Route::AccountRevoke => Some((LimitedEndpoint::Token, limits.token)),
        Route::Register => Some((LimitedEndpoint::Register, limits.register)),
        _ => None,
    };
    if let Some((endpoint, Some(limit))) = limited {
        let client: Option<IpAddr> = request
            .extensions()
            .get::<SocketAddr>()
            .map(|peer| rate_limit::group(peer.ip()));
        match state.rate_limits().take(endpoint, client, limit, now).await {
            Ok(RateDecision::Allowed) => {}
            Ok(RateDecision::Limited { retry_after }) => {
                audit::record(&AuditEvent::RateLimited {
                    endpoint: endpoint.name(),
                });
                return response::too_many_requests(retry_after);
            }
            // Fail open: see the `rate_limit` module documentation.
            Err(error) => tracing::warn!(
                %error,
                endpoint = endpoint.name(),
                "the rate limit store failed; letting the request through"
            ),
        }
    }

    let (parts, body) = request.into_parts();
    let body = match read_body(body, state.config().max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let method = &parts.method;
    let is_get = method == Method::GET || method == Method::HEAD;
    let is_post = method == Method::POST;
    match route {
        Route::Discovery if is_get => {
            let (document, cache_control) = state.metadata_document();
            response::public_json(document, cache_control)
        }
        Route::Jwks if is_get => {
            let (document, cache_control) = state.jwks_document();
            response::public_json(document, cache_control)
        }
        Route::Authorize if is_get || is_post => {
            browser(match AuthorizeRequest::parse(&parts, &body) {
                Ok(request) => authorize::authorize(state, &request, now).await,
                Err(page) => page.into(),
            })
        }
        Route::SelectLogin if is_get => browser(match SelectLoginRequest::parse(&parts) {
            Ok(request) => authorize::select_login(state, &request, now).await,
            Err(page) => page.into(),
        }),
        Route::Consent if is_post => browser(
            match ConsentForm::parse(&parts, &body, state.issuer_origin()) {
                Ok(form) => consent::submit(state, &form, now).await,
                Err(page) => page.into(),
            },
        ),
        Route::Token if is_post => token(state, &parts, &body, now).await,
        Route::Userinfo if is_get || is_post => userinfo(state, &parts, now).await,
        Route::Revoke if is_post => revoke(state, &parts, &body, now).await,
        Route::Introspect if is_post => introspect(state, &parts, &body, now).await,
        Route::Register if is_post => register(state, &parts, &body, now).await,
        Route::Health if is_get => health(state, &parts, now).await,
        Route::AccountGrants if is_get => account_grants(state, &parts, now).await,
        Route::AccountRevoke if is_post => account_revoke(state, &parts, &body, now).await,
        Route::StatusListAggregation if is_get => status_list_aggregation(state).await,
        Route::StatusList(number) if is_get => status_list(state, number, now).await,
        Route::Login(index) => login(state, index, parts, body, now).await,
        Route::NotFound => response::not_found(),
        Route::Discovery
        | Route::Jwks
        | Route::SelectLogin
        | Route::Health
        | Route::AccountGrants
        | Route::StatusListAggregation
        | Route::StatusList(_) => response::method_not_allowed("GET"),
        Route::Authorize | Route::Userinfo => response::method_not_allowed("GET, POST"),
        Route::Consent
        | Route::Token
        | Route::Revoke
        | Route::Introspect
        | Route::Register
        | Route::AccountRevoke => response::method_not_allowed("POST"),
    }
}

/// `POST /token`: the client-authentication prelude, the typed request, the endpoint.
async fn token(state: &ProviderState, parts: &Parts, body: &[u8], now: u64) -> HttpResponse {
    let result = async {
        let (client, params) = authenticated_form(state, parts, body, now).await?;
        let request = TokenRequest::parse(&params)?;
        token::token(state, &client, &request, now).await
    };
    match result.await {
        Ok(tokens) => response::json(StatusCode::OK, &tokens),
        Err(error) => response::client_error(error),
    }
}

/// `POST /introspect`.
async fn introspect(state: &ProviderState, parts: &Parts, body: &[u8], now: u64) -> HttpResponse {
    let result = async {
        let (client, params) = authenticated_form(state, parts, body, now).await?;
        let request = IntrospectionRequest::parse(&params)?;
        introspection::introspect(state, &client, &request, now).await
    };
    match result.await {
        Ok(introspection) => response::json(StatusCode::OK, &introspection),
        Err(error) => response::client_error(error),
    }
}

/// `POST /revoke`: an empty 200 that must not be cached.
async fn revoke(state: &ProviderState, parts: &Parts, body: &[u8], now: u64) -> HttpResponse {
    let result = async {
        let (client, params) = authenticated_form(state, parts, body, now).await?;
        let request = RevocationRequest::parse(&params)?;
        revocation::revoke(state, &client, &request, now).await
    };
    match result.await {
        Ok(()) => response::empty_no_store(),
        Err(error) => response::client_error(error),
    }
}

/// `POST /register`.
async fn register(state: &ProviderState, parts: &Parts, body: &[u8], now: u64) -> HttpResponse {
    let max_redirect_uris = state.config().registration.max_redirect_uris;
    let result = async {
        let registration = Registration::parse(parts, body, max_redirect_uris)?;
        registration::register(state, registration, now).await
    };
    match result.await {
        Ok(client) => response::json(StatusCode::CREATED, &client.to_json()),
        Err(error) => response::client_error(error),
    }
}

/// `GET`/`POST /userinfo`.
async fn userinfo(state: &ProviderState, parts: &Parts, now: u64) -> HttpResponse {
    let result = async {
        let request = UserinfoRequest::parse(parts)?;
        userinfo::userinfo(state, &request, now).await
    };
    match result.await {
        Ok(claims) => response::json(StatusCode::OK, &claims),
        Err(failure) => response::bearer_failure(failure, userinfo::REALM, true),
    }
}

/// `GET /account/grants`.
async fn account_grants(state: &ProviderState, parts: &Parts, now: u64) -> HttpResponse {
    let result = async {
        let caller = account::authenticate(state, parts, now).await?;
        account::list_grants(state, &caller, now).await
    };
    match result.await {
        Ok(grants) => response::json(StatusCode::OK, &grants),
        Err(failure) => response::bearer_failure(failure, state.config().issuer.as_str(), false),
    }
}

/// `POST /account/grants/revoke`.
async fn account_revoke(
    state: &ProviderState,
    parts: &Parts,
    body: &[u8],
    now: u64,
) -> HttpResponse {
    let result = async {
        let caller = account::authenticate(state, parts, now).await?;
        let request = AccountRevokeRequest::parse(parts, body)?;
        account::revoke_grants(state, &caller, &request, now).await
    };
    match result.await {
        Ok(revoked) => response::json(StatusCode::OK, &revoked),
        Err(failure) => response::bearer_failure(failure, state.config().issuer.as_str(), false),
    }
}

/// `GET /health`.
async fn health(state: &ProviderState, parts: &Parts, now: u64) -> HttpResponse {
    let request = HealthRequest::parse(&parts.headers);
    match health::health(state, &request, now).await {
        Ok(health) => {
            let status = if health.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            response::json(status, &health.body)
        }
        // 401 for a wrong operator token (RFC 6750 §3).
        Err(health::WrongOperatorToken) => {
            let mut response = response::oauth_error(
                StatusCode::UNAUTHORIZED,
                OAuthError::new(ErrorCode::InvalidToken, "the operator token is not valid"),
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    }
}

/// `GET {issuer}/statuslists/{number}`.
async fn status_list(state: &ProviderState, number: u64, now: u64) -> HttpResponse {
    match status_lists::list(state, number, now).await {
        Ok(Some(token)) => {
            response::status_list_token(token, state.status_list_cache().cache_control())
        }
        Ok(None) => response::not_found(),
        Err(error) => response::server_failure(error),
    }
}

/// `GET {issuer}/statuslists`.
async fn status_list_aggregation(state: &ProviderState) -> HttpResponse {
    let json = status_lists::aggregation(state)
        .await
        .and_then(|body| serde_json::to_vec(&body).map_err(|_| OAuthError::server_error()));
    match json {
        Ok(json) => response::public_json(
            Bytes::from(json),
            state.status_list_cache().cache_control().clone(),
        ),
        Err(error) => response::server_failure(error),
    }
}

/// Hands a request under a login method's prefix to it; a finished login continues
/// with consent.
async fn login(
    state: &ProviderState,
    index: usize,
    parts: Parts,
    body: Bytes,
    now: u64,
) -> HttpResponse {
    let Some(authenticator) = state.authenticators().get(index) else {
        return response::not_found();
    };
    let request = Request::from_parts(parts, body);
    match authenticator.handle(request, now).await {
        LoginOutcome::Respond(response) => response::page(response),
        // The login method records `LoginSucceeded` itself.
        LoginOutcome::Authenticated { transaction, user } => {
            browser(consent::begin(state, &transaction, user, now).await)
        }
    }
}

/// The HTTP form of a browser-facing endpoint's answer.
fn browser(answer: BrowserAnswer) -> HttpResponse {
    match answer {
        BrowserAnswer::Page(page) => response::page(page),
        BrowserAnswer::Redirect { status, location } => response::redirect(status, &location),
        BrowserAnswer::Error(page) => response::error_page(page.status, page.title, page.message),
    }
}

/// Reads the body within `limit` bytes.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, HttpResponse>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(response::json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "invalid_request", "error_description": "the request body is too large"}),
        )),
        Err(_) => Err(response::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "the request body could not be read"}),
        )),
    }
}
