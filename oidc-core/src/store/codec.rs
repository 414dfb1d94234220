//! Encoding records into column values and decoding them back, shared by the SQLite and
//! PostgreSQL stores (each reads its own rows, then calls the decoders here). JSON columns
//! use private wire structs, so the storage format is independent of the public types'
//! layout; decoding parses every identifier again, so a tampered row cannot produce an
//! invalid value.

use serde::{Deserialize, Serialize};

use crate::authn::{AuthenticatedUser, LoginMethod};
use crate::client::{Client, ClientAuthMethod, ClientKind};
use crate::pkce::CodeChallenge;
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::status_list::StatusIndex;
use crate::store::{
    AuthorizationCodeRecord, GrantId, GrantLogin, GrantRecord, PendingAuthorization, PendingStatus,
    Redemption, ReleasedClaims, StoreError, StoreErrorKind,
};
use crate::types::{ClientId, ResourceIndicator, Scope, Subject};

/// A Unix time as the databases store it (saturating; times are far below `i64::MAX`).
pub(super) fn time(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored Unix time; negative values are corrupt.
pub(super) fn read_time(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt())
}

pub(super) fn corrupt() -> StoreError {
    StoreErrorKind::Corrupt.into()
}

pub(super) fn corrupt_because(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::with_source(StoreErrorKind::Corrupt, error)
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::with_source(StoreErrorKind::Backend, error))
}

pub(super) fn from_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt_because)
}

pub(super) fn hash_blob(hash: &SecretHash) -> [u8; 32] {
    *hash.as_bytes()
}

pub(super) fn read_hash(blob: &[u8]) -> Result<SecretHash, StoreError> {
    let bytes: [u8; 32] = blob.try_into().map_err(|_| corrupt())?;
    Ok(SecretHash::from_bytes(bytes))
}

pub(super) fn resources_json(resources: &[ResourceIndicator]) -> Result<String, StoreError> {
    to_json(&resources)
}

pub(super) fn read_resources(text: &str) -> Result<Vec<ResourceIndicator>, StoreError> {
    from_json(text)
}

pub(super) fn read_scope(text: &str) -> Result<Scope, StoreError> {
    Scope::parse(text).map_err(corrupt_because)
}

pub(super) fn read_client_id(text: &str) -> Result<ClientId, StoreError> {
    ClientId::parse(text).map_err(corrupt_because)
}

pub(super) fn read_grant_id(text: &str) -> Result<GrantId, StoreError> {
    GrantId::parse(text).ok_or_else(corrupt)
}

// ---------------------------------------------------------------------------------------
// Clients

#[derive(Serialize, Deserialize)]
struct ClientWire {
    name: String,
    redirect_uris: Vec<RedirectUri>,
    auth_method: String,
    refresh_tokens: bool,
}

/// `(data, secret_hash, created_at)` of a dynamic client.
pub(super) fn encode_client(
    client: &Client,
) -> Result<(String, Option<[u8; 32]>, i64), StoreError> {
    let wire = ClientWire {
        name: client.name.clone(),
        redirect_uris: client.redirect_uris.clone(),
        auth_method: client.auth_method.as_str().to_owned(),
        refresh_tokens: client.refresh_tokens,
    };
    Ok((
        to_json(&wire)?,
        client.secret_hash.as_ref().map(hash_blob),
        time(client.created_at),
    ))
}

pub(super) fn decode_client(
    client_id: ClientId,
    data: &str,
    secret_hash: Option<&[u8]>,
    created_at: i64,
) -> Result<Client, StoreError> {
    let wire: ClientWire = from_json(data)?;
    let auth_method = ClientAuthMethod::from_name(&wire.auth_method).ok_or_else(corrupt)?;
    Ok(Client {
        client_id,
        name: wire.name,
        redirect_uris: wire.redirect_uris,
        auth_method,
        secret_hash: secret_hash.map(read_hash).transpose()?,
        refresh_tokens: wire.refresh_tokens,
        kind: ClientKind::Dynamic,
        created_at: read_time(created_at)?,
    })
}

// ---------------------------------------------------------------------------------------
// Pending authorizations

#[derive(Serialize, Deserialize)]
struct PendingWire {
    client_id: ClientId,
    client_name: String,
    client_kind: String,
    redirect_uri: RedirectUri,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    scope: Scope,
    resources: Vec<ResourceIndicator>,
    force_login: bool,
    login_hint: Option<String>,
    created_at: u64,
}

#[derive(Serialize, Deserialize)]
struct UserWire {
    subject: Subject,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    auth_time: u64,
    method: String,
    upstream_issuer: Option<String>,
}

