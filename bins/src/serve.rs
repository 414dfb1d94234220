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
/// TCP peer, or — only when the peer is one of `trusted_proxies` — the rightmost address in
/// its `X-Forwarded-For` header that is not itself a trusted proxy (so chained proxies work,
/// and entries the client wrote itself are never believed). Forwarded headers from anyone
/// else are ignored. IPv4 peers of a dual-stack listener (`::ffff:a.b.c.d`) match their
/// IPv4 address in `trusted_proxies`.
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
    use tower::ServiceExt as _;

    use super::*;

    fn with_forwarded(value: &str) -> Request<()> {
        Request::builder()
            .header("x-forwarded-for", value)
            .body(())
            .unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The client address that `PeerAddress` hands to the inner service, for a request from
    /// `peer` with these `X-Forwarded-For` headers.
    async fn client_seen(peer: &str, trusted: &[&str], forwarded: &[&str]) -> SocketAddr {
        let inner = tower::service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.extensions().get::<SocketAddr>().copied())
        });
        let service = PeerAddress {
            inner,
            peer: peer.parse().unwrap(),
            trusted_proxies: trusted.iter().map(|t| ip(t)).collect(),
        };
        let mut request = Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        service
            .oneshot(request.body(()).unwrap())
            .await
            .unwrap()
            .expect("the client address is always inserted")
    }

    #[test]
    fn the_last_forwarded_hop_is_the_client() {
        // The proxy appends the address it saw; earlier entries are the client's to invent.
        assert_eq!(
            forwarded_client(&with_forwarded("1.2.3.4, 10.0.0.7"), &[]),
            "10.0.0.7".parse().ok()
        );
        assert_eq!(
            forwarded_client(&with_forwarded("2001:db8::1"), &[]),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(forwarded_client(&with_forwarded("garbage"), &[]), None);
        assert_eq!(forwarded_client(&Request::new(()), &[]), None);
    }

    #[tokio::test]
    async fn attack_x_forwarded_for_from_untrusted_peer_is_ignored() {
        let peer = "203.0.113.9:40000";
        let spoofed = ["198.51.100.1"];
        assert_eq!(
            client_seen(peer, &[], &spoofed).await,
            peer.parse().unwrap()
        );
        // Trusting some other proxy does not make this peer's header believable.
        assert_eq!(
            client_seen(peer, &["10.0.0.1"], &spoofed).await,
            peer.parse().unwrap()
        );
    }

    #[tokio::test]
    async fn attack_client_prepended_forwarded_entries_are_not_the_client() {
        let proxy = "10.0.0.1:50000";
        let real = SocketAddr::new(ip("203.0.113.9"), 0);
        // The client sent `X-Forwarded-For: 198.51.100.1, 10.0.0.2` itself; the proxy appended
        // the address it saw. Neither invented entry may be taken, not even one that names a
        // trusted proxy.
        assert_eq!(
            client_seen(
                proxy,
                &["10.0.0.1", "10.0.0.2"],
                &["198.51.100.1, 10.0.0.2, 203.0.113.9"]
            )
            .await,
            real
        );
        // Two chained trusted proxies: the rightmost entry is the first proxy, skipped.
        assert_eq!(
            client_seen(
                proxy,
                &["10.0.0.1", "10.0.0.2"],
                &["198.51.100.1, 203.0.113.9", "10.0.0.2"]
            )
            .await,
            real
        );
        // An unreadable entry where the client should be: the proxy itself is the client.
        assert_eq!(
            client_seen(proxy, &["10.0.0.1"], &["203.0.113.9, garbage"]).await,
            proxy.parse().unwrap()
        );
    }

    #[tokio::test]
    async fn ipv4_mapped_peer_matches_an_ipv4_trusted_proxy() {
        // A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.1.
        let mapped = "[::ffff:10.0.0.1]:50000";
        assert_eq!(
            client_seen(mapped, &["10.0.0.1"], &["203.0.113.9"]).await,
            SocketAddr::new(ip("203.0.113.9"), 0)
        );
        // And the other way round, with a mapped forwarded entry of a trusted proxy.
        assert_eq!(
            client_seen(
                "10.0.0.1:50000",
                &["::ffff:10.0.0.1", "10.0.0.2"],
                &["203.0.113.9, ::ffff:10.0.0.2"]
            )
            .await,
            SocketAddr::new(ip("203.0.113.9"), 0)
        );
    }
}
