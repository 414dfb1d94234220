//! Per-owner postings and BM25F scoring with neighbour context.
//!
//! Each owner has an [`OwnerIndex`] of its own: its own term dictionary,
//! document frequencies and lengths. A query therefore touches only the
//! owner's postings (its cost grows with the owner's data, not everyone's),
//! and one owner's ranking cannot move when another owner writes.
//!
//! # Scoring
//!
//! A memory is scored with BM25F over three fields:
//!
//! - its own text (weight 1);
//! - the memories written just before and just after it (weight
//!   [`SearchParams::near_weight`]);
//! - the ones two steps away (weight [`SearchParams::far_weight`]).
//!
//! "Before" and "after" are the owner's memories in creation order, and only
//! count while they belong to the same burst of writes: same app, created
//! within [`SearchParams::burst_gap_ms`] of each other. The neighbour fields are
//! not stored: a posting of a term in memory `m` is spread at query time to
//! `m`'s neighbours, so adding a memory never rewrites older entries. Terms
//! related to the query's words (from the lexicon) count only in a memory's
//! own text, at [`SearchParams::related_weight`].
//!
//! A memory must match with its own text or a neighbour's to be found, and a
//! relevance floor ([`SearchParams::min_relevance`], as a share of the score a
//! memory matching every query word once would get) drops hits that only
//! share a minor word with the query.
//!
//! # Cost
//!
//! Scoring reads, per neighbour, only a small [`Link`] (chain, burst gap and
//! lengths, with the context lengths kept current for the index's burst gap),
//! and its per-memory accumulators are reused by each thread, so a search
//! costs what it touches. Query terms are taken rarest first, and the search
//! terminates early, exactly: once `limit` memories are sure to be hits with
//! scores above the most that the terms still to come could give any memory
//! (each adds less than its weight × (k1 + 1)), no memory not yet found can be
//! a hit, and the common terms are only added to the memories found that could
//! still reach the top (looked up in their postings, kept sorted by slot).
//! The result is the exhaustive one; a test compares the two.

use std::collections::HashMap;

use super::params::CONTEXT_STEPS;
pub use super::params::SearchParams;
use crate::store::MemoryState;

/// No slot: the end of a neighbour chain.
const NONE: u32 = u32::MAX;
/// [`Link::gap_prev`] of a memory that does not continue its predecessor's
/// burst (first memory, another app, or written 49 days or more later).
const UNLINKED: u32 = u32::MAX;
/// Fields of a memory: its own text and its neighbours 1, 2 and 3 steps away.
const FIELDS: usize = 1 + CONTEXT_STEPS;

/// What the index keeps of a memory.
#[derive(Debug, Clone)]
pub(crate) struct DocFields<'a> {
    /// The memory's row id; increases with creation order.
    pub(crate) seq: i64,
    /// [`text_key`](super::text_key) of its text.
    pub(crate) key: u64,
    /// Its analysed terms, in order, with repeats.
    pub(crate) terms: Vec<String>,
    /// The app that wrote it.
    pub(crate) app: &'a str,
    /// Its state (never deleted).
    pub(crate) state: MemoryState,
    /// Creation time, Unix milliseconds.
    pub(crate) created_at: i64,
    /// Its categories.
    pub(crate) categories: &'a [String],
}

/// Filters on the hits of [`OwnerIndex::search`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter<'a> {
    /// Keep memories in any of these states.
    pub(crate) states: &'a [MemoryState],
    /// Keep memories written by this app.
    pub(crate) app: Option<&'a str>,
    /// Keep memories with any of these categories (none: all).
    pub(crate) categories: &'a [String],
    /// Leave this memory out.
    pub(crate) exclude: Option<i64>,
}

/// A scored memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    /// The memory's row id.
    pub(crate) seq: i64,
    /// Its score; higher is better.
    pub(crate) score: f32,
}

