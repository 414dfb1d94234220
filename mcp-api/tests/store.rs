//! Behaviour of every `MemoryStore` backend, on a fixed clock: the memory
//! lifecycle, listing, search, limits, owner isolation (one test per attack),
//! FTS injection, durability and scale. Each test runs against `SqliteStore`
//! over a real SQLite file in a temporary directory (`mod sqlite` in each
//! module) and, with the `postgres` feature, against `PostgresStore` in a
//! schema of its own (`mod postgres`; see `common/backend.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/backend.rs"]
#[macro_use]
mod backend;

use std::sync::Arc;
use std::time::Duration;

use jwks_verify::ManualClock;
use mcp_api::store::{
    Access, ErrorKind, Limits, ListQuery, Memory, MemoryId, MemoryState, MemoryStore, NewMemory,
    Owner, SearchQuery, SortColumn, SortDirection, StoreError,
};
use serde_json::{Map, Value, json};

use self::backend::Backend;

const T0: i64 = 1_700_000_000_000;

/// Milliseconds in a day.
const DAY: i64 = 24 * 60 * 60 * 1000;

/// The UTC midnight starting the day of `t`.
fn day_of(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

/// A store on a fresh database of backend `B`, on a clock the test moves.
/// The store is dropped before the database.
struct Fixture<B: Backend> {
    store: B::Store,
    now: ManualClock,
    db: B,
}

impl<B: Backend> Fixture<B> {
    async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    async fn with_limits(limits: Limits) -> Self {
        let db = B::create().await;
        let now = ManualClock::at_unix_ms(T0.try_into().unwrap());
        let store = db.open(limits, now.clone()).await;
        Self { store, now, db }
    }

    fn advance(&self, millis: i64) {
        self.now
            .advance(Duration::from_millis(millis.try_into().unwrap()));
    }

    /// How many access-log entries the owner's memory `id` has.
    async fn access_log_total(&self, owner: &Owner, id: MemoryId) -> u64 {
        self.store
            .access_log(owner, id, 1, 1)
            .await
            .unwrap()
            .unwrap()
            .total
    }

    /// Adds memories one by one, three hours apart: facts saved on their own,
    /// not one burst of writes whose memories are each other's context.
    async fn add_hours_apart(&self, owner: &Owner, texts: &[&str]) {
        for text in texts {
            self.add(owner, text, &[]).await;
            self.advance(3 * 60 * 60 * 1000);
        }
    }

    /// Closes the store (all connections) and opens the same database again.
    async fn reopen(self) -> Self {
        let Self { store, now, db } = self;
        let limits = B::limits(&store).clone();
        B::close(store).await;
        let store = db.open(limits, now.clone()).await;
        Self { store, now, db }
    }

    async fn add(&self, owner: &Owner, text: &str, categories: &[&str]) -> Memory {
        self.add_from(owner, text, categories, "app-a").await
    }

    async fn add_from(&self, owner: &Owner, text: &str, categories: &[&str], app: &str) -> Memory {
        let memory = NewMemory::new(text, app).with_categories(categories.iter().copied());
        let mut added = self.store.add(owner, vec![memory]).await.unwrap();
        self.advance(1);
        added.pop().unwrap()
    }

    /// Every non-deleted memory of the owner, read without touching the access log.
    async fn all(&self, owner: &Owner) -> Vec<Memory> {
        let query = ListQuery::new()
            .with_states([
                MemoryState::Active,
                MemoryState::Paused,
                MemoryState::Archived,
            ])
            .with_sort(SortColumn::CreatedAt, SortDirection::Ascending)
            .with_page(1, 100);
        self.store.list(owner, &query).await.unwrap().items
    }

    async fn count(&self, owner: &Owner) -> u64 {
        self.store.stats(owner).await.unwrap().total_memories
    }

    /// The owner's activity from `since` as `(day, app, added, read)` rows.
    async fn activity(&self, owner: &Owner, since: i64) -> Vec<(i64, String, u64, u64)> {
        self.store
            .activity(owner, since)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.day, row.app, row.added, row.read))
            .collect()
    }

    async fn search_texts(&self, owner: &Owner, query: &str) -> Vec<String> {
        self.store
            .search(owner, &SearchQuery::new(query).with_limit(50))
            .await
            .unwrap()
            .into_iter()
            .map(|hit| hit.memory.text)
            .collect()
    }
}

fn alice() -> Owner {
    Owner::new("auth0|alice").unwrap()
}

fn bob() -> Owner {
    Owner::new("auth0|bob").unwrap()
}

fn reader() -> Access {
    Access::new("app-a", "mcp:fetch")
}

fn metadata(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("metadata must be a JSON object");
    };
    map
}

