//! The accept loop: HTTP/1.1 and HTTP/2 with hyper, the peer address in request extensions,
//! connection limits against slow and greedy clients, and graceful shutdown.
//!
//! # Limits
//!
//! - **Concurrent connections** ([`ConnectionLimits::max_connections`]): by default the
//!   process's file-descriptor limit (`RLIMIT_NOFILE`) minus headroom of a fifth, at least
//!   [`MIN_DESCRIPTOR_HEADROOM`], for the database, key fetches and new accepts
//!   ([`connections_for_descriptors`]). At the cap a new connection is accepted, answered
//!   `503 Service Unavailable` with `Retry-After` and closed; connections already open keep
//!   being served.
//! - **Header read** ([`ConnectionLimits::header_read_timeout`]): an HTTP/1 request head
//!   must arrive within it. hyper starts this clock as soon as it waits for a head, so an
//!   HTTP/1 keep-alive connection waiting for its next request is closed after it too.
//! - **Body read** ([`ConnectionLimits::body_timeout`]): a request body must arrive within
//!   it, counted from its head; a slower one is answered `408 Request Timeout` and the
//!   connection closed.
//! - **Idle** ([`ConnectionLimits::idle_timeout`]): a connection with no request in flight
//!   (a response still streaming, such as an SSE stream, counts as in flight) for this long
//!   is shut down gracefully, and closed after as long again if the client does not go.
//!   This ends idle HTTP/2 connections and connections that never send a byte.
//! - **HTTP/2**: at most [`ConnectionLimits::http2_max_concurrent_streams`] streams per
//!   connection, header lists up to [`HTTP2_MAX_HEADER_LIST_SIZE`], hyper's defenses against
//!   rapid resets (20 pending accept resets, 1024 locally errored resets), and a ping every
//!   [`HTTP2_KEEP_ALIVE_INTERVAL`] that closes a connection whose peer stops answering.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// Default [`ConnectionLimits::header_read_timeout`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ConnectionLimits::body_timeout`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ConnectionLimits::idle_timeout`]: longer than the 60 s proxies commonly keep an
/// idle upstream connection, so that the proxy, not the server, closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default [`ConnectionLimits::http2_max_concurrent_streams`].
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// The largest HTTP/2 header list accepted, in bytes.
pub const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;
/// How often an HTTP/2 connection is pinged; one not answered within
/// [`HTTP2_KEEP_ALIVE_TIMEOUT`] is closed.
pub const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// See [`HTTP2_KEEP_ALIVE_INTERVAL`].
pub const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long in-flight requests get to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors always kept free of connections, at least (see
/// [`connections_for_descriptors`]).
pub const MIN_DESCRIPTOR_HEADROOM: u64 = 64;
/// The most connections [`ConnectionLimits::max_connections`] may allow.
pub const MAX_CONNECTIONS_CEILING: usize = 1 << 20;
/// Connections over the cap that may be being told `503` at once (each holds a descriptor
/// for at most [`REFUSAL_TIME`]); beyond them a connection is closed without an answer.
const REFUSING_CONNECTIONS: usize = 16;
/// How long a refused connection is kept to deliver its `503`.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// The answer on a connection over the cap.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Retry-After: 1\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 37\r\n\
    Connection: close\r\n\
    \r\n\
    too many connections; try again soon\n";

/// The connection-level limits of [`serve`]; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// The most connections open at once (at least 1, at most [`MAX_CONNECTIONS_CEILING`]).
    pub max_connections: usize,
    /// How long a client may take to send an HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body, from the end of its head.
    pub body_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// The most concurrent streams on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

impl ConnectionLimits {
    /// The defaults, with `max_connections` derived from the process's descriptor limit
    /// ([`connections_for_descriptors`] of [`descriptor_limit`]).
    #[must_use]
    pub fn from_descriptor_limit() -> Self {
        ConnectionLimits {
            max_connections: connections_for_descriptors(descriptor_limit()),
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            http2_max_concurrent_streams: HTTP2_MAX_CONCURRENT_STREAMS,
        }
    }
}

/// The process's soft limit on open file descriptors (`RLIMIT_NOFILE`); `None` when
/// unlimited or unknown.
#[must_use]
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many connections a process with `descriptors` file descriptors may hold open: the
/// limit minus a fifth of it, and minus at least [`MIN_DESCRIPTOR_HEADROOM`], kept for the
/// database, outbound fetches and accepting (and refusing) new connections; never fewer
/// than 8. Without a limit, [`MAX_CONNECTIONS_CEILING`].
#[must_use]
pub fn connections_for_descriptors(descriptors: Option<u64>) -> usize {
    let Some(descriptors) = descriptors else {
        return MAX_CONNECTIONS_CEILING;
    };
    let headroom = (descriptors / 5).max(MIN_DESCRIPTOR_HEADROOM);
    let connections = descriptors.saturating_sub(headroom).max(8);
    usize::try_from(connections).map_or(MAX_CONNECTIONS_CEILING, |c| c.min(MAX_CONNECTIONS_CEILING))
}

/// Serves `service` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and gives open connections [`DRAIN_TIMEOUT`] to finish.
///
/// Each request carries the client's [`SocketAddr`] in its extensions (for rate limits): the
/// TCP peer, or — only when the peer is one of `trusted_proxies` — the rightmost address in
/// its `X-Forwarded-For` header that is not itself a trusted proxy (so chained proxies work,
/// and entries the client wrote itself are never believed). Forwarded headers from anyone
/// else are ignored. IPv4 peers of a dual-stack listener (`::ffff:a.b.c.d`) match their
/// IPv4 address in `trusted_proxies`. Request bodies are [`TimedBody`]s.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    trusted_proxies: Arc<[IpAddr]>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<TimedBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        .keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);
    let max_connections = limits.max_connections.clamp(1, MAX_CONNECTIONS_CEILING);
    let connections = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut last_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    max_connections,
                    "connection limit reached; refusing connections"
                );
                last_warning = Some(Instant::now());
            }
            refuse(stream, &refusing);
            continue;
        };
        let activity = Arc::new(watch::Sender::new(Activity {
            in_flight: 0,
            since: Instant::now(),
        }));
        let service = Limited {
            inner: PeerAddress {
                inner: service.clone(),
                peer,
                trusted_proxies: Arc::clone(&trusted_proxies),
            },
            activity: Arc::clone(&activity),
            body_timeout: limits.body_timeout,
        };
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let stopping = stopping.clone();
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            drive(connection, &activity, idle_timeout, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: all of them back means all ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = connections.acquire_many(all) => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after the drain timeout; closing");
        }
    }
    Ok(())
}

