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
use tower::{Service, ServiceExt as _};

/// Serves `service` on a free loopback port ([`serve_on`]); returns the address.
///
/// # Panics
///
/// If no loopback port can be bound: a benchmark cannot run without one.
pub async fn serve<S, B>(service: S) -> SocketAddr
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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    #[allow(clippy::expect_used)] // a bound listener has an address
    let addr = listener.local_addr().expect("addr");
    serve_on(listener, service);
    addr
}

/// Serves `service` on `listener` with hyper (HTTP/1.1 and HTTP/2, as the binaries do),
/// each request carrying its peer's [`SocketAddr`] in its extensions as the binaries'
/// accept loop puts it there, in a task on the current Tokio runtime.
pub fn serve_on<S, B>(listener: TcpListener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let service = service
                .clone()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    request
                });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
}
