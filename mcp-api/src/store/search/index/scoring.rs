//! BM25F scoring of one query over an [`OwnerIndex`]: term frequencies spread to the
//! neighbours, the exact early termination, and the per-thread accumulators it reuses.
//! Moved out of `index.rs` unchanged; see its documentation for the model.

use super::{Doc, FIELDS, Filter, OwnerIndex, Query, Scored, SearchParams, Step};

impl OwnerIndex {
    pub(super) fn score(
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
