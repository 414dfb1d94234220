//! The deprecated HTTP+SSE transport (2024-11-05): `GET /mcp/sse` opens a stream whose
//! first event names the POST endpoint, `/mcp/sse/messages`; each POST there (or to the
//! old `/mcp/messages`) is acknowledged with `202` and answered on the stream.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::directory::{LegacyTarget, Unavailable};
use super::era::{Era, initialize_version};
use super::jsonrpc::{self, Message, RpcError};
use super::session::OpenError;
#[cfg(feature = "postgres")]
use super::session::postgres::{Delivery, RemoteStream};
use super::sse::{self, SseBody};
use super::state::McpState;
use super::{MESSAGES_PATH, ProtocolVersion, responses};
use crate::auth::Caller;
use crate::http::{BoxError, ResponseBody, is_json_content_type, read_body};
use crate::resource::MetadataLocation;
use crate::store::MemoryStore;

/// Events a stream may hold before its POSTs are refused with `503` (a client that does
/// not read its stream).
const STREAM_BUFFER: usize = 32;

/// `GET /mcp/sse`: opens a stream bound to the caller's subject.
pub(crate) async fn open_stream<S>(
    state: &Arc<McpState<S>>,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    if method != Method::GET {
        return responses::method_not_allowed("GET");
    }
    if !responses::accepts_event_stream(headers) {
        return responses::not_acceptable();
    }
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let opened = state
        .sessions
        .open_legacy(&caller.owner, sender, state.clock.now())
        .await;
    let (id, guard) = match opened {
        Ok(opened) => opened,
        Err(OpenError::Full) => {
            // Debug, not warn: a client retrying in a loop must not flood the log.
            tracing::debug!("too many open sessions or SSE streams; refusing an SSE stream");
            return responses::no_session_available(None);
        }
        Err(OpenError::SubjectLimit) => {
            // The subject is not logged: it identifies a user.
            tracing::debug!("a subject reached its SSE stream limit; refusing another");
            return responses::too_many_streams();
        }
        Err(OpenError::Closing) => return responses::no_session_available(None),
        Err(OpenError::Unavailable) => return responses::sessions_unavailable(None),
    };
    // Relative, as the TypeScript SDK sends it; clients resolve it against the stream URL.
    let endpoint = format!("{MESSAGES_PATH}?session_id={id}");
    let first = sse::event("endpoint", endpoint.as_bytes());
    let body = SseBody::new(first, receiver, state.config.keep_alive_period(), guard);
    sse::sse_response(body.boxed())
}

/// `POST /mcp/sse/messages?session_id=…` (or `/mcp/messages`): one message for the
/// caller's stream.
pub(crate) async fn post_message<S, B>(
    state: &McpState<S>,
    caller: &Caller,
    request: Request<B>,
) -> Response<ResponseBody>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if request.method() != Method::POST {
        return responses::method_not_allowed("POST");
    }
    let Some(session_id) = session_id_from_query(request.uri().query()) else {
        return responses::rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("missing session_id query parameter"),
        );
    };
    if !is_json_content_type(request.headers()) {
        return responses::unsupported_media_type();
    }
    let bytes = match read_body(request.into_body(), state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return responses::rpc_error(
                error.status(),
                RpcError::invalid_request(error.to_string()),
            );
        }
    };
    let route = state
        .sessions
        .legacy_route(&session_id, &caller.owner, state.clock.now())
        .await;
    let route = match route {
        Ok(Some(route)) => route,
        Ok(None) => return responses::session_not_found(),
        Err(Unavailable) => return responses::sessions_unavailable(None),
    };
    let request = match jsonrpc::parse_message(&bytes) {
        Ok(Message::Request(request)) => request,
        Ok(Message::Notification { .. } | Message::Response) => return responses::accepted(),
        Err(rejection) => {
            return responses::rpc_response(StatusCode::BAD_REQUEST, &rejection.into_reply());
        }
    };
    // Reserve room on a local stream before doing the work, so no answer is ever lost.
    let outlet = match route.target {
        LegacyTarget::Local(sender) => match sender.try_reserve_owned() {
            Ok(permit) => Outlet::Local(permit),
            Err(TrySendError::Full(_)) => {
                return responses::no_session_available(Some(request.id));
            }
            Err(TrySendError::Closed(_)) => return responses::session_not_found(),
        },
        #[cfg(feature = "postgres")]
        LegacyTarget::Remote(remote) => Outlet::Remote(remote),
    };
    let negotiated = (request.method == "initialize")
        .then(|| initialize_version(&request.params).ok())
        .flatten();
    if let Some(negotiated) = negotiated
        && state
            .sessions
            .set_legacy_version(&session_id, &caller.owner, negotiated)
            .await
            .is_err()
    {
        return responses::sessions_unavailable(Some(request.id));
    }
    let version = negotiated
        .or(route.version)
        .unwrap_or(ProtocolVersion::V2024_11_05);
    let reply = state
        .handler
        .answer(
            request,
            caller,
            Era::Legacy(version),
            MetadataLocation::UnderSse,
        )
        .await;
    match outlet {
        Outlet::Local(permit) => {
            permit.send(sse::event("message", &reply.to_json()));
            responses::accepted()
        }
        #[cfg(feature = "postgres")]
        Outlet::Remote(remote) => match remote.deliver(&reply.to_json()).await {
            Delivery::Queued => responses::accepted(),
            Delivery::Full => responses::no_session_available(None),
            Delivery::Gone => responses::session_not_found(),
            Delivery::Unavailable => responses::sessions_unavailable(None),
        },
    }
}

/// Where a POST's answer goes: a reserved slot on a stream of this process, or the stream
/// of another replica.
enum Outlet {
    Local(mpsc::OwnedPermit<Bytes>),
    #[cfg(feature = "postgres")]
    Remote(RemoteStream),
}

/// The session id, from `session_id` (Python SDK) or `sessionId` (TypeScript SDK).
fn session_id_from_query(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "session_id" || *name == "sessionId")
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sdk_spellings_of_the_session_parameter() {
        assert_eq!(
            session_id_from_query(Some("session_id=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_id_from_query(Some("x=1&sessionId=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(session_id_from_query(Some("session_id=")), None);
        assert_eq!(session_id_from_query(Some("sessionid=abc")), None);
        assert_eq!(session_id_from_query(None), None);
    }
}
