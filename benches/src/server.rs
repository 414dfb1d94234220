//! Serving a service on a loopback port, as the server binaries serve theirs.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};
use tower::{Service, ServiceExt as _};

/// A listener on a free loopback port.
///
/// # Panics
///
/// If no loopback port can be bound: a benchmark cannot run without one.
pub async fn loopback() -> TcpListener {
    #[allow(clippy::expect_used)] // documented under Panics
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// Serves `service` on `listener` with hyper (HTTP/1.1 and HTTP/2, as the binaries do),
/// each request carrying its peer's [`SocketAddr`] in its extensions as the binaries'
/// accept loop puts it there, in a task on the current Tokio runtime; returns the address.
///
/// # Panics
///
/// If the listener has no local address (a bound one always has).
pub fn serve<S, B>(listener: TcpListener, service: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_stoppable(listener, service).0
}

/// [`serve`], and a handle that stops it: aborting it closes the listener and every
/// connection, and drops every clone of `service` (so a store it holds can stop its
/// background work).
///
/// # Panics
///
/// If the listener has no local address (a bound one always has).
pub fn serve_stoppable<S, B>(listener: TcpListener, service: S) -> (SocketAddr, AbortHandle)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    #[allow(clippy::expect_used)] // documented under Panics
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        // Owned by this task: aborting it aborts every connection.
        let mut connections = JoinSet::new();
        while let Ok((stream, peer)) = listener.accept().await {
            let service = service
                .clone()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    request
                });
            connections.spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
            // Forget the connections already closed.
            while connections.try_join_next().is_some() {}
        }
    });
    (addr, server.abort_handle())
}