fn invalid_field(error: &StoreError) -> &'static str {
    match error.kind() {
        ErrorKind::InvalidInput { field, .. } => field,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

mod lifecycle {
    use super::*;

    async fn add_assigns_ids_timestamps_and_normalises_categories<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let new = NewMemory::new("Prefers window seats", "client-1")
            .with_metadata(metadata(json!({"source": "chat", "n": 1})))
            .with_categories([" Travel ", "TRAVEL", "preferences"]);
        let added = fixture.store.add(&alice(), vec![new]).await.unwrap();

        assert_eq!(added.len(), 1);
        let memory = &added[0];
        assert_eq!(memory.id.as_uuid().get_version_num(), 7);
        assert_eq!(memory.owner, alice());
        assert_eq!(memory.text, "Prefers window seats");
        assert_eq!(memory.metadata, metadata(json!({"source": "chat", "n": 1})));
        assert_eq!(memory.categories, ["preferences", "travel"]);
        assert_eq!(memory.app, "client-1");
        assert_eq!(memory.state, MemoryState::Active);
        assert_eq!((memory.created_at, memory.updated_at), (T0, T0));
    }

    async fn a_batch_is_returned_in_input_order_with_increasing_ids<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let batch = (0..5)
            .map(|n| NewMemory::new(format!("memory {n}"), "app-a"))
            .collect();
        let added = fixture.store.add(&alice(), batch).await.unwrap();
        let texts: Vec<_> = added.iter().map(|memory| memory.text.as_str()).collect();
        assert_eq!(
            texts,
            ["memory 0", "memory 1", "memory 2", "memory 3", "memory 4"]
        );
        // Same millisecond, yet the ids still sort in creation order.
        assert!(added.windows(2).all(|pair| pair[0].id < pair[1].id));
    }

    async fn an_empty_batch_adds_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        assert!(
            fixture
                .store
                .add(&alice(), Vec::new())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(fixture.count(&alice()).await, 0);
    }

    async fn get_returns_the_stored_memory<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let added = fixture
            .add(&alice(), "Has a cat named Miso", &["pets"])
            .await;
        let fetched = fixture
            .store
            .get(&alice(), added.id, &reader())
            .await
            .unwrap();
        assert_eq!(fetched, Some(added));
    }

    async fn get_of_an_unknown_id_is_none<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "something", &[]).await;
        let unknown: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(
            fixture
                .store
                .get(&alice(), unknown, &reader())
                .await
                .unwrap(),
            None
        );
    }

    async fn update_text_replaces_text_and_reindexes_search<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let added = fixture.add(&alice(), "Drives a red bicycle", &[]).await;
        fixture.advance(1000);
        let updated = fixture
            .store
            .update_text(&alice(), added.id, "Drives a blue scooter".into(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated.text, "Drives a blue scooter");
        assert_eq!(updated.created_at, added.created_at);
        assert_eq!(updated.updated_at, added.created_at + 1001);
        assert!(fixture.search_texts(&alice(), "bicycle").await.is_empty());
        assert_eq!(
            fixture.search_texts(&alice(), "scooter").await,
            ["Drives a blue scooter"]
        );
        fixture.db.assert_consistent().await;
    }

    async fn update_text_keeps_metadata_unless_given<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let new = NewMemory::new("v1", "app-a").with_metadata(metadata(json!({"k": 1})));
        let added = fixture
            .store
            .add(&alice(), vec![new])
            .await
            .unwrap()
            .remove(0);
        let kept = fixture
            .store
            .update_text(&alice(), added.id, "v2".into(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.metadata, metadata(json!({"k": 1})));
        let replaced = fixture
            .store
            .update_text(
                &alice(),
                added.id,
                "v3".into(),
                Some(metadata(json!({"k": 2}))),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replaced.metadata, metadata(json!({"k": 2})));
    }

    async fn state_transitions_count_only_real_changes<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let first = fixture.add(&alice(), "first", &[]).await;
        let second = fixture.add(&alice(), "second", &[]).await;
        let both = [first.id, second.id];

        assert_eq!(
            fixture
                .store
                .set_state(&alice(), &both, MemoryState::Paused)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            fixture
                .store
                .set_state(&alice(), &both, MemoryState::Paused)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            fixture
                .store
                .set_state(&alice(), &[first.id], MemoryState::Archived)
                .await
                .unwrap(),
            1
        );
        let states: Vec<_> = fixture
            .all(&alice())
            .await
            .iter()
            .map(|m| m.state)
            .collect();
        assert_eq!(states, [MemoryState::Archived, MemoryState::Paused]);

        fixture.advance(500);
        assert_eq!(
            fixture
                .store
                .set_state(&alice(), &both, MemoryState::Active)
                .await
                .unwrap(),
            2
        );
        let resumed = fixture.all(&alice()).await;
        assert!(
            resumed
                .iter()
                .all(|memory| memory.state == MemoryState::Active)
        );
        assert!(
            resumed
                .iter()
                .all(|memory| memory.updated_at == T0 + 2 + 500)
        );
    }

    async fn paused_and_archived_memories_leave_default_search<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let paused = fixture.add(&alice(), "paused kiwi", &[]).await;
        let archived = fixture.add(&alice(), "archived kiwi", &[]).await;
        fixture.add(&alice(), "active kiwi", &[]).await;
        fixture
            .store
            .set_state(&alice(), &[paused.id], MemoryState::Paused)
            .await
            .unwrap();
        fixture
            .store
            .set_state(&alice(), &[archived.id], MemoryState::Archived)
            .await
            .unwrap();

        assert_eq!(
            fixture.search_texts(&alice(), "kiwi").await,
            ["active kiwi"]
        );
        let all_states = SearchQuery::new("kiwi").with_states([
            MemoryState::Active,
            MemoryState::Paused,
            MemoryState::Archived,
        ]);
        assert_eq!(
            fixture
                .store
                .search(&alice(), &all_states)
                .await
                .unwrap()
                .len(),
            3
        );
        // Archived memories are still fetchable by id.
        assert!(
            fixture
                .store
                .get(&alice(), archived.id, &reader())
                .await
                .unwrap()
                .is_some()
        );
    }

    async fn set_state_cannot_delete<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "keep me", &[]).await;
        let error = fixture
            .store
            .set_state(&alice(), &[memory.id], MemoryState::Deleted)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "state");
        assert_eq!(fixture.all(&alice()).await, [memory]);
    }

    async fn delete_wipes_the_memory_and_removes_it_from_search<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let doomed = fixture
            .add(&alice(), "The safe code is zanzibar", &["secrets"])
            .await;
        let kept = fixture
            .add(&alice(), "The zanzibar trip was fun", &["travel"])
            .await;
        fixture
            .store
            .get(&alice(), doomed.id, &reader())
            .await
            .unwrap();

        assert_eq!(
            fixture
                .store
                .delete(&alice(), &[doomed.id, doomed.id])
                .await
                .unwrap(),
            1
        );

        assert_eq!(
            fixture
                .store
                .get(&alice(), doomed.id, &reader())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            fixture.search_texts(&alice(), "safe code zanzibar").await,
            std::slice::from_ref(&kept.text)
        );
        assert_eq!(fixture.all(&alice()).await, [kept]);
        assert_eq!(
            fixture
                .store
                .access_log(&alice(), doomed.id, 1, 10)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            fixture.store.related(&alice(), doomed.id, 5).await.unwrap(),
            None
        );
        assert_eq!(
            fixture.store.categories(&alice()).await.unwrap(),
            [("travel".to_owned(), 1)]
        );
        // Deletion is final.
        let resurrected = fixture
            .store
            .set_state(&alice(), &[doomed.id], MemoryState::Active)
            .await;
        assert_eq!(resurrected.unwrap(), 0);
        let rewritten = fixture
            .store
            .update_text(&alice(), doomed.id, "back".into(), None)
            .await;
        assert_eq!(rewritten.unwrap(), None);
        assert_eq!(
            fixture.store.delete(&alice(), &[doomed.id]).await.unwrap(),
            0
        );

        let ((text, metadata, state), leftovers) = fixture.db.raw_memory(doomed.id).await;
        assert_eq!(
            (text.as_str(), metadata.as_str(), state.as_str()),
            ("", "{}", "deleted")
        );
        assert_eq!(leftovers, 0);
        fixture.db.assert_consistent().await;
    }

    async fn delete_all_deletes_every_memory_of_the_owner_only<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        for n in 0..3 {
            fixture.add(&alice(), &format!("alice {n}"), &["a"]).await;
        }
        let bobs = fixture.add(&bob(), "bob keeps this", &["b"]).await;
        assert_eq!(fixture.store.delete_all(&alice()).await.unwrap(), 3);
        assert_eq!(fixture.store.delete_all(&alice()).await.unwrap(), 0);
        assert_eq!(fixture.count(&alice()).await, 0);
        assert!(fixture.search_texts(&alice(), "alice").await.is_empty());
        assert_eq!(fixture.all(&bob()).await, [bobs]);
        fixture.db.assert_consistent().await;
    }

    async fn data_survives_closing_and_reopening_the_file<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let kept = fixture
            .add(&alice(), "Birthday is in March", &["dates"])
            .await;
        let paused = fixture
            .add(&alice(), "Paused memory about March", &[])
            .await;
        let deleted = fixture.add(&alice(), "Deleted March memory", &[]).await;
        fixture
            .store
            .set_state(&alice(), &[paused.id], MemoryState::Paused)
            .await
            .unwrap();
        fixture.store.delete(&alice(), &[deleted.id]).await.unwrap();
        fixture
            .store
            .get(&alice(), kept.id, &reader())
            .await
            .unwrap();
        let before = fixture.all(&alice()).await;

        let fixture = fixture.reopen().await;

        assert_eq!(fixture.all(&alice()).await, before);
        assert_eq!(
            fixture.search_texts(&alice(), "march").await,
            ["Birthday is in March"]
        );
        let log = fixture
            .store
            .access_log(&alice(), kept.id, 1, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(log.total, 1);
        // New ids after reopening still sort after the old ones.
        let later = fixture.add(&alice(), "Added after reopening", &[]).await;
        assert!(later.id > kept.id);
    }

    async fn health_answers<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.store.health().await.unwrap();
    }

    async fn concurrent_writers_and_readers_all_succeed<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = fixture.store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..10 {
                    let text = format!("task {task} note {n} concurrency");
                    store
                        .add(&alice(), vec![NewMemory::new(text, "app-a")])
                        .await?;
                    store
                        .search(&alice(), &SearchQuery::new("concurrency"))
                        .await?;
                    store.list(&alice(), &ListQuery::new()).await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(fixture.count(&alice()).await, 80);
        fixture.db.assert_consistent().await;
    }

    fn methods_outside_a_tokio_runtime_fail_instead_of_panicking<B: Backend>() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};

        // Made inside a runtime (connecting needs one), used outside it.
        let fixture = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(Fixture::<B>::new());
        let mut health = pin!(fixture.store.health());
        let mut context = Context::from_waker(Waker::noop());
        let Poll::Ready(result) = health.as_mut().poll(&mut context) else {
            panic!("expected an immediate answer");
        };
        assert_eq!(result.unwrap_err().kind(), &ErrorKind::Unavailable);
    }

    backends!(
        add_assigns_ids_timestamps_and_normalises_categories,
        a_batch_is_returned_in_input_order_with_increasing_ids,
        an_empty_batch_adds_nothing,
        get_returns_the_stored_memory,
        get_of_an_unknown_id_is_none,
        update_text_replaces_text_and_reindexes_search,
        update_text_keeps_metadata_unless_given,
        state_transitions_count_only_real_changes,
        paused_and_archived_memories_leave_default_search,
        set_state_cannot_delete,
        delete_wipes_the_memory_and_removes_it_from_search,
        delete_all_deletes_every_memory_of_the_owner_only,
        data_survives_closing_and_reopening_the_file,
        health_answers,
        concurrent_writers_and_readers_all_succeed
    );

    #[test]
    fn methods_outside_a_tokio_runtime_fail_instead_of_panicking_sqlite() {
        methods_outside_a_tokio_runtime_fail_instead_of_panicking::<backend::Sqlite>();
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn methods_outside_a_tokio_runtime_fail_instead_of_panicking_postgres() {
        methods_outside_a_tokio_runtime_fail_instead_of_panicking::<backend::Postgres>();
    }
}

/// SQLite only: a file-level check (PostgreSQL's pages and WAL are the server's).
mod sqlite_files {
    use super::*;

    #[tokio::test]
    async fn deleted_text_does_not_remain_in_the_database_files() {
        let fixture = Fixture::<backend::Sqlite>::new().await;
        for n in 0..50 {
            fixture
                .add(&alice(), &format!("filler memory number {n}"), &[])
                .await;
        }
        let secret = fixture
            .add(&alice(), "password is quixoticpangolin", &[])
            .await;
        fixture.store.delete(&alice(), &[secret.id]).await.unwrap();
        let Fixture { store, db, .. } = fixture;
        drop(store);

        for file in std::fs::read_dir(db.dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let found = bytes.windows(8).any(|window| window == b"pangolin");
            assert!(!found, "deleted text left in the database files");
        }
        db.assert_consistent().await;
    }
}

mod listing {
    use super::*;

    async fn defaults_to_active_and_paused_newest_first<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let old = fixture.add(&alice(), "old", &[]).await;
        let paused = fixture.add(&alice(), "paused", &[]).await;
        let archived = fixture.add(&alice(), "archived", &[]).await;
        fixture
            .store
            .set_state(&alice(), &[paused.id], MemoryState::Paused)
            .await
            .unwrap();
        fixture
            .store
            .set_state(&alice(), &[archived.id], MemoryState::Archived)
            .await
            .unwrap();

