//! A `tracing` recorder for tests: every event of the current thread with its fields, to
//! check audit events and that nothing secret was logged. Included by `login_common` and
//! `provider_common`.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Records the `tracing` events of the current thread (install with [`EventLog::install`];
/// `#[tokio::test]` runs on one thread, so every event of the test is seen).
#[derive(Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<HashMap<String, String>>>>,
    /// `false` for the global sink, which enables every callsite and keeps nothing.
    keep: bool,
}

impl EventLog {
    /// Starts recording on this thread until the guard is dropped.
    pub fn install() -> (EventLog, tracing::subscriber::DefaultGuard) {
        // tracing caches per-callsite interest process-wide. With a single registered
        // dispatcher it asks only the default of whichever thread hits a callsite first,
        // so a thread without a recorder could disable a callsite for every test. A
        // global sink that enables everything keeps every callsite live; each test's
        // thread-local recorder then sees its own events.
        static GLOBAL_SINK: std::sync::Once = std::sync::Once::new();
        GLOBAL_SINK.call_once(|| {
            let _ = tracing::subscriber::set_global_default(EventLog::default());
        });
        let log = EventLog {
            keep: true,
            ..EventLog::default()
        };
        let guard = tracing::subscriber::set_default(log.clone());
        (log, guard)
    }

    /// Every event, each as its fields plus `target`.
    pub fn events(&self) -> Vec<HashMap<String, String>> {
        self.events.lock().unwrap().clone()
    }

    /// The events named `event` (e.g. `"login_refused"`), whatever their target.
    pub fn named(&self, event: &str) -> Vec<HashMap<String, String>> {
        self.events()
            .into_iter()
            .filter(|e| e.get("event").map(String::as_str) == Some(event))
            .collect()
    }

    /// The audit events (target `audit`) named `event`.
    pub fn audit(&self, event: &str) -> Vec<HashMap<String, String>> {
        self.named(event)
            .into_iter()
            .filter(|e| e.get("target").map(String::as_str) == Some("audit"))
            .collect()
    }

    /// The `reason` fields of `login_refused` events.
    pub fn refusals(&self) -> Vec<String> {
        self.named("login_refused")
            .into_iter()
            .filter_map(|e| e.get("reason").cloned())
            .collect()
    }

    /// Every field of every event, as one string (to check nothing secret was logged).
    pub fn all_text(&self) -> String {
        format!("{:?}", self.events())
    }
}

struct FieldVisitor<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for EventLog {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if !self.keep {
            return;
        }
        // Every event is kept (not only `audit`), so tests can check nothing secret is
        // logged anywhere; `target` tells them apart.
        let mut fields = HashMap::new();
        fields.insert("target".to_owned(), event.metadata().target().to_owned());
        event.record(&mut FieldVisitor(&mut fields));
        self.events.lock().unwrap().push(fields);
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}
