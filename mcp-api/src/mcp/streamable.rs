//! `/mcp`: Streamable HTTP (2025-03-26 to 2025-11-25) and the 2026-07-28 stateless
//! transport on the same endpoint.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};

use super::directory::Unavailable;
use super::era::{self, Era, Route, SingleHeader, initialize_version};
use super::jsonrpc::{self, Message, Reply, RpcError, code};
use super::session::{OpenError, SessionId, new_event_id};
use super::state::McpState;
use super::{ProtocolVersion, ResponseFormat, responses, sse};
use crate::auth::Caller;
use crate::http::{BoxError, ResponseBody, empty_response, is_json_content_type, read_body};
use crate::resource::MetadataLocation;
use crate::store::MemoryStore;

/// `Mcp-Session-Id`.
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// Serves one request to `/mcp`.
pub(crate) async fn serve<S, B>(
    state: &McpState<S>,
    caller: &Caller,
    request: Request<B>,
) -> Response<ResponseBody>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let modern = era::names_modern_version(request.headers());
    match *request.method() {
        Method::POST => post(state, caller, request).await,
        // No server-initiated messages exist, so there is no GET stream to offer.
        Method::GET => responses::method_not_allowed(allowed_methods(modern)),
        Method::DELETE if !modern => delete(state, caller, request.headers()).await,
        _ => responses::method_not_allowed(allowed_methods(modern)),
    }
}

/// The 2026-07-28 endpoint is POST-only; legacy sessions can also be deleted.
fn allowed_methods(modern: bool) -> &'static str {
    if modern { "POST" } else { "POST, DELETE" }
}

async fn post<S, B>(
    state: &McpState<S>,
    caller: &Caller,
    request: Request<B>,
) -> Response<ResponseBody>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    if !is_json_content_type(&parts.headers) {
        return responses::unsupported_media_type();
    }
    let bytes = match read_body(body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return responses::rpc_error(
                error.status(),
                RpcError::invalid_request(error.to_string()),
            );
        }
    };
    let message = match jsonrpc::parse_message(&bytes) {
        Ok(message) => message,
        Err(rejection) => {
            return responses::rpc_response(StatusCode::BAD_REQUEST, &rejection.into_reply());
        }
    };
    let headers = &parts.headers;
    match message {
        Message::Request(request) => answer(state, caller, headers, request).await,
        Message::Notification { .. } => acknowledge_notification(state, caller, headers).await,
        Message::Response => acknowledge_response(state, caller, headers).await,
    }
}

/// Settles the request's era and session, then answers it with one call to the handler.
async fn answer<S: MemoryStore>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
    request: jsonrpc::Request,
) -> Response<ResponseBody> {
    let exchange = match settle(state, caller, headers, &request).await {
        Ok(exchange) => exchange,
        Err(refusal) => return refusal,
    };
    let reply = state
        .handler
        .answer(request, caller, exchange.era, MetadataLocation::WellKnown)
        .await;
    exchange.render(&reply)
}

/// How one request is served, settled before it is answered.
struct Exchange {
    era: Era,
    format: ResponseFormat,
    /// The session `initialize` opened, announced in the response.
    opened: Option<SessionId>,
}

impl Exchange {
    fn render(&self, reply: &Reply) -> Response<ResponseBody> {
        match self.era {
            Era::Modern(_) => render_modern(reply, self.format),
            Era::Legacy(version) => {
                let mut response = render_legacy(reply, self.format, version);
                if let Some(session) = &self.opened {
                    attach_session(&mut response, session);
                }
                response
            }
        }
    }
}

/// The era of `request` (with the 2026-07-28 header checks), its answer format, and for the
/// handshake era its session: `initialize` opens one bound to the caller's subject (any
/// session header on it is ignored: a client re-initializes after its session ended);
/// other requests use the one they name, if any. `Err` is the response refusing it.
// The refusal is the finished response, returned straight to the client: boxing it would
// only add an allocation.
#[allow(clippy::result_large_err)]
async fn settle<S>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
    request: &jsonrpc::Request,
) -> Result<Exchange, Response<ResponseBody>> {
    let route = era::classify_request(headers, request).map_err(|error| {
        let reply = Reply::Error {
            id: Some(request.id.clone()),
            error,
        };
        responses::rpc_response(StatusCode::BAD_REQUEST, &reply)
    })?;
    let format = responses::response_format(headers, state.config.response_format)
        .ok_or_else(responses::not_acceptable)?;
    let (era, opened) = match route {
        Route::Modern(version) => (Era::Modern(version), None),
        Route::Legacy { .. } if request.method == "initialize" => {
            let version = initialize_version(&request.params).map_err(|error| {
                let reply = Reply::Error {
                    id: Some(request.id.clone()),
                    error,
                };
                render_legacy(&reply, format, ProtocolVersion::LATEST_LEGACY)
            })?;
            let opened = state
                .sessions
                .open_streamable(&caller.owner, version, state.clock.now())
                .await;
            let session = match opened {
                Ok(session) => session,
                Err(OpenError::Unavailable) => {
                    return Err(responses::sessions_unavailable(Some(request.id.clone())));
                }
                Err(_) => {
                    tracing::warn!("session table full; refusing initialize");
                    return Err(responses::no_session_available(Some(request.id.clone())));
                }
            };
            (Era::Legacy(version), Some(session))
        }
        Route::Legacy { header_version } => {
            let session_version = match use_session(state, caller, headers).await {
                Ok(version) => version,
                Err(refusal) => return Err(refusal.response()),
            };
            let version = header_version
                .or(session_version)
                .unwrap_or(ProtocolVersion::STREAMABLE_DEFAULT);
            (Era::Legacy(version), None)
        }
    };
    Ok(Exchange {
        era,
        format,
        opened,
    })
}

