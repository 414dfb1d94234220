//! JSON-RPC 2.0 as MCP uses it: one message per HTTP body, object `params`, non-null ids,
//! and the standard and MCP-reserved error codes.
//!
//! Batches (JSON arrays) are refused with `-32600`: only 2025-03-26 allowed them, 2025-06-18
//! removed them again, and no client in the field sends them.

use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Error codes of JSON-RPC 2.0 and of the MCP specification.
pub(crate) mod code {
    /// The body is not JSON.
    pub(crate) const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a JSON-RPC request, notification or response.
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    /// No such method (in the request's protocol era).
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are malformed, or name an unknown tool.
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    /// The server failed.
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
    /// 2026-07-28: the HTTP headers do not match the body, or are missing or malformed.
    pub(crate) const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request's protocol version is not supported.
    pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A request id: a string or a number, never null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum RequestId {
    /// A numeric id, echoed exactly as received.
    Number(Number),
    /// A string id.
    String(String),
}

/// A JSON-RPC request: it expects an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) id: RequestId,
    pub(crate) method: String,
    /// The parameters; an absent `params` reads as an empty object.
    pub(crate) params: Map<String, Value>,
}

/// One message a client posted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// A request, to be answered.
    Request(Request),
    /// A notification, acknowledged and otherwise ignored (this server keeps no
    /// per-request state a notification could change).
    Notification {
        /// The notification's method.
        method: String,
        /// Its parameters, for era detection.
        params: Map<String, Value>,
    },
    /// A response to a server-to-client request (this server sends none), ignored.
    Response,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn parse_error() -> Self {
        RpcError::new(code::PARSE_ERROR, "parse error: the body is not valid JSON")
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        RpcError::new(code::INVALID_REQUEST, message)
    }

    pub(crate) fn method_not_found(method: &str) -> Self {
        // The method name comes from the client; keep the echo short and printable.
        let shown: String = method
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        RpcError::new(code::METHOD_NOT_FOUND, format!("method not found: {shown}"))
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(code::INVALID_PARAMS, message)
    }

    pub(crate) fn header_mismatch(message: impl Into<String>) -> Self {
        RpcError::new(code::HEADER_MISMATCH, message)
    }

    /// `UnsupportedProtocolVersionError`, listing every version this server supports.
    pub(crate) fn unsupported_version(requested: &str) -> Self {
        let requested: String = requested
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        RpcError {
            code: code::UNSUPPORTED_PROTOCOL_VERSION,
            message: "unsupported protocol version".to_owned(),
            data: Some(serde_json::json!({
                "supported": super::ProtocolVersion::supported_names(),
                "requested": requested,
            })),
        }
    }
}

/// A message that could not be accepted, with the id when one could be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejection {
    pub(crate) id: Option<RequestId>,
    pub(crate) error: RpcError,
}

impl Rejection {
    fn without_id(error: RpcError) -> Box<Self> {
        Box::new(Rejection { id: None, error })
    }

    /// The error response for this rejection.
    pub(crate) fn into_reply(self) -> Reply {
        Reply::Error {
            id: self.id,
            error: self.error,
        }
    }
}

/// What the server answers to a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// The method's result.
    Result { id: RequestId, result: Value },
    /// An error; `id` is absent when the request's id could not be read.
    Error {
        id: Option<RequestId>,
        error: RpcError,
    },
}

#[derive(Serialize)]
struct ResultResponse<'a> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    result: &'a Value,
}

#[derive(Serialize)]
struct ErrorResponse<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RequestId>,
    error: &'a RpcError,
}

impl Reply {
    /// An error answer to a request without a readable id.
    pub(crate) fn error_without_id(error: RpcError) -> Self {
        Reply::Error { id: None, error }
    }

    /// The error, if this is one.
    pub(crate) fn error(&self) -> Option<&RpcError> {
        match self {
            Reply::Result { .. } => None,
            Reply::Error { error, .. } => Some(error),
        }
    }

    /// The response as compact JSON (one line, as SSE `data` needs).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let serialized = match self {
            Reply::Result { id, result } => serde_json::to_vec(&ResultResponse {
                jsonrpc: "2.0",
                id,
                result,
            }),
            Reply::Error { id, error } => serde_json::to_vec(&ErrorResponse {
                jsonrpc: "2.0",
                id: id.as_ref(),
                error,
            }),
        };
        // Values built from serde_json types always serialize (string keys only).
        serialized.unwrap_or_else(|_| {
            br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"}}"#.to_vec()
        })
    }
}

