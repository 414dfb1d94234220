-- Schema version 2: the full-text index moves out of the database.
--
-- Search is now served by the store's own per-owner engine (`store/search/`),
-- derived from `memories` when the store opens and kept current by the
-- writer. FTS5's index was a second copy of every memory's words with
-- index-wide statistics (one owner's ranking moved when others wrote); it is
-- no longer read, so it is no longer written.

DROP TRIGGER memories_fts_after_insert;
DROP TRIGGER memories_fts_after_update;
DROP TRIGGER memories_fts_after_delete;
DROP TABLE memories_fts;
DROP VIEW memories_fts_content;