        let page = fixture
            .store
            .list(&alice(), &ListQuery::new())
            .await
            .unwrap();
        let texts: Vec<_> = page
            .items
            .iter()
            .map(|memory| memory.text.as_str())
            .collect();
        assert_eq!(texts, ["paused", "old"]);
        assert_eq!(
            (page.total, page.page, page.size, page.pages),
            (2, 1, 20, 1)
        );
        assert_eq!(page.items[1], old);

        let archived_only = ListQuery::new().with_states([MemoryState::Archived]);
        let page = fixture.store.list(&alice(), &archived_only).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, archived.id);
    }

    async fn paginates_with_totals<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        for n in 0..25 {
            fixture.add(&alice(), &format!("note {n:02}"), &[]).await;
        }
        let page = |number| {
            ListQuery::new()
                .with_sort(SortColumn::CreatedAt, SortDirection::Ascending)
                .with_page(number, 10)
        };
        let first = fixture.store.list(&alice(), &page(1)).await.unwrap();
        assert_eq!((first.total, first.pages, first.items.len()), (25, 3, 10));
        assert_eq!(first.items[0].text, "note 00");
        let third = fixture.store.list(&alice(), &page(3)).await.unwrap();
        let texts: Vec<_> = third
            .items
            .iter()
            .map(|memory| memory.text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["note 20", "note 21", "note 22", "note 23", "note 24"]
        );
        let beyond = fixture.store.list(&alice(), &page(4)).await.unwrap();
        assert!(beyond.items.is_empty());
        assert_eq!(beyond.total, 25);
    }

    async fn sorts_by_text_app_and_update_time_in_both_directions<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let banana = fixture.add_from(&alice(), "banana", &[], "zeta").await;
        let apple = fixture.add_from(&alice(), "Apple", &[], "alpha").await;
        let cherry = fixture.add_from(&alice(), "cherry", &[], "mu").await;
        fixture.advance(100);
        fixture
            .store
            .update_text(&alice(), banana.id, "banana".into(), None)
            .await
            .unwrap();

        let store = &fixture.store;
        let order = |sort, direction| async move {
            let query = ListQuery::new().with_sort(sort, direction);
            let page = store.list(&alice(), &query).await.unwrap();
            page.items
                .into_iter()
                .map(|memory| memory.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(SortColumn::Text, SortDirection::Ascending).await,
            [apple.id, banana.id, cherry.id]
        );
        assert_eq!(
            order(SortColumn::App, SortDirection::Descending).await,
            [banana.id, cherry.id, apple.id]
        );
        assert_eq!(
            order(SortColumn::UpdatedAt, SortDirection::Descending).await,
            [banana.id, cherry.id, apple.id]
        );
        assert_eq!(
            order(SortColumn::CreatedAt, SortDirection::Descending).await,
            [cherry.id, apple.id, banana.id]
        );
    }

    async fn filters_by_any_of_the_categories<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let work = fixture.add(&alice(), "work", &["work"]).await;
        let both = fixture.add(&alice(), "both", &["work", "health"]).await;
        fixture.add(&alice(), "music", &["music"]).await;
        fixture.add(&alice(), "none", &[]).await;

        let query = ListQuery::new()
            .with_categories([" WORK", "health"])
            .with_sort(SortColumn::CreatedAt, SortDirection::Ascending);
        let page = fixture.store.list(&alice(), &query).await.unwrap();
        assert_eq!(page.items, [work, both]);
        assert_eq!(page.total, 2);
    }

    async fn filters_by_app_and_creation_time<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add_from(&alice(), "early a", &[], "app-a").await;
        fixture.advance(1000);
        let middle = fixture.add_from(&alice(), "middle a", &[], "app-a").await;
        fixture.add_from(&alice(), "middle b", &[], "app-b").await;
        fixture.advance(1000);
        fixture.add_from(&alice(), "late a", &[], "app-a").await;

        let query = ListQuery::new()
            .with_app("app-a")
            .with_created_between(Some(T0 + 500), Some(T0 + 1500));
        let page = fixture.store.list(&alice(), &query).await.unwrap();
        assert_eq!(page.items, [middle]);

        let inverted = ListQuery::new().with_created_between(Some(T0 + 1), Some(T0));
        let error = fixture.store.list(&alice(), &inverted).await.unwrap_err();
        assert_eq!(invalid_field(&error), "from");
    }

    async fn text_contains_ignores_case_and_treats_wildcards_literally<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "Battery at 100% today", &[]).await;
        fixture.add(&alice(), "Battery at 1000 mAh", &[]).await;
        fixture.add(&alice(), "file_name.txt", &[]).await;
        fixture.add(&alice(), "filename.txt", &[]).await;
        fixture.add(&alice(), r"path C:\temp", &[]).await;

        let store = &fixture.store;
        let texts = |needle: &'static str| async move {
            let query = ListQuery::new().with_text_contains(needle);
            let page = store.list(&alice(), &query).await.unwrap();
            page.items
                .into_iter()
                .map(|memory| memory.text)
                .collect::<Vec<_>>()
        };
        assert_eq!(texts("100%").await, ["Battery at 100% today"]);
        assert_eq!(texts("FILE_").await, ["file_name.txt"]);
        assert_eq!(texts(r"c:\t").await, [r"path C:\temp"]);
        assert_eq!(texts("battery").await.len(), 2);
        assert_eq!(texts("%").await.len(), 1);
    }

    async fn categories_are_counted_most_used_first<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "one", &["work", "health"]).await;
        fixture.add(&alice(), "two", &["work"]).await;
        fixture.add(&alice(), "three", &["Work", "art"]).await;
        fixture.add(&bob(), "bob", &["work", "bobs"]).await;
        let categories = fixture.store.categories(&alice()).await.unwrap();
        assert_eq!(
            categories,
            [
                ("work".to_owned(), 3),
                ("art".to_owned(), 1),
                ("health".to_owned(), 1)
            ]
        );
    }

    backends!(
        defaults_to_active_and_paused_newest_first,
        paginates_with_totals,
        sorts_by_text_app_and_update_time_in_both_directions,
        filters_by_any_of_the_categories,
        filters_by_app_and_creation_time,
        text_contains_ignores_case_and_treats_wildcards_literally,
        categories_are_counted_most_used_first
    );
}

mod search {
    use super::*;

    async fn more_matching_terms_rank_first<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add(&alice(), "I enjoy hiking on weekends", &[])
            .await;
        fixture
            .add(
                &alice(),
                "Hiking in the mountains with my dog on weekends",
                &[],
            )
            .await;
        fixture.add(&alice(), "My dog is a beagle", &[]).await;
        fixture.add(&alice(), "Nothing relevant here", &[]).await;

