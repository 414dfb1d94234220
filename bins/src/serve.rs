//! The accept loop: HTTP/1.1 and HTTP/2 with hyper, the peer address in request extensions,
//! a header-read timeout against slow clients, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` on `listener` until `shutdown` completes, then stops accepting and gives
/// open connections [`DRAIN_TIMEOUT`] to finish.
///
/// Each request carries the client's [`SocketAddr`] in its extensions (for rate limits): the
/// TCP peer, or — only when the peer is one of `trusted_proxies` — the last address in its
/// `X-Forwarded-For` header. Forwarded headers from anyone else are ignored.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    trusted_proxies: Arc<[IpAddr]>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
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
        let service = PeerAddress {
            inner: service.clone(),
            peer,
            trusted_proxies: Arc::clone(&trusted_proxies),
        };
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let watched = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after the drain timeout; closing");
        }
    }
    Ok(())
}

/// Inserts the client address into each request.
#[derive(Clone)]
struct PeerAddress<S> {
    inner: S,
    peer: SocketAddr,
    trusted_proxies: Arc<[IpAddr]>,
}

/// The client behind a trusted proxy: the last (proxy-appended) `X-Forwarded-For` entry.
fn forwarded_client<B>(request: &Request<B>) -> Option<IpAddr> {
    let header = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?;
    let last = header.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse().ok()
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
        let client = if self.trusted_proxies.contains(&self.peer.ip()) {
            forwarded_client(&request).map_or(self.peer, |ip| SocketAddr::new(ip, 0))
        } else {
            self.peer
        };
        request.extensions_mut().insert(client);
        self.inner.call(request)
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_forwarded(value: &str) -> Request<()> {
        Request::builder()
            .header("x-forwarded-for", value)
            .body(())
            .unwrap()
    }

    #[test]
    fn the_last_forwarded_hop_is_the_client() {
        // The proxy appends the address it saw; earlier entries are the client's to invent.
        assert_eq!(
            forwarded_client(&with_forwarded("1.2.3.4, 10.0.0.7")),
            "10.0.0.7".parse().ok()
        );
        assert_eq!(
            forwarded_client(&with_forwarded("2001:db8::1")),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(forwarded_client(&with_forwarded("garbage")), None);
        assert_eq!(forwarded_client(&Request::new(())), None);
    }
}
