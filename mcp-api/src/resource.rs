//! This server as an OAuth protected resource (RFC 9728): its canonical URI, its
//! authorization server, and the metadata document and challenges that point clients there.

use jwks_verify::Challenge;
use serde::Serialize;

use crate::auth::{SCOPE_READ, SCOPE_WRITE};

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
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base_url)
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

    /// The `WWW-Authenticate` parameters for 401 and 403 answers.
    pub fn challenge(&self) -> Challenge {
        Challenge::new()
            .resource_metadata(&self.metadata_url())
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
    }
}
