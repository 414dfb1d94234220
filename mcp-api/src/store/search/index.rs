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
//! `m`'s neighbours, so adding a memory never rewrites older entries.
//!
//! A memory must match with its own text or a neighbour's to be found, and a
//! relevance floor ([`SearchParams::min_relevance`], as a share of the score a
//! memory matching every query word once would get) drops hits that only
//! share a minor word with the query.

use std::collections::HashMap;

use super::params::CONTEXT_STEPS;
pub use super::params::SearchParams;
use crate::store::MemoryState;

/// No slot: the end of a neighbour chain.
const NONE: u32 = u32::MAX;
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
#[derive(Debug, Default)]
pub(crate) struct OwnerIndex {
    terms: HashMap<String, u32>,
    postings: Vec<Vec<Posting>>,
    docs: Vec<Doc>,
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

#[derive(Debug)]
struct Doc {
    seq: i64,
    key: u64,
    length: u32,
    prev: u32,
    next: u32,
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

impl OwnerIndex {
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
    pub(crate) fn seq_of_key(&self, key: u64) -> Option<i64> {
        self.by_key.get(&key).copied()
    }

    /// Adds a memory newer than every indexed one, or replaces the text,
    /// state and app of an indexed one in place (keeping its neighbours).
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
        let prev = self.last_live.unwrap_or(NONE);
        self.docs.push(Doc {
            seq: fields.seq,
            key: fields.key,
            length: 0,
            prev,
            next: NONE,
            app: 0,
            state: fields.state,
            created_at: fields.created_at,
            categories: Box::default(),
            terms: Box::default(),
            alive: true,
        });
        if let Some(doc) = self.doc_mut(prev) {
            doc.next = slot;
        }
        self.last_live = Some(slot);
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
        let (prev, next) = match self.doc_mut(slot) {
            Some(doc) => {
                doc.alive = false;
                (doc.prev, doc.next)
            }
            None => return,
        };
        if let Some(doc) = self.doc_mut(prev) {
            doc.next = next;
        }
        if let Some(doc) = self.doc_mut(next) {
            doc.prev = prev;
        }
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
        };
        self.score(&relaxed, &query, filter, limit, true)
    }

