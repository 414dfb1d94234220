//! The tokio task that drives a [`JwksCache`]: it sleeps until the cache wants a fetch
//! (or a caller asks for one), fetches with a timeout, and publishes new keys.
//!
//! The state machine sits behind a `std` mutex held only for state transitions, never
//! across I/O. Verifications read keys from an `ArcSwap` and never touch the mutex unless
//! they need keys they do not have.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::cache::{Action, Demand, DemandOutcome, FetchKind, JwksCache, Loaded, Update};
use super::fetch::{FetchError, FetchRequest, HttpFetcher};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::url;

/// The verifier state the driver serves. The task holds it weakly and ends once the last
/// verifier clone is gone.
pub(crate) trait KeyHost: Send + Sync + 'static {
    /// The remote key source (`None`: nothing to drive).
    fn remote(&self) -> Option<&Remote>;
    /// The verifier's clock.
    fn clock(&self) -> &dyn Clock;
    /// The verifier's counters.
    fn metrics(&self) -> &Metrics;
    /// Makes `loaded` the key set verifications use (`changed`: other keys than before).
    /// Called under the cache's lock, before waiters are released.
    fn publish_keys(&self, loaded: &Loaded, changed: bool, now: Instant);
}

/// The remote half of a verifier's shared state.
pub(crate) struct Remote {
    state: Mutex<JwksCache>,
    wake: Arc<Notify>,
    /// Mirrors [`JwksCache::completed_rounds`], for waiters.
    rounds: watch::Sender<u64>,
    nudged: AtomicBool,
    wait_limit: Duration,
    max_body_bytes: usize,
    fetch_timeout: Duration,
}

impl Remote {
    pub(crate) fn new(cache: JwksCache) -> Self {
        let config = cache.config().clone();
        Remote {
            state: Mutex::new(cache),
            wake: Arc::new(Notify::new()),
            rounds: watch::Sender::new(0),
            nudged: AtomicBool::new(false),
            // Discovery and JWKS may both be needed: two fetches, plus slack.
            wait_limit: config.fetch_timeout * 2 + Duration::from_secs(1),
            max_body_bytes: config.max_body_bytes,
            fetch_timeout: config.fetch_timeout,
        }
    }

    fn state(&self) -> MutexGuard<'_, JwksCache> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key set is past its TTL: make sure the driver is awake (once per load).
    ///
    /// Called on every verification once a refresh is due, which during an outage can be
    /// every request for a long time: the load first keeps that steady state to a read of a
    /// shared cache line instead of a write to it.
    pub(crate) fn nudge(&self) {
        if !self.nudged.load(Ordering::Relaxed) && !self.nudged.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Asks for a fetch; returns the outcome and the round count a waiter must see exceeded.
    pub(crate) fn request(&self, now: Instant, demand: Demand) -> (DemandOutcome, u64) {
        let (outcome, rounds) = {
            let mut state = self.state();
            (state.request(now, demand), state.completed_rounds())
        };
        if outcome == DemandOutcome::Started {
            self.wake.notify_one();
        }
        (outcome, rounds)
    }

    /// Asks for a fetch and, if one starts or is running, waits for it to finish.
    pub(crate) async fn wait_for_fetch(&self, now: Instant, demand: Demand) {
        let (outcome, rounds_before) = self.request(now, demand);
        if outcome.should_wait() {
            let mut rounds = self.rounds.subscribe();
            // Timing out here only means the caller gets its answer from the keys it has.
            let _ = tokio::time::timeout(self.wait_limit, rounds.wait_for(|r| *r > rounds_before))
                .await;
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Wake the driver so it sees the verifier is gone and exits.
        self.wake.notify_one();
    }
}

/// Starts the driver task for `host` on `handle`.
pub(crate) fn spawn<H: KeyHost>(
    host: &Arc<H>,
    fetcher: Arc<dyn HttpFetcher>,
    handle: &tokio::runtime::Handle,
) {
    let Some(remote) = host.remote() else { return };
    let wake = Arc::clone(&remote.wake);
    handle.spawn(run(Arc::downgrade(host), wake, fetcher));
}

async fn run<H: KeyHost>(weak: Weak<H>, wake: Arc<Notify>, fetcher: Arc<dyn HttpFetcher>) {
    loop {
        let (action, now) = {
            let Some(host) = weak.upgrade() else { return };
            let Some(remote) = host.remote() else { return };
            let now = host.clock().now();
            (remote.state().poll(now), now)
        };
        match action {
            Action::Fetch(kind, uri) => {
                let Some(host) = weak.upgrade() else { return };
                fetch_once(&*host, fetcher.as_ref(), kind, uri).await;
            }
            Action::WaitUntil(deadline) => {
                let sleep = tokio::time::sleep(deadline.saturating_duration_since(now));
                tokio::select! {
                    () = sleep => {}
                    () = wake.notified() => {}
                }
            }
            Action::AwaitResponse => wake.notified().await,
        }
    }
}

async fn fetch_once<H: KeyHost>(
    host: &H,
    fetcher: &dyn HttpFetcher,
    kind: FetchKind,
    uri: http::Uri,
) {
    let Some(remote) = host.remote() else { return };
    let request = FetchRequest {
        uri: uri.clone(),
        max_body_bytes: remote.max_body_bytes,
        accept: super::fetch::JWKS_ACCEPT,
    };
    let metrics = host.metrics();
    metrics.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    let response = tokio::time::timeout(remote.fetch_timeout, fetcher.get(request))
        .await
        .unwrap_or(Err(FetchError::Timeout));
    let now = host.clock().now();
    // Publish keys and counters under the state lock, before waiters are released, so no
    // caller is told "keys are ready" (by `JwksCache::request`) before it can read them.
    let (update, loaded) = {
        let mut state = remote.state();
        let update = state.on_response(now, kind, response);
        let loaded = state.loaded().cloned();
        match (&update, &loaded) {
            (Update::Loaded { changed }, Some(loaded)) => {
                host.publish_keys(loaded, *changed, now);
                remote.nudged.store(false, Ordering::Relaxed);
            }
            (Update::Failed(_), _) => {
                metrics.jwks_fetch_failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        remote.rounds.send_replace(state.completed_rounds());
        (update, loaded)
    };
    log_update(&uri, kind, &update, loaded.as_ref());
}

fn log_update(uri: &http::Uri, kind: FetchKind, update: &Update, loaded: Option<&Loaded>) {
    // Never the whole URL: a query string can carry an API key.
    let uri = url::redacted(&uri.to_string());
    match update {
        Update::Discovered => tracing::debug!(%uri, "discovery document loaded"),
        Update::Loaded { changed } => {
            let Some(loaded) = loaded else { return };
            for skipped in loaded.key_set.skipped() {
                tracing::warn!(%uri, kid = ?skipped.kid, reason = %skipped.reason, "jwk skipped");
            }
            if *changed {
                tracing::info!(%uri, keys = loaded.key_set.len(), "new key set in use");
            } else {
                tracing::debug!(%uri, keys = loaded.key_set.len(), "key set refreshed, unchanged");
            }
        }
        Update::Failed(error) => {
            let kind = match kind {
                FetchKind::Discovery => "discovery",
                FetchKind::Jwks => "jwks",
            };
            tracing::warn!(%uri, kind, %error, "key source fetch failed; keeping the last good keys");
        }
    }
}
