-- Schema version 1 of the provider database. Bearer values are stored as SHA-256 only.

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    -- JSON: name, redirect_uris, auth_method, refresh_tokens.
    data TEXT NOT NULL,
    secret_hash BLOB,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE pending_authorizations (
    -- SHA-256 of the transaction id.
    key BLOB PRIMARY KEY NOT NULL,
    -- JSON: the validated authorization request.
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('awaiting_login', 'awaiting_consent', 'done')),
    -- JSON: the authenticated user, while awaiting consent.
    user TEXT,
    consent_csrf BLOB,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_authorizations_expiry ON pending_authorizations (expires_at);

CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- JSON array of resource indicators.
    resources TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    -- JSON: the claims the grant may release.
    claims TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    refresh_expires_at INTEGER,
    -- The row is kept until every token of the grant has expired.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX grants_expiry ON grants (expires_at);

CREATE TABLE authorization_codes (
    -- SHA-256 of the code.
    hash BLOB PRIMARY KEY NOT NULL,
    -- JSON: what the code is bound to.
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed_at INTEGER,
    grant_id TEXT REFERENCES grants (id) ON DELETE SET NULL
) STRICT;
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);

CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the refresh token.
    hash BLOB PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (idle_expires_at);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    -- PKCS#8 DER private key.
    pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at INTEGER NOT NULL,
    drop_after INTEGER NOT NULL
) STRICT;

-- The version a signing-key compare-and-swap names.
CREATE TABLE key_ring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO key_ring (id, version) VALUES (1, 0);

CREATE TABLE login_states (
    -- SHA-256 of the login method's key.
    key BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_states_expiry ON login_states (expires_at);
