//! Which era a POST to `/mcp` belongs to, and the 2026-07-28 header checks.
//!
//! A request is *modern* when its `params._meta` carries
//! `io.modelcontextprotocol/protocolVersion`, or when its `MCP-Protocol-Version` header
//! names a modern revision. Modern requests then pass, in order (first failure wins, all
//! answered `400`):
//!
//! 1. `_meta` holds the required `protocolVersion` and `clientCapabilities` → else `-32602`;
//! 2. `MCP-Protocol-Version` equals `_meta`'s version, `Mcp-Method` equals `method`, and
//!    for `tools/call` the (possibly `=?base64?…?=`-encoded) `Mcp-Name` equals
//!    `params.name`; none of them repeated → else `-32020` (`HeaderMismatch`);
//! 3. the version is a modern revision this server implements → else `-32022` with
//!    `data.supported`.
//!
//! Everything else is *legacy*: the header, when present, must name a legacy revision
//! this server implements (else `400` with `-32022`); when absent the session's
//! negotiated version, or 2025-03-26, applies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde_json::{Map, Value};

use super::ProtocolVersion;
use super::jsonrpc::{Request, RpcError};

/// `MCP-Protocol-Version`.
pub(crate) const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// `Mcp-Method` (2026-07-28).
const METHOD_HEADER: &str = "mcp-method";
/// `Mcp-Name` (2026-07-28).
const NAME_HEADER: &str = "mcp-name";

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The protocol era a request is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// Handshake-based revisions, at the negotiated (or assumed) version.
    Legacy(ProtocolVersion),
    /// Per-request-metadata revisions: results carry `resultType` and `serverInfo`.
    Modern(ProtocolVersion),
}

/// How a request is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Handshake era; the header's version if one was sent.
    Legacy {
        header_version: Option<ProtocolVersion>,
    },
    /// Stateless era at this version.
    Modern(ProtocolVersion),
}

/// A header that must appear at most once, as visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SingleHeader<'a> {
    Absent,
    Present(&'a str),
    /// Repeated, or not visible ASCII.
    Malformed,
}

/// Reads a header that must appear at most once.
pub(crate) fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> SingleHeader<'a> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return SingleHeader::Absent;
    };
    if values.next().is_some() {
        return SingleHeader::Malformed;
    }
    value
        .to_str()
        .map_or(SingleHeader::Malformed, SingleHeader::Present)
}

/// Whether the request's `MCP-Protocol-Version` header names a modern revision.
pub(crate) fn names_modern_version(headers: &HeaderMap) -> bool {
    matches!(
        single_header(headers, PROTOCOL_VERSION_HEADER),
        SingleHeader::Present(value)
            if ProtocolVersion::parse(value).is_some_and(ProtocolVersion::is_modern)
    )
}

/// Classifies a request and, for a modern one, runs the header checks.
pub(crate) fn classify_request(headers: &HeaderMap, request: &Request) -> Result<Route, RpcError> {
    if envelope_version(&request.params).is_some() {
        return check_modern(headers, request);
    }
    match classify_notification(headers)? {
        Route::Modern(_) => check_modern(headers, request),
        legacy @ Route::Legacy { .. } => Ok(legacy),
    }
}

/// Checks a notification's version header (notifications carry no required metadata).
pub(crate) fn classify_notification(headers: &HeaderMap) -> Result<Route, RpcError> {
    match single_header(headers, PROTOCOL_VERSION_HEADER) {
        SingleHeader::Absent => Ok(Route::Legacy {
            header_version: None,
        }),
        SingleHeader::Present(value) => match ProtocolVersion::parse(value) {
            Some(version) if version.is_modern() => Ok(Route::Modern(version)),
            Some(version) => Ok(Route::Legacy {
                header_version: Some(version),
            }),
            None => Err(RpcError::unsupported_version(value)),
        },
        SingleHeader::Malformed => Err(RpcError::header_mismatch(
            "the MCP-Protocol-Version header is repeated or malformed",
        )),
    }
}