        let hits = fixture
            .store
            .search(
                &alice(),
                &SearchQuery::new("hiking with my dog in the mountains"),
            )
            .await
            .unwrap();
        let texts: Vec<_> = hits.iter().map(|hit| hit.memory.text.as_str()).collect();
        assert_eq!(texts[0], "Hiking in the mountains with my dog on weekends");
        // The three that match come first; a memory written in the same burst
        // may follow as context, never above them.
        let mut matching = texts[..3].to_vec();
        matching.sort_unstable();
        assert_eq!(
            matching,
            [
                "Hiking in the mountains with my dog on weekends",
                "I enjoy hiking on weekends",
                "My dog is a beagle"
            ]
        );
        assert!(
            texts[3..]
                .iter()
                .all(|text| *text == "Nothing relevant here")
        );
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
        assert!(hits.iter().all(|hit| hit.score > 0.0));
    }

    async fn facts_written_apart_in_time_are_not_each_others_context<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add_hours_apart(
                &alice(),
                &[
                    "I enjoy hiking on weekends",
                    "My dog is a beagle",
                    "Nothing relevant here",
                    "My sister lives in Lisbon",
                ],
            )
            .await;
        assert_eq!(
            fixture.search_texts(&alice(), "what breed is my dog").await,
            ["My dog is a beagle"]
        );
    }

    async fn a_question_with_no_answer_finds_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add_hours_apart(
                &alice(),
                &[
                    "I take my coffee as a flat white",
                    "My dog is a beagle called Rex",
                    "I work as a nurse at the city hospital",
                    "Allergic to peanuts",
                ],
            )
            .await;
        assert!(
            fixture
                .search_texts(&alice(), "What is my blood type?")
                .await
                .is_empty()
        );
        // Only everyday words in common: nothing either.
        assert!(
            fixture
                .search_texts(&alice(), "What do I have and which is it?")
                .await
                .is_empty()
        );
        assert_eq!(
            fixture
                .search_texts(&alice(), "What's my dog's name?")
                .await,
            ["My dog is a beagle called Rex"]
        );
    }

    async fn possessives_do_not_favour_short_memories_full_of_them<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add(&alice(), "Mum's friend's cat's bowl", &[])
            .await;
        fixture.advance(2 * 60 * 60 * 1000);
        fixture
            .add(&alice(), "The user's favourite colour is green", &[])
            .await;
        assert_eq!(
            fixture
                .search_texts(&alice(), "What's the user's favorite color?")
                .await,
            ["The user's favourite colour is green"]
        );
    }

    async fn snippets_highlight_matched_terms<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let long = format!(
            "{} The user is allergic to shellfish and peanuts. {}",
            "Lorem ipsum dolor sit amet. ".repeat(10),
            "Consectetur adipiscing elit. ".repeat(10)
        );
        fixture.add(&alice(), &long, &[]).await;
        let hits = fixture
            .store
            .search(&alice(), &SearchQuery::new("PEANUTS, shellfish!"))
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        let snippet = &hits[0].snippet;
        assert!(snippet.contains("**shellfish**"), "{snippet}");
        assert!(snippet.contains("**peanuts**"), "{snippet}");
        assert!(snippet.contains('…'), "{snippet}");
        assert!(snippet.len() < long.len());
    }

    async fn stemming_and_diacritics_help_recall<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "Went running at the café", &[]).await;
        assert_eq!(fixture.search_texts(&alice(), "run").await.len(), 1);
        assert_eq!(fixture.search_texts(&alice(), "cafe").await.len(), 1);
        assert_eq!(fixture.search_texts(&alice(), "RUNS").await.len(), 1);
    }

    async fn a_query_without_words_finds_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "anything at all", &[]).await;
        for query in ["", "   ", "!!! ??? ...", "\"\"", "*"] {
            assert!(
                fixture.search_texts(&alice(), query).await.is_empty(),
                "{query:?}"
            );
        }
    }

    async fn filters_by_category_and_app<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add_from(&alice(), "lemon tart recipe", &["food"], "app-a")
            .await;
        fixture
            .add_from(&alice(), "lemon tree care", &["garden"], "app-b")
            .await;
        let food = SearchQuery::new("lemon").with_categories(["Food"]);
        let hits = fixture.store.search(&alice(), &food).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].memory.text, "lemon tart recipe");
        let from_b = SearchQuery::new("lemon").with_app("app-b");
        let hits = fixture.store.search(&alice(), &from_b).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].memory.text, "lemon tree care");
    }

    async fn respects_the_limit<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        for n in 0..12 {
            fixture
                .add(&alice(), &format!("orange number {n}"), &[])
                .await;
        }
        let hits = fixture
            .store
            .search(&alice(), &SearchQuery::new("orange").with_limit(5))
            .await;
        assert_eq!(hits.unwrap().len(), 5);
    }

    /// FTS5 query syntax in user text: never an error, never another owner's data.
    async fn fts_syntax_in_the_query_is_never_interpreted<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let mine = fixture.add(&alice(), "my note about gardens", &[]).await;
        fixture
            .add(
                &bob(),
                "bob secret owner id text NEAR OR AND NOT gardens",
                &[],
            )
            .await;
        // Bob's owner row id is 2; these try to reach it or widen the match.
        let payloads = [
            "\"",
            "\"\"\"",
            "garden\"s",
            "*",
            "garden*",
            "NEAR(",
            "NEAR(secret gardens, 10)",
            "OR",
            "gardens OR secret",
            "AND",
            "NOT gardens",
            "-gardens",
            "- secret",
            ":",
            "owner_id:2",
            "owner_id : \"2\"",
            "owner_id:2 OR owner_id:1",
            "{owner_id text}: secret",
            "text:secret",
            "secret) OR (owner_id:2",
            "(((",
            ")))",
            "(gardens",
            "gardens)",
            "^secret",
            "secret + bob",
            "'; DROP TABLE memories; --",
            "\\\"secret",
            "%_%",
            "\u{0}",
        ];
        for payload in payloads {
            let hits = fixture
                .store
                .search(&alice(), &SearchQuery::new(payload).with_limit(50))
                .await
                .unwrap_or_else(|error| panic!("{payload:?} failed: {error}"));
            for hit in &hits {
                assert_eq!(hit.memory.owner, alice(), "{payload:?}");
                assert_eq!(hit.memory.id, mine.id, "{payload:?}");
            }
        }
        let long = "\"(".repeat(512);
        assert!(fixture.search_texts(&alice(), &long).await.is_empty());
        // Words only Bob has never find anything for Alice.
        assert!(
            fixture
                .search_texts(&alice(), "secret bob NEAR")
                .await
                .is_empty()
        );
        assert_eq!(fixture.search_texts(&bob(), "secret").await.len(), 1);
        fixture.db.assert_consistent().await;
    }

    /// 10,000 memories for one owner among 10,000 of other owners: search
    /// still returns exactly the right ones. (Speed belongs in a benchmark.)
    async fn finds_the_right_memories_among_ten_thousand_and_other_owners<B: Backend>() {
        {
            let fixture = Fixture::<B>::new().await;
            let others: Vec<Owner> = (0..20)
                .map(|n| Owner::new(format!("other-{n}")).unwrap())
                .collect();
            for batch in 0..100 {
                let memories = (0..100)
                    .map(|n| {
                        let i = batch * 100 + n;
                        let needle = if i % 1000 == 7 { " aurora" } else { "" };
                        NewMemory::new(
                            format!("note {i} about topic{} gardens{needle}", i % 50),
                            "app-a",
                        )
                    })
                    .collect();
                fixture.store.add(&alice(), memories).await.unwrap();
            }
            for (n, other) in others.iter().enumerate() {
                for _ in 0..5 {
                    let memories = (0..100)
                        .map(|i| {
                            NewMemory::new(format!("other {n} {i} aurora gardens topic7"), "app-x")
                        })
                        .collect();
                    fixture.store.add(other, memories).await.unwrap();
                }
            }
            assert_eq!(fixture.count(&alice()).await, 10_000);

            // The ten that have the word come first; memories written in the
            // same burst may follow them as context.
            let hits = fixture
                .store
                .search(&alice(), &SearchQuery::new("aurora").with_limit(50))
                .await
                .unwrap();
            assert!(
                hits[10..]
                    .iter()
                    .all(|hit| !hit.memory.text.contains("aurora"))
            );
            let mut texts: Vec<_> = hits[..10]
                .iter()
                .map(|hit| hit.memory.text.clone())
                .collect();
            texts.sort();
            let mut expected: Vec<_> = (0..10)
                .map(|k| {
                    let i = k * 1000 + 7;
                    format!("note {i} about topic{} gardens aurora", i % 50)
                })
                .collect();
            expected.sort();
            assert_eq!(texts, expected);

            let hits = fixture
                .store
                .search(&alice(), &SearchQuery::new("topic7 aurora").with_limit(50))
                .await
                .unwrap();
            assert_eq!(hits.len(), 50);
            assert!(hits.iter().all(|hit| hit.memory.owner == alice()));
            // The ten with both words rank above those with one.
            assert!(
                hits[..10]
                    .iter()
                    .all(|hit| hit.memory.text.contains("aurora"))
            );
            assert!(
                hits[10..]
                    .iter()
                    .all(|hit| !hit.memory.text.contains("aurora"))
            );

            let other = &others[3];
            let theirs = fixture
                .store
                .search(other, &SearchQuery::new("gardens").with_limit(50))
                .await
                .unwrap();
            assert_eq!(theirs.len(), 50);
            assert!(theirs.iter().all(|hit| hit.memory.owner == *other));
        }
    }

    backends!(
        more_matching_terms_rank_first,
        facts_written_apart_in_time_are_not_each_others_context,
        a_question_with_no_answer_finds_nothing,
        possessives_do_not_favour_short_memories_full_of_them,
        snippets_highlight_matched_terms,
        stemming_and_diacritics_help_recall,
        a_query_without_words_finds_nothing,
        filters_by_category_and_app,
        respects_the_limit,
        fts_syntax_in_the_query_is_never_interpreted,
        finds_the_right_memories_among_ten_thousand_and_other_owners
    );
}

mod related {
    use super::*;

    async fn most_shared_categories_first_then_newest<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let subject = fixture.add(&alice(), "subject", &["a", "b", "c"]).await;
        let one_old = fixture.add(&alice(), "one shared, older", &["a"]).await;
        let two = fixture.add(&alice(), "two shared", &["a", "b", "x"]).await;
        let one_new = fixture.add(&alice(), "one shared, newer", &["c"]).await;
        fixture.add(&alice(), "unrelated", &["x"]).await;
        let archived = fixture
            .add(&alice(), "archived, three shared", &["a", "b", "c"])
            .await;
        fixture
            .store
            .set_state(&alice(), &[archived.id], MemoryState::Archived)
            .await
            .unwrap();
        fixture
            .add(&bob(), "bob, three shared", &["a", "b", "c"])
            .await;

        let related = fixture
            .store
            .related(&alice(), subject.id, 10)
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<_> = related.iter().map(|memory| memory.id).collect();
        assert_eq!(ids, [two.id, one_new.id, one_old.id]);

        let limited = fixture
            .store
            .related(&alice(), subject.id, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(limited.len(), 1);
    }

    async fn without_categories_falls_back_to_similar_text<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let subject = fixture
            .add(&alice(), "Learning to play the cello", &[])
            .await;
        let similar = fixture
            .add(&alice(), "Cello lessons on Tuesdays", &["music"])
            .await;
        fixture.add(&alice(), "Bought new shoes", &[]).await;
        fixture.add(&bob(), "Bob plays the cello too", &[]).await;

        let related = fixture
            .store
            .related(&alice(), subject.id, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(related, [similar]);
    }

