//! What the provider stores: pending authorizations, authorization codes, grants, access
//! token ids and refresh tokens.
//!
//! Bearer values (codes, refresh tokens, transaction ids, CSRF tokens) never appear here:
//! only their SHA-256 ([`SecretHash`]) does, so a copy of the database does not hold a
//! usable credential.

use std::fmt;

use aws_lc_rs::rand::SecureRandom;

use crate::authn::{AuthenticatedUser, GrantLogin, TransactionId};
use crate::client::ClientKind;
use crate::error::RandomError;
use crate::keys::KeyRecord;
use crate::pkce::CodeChallenge;
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::status_list::StatusIndex;
use crate::types::{ClientId, ResourceIndicator, Scope, Subject};

/// The storage key of a pending authorization: the SHA-256 of its [`TransactionId`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PendingKey(SecretHash);

impl PendingKey {
    /// The key of the pending authorization of `transaction`.
    ///
    /// ```
    /// use aws_lc_rs::rand::SystemRandom;
    /// use oidc_core::authn::TransactionId;
    /// use oidc_core::store::PendingKey;
    ///
    /// let tx = TransactionId::generate(&SystemRandom::new())?;
    /// assert_eq!(PendingKey::for_transaction(&tx), PendingKey::for_transaction(&tx));
    /// # Ok::<(), oidc_core::RandomError>(())
    /// ```
    pub fn for_transaction(transaction: &TransactionId) -> PendingKey {
        PendingKey(SecretHash::of(transaction.as_str()))
    }

    /// A key read back from storage.
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    /// use oidc_core::store::PendingKey;
    ///
    /// let key = PendingKey::from_hash(SecretHash::of("x"));
    /// assert_eq!(key.hash(), &SecretHash::of("x"));
    /// ```
    pub fn from_hash(hash: SecretHash) -> PendingKey {
        PendingKey(hash)
    }

    /// The hash.
    pub fn hash(&self) -> &SecretHash {
        &self.0
    }
}

/// The id of a grant: 128 random bits as 22 base64url characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GrantId(Box<str>);

impl GrantId {
    /// A fresh random grant id.
    ///
    /// ```
    /// use aws_lc_rs::rand::SystemRandom;
    /// use oidc_core::store::GrantId;
    ///
    /// let rng = SystemRandom::new();
    /// assert_ne!(GrantId::generate(&rng)?, GrantId::generate(&rng)?);
    /// # Ok::<(), oidc_core::RandomError>(())
    /// ```
    pub fn generate(rng: &dyn SecureRandom) -> Result<GrantId, RandomError> {
        let id = crate::jwt::generate_jti(rng)?;
        Ok(GrantId(id.into_boxed_str()))
    }