/// The version an `initialize` request negotiates.
pub(crate) fn initialize_version(params: &Map<String, Value>) -> Result<ProtocolVersion, RpcError> {
    match params.get("protocolVersion") {
        Some(Value::String(requested)) => Ok(ProtocolVersion::negotiate(requested)),
        _ => Err(RpcError::invalid_params(
            "initialize needs a protocolVersion string",
        )),
    }
}

fn envelope(params: &Map<String, Value>) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

fn envelope_version(params: &Map<String, Value>) -> Option<&Value> {
    envelope(params).and_then(|meta| meta.get(META_PROTOCOL_VERSION))
}

fn check_modern(headers: &HeaderMap, request: &Request) -> Result<Route, RpcError> {
    let meta = envelope(&request.params);
    let (Some(version), true) = (
        meta.and_then(|meta| meta.get(META_PROTOCOL_VERSION)),
        meta.is_some_and(|meta| meta.contains_key(META_CLIENT_CAPABILITIES)),
    ) else {
        return Err(RpcError::invalid_params(format!(
            "params._meta must carry {META_PROTOCOL_VERSION} and {META_CLIENT_CAPABILITIES}"
        )));
    };
    check_headers(headers, request, version)?;
    let Value::String(version) = version else {
        return Err(RpcError::invalid_params(
            "the protocol version in params._meta must be a string",
        ));
    };
    match ProtocolVersion::parse(version) {
        Some(version) if version.is_modern() => Ok(Route::Modern(version)),
        _ => Err(RpcError::unsupported_version(version)),
    }
}

fn check_headers(headers: &HeaderMap, request: &Request, version: &Value) -> Result<(), RpcError> {
    let header_version = required_header(headers, PROTOCOL_VERSION_HEADER, "MCP-Protocol-Version")?;
    if version.as_str() != Some(header_version) {
        return Err(RpcError::header_mismatch(
            "the MCP-Protocol-Version header does not match params._meta",
        ));
    }
    let method = required_header(headers, METHOD_HEADER, "Mcp-Method")?;
    if method != request.method {
        return Err(RpcError::header_mismatch(
            "the Mcp-Method header does not match the request's method",
        ));
    }
    if request.method == "tools/call"
        && let Some(Value::String(name)) = request.params.get("name")
    {
        let header = required_header(headers, NAME_HEADER, "Mcp-Name")?;
        if decode_header_value(header).as_deref() != Some(name.as_str()) {
            return Err(RpcError::header_mismatch(
                "the Mcp-Name header does not match the tool name",
            ));
        }
    }
    Ok(())
}

fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    display: &str,
) -> Result<&'a str, RpcError> {
    match single_header(headers, name) {
        SingleHeader::Present(value) => Ok(value),
        SingleHeader::Absent => Err(RpcError::header_mismatch(format!(
            "the {display} header is required"
        ))),
        SingleHeader::Malformed => Err(RpcError::header_mismatch(format!(
            "the {display} header is repeated or malformed"
        ))),
    }
}

/// A header value, decoding the `=?base64?…?=` form. `None` for a malformed encoding.
fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    String::from_utf8(decode_base64(payload)?).ok()
}

