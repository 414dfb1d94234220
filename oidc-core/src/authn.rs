//! The seam between the provider, which runs OAuth 2.1 / OpenID Connect, and the login
//! methods, which establish who the user is: federation to an upstream OpenID provider
//! (Google or any issuer) and local passwords.
//!
//! The flow: `/authorize` validates the request, stores it as a pending authorization under
//! a [`TransactionId`], and calls [`Authenticator::start`]. The login method answers with a
//! redirect (upstream) or a page (password form) and later, on a request under its
//! [`Authenticator::path_prefix`], returns [`LoginOutcome::Authenticated`] for that
//! transaction. The provider then asks for consent and issues the code.
//!
//! Login methods never see the client's request parameters, and never issue codes or tokens.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SecureRandom;
use bytes::Bytes;
use http::{Request, Response};

use crate::base64url;
use crate::error::RandomError;
use crate::types::Subject;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Identifies one pending authorization while the user logs in: 256 random bits,
/// single use, opaque to login methods. `Debug` is redacted (it is a bearer value).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(Box<str>);

impl TransactionId {
    /// A fresh random id.
    pub fn generate(rng: &dyn SecureRandom) -> Result<TransactionId, RandomError> {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)?;
        Ok(TransactionId(base64url::encode(&bytes).into_boxed_str()))
    }

    /// Accepts a string that has the shape of a generated id (43 base64url characters).
    pub fn parse(value: &str) -> Option<TransactionId> {
        let well_formed = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| TransactionId(value.into()))
    }

    /// The id as text (for a URL or a form field).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransactionId(<redacted>)")
    }
}

/// What the provider hands a login method.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginRequest {
    /// The pending authorization to complete.
    pub transaction: TransactionId,
    /// The client's display name (for a login page).
    pub client_name: String,
    /// The user must authenticate again even if the upstream has a session
    /// (`prompt=login`, or `max_age` exceeded).
    pub force_login: bool,
    /// `login_hint` from the client, if any (a hint only; never trusted).
    pub login_hint: Option<String>,
}

impl LoginRequest {
    /// A request for `transaction`.
    pub fn new(transaction: TransactionId, client_name: impl Into<String>) -> Self {
        LoginRequest {
            transaction,
            client_name: client_name.into(),
            force_login: false,
            login_hint: None,
        }
    }
}

/// How a user logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginMethod {
    /// At an upstream OpenID provider with this issuer.
    Upstream {
        /// The upstream issuer, as it appeared in its ID token.
        issuer: String,
    },
    /// With a local password.
    Password,
}

/// A user whose identity a login method established.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticatedUser {
    /// Our stable subject for the user (see [`federated_subject`]); never derived from email.
    pub subject: Subject,
    /// The email address, if known.
    pub email: Option<String>,
    /// Whether the upstream verified the email. Only a verified email is ever put in tokens.
    pub email_verified: bool,
    /// Display name, if known.
    pub name: Option<String>,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// How.
    pub method: LoginMethod,
}

impl AuthenticatedUser {
    /// A user with only a subject, authenticated at `auth_time` by `method`.
    pub fn new(subject: Subject, auth_time: u64, method: LoginMethod) -> Self {
        AuthenticatedUser {
            subject,
            email: None,
            email_verified: false,
            name: None,
            auth_time,
            method,
        }
    }
}

/// The result of a request to a login method's own paths.
///
/// `Debug` of a response shows its status, header names and body length only: pages carry
/// CSRF tokens, and a redirect's `Location` the upstream `state`.
pub enum LoginOutcome {
    /// Send this response: a page, a redirect to the upstream provider, or an error page.
    Respond(Response<Bytes>),
    /// The login finished: the provider continues the transaction.
    Authenticated {
        /// The pending authorization the login was for.
        transaction: TransactionId,
        /// Who logged in.
        user: AuthenticatedUser,
    },
}

impl fmt::Debug for LoginOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginOutcome::Respond(response) => f
                .debug_struct("Respond")
                .field("status", &response.status())
                .field(
                    "header_names",
                    &response.headers().keys().collect::<Vec<_>>(),
                )
                .field("body_len", &response.body().len())
                .finish(),
            LoginOutcome::Authenticated { transaction, user } => f
                .debug_struct("Authenticated")
                .field("transaction", transaction)
                .field("user", user)
                .finish(),
        }
    }
}

/// A way of logging users in.
pub trait Authenticator: Send + Sync + 'static {
    /// A short machine name for logs and audit events: `"google"`, `"oidc"`, `"password"`.
    fn name(&self) -> &str;

    /// A label for a login chooser: "Sign in with Google".
    fn label(&self) -> &str;

    /// The path prefix this method owns (its callback and forms live under it), e.g.
    /// `/login/google`. Prefixes of the methods of one provider must be distinct.
    fn path_prefix(&self) -> &str;

    /// Starts a login: a redirect to the upstream provider, or a login page.
    fn start(&self, request: LoginRequest, now: u64) -> BoxFuture<'_, Response<Bytes>>;

    /// Handles a request under [`path_prefix`](Self::path_prefix). The body has already been
    /// read within the provider's size limit.
    fn handle(&self, request: Request<Bytes>, now: u64) -> BoxFuture<'_, LoginOutcome>;

    /// Whether the user of a grant this kind of login created may still sign in here:
    /// `Some(false)` if this method would refuse them now (removed from the users file or
    /// the allow-list), `Some(true)` if it would admit them, `None` if the grant is not of
    /// this method's kind or the method cannot tell (the default).
    ///
    /// When the provider starts, it revokes the live grants of every subject that no
    /// login method admits any more (see [`Provider`](crate::provider::Provider)).
    fn still_admits(&self, subject: &Subject, login: &GrantLogin) -> Option<bool> {
        let _ = (subject, login);
        None
    }
}

