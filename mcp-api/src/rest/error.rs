//! The one JSON error shape of the REST API, and the typed error every handler returns.

use std::error::Error as _;

use http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Response, StatusCode};
use jwks_verify::Challenge;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::routes::{RequiredScope, Route};
use crate::auth::CallerError;
use crate::http::{BodyError, ResponseBody, json_response};
use crate::store::{ErrorKind, StoreError};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ErrorResponse {
    /// What went wrong, as a stable code.
    pub error: ErrorCode,
    /// A human-readable explanation in lowercase words; not a stable API, never contains
    /// stored memory text.
    pub message: String,
    /// The request field at fault, when there is one (e.g. `text`, `size`, `memory_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The stable error codes of [`ErrorResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 422 (or 400): a parameter or body field breaks a rule or a limit; nothing was written.
    InvalidRequest,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 401: no usable access token.
    Unauthorized,
    /// 403: the access token lacks the scope the route needs.
    InsufficientScope,
    /// 404: no such route, or no such memory among the caller's.
    NotFound,
    /// 405: the route exists with other methods (see `Allow`).
    MethodNotAllowed,
    /// 413: the body is larger than the limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 403: the user's storage quota (memories or bytes) is reached; nothing was written.
    QuotaExceeded,
    /// 429: the user made too many requests (see `Retry-After`); set by the server's
    /// per-user rate limit, in front of the API.
    RateLimited,
    /// 503: the store is busy or unavailable; retry later.
    ServiceUnavailable,
    /// 500: the store failed; the details are in the server log.
    InternalError,
}

/// Why a request failed; every variant becomes an [`ErrorResponse`].
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No verified token in the request, or an unusable subject.
    Unauthenticated(CallerError),
    /// The token lacks a scope.
    InsufficientScope(RequiredScope),
    /// No route has this path.
    RouteNotFound,
    /// The id names none of the caller's memories.
    MemoryNotFound,
    /// The path exists with these methods only.
    MethodNotAllowed(Vec<Method>),
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body could not be read whole.
    Body(BodyError),
    /// The body is not JSON.
    InvalidJson,
    /// A parameter or field breaks a rule.
    InvalidRequest {
        /// The field at fault, if known.
        field: Option<String>,
        /// What is wrong, in lowercase words.
        message: String,
    },
    /// The store failed for a reason other than the input.
    Store(StoreError),
}