    /// Accepts a stored id: 1 to 64 base64url characters.
    ///
    /// ```
    /// use oidc_core::store::GrantId;
    ///
    /// assert!(GrantId::parse("AAECAwQFBgcICQoLDA0ODw").is_some());
    /// assert!(GrantId::parse("not an id").is_none());
    /// ```
    pub fn parse(value: &str) -> Option<GrantId> {
        let well_formed = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| GrantId(value.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GrantId").field(&&*self.0).finish()
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authorization request that passed validation and waits for the user.
///
/// Created by the authorization endpoint, moved to [`PendingStatus::AwaitingConsent`] when
/// a login method reports the user, and to [`PendingStatus::Done`] when the user approves
/// or denies. Each step is a compare-and-swap on the status, so a transaction can be
/// completed once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: ClientId,
    /// The client's display name, for the consent page.
    pub client_name: String,
    /// How the client came to be known (consent shows a warning for self-registered ones).
    pub client_kind: ClientKind,
    /// The redirect URI of the request (matched against the registered ones); the code is
    /// bound to it.
    pub redirect_uri: RedirectUri,
    /// `state`, echoed unchanged.
    pub state: Option<String>,
    /// `nonce`, copied into the ID token.
    pub nonce: Option<String>,
    /// The PKCE challenge.
    pub code_challenge: CodeChallenge,
    /// The scope to grant.
    pub scope: Scope,
    /// The resources to grant (at least one: the request's, or the default audience).
    pub resources: Vec<ResourceIndicator>,
    /// The user must authenticate again (`prompt=login` or `max_age`).
    pub force_login: bool,
    /// `login_hint`, passed to the login method.
    pub login_hint: Option<String>,
    /// When the request was accepted (Unix seconds).
    pub created_at: u64,
    /// When the pending authorization expires.
    pub expires_at: u64,
    /// Where it is in the flow.
    pub status: PendingStatus,
}

impl PendingAuthorization {
    /// A pending authorization awaiting login; set the optional fields afterwards.
    ///
    /// ```
    /// use oidc_core::client::ClientKind;
    /// use oidc_core::pkce::CodeChallenge;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::store::{PendingAuthorization, PendingStatus};
    /// use oidc_core::types::{ClientId, ResourceIndicator, Scope};
    ///
    /// let mut pending = PendingAuthorization::new(
    ///     ClientId::parse("cli")?,
    ///     "Command-line tool".to_owned(),
    ///     ClientKind::Static,
    ///     RedirectUri::parse("http://127.0.0.1/callback")?,
    ///     CodeChallenge::from_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")?,
    ///     Scope::parse("openid")?,
    ///     vec![ResourceIndicator::parse("https://mcp.example.com/mcp")?],
    ///     1_700_000_000,
    ///     1_700_000_600,
    /// );
    /// pending.state = Some("xyz".to_owned());
    /// assert_eq!(pending.status, PendingStatus::AwaitingLogin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client_id: ClientId,
        client_name: String,
        client_kind: ClientKind,
        redirect_uri: RedirectUri,
        code_challenge: CodeChallenge,
        scope: Scope,
        resources: Vec<ResourceIndicator>,
        created_at: u64,
        expires_at: u64,
    ) -> PendingAuthorization {
        PendingAuthorization {
            client_id,
            client_name,
            client_kind,
            redirect_uri,
            state: None,
            nonce: None,
            code_challenge,
            scope,
            resources,
            force_login: false,
            login_hint: None,
            created_at,
            expires_at,
            status: PendingStatus::AwaitingLogin,
        }
    }
}

/// Where a [`PendingAuthorization`] is in the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PendingStatus {
    /// The user is logging in.
    AwaitingLogin,
    /// The user logged in; the consent page is shown.
    AwaitingConsent {
        /// Who logged in.
        user: AuthenticatedUser,
        /// The hash of the consent form's CSRF token.
        consent_csrf: SecretHash,
    },
    /// Approved or denied; nothing more can happen.
    Done,
}

/// The claims about the user a grant may release, already filtered: `email` only when it
/// was verified and the `email` scope was granted, `name` only with `profile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReleasedClaims {
    /// A verified email address.
    pub email: Option<String>,
    /// The display name.
    pub name: Option<String>,
}

impl ReleasedClaims {
    /// Claims with these values.
    ///
    /// ```
    /// use oidc_core::store::ReleasedClaims;
    ///
    /// let claims = ReleasedClaims::new(None, Some("Alice".to_owned()));
    /// assert_eq!(claims.name.as_deref(), Some("Alice"));
    /// ```
    pub fn new(email: Option<String>, name: Option<String>) -> ReleasedClaims {
        ReleasedClaims { email, name }
    }
}

/// A live grant whose login was recorded, as
/// [`live_grant_logins`](super::ProviderStore::live_grant_logins) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveGrantLogin {
    /// The grant.
    pub id: GrantId,
    /// Its user.
    pub subject: Subject,
    /// How the user signed in.
    pub login: GrantLogin,
}

/// An authorization code as stored (under the hash of the code).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationCodeRecord {
    /// The client the code was issued to.
    pub client_id: ClientId,
    /// The redirect URI of the authorization request; the token request must repeat it.
    pub redirect_uri: RedirectUri,
    /// The PKCE challenge (always present for codes this provider issues).
    pub code_challenge: Option<CodeChallenge>,
    /// `nonce` for the ID token.
    pub nonce: Option<String>,
    /// The granted scope.
    pub scope: Scope,
    /// The granted resources.
    pub resources: Vec<ResourceIndicator>,
    /// The user.
    pub subject: Subject,
    /// When the user authenticated.
    pub auth_time: u64,
    /// What the grant may release about the user.
    pub claims: ReleasedClaims,
    /// How the user signed in, copied into the grant.
    pub login: Option<GrantLogin>,
    /// When the code was issued.
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// Set once the code was redeemed.
    pub redeemed: Option<Redemption>,
}