    fn score(
        &self,
        params: &SearchParams,
        query: &Query<'_>,
        filter: &Filter<'_>,
        limit: usize,
        own_only: bool,
    ) -> Vec<Scored> {
        if (query.terms.is_empty() && query.related.is_empty()) || limit == 0 || self.live_docs == 0
        {
            return Vec::new();
        }
        let live = self.live_docs as f32;
        let average_length = (self.live_length as f32 / live).max(1.0);
        let idf = |term: u32| {
            let df = self.postings.get(term as usize).map_or(0, Vec::len) as f32;
            ((live - df + 0.5) / (df + 0.5)).ln_1p()
        };
        let idfs: Vec<f32> = query.terms.iter().map(|&term| idf(term)).collect();
        // The score of a memory with every query word once, at average length.
        // Words no memory has count as if one memory had them.
        let rarest = ((live - 0.5) / 1.5).ln_1p();
        // A word covered only through related terms counts like an unknown one
        // here; a related match then counts at full strength toward the floor
        // (the lower related weight orders hits, it does not decide relevance).
        let unknown = query.distinct_words.saturating_sub(query.terms.len());
        let full_score: f32 = idfs.iter().sum::<f32>() + rarest * unknown as f32;
        let floor = params.min_relevance * full_score;

        let slots = self.docs.len();
        let mut fields = vec![[0.0_f32; FIELDS]; slots];
        let mut touched: Vec<u32> = Vec::new();
        let mut scores = vec![0.0_f32; slots];
        let mut relevance = vec![0.0_f32; slots];
        let mut own_match = vec![false; slots];
        let mut scored: Vec<u32> = Vec::new();
        // (term, weight in the ranking score, weight in the relevance score)
        let weighted = query
            .terms
            .iter()
            .zip(idfs.iter().copied())
            .map(|(&t, w)| (t, w, w));
        let related = query.related.iter().map(|&term| {
            let idf = idf(term);
            (term, params.related_weight * idf, idf)
        });
        for (term, idf, relevance_idf) in weighted.chain(related) {
            let Some(postings) = self.postings.get(term as usize) else {
                continue;
            };
            for posting in postings {
                let frequency = posting.frequency as f32;
                self.spread(params, posting.slot, frequency, &mut fields, &mut touched);
            }
            for &slot in &touched {
                let index = slot as usize;
                let frequencies = std::mem::take(&mut fields[index]);
                own_match[index] |= frequencies[0] > 0.0;
                let pseudo = self.pseudo_frequency(params, slot, average_length, frequencies);
                if pseudo <= 0.0 {
                    continue;
                }
                if scores[index] == 0.0 {
                    scored.push(slot);
                }
                let saturated = pseudo * (params.k1 + 1.0) / (params.k1 + pseudo);
                scores[index] += idf * saturated;
                relevance[index] += relevance_idf * saturated;
            }
            touched.clear();
        }

        let app = match filter.app {
            Some(app) => match self.apps.get(app) {
                Some(id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let categories: Vec<u32> = filter
            .categories
            .iter()
            .filter_map(|category| self.categories.get(category))
            .collect();
        if !filter.categories.is_empty() && categories.is_empty() {
            return Vec::new();
        }
        let best = scored
            .iter()
            .map(|&slot| scores[slot as usize])
            .fold(0.0_f32, f32::max);
        let context_floor = params.context_floor * best;
        let mut hits: Vec<Scored> = scored
            .into_iter()
            .filter_map(|slot| {
                let doc = self.doc(slot)?;
                let score = scores[slot as usize];
                let own = own_match[slot as usize];
                let keep = doc.alive
                    && relevance[slot as usize] >= floor
                    && (own || score >= context_floor)
                    && (own || !own_only)
                    && filter.states.contains(&doc.state)
                    && app.is_none_or(|app| doc.app == app)
                    && (categories.is_empty()
                        || doc.categories.iter().any(|c| categories.contains(c)))
                    && filter.exclude != Some(doc.seq);
                keep.then_some(Scored {
                    seq: doc.seq,
                    score,
                })
            })
            .collect();
        let order =
            |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then_with(|| b.seq.cmp(&a.seq));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        hits
    }

    /// Adds a posting's frequency to its memory's own field and to the
    /// neighbour fields of the memories around it in the same burst.
    fn spread(
        &self,
        params: &SearchParams,
        slot: u32,
        frequency: f32,
        fields: &mut [[f32; FIELDS]],
        touched: &mut Vec<u32>,
    ) {
        let mut add = |slot: u32, field: usize| {
            let entry = &mut fields[slot as usize];
            if entry.iter().all(|value| *value == 0.0) {
                touched.push(slot);
            }
            entry[field] += frequency;
        };
        add(slot, 0);
        let steps = params.context_steps();
        for step in [Step::Prev, Step::Next] {
            let mut at = slot;
            for distance in 1..=steps {
                let Some(next) = self.neighbour(params, at, step) else {
                    break;
                };
                add(next, distance);
                at = next;
            }
        }
    }

    /// BM25F's combined term frequency of one memory from its fields: its own
    /// text, then the neighbours 1, 2 and 3 steps away.
    fn pseudo_frequency(
        &self,
        params: &SearchParams,
        slot: u32,
        average_length: f32,
        frequencies: [f32; FIELDS],
    ) -> f32 {
        let normalised = |length: f32, average: f32, b: f32| 1.0 - b + b * length / average;
        let mut pseudo = 0.0;
        for (field, &frequency) in frequencies.iter().enumerate() {
            if frequency <= 0.0 {
                continue;
            }
            if field == 0 {
                let length = self.doc(slot).map_or(0, |doc| doc.length) as f32;
                pseudo += frequency / normalised(length, average_length, params.own_b);
                continue;
            }
            let length = self.neighbour_length(params, slot, field);
            let weight = params.context_weights()[field - 1];
            pseudo +=
                weight * frequency / normalised(length, 2.0 * average_length, params.neighbour_b);
        }
        pseudo
    }

    /// Total length of the neighbours `distance` steps away in the same burst.
    fn neighbour_length(&self, params: &SearchParams, slot: u32, distance: usize) -> f32 {
        let mut length = 0;
        for step in [Step::Prev, Step::Next] {
            let mut at = Some(slot);
            for _ in 0..distance {
                at = at.and_then(|slot| self.neighbour(params, slot, step));
            }
            if let Some(doc) = at.and_then(|slot| self.doc(slot)) {
                length += doc.length;
            }
        }
        length as f32
    }

    /// The live memory just before or after `slot`, if it is in the same burst.
    fn neighbour(&self, params: &SearchParams, slot: u32, step: Step) -> Option<u32> {
        let doc = self.doc(slot)?;
        let other = match step {
            Step::Prev => doc.prev,
            Step::Next => doc.next,
        };
        let neighbour = self.doc(other)?;
        let same_burst = neighbour.app == doc.app
            && (neighbour.created_at - doc.created_at).abs() <= params.burst_gap_ms;
        same_burst.then_some(other)
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
                postings.push(Posting {
                    slot,
                    frequency: frequencies[&term],
                });
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
        if let Some(doc) = self.doc_mut(slot) {
            doc.key = fields.key;
            doc.length = length;
            doc.terms = distinct.into_boxed_slice();
            doc.app = app;
            doc.state = fields.state;
            doc.created_at = fields.created_at;
            doc.categories = categories;
        }
    }

    /// Removes a slot's postings and length from the statistics.
    fn unindex_terms(&mut self, slot: u32) {
        let Some(doc) = self.doc_mut(slot) else {
            return;
        };
        let terms = std::mem::take(&mut doc.terms);
        let length = std::mem::take(&mut doc.length);
        let (key, seq) = (doc.key, doc.seq);
        if self.by_key.get(&key) == Some(&seq) {
            self.by_key.remove(&key);
        }
        self.live_length -= u64::from(length);
        for term in terms.iter() {
            if let Some(postings) = self.postings.get_mut(*term as usize)
                && let Some(position) = postings.iter().position(|p| p.slot == slot)
            {
                postings.swap_remove(position);
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
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Prev,
    Next,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: &[MemoryState] = &[MemoryState::Active];

    fn doc(seq: i64, text: &str, created_at: i64) -> (i64, Vec<String>, i64) {
        (
            seq,
            text.split_whitespace().map(str::to_owned).collect(),
            created_at,
        )
    }

    fn index(docs: &[(i64, Vec<String>, i64)]) -> OwnerIndex {
        let mut index = OwnerIndex::default();
        for (seq, terms, created_at) in docs {
            index.upsert(&DocFields {
                seq: *seq,
                key: seq.unsigned_abs(),
                terms: terms.clone(),
                app: "app",
                state: MemoryState::Active,
                created_at: *created_at,
                categories: &[],
            });
        }
        index
    }

    fn search(index: &OwnerIndex, query: &str) -> Vec<i64> {
        search_with(index, &SearchParams::default(), query)
    }

    fn search_with(index: &OwnerIndex, params: &SearchParams, query: &str) -> Vec<i64> {
        let terms: Vec<String> = query.split_whitespace().map(str::to_owned).collect();
        let filter = Filter {
            states: ACTIVE,
            ..Filter::default()
        };
        index
            .search(params, &terms, &[], &filter, 10)
            .into_iter()
            .map(|hit| hit.seq)
            .collect()
    }

    #[test]
    fn a_neighbour_of_the_matching_memory_is_found_below_it() {
        let index = index(&[
            doc(1, "weather rain", 0),
            doc(2, "where did you go on holiday", 1),
            doc(3, "we went to lisbon", 2),
            doc(4, "cooking pasta tonight", 3),
        ]);
        let params = SearchParams::default().with_context_floor(0.0);
        let hits = search_with(&index, &params, "holiday");
        assert_eq!(hits[0], 2);
        let mut context = hits[1..3].to_vec();
        context.sort_unstable();
        assert_eq!(context, [1, 3]);
    }

    #[test]
    fn context_never_lifts_a_neighbour_above_the_memory_that_answers() {
        let index = index(&[
            doc(1, "likes green tea", 0),
            doc(2, "dog is called rex", 1),
            doc(3, "likes green tea in the morning", 2),
        ]);
        let hits = search(&index, "dog");
        assert_eq!(hits.first(), Some(&2));
    }

    #[test]
    fn memories_far_apart_in_time_are_not_context() {
        let hour = 60 * 60 * 1000;
        let index = index(&[doc(1, "holiday plans", 0), doc(2, "lisbon", 5 * hour)]);
        let params = SearchParams::default().with_context_floor(0.0);
        assert_eq!(search_with(&index, &params, "holiday"), [1]);
    }

    #[test]
    fn removed_memories_leave_the_chain_and_the_statistics() {
        let mut index = index(&[
            doc(1, "holiday", 0),
            doc(2, "lisbon", 1),
            doc(3, "porto", 2),
        ]);
        index.remove(2);
        assert_eq!(index.len(), 2);
        assert!(!index.contains(2));
        let params = SearchParams::default().with_context_floor(0.0);
        assert_eq!(search_with(&index, &params, "holiday"), [1, 3]);
        assert_eq!(search(&index, "lisbon"), Vec::<i64>::new());
    }

    #[test]
    fn replacing_text_keeps_the_place_in_the_chain() {
        let mut index = index(&[doc(1, "holiday", 0), doc(2, "lisbon", 1)]);
        index.upsert(&DocFields {
            seq: 1,
            key: 100,
            terms: vec!["trip".to_owned()],
            app: "app",
            state: MemoryState::Active,
            created_at: 0,
            categories: &[],
        });
        assert!(search(&index, "holiday").is_empty());
        let params = SearchParams::default().with_context_floor(0.0);
        assert_eq!(search_with(&index, &params, "trip"), [1, 2]);
    }

    #[test]
    fn a_minor_word_alone_is_below_the_floor() {
        let mut docs = vec![doc(1, "paris trip with anna", 0)];
        // `trip` is everywhere, so it says little.
        for seq in 2..40 {
            docs.push(doc(seq, "trip", seq * 10 * 60 * 60 * 1000));
        }
        let index = index(&docs);
        assert!(search(&index, "zebra giraffe trip").is_empty());
        assert_eq!(search(&index, "paris anna")[0], 1);
    }

    #[test]
    fn filters_apply_to_hits_not_to_context() {
        let mut index = index(&[doc(1, "holiday", 0), doc(2, "lisbon", 1)]);
        index.set_state(1, MemoryState::Archived);
        let params = SearchParams::default().with_context_floor(0.0);
        assert_eq!(search_with(&index, &params, "holiday"), [2]);
    }
}