fn kind_name(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Static => "static",
        ClientKind::Dynamic => "dynamic",
        ClientKind::MetadataDocument => "metadata_document",
    }
}

fn read_kind(name: &str) -> Result<ClientKind, StoreError> {
    match name {
        "static" => Ok(ClientKind::Static),
        "dynamic" => Ok(ClientKind::Dynamic),
        "metadata_document" => Ok(ClientKind::MetadataDocument),
        _ => Err(corrupt()),
    }
}

pub(super) fn encode_pending_request(pending: &PendingAuthorization) -> Result<String, StoreError> {
    to_json(&PendingWire {
        client_id: pending.client_id.clone(),
        client_name: pending.client_name.clone(),
        client_kind: kind_name(pending.client_kind).to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.as_base64url(),
        scope: pending.scope.clone(),
        resources: pending.resources.clone(),
        force_login: pending.force_login,
        login_hint: pending.login_hint.clone(),
        created_at: pending.created_at,
    })
}

pub(super) fn encode_user(user: &AuthenticatedUser) -> Result<String, StoreError> {
    let (method, upstream_issuer) = match &user.method {
        LoginMethod::Upstream { issuer } => ("upstream", Some(issuer.clone())),
        LoginMethod::Password => ("password", None),
    };
    to_json(&UserWire {
        subject: user.subject.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        name: user.name.clone(),
        auth_time: user.auth_time,
        method: method.to_owned(),
        upstream_issuer,
    })
}

fn decode_user(text: &str) -> Result<AuthenticatedUser, StoreError> {
    let wire: UserWire = from_json(text)?;
    let method = match (wire.method.as_str(), wire.upstream_issuer) {
        ("upstream", Some(issuer)) => LoginMethod::Upstream { issuer },
        ("password", None) => LoginMethod::Password,
        _ => return Err(corrupt()),
    };
    let mut user = AuthenticatedUser::new(wire.subject, wire.auth_time, method);
    user.email = wire.email;
    user.email_verified = wire.email_verified;
    user.name = wire.name;
    Ok(user)
}

/// The status column's value.
pub(super) fn status_name(status: &PendingStatus) -> &'static str {
    match status {
        PendingStatus::AwaitingLogin => "awaiting_login",
        PendingStatus::AwaitingConsent { .. } => "awaiting_consent",
        PendingStatus::Done => "done",
    }
}

/// Decodes the columns `request, status, user, consent_csrf, expires_at` of a pending
/// authorization.
pub(super) fn decode_pending(
    request: &str,
    status: &str,
    user: Option<&str>,
    csrf: Option<&[u8]>,
    expires_at: i64,
) -> Result<PendingAuthorization, StoreError> {
    let wire: PendingWire = from_json(request)?;
    let status = match (status, user, csrf) {
        ("awaiting_login", None, None) => PendingStatus::AwaitingLogin,
        ("awaiting_consent", Some(user), Some(csrf)) => PendingStatus::AwaitingConsent {
            user: decode_user(user)?,
            consent_csrf: read_hash(csrf)?,
        },
        ("done", None, None) => PendingStatus::Done,
        _ => return Err(corrupt()),
    };
    Ok(PendingAuthorization {
        client_id: wire.client_id,
        client_name: wire.client_name,
        client_kind: read_kind(&wire.client_kind)?,
        redirect_uri: wire.redirect_uri,
        state: wire.state,
        nonce: wire.nonce,
        code_challenge: CodeChallenge::from_s256(&wire.code_challenge).map_err(corrupt_because)?,
        scope: wire.scope,
        resources: wire.resources,
        force_login: wire.force_login,
        login_hint: wire.login_hint,
        created_at: wire.created_at,
        expires_at: read_time(expires_at)?,
        status,
    })
}

// ---------------------------------------------------------------------------------------
// Authorization codes

#[derive(Serialize, Deserialize)]
struct CodeWire {
    client_id: ClientId,
    redirect_uri: RedirectUri,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: Scope,
    resources: Vec<ResourceIndicator>,
    subject: Subject,
    auth_time: u64,
    email: Option<String>,
    name: Option<String>,
    issued_at: u64,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    login_email: Option<String>,
}

pub(super) fn encode_code(code: &AuthorizationCodeRecord) -> Result<String, StoreError> {
    to_json(&CodeWire {
        client_id: code.client_id.clone(),
        redirect_uri: code.redirect_uri.clone(),
        code_challenge: code
            .code_challenge
            .as_ref()
            .map(CodeChallenge::as_base64url),
        nonce: code.nonce.clone(),
        scope: code.scope.clone(),
        resources: code.resources.clone(),
        subject: code.subject.clone(),
        auth_time: code.auth_time,
        email: code.claims.email.clone(),
        name: code.claims.name.clone(),
        issued_at: code.issued_at,
        login: code.login.as_ref().map(|l| login_name(l).to_owned()),
        login_email: code.login.as_ref().and_then(login_email).map(str::to_owned),
    })
}

