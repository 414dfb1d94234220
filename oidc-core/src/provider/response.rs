//! Building HTTP responses.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::errors::{BearerFailure, ErrorCode, OAuthError};
use crate::html;
use crate::status_list::STATUS_LIST_MEDIA_TYPE;

/// What every endpoint returns.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A response with `body` and `status`.
pub(crate) fn with_body(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// A JSON response that must not be cached (tokens, userinfo, registrations, errors).
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let Ok(bytes) = serde_json::to_vec(body) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthError::server_error(),
        );
    };
    let mut response = with_body(status, bytes);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A public JSON document (discovery, JWKS) with `cache_control` from
/// [`public_cache_control`].
pub(crate) fn public_json(body: Bytes, cache_control: HeaderValue) -> HttpResponse {
    let mut response = with_body(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, cache_control);
    response
}

/// `Cache-Control: public, max-age={max_age}`, built once per provider.
pub(crate) fn public_cache_control(max_age: u64) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| unreachable!("ascii letters and digits are a valid header value"))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// How long a client should wait before retrying after a 503: `Retry-After: 1`.
fn retry_after_unavailable() -> HeaderValue {
    HeaderValue::from_static("1")
}

/// An RFC 6749 §5.2 JSON error; a 503 carries `Retry-After`.
pub(crate) fn oauth_error(status: StatusCode, error: OAuthError) -> HttpResponse {
    let body = ErrorBody {
        error: error.code().as_str(),
        error_description: error.description(),
    };
    // Two static strings always serialize.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = with_body(status, bytes);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, retry_after_unavailable());
    }
    response
}

/// A failure of the server itself: 503 with `Retry-After` for `temporarily_unavailable`,
/// 500 otherwise.
pub(crate) fn server_failure(error: OAuthError) -> HttpResponse {
    let status = if error.code() == ErrorCode::TemporarilyUnavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    oauth_error(status, error)
}

/// An OAuth error of the endpoints clients call directly (token, introspection,
/// revocation, registration): `invalid_client` is 401 with a Basic challenge (RFC 6749
/// §5.2; HTTP requires the challenge with every 401, so it is sent whichever method the
/// client tried), `server_error` 500, `temporarily_unavailable` 503, anything else 400.
pub(crate) fn client_error(error: OAuthError) -> HttpResponse {
    let status = match error.code() {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = oauth_error(status, error);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauth\", charset=\"UTF-8\""),
        );
    }
    response
}

/// A refused bearer request: the RFC 6750 §3 challenge with `realm` (and `scope="openid"`
/// after `insufficient_scope` when `scope_hint` says so), or a bare 500.
pub(crate) fn bearer_failure(
    failure: BearerFailure,
    realm: &str,
    scope_hint: bool,
) -> HttpResponse {
    let (status, error) = match failure {
        BearerFailure::Server(error) => return server_failure(error),
        BearerFailure::Invalid(error) => return oauth_error(StatusCode::BAD_REQUEST, error),
        BearerFailure::Challenge { status, error } => (status, error),
    };
    let (mut response, header) = match error {
        None => (
            with_body(status, Bytes::new()),
            format!("Bearer realm=\"{realm}\""),
        ),
        Some(error) => {
            let mut header = format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                error.code(),
                error.description()
            );
            if scope_hint && error.code() == ErrorCode::InsufficientScope {
                header.push_str(", scope=\"openid\"");
            }
            (oauth_error(status, error), header)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// An empty 200 that must not be cached (a revocation).
pub(crate) fn empty_no_store() -> HttpResponse {
    let mut response = with_body(StatusCode::OK, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A signed Status List Token.
pub(crate) fn status_list_token(token: Bytes, cache_control: &HeaderValue) -> HttpResponse {
    let mut response = with_body(StatusCode::OK, token);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(STATUS_LIST_MEDIA_TYPE),
    );
    headers.insert(CACHE_CONTROL, cache_control.clone());
    response
}

/// A page built by [`html::page`] or a login method.
pub(crate) fn page(response: Response<Bytes>) -> HttpResponse {
    response.map(Full::new)
}

/// An error page: never a redirect. A 503 carries `Retry-After`.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let mut response = page(html::error_page(status, title, message));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, retry_after_unavailable());
    }
    response
}

/// A redirect to `location` (302 after a GET, 303 after a POST).
pub(crate) fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    let Ok(value) = HeaderValue::from_str(location) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The redirect could not be built.",
        );
    };
    let mut response = with_body(status, Bytes::new());
    response.headers_mut().insert(LOCATION, value);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 429 with `Retry-After`.
pub(crate) fn too_many_requests(retry_after: u64) -> HttpResponse {
    let mut response = json(
        StatusCode::TOO_MANY_REQUESTS,
        &ErrorBody {
            error: "rate_limited",
            error_description: "too many requests; retry later",
        },
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// 404.
pub(crate) fn not_found() -> HttpResponse {
    json(
        StatusCode::NOT_FOUND,
        &ErrorBody {
            error: "not_found",
            error_description: "no such endpoint",
        },
    )
}

/// 405 with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &ErrorBody {
            error: "method_not_allowed",
            error_description: "method not allowed",
        },
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    response
}
