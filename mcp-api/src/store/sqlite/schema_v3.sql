-- Schema version 3: per-owner usage for storage quotas.
--
-- `owners.memory_count` and `owners.bytes` count the owner's memories that are
-- not deleted and the bytes of their text and metadata. Triggers keep them
-- exact in the same transaction as every write, so a quota check is one row
-- read and can never drift from the data.

ALTER TABLE owners ADD COLUMN memory_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE owners ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;

UPDATE owners SET
    memory_count = (SELECT COUNT(*) FROM memories m
                    WHERE m.owner_id = owners.id AND m.state <> 'deleted'),
    bytes = (SELECT COALESCE(SUM(length(CAST(m.text AS BLOB)) + length(CAST(m.metadata AS BLOB))), 0)
             FROM memories m WHERE m.owner_id = owners.id AND m.state <> 'deleted');

CREATE TRIGGER owners_usage_after_insert AFTER INSERT ON memories
WHEN new.state <> 'deleted'
BEGIN
    UPDATE owners SET
        memory_count = memory_count + 1,
        bytes = bytes + length(CAST(new.text AS BLOB)) + length(CAST(new.metadata AS BLOB))
    WHERE id = new.owner_id;
END;

CREATE TRIGGER owners_usage_after_update AFTER UPDATE OF text, metadata, state ON memories
BEGIN
    UPDATE owners SET
        memory_count = memory_count
            - (old.state <> 'deleted') + (new.state <> 'deleted'),
        bytes = bytes
            - CASE WHEN old.state <> 'deleted'
                   THEN length(CAST(old.text AS BLOB)) + length(CAST(old.metadata AS BLOB)) ELSE 0 END
            + CASE WHEN new.state <> 'deleted'
                   THEN length(CAST(new.text AS BLOB)) + length(CAST(new.metadata AS BLOB)) ELSE 0 END
    WHERE id = new.owner_id;
END;

CREATE TRIGGER owners_usage_after_delete AFTER DELETE ON memories
WHEN old.state <> 'deleted'
BEGIN
    UPDATE owners SET
        memory_count = memory_count - 1,
        bytes = bytes - length(CAST(old.text AS BLOB)) - length(CAST(old.metadata AS BLOB))
    WHERE id = old.owner_id;
END;

-- Access-log retention deletes by age across owners.
CREATE INDEX access_log_by_time ON access_log (accessed_at);
