//! The baseline of the memory bench's engine comparison: the store's previous search
//! engine (SQLite FTS5, schema v1), rebuilt beside the current store from the same rows.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mcp_api::Owner;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Corpus, HITS, LOAD_BATCH, load_order};

/// The previous search engine, as the store used it up to schema v1: an external-content
/// FTS5 table with the owner as a column, `porter unicode61 remove_diacritics 2`, BM25 over
/// the text only, every query word quoted and OR-ed under an owner filter; then each hit's
/// row and FTS5 snippet.
pub(crate) struct Fts5 {
    connection: Arc<Mutex<Connection>>,
}

/// The parts of schema v1 that searches read (its tables, indexes and full-text index;
/// like the store, no `ANALYZE`, so the query planner sees what it saw there).
const FTS5_SCHEMA: &str = "
CREATE TABLE owners (
    id      INTEGER PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE memories (
    seq        INTEGER PRIMARY KEY,
    id         BLOB NOT NULL UNIQUE,
    owner_id   INTEGER NOT NULL REFERENCES owners (id),
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    app        TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (seq, owner_id)
) STRICT;
CREATE INDEX memories_by_owner_created ON memories (owner_id, created_at);
CREATE INDEX memories_by_owner_updated ON memories (owner_id, updated_at);
CREATE INDEX memories_by_owner_app ON memories (owner_id, app);
CREATE TABLE memory_categories (
    memory_seq INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL,
    category   TEXT NOT NULL,
    PRIMARY KEY (memory_seq, category)
) STRICT, WITHOUT ROWID;
CREATE VIEW memories_fts_content AS
    SELECT seq, owner_id, text FROM memories WHERE state <> 'deleted';
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    owner_id,
    text,
    content = 'memories_fts_content',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (memories_fts, rank) VALUES ('rank', 'bm25(0.0, 1.0)');
INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER memories_fts_after_insert AFTER INSERT ON memories
WHEN new.state <> 'deleted'
BEGIN
    INSERT INTO memories_fts (rowid, owner_id, text) VALUES (new.seq, new.owner_id, new.text);
END;
";

impl Fts5 {
    /// Writes every owner's memories in the order the store got them.
    pub(crate) fn build(
        path: &Path,
        corpus: &Corpus,
        owners: &[(Owner, usize)],
        progress: usize,
    ) -> Fts5 {
        let started = Instant::now();
        let mut connection = Connection::open(path).expect("open fts5 db");
        connection
            .pragma_update(None, "journal_mode", "wal")
            .expect("wal");
        // How fast the index is built is not what is measured.
        connection
            .pragma_update(None, "synchronous", "OFF")
            .expect("synchronous");
        connection.execute_batch(FTS5_SCHEMA).expect("schema");
        let mut owner_ids = Vec::with_capacity(owners.len());
        for (owner, _) in owners {
            connection
                .execute("INSERT INTO owners (subject) VALUES (?1)", [owner.as_str()])
                .expect("owner");
            owner_ids.push(connection.last_insert_rowid());
        }
        let (mut written, mut reported) = (0usize, 0usize);
        for chunk in load_order(owners).chunks(64) {
            let transaction = connection.transaction().expect("transaction");
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT INTO memories
                         (id, owner_id, text, metadata, app, state, created_at, updated_at)
                         VALUES (?1, ?2, ?3, '{}', 'bench', 'active', ?4, ?4)",
                    )
                    .expect("prepare");
                for &(owner_index, start) in chunk {
                    for n in start..owners[owner_index].1.min(start + LOAD_BATCH) {
                        written += 1;
                        let id = (written as u128).to_be_bytes();
                        insert
                            .execute(params![
                                id.as_slice(),
                                owner_ids[owner_index],
                                corpus.memory_text(owner_index, n),
                                1_700_000_000_000_i64 + written as i64
                            ])
                            .expect("insert");
                    }
                }
            }
            transaction.commit().expect("commit");
            if written >= reported + progress {
                reported = written;
                println!(
                    "  FTS5: {written:>9} memories in {:>6.1?}",
                    started.elapsed()
                );
            }
        }
        connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        if written != reported {
            println!(
                "  FTS5: {written:>9} memories in {:>6.1?}",
                started.elapsed()
            );
        }
        Fts5 {
            connection: Arc::new(Mutex::new(connection)),
        }
    }

    /// The owner's best [`HITS`] memories for `query`, as the previous store found them:
    /// on Tokio's blocking pool, in a read transaction, with each hit's row and snippet.
    pub(crate) async fn search(&self, owner: &Owner, query: &str) -> usize {
        let connection = Arc::clone(&self.connection);
        let (owner, query) = (owner.as_str().to_owned(), query.to_owned());
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().expect("connection");
            let transaction = connection.unchecked_transaction().expect("transaction");
            let hits = fts5_search(&transaction, &owner, &query);
            transaction.commit().expect("commit");
            hits
        })
        .await
        .expect("search task")
    }
}

