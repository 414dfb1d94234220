-- Schema version 2: when each dynamically registered client last received a token, so
-- unused clients can expire (NULL: never, count from created_at).

ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
CREATE INDEX clients_last_used ON clients (COALESCE(last_used_at, created_at));
CREATE INDEX grants_client ON grants (client_id);