impl AuthorizationCodeRecord {
    /// A code record that was not redeemed yet; set `nonce` and `claims` afterwards.
    ///
    /// ```
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::store::AuthorizationCodeRecord;
    /// use oidc_core::types::{ClientId, ResourceIndicator, Scope, Subject};
    ///
    /// let code = AuthorizationCodeRecord::new(
    ///     ClientId::parse("cli")?,
    ///     RedirectUri::parse("http://127.0.0.1/callback")?,
    ///     None,
    ///     Scope::parse("openid")?,
    ///     vec![ResourceIndicator::parse("https://mcp.example.com/mcp")?],
    ///     Subject::parse("u-1")?,
    ///     1_700_000_000,
    ///     1_700_000_010,
    ///     1_700_000_070,
    /// );
    /// assert!(code.redeemed.is_none());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client_id: ClientId,
        redirect_uri: RedirectUri,
        code_challenge: Option<CodeChallenge>,
        scope: Scope,
        resources: Vec<ResourceIndicator>,
        subject: Subject,
        auth_time: u64,
        issued_at: u64,
        expires_at: u64,
    ) -> AuthorizationCodeRecord {
        AuthorizationCodeRecord {
            client_id,
            redirect_uri,
            code_challenge,
            nonce: None,
            scope,
            resources,
            subject,
            auth_time,
            claims: ReleasedClaims::default(),
            login: None,
            issued_at,
            expires_at,
            redeemed: None,
        }
    }
}

/// When and into which grant a code was redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redemption {
    /// When.
    pub at: u64,
    /// The grant it created (`None` if the grant was purged since).
    pub grant_id: Option<GrantId>,
}

/// One successful authorization: what was granted to whom, and whether it was revoked.
///
/// Every access token and every refresh token of the authorization points at its grant;
/// revoking the grant revokes them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantRecord {
    /// The grant id.
    pub id: GrantId,
    /// The client.
    pub client_id: ClientId,
    /// The user.
    pub subject: Subject,
    /// The granted scope.
    pub scope: Scope,
    /// The granted resources.
    pub resources: Vec<ResourceIndicator>,
    /// When the user authenticated.
    pub auth_time: u64,
    /// What may be released about the user (userinfo, ID tokens after a refresh).
    pub claims: ReleasedClaims,
    /// When the grant was created.
    pub created_at: u64,
    /// The absolute expiry of its refresh tokens (`None` when it has none).
    pub refresh_expires_at: Option<u64>,
    /// Whether it was revoked (code replay, refresh token reuse, revocation endpoint).
    pub revoked: bool,
    /// Its entry in the token status lists, shared by all its access tokens (`None` for
    /// grants created while status lists were off, until their next refresh).
    pub status: Option<StatusIndex>,
    /// How the user signed in (`None` for grants created before this was recorded).
    pub login: Option<GrantLogin>,
}

impl GrantRecord {
    /// A grant that is not revoked.
    ///
    /// ```
    /// use aws_lc_rs::rand::SystemRandom;
    /// use oidc_core::store::{GrantId, GrantRecord, ReleasedClaims};
    /// use oidc_core::types::{ClientId, ResourceIndicator, Scope, Subject};
    ///
    /// let grant = GrantRecord::new(
    ///     GrantId::generate(&SystemRandom::new())?,
    ///     ClientId::parse("cli")?,
    ///     Subject::parse("u-1")?,
    ///     Scope::parse("openid")?,
    ///     vec![ResourceIndicator::parse("https://mcp.example.com/mcp")?],
    ///     1_700_000_000,
    ///     ReleasedClaims::default(),
    ///     1_700_000_010,
    ///     Some(1_700_000_010 + 90 * 24 * 3600),
    /// );
    /// assert!(!grant.revoked);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: GrantId,
        client_id: ClientId,
        subject: Subject,
        scope: Scope,
        resources: Vec<ResourceIndicator>,
        auth_time: u64,
        claims: ReleasedClaims,
        created_at: u64,
        refresh_expires_at: Option<u64>,
    ) -> GrantRecord {
        GrantRecord {
            id,
            client_id,
            subject,
            scope,
            resources,
            auth_time,
            claims,
            created_at,
            refresh_expires_at,
            revoked: false,
            status: None,
            login: None,
        }
    }

    /// The grant with its status list entry.
    #[must_use]
    pub fn with_status(mut self, status: StatusIndex) -> GrantRecord {
        self.status = Some(status);
        self
    }
}

