-- Schema version 1 of the PostgreSQL memory store.
--
-- The same model as the SQLite store (its schema_v1..v3): every owner (OAuth
-- `sub`) gets a small id in `owners`, every other table carries `owner_id`,
-- every index a query uses starts with it, and composite foreign keys make it
-- impossible to attach a category or an access-log row to another owner's
-- memory. Times are Unix milliseconds (`bigint`), as the store's clock gives
-- them, so both stores answer with the very same values.

CREATE TYPE memory_state AS ENUM ('active', 'paused', 'archived', 'deleted');

CREATE TABLE owners (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject      text NOT NULL UNIQUE CHECK (octet_length(subject) BETWEEN 1 AND 255),
    -- The owner's memories that are not deleted and the bytes of their text
    -- and metadata, kept exact by triggers, for the quotas.
    memory_count bigint NOT NULL DEFAULT 0,
    bytes        bigint NOT NULL DEFAULT 0
);

CREATE TABLE memories (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    owner_id    bigint NOT NULL REFERENCES owners (id),
    text        text NOT NULL,
    -- `json`, not `jsonb`: the metadata comes back byte for byte (key order too).
    metadata    json NOT NULL CHECK (json_typeof(metadata) = 'object'),
    app         text NOT NULL,
    state       memory_state NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    -- A stable hash of the normalised text, to find near-duplicates.
    text_key    bigint NOT NULL,
    -- The transaction that last wrote the row: replicas catch up their search
    -- index by reading the rows changed since their last snapshot's xmin.
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- A deleted memory is a tombstone: its content is gone.
    CHECK (state <> 'deleted' OR (text = '' AND metadata::text = '{}')),
    UNIQUE (seq, owner_id)
);

CREATE INDEX memories_by_owner_created ON memories (owner_id, created_at);
CREATE INDEX memories_by_owner_updated ON memories (owner_id, updated_at);
CREATE INDEX memories_by_owner_app ON memories (owner_id, app);
CREATE INDEX memories_by_owner_text_key ON memories (owner_id, text_key) WHERE state <> 'deleted';
CREATE INDEX memories_by_changed_xid ON memories (changed_xid);

CREATE TABLE memory_categories (
    memory_seq bigint NOT NULL,
    owner_id   bigint NOT NULL,
    category   text NOT NULL,
    PRIMARY KEY (memory_seq, category),
    FOREIGN KEY (memory_seq, owner_id) REFERENCES memories (seq, owner_id) ON DELETE CASCADE
);

CREATE INDEX memory_categories_by_owner ON memory_categories (owner_id, category);

CREATE TABLE access_log (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    memory_seq  bigint NOT NULL,
    owner_id    bigint NOT NULL,
    app         text NOT NULL,
    via         text NOT NULL,
    accessed_at bigint NOT NULL,
    FOREIGN KEY (memory_seq, owner_id) REFERENCES memories (seq, owner_id) ON DELETE CASCADE
);

CREATE INDEX access_log_by_memory ON access_log (memory_seq, accessed_at);
CREATE INDEX access_log_by_owner_app ON access_log (owner_id, app, memory_seq);
CREATE INDEX access_log_by_time ON access_log (accessed_at);

-- Every write stamps the row with its transaction, whatever statement wrote it.
CREATE FUNCTION memories_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END $$;

CREATE TRIGGER memories_stamp BEFORE INSERT OR UPDATE ON memories
FOR EACH ROW EXECUTE FUNCTION memories_stamp();

-- Which owner a memory belongs to and which memory an id names never change;
-- deletion is final.
CREATE FUNCTION memories_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> OLD.seq OR NEW.id <> OLD.id OR NEW.owner_id <> OLD.owner_id THEN
        RAISE EXCEPTION 'memory identity is immutable';
    END IF;
    IF OLD.state = 'deleted' AND NEW.state <> 'deleted' THEN
        RAISE EXCEPTION 'a deleted memory cannot change state';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER memories_guard BEFORE UPDATE ON memories
FOR EACH ROW EXECUTE FUNCTION memories_guard();

-- Deleting a memory forgets its categories and who read it.
CREATE FUNCTION memories_tombstone_wipe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memory_categories WHERE memory_seq = NEW.seq AND owner_id = NEW.owner_id;
    DELETE FROM access_log WHERE memory_seq = NEW.seq AND owner_id = NEW.owner_id;
    RETURN NULL;
END $$;

CREATE TRIGGER memories_tombstone_wipe AFTER UPDATE OF state ON memories
FOR EACH ROW WHEN (NEW.state = 'deleted' AND OLD.state <> 'deleted')
EXECUTE FUNCTION memories_tombstone_wipe();

-- The owner's usage, in the same transaction as every write. Bytes count the
-- text and the metadata as stored (compact JSON), as the SQLite store does.
CREATE FUNCTION memories_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    count_change bigint := 0;
    bytes_change bigint := 0;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state <> 'deleted' THEN
        count_change := count_change - 1;
        bytes_change := bytes_change - octet_length(OLD.text) - octet_length(OLD.metadata::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state <> 'deleted' THEN
        count_change := count_change + 1;
        bytes_change := bytes_change + octet_length(NEW.text) + octet_length(NEW.metadata::text);
    END IF;
    IF count_change <> 0 OR bytes_change <> 0 THEN
        UPDATE owners SET memory_count = memory_count + count_change, bytes = bytes + bytes_change
        WHERE id = COALESCE(NEW.owner_id, OLD.owner_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER memories_usage AFTER INSERT OR UPDATE OR DELETE ON memories
FOR EACH ROW EXECUTE FUNCTION memories_usage();