    async fn unknown_id_is_none<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "x", &[]).await;
        let unknown: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        assert_eq!(
            fixture.store.related(&alice(), unknown, 5).await.unwrap(),
            None
        );
    }

    backends!(
        most_shared_categories_first_then_newest,
        without_categories_falls_back_to_similar_text,
        unknown_id_is_none
    );
}

mod access_and_stats {
    use super::*;

    async fn reads_are_logged_and_paged_newest_first<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "logged", &[]).await;
        for (app, via) in [
            ("app-a", "mcp:fetch"),
            ("app-b", "rest:get"),
            ("app-c", "mcp:fetch"),
        ] {
            fixture.advance(10);
            fixture
                .store
                .get(&alice(), memory.id, &Access::new(app, via))
                .await
                .unwrap();
        }
        let first = fixture
            .store
            .access_log(&alice(), memory.id, 1, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.total, first.pages), (3, 2));
        let apps: Vec<_> = first.items.iter().map(|entry| entry.app.as_str()).collect();
        assert_eq!(apps, ["app-c", "app-b"]);
        assert_eq!(first.items[0].accessed_at, T0 + 1 + 30);
        assert_eq!(first.items[1].via, "rest:get");
        assert!(first.items.iter().all(|entry| entry.memory_id == memory.id));
        let second = fixture
            .store
            .access_log(&alice(), memory.id, 2, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.items[0].app, "app-a");
    }

    async fn search_recorded_logs_each_hit_once_for_its_owner_only<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let coffee = fixture.add(&alice(), "flat white every morning", &[]).await;
        let tea = fixture.add(&alice(), "green tea after lunch", &[]).await;
        let bobs = fixture.add(&bob(), "flat white for bob", &[]).await;
        let access = Access::new("app-s", "mcp:search_memory");
        let hits = fixture
            .store
            .search_recorded(&alice(), &SearchQuery::new("flat white"), &access)
            .await
            .unwrap();
        assert_eq!(hits[0].memory.id, coffee.id);
        let log = fixture
            .store
            .access_log(&alice(), coffee.id, 1, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (log.total, log.items[0].via.as_str()),
            (1, "mcp:search_memory")
        );
        // The tea memory is logged exactly when it was shown (as the coffee's context).
        let tea_shown = u64::from(hits.iter().any(|hit| hit.memory.id == tea.id));
        assert_eq!(fixture.access_log_total(&alice(), tea.id).await, tea_shown);
        assert_eq!(fixture.access_log_total(&bob(), bobs.id).await, 0);
        let malformed = Access::new("", "mcp:search_memory");
        let refused = fixture
            .store
            .search_recorded(&alice(), &SearchQuery::new("flat white"), &malformed)
            .await;
        assert!(refused.is_err());
    }

    async fn record_access_skips_unknown_foreign_and_deleted_ids<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let mine = fixture.add(&alice(), "mine", &[]).await;
        let deleted = fixture.add(&alice(), "deleted", &[]).await;
        let theirs = fixture.add(&bob(), "theirs", &[]).await;
        fixture.store.delete(&alice(), &[deleted.id]).await.unwrap();
        let unknown: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();

        let access = Access::new("app-s", "mcp:search");
        let recorded = fixture
            .store
            .record_access(
                &alice(),
                &[mine.id, deleted.id, theirs.id, unknown],
                &access,
            )
            .await
            .unwrap();
        assert_eq!(recorded, 1);
        let log = fixture
            .store
            .access_log(&alice(), mine.id, 1, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(log.items[0].via, "mcp:search");
        let bobs_log = fixture
            .store
            .access_log(&bob(), theirs.id, 1, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bobs_log.total, 0);
    }

    async fn stats_count_created_and_accessed_memories_per_app<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let a1 = fixture.add_from(&alice(), "a1", &[], "app-a").await;
        let a2 = fixture.add_from(&alice(), "a2", &[], "app-a").await;
        let b1 = fixture.add_from(&alice(), "b1", &[], "app-b").await;
        let gone = fixture.add_from(&alice(), "gone", &[], "app-b").await;
        fixture.add_from(&bob(), "bob", &[], "app-a").await;
        let reader_c = Access::new("app-c", "rest:get");
        fixture.store.get(&alice(), a1.id, &reader_c).await.unwrap();
        fixture.store.get(&alice(), a1.id, &reader_c).await.unwrap();
        fixture.store.get(&alice(), b1.id, &reader_c).await.unwrap();
        fixture.store.get(&alice(), a2.id, &reader()).await.unwrap();
        fixture
            .store
            .get(&alice(), gone.id, &reader())
            .await
            .unwrap();
        fixture.store.delete(&alice(), &[gone.id]).await.unwrap();

        let stats = fixture.store.stats(&alice()).await.unwrap();
        assert_eq!(stats.total_memories, 3);
        assert_eq!(stats.total_apps, 3);
        let rows: Vec<_> = stats
            .apps
            .iter()
            .map(|app| {
                (
                    app.app.as_str(),
                    app.memories_created,
                    app.memories_accessed,
                )
            })
            .collect();
        assert_eq!(rows, [("app-a", 2, 1), ("app-b", 1, 0), ("app-c", 0, 2)]);

        let nobody = Owner::new("never-wrote").unwrap();
        let empty = fixture.store.stats(&nobody).await.unwrap();
        assert_eq!((empty.total_memories, empty.total_apps), (0, 0));
    }

    backends!(
        reads_are_logged_and_paged_newest_first,
        search_recorded_logs_each_hit_once_for_its_owner_only,
        record_access_skips_unknown_foreign_and_deleted_ids,
        stats_count_created_and_accessed_memories_per_app
    );
}

/// What each app did per UTC day, and when it was last used.
mod activity {
    use super::*;

    /// T0 is 22:13:20 UTC; two hours later is the next UTC day.
    const TO_NEXT_DAY: i64 = 2 * 60 * 60 * 1000;

    async fn counts_additions_and_reads_per_utc_day_and_app<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let store = &fixture.store;
        let tea = fixture.add_from(&alice(), "green tea", &[], "app-a").await;
        let bike = fixture.add_from(&alice(), "red bike", &[], "app-a").await;
        let piano = fixture
            .add_from(&alice(), "piano lessons", &[], "app-b")
            .await;
        store
            .get(&alice(), tea.id, &Access::new("app-c", "rest:get"))
            .await
            .unwrap();
        let recorded = store
            .record_access(&alice(), &[tea.id, bike.id], &reader())
            .await
            .unwrap();
        assert_eq!(recorded, 2);
        let hits = store
            .search_recorded(
                &alice(),
                &SearchQuery::new("piano"),
                &Access::new("app-s", "mcp:search_memory"),
            )
            .await
            .unwrap();
        assert!(hits.iter().any(|hit| hit.memory.id == piano.id));
        let searched = hits.len() as u64;

        fixture.advance(TO_NEXT_DAY);
        fixture.add_from(&alice(), "oat milk", &[], "app-b").await;
        for _ in 0..2 {
            store
                .get(&alice(), piano.id, &Access::new("app-c", "rest:get"))
                .await
                .unwrap();
        }