/// Tells a connection over the cap `503` (and to retry), then closes it; with too many
/// such refusals under way, closes it at once.
fn refuse(mut stream: TcpStream, refusing: &Arc<Semaphore>) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(BUSY_RESPONSE).await?;
            stream.shutdown().await?;
            // Read what the client sent until it closes: closing with unread bytes would
            // send a reset, which may reach the client before the answer does.
            let mut buffer = [0u8; 1024];
            while stream.read(&mut buffer).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

/// What a connection is doing: requests in flight (a response body still being sent
/// counts), and since when that number last changed.
#[derive(Debug, Clone, Copy)]
struct Activity {
    in_flight: usize,
    since: Instant,
}

/// Runs one connection until it ends: shuts it down gracefully when the server stops or
/// when it has been idle for `idle_timeout`, and drops it when it is still idle
/// `idle_timeout` after that.
async fn drive<S, B>(
    connection: auto::UpgradeableConnection<
        'static,
        TokioIo<TcpStream>,
        hyper_util::service::TowerToHyperService<S>,
        TokioExecutor,
    >,
    activity: &watch::Sender<Activity>,
    idle_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    let mut changes = activity.subscribe();
    let mut stop_seen = false;
    let mut asked_to_close = false;
    loop {
        let now = *changes.borrow_and_update();
        let idle_since = (now.in_flight == 0).then_some(now.since);
        let idle = async {
            match idle_since {
                Some(since) => tokio::time::sleep_until(since + idle_timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !stop_seen => {
                stop_seen = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ = changes.changed() => {}
            () = idle => {
                if asked_to_close {
                    tracing::debug!("closing a connection idle after a graceful shutdown");
                    return;
                }
                asked_to_close = true;
                connection.as_mut().graceful_shutdown();
                activity.send_modify(|activity| activity.since = Instant::now());
            }
        }
    }
}

/// Applies the body timeout, counts requests in flight, and answers `408` for a body that
/// timed out.
#[derive(Clone)]
struct Limited<S> {
    inner: S,
    activity: Arc<watch::Sender<Activity>>,
    body_timeout: Duration,
}

impl<S, B> Service<Request<Incoming>> for Limited<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>, Error = Infallible>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = LimitedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(Arc::clone(&self.activity));
        let timed_out = Arc::new(AtomicBool::new(false));
        let http1 = request.version() <= Version::HTTP_11;
        let deadline = Instant::now() + self.body_timeout;
        let request = request.map(|body| TimedBody {
            inner: body,
            deadline,
            sleep: None,
            timed_out: Arc::clone(&timed_out),
        });
        LimitedFuture {
            inner: self.inner.call(request),
            guard: Some(guard),
            timed_out,
            http1,
        }
    }
}

pin_project! {
    /// The future of [`Limited`].
    struct LimitedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
        timed_out: Arc<AtomicBool>,
        http1: bool,
    }
}