/// One owner's index.
#[derive(Debug)]
pub(crate) struct OwnerIndex {
    /// The burst gap that [`Link::context`] is kept for; searches with
    /// another gap walk the chain instead.
    burst_gap_ms: i64,
    terms: HashMap<String, u32>,
    postings: Vec<Vec<Posting>>,
    docs: Vec<Doc>,
    /// The chain and lengths, by slot like `docs`: all that scoring reads per
    /// neighbour, kept small and apart from the rest.
    links: Vec<Link>,
    by_seq: HashMap<i64, u32>,
    by_key: HashMap<u64, i64>,
    live_docs: u32,
    live_length: u64,
    last_live: Option<u32>,
    apps: Interner,
    categories: Interner,
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    frequency: u32,
}

/// A memory's place in its owner's chain of memories, in creation order.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// The live memory written just before, or [`NONE`].
    prev: u32,
    /// The live memory written just after, or [`NONE`].
    next: u32,
    /// Milliseconds between `prev` and this memory when both come from the
    /// same app, else [`UNLINKED`].
    gap_prev: u32,
    /// Terms in its own text.
    length: u32,
    /// Terms in the neighbours 1, 2 and 3 steps away in its burst, with the
    /// index's [`OwnerIndex::burst_gap_ms`].
    context: [u32; CONTEXT_STEPS],
}

#[derive(Debug)]
struct Doc {
    seq: i64,
    key: u64,
    app: u32,
    state: MemoryState,
    created_at: i64,
    categories: Box<[u32]>,
    /// Distinct term ids, so the doc's postings can be removed.
    terms: Box<[u32]>,
    alive: bool,
}

#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = u32::try_from(self.ids.len()).unwrap_or(NONE);
        self.ids.insert(value.to_owned(), id);
        id
    }

    fn get(&self, value: &str) -> Option<u32> {
        self.ids.get(value).copied()
    }
}

impl Default for OwnerIndex {
    fn default() -> Self {
        Self::new(SearchParams::default().burst_gap_ms)
    }
}

impl OwnerIndex {
    /// An empty index whose context lengths are kept for bursts of this gap.
    pub(crate) fn new(burst_gap_ms: i64) -> Self {
        Self {
            burst_gap_ms,
            terms: HashMap::new(),
            postings: Vec::new(),
            docs: Vec::new(),
            links: Vec::new(),
            by_seq: HashMap::new(),
            by_key: HashMap::new(),
            live_docs: 0,
            live_length: 0,
            last_live: None,
            apps: Interner::default(),
            categories: Interner::default(),
        }
    }

