//! The memory search engine: per-owner BM25F with neighbour context.
//!
//! The database stays the source of truth. The engine is derived from it:
//! built from the memories table when a store opens (with progress in the
//! log), then kept current by the single writer, which applies each write's
//! [`IndexChange`]s in commit order. Nothing here does I/O.
//!
//! See [`index`] for the ranking and [`analyze`] for the text analysis.

mod analyze;
mod index;
mod lexicon;
mod params;
mod related;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use self::analyze::Analyzer;
pub use self::index::SearchParams;
pub(crate) use self::index::{DocFields, Filter, OwnerIndex, Scored};
use crate::store::MemoryState;

/// Words shown on each side of the first match in a snippet.
const SNIPPET_CONTEXT_WORDS: usize = 12;
/// Words of a snippet when the memory matched through its neighbours only.
const SNIPPET_WORDS: usize = 24;

/// The text as near-duplicate detection sees it: its words, lowercased,
/// separated by single spaces (case, spacing and punctuation do not count).
pub(crate) fn normalised_text(text: &str) -> String {
    let mut normalised = String::with_capacity(text.len());
    for (_, word) in analyze::words(text) {
        if !normalised.is_empty() {
            normalised.push(' ');
        }
        normalised.extend(word.chars().flat_map(char::to_lowercase));
    }
    normalised
}

/// A 64-bit key of [`normalised_text`], to find near-duplicates; equal keys
/// are confirmed by comparing the texts.
pub(crate) fn text_key(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    normalised_text(text).hash(&mut hasher);
    hasher.finish()
}

/// All owners' indexes.
#[derive(Debug, Default)]
pub(crate) struct SearchEngine {
    analyzer: Analyzer,
    params: SearchParams,
    owners: RwLock<HashMap<i64, Arc<RwLock<OwnerIndex>>>>,
}

/// One change a committed write made to what the engine indexes.
#[derive(Debug, Clone)]
pub(crate) enum IndexChange {
    /// A memory was added, or its text, metadata or state changed.
    Upsert {
        /// The owner's row id.
        owner_id: i64,
        /// The memory's row id.
        seq: i64,
        /// [`text_key`] of its text.
        key: u64,
        /// Its analysed terms.
        terms: Vec<String>,
        /// The app that wrote it.
        app: String,
        /// Its state.
        state: MemoryState,
        /// Creation time, Unix milliseconds.
        created_at: i64,
        /// Its categories.
        categories: Vec<String>,
    },
    /// A memory moved to another state (deleted: it leaves the index).
    State {
        /// The owner's row id.
        owner_id: i64,
        /// The memory's row id.
        seq: i64,
        /// The new state.
        state: MemoryState,
    },
    /// Every memory of the owner was deleted.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Clear {
        /// The owner's row id.
        owner_id: i64,
    },
}

impl SearchEngine {
    /// An empty engine with the given ranking parameters.
    pub(crate) fn new(params: SearchParams) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    /// The index terms of `text`.
    pub(crate) fn terms(&self, text: &str) -> Vec<String> {
        self.analyzer.terms(text)
    }

    /// Applies committed changes, in order.
    pub(crate) fn apply(&self, changes: Vec<IndexChange>) {
        for change in changes {
            match change {
                IndexChange::Upsert {
                    owner_id,
                    seq,
                    key,
                    terms,
                    app,
                    state,
                    created_at,
                    categories,
                } => {
                    let owner = self.owner_or_insert(owner_id);
                    let mut owner = owner.write().unwrap_or_else(PoisonError::into_inner);
                    owner.upsert(&DocFields {
                        seq,
                        key,
                        terms,
                        app: &app,
                        state,
                        created_at,
                        categories: &categories,
                    });
                }
                IndexChange::State {
                    owner_id,
                    seq,
                    state,
                } => {
                    if let Some(owner) = self.owner(owner_id) {
                        owner
                            .write()
                            .unwrap_or_else(PoisonError::into_inner)
                            .set_state(seq, state);
                    }
                }
                IndexChange::Clear { owner_id } => {
                    self.owners
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&owner_id);
                }
            }
        }
    }

    /// The owner's memory (not deleted) whose text has this [`text_key`].
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn seq_of_key(&self, owner_id: i64, key: u64) -> Option<i64> {
        self.owner(owner_id)?
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .seq_of_key(key)
    }

    /// The best `limit` memories of the owner for `query`, best first, and the
    /// terms to highlight in snippets (the query's and their related terms).
    pub(crate) fn search(
        &self,
        owner_id: i64,
        query: &str,
        filter: &Filter<'_>,
        limit: usize,
    ) -> (Vec<Scored>, Vec<String>) {
        let terms = self.analyzer.terms(query);
        let Some(owner) = self.owner(owner_id) else {
            return (Vec::new(), terms);
        };
        let related: Vec<Vec<String>> = if self.params.related_weight > 0.0 {
            let lexicon = related::lexicon();
            terms
                .iter()
                .map(|term| lexicon.related(term).to_vec())
                .collect()
        } else {
            vec![Vec::new(); terms.len()]
        };
        let hits = owner.read().unwrap_or_else(PoisonError::into_inner).search(
            &self.params,
            &terms,
            &related,
            filter,
            limit,
        );
        // Snippets highlight the related words that matched, too.
        let mut highlighted = terms;
        highlighted.extend(related.into_iter().flatten());
        (hits, highlighted)
    }

    /// Memories like the owner's memory `seq`, best first.
    pub(crate) fn similar(
        &self,
        owner_id: i64,
        seq: i64,
        filter: &Filter<'_>,
        limit: usize,
    ) -> Vec<Scored> {
        let Some(owner) = self.owner(owner_id) else {
            return Vec::new();
        };
        owner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .similar(&self.params, seq, filter, limit)
    }

    /// `text` with each word that matches one of `terms` as `**word**`: a
    /// window around the first match, `…` where text was cut.
    pub(crate) fn snippet(&self, text: &str, terms: &[String]) -> String {
        let tokens = self.analyzer.tokens(text);
        let words: Vec<(usize, &str)> = analyze::words(text).collect();
        let first_match = words.iter().position(|(start, _)| {
            tokens
                .iter()
                .any(|token| token.span.start == *start && terms.contains(&token.term))
        });
        let (from, to) = match first_match {
            Some(index) => (
                index.saturating_sub(SNIPPET_CONTEXT_WORDS),
                (index + SNIPPET_CONTEXT_WORDS + 1).min(words.len()),
            ),
            None => (0, SNIPPET_WORDS.min(words.len())),
        };
        let Some(&(start, _)) = words.get(from) else {
            return String::new();
        };
        let start = if from == 0 { 0 } else { start };
        let end = if to < words.len() {
            let (last_start, last) = words[to - 1];
            last_start + last.len()
        } else {
            text.len()
        };
        let mut snippet = String::with_capacity(end - start + 8);
        if start > 0 {
            snippet.push('…');
        }
        let mut at = start;
        for token in tokens
            .iter()
            .filter(|token| token.span.start >= start && token.span.end <= end)
            .filter(|token| terms.contains(&token.term))
        {
            snippet.push_str(&text[at..token.span.start]);
            snippet.push_str("**");
            snippet.push_str(&text[token.span.clone()]);
            snippet.push_str("**");
            at = token.span.end;
        }
        snippet.push_str(&text[at..end]);
        if end < text.len() {
            snippet.push('…');
        }
        snippet
    }

    fn owner(&self, owner_id: i64) -> Option<Arc<RwLock<OwnerIndex>>> {
        self.owners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&owner_id)
            .cloned()
    }

    fn owner_or_insert(&self, owner_id: i64) -> Arc<RwLock<OwnerIndex>> {
        if let Some(owner) = self.owner(owner_id) {
            return owner;
        }
        Arc::clone(
            self.owners
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(owner_id)
                .or_insert_with(|| {
                    Arc::new(RwLock::new(OwnerIndex::new(self.params.burst_gap_ms)))
                }),
        )
    }
}