/// Short-lived, single-use state a login method keeps between requests (the upstream
/// `state`, `nonce` and PKCE verifier; CSRF tokens). Values may hold secrets: stores keep
/// them only until they expire or are taken.
pub trait LoginStateStore: Send + Sync + 'static {
    /// Stores `value` under `key` until `expires_at` (Unix seconds).
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StateStoreError>>;

    /// Removes and returns the value under `key`; `None` if absent or expired at `now`.
    /// Exactly one caller can take a value.
    fn take(&self, key: &str, now: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>>;
}

/// A [`LoginStateStore`] failed (the backend, not a missing key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("login state store failed: {0}")]
pub struct StateStoreError(pub String);

/// Our stable subject for a user known to `issuer` as `subject`: base64url(SHA-256(issuer,
/// NUL, subject)). Stable across logins, distinct per upstream, and reveals neither value.
///
/// ```
/// use oidc_core::authn::federated_subject;
///
/// let a = federated_subject("https://accounts.google.com", "110169484474386276334");
/// let b = federated_subject("https://accounts.google.com", "110169484474386276334");
/// assert_eq!(a, b);
/// assert_ne!(a, federated_subject("https://other.example", "110169484474386276334"));
/// assert_eq!(a.as_str().len(), 43);
/// ```
pub fn federated_subject(issuer: &str, subject: &str) -> Subject {
    let mut input = Vec::with_capacity(issuer.len() + 1 + subject.len());
    input.extend_from_slice(issuer.as_bytes());
    input.push(0);
    input.extend_from_slice(subject.as_bytes());
    let hash = digest(&SHA256, &input);
    let encoded = base64url::encode(hash.as_ref());
    // 43 base64url characters are always a valid subject.
    Subject::parse(&encoded)
        .unwrap_or_else(|_| unreachable!("base64url of a digest is a valid subject"))
}

/// How the user of a grant signed in, kept so that a user the operator removed since
/// (from the users file, or from the upstream allow-list) loses the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantLogin {
    /// With a local password.
    Password,
    /// At an upstream OpenID provider.
    Upstream {
        /// The verified email the user was admitted with, if any (kept even when the
        /// `email` scope was not granted: the allow-list is checked against it).
        email: Option<String>,
    },
}

impl GrantLogin {
    /// How `user` signed in.
    ///
    /// ```
    /// use oidc_core::authn::{AuthenticatedUser, LoginMethod};
    /// use oidc_core::store::GrantLogin;
    /// use oidc_core::types::Subject;
    ///
    /// let user = AuthenticatedUser::new(Subject::parse("u-1")?, 1_700_000_000, LoginMethod::Password);
    /// assert_eq!(GrantLogin::of(&user), GrantLogin::Password);
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn of(user: &AuthenticatedUser) -> GrantLogin {
        match user.method {
            LoginMethod::Password => GrantLogin::Password,
            LoginMethod::Upstream { .. } => GrantLogin::Upstream {
                email: user.email.clone().filter(|_| user.email_verified),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;

    use super::*;

    #[test]
    fn debug_of_a_login_response_shows_neither_body_nor_header_values() {
        let outcome = LoginOutcome::Respond(
            Response::builder()
                .status(303)
                .header(
                    "location",
                    "https://idp.example/authorize?state=upstream-state",
                )
                .body(Bytes::from_static(
                    b"<input name=\"csrf\" value=\"csrf-token-value\">",
                ))
                .unwrap(),
        );
        let debug = format!("{outcome:?}");
        assert!(!debug.contains("csrf-token-value"), "{debug}");
        assert!(!debug.contains("upstream-state"), "{debug}");
        assert!(
            debug.contains("303") && debug.contains("location"),
            "{debug}"
        );
        assert!(debug.contains("body_len: 44"), "{debug}");
    }

    #[test]
    fn transaction_ids_round_trip_and_are_redacted() {
        let id = TransactionId::generate(&SystemRandom::new()).unwrap();
        assert_eq!(TransactionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(format!("{id:?}"), "TransactionId(<redacted>)");
        assert_eq!(TransactionId::parse("short"), None);
        assert_eq!(TransactionId::parse(&"!".repeat(43)), None);
    }

    #[test]
    fn federated_subjects_separate_issuers() {
        // "a" + NUL + "bc" must differ from "ab" + NUL + "c".
        assert_ne!(federated_subject("a", "bc"), federated_subject("ab", "c"));
    }
}