impl ApiError {
    /// A rule broken by a request field.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Converts a store error; invalid input names the REST field, using `renames` to map
    /// the store's field names to this route's (e.g. `text` to `memory_content`).
    pub(crate) fn from_store(error: StoreError, renames: &[(&str, &'static str)]) -> Self {
        let ErrorKind::InvalidInput { field, reason } = error.kind() else {
            return ApiError::Store(error);
        };
        let field = renames
            .iter()
            .find(|(store_name, _)| store_name == field)
            .map_or(*field, |(_, rest_name)| rest_name);
        ApiError::invalid(field, format!("invalid {field}: {reason}"))
    }

    /// Logs what the client is not told (only store failures), at error level.
    pub(crate) fn log(&self, route: Route) {
        let ApiError::Store(error) = self else {
            return;
        };
        let source = error.source().map(ToString::to_string);
        tracing::error!(
            operation = route.operation_id(),
            error = %error,
            source = source.as_deref().unwrap_or(""),
            "memory store failed"
        );
    }

    /// The response, with `WWW-Authenticate`, `Allow` or `Retry-After` where they belong.
    pub(crate) fn into_response(self, challenge: &Challenge) -> Response<ResponseBody> {
        let status = self.status();
        let (error, message, field) = self.describe();
        let body = ErrorResponse {
            error,
            message,
            field,
        };
        let mut response = json_response(status, &body);
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthenticated(CallerError::Unauthenticated) => {
                headers.insert(WWW_AUTHENTICATE, challenge.missing_token_header().clone());
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(WWW_AUTHENTICATE, challenge.invalid_token_header().clone());
            }
            ApiError::InsufficientScope(scope) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    challenge.insufficient_scope_header(scope.as_str()),
                );
            }
            ApiError::MethodNotAllowed(methods) => {
                headers.insert(ALLOW, allow_header(&methods));
            }
            ApiError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::RouteNotFound | ApiError::MemoryNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Body(error) => error.status(),
            ApiError::InvalidJson => StatusCode::BAD_REQUEST,
            ApiError::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Store(error) => store_status(error),
        }
    }

    fn describe(&self) -> (ErrorCode, String, Option<String>) {
        let (code, message) = match self {
            ApiError::Unauthenticated(_) => (
                ErrorCode::Unauthorized,
                "a valid access token is required".to_owned(),
            ),
            ApiError::InsufficientScope(scope) => (
                ErrorCode::InsufficientScope,
                format!("the access token lacks the {} scope", scope.as_str()),
            ),
            ApiError::RouteNotFound => (ErrorCode::NotFound, "no such route".to_owned()),
            ApiError::MemoryNotFound => (ErrorCode::NotFound, "no such memory".to_owned()),
            ApiError::MethodNotAllowed(_) => (
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route".to_owned(),
            ),
            ApiError::UnsupportedMediaType => (
                ErrorCode::UnsupportedMediaType,
                "the body must be application/json".to_owned(),
            ),
            ApiError::Body(error @ BodyError::TooLarge { .. }) => {
                (ErrorCode::PayloadTooLarge, error.to_string())
            }
            ApiError::Body(error) => (ErrorCode::InvalidRequest, error.to_string()),
            ApiError::InvalidJson => (
                ErrorCode::InvalidJson,
                "the body is not valid JSON".to_owned(),
            ),
            ApiError::InvalidRequest { field, message } => {
                return (ErrorCode::InvalidRequest, message.clone(), field.clone());
            }
            ApiError::Store(error) if matches!(error.kind(), ErrorKind::QuotaExceeded { .. }) => {
                (ErrorCode::QuotaExceeded, error.to_string())
            }
            ApiError::Store(error) if store_status(error) == StatusCode::SERVICE_UNAVAILABLE => (
                ErrorCode::ServiceUnavailable,
                "the memory store is busy, retry later".to_owned(),
            ),
            ApiError::Store(_) => (
                ErrorCode::InternalError,
                "the memory store failed".to_owned(),
            ),
        };
        (code, message, None)
    }
}

/// 503 for failures a retry may fix, 500 for the rest.
fn store_status(error: &StoreError) -> StatusCode {
    match error.kind() {
        ErrorKind::Busy | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn allow_header(methods: &[Method]) -> HeaderValue {
    let allowed: Vec<&str> = methods.iter().map(Method::as_str).collect();
    // Method names are HTTP tokens, so the joined list is a valid header value.
    HeaderValue::from_str(&allowed.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_field_names_are_renamed_to_the_route_fields() {
        let store_error = StoreError::from(ErrorKind::InvalidInput {
            field: "text",
            reason: "must not be empty".to_owned(),
        });
        let ApiError::InvalidRequest { field, message } =
            ApiError::from_store(store_error, &[("text", "memory_content")])
        else {
            panic!("expected invalid request");
        };
        assert_eq!(field.as_deref(), Some("memory_content"));
        assert_eq!(message, "invalid memory_content: must not be empty");
    }

    #[test]
    fn backend_failures_are_generic_500s() {
        let response =
            ApiError::Store(StoreError::from(ErrorKind::Backend)).into_response(&Challenge::new());
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let busy =
            ApiError::Store(StoreError::from(ErrorKind::Busy)).into_response(&Challenge::new());
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[RETRY_AFTER], "1");
    }

    /// A database that cannot be reached (PostgreSQL restarting, failing over) is a
    /// 503 the client may retry, not a 500.
    #[test]
    fn an_unavailable_store_is_a_503_with_retry_after() {
        let response = ApiError::Store(StoreError::from(ErrorKind::Unavailable))
            .into_response(&Challenge::new());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn method_not_allowed_lists_the_methods() {
        let response = ApiError::MethodNotAllowed(vec![Method::GET, Method::PUT])
            .into_response(&Challenge::new());
        assert_eq!(response.headers()[ALLOW], "GET, PUT");
    }
}