/// Decodes the columns `data, expires_at, redeemed_at, grant_id` of a code.
pub(super) fn decode_code(
    data: &str,
    expires_at: i64,
    redeemed_at: Option<i64>,
    grant_id: Option<&str>,
) -> Result<AuthorizationCodeRecord, StoreError> {
    let wire: CodeWire = from_json(data)?;
    let redeemed = match redeemed_at {
        Some(at) => Some(Redemption {
            at: read_time(at)?,
            grant_id: grant_id.map(read_grant_id).transpose()?,
        }),
        None => None,
    };
    Ok(AuthorizationCodeRecord {
        client_id: wire.client_id,
        redirect_uri: wire.redirect_uri,
        code_challenge: wire
            .code_challenge
            .as_deref()
            .map(CodeChallenge::from_s256)
            .transpose()
            .map_err(corrupt_because)?,
        nonce: wire.nonce,
        scope: wire.scope,
        resources: wire.resources,
        subject: wire.subject,
        auth_time: wire.auth_time,
        claims: ReleasedClaims::new(wire.email, wire.name),
        login: read_login(wire.login.as_deref(), wire.login_email)?,
        issued_at: wire.issued_at,
        expires_at: read_time(expires_at)?,
        redeemed,
    })
}

// ---------------------------------------------------------------------------------------
// Grants

#[derive(Serialize, Deserialize)]
struct ClaimsWire {
    email: Option<String>,
    name: Option<String>,
}

pub(super) fn encode_claims(claims: &ReleasedClaims) -> Result<String, StoreError> {
    to_json(&ClaimsWire {
        email: claims.email.clone(),
        name: claims.name.clone(),
    })
}

/// The columns of a grant row as read from either database, in the order of each store's
/// `GRANT_COLUMNS`.
pub(super) struct GrantRow {
    pub(super) id: String,
    pub(super) client_id: String,
    pub(super) subject: String,
    pub(super) scope: String,
    /// JSON array of resource indicators.
    pub(super) resources: String,
    pub(super) auth_time: i64,
    /// JSON: the released claims.
    pub(super) claims: String,
    pub(super) created_at: i64,
    pub(super) refresh_expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) status_list: Option<i64>,
    pub(super) status_idx: Option<i64>,
    pub(super) login: Option<String>,
    pub(super) login_email: Option<String>,
}

/// Decodes a grant row.
pub(super) fn decode_grant(row: GrantRow) -> Result<GrantRecord, StoreError> {
    let claims: ClaimsWire = from_json(&row.claims)?;
    Ok(GrantRecord {
        id: read_grant_id(&row.id)?,
        client_id: read_client_id(&row.client_id)?,
        subject: Subject::parse(&row.subject).map_err(corrupt_because)?,
        scope: read_scope(&row.scope)?,
        resources: read_resources(&row.resources)?,
        auth_time: read_time(row.auth_time)?,
        claims: ReleasedClaims::new(claims.email, claims.name),
        created_at: read_time(row.created_at)?,
        refresh_expires_at: row.refresh_expires_at.map(read_time).transpose()?,
        revoked: row.revoked_at.is_some(),
        status: match (row.status_list, row.status_idx) {
            (Some(list), Some(index)) => {
                Some(StatusIndex::new(read_time(list)?, read_time(index)?))
            }
            (None, None) => None,
            _ => return Err(StoreErrorKind::Corrupt.into()),
        },
        login: read_login(row.login.as_deref(), row.login_email)?,
    })
}

/// The `login` column's value.
pub(super) fn login_name(login: &GrantLogin) -> &'static str {
    match login {
        GrantLogin::Password => "password",
        GrantLogin::Upstream { .. } => "upstream",
    }
}

/// The `login_email` column's value.
pub(super) fn login_email(login: &GrantLogin) -> Option<&str> {
    match login {
        GrantLogin::Upstream { email } => email.as_deref(),
        GrantLogin::Password => None,
    }
}

/// Decodes the `login` and `login_email` columns.
pub(super) fn read_login(
    name: Option<&str>,
    email: Option<String>,
) -> Result<Option<GrantLogin>, StoreError> {
    match (name, email) {
        (None, None) => Ok(None),
        (Some("password"), None) => Ok(Some(GrantLogin::Password)),
        (Some("upstream"), email) => Ok(Some(GrantLogin::Upstream { email })),
        _ => Err(corrupt()),
    }
}
