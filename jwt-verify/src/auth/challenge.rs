//! RFC 6750 `WWW-Authenticate` challenges (with RFC 9728 `resource_metadata`).

use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Response, StatusCode};

/// The parameters of the `Bearer` challenges a protected resource sends.
///
/// ```
/// use jwks_verify::Challenge;
///
/// let challenge = Challenge::new()
///     .resource_metadata("https://mcp.example/.well-known/oauth-protected-resource/mcp")
///     .scope("memories:read memories:write");
/// assert_eq!(
///     challenge.invalid_token_header(),
///     r#"Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="memories:read memories:write", error="invalid_token""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    realm: Option<String>,
    resource_metadata: Option<String>,
    scope: Option<String>,
    missing: HeaderValue,
    invalid_token: HeaderValue,
    revoked_token: HeaderValue,
}

impl Default for Challenge {
    fn default() -> Self {
        Self::new()
    }
}

impl Challenge {
    /// A bare `Bearer` challenge.
    pub fn new() -> Self {
        let mut challenge = Challenge {
            realm: None,
            resource_metadata: None,
            scope: None,
            missing: HeaderValue::from_static("Bearer"),
            invalid_token: HeaderValue::from_static("Bearer error=\"invalid_token\""),
            revoked_token: HeaderValue::from_static("Bearer error=\"invalid_token\""),
        };
        challenge.rebuild();
        challenge
    }

    /// Adds `realm="…"`.
    #[must_use]
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Some(quote(realm));
        self.rebuild();
        self
    }

    /// Adds RFC 9728 `resource_metadata="…"`, the URL of the protected-resource metadata.
    #[must_use]
    pub fn resource_metadata(mut self, url: &str) -> Self {
        self.resource_metadata = Some(quote(url));
        self.rebuild();
        self
    }

    /// Adds `scope="…"`: the scopes a client should ask for.
    #[must_use]
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(quote(scope));
        self.rebuild();
        self
    }

    /// The header for a request without a bearer token (RFC 6750 §3.1: no error code).
    pub fn missing_token_header(&self) -> &HeaderValue {
        &self.missing
    }

    /// The header for a refused token: `error="invalid_token"`, and no detail that would
    /// help an attacker.
    pub fn invalid_token_header(&self) -> &HeaderValue {
        &self.invalid_token
    }

    /// The header for a token its issuer revoked (its status list entry is not VALID):
    /// `error="invalid_token"` with `error_description="token revoked"`, so a client knows
    /// refreshing the same grant is pointless but learns nothing else.
    ///
    /// ```
    /// use jwks_verify::Challenge;
    ///
    /// assert_eq!(
    ///     Challenge::new().realm("api").revoked_token_header(),
    ///     r#"Bearer realm="api", error="invalid_token", error_description="token revoked""#
    /// );
    /// ```
    pub fn revoked_token_header(&self) -> &HeaderValue {
        &self.revoked_token
    }

    /// The header for a token that lacks a scope (RFC 6750 §3.1): `error="insufficient_scope"`
    /// with `scope` naming `required_scope` instead of the configured scopes.
    ///
    /// ```
    /// use jwks_verify::Challenge;
    ///
    /// let challenge = Challenge::new().realm("memories");
    /// assert_eq!(
    ///     challenge.insufficient_scope_header("memories:write"),
    ///     r#"Bearer realm="memories", scope="memories:write", error="insufficient_scope""#
    /// );
    /// ```
    pub fn insufficient_scope_header(&self, required_scope: &str) -> HeaderValue {
        self.header(Some(required_scope), Some("insufficient_scope"))
    }

    fn params(
        &self,
        scope_override: Option<&str>,
        error: Option<&str>,
        description: Option<&str>,
    ) -> String {
        let mut parts = Vec::new();
        if let Some(realm) = &self.realm {
            parts.push(format!("realm=\"{realm}\""));
        }
        if let Some(url) = &self.resource_metadata {
            parts.push(format!("resource_metadata=\"{url}\""));
        }
        if let Some(scope) = scope_override.map(quote).or_else(|| self.scope.clone()) {
            parts.push(format!("scope=\"{scope}\""));
        }
        if let Some(error) = error {
            parts.push(format!("error=\"{error}\""));
        }
        if let Some(description) = description {
            parts.push(format!("error_description=\"{}\"", quote(description)));
        }
        if parts.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", parts.join(", "))
        }
    }

    fn header(&self, scope_override: Option<&str>, error: Option<&str>) -> HeaderValue {
        self.header_with_description(scope_override, error, None)
    }

    fn header_with_description(
        &self,
        scope_override: Option<&str>,
        error: Option<&str>,
        description: Option<&str>,
    ) -> HeaderValue {
        // `quote` leaves only visible ASCII and spaces, so this cannot fail.
        HeaderValue::from_str(&self.params(scope_override, error, description))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    fn rebuild(&mut self) {
        self.missing = self.header(None, None);
        self.invalid_token = self.header(None, Some("invalid_token"));
        self.revoked_token =
            self.header_with_description(None, Some("invalid_token"), Some("token revoked"));
    }

    pub(crate) fn response<B: Default>(
        &self,
        status: StatusCode,
        header: HeaderValue,
    ) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = status;
        response.headers_mut().insert(WWW_AUTHENTICATE, header);
        response
    }
}

/// A 403 `insufficient_scope` response (RFC 6750 §3.1) naming the scope the request needs.
///
/// ```
/// use jwks_verify::{Challenge, insufficient_scope};
///
/// let response = insufficient_scope::<String>(&Challenge::new(), "memories:write");
/// assert_eq!(response.status(), 403);
/// assert_eq!(
///     response.headers()["www-authenticate"],
///     r#"Bearer scope="memories:write", error="insufficient_scope""#
/// );
/// ```
pub fn insufficient_scope<B: Default>(challenge: &Challenge, required_scope: &str) -> Response<B> {
    challenge.response(
        StatusCode::FORBIDDEN,
        challenge.insufficient_scope_header(required_scope),
    )
}

/// Makes a value safe inside an RFC 9110 quoted-string: visible ASCII and spaces only,
/// with `"` and `\` escaped.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' | '!'..='~' => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_challenges() {
        let c = Challenge::new();
        assert_eq!(c.missing_token_header(), "Bearer");
        assert_eq!(c.invalid_token_header(), "Bearer error=\"invalid_token\"");
    }

    #[test]
    fn insufficient_scope_header_replaces_the_configured_scope() {
        let c = Challenge::new().scope("a b");
        assert_eq!(
            c.insufficient_scope_header("b"),
            "Bearer scope=\"b\", error=\"insufficient_scope\""
        );
        let response = insufficient_scope::<()>(&c, "b");
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            c.insufficient_scope_header("b")
        );
    }

    #[test]
    fn attack_header_injection_through_the_required_scope_is_neutralised() {
        let c = Challenge::new();
        assert_eq!(
            c.insufficient_scope_header("x\"\r\nX-Evil: 1"),
            "Bearer scope=\"x\\\"X-Evil: 1\", error=\"insufficient_scope\""
        );
    }

    #[test]
    fn header_injection_is_neutralised() {
        let c = Challenge::new().realm("a\"b\r\nX-Evil: 1\\");
        assert_eq!(
            c.missing_token_header(),
            "Bearer realm=\"a\\\"bX-Evil: 1\\\\\""
        );
    }
}