        let (day0, day1) = (day_of(T0), day_of(T0) + DAY);
        assert_eq!(day_of(T0 + TO_NEXT_DAY), day1);
        let expected = vec![
            (day0, "app-a".to_owned(), 2, 2),
            (day0, "app-b".to_owned(), 1, 0),
            (day0, "app-c".to_owned(), 0, 1),
            (day0, "app-s".to_owned(), 0, searched),
            (day1, "app-b".to_owned(), 1, 0),
            (day1, "app-c".to_owned(), 0, 2),
        ];
        assert_eq!(fixture.activity(&alice(), day0).await, expected);
        assert_eq!(fixture.activity(&alice(), day1).await, expected[4..]);
        assert_eq!(fixture.activity(&alice(), day1 + DAY).await, []);
    }

    async fn since_is_inclusive_to_the_millisecond<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "written at T0", &[]).await;
        assert_eq!(
            fixture.activity(&alice(), T0).await,
            [(day_of(T0), "app-a".to_owned(), 1, 0)]
        );
        assert_eq!(fixture.activity(&alice(), T0 + 1).await, []);
    }

    async fn deleted_memories_and_their_reads_are_not_counted<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let store = &fixture.store;
        let kept = fixture.add(&alice(), "kept", &[]).await;
        let gone = fixture.add(&alice(), "gone", &[]).await;
        let other = fixture.add_from(&alice(), "other", &[], "app-b").await;
        let reader_c = Access::new("app-c", "rest:get");
        store.get(&alice(), kept.id, &reader_c).await.unwrap();
        store.get(&alice(), gone.id, &reader_c).await.unwrap();
        store.get(&alice(), gone.id, &reader()).await.unwrap();
        store.delete(&alice(), &[gone.id, other.id]).await.unwrap();

        let day = day_of(T0);
        assert_eq!(
            fixture.activity(&alice(), day).await,
            [
                (day, "app-a".to_owned(), 1, 0),
                (day, "app-c".to_owned(), 0, 1)
            ]
        );
        store.delete_all(&alice()).await.unwrap();
        assert_eq!(fixture.activity(&alice(), day).await, []);
    }

    async fn reaches_back_at_most_400_days_before_today<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "long ago", &[]).await;
        let day0 = day_of(T0);
        // Today is 400 days after T0's day: T0's day is still in reach.
        fixture.advance(day0 + 400 * DAY - T0);
        fixture.add(&alice(), "today", &[]).await;
        assert_eq!(
            fixture.activity(&alice(), i64::MIN).await,
            [
                (day0, "app-a".to_owned(), 1, 0),
                (day0 + 400 * DAY, "app-a".to_owned(), 1, 0)
            ]
        );
        // One day later it is not, whatever `since` asks for.
        fixture.advance(DAY);
        assert_eq!(
            fixture.activity(&alice(), 0).await,
            [(day0 + 400 * DAY, "app-a".to_owned(), 1, 0)]
        );
        assert_eq!(mcp_api::store::MAX_ACTIVITY_DAYS, 400);
    }

    async fn last_used_at_is_the_latest_write_or_read<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let store = &fixture.store;
        let written = fixture.add_from(&alice(), "a writes", &[], "app-a").await;
        fixture.advance(100);
        let by_b = fixture.add_from(&alice(), "b writes", &[], "app-b").await;
        fixture.advance(100);
        // app-a reads after it wrote; app-c only reads.
        let read_at = T0 + 202;
        store.get(&alice(), by_b.id, &reader()).await.unwrap();
        store
            .record_access(&alice(), &[written.id], &Access::new("app-c", "mcp:search"))
            .await
            .unwrap();
        // A later write of app-b that is deleted does not count.
        fixture.advance(100);
        let gone = fixture.add_from(&alice(), "b again", &[], "app-b").await;
        store.delete(&alice(), &[gone.id]).await.unwrap();
        // Bob's use of app-a is not Alice's.
        fixture.advance(100);
        fixture.add_from(&bob(), "bob writes", &[], "app-a").await;

        let stats = store.stats(&alice()).await.unwrap();
        let last_used: Vec<_> = stats
            .apps
            .iter()
            .map(|app| (app.app.as_str(), app.last_used_at))
            .collect();
        assert_eq!(
            last_used,
            [
                ("app-a", Some(read_at)),
                ("app-b", Some(by_b.created_at)),
                ("app-c", Some(read_at)),
            ]
        );
        assert_eq!(by_b.created_at, T0 + 101);
        let bobs = store.stats(&bob()).await.unwrap();
        assert_eq!(bobs.apps[0].last_used_at, Some(T0 + 403));
    }

    backends!(
        counts_additions_and_reads_per_utc_day_and_app,
        since_is_inclusive_to_the_millisecond,
        deleted_memories_and_their_reads_are_not_counted,
        reaches_back_at_most_400_days_before_today,
        last_used_at_is_the_latest_write_or_read
    );
}

/// Every limit: an `InvalidInput` naming the field, and nothing written.
mod limits {
    use super::*;

    async fn assert_rejected_without_writes<B: Backend>(
        fixture: &Fixture<B>,
        memories: Vec<NewMemory>,
        field: &str,
    ) {
        let before = fixture.all(&alice()).await;
        let error = fixture.store.add(&alice(), memories).await.unwrap_err();
        assert_eq!(invalid_field(&error), field);
        assert_eq!(fixture.all(&alice()).await, before);
    }

    fn valid(n: usize) -> NewMemory {
        NewMemory::new(format!("valid memory {n}"), "app-a")
    }

    async fn one_bad_memory_rejects_the_whole_batch<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture.add(&alice(), "existing", &[]).await;
        let limits = Limits::default();
        let oversized = [
            (
                NewMemory::new("x".repeat(limits.max_text_bytes + 1), "app-a"),
                "text",
            ),
            (NewMemory::new("   ", "app-a"), "text"),
            (NewMemory::new("nul\0byte", "app-a"), "text"),
            (
                valid(9).with_metadata(metadata(
                    json!({"blob": "x".repeat(limits.max_metadata_bytes)}),
                )),
                "metadata",
            ),
            (
                valid(9).with_categories((0..=limits.max_categories).map(|n| format!("c{n}"))),
                "categories",
            ),
            (
                valid(9).with_categories(["x".repeat(limits.max_category_chars + 1)]),
                "categories",
            ),
            (valid(9).with_categories([" "]), "categories"),
            (NewMemory::new("bad app", ""), "app"),
            (NewMemory::new("bad app", "client\nid"), "app"),
            (NewMemory::new("bad app", "c".repeat(256)), "app"),
        ];
        for (bad, field) in oversized {
            assert_rejected_without_writes(&fixture, vec![valid(1), bad, valid(2)], field).await;
        }
        assert_eq!(fixture.count(&alice()).await, 1);
    }

    async fn a_batch_over_the_limit_writes_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let too_many = (0..=Limits::default().max_batch).map(valid).collect();
        assert_rejected_without_writes(&fixture, too_many, "memories").await;
        assert_eq!(fixture.count(&alice()).await, 0);
        let just_enough = (0..Limits::default().max_batch).map(valid).collect();
        assert_eq!(
            fixture
                .store
                .add(&alice(), just_enough)
                .await
                .unwrap()
                .len(),
            100
        );
    }

    async fn id_batches_over_the_limit_change_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "stays active", &[]).await;
        let ids = vec![memory.id; Limits::default().max_batch + 1];

        let error = fixture.store.delete(&alice(), &ids).await.unwrap_err();
        assert_eq!(invalid_field(&error), "ids");
        let error = fixture
            .store
            .set_state(&alice(), &ids, MemoryState::Paused)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "ids");
        let error = fixture
            .store
            .record_access(&alice(), &ids, &reader())
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "ids");

        assert_eq!(fixture.all(&alice()).await, std::slice::from_ref(&memory));
        assert_eq!(fixture.access_log_total(&alice(), memory.id).await, 0);
    }

    async fn oversized_updates_change_nothing<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "original", &[]).await;
        let limits = Limits::default();
        let error = fixture
            .store
            .update_text(
                &alice(),
                memory.id,
                "x".repeat(limits.max_text_bytes + 1),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "text");
        let big = metadata(json!({"blob": "x".repeat(limits.max_metadata_bytes)}));
        let error = fixture
            .store
            .update_text(&alice(), memory.id, "fine".into(), Some(big))
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "metadata");
        assert_eq!(fixture.all(&alice()).await, [memory]);
    }

    async fn list_and_search_parameters_are_bounded<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let store = &fixture.store;
        let owner = alice();
        let list_error = |query: ListQuery| async move {
            invalid_field(&store.list(&alice(), &query).await.unwrap_err())
        };
        assert_eq!(list_error(ListQuery::new().with_page(0, 10)).await, "page");
        assert_eq!(list_error(ListQuery::new().with_page(1, 0)).await, "size");
        assert_eq!(list_error(ListQuery::new().with_page(1, 101)).await, "size");
        assert_eq!(list_error(ListQuery::new().with_states([])).await, "states");
        assert_eq!(
            list_error(ListQuery::new().with_states([MemoryState::Deleted])).await,
            "states"
        );
        assert_eq!(
            list_error(ListQuery::new().with_text_contains("x".repeat(1025))).await,
            "text_contains"
        );
        assert_eq!(
            list_error(ListQuery::new().with_categories((0..33).map(|n| n.to_string()))).await,
            "categories"
        );
        assert!(
            store
                .list(&owner, &ListQuery::new().with_page(1, 100))
                .await
                .is_ok()
        );

        let search_error = |query: SearchQuery| async move {
            invalid_field(&store.search(&alice(), &query).await.unwrap_err())
        };
        assert_eq!(
            search_error(SearchQuery::new("x".repeat(1025))).await,
            "query"
        );
        assert_eq!(
            search_error(SearchQuery::new("x").with_limit(0)).await,
            "limit"
        );
        assert_eq!(
            search_error(SearchQuery::new("x").with_limit(51)).await,
            "limit"
        );
        assert_eq!(
            search_error(SearchQuery::new("x").with_states([MemoryState::Deleted])).await,
            "states"
        );
        assert!(
            store
                .search(&owner, &SearchQuery::new("x".repeat(1024)).with_limit(50))
                .await
                .is_ok()
        );

        let memory = fixture.add(&owner, "m", &[]).await;
        let error = store
            .access_log(&owner, memory.id, 1, 101)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "size");
        let error = store.related(&owner, memory.id, 51).await.unwrap_err();
        assert_eq!(invalid_field(&error), "limit");
        let error = store
            .get(&owner, memory.id, &Access::new("app", "not ascii é"))
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "via");
        let log = store
            .access_log(&owner, memory.id, 1, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(log.total, 0);
    }

    async fn custom_limits_are_enforced<B: Backend>() {
        let mut limits = Limits::default();
        limits.max_text_bytes = 10;
        let fixture = Fixture::<B>::with_limits(limits).await;
        let store = &fixture.store;
        assert_eq!(B::limits(store).max_text_bytes, 10);
        let error = store
            .add(&alice(), vec![NewMemory::new("eleven byte", "app-a")])
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&error), "text");
        assert!(
            store
                .add(&alice(), vec![NewMemory::new("ten bytes!", "app-a")])
                .await
                .is_ok()
        );
    }

    backends!(
        one_bad_memory_rejects_the_whole_batch,
        a_batch_over_the_limit_writes_nothing,
        id_batches_over_the_limit_change_nothing,
        oversized_updates_change_nothing,
        list_and_search_parameters_are_bounded,
        custom_limits_are_enforced
    );
}

