//! This server as an OAuth protected resource (RFC 9728): its canonical URI, its
//! authorization server, and the metadata document and challenges that point clients there.
//!
//! # Where the metadata is served, and why twice
//!
//! One resource, `{base}/mcp`, covers every transport and the REST API: tokens carry it in
//! `aud` whichever path they are used on. Its one metadata document is served at the RFC 9728
//! §3.1 locations (`/.well-known/oauth-protected-resource`, `…/mcp` and `…/mcp/sse`, see
//! [`WELL_KNOWN_METADATA_PATHS`]) and again at [`SSE_METADATA_PATH`],
//! `/mcp/sse/oauth-protected-resource`.
//!
//! The second copy exists for deployments that put an access proxy in front of the server
//! and let only a few paths through, like the Cloudflare Access setup this project was
//! specified with (`/openapi.json`, `/mcp/sse`, `/api/v1/memories/*`, `/health`; path rules
//! cover sub-paths). A client configured with the server URL `{base}/mcp/sse` (ChatGPT's
//! legacy SSE connector) must find the metadata without leaving `/mcp/sse`, so the 401
//! challenges of the legacy transport name [`MetadataLocation::UnderSse`]. RFC 9728 §5.1 lets
//! `resource_metadata` be any URL.
//!
//! The document names the resource `{base}/mcp` wherever it is served, not the URL the
//! client started from. RFC 9728 §3.3 asks for an identical `resource`; the MCP clients we can
//! read check a prefix instead. The official MCP Python SDK (PyPI `mcp` 2.3.0, pinned in the
//! end-to-end tests; `OAuthClientProvider._validate_resource_match` with
//! `check_resource_allowed`) accepts a `resource` on the server URL's origin whose path is a
//! prefix of the server URL's at a segment boundary, so `{base}/mcp` passes for
//! `{base}/mcp/sse`; it then sends that `resource` (RFC 8707) in the authorization and token
//! requests (`OAuthContext.get_resource_url`), so the token's `aud` is the audience every
//! route accepts. Naming `{base}/mcp/sse` instead would mint tokens for a second audience that
//! the authorization server and the verifier would both have to know. A client that insists
//! on RFC 9728's identity rule would discard the document for `{base}/mcp/sse` (and would
//! have found none before). ChatGPT's client is not public: OpenAI documents that it reads
//! this metadata and sends its `resource`, not how it compares it with the server URL.

use jwks_verify::Challenge;
use serde::Serialize;

use crate::auth::{SCOPE_READ, SCOPE_WRITE};
use crate::mcp::{MESSAGES_ALIAS_PATH, SSE_PATH};

/// The RFC 9728 §3.1 locations of the metadata document: the root form and the
/// path-inserted forms for the two MCP endpoints.
pub const WELL_KNOWN_METADATA_PATHS: [&str; 3] = [
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-protected-resource/mcp/sse",
];

/// The copy of the metadata document under the legacy SSE endpoint (see the
/// [module documentation](self)).
pub const SSE_METADATA_PATH: &str = "/mcp/sse/oauth-protected-resource";

/// Which copy of the metadata document a challenge points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataLocation {
    /// `{base}/.well-known/oauth-protected-resource/mcp` (RFC 9728 §3.1, path-inserted).
    WellKnown,
    /// `{base}/mcp/sse/oauth-protected-resource`: for clients of the legacy SSE transport,
    /// which may only be able to reach paths under `/mcp/sse`.
    UnderSse,
}

impl MetadataLocation {
    /// The location for challenges to a request for `path`: [`UnderSse`](Self::UnderSse)
    /// for the legacy SSE transport (`/mcp/sse`, everything under it, and the old message
    /// path `/mcp/messages`), [`WellKnown`](Self::WellKnown) for everything else.
    ///
    /// ```
    /// use mcp_api::resource::MetadataLocation;
    ///
    /// assert_eq!(MetadataLocation::for_path("/mcp/sse/messages"), MetadataLocation::UnderSse);
    /// assert_eq!(MetadataLocation::for_path("/mcp"), MetadataLocation::WellKnown);
    /// assert_eq!(MetadataLocation::for_path("/mcp/sselike"), MetadataLocation::WellKnown);
    /// ```
    #[must_use]
    pub fn for_path(path: &str) -> Self {
        let under_sse = path
            .strip_prefix(SSE_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if under_sse || path == MESSAGES_ALIAS_PATH {
            MetadataLocation::UnderSse
        } else {
            MetadataLocation::WellKnown
        }
    }
}

/// Where this server lives and who issues its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    base_url: String,
    issuer: String,
}

