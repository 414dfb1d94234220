//! A ready-made claims type for access and ID tokens.

use serde::Deserialize;

/// The claims most access and ID tokens carry. Unknown claims are ignored; define your own
/// type to read more.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct StandardClaims {
    /// Issuer (already checked against the policy).
    pub iss: String,
    /// Subject.
    pub sub: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: Option<u64>,
    /// Not before, Unix seconds.
    pub nbf: Option<u64>,
    /// Token id.
    pub jti: Option<String>,
    /// Space-separated scopes (RFC 9068 / RFC 8693).
    pub scope: Option<String>,
    /// The OAuth client the token was issued to (RFC 9068).
    pub client_id: Option<String>,
    /// Authorized party (OpenID Connect).
    pub azp: Option<String>,
}

impl StandardClaims {
    /// The scopes in `scope`.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or("").split_ascii_whitespace()
    }

    /// Whether `scope` lists `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_whitespace() {
        let claims: StandardClaims =
            serde_json::from_str(r#"{"iss":"i","exp":1,"scope":"memories:read  memories:write"}"#)
                .unwrap();
        assert!(claims.has_scope("memories:write"));
        assert!(!claims.has_scope("memories"));
        assert_eq!(claims.scopes().count(), 2);
    }
}