fn attach_session(response: &mut Response<ResponseBody>, session: &SessionId) {
    // Session ids are lowercase hex, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(session.as_str()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
}

/// Why the session a request names cannot be used.
enum SessionRefusal {
    /// No session of the caller: unknown, expired, deleted or another subject's (answered
    /// `404` without saying which).
    Unknown,
    /// The shared session directory could not be asked (`503`).
    Unavailable,
}

impl SessionRefusal {
    fn response(&self) -> Response<ResponseBody> {
        match self {
            SessionRefusal::Unknown => responses::session_not_found(),
            SessionRefusal::Unavailable => responses::sessions_unavailable(None),
        }
    }
}

/// The negotiated version of the caller's session named in the request, if any.
async fn use_session<S>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<ProtocolVersion>, SessionRefusal> {
    match era::single_header(headers, SESSION_HEADER.as_str()) {
        SingleHeader::Absent => Ok(None),
        SingleHeader::Present(id) => match state
            .sessions
            .use_streamable(id, &caller.owner, state.clock.now())
            .await
        {
            Ok(Some(version)) => Ok(Some(version)),
            Ok(None) => Err(SessionRefusal::Unknown),
            Err(Unavailable) => Err(SessionRefusal::Unavailable),
        },
        SingleHeader::Malformed => Err(SessionRefusal::Unknown),
    }
}

async fn acknowledge_notification<S>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    match era::classify_notification(headers) {
        Err(error) => responses::rpc_error(StatusCode::BAD_REQUEST, error),
        Ok(Route::Modern(_)) => responses::accepted(),
        Ok(Route::Legacy { .. }) => match use_session(state, caller, headers).await {
            Ok(_) => responses::accepted(),
            Err(refusal) => refusal.response(),
        },
    }
}

async fn acknowledge_response<S>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    match era::classify_notification(headers) {
        Err(error) => responses::rpc_error(StatusCode::BAD_REQUEST, error),
        Ok(Route::Modern(_)) => responses::rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("clients do not send responses in 2026-07-28"),
        ),
        Ok(Route::Legacy { .. }) => match use_session(state, caller, headers).await {
            Ok(_) => responses::accepted(),
            Err(refusal) => refusal.response(),
        },
    }
}

/// `DELETE /mcp`: ends the caller's session.
async fn delete<S>(
    state: &McpState<S>,
    caller: &Caller,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    match era::single_header(headers, SESSION_HEADER.as_str()) {
        SingleHeader::Present(id) => {
            let closed = state
                .sessions
                .close_streamable(id, &caller.owner, state.clock.now())
                .await;
            match closed {
                Ok(true) => empty_response(StatusCode::NO_CONTENT),
                Ok(false) => responses::session_not_found(),
                Err(Unavailable) => responses::sessions_unavailable(None),
            }
        }
        SingleHeader::Absent => responses::rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("DELETE needs an Mcp-Session-Id header"),
        ),
        SingleHeader::Malformed => responses::session_not_found(),
    }
}

/// Legacy answers are `200`, errors included (they are JSON-RPC-level errors).
fn render_legacy(
    reply: &Reply,
    format: ResponseFormat,
    version: ProtocolVersion,
) -> Response<ResponseBody> {
    match format {
        ResponseFormat::Json => responses::rpc_response(StatusCode::OK, reply),
        ResponseFormat::Sse => sse_answer(reply, version.primes_sse_streams()),
    }
}

/// Modern errors carry their HTTP status (`400`, or `404` for an unknown method) and are
/// always JSON; results use the negotiated format.
fn render_modern(reply: &Reply, format: ResponseFormat) -> Response<ResponseBody> {
    let status = reply.error().map_or(StatusCode::OK, modern_status);
    if status != StatusCode::OK || format == ResponseFormat::Json {
        return responses::rpc_response(status, reply);
    }
    sse_answer(reply, false)
}

fn modern_status(error: &RpcError) -> StatusCode {
    match error.code {
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// A finished SSE stream: an optional priming event, the response, the end.
fn sse_answer(reply: &Reply, prime: bool) -> Response<ResponseBody> {
    let message = sse::event("message", &reply.to_json());
    let events = if prime {
        vec![sse::priming_event(&new_event_id()), message]
    } else {
        vec![message]
    };
    sse::sse_response(sse::finite_stream(&events))
}
