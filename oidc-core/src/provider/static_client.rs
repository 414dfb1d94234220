//! [`StaticClient`]: a client from configuration.

use std::fmt;

use crate::client::{Client, ClientAuthMethod, ClientKind};
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::types::ClientId;

/// A client from configuration.
///
/// Only clients configured here can be given access to the account API
/// ([`with_account_access`](Self::with_account_access)); dynamically registered and
/// metadata document clients never have it.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticClient {
    pub(crate) client: Client,
    account_access: bool,
}

impl StaticClient {
    /// A public client (`token_endpoint_auth_method=none`, PKCE only) that may use refresh
    /// tokens.
    ///
    /// ```
    /// use oidc_core::client::ClientAuthMethod;
    /// use oidc_core::provider::StaticClient;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::types::ClientId;
    ///
    /// let cli = StaticClient::public(
    ///     ClientId::parse("cli")?,
    ///     "Command-line tool",
    ///     vec![RedirectUri::parse("http://127.0.0.1/callback")?],
    /// );
    /// assert_eq!(cli.client().auth_method, ClientAuthMethod::None);
    /// assert!(cli.client().refresh_tokens);
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn public(
        client_id: ClientId,
        name: impl Into<String>,
        redirect_uris: Vec<RedirectUri>,
    ) -> StaticClient {
        StaticClient {
            client: Client {
                client_id,
                name: name.into(),
                redirect_uris,
                auth_method: ClientAuthMethod::None,
                secret_hash: None,
                refresh_tokens: true,
                kind: ClientKind::Static,
                created_at: 0,
            },
            account_access: false,
        }
    }

    /// A confidential client authenticating with the secret whose hash is `secret_hash`
    /// (`client_secret_basic` or `client_secret_post`; either is accepted at the token
    /// endpoint) that may use refresh tokens.
    ///
    /// ```
    /// use oidc_core::provider::StaticClient;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::secret::SecretHash;
    /// use oidc_core::types::ClientId;
    ///
    /// let web = StaticClient::confidential(
    ///     ClientId::parse("web")?,
    ///     "Web app",
    ///     vec![RedirectUri::parse("https://app.example/callback")?],
    ///     SecretHash::of("a long random secret"),
    /// )
    /// .with_refresh_tokens(false);
    /// assert!(web.client().secret_hash.is_some());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn confidential(
        client_id: ClientId,
        name: impl Into<String>,
        redirect_uris: Vec<RedirectUri>,
        secret_hash: SecretHash,
    ) -> StaticClient {
        StaticClient {
            client: Client {
                client_id,
                name: name.into(),
                redirect_uris,
                auth_method: ClientAuthMethod::ClientSecretBasic,
                secret_hash: Some(secret_hash),
                refresh_tokens: true,
                kind: ClientKind::Static,
                created_at: 0,
            },
            account_access: false,
        }
    }

    /// Sets whether the client gets refresh tokens.
    #[must_use]
    pub fn with_refresh_tokens(mut self, allowed: bool) -> Self {
        self.client.refresh_tokens = allowed;
        self
    }

    /// Marks the client as a first-party app of this provider's operator with access to
    /// the **account API**: with an access token issued to it, it may list which apps hold
    /// a grant for the token's user and revoke them. Give it only to an app the operator
    /// runs (the memory page), never to a third party: it sees every app the user
    /// authorized and can revoke any of them. Off by default; dynamically registered and
    /// metadata document clients can never have it.
    ///
    /// The API lives under the issuer (paths relative to it), is server to server (no
    /// CORS) and rate-limited like `/token`:
    ///
    /// - `GET /account/grants` answers `200 {"apps": [{"client_id": "…", "name": "…",
    ///   "scope": "openid …", "first_granted_at": 1700000000, "last_granted_at":
    ///   1700003600, "grants": 2}]}`: the user's live grants (not revoked, with an access
    ///   token or refresh token still usable), grouped per client, the most recently
    ///   granted first; `scope` is every scope the client holds, times are Unix seconds.
    /// - `POST /account/grants/revoke` with `{"client_id": "…"}` answers `200 {"revoked":
    ///   n}`: every live grant of the user and that client is revoked as `/revoke` does
    ///   (its access and refresh tokens stop working, its status list entry is set).
    ///   An unknown client, or one without grants of this user: `{"revoked": 0}`.
    ///
    /// The caller sends `Authorization: Bearer <access token>`. Without one (or with
    /// another scheme): 401 `WWW-Authenticate: Bearer realm="{issuer}"`. A malformed,
    /// unknown, expired or revoked token, an ID token, or one not signed by this provider:
    /// 401 `Bearer error="invalid_token"`. A live token of a client without account access:
    /// 403 `Bearer error="insufficient_scope"`. A body that is not JSON with a `client_id`
    /// string: 400 `{"error": "invalid_request"}`.
    ///
    /// ```
    /// use oidc_core::provider::StaticClient;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::secret::SecretHash;
    /// use oidc_core::types::ClientId;
    ///
    /// let page = StaticClient::confidential(
    ///     ClientId::parse("memory-page")?,
    ///     "Memory page",
    ///     vec![RedirectUri::parse("https://mcp.example.com/app/callback")?],
    ///     SecretHash::of("a long random secret"),
    /// )
    /// .with_account_access();
    /// assert!(page.has_account_access());
    /// assert!(!StaticClient::public(
    ///     ClientId::parse("cli")?,
    ///     "Command-line tool",
    ///     vec![RedirectUri::parse("http://127.0.0.1/callback")?],
    /// )
    /// .has_account_access());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    #[must_use]
    pub fn with_account_access(mut self) -> Self {
        self.account_access = true;
        self
    }

    /// Whether the client may use the account API
    /// ([`with_account_access`](Self::with_account_access)).
    pub fn has_account_access(&self) -> bool {
        self.account_access
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client.client_id
    }

    /// The client as the provider sees it.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl fmt::Debug for StaticClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticClient")
            .field("client", &self.client)
            .field("account_access", &self.account_access)
            .finish()
    }
}
