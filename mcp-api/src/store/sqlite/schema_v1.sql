-- Schema version 1 of the SQLite memory store.
--
-- Owner scoping: every owner (OAuth `sub`) gets a small integer id in `owners`.
-- Every other table carries `owner_id`, every index used by a query starts with
-- it, and the full-text index stores it as its own column so a search matches
-- `owner_id : "<id>" AND text : (...)` and never walks other owners' documents
-- to filter them afterwards.

CREATE TABLE owners (
    id      INTEGER PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE CHECK (length(CAST(subject AS BLOB)) BETWEEN 1 AND 255)
) STRICT;

CREATE TABLE memories (
    seq        INTEGER PRIMARY KEY,
    id         BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
    owner_id   INTEGER NOT NULL REFERENCES owners (id),
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    app        TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'paused', 'archived', 'deleted')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- A deleted memory is a tombstone: its content is gone.
    CHECK (state <> 'deleted' OR (text = '' AND metadata = '{}')),
    -- Parent key of the composite foreign keys below, so a category or an
    -- access-log row can only ever name a memory of the same owner.
    UNIQUE (seq, owner_id)
) STRICT;

CREATE INDEX memories_by_owner_created ON memories (owner_id, created_at);
CREATE INDEX memories_by_owner_updated ON memories (owner_id, updated_at);
CREATE INDEX memories_by_owner_app ON memories (owner_id, app);

CREATE TABLE memory_categories (
    memory_seq INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL,
    category   TEXT NOT NULL,
    PRIMARY KEY (memory_seq, category),
    FOREIGN KEY (memory_seq, owner_id) REFERENCES memories (seq, owner_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX memory_categories_by_owner ON memory_categories (owner_id, category);

CREATE TABLE access_log (
    seq         INTEGER PRIMARY KEY,
    memory_seq  INTEGER NOT NULL,
    owner_id    INTEGER NOT NULL,
    app         TEXT NOT NULL,
    via         TEXT NOT NULL,
    accessed_at INTEGER NOT NULL,
    FOREIGN KEY (memory_seq, owner_id) REFERENCES memories (seq, owner_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX access_log_by_memory ON access_log (memory_seq, accessed_at);
CREATE INDEX access_log_by_owner_app ON access_log (owner_id, app, memory_seq);

-- What the full-text index holds: every memory that is not deleted. Being the
-- external content of the index, `rebuild` and `integrity-check` agree with it.
CREATE VIEW memories_fts_content AS
    SELECT seq, owner_id, text FROM memories WHERE state <> 'deleted';

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    owner_id,
    text,
    content = 'memories_fts_content',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Rank by BM25 over the text only: the owner column is a filter, not evidence.
INSERT INTO memories_fts (memories_fts, rank) VALUES ('rank', 'bm25(0.0, 1.0)');

-- Remove a deleted memory's terms from the index pages at once, rather than
-- leaving them behind delete markers until segments happen to merge.
INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1);

-- The index is maintained here rather than by the store code, so no code path
-- can forget it. The old values given to 'delete' are exactly the indexed ones.
CREATE TRIGGER memories_fts_after_insert AFTER INSERT ON memories
WHEN new.state <> 'deleted'
BEGIN
    INSERT INTO memories_fts (rowid, owner_id, text) VALUES (new.seq, new.owner_id, new.text);
END;

CREATE TRIGGER memories_fts_after_update AFTER UPDATE OF text, state ON memories
WHEN (old.state = 'deleted') <> (new.state = 'deleted')
  OR (new.state <> 'deleted' AND new.text IS NOT old.text)
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, owner_id, text)
        SELECT 'delete', old.seq, old.owner_id, old.text WHERE old.state <> 'deleted';
    INSERT INTO memories_fts (rowid, owner_id, text)
        SELECT new.seq, new.owner_id, new.text WHERE new.state <> 'deleted';
END;

CREATE TRIGGER memories_fts_after_delete AFTER DELETE ON memories
WHEN old.state <> 'deleted'
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, owner_id, text)
        VALUES ('delete', old.seq, old.owner_id, old.text);
END;

-- Which owner a memory belongs to, and which memory an id names, never changes.
CREATE TRIGGER memories_identity_is_immutable BEFORE UPDATE OF seq, id, owner_id ON memories
WHEN new.seq IS NOT old.seq OR new.id IS NOT old.id OR new.owner_id IS NOT old.owner_id
BEGIN
    SELECT RAISE(ABORT, 'memory identity is immutable');
END;

-- Deletion is final: a tombstone cannot come back to life.
CREATE TRIGGER memories_deletion_is_final BEFORE UPDATE OF state ON memories
WHEN old.state = 'deleted' AND new.state <> 'deleted'
BEGIN
    SELECT RAISE(ABORT, 'a deleted memory cannot change state');
END;

-- Deleting a memory forgets its categories and who read it.
CREATE TRIGGER memories_tombstone_wipe AFTER UPDATE OF state ON memories
WHEN new.state = 'deleted' AND old.state <> 'deleted'
BEGIN
    DELETE FROM memory_categories WHERE memory_seq = new.seq;
    DELETE FROM access_log WHERE memory_seq = new.seq;
END;
