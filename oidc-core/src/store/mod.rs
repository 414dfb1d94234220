//! Storage of the provider's state: dynamic clients, pending authorizations,
//! authorization codes, grants, access token ids, refresh tokens, signing keys, token
//! status lists and the short-lived state of login methods.
//!
//! [`ProviderStore`] is the contract, with two implementations:
//!
//! - `SqliteStore` (features `sqlite` and `tower`): one embedded SQLite file, for a
//!   single server.
//! - `PostgresStore` (feature `postgres`): a shared PostgreSQL database, for any number of
//!   replicas behind a load balancer.
//!
//! Every method that changes more than one row does it in one transaction, and every
//! "exactly once" step (redeeming a code, rotating a refresh token, completing a pending
//! authorization, taking login state, allocating a status list entry, saving the signing
//! keys) is a compare-and-swap inside that transaction, with exactly one winner also
//! between processes sharing the database.
//!
//! `PostgresLimitStore` (feature `postgres`) keeps what is not provider state but must
//! still be shared by replicas: the password lockout counters and the rate limit buckets.
//!
//! Bearer values are never stored: codes, refresh tokens, transaction ids and CSRF tokens
//! are stored as their SHA-256 ([`SecretHash`]); client secrets too.

#[cfg(any(all(feature = "sqlite", feature = "tower"), feature = "postgres"))]
mod codec;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_limits;
mod records;
#[cfg(all(feature = "sqlite", feature = "tower"))]
mod sqlite;

pub use crate::authn::GrantLogin;
pub use error::{StoreError, StoreErrorKind};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "postgres")]
pub use postgres_limits::PostgresLimitStore;
pub use records::{
    AccessTokenRecord, AuthorizationCodeRecord, GrantId, GrantRecord, LiveGrantLogin,
    NewRefreshToken, NewTokens, PendingAuthorization, PendingKey, PendingStatus, PurgeReport,
    RedeemOutcome, Redemption, RefreshTokenRecord, ReleasedClaims, RotateOutcome, StoredKeys,
    StoredStatusList,
};
#[cfg(all(feature = "sqlite", feature = "tower"))]
pub use sqlite::{SqliteOptions, SqliteStore};

use crate::authn::{AuthenticatedUser, BoxFuture, LoginStateStore};
use crate::client::Client;
use crate::keys::KeyRecord;
use crate::secret::SecretHash;
use crate::status_list::StatusIndex;
use crate::types::{ClientId, Subject};

/// The provider's storage contract.
///
/// Methods return boxed futures so the trait can be used as `Arc<dyn ProviderStore>`.
/// Times are Unix seconds passed in by the caller (the store never reads a clock), so an
/// implementation behaves the same on a virtual clock.
///
/// Implementations must make each method atomic; the ones documented as compare-and-swap
/// must have exactly one winner among concurrent callers, across processes when the
/// backend is shared.
pub trait ProviderStore: LoginStateStore {
    /// Stores a dynamically registered client. [`StoreErrorKind::Conflict`] if the id is
    /// taken.
    fn insert_client(&self, client: Client) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A dynamically registered client.
    fn client(&self, client_id: &ClientId) -> BoxFuture<'_, Result<Option<Client>, StoreError>>;

