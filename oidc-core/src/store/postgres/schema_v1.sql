-- Schema version 1 of the provider's PostgreSQL database: the tables of SQLite schema
-- versions 1 to 4 in one step. Bearer values are stored as SHA-256 only. Times are Unix
-- seconds (BIGINT); JSON columns are JSONB, written and read as text by the store.

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    -- name, redirect_uris, auth_method, refresh_tokens.
    data JSONB NOT NULL,
    secret_hash BYTEA CHECK (octet_length(secret_hash) = 32),
    created_at BIGINT NOT NULL,
    -- When the client last received a token (NULL: never; count from created_at).
    last_used_at BIGINT
);
CREATE INDEX clients_last_used ON clients ((COALESCE(last_used_at, created_at)));

CREATE TABLE pending_authorizations (
    -- SHA-256 of the transaction id.
    key BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    -- The validated authorization request.
    request JSONB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('awaiting_login', 'awaiting_consent', 'done')),
    -- The authenticated user, while awaiting consent.
    "user" JSONB,
    consent_csrf BYTEA CHECK (octet_length(consent_csrf) = 32),
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_authorizations_expiry ON pending_authorizations (expires_at);

-- Token status lists (draft-ietf-oauth-status-list). Each grant gets one entry
-- (list, idx) that all its access tokens name. Revoking the grant records the entry in
-- status_revocations; those rows are never deleted, and entries are never reused.
CREATE TABLE status_lists (
    -- Lists are numbered from 1.
    list BIGINT PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size > 0),
    -- The next index to hand out; the list is full at `size`.
    allocated BIGINT NOT NULL CHECK (allocated >= 0 AND allocated <= size),
    -- Incremented whenever an entry is set, so renderings can be cached until it changes.
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE status_revocations (
    list BIGINT NOT NULL REFERENCES status_lists (list),
    idx BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (list, idx)
);

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- Array of resource indicators.
    resources JSONB NOT NULL,
    auth_time BIGINT NOT NULL,
    -- The claims the grant may release.
    claims JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    refresh_expires_at BIGINT,
    -- The row is kept until every token of the grant has expired.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    status_list BIGINT,
    status_idx BIGINT,
    -- How the user signed in ('password' or 'upstream'), and the verified email an
    -- upstream user was admitted with. NULL for grants created before this was recorded.
    login TEXT CHECK (login IN ('password', 'upstream')),
    login_email TEXT
);
CREATE INDEX grants_expiry ON grants (expires_at);
CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX grants_subject ON grants (subject);

CREATE TABLE authorization_codes (
    -- SHA-256 of the code.
    hash BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
    -- What the code is bound to.
    data JSONB NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    grant_id TEXT REFERENCES grants (id) ON DELETE SET NULL
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);

CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the refresh token.
    hash BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (idle_expires_at);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    -- PKCS#8 DER private key.
    pkcs8 BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at BIGINT NOT NULL,
    drop_after BIGINT NOT NULL
);

-- The version a signing-key compare-and-swap names.
CREATE TABLE key_ring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO key_ring (id, version) VALUES (1, 0);

CREATE TABLE login_states (
    -- SHA-256 of the login method's key.
    key BYTEA PRIMARY KEY CHECK (octet_length(key) = 32),
    value BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_states_expiry ON login_states (expires_at);