/// Decodes canonical, padded standard base64 (RFC 4648 §4): the `STANDARD` engine refuses
/// missing padding and non-zero bits in the last symbol.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::mcp::jsonrpc::{RequestId, code};

    fn request(method: &str, params: &Value) -> Request {
        Request {
            id: RequestId::Number(1.into()),
            method: method.to_owned(),
            params: params.as_object().cloned().unwrap(),
        }
    }

    fn modern_params(extra: &Value) -> Value {
        let mut params = json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }});
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        params
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn base64_decodes_the_spec_examples_and_rejects_junk() {
        assert_eq!(
            decode_base64("SGVsbG8sIOS4lueVjA==").unwrap(),
            "Hello, 世界".as_bytes()
        );
        assert_eq!(decode_base64("IHBhZGRlZCA=").unwrap(), b" padded ");
        assert_eq!(decode_base64("").unwrap(), b"");
        for junk in [
            "SGVsbG8",
            "SG=VsbG8=",
            "S===",
            "SGVsbG9=",
            "SGVsbA*=",
            "QQ==QQ==",
            "SGVs bG8=",
            "PT9iYXNlNjQ_bGl0ZXJhbD89",
        ] {
            assert!(decode_base64(junk).is_none(), "{junk}");
        }
        assert_eq!(
            decode_header_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").unwrap(),
            "=?base64?literal?="
        );
        assert_eq!(decode_header_value("search").unwrap(), "search");
        assert!(decode_header_value("=?base64?!!?=").is_none());
    }

    #[test]
    fn legacy_requests_need_no_headers() {
        let route = classify_request(&HeaderMap::new(), &request("tools/list", &json!({})));
        assert_eq!(
            route,
            Ok(Route::Legacy {
                header_version: None
            })
        );
        let route = classify_request(
            &headers(&[("mcp-protocol-version", "2025-06-18")]),
            &request("tools/list", &json!({})),
        );
        assert_eq!(
            route,
            Ok(Route::Legacy {
                header_version: Some(ProtocolVersion::V2025_06_18)
            })
        );
        let error = classify_request(
            &headers(&[("mcp-protocol-version", "2099-01-01")]),
            &request("tools/list", &json!({})),
        )
        .unwrap_err();
        assert_eq!(error.code, code::UNSUPPORTED_PROTOCOL_VERSION);
    }

    #[test]
    fn modern_requests_pass_the_ladder() {
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?c2VhcmNo?="),
        ]);
        let call = request("tools/call", &modern_params(&json!({"name": "search"})));
        assert_eq!(
            classify_request(&ok, &call),
            Ok(Route::Modern(ProtocolVersion::V2026_07_28))
        );
    }

    #[test]
    fn each_rung_fails_with_its_code() {
        let call = request("tools/call", &modern_params(&json!({"name": "search"})));
        let cases: [(HeaderMap, &Request, i64); 6] = [
            (
                headers(&[("mcp-method", "tools/call"), ("mcp-name", "search")]),
                &call,
                code::HEADER_MISMATCH,
            ),
            (
                headers(&[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-name", "search"),
                ]),
                &call,
                code::HEADER_MISMATCH,
            ),
            (
                headers(&[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "fetch"),
                ]),
                &call,
                code::HEADER_MISMATCH,
            ),
            (
                headers(&[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/call"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "search"),
                ]),
                &call,
                code::HEADER_MISMATCH,
            ),
            (
                headers(&[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/list"),
                ]),
                &request("tools/list", &json!({})),
                code::INVALID_PARAMS,
            ),
            (
                headers(&[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "search"),
                ]),
                &request(
                    "tools/call",
                    &json!({"name": "search", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
                ),
                code::INVALID_PARAMS,
            ),
        ];
        for (index, (headers, request, expected)) in cases.iter().enumerate() {
            let error = classify_request(headers, request).unwrap_err();
            assert_eq!(error.code, *expected, "case {index}: {}", error.message);
        }
    }

    #[test]
    fn unsupported_modern_versions_list_what_is_supported() {
        let mut params = modern_params(&json!({}));
        params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
        let error = classify_request(
            &headers(&[
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "server/discover"),
            ]),
            &request("server/discover", &params),
        )
        .unwrap_err();
        assert_eq!(error.code, code::UNSUPPORTED_PROTOCOL_VERSION);
        let data = error.data.unwrap();
        assert_eq!(data["requested"], "2099-01-01");
        assert_eq!(data["supported"][0], "2026-07-28");
    }
}
