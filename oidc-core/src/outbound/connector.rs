//! The TCP side of [`OutboundClient`](super::OutboundClient): a DNS resolver that vets
//! every answer against the [`AddressPolicy`], and a connector that vets IP-literal hosts
//! (which hyper's `HttpConnector` never sends to a resolver).
//!
//! Pinning: hyper-util's `HttpConnector` connects to exactly the addresses its resolver
//! returns, and [`VettingResolver`] returns exactly the addresses it has checked, from a
//! single lookup. There is no second lookup between the check and the connection, so a
//! DNS answer that changes (rebinding) cannot slip a private address past the check. TLS
//! still uses the URL's host name for SNI and certificate verification, because
//! `hyper-rustls` takes the server name from the request URI, not from the socket.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::address::{AddressPolicy, AddressRefused};
use super::resolver::DnsResolver;

/// Most addresses taken from one DNS answer.
const MAX_ADDRESSES: usize = 16;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A hyper-util resolver: looks the name up once with the configured [`DnsResolver`],
/// refuses the whole answer if any address is unacceptable, and returns the vetted
/// addresses (port 0; the connector sets the port).
#[derive(Clone)]
pub(crate) struct VettingResolver {
    pub(crate) policy: AddressPolicy,
    pub(crate) dns: Arc<dyn DnsResolver>,
}

impl Service<Name> for VettingResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        let dns = Arc::clone(&self.dns);
        Box::pin(async move {
            let mut ips = dns
                .resolve(name.as_str())
                .await
                .map_err(|e| Box::new(DnsFailed(e.kind())) as BoxError)?;
            if ips.is_empty() {
                return Err(Box::new(DnsFailed(io::ErrorKind::NotFound)) as BoxError);
            }
            ips.truncate(MAX_ADDRESSES);
            policy.check_all(&ips).map_err(|refused| {
                tracing::debug!(host = name.as_str(), class = %refused.class(), "outbound request refused by address policy");
                Box::new(refused) as BoxError
            })?;
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

/// The resolver failed or had no answer.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("host name did not resolve ({0})")]
pub(crate) struct DnsFailed(io::ErrorKind);

/// An `HttpConnector` over a [`VettingResolver`] that also vets IP-literal hosts.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    policy: AddressPolicy,
    inner: HttpConnector<VettingResolver>,
}

impl GuardedConnector {
    pub(crate) fn new(
        policy: AddressPolicy,
        dns: Arc<dyn DnsResolver>,
        connect_timeout: std::time::Duration,
    ) -> Self {
        let mut inner = HttpConnector::new_with_resolver(VettingResolver { policy, dns });
        // TLS is layered on top by hyper-rustls, which needs plain TCP for `https` URIs.
        inner.enforce_http(false);
        inner.set_connect_timeout(Some(connect_timeout));
        inner.set_nodelay(true);
        GuardedConnector { policy, inner }
    }
}

impl Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if let Some(ip) = dst.host().and_then(ip_literal)
            && let Err(refused) = self.policy.check(ip)
        {
            tracing::debug!(class = %refused.class(), "outbound request to an ip literal refused by address policy");
            return Box::pin(std::future::ready(Err(Box::new(refused) as BoxError)));
        }
        let connecting = self.inner.call(dst);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The IP address a URI host spells, if it is an IP literal (`[…]` for IPv6). Any host
/// that is not one goes through the resolver, whatever it looks like (`2130706433`,
/// `0x7f.1`): the system resolver may read those as addresses, and the answer is vetted.
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Finds an [`AddressRefused`] in an error's source chain.
pub(crate) fn find_refusal(error: &(dyn std::error::Error + 'static)) -> Option<AddressRefused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return Some(*refused);
        }
        current = e.source();
    }
    None
}

/// Whether an error's source chain holds a [`DnsFailed`].
pub(crate) fn is_dns_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<DnsFailed>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether an error's source chain holds an I/O timeout (the connect timeout).
pub(crate) fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals() {
        assert_eq!(ip_literal("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("example.com"), None);
        assert_eq!(ip_literal("2130706433"), None);
    }

    #[test]
    fn refusals_are_found_in_error_chains() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] Box<dyn std::error::Error + Send + Sync>);

        let refused = AddressPolicy::public_only()
            .check("10.0.0.1".parse().unwrap())
            .unwrap_err();
        let wrapped = Wrapper(Box::new(refused));
        assert_eq!(find_refusal(&wrapped), Some(refused));
        let other = Wrapper(Box::new(io::Error::other("x")));
        assert_eq!(find_refusal(&other), None);
    }
}
