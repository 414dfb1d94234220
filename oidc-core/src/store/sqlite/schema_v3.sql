-- Schema version 3: token status lists (draft-ietf-oauth-status-list).
--
-- Each grant gets one entry (list, idx) that all its access tokens name. Revoking the
-- grant records the entry in status_revocations. Those rows are never deleted, not even
-- when the grant is purged, so an entry never flips back to valid while a token naming it
-- might still be unexpired; entries are never reused.

CREATE TABLE status_lists (
    -- Lists are numbered from 1.
    list INTEGER PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL CHECK (size > 0),
    -- The next index to hand out; the list is full at `size`.
    allocated INTEGER NOT NULL CHECK (allocated >= 0 AND allocated <= size),
    -- Incremented whenever an entry is set, so renderings can be cached until it changes.
    revision INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE status_revocations (
    list INTEGER NOT NULL REFERENCES status_lists (list),
    idx INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (list, idx)
) STRICT, WITHOUT ROWID;

ALTER TABLE grants ADD COLUMN status_list INTEGER;
ALTER TABLE grants ADD COLUMN status_idx INTEGER;