/// Tokens issued in one step (a code redemption or a refresh): the id of the access token
/// and, optionally, a new refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTokens {
    /// The access token's `jti`.
    pub access_jti: String,
    /// The access token's `exp`.
    pub access_expires_at: u64,
    /// The refresh token issued with it.
    pub refresh: Option<NewRefreshToken>,
    /// A status list entry for a grant that has none yet (one created while status lists
    /// were off): [`rotate_refresh_token`](super::ProviderStore::rotate_refresh_token)
    /// stores it with the grant, and changes nothing if the grant has one already.
    pub grant_status: Option<StatusIndex>,
}

impl NewTokens {
    /// An access token id, with or without a refresh token.
    ///
    /// ```
    /// use oidc_core::secret::SecretHash;
    /// use oidc_core::store::{NewRefreshToken, NewTokens};
    /// use oidc_core::types::Scope;
    ///
    /// let refresh = NewRefreshToken::new(SecretHash::of("rt"), Scope::parse("openid")?, 1_702_592_000);
    /// let tokens = NewTokens::new("jti-1".to_owned(), 1_700_003_600, Some(refresh));
    /// assert!(tokens.refresh.is_some());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn new(
        access_jti: String,
        access_expires_at: u64,
        refresh: Option<NewRefreshToken>,
    ) -> NewTokens {
        NewTokens {
            access_jti,
            access_expires_at,
            refresh,
            grant_status: None,
        }
    }

    /// Gives the grant the status list entry `status` (see
    /// [`grant_status`](Self::grant_status)).
    #[must_use]
    pub fn with_grant_status(mut self, status: StatusIndex) -> NewTokens {
        self.grant_status = Some(status);
        self
    }
}

/// A refresh token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewRefreshToken {
    /// The hash of the token.
    pub hash: SecretHash,
    /// Its scope (rotation keeps the scope of the token it replaces, RFC 6749 §6).
    pub scope: Scope,
    /// When it expires if not used.
    pub idle_expires_at: u64,
}

impl NewRefreshToken {
    /// A refresh token record.
    pub fn new(hash: SecretHash, scope: Scope, idle_expires_at: u64) -> NewRefreshToken {
        NewRefreshToken {
            hash,
            scope,
            idle_expires_at,
        }
    }
}

/// A stored refresh token with its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// The grant (the token's family).
    pub grant: GrantRecord,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Its scope.
    pub scope: Scope,
    /// When it was issued.
    pub issued_at: u64,
    /// When it expires if not used.
    pub idle_expires_at: u64,
    /// When it was used (rotated); a used token presented again is a reuse.
    pub used_at: Option<u64>,
}

impl RefreshTokenRecord {
    /// When it stops being usable: its idle expiry or its grant's absolute refresh expiry,
    /// whichever comes first; `0` when the grant has no refresh expiry (such a grant has no
    /// usable refresh tokens).
    pub fn expires_at(&self) -> u64 {
        self.grant
            .refresh_expires_at
            .map_or(0, |absolute| absolute.min(self.idle_expires_at))
    }

    /// Whether it may be exchanged at `now`: never used, its grant not revoked, and
    /// `now` before [`expires_at`](Self::expires_at).
    pub fn is_active(&self, now: u64) -> bool {
        self.used_at.is_none() && !self.grant.revoked && now < self.expires_at()
    }
}

/// A stored access token id with its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenRecord {
    /// The `jti`.
    pub jti: String,
    /// The grant it belongs to.
    pub grant: GrantRecord,
    /// Its `exp`.
    pub expires_at: u64,
}

/// What [`ProviderStore::redeem_code`](super::ProviderStore::redeem_code) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedeemOutcome {
    /// The code was unredeemed and is now redeemed; the grant and tokens were stored.
    Redeemed,
    /// The code had been redeemed before. The grant it created was revoked in the same
    /// transaction.
    AlreadyRedeemed {
        /// The grant that was revoked, if it still existed.
        grant_id: Option<GrantId>,
    },
    /// No such code, or it expired.
    NotFound,
}

/// What [`ProviderStore::rotate_refresh_token`](super::ProviderStore::rotate_refresh_token)
/// did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The old token is now used and the new tokens are stored.
    Rotated,
    /// The old token had been used before: its grant (the whole family) was revoked in the
    /// same transaction.
    Reused {
        /// The revoked grant.
        grant_id: GrantId,
    },
    /// No such token, or its grant is revoked or expired.
    Inactive,
}