    /// How many memories are indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u32 {
        self.live_docs
    }

    /// Whether the memory with row id `seq` is indexed.
    #[cfg(test)]
    pub(crate) fn contains(&self, seq: i64) -> bool {
        self.by_seq.contains_key(&seq)
    }

    /// The row id of a memory whose text has this [`text_key`](super::text_key).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn seq_of_key(&self, key: u64) -> Option<i64> {
        self.by_key.get(&key).copied()
    }

    /// Adds a memory in row-id order (normally after every indexed one), or
    /// replaces the text, state and app of an indexed one in place (keeping
    /// its neighbours).
    pub(crate) fn upsert(&mut self, fields: &DocFields<'_>) {
        if let Some(&slot) = self.by_seq.get(&fields.seq) {
            self.unindex_terms(slot);
            self.fill(slot, fields);
            return;
        }
        let Ok(slot) = u32::try_from(self.docs.len()) else {
            return;
        };
        if slot == NONE {
            return;
        }
        // Its place in creation order: after the live memory with the largest row id
        // below its own. Usually the last one, but a memory committed late (by another
        // connection or replica) goes where its row id puts it, so every index built from
        // the same rows has the same chain, whatever order the rows arrived in.
        let mut prev = self.last_live.unwrap_or(NONE);
        let mut next = NONE;
        while let Some(doc) = self.doc(prev)
            && doc.seq > fields.seq
        {
            next = prev;
            prev = self.links.get(prev as usize).map_or(NONE, |link| link.prev);
        }
        self.docs.push(Doc {
            seq: fields.seq,
            key: fields.key,
            app: 0,
            state: fields.state,
            created_at: fields.created_at,
            categories: Box::default(),
            terms: Box::default(),
            alive: true,
        });
        self.links.push(Link {
            prev,
            next,
            gap_prev: UNLINKED,
            length: 0,
            context: [0; CONTEXT_STEPS],
        });
        if let Some(link) = self.link_mut(prev) {
            link.next = slot;
        }
        if let Some(link) = self.link_mut(next) {
            link.prev = slot;
        }
        if next == NONE {
            self.last_live = Some(slot);
        }
        self.by_seq.insert(fields.seq, slot);
        self.live_docs += 1;
        self.fill(slot, fields);
    }

    /// Changes the state of an indexed memory.
    pub(crate) fn set_state(&mut self, seq: i64, state: MemoryState) {
        if state == MemoryState::Deleted {
            self.remove(seq);
            return;
        }
        if let Some(&slot) = self.by_seq.get(&seq)
            && let Some(doc) = self.doc_mut(slot)
        {
            doc.state = state;
        }
    }

    /// Removes a memory; its neighbours become each other's.
    pub(crate) fn remove(&mut self, seq: i64) {
        let Some(slot) = self.by_seq.remove(&seq) else {
            return;
        };
        self.unindex_terms(slot);
        if let Some(doc) = self.doc_mut(slot) {
            doc.alive = false;
        }
        let Some(&Link { prev, next, .. }) = self.links.get(slot as usize) else {
            return;
        };
        if let Some(link) = self.link_mut(prev) {
            link.next = next;
        }
        if let Some(link) = self.link_mut(next) {
            link.prev = prev;
        }
        self.relink(next);
        self.refresh_context(prev);
        self.refresh_context(next);
        if self.last_live == Some(slot) {
            self.last_live = (prev != NONE).then_some(prev);
        }
        self.live_docs -= 1;
    }

    /// The best `limit` memories for the query `terms` that pass `filter`,
    /// best first (ties: newest first).
    ///
    /// `related[i]` are terms related to `terms[i]` (from the lexicon): they
    /// count at [`SearchParams::related_weight`] in the ranking, and in full
    /// toward the relevance floor.
    pub(crate) fn search(
        &self,
        params: &SearchParams,
        terms: &[String],
        related: &[Vec<String>],
        filter: &Filter<'_>,
        limit: usize,
    ) -> Vec<Scored> {
        self.search_pruned(params, terms, related, filter, limit, true)
    }

    /// [`Self::search`], with early termination or (to test it) without.
    fn search_pruned(
        &self,
        params: &SearchParams,
        terms: &[String],
        related: &[Vec<String>],
        filter: &Filter<'_>,
        limit: usize,
        prune: bool,
    ) -> Vec<Scored> {
        let query = self.known_terms(terms, &[]);
        let all_related: Vec<String> = related.iter().flatten().cloned().collect();
        // A related term in more than a twentieth of a large owner's memories brings
        // many postings and, at its lower weight, next to no signal: it is left out.
        let common = (self.live_docs / 20).max(64) as usize;
        let mut related_ids = self.known_terms(&all_related, &query);
        related_ids.retain(|&term| self.postings.get(term as usize).map_or(0, Vec::len) <= common);
        // Every query word counts in the full score, also those no memory has.
        let distinct_words = {
            let mut words: Vec<&String> = terms.iter().collect();
            words.sort_unstable();
            words.dedup();
            words.len()
        };
        let query = Query {
            terms: &query,
            related: &related_ids,
            distinct_words,
            prune,
        };
        self.score(params, &query, filter, limit, false)
    }

    /// The ids of `terms` that some memory has, without repeats or those in `except`.
    /// (Terms whose memories are all gone count as unknown words.)
    fn known_terms(&self, terms: &[String], except: &[u32]) -> Vec<u32> {
        let mut ids: Vec<u32> = terms
            .iter()
            .filter_map(|term| self.terms.get(term).copied())
            .filter(|&term| {
                self.postings
                    .get(term as usize)
                    .is_some_and(|p| !p.is_empty())
            })
            .filter(|term| !except.contains(term))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Memories like the one with row id `seq` (its own terms as the query),
    /// that share words with it in their own text.
    pub(crate) fn similar(
        &self,
        params: &SearchParams,
        seq: i64,
        filter: &Filter<'_>,
        limit: usize,
    ) -> Vec<Scored> {
        let Some(doc) = self.by_seq.get(&seq).and_then(|&slot| self.doc(slot)) else {
            return Vec::new();
        };
        let query = doc.terms.to_vec();
        let relaxed = SearchParams {
            min_relevance: 0.0,
            ..*params
        };
        let query = Query {
            terms: &query,
            related: &[],
            distinct_words: query.len(),
            prune: true,
        };
        self.score(&relaxed, &query, filter, limit, true)
    }

    /// [`Self::neighbour_length`] by walking the chain with any burst gap.
    fn walked_context_length(&self, burst_gap_ms: i64, slot: u32, distance: usize) -> u32 {
        let mut length = 0;
        for step in [Step::Prev, Step::Next] {
            let mut at = Some(slot);
            for _ in 0..distance {
                at = at.and_then(|slot| self.linked(burst_gap_ms, slot, step));
            }
            if let Some(link) = at.and_then(|slot| self.links.get(slot as usize)) {
                length += link.length;
            }
        }
        length
    }

    /// The live memory just before or after `slot`, if it is in the same burst.
    #[inline]
    fn neighbour(&self, params: &SearchParams, slot: u32, step: Step) -> Option<u32> {
        self.linked(params.burst_gap_ms, slot, step)
    }

    /// [`Self::neighbour`] with bursts of the given gap.
    #[inline]
    fn linked(&self, burst_gap_ms: i64, slot: u32, step: Step) -> Option<u32> {
        let link = self.links.get(slot as usize)?;
        let (other, gap) = match step {
            Step::Prev => (link.prev, link.gap_prev),
            Step::Next => (link.next, self.links.get(link.next as usize)?.gap_prev),
        };
        let same_burst = other != NONE && gap != UNLINKED && i64::from(gap) <= burst_gap_ms;
        same_burst.then_some(other)
    }

    /// Recomputes whether `slot` continues the burst of the memory before it.
    fn relink(&mut self, slot: u32) {
        let Some(&Link { prev, .. }) = self.links.get(slot as usize) else {
            return;
        };
        let gap = match (self.doc(prev), self.doc(slot)) {
            (Some(before), Some(doc)) if before.app == doc.app => {
                u32::try_from(doc.created_at.abs_diff(before.created_at)).unwrap_or(UNLINKED)
            }
            _ => UNLINKED,
        };
        if let Some(link) = self.link_mut(slot) {
            link.gap_prev = gap;
        }
    }

    fn link_mut(&mut self, slot: u32) -> Option<&mut Link> {
        if slot == NONE {
            return None;
        }
        self.links.get_mut(slot as usize)
    }

    fn doc(&self, slot: u32) -> Option<&Doc> {
        if slot == NONE {
            return None;
        }
        self.docs.get(slot as usize)
    }

    fn doc_mut(&mut self, slot: u32) -> Option<&mut Doc> {
        if slot == NONE {
            return None;
        }
        self.docs.get_mut(slot as usize)
    }

    /// Sets a slot's terms, app, state and categories, and indexes its terms.
    fn fill(&mut self, slot: u32, fields: &DocFields<'_>) {
        let mut frequencies: HashMap<u32, u32> = HashMap::new();
        for term in &fields.terms {
            let id = match self.terms.get(term) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(self.postings.len()).unwrap_or(NONE);
                    self.terms.insert(term.clone(), id);
                    self.postings.push(Vec::new());
                    id
                }
            };
            *frequencies.entry(id).or_default() += 1;
        }
        let mut distinct: Vec<u32> = frequencies.keys().copied().collect();
        distinct.sort_unstable();
        for &term in &distinct {
            if let Some(postings) = self.postings.get_mut(term as usize) {
                // Postings stay sorted by slot, for lookups by memory.
                let at = postings.partition_point(|posting| posting.slot < slot);
                postings.insert(
                    at,
                    Posting {
                        slot,
                        frequency: frequencies[&term],
                    },
                );
            }
        }
        let length = u32::try_from(fields.terms.len()).unwrap_or(u32::MAX);
        self.live_length += u64::from(length);
        let app = self.apps.intern(fields.app);
        let categories: Box<[u32]> = fields
            .categories
            .iter()
            .map(|category| self.categories.intern(category))
            .collect();
        self.by_key.insert(fields.key, fields.seq);
        if let Some(link) = self.link_mut(slot) {
            link.length = length;
        }
        if let Some(doc) = self.doc_mut(slot) {
            doc.key = fields.key;
            doc.terms = distinct.into_boxed_slice();
            doc.app = app;
            doc.state = fields.state;
            doc.created_at = fields.created_at;
            doc.categories = categories;
        }
        // Its app or time may have changed: so may its burst, on both sides.
        self.relink(slot);
        if let Some(&Link { next, .. }) = self.links.get(slot as usize) {
            self.relink(next);
        }
        self.refresh_context(slot);
    }

    /// Recomputes [`Link::context`] of the memories whose context can include
    /// `slot`: those up to [`CONTEXT_STEPS`] away on either side.
    fn refresh_context(&mut self, slot: u32) {
        let mut around = vec![slot];
        for step in [Step::Prev, Step::Next] {
            let mut at = slot;
            for _ in 0..CONTEXT_STEPS {
                let Some(link) = self.links.get(at as usize) else {
                    break;
                };
                at = match step {
                    Step::Prev => link.prev,
                    Step::Next => link.next,
                };
                if at == NONE {
                    break;
                }
                around.push(at);
            }
        }
        for slot in around {
            let mut context = [0; CONTEXT_STEPS];
            for (distance, length) in context.iter_mut().enumerate() {
                *length = self.walked_context_length(self.burst_gap_ms, slot, distance + 1);
            }
            if let Some(link) = self.link_mut(slot) {
                link.context = context;
            }
        }
    }

    /// Removes a slot's postings and length from the statistics.
    fn unindex_terms(&mut self, slot: u32) {
        let Some(doc) = self.doc_mut(slot) else {
            return;
        };
        let terms = std::mem::take(&mut doc.terms);
        let (key, seq) = (doc.key, doc.seq);
        let length = self
            .link_mut(slot)
            .map_or(0, |link| std::mem::take(&mut link.length));
        if self.by_key.get(&key) == Some(&seq) {
            self.by_key.remove(&key);
        }
        self.live_length -= u64::from(length);
        for term in terms.iter() {
            if let Some(postings) = self.postings.get_mut(*term as usize)
                && let Ok(position) = postings.binary_search_by_key(&slot, |p| p.slot)
            {
                postings.remove(position);
            }
        }
    }
}

/// A query as term ids.
struct Query<'a> {
    /// The query's own terms that some memory has.
    terms: &'a [u32],
    /// Related terms that some memory has, none of them in `terms`.
    related: &'a [u32],
    /// How many distinct words the query has, known or not.
    distinct_words: usize,
    /// Whether to stop adding memories once no other can be a hit (always,
    /// but in tests that compare the result with the exhaustive one).
    prune: bool,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Prev,
    Next,
}

mod scoring;

#[cfg(test)]
mod tests;