impl<F, B> Future for LimitedFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<TrackedBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        if !this.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(Ok(response.map(|body| TrackedBody {
                inner: Some(body),
                _guard: guard,
            })));
        }
        let mut timeout = Response::new(TrackedBody {
            inner: None,
            _guard: guard,
        });
        *timeout.status_mut() = StatusCode::REQUEST_TIMEOUT;
        if *this.http1 {
            // The rest of the body is still on the wire: the connection cannot be reused.
            timeout
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(timeout))
    }
}

/// A request in flight on a connection, until dropped.
struct InFlight(Arc<watch::Sender<Activity>>);

impl InFlight {
    fn start(activity: Arc<watch::Sender<Activity>>) -> Self {
        activity.send_modify(|activity| {
            activity.in_flight += 1;
            activity.since = Instant::now();
        });
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|activity| {
            activity.in_flight = activity.in_flight.saturating_sub(1);
            activity.since = Instant::now();
        });
    }
}

pin_project! {
    /// A response body that keeps its request counted as in flight until it is dropped;
    /// without an inner body, an empty one.
    pub struct TrackedBody<B> {
        #[pin]
        inner: Option<B>,
        _guard: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.as_pin_mut() {
            Some(inner) => inner.poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes before it has
/// all arrived (and then [`serve`] answers `408`).
pub struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

/// The error of a [`TimedBody`] whose deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.sleep = None;
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Inserts the client address into each request.
#[derive(Clone)]
struct PeerAddress<S> {
    inner: S,
    peer: SocketAddr,
    trusted_proxies: Arc<[IpAddr]>,
}

impl<S> PeerAddress<S> {
    /// The client: the peer, or the client its trusted proxies forwarded for.
    fn client<B>(&self, request: &Request<B>) -> SocketAddr {
        if !is_trusted(&self.trusted_proxies, self.peer.ip()) {
            return self.peer;
        }
        forwarded_client(request, &self.trusted_proxies)
            .map_or(self.peer, |ip| SocketAddr::new(ip, 0))
    }
}

/// The client behind trusted proxies: walking `X-Forwarded-For` from the right (each proxy
/// appends the address it saw), the first entry that is not a trusted proxy. Entries left of
/// it are the client's to invent. With only trusted entries, the leftmost of them; with an
/// unreadable entry before the client is found, `None`.
fn forwarded_client<B>(request: &Request<B>, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for header in request.headers().get_all("x-forwarded-for") {
        entries.extend(header.to_str().ok()?.split(','));
    }
    let mut client = None;
    for entry in entries.into_iter().rev() {
        let ip = entry.trim().parse::<IpAddr>().ok()?.to_canonical();
        client = Some(ip);
        if !is_trusted(trusted_proxies, ip) {
            break;
        }
    }
    client
}

/// Whether `ip` is one of `trusted_proxies`, comparing IPv4-mapped IPv6 addresses as IPv4.
fn is_trusted(trusted_proxies: &[IpAddr], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted_proxies
        .iter()
        .any(|proxy| proxy.to_canonical() == ip)
}

impl<S, B> Service<Request<B>> for PeerAddress<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let client = self.client(&request);
        request.extensions_mut().insert(client);
        self.inner.call(request)
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
///
/// On unix the handlers are installed when this is called, not when the future is first
/// polled, so a signal that arrives while the server is still starting (say, just after it
/// printed its address) stops it gracefully instead of killing it. Call it within a Tokio
/// runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (Ok(mut interrupt), Ok(mut terminate)) = (interrupt, terminate) else {
                tracing::warn!("could not install signal handlers; falling back to Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests;
