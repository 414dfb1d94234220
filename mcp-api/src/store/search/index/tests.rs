//! Unit tests of `index.rs`.

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
            let exhaustive = index.search_pruned(&params, &terms, &related, &filter, limit, false);
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

/// Rows committed late (by another connection or replica) arrive out of row-id order;
/// the index puts them in their place, so it ranks like one built in order.
#[test]
fn memories_indexed_out_of_order_rank_like_those_indexed_in_order() {
    let mut random = Random(0x5EED_0F0D_D0DE_0005);
    for round in 0..20 {
        let (in_order, docs) = random_index(&mut random, 120);
        let mut shuffled_docs: Vec<&RandomDoc> = docs.iter().collect();
        // Swap a few rows with rows up to five places later.
        for at in 0..shuffled_docs.len() {
            if random.below(4) == 0 {
                let other = (at + 1 + random.pick(5)).min(shuffled_docs.len() - 1);
                shuffled_docs.swap(at, other);
            }
        }
        let mut shuffled = OwnerIndex::default();
        for (seq, terms, created_at, app) in shuffled_docs {
            shuffled.upsert(&DocFields {
                seq: *seq,
                key: seq.unsigned_abs(),
                terms: terms.clone(),
                app,
                state: MemoryState::Active,
                created_at: *created_at,
                categories: &[],
            });
        }
        let params = SearchParams::default().with_context_floor(0.0);
        for _ in 0..20 {
            let terms = random_text(&mut random, 1, 4);
            let filter = Filter {
                states: ACTIVE,
                ..Filter::default()
            };
            let expected = in_order.search(&params, &terms, &[], &filter, 10);
            let found = shuffled.search(&params, &terms, &[], &filter, 10);
            assert!(
                same_ranking(&found, &expected),
                "round {round}, query {terms:?}:\n{found:?}\n{expected:?}"
            );
        }
    }
}