/// The byte ranges of the words of `text` that a search for `query` matches: the query's
/// terms and their related terms, after the same analysis as the index (stemming,
/// folding, stop words). In order, never overlapping.
///
/// For marking matches in a memory shown whole (the memory page); snippets mark theirs
/// with `**`.
#[cfg(feature = "app")]
pub(crate) fn match_spans(query: &str, text: &str) -> Vec<std::ops::Range<usize>> {
    let analyzer = Analyzer::default();
    let mut terms = analyzer.terms(query);
    let lexicon = related::lexicon();
    let related: Vec<String> = terms
        .iter()
        .flat_map(|term| lexicon.related(term).iter().cloned())
        .collect();
    terms.extend(related);
    analyzer
        .tokens(text)
        .into_iter()
        .filter(|token| terms.contains(&token.term))
        .map(|token| token.span)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_with(texts: &[&str]) -> SearchEngine {
        let engine = SearchEngine::default();
        let changes = texts
            .iter()
            .enumerate()
            .map(|(n, text)| IndexChange::Upsert {
                owner_id: 1,
                seq: n as i64 + 1,
                key: text_key(text),
                terms: engine.terms(text),
                app: "app".to_owned(),
                state: MemoryState::Active,
                created_at: n as i64,
                categories: Vec::new(),
            })
            .collect();
        engine.apply(changes);
        engine
    }

    fn filter() -> Filter<'static> {
        Filter {
            states: &[MemoryState::Active],
            ..Filter::default()
        }
    }

    #[test]
    fn snippets_highlight_words_that_match_after_analysis() {
        let engine = SearchEngine::default();
        let terms = engine.terms("favourite colours");
        assert_eq!(
            engine.snippet("My favorite color is green.", &terms),
            "My **favorite** **color** is green."
        );
    }

    #[test]
    fn long_snippets_are_cut_around_the_first_match() {
        let engine = SearchEngine::default();
        let text = format!("{} dolphin {}", "word ".repeat(40), "tail ".repeat(40));
        let snippet = engine.snippet(&text, &engine.terms("dolphins"));
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        assert!(snippet.contains("**dolphin**"));
        assert_eq!(
            snippet.split_whitespace().count(),
            2 * SNIPPET_CONTEXT_WORDS + 1
        );
    }

    #[test]
    fn owners_do_not_share_statistics() {
        let engine = engine_with(&["coffee black", "tea green"]);
        let before = engine.search(1, "coffee tea", &filter(), 10).0;
        let noise = (0..200)
            .map(|n| IndexChange::Upsert {
                owner_id: 2,
                seq: 1000 + n,
                key: n.unsigned_abs(),
                terms: engine.terms("coffee coffee coffee"),
                app: "app".to_owned(),
                state: MemoryState::Active,
                created_at: n,
                categories: Vec::new(),
            })
            .collect();
        engine.apply(noise);
        assert_eq!(engine.search(1, "coffee tea", &filter(), 10).0, before);
        assert!(engine.search(3, "coffee", &filter(), 10).0.is_empty());
    }

    #[test]
    fn clearing_an_owner_forgets_everything() {
        let engine = engine_with(&["coffee black"]);
        engine.apply(vec![IndexChange::Clear { owner_id: 1 }]);
        assert!(engine.search(1, "coffee", &filter(), 10).0.is_empty());
    }
}
