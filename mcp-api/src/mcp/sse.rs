//! Server-Sent Events: event encoding, the response headers, and [`SseBody`], an
//! `http_body::Body` fed by a channel with periodic keep-alive comments.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::session::StreamGuard;
use crate::http::{ResponseBody, full};

/// The keep-alive comment.
const PING: &[u8] = b": ping\n\n";

/// `X-Accel-Buffering: no` asks nginx-style proxies not to buffer the stream.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// An event with a type and one line of data (`data` must not contain a newline; compact
/// JSON from `serde_json` never does).
pub(crate) fn event(kind: &str, data: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(kind.len() + data.len() + 16);
    event.extend_from_slice(b"event: ");
    event.extend_from_slice(kind.as_bytes());
    event.extend_from_slice(b"\ndata: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// A 2025-11-25 priming event: an id and empty data.
pub(crate) fn priming_event(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: \n\n"))
}

/// A `200` SSE response with the headers every stream here carries.
pub(crate) fn sse_response(body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}

/// A finished stream: the given events, then the end.
pub(crate) fn finite_stream(events: &[Bytes]) -> ResponseBody {
    full(events.concat())
}

/// An endless SSE body: `first`, then whatever arrives on the channel, with a `: ping`
/// comment whenever `keep_alive` passes. It ends when every sender is dropped. Dropping
/// it (the client disconnected) drops its [`StreamGuard`], which forgets the session.
#[derive(Debug)]
pub(crate) struct SseBody {
    first: Option<Bytes>,
    events: mpsc::Receiver<Bytes>,
    keep_alive: Option<Interval>,
    _guard: StreamGuard,
}

impl SseBody {
    /// Must be called within a Tokio runtime with timers enabled when `keep_alive` is set.
    pub(crate) fn new(
        first: Bytes,
        events: mpsc::Receiver<Bytes>,
        keep_alive: Option<Duration>,
        guard: StreamGuard,
    ) -> Self {
        let keep_alive = keep_alive.map(|period| {
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        SseBody {
            first: Some(first),
            events,
            keep_alive,
            _guard: guard,
        }
    }

    pub(crate) fn boxed(self) -> ResponseBody {
        BodyExt::boxed_unsync(self)
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(Frame::data(event)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if let Some(keep_alive) = &mut this.keep_alive
            && keep_alive.poll_tick(cx).is_ready()
        {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(PING)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant as StdInstant;

    use super::*;
    use crate::mcp::session::{SessionLimits, SessionTable};
    use crate::store::Owner;

    fn guard() -> (
        Arc<SessionTable>,
        StreamGuard,
        mpsc::Receiver<Bytes>,
        mpsc::Sender<Bytes>,
    ) {
        let table = Arc::new(SessionTable::new(SessionLimits {
            max_sessions: 4,
            max_per_subject: 4,
            max_streams: 4,
            max_streams_per_subject: 4,
            idle_timeout: Duration::from_secs(60),
        }));
        let (sender, receiver) = mpsc::channel(4);
        let id = table
            .open_legacy(&Owner::new("a").unwrap(), sender.clone(), StdInstant::now())
            .unwrap();
        let guard = StreamGuard::new(Arc::clone(&table), id);
        (table, guard, receiver, sender)
    }

    #[test]
    fn events_are_single_records() {
        assert_eq!(
            &event("message", b"{}")[..],
            b"event: message\ndata: {}\n\n"
        );
        assert_eq!(&priming_event("7")[..], b"id: 7\ndata: \n\n");
    }

    #[tokio::test]
    async fn the_body_yields_first_then_events_then_ends() {
        let (table, guard, receiver, sender) = guard();
        let mut body = SseBody::new(Bytes::from_static(b"first"), receiver, None, guard);
        sender.send(Bytes::from_static(b"second")).await.unwrap();
        drop(sender);
        table.close_legacy_streams();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first");
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&second[..], b"second");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn keep_alives_arrive_while_idle() {
        let (_table, guard, receiver, _sender) = guard();
        let mut body = SseBody::new(
            Bytes::from_static(b"first"),
            receiver,
            Some(Duration::from_millis(1)),
            guard,
        );
        body.frame().await.unwrap().unwrap();
        let ping = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&ping[..], PING);
    }

    #[test]
    fn dropping_the_body_forgets_the_session() {
        let (table, guard, receiver, _sender) = guard();
        let body = SseBody::new(Bytes::new(), receiver, None, guard);
        assert_eq!(table.len(), 1);
        drop(body);
        assert_eq!(table.len(), 0);
    }
}