/// Parses one posted JSON-RPC message.
pub(crate) fn parse_message(body: &[u8]) -> Result<Message, Box<Rejection>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Rejection::without_id(RpcError::parse_error()))?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(Rejection::without_id(RpcError::invalid_request(
                "batches are not supported: send one JSON-RPC message per HTTP request",
            )));
        }
        _ => {
            return Err(Rejection::without_id(RpcError::invalid_request(
                "expected a JSON-RPC message object",
            )));
        }
    };
    let raw_id = object.remove("id");
    if is_response(&object, raw_id.as_ref()) {
        return Ok(Message::Response);
    }
    let id = raw_id.map(parse_id).transpose()?;
    let reject = |error: RpcError| {
        Box::new(Rejection {
            id: id.clone(),
            error,
        })
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(reject(RpcError::invalid_request(
            "expected \"jsonrpc\": \"2.0\"",
        )));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(reject(RpcError::invalid_request("method must be a string"))),
        None => return Err(reject(RpcError::invalid_request("missing method"))),
    };
    let params = match object.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(reject(RpcError::invalid_params("params must be an object"))),
    };
    Ok(match id {
        Some(id) => Message::Request(Request { id, method, params }),
        None => Message::Notification { method, params },
    })
}

/// A response has `jsonrpc: "2.0"`, an id (null allowed for errors) and exactly one of
/// `result` and `error`, and no method.
fn is_response(object: &Map<String, Value>, id: Option<&Value>) -> bool {
    id.is_some()
        && !object.contains_key("method")
        && object.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && (object.contains_key("result") != object.contains_key("error"))
}

fn parse_id(id: Value) -> Result<RequestId, Box<Rejection>> {
    match id {
        Value::String(id) => Ok(RequestId::String(id)),
        // MCP ids are strings or integers. A fractional id could not be echoed exactly
        // (float parsing and printing do not round-trip every value), so a client would
        // never match our answer: refuse it instead.
        Value::Number(id) if id.is_i64() || id.is_u64() => Ok(RequestId::Number(id)),
        _ => Err(Rejection::without_id(RpcError::invalid_request(
            "id must be a string or an integer",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Message, Box<Rejection>> {
        parse_message(text.as_bytes())
    }

    #[test]
    fn fractional_ids_are_refused_because_they_cannot_be_echoed_exactly() {
        for id in ["-1.406090152697034e-257", "1.5", "2.0"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let Err(rejection) = parse(&text) else {
                panic!("{id} was accepted");
            };
            assert_eq!(rejection.error.code, -32600, "{id}");
        }
        assert!(parse(r#"{"jsonrpc":"2.0","id":-7,"method":"ping"}"#).is_ok());
        assert!(parse(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#).is_ok());
    }

    #[test]
    fn requests_notifications_and_responses() {
        let Ok(Message::Request(request)) = parse(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)
        else {
            panic!("not a request");
        };
        assert_eq!(request.id, RequestId::Number(7.into()));
        assert!(request.params.is_empty());
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification { .. })
        ));
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response)
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#),
            Ok(Message::Response)
        );
    }

    #[test]
    fn malformed_messages_are_rejected_with_the_right_code() {
        let code_of = |text: &str| parse(text).unwrap_err().error.code;
        assert_eq!(code_of("{"), code::PARSE_ERROR);
        assert_eq!(code_of(""), code::PARSE_ERROR);
        assert_eq!(code_of("[]"), code::INVALID_REQUEST);
        assert_eq!(code_of("42"), code::INVALID_REQUEST);
        assert_eq!(
            code_of(r#"{"id":1,"method":"ping"}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            code::INVALID_PARAMS
        );
    }

    #[test]
    fn rejections_keep_a_readable_id() {
        let rejection = parse(r#"{"jsonrpc":"1.0","id":"r1","method":"ping"}"#).unwrap_err();
        assert_eq!(rejection.id, Some(RequestId::String("r1".into())));
    }

    #[test]
    fn replies_serialize_without_a_missing_id() {
        let reply = Reply::error_without_id(RpcError::parse_error());
        let json: Value = serde_json::from_slice(&reply.to_json()).unwrap();
        assert_eq!(json["jsonrpc"], "2.0");
        assert!(json.get("id").is_none());
        assert_eq!(json["error"]["code"], -32700);
        let reply = Reply::Result {
            id: RequestId::Number(Number::from_f64(1.5).unwrap()),
            result: serde_json::json!({}),
        };
        assert_eq!(
            reply.to_json(),
            br#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#
        );
    }

    #[test]
    fn method_names_are_not_echoed_raw() {
        let error = RpcError::method_not_found(&format!("a\r\nb{}", "x".repeat(500)));
        assert!(!error.message.contains('\n'));
        assert!(error.message.len() < 100);
    }
}
