//! Outbound HTTP: the provider's requests to other servers (upstream discovery, token
//! exchange and JWKS; client metadata documents), with SSRF protection.
//!
//! - [`AddressPolicy`] says which IP addresses may be reached. The default refuses
//!   loopback, private (RFC 1918, `fc00::/7`), CGNAT, link-local (and so cloud metadata at
//!   `169.254.169.254`), unspecified, multicast, broadcast, documentation and reserved
//!   addresses, including their IPv4-mapped, NAT64 and 6to4 IPv6 forms.
//! - [`OutboundClient`] (feature `hyper-client`) resolves each host name once, refuses the
//!   request if *any* address in the answer is refused, and connects only to the vetted
//!   addresses: the check and the connection use the same lookup, so DNS rebinding between
//!   them is impossible. TLS keeps the URL's host name for SNI and certificate checks.
//!   `https` only, redirects never followed, one timeout from connect to last byte, and a
//!   response size limit.
//! - [`ClientMetadataDocuments`] (feature `hyper-client`) is the provider's
//!   [`MetadataDocumentResolver`](crate::client::MetadataDocumentResolver): it fetches
//!   Client ID Metadata Documents through the client, validates them with
//!   [`parse_metadata_document`] and caches them per `Cache-Control`.

mod address;
#[cfg(feature = "hyper-client")]
mod client;
#[cfg(feature = "hyper-client")]
mod connector;
mod metadata_document;
#[cfg(feature = "hyper-client")]
mod resolver;

pub use address::{AddressClass, AddressPolicy, AddressRefused, classify};
#[cfg(feature = "hyper-client")]
pub use client::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, OutboundClient, OutboundConfig,
    OutboundError, OutboundResponse,
};
#[cfg(feature = "hyper-client")]
pub use metadata_document::ClientMetadataDocuments;
pub use metadata_document::{
    MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS, MetadataDocumentConfig, parse_metadata_document,
};
#[cfg(feature = "hyper-client")]
pub use resolver::{DnsResolver, SystemResolver};
