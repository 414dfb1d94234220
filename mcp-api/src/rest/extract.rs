//! Typed inputs from the parts of a request: path id, query parameters and JSON body.

use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::model::MemoryIdPath;
use super::query::from_query_str;
use crate::http::{BoxError, is_json_content_type, read_body};

/// The longest part of a deserializer message echoed to the client.
const MAX_MESSAGE_CHARS: usize = 200;

/// The memory named by the `{id}` path segment; an id that is not a UUIDv7 names none of
/// the caller's memories, so it is a 404 like any other unknown id.
pub(crate) fn memory_id(segment: Option<&str>) -> Result<MemoryIdPath, ApiError> {
    segment
        .and_then(MemoryIdPath::parse)
        .ok_or(ApiError::MemoryNotFound)
}

/// The query parameters as `T`; unknown, repeated or malformed parameters are a 422.
pub(crate) fn query<T: DeserializeOwned>(parts: &Parts) -> Result<T, ApiError> {
    from_query_str(parts.uri.query().unwrap_or("")).map_err(|error| ApiError::InvalidRequest {
        field: error.field,
        message: truncate(&error.message),
    })
}

/// The body as `T`: `Content-Type: application/json` (415), at most `limit` bytes (413),
/// JSON (400), and the shape of `T` with no unknown fields (422).
pub(crate) async fn json_body<T, B>(parts: &Parts, body: B, limit: usize) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if !is_json_content_type(&parts.headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = read_body(body, limit).await.map_err(ApiError::Body)?;
    parse_json(&bytes)
}

/// JSON into `T`. Only an object is accepted: serde would also fill a struct from an array
/// of its fields in order, which no client means.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(ApiError::InvalidRequest {
                field: None,
                message: "the body must be a JSON object".to_owned(),
            }),
            Err(_) => Err(ApiError::InvalidJson),
        };
    }
    serde_json::from_slice(bytes).map_err(|error| {
        if !error.is_data() {
            return ApiError::InvalidJson;
        }
        let message = error.to_string();
        ApiError::InvalidRequest {
            field: named_field(&message),
            message: truncate(&message),
        }
    })
}

/// The field serde names in "unknown field `x`", "missing field `x`" or "duplicate field `x`".
fn named_field(message: &str) -> Option<String> {
    let rest = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))?;
    rest.split_once('`').map(|(field, _)| field.to_owned())
}

/// A deserializer message, cut to a bounded length (it may quote the client's input).
fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        text: String,
    }

    #[test]
    fn syntax_errors_and_shape_errors_differ() {
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ApiError::InvalidJson)
        ));
        assert!(matches!(
            parse_json::<Body>(b""),
            Err(ApiError::InvalidJson)
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"text":"a"} x"#),
            Err(ApiError::InvalidJson)
        ));
        let Err(ApiError::InvalidRequest { field, .. }) =
            parse_json::<Body>(br#"{"text":"a","user_id":"bob"}"#)
        else {
            panic!("expected invalid request");
        };
        assert_eq!(field.as_deref(), Some("user_id"));
        let Err(ApiError::InvalidRequest { field, .. }) = parse_json::<Body>(b"{}") else {
            panic!("expected invalid request");
        };
        assert_eq!(field.as_deref(), Some("text"));
        assert!(matches!(
            parse_json::<Body>(br#" ["a"]"#),
            Err(ApiError::InvalidRequest { field: None, .. })
        ));
        assert!(matches!(
            parse_json::<Body>(b" [\"a"),
            Err(ApiError::InvalidJson)
        ));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let message = "é".repeat(500);
        let cut = truncate(&message);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