/// One token status list as stored: its size, its revision (counting the entries set)
/// and the entries set to `1` (revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredStatusList {
    /// The list number.
    pub list: u64,
    /// Its number of entries.
    pub size: u64,
    /// Changes whenever an entry is set, so a cached rendering can be reused until then.
    pub revision: u64,
    /// The entries set, in no particular order.
    pub revoked: Vec<u64>,
}

impl StoredStatusList {
    /// A stored list.
    ///
    /// ```
    /// use oidc_core::store::StoredStatusList;
    ///
    /// let list = StoredStatusList::new(1, 1 << 20, 2, vec![3, 17]);
    /// assert_eq!(list.revoked.len(), 2);
    /// ```
    pub fn new(list: u64, size: u64, revision: u64, revoked: Vec<u64>) -> StoredStatusList {
        StoredStatusList {
            list,
            size,
            revision,
            revoked,
        }
    }
}

/// The signing keys as stored, with the version a compare-and-swap must name.
#[derive(Debug)]
#[non_exhaustive]
pub struct StoredKeys {
    /// The key records (private keys included).
    pub records: Vec<KeyRecord>,
    /// The version; 0 before the first save.
    pub version: u64,
}

impl StoredKeys {
    /// Records at a version.
    ///
    /// ```
    /// use oidc_core::store::StoredKeys;
    ///
    /// assert_eq!(StoredKeys::new(Vec::new(), 0).version, 0);
    /// ```
    pub fn new(records: Vec<KeyRecord>, version: u64) -> StoredKeys {
        StoredKeys { records, version }
    }
}

/// How many expired rows [`ProviderStore::purge_expired`](super::ProviderStore::purge_expired)
/// deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Pending authorizations.
    pub pending: u64,
    /// Authorization codes.
    pub codes: u64,
    /// Grants (with their remaining tokens).
    pub grants: u64,
    /// Access token ids.
    pub access_tokens: u64,
    /// Refresh tokens.
    pub refresh_tokens: u64,
    /// Login method state.
    pub login_states: u64,
    /// Dynamically registered clients unused for longer than
    /// [`RegistrationPolicy::unused_client_ttl`](crate::provider::RegistrationPolicy)
    /// (filled by the provider's maintenance, not by `purge_expired`).
    pub clients: u64,
}

impl PurgeReport {
    /// The total number of rows deleted.
    pub fn total(&self) -> u64 {
        self.pending
            + self.codes
            + self.grants
            + self.access_tokens
            + self.refresh_tokens
            + self.login_states
            + self.clients
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;

    use super::*;

    const T0: u64 = 1_700_000_000;

    fn refresh_token(idle_expires_at: u64, absolute: Option<u64>) -> RefreshTokenRecord {
        let grant = GrantRecord::new(
            GrantId::generate(&SystemRandom::new()).unwrap(),
            ClientId::parse("cli").unwrap(),
            Subject::parse("u-1").unwrap(),
            Scope::parse("openid").unwrap(),
            Vec::new(),
            T0,
            ReleasedClaims::default(),
            T0,
            absolute,
        );
        RefreshTokenRecord {
            grant,
            client_id: ClientId::parse("cli").unwrap(),
            scope: Scope::parse("openid").unwrap(),
            issued_at: T0,
            idle_expires_at,
            used_at: None,
        }
    }

    #[test]
    fn refresh_tokens_expire_at_the_first_of_idle_and_absolute_expiry() {
        let idle_first = refresh_token(T0 + 100, Some(T0 + 500));
        assert_eq!(idle_first.expires_at(), T0 + 100);
        assert!(idle_first.is_active(T0 + 99));
        assert!(!idle_first.is_active(T0 + 100));

        let absolute_first = refresh_token(T0 + 500, Some(T0 + 100));
        assert_eq!(absolute_first.expires_at(), T0 + 100);
        assert!(absolute_first.is_active(T0 + 99));
        assert!(!absolute_first.is_active(T0 + 100));

        let no_absolute = refresh_token(T0 + 500, None);
        assert_eq!(no_absolute.expires_at(), 0);
        assert!(!no_absolute.is_active(T0));
    }

    #[test]
    fn used_or_revoked_refresh_tokens_are_not_active() {
        let mut used = refresh_token(T0 + 100, Some(T0 + 500));
        used.used_at = Some(T0 + 1);
        assert!(!used.is_active(T0 + 2));
        let mut revoked = refresh_token(T0 + 100, Some(T0 + 500));
        revoked.grant.revoked = true;
        assert!(!revoked.is_active(T0 + 2));
    }
}
