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
            app: 0,
            state: fields.state,
            created_at: fields.created_at,
            categories: Box::default(),
            terms: Box::default(),
            alive: true,
        });
        self.links.push(Link {
            prev,
            next: NONE,
            gap_prev: UNLINKED,
            length: 0,
            context: [0; CONTEXT_STEPS],
        });
        if let Some(link) = self.link_mut(prev) {
            link.next = slot;
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
        // Whether a memory may be a hit at all, whatever its score.
        let eligible = |doc: &Doc| {
            doc.alive
                && filter.states.contains(&doc.state)
                && app.is_none_or(|app| doc.app == app)
                && (categories.is_empty() || doc.categories.iter().any(|c| categories.contains(c)))
                && filter.exclude != Some(doc.seq)
        };

        // (term, weight in the ranking score, weight in the relevance score,
        // steps of context it counts in), the terms with the fewest memories
        // first: the common ones may then only need adding to the memories
        // already found (see below). Related terms count in a memory's own
        // text only: in its context, at their low weight, they would cost the
        // most and say the least.
        let steps = params.context_steps();
        let mut weighted: Vec<(u32, f32, f32, usize)> = query
            .terms
            .iter()
            .zip(idfs.iter().copied())
            .map(|(&term, idf)| (term, idf, idf, steps))
            .chain(query.related.iter().map(|&term| {
                let idf = idf(term);
                (term, params.related_weight * idf, idf, 0)
            }))
            .collect();
        let postings = |term: u32| self.postings.get(term as usize).map_or(0, Vec::len);
        weighted.sort_by_key(|&(term, ..)| (postings(term), term));
        // What the terms from the i-th on can add to any score at most: a term's
        // saturated frequency stays below k1 + 1.
        let mut remaining: Vec<f32> = weighted
            .iter()
            .map(|&(_, weight, ..)| weight * (params.k1 + 1.0))
            .collect();
        for i in (0..remaining.len().saturating_sub(1)).rev() {
            remaining[i] += remaining[i + 1];
        }

        let mut lease = Lease::new(self.docs.len());
        let Buffers {
            fields,
            scores,
            relevance,
            own_match,
            dirty,
        } = &mut lease.0;
        let mut touched: Vec<u32> = Vec::new();
        let mut scored: Vec<u32> = Vec::new();
        // Exact top-k with early termination: once `limit` memories are sure
        // to be hits with scores above the most that the remaining terms could
        // give a memory, no memory not yet found can be a hit, and of those
        // found only the ones that the remaining terms could still lift to the
        // `limit`-th sure score need scoring further ("continue" mode).
        let mut closed = false;
        for (i, &(term, weight, relevance_weight, steps)) in weighted.iter().enumerate() {
            let Some(postings) = self.postings.get(term as usize) else {
                continue;
            };
            if closed && postings.len() > scored.len() {
                // Fewer memories left than postings: look the term up in each.
                for &slot in &scored {
                    let frequencies = self.frequencies(params, term, slot, steps);
                    if frequencies.iter().any(|value| *value > 0.0) {
                        fields[slot as usize] = frequencies;
                        touched.push(slot);
                    }
                }
            } else {
                // Once closed, only memories already found take part.
                let admit = |slot: u32| !closed || scores[slot as usize] > 0.0;
                for posting in postings {
                    let frequency = posting.frequency as f32;
                    self.spread_to(
                        params,
                        steps,
                        posting.slot,
                        frequency,
                        fields,
                        &mut touched,
                        admit,
                    );
                }
            }
            for &slot in &touched {
                let frequencies = std::mem::take(&mut fields[slot as usize]);
                let index = slot as usize;
                own_match[index] |= frequencies[0] > 0.0;
                let pseudo = self.pseudo_frequency(params, slot, average_length, frequencies);
                if pseudo <= 0.0 {
                    continue;
                }
                if scores[index] == 0.0 {
                    scored.push(slot);
                    dirty.push(slot);
                }
                let saturated = pseudo * (params.k1 + 1.0) / (params.k1 + pseudo);
                scores[index] += weight * saturated;
                relevance[index] += relevance_weight * saturated;
            }
            touched.clear();
            let Some(&rest) = remaining.get(i + 1) else {
                break;
            };
            if !query.prune {
                continue;
            }
            if closed
                || self.sure_hits_exceed(
                    rest, limit, &scored, scores, relevance, own_match, floor, &eligible,
                )
            {
                closed = true;
                // The memories that even the rest cannot lift to the `limit`-th
                // sure score are out (checked again after each term, as the
                // rest shrinks and the sure scores grow).
                if let Some(threshold) = self.sure_threshold(
                    limit, &scored, scores, relevance, own_match, floor, &eligible,
                ) {
                    scored.retain(|&slot| {
                        let keep = scores[slot as usize] + rest >= threshold;
                        if !keep {
                            scores[slot as usize] = 0.0;
                        }
                        keep
                    });
                }
            }
        }

        let best = scored
            .iter()
            .map(|&slot| scores[slot as usize])
            .fold(0.0_f32, f32::max);
        let context_floor = params.context_floor * best;
        let mut hits: Vec<Scored> = scored
            .into_iter()
            .filter_map(|slot| {
                let index = slot as usize;
                let (score, own) = (scores[index], own_match[index]);
                let relevant = relevance[index] >= floor
                    && (own || score >= context_floor)
                    && (own || !own_only);
                let doc = self.doc(slot).filter(|doc| relevant && eligible(doc))?;
                Some(Scored {
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

    /// Whether at least `limit` memories found so far are sure to be hits
    /// (see [`Self::sure_threshold`]) with scores above `remaining`.
    #[allow(clippy::too_many_arguments)]
    fn sure_hits_exceed(
        &self,
        remaining: f32,
        limit: usize,
        scored: &[u32],
        scores: &[f32],
        relevance: &[f32],
        own_match: &[bool],
        floor: f32,
        eligible: &impl Fn(&Doc) -> bool,
    ) -> bool {
        if scored.len() < limit {
            return false;
        }
        let mut above = 0;
        for &slot in scored {
            let index = slot as usize;
            if scores[index] > remaining
                && own_match[index]
                && relevance[index] >= floor
                && self.doc(slot).is_some_and(eligible)
            {
                above += 1;
                if above >= limit {
                    return true;
                }
            }
        }
        false
    }

    /// The `limit`-th best score among the memories found so far that are
    /// sure to be hits (they match in their own text, pass the relevance
    /// floor and the filters, and more terms only raise their scores); `None`
    /// while there are fewer than `limit` of them.
    #[allow(clippy::too_many_arguments)]
    fn sure_threshold(
        &self,
        limit: usize,
        scored: &[u32],
        scores: &[f32],
        relevance: &[f32],
        own_match: &[bool],
        floor: f32,
        eligible: &impl Fn(&Doc) -> bool,
    ) -> Option<f32> {
        if scored.len() < limit {
            return None;
        }
        let mut sure: Vec<f32> = scored
            .iter()
            .filter(|&&slot| {
                let index = slot as usize;
                own_match[index]
                    && relevance[index] >= floor
                    && self.doc(slot).is_some_and(eligible)
            })
            .map(|&slot| scores[slot as usize])
            .collect();
        if sure.len() < limit {
            return None;
        }
        let (_, threshold, _) = sure.select_nth_unstable_by(limit - 1, |a, b| b.total_cmp(a));
        Some(*threshold)
    }

    /// A memory's frequencies of `term` in its own text and at each distance
    /// of its context up to `steps`: what [`Self::spread_to`] would give it.
    fn frequencies(
        &self,
        params: &SearchParams,
        term: u32,
        slot: u32,
        steps: usize,
    ) -> [f32; FIELDS] {
        let mut fields = [0.0; FIELDS];
        let Some(postings) = self.postings.get(term as usize) else {
            return fields;
        };
        let frequency = |slot: u32| {
            postings
                .binary_search_by_key(&slot, |posting| posting.slot)
                .map_or(0.0, |at| postings[at].frequency as f32)
        };
        fields[0] = frequency(slot);
        for step in [Step::Prev, Step::Next] {
            let mut at = slot;
            for field in fields.iter_mut().skip(1).take(steps) {
                let Some(next) = self.neighbour(params, at, step) else {
                    break;
                };
                *field += frequency(next);
                at = next;
            }
        }
        fields
    }

    /// Adds a posting's frequency to its memory's own field and to the
    /// neighbour fields of the memories up to `steps` around it in the same
    /// burst, for the memories that `admit` lets in.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn spread_to(
        &self,
        params: &SearchParams,
        steps: usize,
        slot: u32,
        frequency: f32,
        fields: &mut [[f32; FIELDS]],
        touched: &mut Vec<u32>,
        admit: impl Fn(u32) -> bool,
    ) {
        let mut add = |slot: u32, field: usize| {
            if !admit(slot) {
                return;
            }
            let entry = &mut fields[slot as usize];
            if entry.iter().all(|value| *value == 0.0) {
                touched.push(slot);
            }
            entry[field] += frequency;
        };
        add(slot, 0);
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
                let length = self.links.get(slot as usize).map_or(0, |link| link.length) as f32;
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
    #[inline]
    fn neighbour_length(&self, params: &SearchParams, slot: u32, distance: usize) -> f32 {
        if params.burst_gap_ms == self.burst_gap_ms
            && let Some(link) = self.links.get(slot as usize)
        {
            return link.context[distance - 1] as f32;
        }
        self.walked_context_length(params.burst_gap_ms, slot, distance) as f32
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

/// Per-memory accumulators of one search. They are kept per thread between
/// searches, zeroed where used, so a search costs what it touches rather
/// than the owner's size.
#[derive(Debug, Default)]
struct Buffers {
    /// Frequencies of the current term in each field, by slot.
    fields: Vec<[f32; FIELDS]>,
    /// Ranking scores, by slot.
    scores: Vec<f32>,
    /// Relevance scores (related terms at full weight), by slot.
    relevance: Vec<f32>,
    /// Whether the memory matched in its own text, by slot.
    own_match: Vec<bool>,
    /// Slots given a score: what to zero afterwards.
    dirty: Vec<u32>,
}

thread_local! {
    static BUFFERS: std::cell::Cell<Option<Buffers>> = const { std::cell::Cell::new(None) };
}

/// This thread's [`Buffers`] while a search uses them: handed back, zeroed,
/// when dropped (on every path out of the search).
struct Lease(Buffers);

impl Lease {
    /// This thread's buffers (or new ones), at least `slots` long and zeroed.
    fn new(slots: usize) -> Lease {
        let mut buffers = BUFFERS
            .try_with(std::cell::Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default();
        if buffers.scores.len() < slots {
            buffers.fields.resize(slots, [0.0; FIELDS]);
            buffers.scores.resize(slots, 0.0);
            buffers.relevance.resize(slots, 0.0);
            buffers.own_match.resize(slots, false);
        }
        Lease(buffers)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let buffers = &mut self.0;
        for slot in buffers.dirty.drain(..) {
            let index = slot as usize;
            buffers.scores[index] = 0.0;
            buffers.relevance[index] = 0.0;
            buffers.own_match[index] = false;
        }
        // `fields` is zeroed term by term as it is read.
        let buffers = std::mem::take(buffers);
        // Fails only while the thread exits; the buffers are then just freed.
        let _ = BUFFERS.try_with(|cell| cell.set(Some(buffers)));
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

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
        }

        fn pick(&mut self, bound: usize) -> usize {
            usize::try_from(self.below(bound as u64)).unwrap_or(0)
        }
    }

    /// `least` to `most` words with a skewed distribution: a few common, many rare.
    fn random_text(random: &mut Random, least: u64, most: u64) -> Vec<String> {
        let words = least + random.below(most - least + 1);
        (0..words)
            .map(|_| {
                let rank = random.below(40) * random.below(40) / 8;
                format!("w{rank}")
            })
            .collect()
    }

    /// Row id, terms, creation time and app of a generated memory.
    type RandomDoc = (i64, Vec<String>, i64, &'static str);

    fn random_index(random: &mut Random, memories: i64) -> (OwnerIndex, Vec<RandomDoc>) {
        let mut index = OwnerIndex::default();
        let mut docs = Vec::new();
        let mut created_at = 0;
        for seq in 1..=memories {
            // Bursts of writes, sometimes from another app, with long gaps.
            created_at += if random.below(8) == 0 {
                2 * 60 * 60 * 1000
            } else {
                1_000
            };
            let app = if random.below(6) == 0 { "other" } else { "app" };
            let terms = random_text(random, 1, 12);
            index.upsert(&DocFields {
                seq,
                key: seq.unsigned_abs(),
                terms: terms.clone(),
                app,
                state: MemoryState::Active,
                created_at,
                categories: &[],
            });
            docs.push((seq, terms, created_at, app));
        }
        (index, docs)
    }

    /// Whether two rankings agree: the same scores rank by rank, and the same
    /// memories except where scores tie within float rounding (a tie may be
    /// with a memory just below the last rank).
    fn same_ranking(a: &[Scored], b: &[Scored]) -> bool {
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * x.abs().max(1.0);
        let tied = |rank: usize| {
            rank + 1 == a.len()
                || a.iter()
                    .enumerate()
                    .any(|(other, hit)| other != rank && close(hit.score, a[rank].score))
        };
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .enumerate()
                .all(|(rank, (x, y))| close(x.score, y.score) && (x.seq == y.seq || tied(rank)))
    }

    #[test]
    fn early_termination_returns_the_exhaustive_top_k() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        for round in 0..40 {
            let (index, _) = random_index(&mut random, 300 + 40 * round);
            let params =
                SearchParams::default().with_min_relevance(if round % 2 == 0 { 0.0 } else { 0.15 });
            for _ in 0..25 {
                let terms = random_text(&mut random, 1, 5);
                let related: Vec<Vec<String>> = terms
                    .iter()
                    .map(|_| random_text(&mut random, 0, 3))
                    .collect();
                let states = [MemoryState::Active];
                let app_filter = (random.below(4) == 0).then_some("other");
                let filter = Filter {
                    states: &states,
                    app: app_filter,
                    ..Filter::default()
                };
                let limit = 1 + random.pick(12);
                let pruned = index.search_pruned(&params, &terms, &related, &filter, limit, true);
                let exhaustive =
                    index.search_pruned(&params, &terms, &related, &filter, limit, false);
                assert!(
                    same_ranking(&pruned, &exhaustive),
                    "round {round}, query {terms:?} related {related:?} limit {limit}:\n{pruned:?}\n{exhaustive:?}"
                );
            }
        }
    }

    #[test]
    fn an_index_changed_in_place_ranks_like_one_built_afresh() {
        let mut random = Random(0x0123_4567_89AB_CDEF);
        for round in 0..20 {
            let (mut index, mut docs) = random_index(&mut random, 200);
            // Remove some memories and rewrite others in place.
            for _ in 0..60 {
                let at = random.pick(docs.len());
                if random.below(2) == 0 {
                    let (seq, ..) = docs.remove(at);
                    index.remove(seq);
                } else {
                    let terms = random_text(&mut random, 1, 12);
                    let (seq, _, created_at, app) = docs[at];
                    docs[at].1 = terms.clone();
                    index.upsert(&DocFields {
                        seq,
                        key: seq.unsigned_abs() + 1_000_000,
                        terms,
                        app,
                        state: MemoryState::Active,
                        created_at,
                        categories: &[],
                    });
                }
            }
            let mut fresh = OwnerIndex::default();
            for (seq, terms, created_at, app) in &docs {
                fresh.upsert(&DocFields {
                    seq: *seq,
                    key: seq.unsigned_abs(),
                    terms: terms.clone(),
                    app,
                    state: MemoryState::Active,
                    created_at: *created_at,
                    categories: &[],
                });
            }
            // The index's own burst gap uses the kept context lengths; any other gap
            // walks the chain (one millisecond more makes the same bursts here).
            let kept = SearchParams::default().burst_gap_ms;
            for gap in [kept, kept + 1, 5_000] {
                let params = SearchParams::default()
                    .with_burst_gap_ms(gap)
                    .with_context_floor(0.0);
                for _ in 0..20 {
                    let terms = random_text(&mut random, 1, 4);
                    let filter = Filter {
                        states: ACTIVE,
                        ..Filter::default()
                    };
                    let changed = index.search(&params, &terms, &[], &filter, 10);
                    let built = fresh.search(&params, &terms, &[], &filter, 10);
                    assert!(
                        same_ranking(&changed, &built),
                        "round {round}, gap {gap}, query {terms:?}:\n{changed:?}\n{built:?}"
                    );
                    if gap == kept {
                        let walked = index.search(
                            &params.with_burst_gap_ms(kept + 1),
                            &terms,
                            &[],
                            &filter,
                            10,
                        );
                        assert!(
                            same_ranking(&changed, &walked),
                            "round {round}, query {terms:?}:\n{changed:?}\n{walked:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn filters_apply_to_hits_not_to_context() {
        let mut index = index(&[doc(1, "holiday", 0), doc(2, "lisbon", 1)]);
        index.set_state(1, MemoryState::Archived);
        let params = SearchParams::default().with_context_floor(0.0);
        assert_eq!(search_with(&index, &params, "holiday"), [2]);
    }
}
