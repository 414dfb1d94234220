//! One user's search results do not move when other users write: the search
//! engine ranks each owner with that owner's own term statistics only.
//!
//! Through the public API only, on every backend (`SqliteStore` on a real
//! file; with the `postgres` feature `PostgresStore` in a schema of its own): the owner's
//! memories stored first, then [`OTHER_MEMORIES`] memories of
//! [`OTHER_OWNERS`] other owners, many of them with the very words (and the
//! very texts) of the owner's memories and queries, then the same queries
//! again. Before and after, each query must return the same memories in the
//! same order with the same scores, bit for bit; and the same again after the
//! store is reopened and its index rebuilt from the database.
//!
//! # Why not a million
//!
//! Issue 9 states the property for 1M memories of other users. Adding 1M
//! through `SqliteStore` in the dev profile takes far longer than this
//! test's share of the CI budget, so the test adds [`OTHER_MEMORIES`]. The
//! count does not matter to the property: an owner's ranking reads only that
//! owner's postings, document frequencies, lengths and neighbours, which
//! other owners' writes never touch, so a result that holds after one other
//! memory holds after any number. What a larger count could expose is a
//! statistic that is (wrongly) shared across owners, and the other owners'
//! texts below are built to move every such statistic a lot: they repeat the
//! queries' words at very different rates (document frequency, term
//! frequency, average length all shift by orders of magnitude) and include
//! exact copies of the owner's texts.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/backend.rs"]
#[macro_use]
mod backend;

use std::time::Duration;

use jwks_verify::ManualClock;
use mcp_api::store::{Limits, MemoryId, MemoryStore, NewMemory, Owner, SearchQuery};

use self::backend::Backend;

/// Memories of other owners added between the two rounds of queries.
const OTHER_MEMORIES: usize = 150_000;
/// How many other owners write them.
const OTHER_OWNERS: usize = 100;
/// Memories per `add` call while loading the other owners.
const BATCH: usize = 1_000;

const T0: i64 = 1_700_000_000_000;

/// The owner's memories, written one by one a few minutes apart (so some are
/// each other's context and some are not).
const OWN_TEXTS: &[&str] = &[
    "I take my coffee as a flat white with oat milk.",
    "My sister Anna lives in Lisbon and works as an architect.",
    "Started training for the Berlin marathon in September.",
    "The dentist appointment is on Tuesday at 9am.",
    "I am allergic to peanuts and cashews.",
    "My manager asked me to prepare the quarterly report by Friday.",
    "We planted tomatoes, basil and peppers in the garden.",
    "Reading a novel about a lighthouse keeper in Scotland.",
    "My favourite colour is dark green.",
    "Booked a kayak trip on the lake for the long weekend.",
    "The primary care doctor said my blood pressure is fine.",
    "Learning to play jazz guitar, mostly chord melodies.",
    "Anna's birthday is on the 14th of March; she likes orchids.",
    "Coffee after 3pm keeps me awake, so I switch to tea.",
    "Ran 18 km on Sunday, the longest run of the marathon plan.",
    "Visited the museum of modern art with my sister.",
    "Yoga on Mondays and Thursdays at the studio near work.",
    "My python project parses the garden sensor data every hour.",
    "Vacation in Portugal is booked for the first two weeks of August.",
    "The recipe for my grandmother's lemon cake uses three eggs.",
    "I prefer window seats on flights longer than two hours.",
    "My boss likes the report to start with a one-page summary.",
    "Painting the living room a light grey next month.",
    "Allergy season makes hiking in May difficult for me.",
];

/// Questions as a user asks them, most in other words than the memories.
const QUERIES: &[&str] = &[
    "how do I take my coffee",
    "when is the dentist",
    "what is my sister's job",
    "marathon training",
    "what am I allergic to",
    "what does my boss want in the report",
    "what did we plant in the garden",
    "what is my favorite color",
    "when is Anna's birthday",
    "what is my doctor's opinion of my blood pressure",
    "holiday plans in August",
    "guitar",
];

/// A memory id and its score, as a search returns them.
type Ranking = Vec<(MemoryId, f64)>;

backends!(other_owners_writing_the_same_words_never_change_a_ranking);

