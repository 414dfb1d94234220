//! Building HTTP responses.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use url::form_urlencoded;

use super::errors::OAuthError;
use crate::html;
use crate::redirect::RedirectUri;

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

/// An RFC 6749 §5.2 JSON error.
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
    response
}

/// A page built by [`html::page`] or a login method.
pub(crate) fn page(response: Response<Bytes>) -> HttpResponse {
    response.map(Full::new)
}

/// An error page: never a redirect.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(html::error_page(status, title, message))
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

/// `redirect_uri` with `params` appended to its query (it has no fragment).
pub(crate) fn redirect_location(redirect_uri: &RedirectUri, params: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    let base = redirect_uri.as_str();
    let separator = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{separator}{query}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_appended_to_an_existing_query() {
        let plain = RedirectUri::parse("https://app.example/cb").unwrap();
        assert_eq!(
            redirect_location(&plain, &[("code", "a b"), ("state", "x&y")]),
            "https://app.example/cb?code=a+b&state=x%26y"
        );
        let with_query = RedirectUri::parse("https://app.example/cb?tenant=1").unwrap();
        assert_eq!(
            redirect_location(&with_query, &[("code", "c")]),
            "https://app.example/cb?tenant=1&code=c"
        );
    }
}