/// Owner B attacking owner A's memory through every method. After each
/// attack, A's memory, categories, search and access log are unchanged.
mod isolation {
    use super::*;

    struct Victim<B: Backend> {
        fixture: Fixture<B>,
        memory: Memory,
    }

    async fn victim<B: Backend>() -> Victim<B> {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture
            .add(&alice(), "Alice's bank PIN is 4921", &["secrets"])
            .await;
        fixture
            .add(&bob(), "Bob's own note about secrets", &["secrets"])
            .await;
        Victim { fixture, memory }
    }

    impl<B: Backend> Victim<B> {
        async fn assert_untouched(&self) {
            let store = &self.fixture.store;
            assert_eq!(
                self.fixture.all(&alice()).await,
                std::slice::from_ref(&self.memory)
            );
            assert_eq!(
                self.fixture.search_texts(&alice(), "bank pin").await,
                std::slice::from_ref(&self.memory.text)
            );
            let log = store
                .access_log(&alice(), self.memory.id, 1, 10)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(log.total, 0);
            assert_eq!(
                store.categories(&alice()).await.unwrap(),
                [("secrets".to_owned(), 1)]
            );
            self.fixture.db.assert_consistent().await;
        }
    }

    async fn owner_b_cannot_fetch_owner_a_memory_by_id<B: Backend>() {
        let victim = victim::<B>().await;
        let fetched = victim
            .fixture
            .store
            .get(&bob(), victim.memory.id, &reader())
            .await;
        assert_eq!(fetched.unwrap(), None);
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_list_owner_a_memories<B: Backend>() {
        let victim = victim::<B>().await;
        let query = ListQuery::new()
            .with_states([
                MemoryState::Active,
                MemoryState::Paused,
                MemoryState::Archived,
            ])
            .with_text_contains("PIN");
        let page = victim.fixture.store.list(&bob(), &query).await.unwrap();
        assert_eq!(page.total, 0);
        assert!(page.items.is_empty());
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_find_owner_a_memory_by_search<B: Backend>() {
        let victim = victim::<B>().await;
        let hits = victim
            .fixture
            .store
            .search(&bob(), &SearchQuery::new("alice bank PIN 4921"))
            .await;
        assert!(hits.unwrap().is_empty());
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_update_owner_a_memory<B: Backend>() {
        let victim = victim::<B>().await;
        let updated = victim
            .fixture
            .store
            .update_text(&bob(), victim.memory.id, "hacked".into(), Some(Map::new()))
            .await;
        assert_eq!(updated.unwrap(), None);
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_pause_or_archive_owner_a_memory<B: Backend>() {
        let victim = victim::<B>().await;
        for state in [MemoryState::Paused, MemoryState::Archived] {
            let changed = victim
                .fixture
                .store
                .set_state(&bob(), &[victim.memory.id], state)
                .await;
            assert_eq!(changed.unwrap(), 0);
        }
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_delete_owner_a_memory<B: Backend>() {
        let victim = victim::<B>().await;
        let deleted = victim
            .fixture
            .store
            .delete(&bob(), &[victim.memory.id])
            .await;
        assert_eq!(deleted.unwrap(), 0);
        victim.assert_untouched().await;
    }

    async fn owner_b_delete_all_does_not_reach_owner_a<B: Backend>() {
        let victim = victim::<B>().await;
        assert_eq!(victim.fixture.store.delete_all(&bob()).await.unwrap(), 1);
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_read_owner_a_access_log<B: Backend>() {
        let victim = victim::<B>().await;
        let log = victim
            .fixture
            .store
            .access_log(&bob(), victim.memory.id, 1, 10)
            .await;
        assert_eq!(log.unwrap(), None);
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_write_into_owner_a_access_log<B: Backend>() {
        let victim = victim::<B>().await;
        let recorded = victim
            .fixture
            .store
            .record_access(&bob(), &[victim.memory.id], &reader())
            .await;
        assert_eq!(recorded.unwrap(), 0);
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_get_related_of_owner_a_memory<B: Backend>() {
        let victim = victim::<B>().await;
        let related = victim
            .fixture
            .store
            .related(&bob(), victim.memory.id, 10)
            .await;
        assert_eq!(related.unwrap(), None);
        victim.assert_untouched().await;
    }

    async fn owner_b_related_never_includes_owner_a_memories<B: Backend>() {
        let victim = victim::<B>().await;
        let bobs = victim.fixture.all(&bob()).await.remove(0);
        let related = victim
            .fixture
            .store
            .related(&bob(), bobs.id, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(related.is_empty());
        let bob_plain = victim
            .fixture
            .add(&bob(), "what is the bank PIN", &[])
            .await;
        let related = victim
            .fixture
            .store
            .related(&bob(), bob_plain.id, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(related.iter().all(|memory| memory.owner == bob()));
        assert!(related.iter().all(|memory| memory.id != victim.memory.id));
        victim.assert_untouched().await;
    }

    async fn owner_b_cannot_see_owner_a_categories_or_stats<B: Backend>() {
        let victim = victim::<B>().await;
        let store = &victim.fixture.store;
        assert_eq!(
            store.categories(&bob()).await.unwrap(),
            [("secrets".to_owned(), 1)]
        );
        let stats = store.stats(&bob()).await.unwrap();
        assert_eq!(stats.total_memories, 1);
        victim.assert_untouched().await;
    }

    async fn activity_never_shows_another_owners_apps<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let alices = fixture
            .add_from(&alice(), "Alice's diary", &[], "alice-writer")
            .await;
        let bobs = fixture
            .add_from(&bob(), "Bob's list", &[], "bob-writer")
            .await;
        let store = &fixture.store;
        let alice_reader = Access::new("alice-reader", "mcp:fetch");
        store.get(&alice(), alices.id, &alice_reader).await.unwrap();
        // Bob's apps name Alice's memory: nothing is read or recorded.
        let bob_reader = Access::new("bob-reader", "mcp:fetch");
        assert_eq!(
            store.get(&bob(), alices.id, &bob_reader).await.unwrap(),
            None
        );
        let recorded = store
            .record_access(&bob(), &[alices.id], &bob_reader)
            .await
            .unwrap();
        assert_eq!(recorded, 0);
        store
            .search_recorded(&bob(), &SearchQuery::new("diary"), &bob_reader)
            .await
            .unwrap();
        store.get(&bob(), bobs.id, &bob_reader).await.unwrap();

        let day = day_of(T0);
        assert_eq!(
            fixture.activity(&alice(), i64::MIN).await,
            [
                (day, "alice-reader".to_owned(), 0, 1),
                (day, "alice-writer".to_owned(), 1, 0),
            ]
        );
        assert_eq!(
            fixture.activity(&bob(), i64::MIN).await,
            [
                (day, "bob-reader".to_owned(), 0, 1),
                (day, "bob-writer".to_owned(), 1, 0),
            ]
        );
        let stranger = Owner::new("auth0|carol").unwrap();
        assert_eq!(fixture.activity(&stranger, i64::MIN).await, []);
        fixture.db.assert_consistent().await;
    }

    async fn look_alike_subjects_are_different_owners<B: Backend>() {
        let victim = victim::<B>().await;
        for subject in [
            "auth0|Alice",
            "auth0|alice ",
            " auth0|alice",
            "auth0|alicé",
            "auth0",
        ] {
            let impostor = Owner::new(subject).unwrap();
            let fetched = victim
                .fixture
                .store
                .get(&impostor, victim.memory.id, &reader())
                .await;
            assert_eq!(fetched.unwrap(), None, "{subject:?}");
            assert!(
                victim
                    .fixture
                    .search_texts(&impostor, "bank pin")
                    .await
                    .is_empty()
            );
        }
        victim.assert_untouched().await;
    }

    backends!(
        owner_b_cannot_fetch_owner_a_memory_by_id,
        owner_b_cannot_list_owner_a_memories,
        owner_b_cannot_find_owner_a_memory_by_search,
        owner_b_cannot_update_owner_a_memory,
        owner_b_cannot_pause_or_archive_owner_a_memory,
        owner_b_cannot_delete_owner_a_memory,
        owner_b_delete_all_does_not_reach_owner_a,
        owner_b_cannot_read_owner_a_access_log,
        owner_b_cannot_write_into_owner_a_access_log,
        owner_b_cannot_get_related_of_owner_a_memory,
        owner_b_related_never_includes_owner_a_memories,
        owner_b_cannot_see_owner_a_categories_or_stats,
        activity_never_shows_another_owners_apps,
        look_alike_subjects_are_different_owners
    );
}

mod engine {
    use super::*;

    async fn adding_the_same_text_again_returns_the_existing_memory<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let first = fixture.add(&alice(), "I take my coffee black.", &[]).await;
        fixture.advance(1000);
        let again = fixture
            .add(&alice(), "  i take my COFFEE black ", &[])
            .await;
        assert_eq!(again, first);
        // In one batch too, and another owner's copy is their own.
        let batch = fixture
            .store
            .add(
                &alice(),
                vec![
                    NewMemory::new("Walks at six", "app-a"),
                    NewMemory::new("walks at six!", "app-a"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(batch[0], batch[1]);
        let theirs = fixture.add(&bob(), "I take my coffee black.", &[]).await;
        assert_ne!(theirs.id, first.id);
        assert_eq!(fixture.count(&alice()).await, 2);
    }

    async fn a_deleted_or_changed_text_can_be_added_again<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let first = fixture.add(&alice(), "Lives in Porto", &[]).await;
        fixture.store.delete(&alice(), &[first.id]).await.unwrap();
        let second = fixture.add(&alice(), "Lives in Porto", &[]).await;
        assert_ne!(second.id, first.id);
        fixture
            .store
            .update_text(&alice(), second.id, "Lives in Lisbon".to_owned(), None)
            .await
            .unwrap()
            .unwrap();
        let third = fixture.add(&alice(), "Lives in Porto", &[]).await;
        assert_ne!(third.id, second.id);
        let again = fixture.add(&alice(), "Lives in Lisbon", &[]).await;
        assert_eq!(again.id, second.id);
    }

    async fn reads_are_logged_behind_and_seen_by_the_access_log<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "read me", &[]).await;
        for _ in 0..20 {
            fixture
                .store
                .get(&alice(), memory.id, &reader())
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(fixture.access_log_total(&alice(), memory.id).await, 20);
    }

    async fn the_access_log_queued_at_close_is_written<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "read me", &[]).await;
        fixture
            .store
            .record_access(&alice(), &[memory.id, memory.id], &reader())
            .await
            .unwrap();
        let fixture = fixture.reopen().await;
        assert_eq!(fixture.access_log_total(&alice(), memory.id).await, 2);
    }

    /// Concurrent writers share commit groups; each gets its own result, and a
    /// refused write among them fails alone.
    async fn concurrent_writes_commit_together_and_fail_alone<B: Backend>() {
        let fixture = Arc::new(Fixture::<B>::new().await);
        let mut tasks = Vec::new();
        for n in 0..200 {
            let fixture = Arc::clone(&fixture);
            tasks.push(tokio::spawn(async move {
                let text = if n % 50 == 0 {
                    "x".repeat(1_000_000)
                } else {
                    format!("memory number {n}")
                };
                fixture
                    .store
                    .add(&alice(), vec![NewMemory::new(text, "app-a")])
                    .await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(added) => assert!(added[0].text.starts_with("memory number")),
                Err(error) => {
                    assert_eq!(invalid_field(&error), "text");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 4);
        assert_eq!(fixture.count(&alice()).await, 196);
        assert_eq!(
            fixture.search_texts(&alice(), "number 137").await[0],
            "memory number 137"
        );
    }

    async fn the_index_is_rebuilt_from_the_database_on_open<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add(&alice(), "The cello lessons are on Tuesdays", &[])
            .await;
        let gone = fixture.add(&alice(), "The cello is rented", &[]).await;
        fixture.store.delete(&alice(), &[gone.id]).await.unwrap();
        let fixture = fixture.reopen().await;
        assert_eq!(
            fixture.search_texts(&alice(), "cello").await,
            ["The cello lessons are on Tuesdays"]
        );
    }

    backends!(
        adding_the_same_text_again_returns_the_existing_memory,
        a_deleted_or_changed_text_can_be_added_again,
        reads_are_logged_behind_and_seen_by_the_access_log,
        the_access_log_queued_at_close_is_written,
        concurrent_writes_commit_together_and_fail_alone,
        the_index_is_rebuilt_from_the_database_on_open
    );
}

mod vocabulary {
    use super::*;

    /// Facts saved one by one, hours apart, then asked about in other words.
    async fn facts_are_found_when_asked_in_other_words<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add_hours_apart(
                &alice(),
                &[
                    "My GP is Dr. Patel at the Riverside practice",
                    "We watched a film about whales last night",
                    "I drink an espresso every morning",
                    "The sofa in the living room is dark green",
                    "My favourite colour is teal",
                ],
            )
            .await;
        for (question, answer) in [
            (
                "Who is my doctor?",
                "My GP is Dr. Patel at the Riverside practice",
            ),
            (
                "Which movie did we see?",
                "We watched a film about whales last night",
            ),
            (
                "How do I take my coffee?",
                "I drink an espresso every morning",
            ),
            (
                "Where is our couch?",
                "The sofa in the living room is dark green",
            ),
            ("What is my favorite color?", "My favourite colour is teal"),
        ] {
            let found = fixture.search_texts(&alice(), question).await;
            assert_eq!(
                found.first().map(String::as_str),
                Some(answer),
                "{question}"
            );
        }
    }

    async fn a_memory_with_the_query_word_ranks_above_one_with_a_related_word<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        fixture
            .add(&alice(), "Saw a great movie yesterday", &[])
            .await;
        fixture.advance(3 * 60 * 60 * 1000);
        fixture
            .add(&alice(), "Saw a great film yesterday", &[])
            .await;
        assert_eq!(
            fixture.search_texts(&alice(), "film").await,
            ["Saw a great film yesterday", "Saw a great movie yesterday"]
        );
    }

    backends!(
        facts_are_found_when_asked_in_other_words,
        a_memory_with_the_query_word_ranks_above_one_with_a_related_word
    );
}

mod quotas {
    use super::*;

    fn quota_of(error: &StoreError) -> &'static str {
        match error.kind() {
            ErrorKind::QuotaExceeded { quota, .. } => quota,
            other => panic!("expected a quota error, got {other:?}"),
        }
    }

    async fn a_full_memory_quota_refuses_the_whole_batch_and_deleting_makes_room<B: Backend>() {
        let mut limits = Limits::default();
        limits.max_memories_per_owner = 3;
        let fixture = Fixture::<B>::with_limits(limits).await;
        let store = &fixture.store;
        let first = store
            .add(
                &alice(),
                vec![NewMemory::new("one", "a"), NewMemory::new("two", "a")],
            )
            .await
            .unwrap();
        let error = store
            .add(
                &alice(),
                vec![NewMemory::new("three", "a"), NewMemory::new("four", "a")],
            )
            .await
            .unwrap_err();
        assert_eq!(quota_of(&error), "memories");
        assert!(error.to_string().contains("at most 3 memories"));
        // Nothing of the refused batch was stored, and another user is not affected.
        assert_eq!(
            store.list(&alice(), &ListQuery::new()).await.unwrap().total,
            2
        );
        store
            .add(
                &bob(),
                vec![
                    NewMemory::new("b1", "a"),
                    NewMemory::new("b2", "a"),
                    NewMemory::new("b3", "a"),
                ],
            )
            .await
            .unwrap();
        store.delete(&alice(), &[first[0].id]).await.unwrap();
        store
            .add(
                &alice(),
                vec![NewMemory::new("three", "a"), NewMemory::new("four", "a")],
            )
            .await
            .unwrap();
    }

    async fn a_full_byte_quota_refuses_adds_and_growing_updates<B: Backend>() {
        let mut limits = Limits::default();
        limits.max_bytes_per_owner = 40;
        let fixture = Fixture::<B>::with_limits(limits).await;
        let store = &fixture.store;
        // 10 bytes of text + 2 of metadata (`{}`).
        let memory = store
            .add(&alice(), vec![NewMemory::new("0123456789", "a")])
            .await
            .unwrap()
            .remove(0);
        let error = store
            .add(&alice(), vec![NewMemory::new("x".repeat(30), "a")])
            .await
            .unwrap_err();
        assert_eq!(quota_of(&error), "bytes");
        let error = store
            .update_text(&alice(), memory.id, "y".repeat(39), None)
            .await
            .unwrap_err();
        assert_eq!(quota_of(&error), "bytes");
        let unchanged = store
            .get(&alice(), memory.id, &reader())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unchanged.text, "0123456789");
        store
            .update_text(&alice(), memory.id, "short".to_owned(), None)
            .await
            .unwrap()
            .unwrap();
    }

    async fn usage_survives_reopening_and_counts_only_live_memories<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "twelve bytes", &[]).await;
        fixture.add(&alice(), "kept", &[]).await;
        fixture.store.delete(&alice(), &[memory.id]).await.unwrap();
        let fixture = fixture.reopen().await;
        let (count, bytes) = fixture.db.usage(&alice()).await;
        assert_eq!((count, bytes), (1, 4 + 2));
    }

    async fn access_log_entries_past_the_retention_are_deleted<B: Backend>() {
        let fixture = Fixture::<B>::new().await;
        let memory = fixture.add(&alice(), "read long ago", &[]).await;
        fixture
            .store
            .record_access(&alice(), &[memory.id], &reader())
            .await
            .unwrap();
        fixture.advance(91 * 24 * 60 * 60 * 1000);
        let fixture = fixture.reopen().await;
        fixture
            .store
            .record_access(&alice(), &[memory.id], &reader())
            .await
            .unwrap();
        assert_eq!(fixture.access_log_total(&alice(), memory.id).await, 1);
    }

    backends!(
        a_full_memory_quota_refuses_the_whole_batch_and_deleting_makes_room,
        a_full_byte_quota_refuses_adds_and_growing_updates,
        usage_survives_reopening_and_counts_only_live_memories,
        access_log_entries_past_the_retention_are_deleted
    );
}
