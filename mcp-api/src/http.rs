//! HTTP plumbing shared by the REST and MCP services: the response body type, bounded
//! request-body reading, the JSON content-type check and small response builders.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use serde::Serialize;

/// The body of every response this crate produces (JSON, empty, or an SSE stream).
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The error type request bodies must convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default limit for a JSON request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is longer than the limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("could not read the request body")]
    Read,
}

impl BodyError {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(_) => Err(BodyError::Read),
    }
}

/// Whether the request has exactly one `Content-Type`, and it is `application/json`
/// (parameters such as `charset=utf-8` allowed). A repeated header is refused: parsers
/// in front of this one may disagree on which value counts.
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// An empty body.
pub fn empty() -> ResponseBody {
    Empty::new().boxed_unsync()
}

/// A response with no body.
pub fn empty_response(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = status;
    response
}

/// A JSON response (`Cache-Control: no-store`: everything here is per-user data).
pub fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Response<ResponseBody> {
    // Serializing our own response types cannot fail (no maps with non-string keys).
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Converts a response with any body into one with [`ResponseBody`].
pub fn box_response<B>(response: Response<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    response.map(BodyExt::boxed_unsync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_limit_is_enforced() {
        let ok = read_body(Full::new(Bytes::from_static(b"12345")), 5)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"12345");
        let err = read_body(Full::new(Bytes::from_static(b"123456")), 5)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn content_types(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_TYPE, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_json_content_types_pass() {
        assert!(is_json_content_type(&content_types(&["application/json"])));
        assert!(is_json_content_type(&content_types(&[
            "Application/JSON; charset=utf-8"
        ])));
        assert!(!is_json_content_type(&content_types(&[])));
        assert!(!is_json_content_type(&content_types(&["text/plain"])));
        assert!(!is_json_content_type(&content_types(&[
            "application/jsonx"
        ])));
        assert!(!is_json_content_type(&content_types(&[
            "application/jsonp"
        ])));
        assert!(!is_json_content_type(&content_types(&[
            "application/json",
            "application/json"
        ])));
    }

    #[test]
    fn json_responses_are_not_cached() {
        let response = json_response(StatusCode::OK, &serde_json::json!({"a": 1}));
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
}
