//! Name resolution for the outbound client: the [`DnsResolver`] seam and the system
//! resolver. Below both the client and its connector.

use std::net::IpAddr;

use crate::authn::BoxFuture;

/// Resolves host names to IP addresses for [`OutboundClient`](super::OutboundClient). The answer is vetted
/// against the [`AddressPolicy`](super::AddressPolicy) and then used as-is for the connection.
pub trait DnsResolver: Send + Sync + 'static {
    /// All addresses of `host` (a name, never an IP literal).
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver, through [`tokio::net::lookup_host`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl DnsResolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}
