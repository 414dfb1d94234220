//! HTTP responses shared by the transports, and request-header negotiation.

use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use jwks_verify::Challenge;

use super::ResponseFormat;
use super::jsonrpc::{Reply, RequestId, RpcError, code};
use crate::auth::CallerError;
use crate::http::{ResponseBody, empty_response, full};

/// A JSON-RPC message as an `application/json` response.
pub(crate) fn rpc_response(status: StatusCode, reply: &Reply) -> Response<ResponseBody> {
    let mut response = Response::new(full(reply.to_json()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON-RPC error without an id.
pub(crate) fn rpc_error(status: StatusCode, error: RpcError) -> Response<ResponseBody> {
    rpc_response(status, &Reply::error_without_id(error))
}

/// `403`: the browser origin is not allowed.
pub(crate) fn forbidden_origin() -> Response<ResponseBody> {
    rpc_error(
        StatusCode::FORBIDDEN,
        RpcError::invalid_request("origin not allowed"),
    )
}

/// `401` for a request without usable verified claims.
pub(crate) fn unauthorized(challenge: &Challenge, error: CallerError) -> Response<ResponseBody> {
    let header = match error {
        CallerError::Unauthenticated => challenge.missing_token_header().clone(),
        CallerError::InvalidSubject => challenge.invalid_token_header().clone(),
    };
    let mut response = empty_response(StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(WWW_AUTHENTICATE, header);
    response
}

/// `404` for a session id that is unknown, expired, closed or someone else's.
pub(crate) fn session_not_found() -> Response<ResponseBody> {
    rpc_error(
        StatusCode::NOT_FOUND,
        RpcError::invalid_request("session not found"),
    )
}

/// `503` when no session can be opened now.
pub(crate) fn no_session_available(id: Option<RequestId>) -> Response<ResponseBody> {
    let reply = Reply::Error {
        id,
        error: RpcError::new(
            code::INTERNAL_ERROR,
            "too many open sessions; try again later",
        ),
    };
    let mut response = rpc_response(StatusCode::SERVICE_UNAVAILABLE, &reply);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// `503` when the shared session directory (PostgreSQL) cannot be reached.
pub(crate) fn sessions_unavailable(id: Option<RequestId>) -> Response<ResponseBody> {
    let reply = Reply::Error {
        id,
        error: RpcError::new(
            code::INTERNAL_ERROR,
            "sessions are unavailable; try again later",
        ),
    };
    let mut response = rpc_response(StatusCode::SERVICE_UNAVAILABLE, &reply);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// `429` when the caller's subject already holds as many SSE streams as one may.
pub(crate) fn too_many_streams() -> Response<ResponseBody> {
    let reply = Reply::error_without_id(RpcError::new(
        code::INTERNAL_ERROR,
        "too many open streams for this user; close one or try again later",
    ));
    let mut response = rpc_response(StatusCode::TOO_MANY_REQUESTS, &reply);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

/// `405` naming the methods the path allows.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = empty_response(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// `406`: the client accepts neither JSON nor an event stream.
pub(crate) fn not_acceptable() -> Response<ResponseBody> {
    rpc_error(
        StatusCode::NOT_ACCEPTABLE,
        RpcError::invalid_request(
            "the Accept header must allow application/json or text/event-stream",
        ),
    )
}

/// `415`: the body is not declared as JSON.
pub(crate) fn unsupported_media_type() -> Response<ResponseBody> {
    rpc_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RpcError::invalid_request("the Content-Type must be application/json"),
    )
}

/// `202` with no body: a notification or response was accepted.
pub(crate) fn accepted() -> Response<ResponseBody> {
    empty_response(StatusCode::ACCEPTED)
}

/// The format to answer a request in: the configured preference if the client accepts
/// it, else the other one if it accepts that; `None` if it accepts neither. A request
/// without `Accept` accepts anything.
pub(crate) fn response_format(
    headers: &HeaderMap,
    preferred: ResponseFormat,
) -> Option<ResponseFormat> {
    let accepts_json = accepts(headers, "application", "json");
    let accepts_sse = accepts(headers, "text", "event-stream");
    match preferred {
        ResponseFormat::Sse if accepts_sse => Some(ResponseFormat::Sse),
        _ if accepts_json => Some(ResponseFormat::Json),
        _ if accepts_sse => Some(ResponseFormat::Sse),
        _ => None,
    }
}

/// Whether the client accepts an event stream.
pub(crate) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    accepts(headers, "text", "event-stream")
}

/// Whether `Accept` allows `kind/subtype` (exactly, as `kind/*` or `*/*`, with `q` > 0).
fn accepts(headers: &HeaderMap, kind: &str, subtype: &str) -> bool {
    let mut values = headers.get_all(ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| media_range_allows(range, kind, subtype))
}

fn media_range_allows(range: &str, kind: &str, subtype: &str) -> bool {
    let mut parts = range.split(';');
    let media = parts.next().unwrap_or_default().trim();
    let Some((range_kind, range_subtype)) = media.split_once('/') else {
        return false;
    };
    let kind_matches = range_kind == "*" || range_kind.eq_ignore_ascii_case(kind);
    let subtype_matches = range_subtype == "*" || range_subtype.eq_ignore_ascii_case(subtype);
    kind_matches && subtype_matches && !parts.any(is_zero_quality)
}

/// `q=0`, `q=0.0`, `q=0.000`: "not acceptable".
fn is_zero_quality(parameter: &str) -> bool {
    let Some((name, value)) = parameter.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("q")
        && value.trim().strip_prefix('0').is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix('.')
                    .is_some_and(|digits| digits.bytes().all(|b| b == b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn format_negotiation() {
        let both = accept("application/json, text/event-stream");
        assert_eq!(
            response_format(&both, ResponseFormat::Json),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            response_format(&both, ResponseFormat::Sse),
            Some(ResponseFormat::Sse)
        );
        let sse_only = accept("text/event-stream");
        assert_eq!(
            response_format(&sse_only, ResponseFormat::Json),
            Some(ResponseFormat::Sse)
        );
        let json_only = accept("application/json;q=0.9");
        assert_eq!(
            response_format(&json_only, ResponseFormat::Sse),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            response_format(&accept("*/*"), ResponseFormat::Json),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            response_format(&HeaderMap::new(), ResponseFormat::Sse),
            Some(ResponseFormat::Sse)
        );
        assert_eq!(
            response_format(&accept("text/html"), ResponseFormat::Json),
            None
        );
        assert_eq!(
            response_format(
                &accept("application/json;q=0, text/event-stream;q=0.000"),
                ResponseFormat::Json
            ),
            None
        );
    }
}
