//! OAuth clients as the provider sees them, however they came to be known: static
//! configuration, Dynamic Client Registration (RFC 7591), or a Client ID Metadata Document
//! (the `client_id` is an https URL the provider fetches).

use std::fmt;

use crate::authn::BoxFuture;
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::types::ClientId;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// A public client (PKCE is its only protection, and it is mandatory).
    None,
    /// `client_secret_basic`: HTTP Basic with the URL-encoded id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` form fields.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The RFC 7591 name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    /// Parses an RFC 7591 name (only the methods this provider supports).
    pub fn from_name(name: &str) -> Option<ClientAuthMethod> {
        match name {
            "none" => Some(ClientAuthMethod::None),
            "client_secret_basic" => Some(ClientAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuthMethod::ClientSecretPost),
            _ => None,
        }
    }
}

/// Where a client's registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// From the provider's configuration.
    Static,
    /// Registered at the registration endpoint.
    Dynamic,
    /// Fetched from its `client_id` URL.
    MetadataDocument,
}

/// A client the provider knows.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// The client id.
    pub client_id: ClientId,
    /// A display name for consent pages (never trusted for anything else).
    pub name: String,
    /// Registered redirect URIs; requests must match one exactly (loopback ports aside).
    pub redirect_uris: Vec<RedirectUri>,
    /// How it authenticates at the token endpoint.
    pub auth_method: ClientAuthMethod,
    /// The hash of its secret (confidential clients only).
    pub secret_hash: Option<SecretHash>,
    /// Whether it may use the `refresh_token` grant.
    pub refresh_tokens: bool,
    /// Where it came from.
    pub kind: ClientKind,
    /// When it was registered or fetched (Unix seconds).
    pub created_at: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .field("has_secret", &self.secret_hash.is_some())
            .field("refresh_tokens", &self.refresh_tokens)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why a Client ID Metadata Document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataDocumentError {
    /// The URL is not an acceptable document URL (https with a path), or resolves to an
    /// address the provider must not contact (private, loopback, link-local…).
    #[error("client metadata url not allowed: {0}")]
    Forbidden(String),
    /// Fetching failed (network, timeout, status, size).
    #[error("client metadata document could not be fetched: {0}")]
    Fetch(String),
    /// The document is not valid client metadata, or its `client_id` is not its URL.
    #[error("invalid client metadata document: {0}")]
    Invalid(String),
}

/// Resolves a `client_id` that is a URL to the client its metadata document describes.
pub trait MetadataDocumentResolver: Send + Sync + 'static {
    /// Fetches (or serves from cache) and validates the document at `client_id`.
    fn resolve<'a>(
        &'a self,
        client_id: &'a ClientId,
        now: u64,
    ) -> BoxFuture<'a, Result<Client, MetadataDocumentError>>;

    /// The document at `client_id` if it is cached and fresh at `now`, without fetching:
    /// for showing a client's name where a fetch is not wanted (the account API). `None`
    /// by default.
    fn cached_client(&self, client_id: &ClientId, now: u64) -> Option<Client> {
        let _ = (client_id, now);
        None
    }
}