/// The RFC 9728 metadata document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceMetadata {
    /// The canonical resource URI (`{base}/mcp`).
    pub resource: String,
    /// The issuers that grant tokens for it.
    pub authorization_servers: Vec<String>,
    /// The scopes it understands.
    pub scopes_supported: Vec<String>,
    /// Bearer tokens only in the `Authorization` header.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    pub resource_name: String,
    /// Where the REST API is documented.
    pub resource_documentation: String,
}

impl ProtectedResource {
    /// A server at `base_url` (e.g. `https://mcp.example.com`, no trailing slash) whose tokens
    /// come from `issuer`.
    pub fn new(base_url: &str, issuer: &str) -> Self {
        ProtectedResource {
            base_url: base_url.trim_end_matches('/').to_owned(),
            issuer: issuer.to_owned(),
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The authorization server's issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The canonical MCP resource URI: `{base}/mcp`. Access tokens must carry it in `aud`.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.base_url)
    }

    /// The audiences accepted in tokens: the canonical resource and the base URL.
    pub fn audiences(&self) -> [String; 2] {
        [self.resource(), self.base_url.clone()]
    }

    /// Where the metadata for the MCP endpoint is published (RFC 9728 §3.1 path-inserted form).
    pub fn metadata_url(&self) -> String {
        self.metadata_url_at(MetadataLocation::WellKnown)
    }

    /// The URL of the metadata document at `location`.
    ///
    /// ```
    /// use mcp_api::ProtectedResource;
    /// use mcp_api::resource::MetadataLocation;
    ///
    /// let resource = ProtectedResource::new("https://mcp.example", "https://auth.example");
    /// assert_eq!(
    ///     resource.metadata_url_at(MetadataLocation::UnderSse),
    ///     "https://mcp.example/mcp/sse/oauth-protected-resource"
    /// );
    /// ```
    pub fn metadata_url_at(&self, location: MetadataLocation) -> String {
        let path = match location {
            MetadataLocation::WellKnown => WELL_KNOWN_METADATA_PATHS[1],
            MetadataLocation::UnderSse => SSE_METADATA_PATH,
        };
        format!("{}{path}", self.base_url)
    }

    /// The OpenID Connect discovery URL of the issuer.
    pub fn issuer_discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The metadata document.
    pub fn metadata(&self) -> ResourceMetadata {
        ResourceMetadata {
            resource: self.resource(),
            authorization_servers: vec![self.issuer.clone()],
            scopes_supported: vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()],
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: "Memory MCP server".to_owned(),
            resource_documentation: format!("{}/openapi.json", self.base_url),
        }
    }

    /// The `WWW-Authenticate` parameters for 401 and 403 answers, pointing at the
    /// well-known metadata location.
    pub fn challenge(&self) -> Challenge {
        self.challenge_at(MetadataLocation::WellKnown)
    }

    /// The `WWW-Authenticate` parameters for 401 and 403 answers, pointing at the metadata
    /// document at `location`.
    pub fn challenge_at(&self, location: MetadataLocation) -> Challenge {
        Challenge::new()
            .resource_metadata(&self.metadata_url_at(location))
            .scope(&format!("{SCOPE_READ} {SCOPE_WRITE}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_derive_from_the_base() {
        let r = ProtectedResource::new("https://mcp.example/", "https://auth.example");
        assert_eq!(r.resource(), "https://mcp.example/mcp");
        assert_eq!(
            r.metadata_url(),
            "https://mcp.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            r.issuer_discovery_url(),
            "https://auth.example/.well-known/openid-configuration"
        );
        let m = r.metadata();
        assert_eq!(m.authorization_servers, ["https://auth.example"]);
        assert_eq!(m.bearer_methods_supported, ["header"]);
        assert_eq!(
            r.challenge().missing_token_header(),
            "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", scope=\"memories:read memories:write\""
        );
        assert_eq!(
            r.challenge_at(MetadataLocation::UnderSse)
                .missing_token_header(),
            "Bearer resource_metadata=\"https://mcp.example/mcp/sse/oauth-protected-resource\", scope=\"memories:read memories:write\""
        );
    }

    #[test]
    fn the_legacy_transport_paths_use_the_copy_under_sse() {
        for path in [
            "/mcp/sse",
            "/mcp/sse/",
            "/mcp/sse/messages",
            "/mcp/sse/oauth-protected-resource",
            "/mcp/messages",
        ] {
            assert_eq!(
                MetadataLocation::for_path(path),
                MetadataLocation::UnderSse,
                "{path}"
            );
        }
        for path in [
            "/mcp",
            "/mcp/",
            "/mcp/ssex",
            "/api/v1/memories",
            "/",
            "/mcp/messagesx",
        ] {
            assert_eq!(
                MetadataLocation::for_path(path),
                MetadataLocation::WellKnown,
                "{path}"
            );
        }
    }
}
