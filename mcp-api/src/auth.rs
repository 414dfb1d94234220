//! Who is calling: the verified access token, turned into an [`Owner`] and scopes.
//!
//! Every request that reaches a handler has passed [`jwks_verify::BearerAuthLayer`], which put
//! a [`Verified<AccessClaims>`](jwks_verify::Verified) into the request extensions. The
//! owner of every memory touched is the token's `sub`: never a path, query or body value.

use http::Request;
use jwks_verify::Verified;
use serde::Deserialize;

use crate::store::Owner;

/// Scope to read memories.
pub const SCOPE_READ: &str = "memories:read";
/// Scope to create, change and delete memories (it implies reading).
pub const SCOPE_WRITE: &str = "memories:write";

/// The access-token claims this service uses (RFC 9068).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct AccessClaims {
    /// The user.
    pub sub: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Authorized party, used when `client_id` is absent.
    #[serde(default)]
    pub azp: Option<String>,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whose memories this request may touch.
    pub owner: Owner,
    /// The client application (`client_id`), recorded on writes and in the access log.
    pub app: String,
    can_read: bool,
    can_write: bool,
}

/// Why a request has no usable caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerError {
    /// No verified token in the request (the auth layer is missing in front of the service).
    Unauthenticated,
    /// The token's `sub` is not a usable owner (empty, too long, control characters).
    InvalidSubject,
}

impl Caller {
    /// The caller of `request`, from the claims the auth layer verified.
    pub fn from_request<B>(request: &Request<B>) -> Result<Caller, CallerError> {
        let verified = request
            .extensions()
            .get::<Verified<AccessClaims>>()
            .ok_or(CallerError::Unauthenticated)?;
        Caller::from_claims(verified)
    }

    /// The caller for verified claims.
    pub fn from_claims(claims: &AccessClaims) -> Result<Caller, CallerError> {
        let owner = Owner::new(claims.sub.as_str()).map_err(|_| CallerError::InvalidSubject)?;
        let app = claims
            .client_id
            .clone()
            .or_else(|| claims.azp.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let scopes = claims.scope.as_deref().unwrap_or("");
        let can_write = scopes.split_ascii_whitespace().any(|s| s == SCOPE_WRITE);
        let can_read = can_write || scopes.split_ascii_whitespace().any(|s| s == SCOPE_READ);
        Ok(Caller {
            owner,
            app,
            can_read,
            can_write,
        })
    }

    /// Whether the token allows reading memories.
    pub fn can_read(&self) -> bool {
        self.can_read
    }

    /// Whether the token allows writing memories.
    pub fn can_write(&self) -> bool {
        self.can_write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: Option<&str>) -> AccessClaims {
        AccessClaims {
            sub: "user-1".into(),
            scope: scope.map(Into::into),
            client_id: Some("chatgpt".into()),
            azp: None,
        }
    }

    #[test]
    fn scopes() {
        let none = Caller::from_claims(&claims(None)).unwrap();
        assert!(!none.can_read() && !none.can_write());
        let read = Caller::from_claims(&claims(Some("openid memories:read"))).unwrap();
        assert!(read.can_read() && !read.can_write());
        let write = Caller::from_claims(&claims(Some("memories:write"))).unwrap();
        assert!(write.can_read() && write.can_write());
        assert!(
            !Caller::from_claims(&claims(Some("memories:readx")))
                .unwrap()
                .can_read()
        );
        assert_eq!(write.app, "chatgpt");
    }

    #[test]
    fn empty_subject_is_refused() {
        let mut c = claims(Some("memories:read"));
        c.sub = String::new();
        assert_eq!(
            Caller::from_claims(&c).unwrap_err(),
            CallerError::InvalidSubject
        );
    }
}