    /// Stores a new pending authorization (status [`PendingStatus::AwaitingLogin`]).
    fn insert_pending(
        &self,
        key: PendingKey,
        pending: PendingAuthorization,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A pending authorization that has not expired at `now`.
    fn pending(
        &self,
        key: PendingKey,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>>;

    /// Compare-and-swap from [`PendingStatus::AwaitingLogin`] to
    /// [`PendingStatus::AwaitingConsent`] with `user` and the hash of the consent CSRF
    /// token. Returns the updated authorization, or `None` if it is missing, expired or not
    /// awaiting login.
    fn complete_login(
        &self,
        key: PendingKey,
        user: AuthenticatedUser,
        consent_csrf: SecretHash,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>>;

    /// Compare-and-swap from [`PendingStatus::AwaitingConsent`] to [`PendingStatus::Done`],
    /// storing `code` (its hash and record) in the same transaction when the user approved.
    /// Returns the authorization as it was before, or `None` if it is missing, expired or
    /// not awaiting consent (then no code is stored).
    fn complete_consent(
        &self,
        key: PendingKey,
        code: Option<(SecretHash, AuthorizationCodeRecord)>,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>>;

    /// The code with this hash, redeemed or not, until it expires (a redeemed code stays
    /// so that a replay is recognised).
    fn code(
        &self,
        code: SecretHash,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AuthorizationCodeRecord>, StoreError>>;

    /// Compare-and-swap: redeems the code (unredeemed and unexpired at `now`), storing the
    /// new `grant` and `tokens` with it and recording `now` as the client's last use. A code redeemed before revokes the grant it created
    /// in the same transaction ([`RedeemOutcome::AlreadyRedeemed`]).
    fn redeem_code(
        &self,
        code: SecretHash,
        grant: GrantRecord,
        tokens: NewTokens,
        now: u64,
    ) -> BoxFuture<'_, Result<RedeemOutcome, StoreError>>;

    /// The refresh token with this hash and its grant, used or not.
    fn refresh_token(
        &self,
        token: SecretHash,
    ) -> BoxFuture<'_, Result<Option<RefreshTokenRecord>, StoreError>>;

    /// Compare-and-swap: marks the refresh token used and stores `tokens` (which must hold
    /// the successor refresh token) in its grant, recording `now` as the client's last use. A token used before revokes its grant in
    /// the same transaction ([`RotateOutcome::Reused`]); a revoked or expired one changes
    /// nothing ([`RotateOutcome::Inactive`]).
    fn rotate_refresh_token(
        &self,
        token: SecretHash,
        tokens: NewTokens,
        now: u64,
    ) -> BoxFuture<'_, Result<RotateOutcome, StoreError>>;

    /// The access token id and its grant, until the token expires.
    fn access_token(
        &self,
        jti: &str,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AccessTokenRecord>, StoreError>>;

    /// Revokes a grant and so every access and refresh token issued under it, and sets its
    /// status list entry (if it has one) in the same transaction. Returns whether it was
    /// active before.
    ///
    /// Every revocation ([`redeem_code`](Self::redeem_code) of a redeemed code,
    /// [`rotate_refresh_token`](Self::rotate_refresh_token) of a used token, this method)
    /// sets the entry. Entries are kept apart from grants and never cleared, so purging a
    /// revoked grant never makes its still-unexpired access tokens look valid again.
    fn revoke_grant(&self, grant: GrantId, now: u64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The grants live at `now` (not revoked, with a token that may not have expired) whose
    /// login was recorded, with their subject and login. Grants created before logins
    /// were recorded are not listed.
    fn live_grant_logins(&self, now: u64)
    -> BoxFuture<'_, Result<Vec<LiveGrantLogin>, StoreError>>;

    /// Revokes every live grant of `subject` as [`revoke_grant`](Self::revoke_grant) does
    /// (setting each one's status list entry), in one transaction. Returns how many were
    /// active before.
    fn revoke_subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The grants of `subject` live at `now`, oldest first: not revoked, with an access
    /// token that has not expired or a refresh token that may still be used (unused, within
    /// its idle expiry and the grant's absolute refresh expiry). Never another subject's.
    fn subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<Vec<GrantRecord>, StoreError>>;

    /// Revokes every grant of `subject` issued to `client_id` that is live at `now` (as
    /// [`subject_grants`](Self::subject_grants) lists them), each as
    /// [`revoke_grant`](Self::revoke_grant) does (setting its status list entry), in one
    /// transaction. Returns how many were revoked; 0 for an unknown client or one without
    /// live grants of this subject. Grants of other subjects are never touched.
    fn revoke_subject_client_grants(
        &self,
        subject: Subject,
        client_id: ClientId,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Atomically allocates the next status list entry: the next index of the newest list,
    /// or index 0 of a new list of `list_size` entries when that one is full (or there is
    /// none; lists are numbered from 1). Entries are allocated in sequence and never
    /// reused, also across restarts and between processes sharing the backend.
    fn allocate_status_index(
        &self,
        list_size: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<StatusIndex, StoreError>>;

    /// The revision of status list `list` (see [`StoredStatusList::revision`]), or `None`
    /// if there is no such list. Cheap: callers check it before reading the whole list.
    fn status_list_revision(&self, list: u64) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Status list `list` with its set entries, or `None` if there is no such list.
    fn status_list(&self, list: u64)
    -> BoxFuture<'_, Result<Option<StoredStatusList>, StoreError>>;

    /// The numbers of every status list, ascending.
    fn status_lists(&self) -> BoxFuture<'_, Result<Vec<u64>, StoreError>>;

    /// The signing keys and their version.
    fn load_keys(&self) -> BoxFuture<'_, Result<StoredKeys, StoreError>>;

    /// Compare-and-swap: replaces the signing keys if the stored version is still
    /// `expected_version`. Returns the new version, or `None` if another writer got there
    /// first (then reload).
    fn save_keys(
        &self,
        records: Vec<KeyRecord>,
        expected_version: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Deletes what expired before `now`: pending authorizations, codes, access token ids,
    /// refresh tokens past their idle or absolute expiry, grants with nothing left to
    /// protect, login state. Status list entries stay.
    fn purge_expired(&self, now: u64) -> BoxFuture<'_, Result<PurgeReport, StoreError>>;

    /// Deletes the dynamically registered clients last used at or before `unused_since`
    /// (registered then, or last issued a token then: [`redeem_code`](Self::redeem_code)
    /// and [`rotate_refresh_token`](Self::rotate_refresh_token) record the use) that hold
    /// no live grant at `now`: none not revoked with an unexpired access token or a
    /// usable refresh token. Returns how many were deleted.
    fn purge_unused_clients(
        &self,
        unused_since: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Checks that the backend answers.
    fn health(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