/// The previous store's `search`, statement for statement.
fn fts5_search(connection: &Connection, owner: &str, query: &str) -> usize {
    let owner_id: Option<i64> = connection
        .prepare_cached("SELECT id FROM owners WHERE subject = ?1")
        .expect("prepare")
        .query_row([owner], |row| row.get(0))
        .optional()
        .expect("owner");
    let Some(owner_id) = owner_id else {
        return 0;
    };
    let Some(expression) = fts5_match_any_word(owner_id, &fts5_words(query)) else {
        return 0;
    };
    let ranked: Vec<(i64, f64)> = connection
        .prepare_cached(
            "SELECT m.seq, -memories_fts.rank
             FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
             WHERE memories_fts MATCH ?1
               AND m.owner_id = ?2
               AND m.state IN (SELECT value FROM json_each(?3))
               AND (?4 IS NULL OR m.app = ?4)
               AND (?5 IS NULL OR EXISTS (
                   SELECT 1 FROM memory_categories c
                   WHERE c.memory_seq = m.seq AND c.owner_id = ?2
                     AND c.category IN (SELECT value FROM json_each(?5))))
             ORDER BY memories_fts.rank, m.seq DESC
             LIMIT ?6",
        )
        .expect("prepare")
        .query_map(
            params![
                expression,
                owner_id,
                r#"["active"]"#,
                None::<String>,
                None::<String>,
                HITS
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("search")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let mut hits = 0;
    for (seq, _score) in ranked {
        let row = connection
            .prepare_cached(
                "SELECT m.seq, m.id, m.text, m.metadata, m.app, m.state, m.created_at,
                        m.updated_at,
                        (SELECT json_group_array(c.category) FROM memory_categories c
                         WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id) AS categories
                 FROM memories m WHERE m.seq = ?1 AND m.owner_id = ?2 AND m.state <> 'deleted'",
            )
            .expect("prepare")
            .query_row(params![seq, owner_id], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(8)?,
                ))
            })
            .optional()
            .expect("row");
        let Some((id, text, metadata, categories)) = row else {
            continue;
        };
        // Decoded as the store decoded them.
        let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("metadata");
        let categories: Vec<String> = serde_json::from_str(&categories).expect("categories");
        let snippet: Option<String> = connection
            .prepare_cached(
                "SELECT snippet(memories_fts, 1, '**', '**', '…', 24)
                 FROM memories_fts WHERE memories_fts MATCH ?1 AND rowid = ?2",
            )
            .expect("prepare")
            .query_row(params![expression, seq], |row| row.get(0))
            .optional()
            .expect("snippet");
        std::hint::black_box((id, text, metadata, categories, snippet));
        hits += 1;
    }
    hits
}

/// The previous store's query words: distinct lowercase runs of letters and digits, at
/// most 64.
fn fts5_words(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| seen.insert(word.clone()))
        .take(64)
        .collect()
}

/// The previous store's `MATCH` expression: any of `words` in the owner's texts.
fn fts5_match_any_word(owner_id: i64, words: &[String]) -> Option<String> {
    if words.is_empty() {
        return None;
    }
    let phrases: Vec<String> = words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    Some(format!(
        "owner_id : \"{owner_id}\" AND text : ({})",
        phrases.join(" OR ")
    ))
}