async fn other_owners_writing_the_same_words_never_change_a_ranking<B: Backend>() {
    let db = B::create().await;
    let now = ManualClock::at_unix_ms(T0.try_into().unwrap());
    let store = db.open(limits(), now.clone()).await;
    let alice = Owner::new("alice").unwrap();
    for text in OWN_TEXTS {
        now.advance(Duration::from_secs(4 * 60));
        store
            .add(&alice, vec![NewMemory::new(*text, "notes")])
            .await
            .unwrap();
    }
    let before = rankings(&store, &alice).await;
    // The queries must find something, or an unchanged result proves nothing.
    let found = before.iter().filter(|ranking| !ranking.is_empty()).count();
    assert!(
        found >= QUERIES.len() - 1,
        "only {found} of {} queries found anything: {before:?}",
        QUERIES.len()
    );
    assert!(
        before.iter().any(|ranking| ranking.len() >= 2),
        "no query found more than one memory, so order is untested: {before:?}"
    );

    add_other_owners(&store, &now).await;

    let after = rankings(&store, &alice).await;
    for ((query, before), after) in QUERIES.iter().zip(&before).zip(&after) {
        assert_eq!(before, after, "the ranking of {query:?} changed");
    }

    // The index rebuilt from the database on open ranks the same.
    B::close(store).await;
    let reopened = db.open(limits(), now.clone()).await;
    let rebuilt = rankings(&reopened, &alice).await;
    for ((query, before), rebuilt) in QUERIES.iter().zip(&before).zip(&rebuilt) {
        assert_eq!(
            before, rebuilt,
            "the ranking of {query:?} changed on reopen"
        );
    }
}

/// Default limits, but batches of [`BATCH`] memories.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_batch = BATCH;
    limits
}

async fn rankings(store: &impl MemoryStore, owner: &Owner) -> Vec<Ranking> {
    let mut rankings = Vec::with_capacity(QUERIES.len());
    for query in QUERIES {
        let hits = store
            .search(owner, &SearchQuery::new(*query).with_limit(20))
            .await
            .unwrap();
        rankings.push(hits.iter().map(|hit| (hit.memory.id, hit.score)).collect());
    }
    rankings
}

/// Adds [`OTHER_MEMORIES`] memories over [`OTHER_OWNERS`] owners, a few
/// batches at a time so the writer groups them as it does under load.
async fn add_other_owners<S: MemoryStore + Clone>(store: &S, now: &ManualClock) {
    let per_owner = OTHER_MEMORIES / OTHER_OWNERS;
    let mut tasks = tokio::task::JoinSet::new();
    for owner in 0..OTHER_OWNERS {
        let store = store.clone();
        let texts: Vec<String> = (0..per_owner).map(|n| other_text(owner, n)).collect();
        now.advance(Duration::from_millis(1));
        tasks.spawn(async move {
            let owner = Owner::new(format!("other-{owner:03}")).unwrap();
            let mut texts = texts.into_iter().peekable();
            while texts.peek().is_some() {
                let batch: Vec<NewMemory> = texts
                    .by_ref()
                    .take(BATCH)
                    .map(|text| NewMemory::new(text, "notes"))
                    .collect();
                store.add(&owner, batch).await.unwrap();
            }
        });
        // At most four owners load at once: enough to form groups, little memory.
        if tasks.len() >= 4 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// The `n`th memory of another owner: first exact copies of all the owner's
/// texts, then copies with a counter, or the queries' words at owner-specific
/// rates, so that shared statistics would shift a lot (the counters keep
/// every text distinct, so none is taken for a near-duplicate).
fn other_text(owner: usize, n: usize) -> String {
    let words = [
        "coffee",
        "sister",
        "marathon",
        "dentist",
        "allergic",
        "peanuts",
        "boss",
        "report",
        "garden",
        "favourite",
        "colour",
        "birthday",
        "doctor",
        "August",
        "guitar",
        "tea",
    ];
    if let Some(own) = OWN_TEXTS.get(n) {
        return (*own).to_owned();
    }
    match (owner + n) % 5 {
        0 => format!("{} ({owner} {n})", OWN_TEXTS[n % OWN_TEXTS.len()]),
        1 => {
            let word = words[(owner * 7 + n) % words.len()];
            format!("{word} {word} {word} {n}")
        }
        2 => format!(
            "A much longer note about {} and {} that goes on for a while about other \
             things entirely, like trains, weather, shopping lists and meetings, number {n}.",
            words[n % words.len()],
            words[(n / 3 + owner) % words.len()]
        ),
        3 => format!("{} {n}", words[owner % words.len()]),
        _ => format!("unrelated errand {n} for owner {owner}: pick up the parcel"),
    }
}
