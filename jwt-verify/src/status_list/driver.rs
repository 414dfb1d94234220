//! The status check on the verification hot path, and the tokio task that drives a
//! [`StatusListCache`]: it sleeps until a list is due (or a caller asks for one), fetches
//! each list on its own task with a timeout, and publishes what verifications read.
//!
//! A verification finds its list once in an `ArcSwap` snapshot (a short slice searched by a
//! precomputed hash of the URI) and keeps the list's slot with the verified token; checking
//! again (a verified-token cache hit) is a few relaxed atomic loads and a bit test. The
//! cache's mutex is taken only for a URI never seen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};

use super::cache::{StatusAction, StatusDemand, StatusListCache, StatusUpdate};
use super::list::StatusList;
use super::{AllowRule, FailureMode};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::jwk::KeySet;
use crate::jwks::{FetchError, FetchRequest, HttpFetcher};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::status_claim::{StatusRef, uri_hash};
use crate::url;

/// The verifier state the driver serves. The task holds it weakly and ends once the last
/// verifier clone is gone.
pub(crate) trait ListHost: Send + Sync + 'static {
    /// The status lists (`None`: nothing to drive).
    fn status_lists(&self) -> Option<&StatusLists>;
    /// The verifier's clock.
    fn clock(&self) -> &dyn Clock;
    /// The verifier's counters.
    fn metrics(&self) -> &Metrics;
    /// The keys tokens are verified with at Unix time `now_unix`, unless past their
    /// maximum stale age: list tokens are verified with the same keys.
    fn key_set(&self, now_unix: u64) -> Option<Arc<KeySet>>;
}

/// The status-list half of a verifier's shared state.
pub(crate) struct StatusLists {
    require_status: bool,
    failure_mode: FailureMode,
    /// The cache's URI rule, checked without its lock for URIs not yet held.
    allow: AllowRule,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<StatusListCache>,
    wake: Arc<Notify>,
    /// Bumped after every finished fetch, for waiters.
    rounds: watch::Sender<u64>,
    nudged: AtomicBool,
    /// Set while tokens naming a never-loaded list get the failure mode (and it was logged).
    unknown_failing: AtomicBool,
    fetch_timeout: Duration,
    max_response_bytes: usize,
    leeway_secs: u64,
}

/// The held lists, for verifications that have not resolved their list yet.
#[derive(Default)]
struct Snapshot {
    lists: Box<[Arc<ListSlot>]>,
}

impl Snapshot {
    fn find(&self, status: &StatusRef) -> Option<&Arc<ListSlot>> {
        self.lists
            .iter()
            .find(|slot| slot.hash == status.hash && *slot.uri == *status.uri)
    }
}

/// One held list as verifications read it: the statuses in atomic words updated in place
/// by refreshes, and deadlines in Unix seconds. A verified token (in the token cache too)
/// keeps an `Arc` of its slot, so checking it again reads a few atomics and takes no lock
/// and no reference count. A refresh whose list no longer fits (other `bits`, longer)
/// retires the slot for a new one; holders of a retired slot look the URI up again.
pub(crate) struct ListSlot {
    hash: u64,
    uri: Box<str>,
    bits: u8,
    /// The list's bytes, eight per word, little-endian: status `i` is bits
    /// `i * bits % 64 ..` of word `i * bits / 64`, as the draft packs them into bytes.
    words: Box<[AtomicU64]>,
    /// Statuses in the current list; later words are zero.
    len: AtomicU64,
    /// A background refresh is due from this Unix time.
    refresh_at: AtomicU64,
    /// The list must not be used from this Unix time (stale-if-error, or the token's `exp`).
    usable_until: AtomicU64,
    retired: AtomicBool,
    /// A verification used the list since the driver last looked.
    used: AtomicBool,
    /// The list is unavailable and this was logged.
    failing: AtomicBool,
}

impl ListSlot {
    fn new(uri: &str, list: &StatusList, refresh_at: u64, usable_until: u64) -> Self {
        let slot = ListSlot {
            hash: uri_hash(uri),
            uri: uri.into(),
            bits: list.bits(),
            words: (0..list.bytes().len().div_ceil(8))
                .map(|_| AtomicU64::new(0))
                .collect(),
            len: AtomicU64::new(0),
            refresh_at: AtomicU64::new(0),
            usable_until: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            used: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        };
        slot.store(list, refresh_at, usable_until);
        slot
    }

    /// Whether `list` can be stored in place.
    fn fits(&self, list: &StatusList) -> bool {
        list.bits() == self.bits && list.bytes().len() <= self.words.len() * 8
    }

    /// Stores `list` (which [`fits`](Self::fits)) and its deadlines. A concurrent reader
    /// sees each status either before or after the update.
    fn store(&self, list: &StatusList, refresh_at: u64, usable_until: u64) {
        let len = list.len();
        let shrinking = len < self.len.load(Ordering::Relaxed);
        if shrinking {
            self.len.store(len, Ordering::Relaxed);
        }
        let mut chunks = list.bytes().chunks(8);
        for word in &self.words {
            let mut bytes = [0u8; 8];
            if let Some(chunk) = chunks.next() {
                bytes[..chunk.len()].copy_from_slice(chunk);
            }
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        if !shrinking {
            self.len.store(len, Ordering::Relaxed);
        }
        self.refresh_at.store(refresh_at, Ordering::Relaxed);
        self.usable_until.store(usable_until, Ordering::Relaxed);
    }

    /// The status at `index`, or `None` past the end of the list.
    #[inline]
    fn status(&self, index: u64) -> Option<u8> {
        if index >= self.len.load(Ordering::Relaxed) {
            return None;
        }
        // `index < len <= words * 64 / bits`: no overflow, and the word exists.
        let position = index * u64::from(self.bits);
        let word = self
            .words
            .get(usize::try_from(position / 64).ok()?)?
            .load(Ordering::Relaxed);
        let mask = (1u64 << self.bits) - 1;
        // Masked to at most 8 bits.
        u8::try_from((word >> (position % 64)) & mask).ok()
    }

    /// Marks the list used: a read of a shared line on the hot path, a write only the first
    /// time after the driver cleared it.
    #[inline]
    fn touch(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

impl StatusLists {
    pub(crate) fn new(cache: StatusListCache, policy: &Policy) -> Result<Self, crate::BuildError> {
        let config = cache.config().clone();
        Ok(StatusLists {
            require_status: config.require_status,
            failure_mode: config.failure_mode,
            allow: AllowRule::new(&policy.issuers, &config.allowed_prefixes)?,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            state: Mutex::new(cache),
            wake: Arc::new(Notify::new()),
            rounds: watch::Sender::new(0),
            nudged: AtomicBool::new(false),
            unknown_failing: AtomicBool::new(false),
            fetch_timeout: config.fetch_timeout,
            max_response_bytes: config.max_response_bytes,
            leeway_secs: policy.leeway_secs,
        })
    }

    fn state(&self) -> MutexGuard<'_, StatusListCache> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status check of one verification at Unix time `now`. `resolved` remembers the
    /// token's list slot across verifications of the same token (cache hits). `may_wait` is
    /// false once the caller has waited for a fetch: a list still missing then gets the
    /// failure mode.
    #[inline]
    pub(crate) fn check(
        &self,
        status: Option<&StatusRef>,
        resolved: &OnceLock<Arc<ListSlot>>,
        now: u64,
        may_wait: bool,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        let Some(status) = status else {
            if self.require_status {
                return Err(Refusal::Token(Error::new(
                    ErrorKind::MissingClaim,
                    "token has no status claim",
                )));
            }
            return Ok(());
        };
        match resolved.get() {
            Some(slot) if !slot.retired.load(Ordering::Relaxed) => {
                self.check_in(slot, status, now, may_wait, metrics)
            }
            _ => self.resolve(status, resolved, now, may_wait, metrics),
        }
    }

    /// Finds the token's list in the snapshot (and remembers it), then checks.
    #[inline(never)]
    fn resolve(
        &self,
        status: &StatusRef,
        resolved: &OnceLock<Arc<ListSlot>>,
        now: u64,
        may_wait: bool,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        let snapshot = self.snapshot.load();
        let Some(slot) = snapshot.find(status) else {
            return self.unavailable(status, None, may_wait, metrics);
        };
        // Fails only if another slot was remembered first (then retired): look up each time.
        let _ = resolved.set(Arc::clone(slot));
        self.check_in(slot, status, now, may_wait, metrics)
    }

    #[inline]
    fn check_in(
        &self,
        slot: &ListSlot,
        status: &StatusRef,
        now: u64,
        may_wait: bool,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        if now >= slot.usable_until.load(Ordering::Relaxed) {
            return self.unavailable(status, Some(slot), may_wait, metrics);
        }
        slot.touch();
        if now >= slot.refresh_at.load(Ordering::Relaxed) {
            self.nudge();
        }
        match slot.status(status.idx) {
            Some(0) => Ok(()),
            Some(_) => Err(revoked(metrics)),
            None => Err(out_of_range(metrics)),
        }
    }

    /// No usable list for `status`: refuse an URI that may not be fetched, ask the caller to
    /// wait for a first fetch, or apply the failure mode.
    #[cold]
    fn unavailable(
        &self,
        status: &StatusRef,
        slot: Option<&ListSlot>,
        may_wait: bool,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        if slot.is_some() {
            self.nudge();
        } else {
            if self.allow.check(&status.uri).is_none() {
                return Err(Refusal::Token(Error::new(
                    ErrorKind::InvalidClaim,
                    "status list uri not allowed",
                )));
            }
            if may_wait {
                return Err(Refusal::NeedStatus(status.uri.clone()));
            }
        }
        // Logged once per list each time it becomes unavailable; never the token.
        let failing = slot.map_or(&self.unknown_failing, |slot| &slot.failing);
        let first = !failing.load(Ordering::Relaxed) && !failing.swap(true, Ordering::Relaxed);
        match self.failure_mode {
            FailureMode::FailOpen => {
                metrics.status_fail_open.fetch_add(1, Ordering::Relaxed);
                if first {
                    let uri = url::redacted(&status.uri);
                    tracing::warn!(%uri, "status list unavailable; accepting tokens that refer to it (fail-open)");
                }
                Ok(())
            }
            FailureMode::FailClosed => {
                if first {
                    let uri = url::redacted(&status.uri);
                    tracing::warn!(%uri, "status list unavailable; refusing tokens that refer to it (fail-closed)");
                }
                Err(Refusal::Token(Error::new(
                    ErrorKind::StatusUnavailable,
                    "status list unavailable",
                )))
            }
        }
    }

    /// A list is due for refresh: make sure the driver is awake (once per publish).
    fn nudge(&self) {
        if !self.nudged.load(Ordering::Relaxed) && !self.nudged.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Asks for a fetch of `uri`; returns the outcome and the round count to see exceeded.
    pub(crate) fn request(&self, now: Instant, uri: &str) -> (StatusDemand, u64) {
        let (demand, rounds) = {
            let mut state = self.state();
            (state.request(now, uri), state.rounds(uri))
        };
        if demand == StatusDemand::Started {
            self.wake.notify_one();
        }
        (demand, rounds)
    }

    /// Asks for a fetch of `uri` and, if one starts or is running, waits (at most the fetch
    /// timeout plus a second) for it to finish.
    pub(crate) async fn wait_for_fetch(&self, now: Instant, uri: &str) {
        let mut rounds = self.rounds.subscribe();
        let (demand, before) = self.request(now, uri);
        if !demand.should_wait() {
            return;
        }
        let finished = async {
            loop {
                if self.state().rounds(uri) != before {
                    return;
                }
                if rounds.changed().await.is_err() {
                    return;
                }
            }
        };
        // Timing out only means the caller gets the failure mode.
        let _ = tokio::time::timeout(self.fetch_timeout + Duration::from_secs(1), finished).await;
    }

    /// Reports the lists verifications used since the last call to the cache.
    fn report_uses(&self, state: &mut StatusListCache, now: Instant) {
        for slot in self.snapshot.load().lists.iter() {
            if slot.used.swap(false, Ordering::Relaxed) {
                state.note_used(now, &slot.uri);
            }
        }
    }

    /// Republishes the held lists if the cache changed: in place into their slots when they
    /// fit, else into new slots (retiring the old). Called under the state lock.
    fn publish(&self, state: &mut StatusListCache, now: Instant, now_unix: u64, metrics: &Metrics) {
        if !state.take_changed() {
            return;
        }
        let old = self.snapshot.load_full();
        let to_unix =
            |t: Instant| now_unix.saturating_add(t.saturating_duration_since(now).as_secs());
        let mut kept: Vec<Arc<ListSlot>> = Vec::with_capacity(state.len());
        for (uri, held) in state.entries() {
            let Some(held) = held else { continue };
            let expires = held
                .exp
                .map_or(u64::MAX, |exp| exp.saturating_add(self.leeway_secs));
            let refresh_at = to_unix(held.refresh_at);
            let usable_until = to_unix(held.usable_until).min(expires);
            let slot = match old.lists.iter().find(|slot| *slot.uri == *uri) {
                Some(slot) if slot.fits(&held.list) => {
                    slot.store(&held.list, refresh_at, usable_until);
                    Arc::clone(slot)
                }
                _ => Arc::new(ListSlot::new(uri, &held.list, refresh_at, usable_until)),
            };
            if now_unix < usable_until && slot.failing.swap(false, Ordering::Relaxed) {
                tracing::info!(uri = %url::redacted(uri), "status list available again");
            }
            kept.push(slot);
        }
        for slot in old.lists.iter() {
            if !kept.iter().any(|k| Arc::ptr_eq(k, slot)) {
                slot.retired.store(true, Ordering::Relaxed);
            }
        }
        metrics.status_lists.store(kept.len(), Ordering::Relaxed);
        self.snapshot.store(Arc::new(Snapshot {
            lists: kept.into_boxed_slice(),
        }));
        self.nudged.store(false, Ordering::Relaxed);
    }
}

#[cold]
fn revoked(metrics: &Metrics) -> Refusal {
    metrics.status_revoked.fetch_add(1, Ordering::Relaxed);
    Refusal::Token(Error::new(
        ErrorKind::Revoked,
        "token revoked or suspended (status list)",
    ))
}

#[cold]
fn out_of_range(metrics: &Metrics) -> Refusal {
    metrics.status_out_of_range.fetch_add(1, Ordering::Relaxed);
    Refusal::Token(Error::new(
        ErrorKind::InvalidClaim,
        "status index beyond the end of the status list",
    ))
}

impl Drop for StatusLists {
    fn drop(&mut self) {
        // Wake the driver so it sees the verifier is gone and exits.
        self.wake.notify_one();
    }
}

/// Starts the status list driver for `host` on `handle`.
pub(crate) fn spawn<H: ListHost>(
    host: &Arc<H>,
    fetcher: Arc<dyn HttpFetcher>,
    handle: &tokio::runtime::Handle,
) {
    let Some(lists) = host.status_lists() else {
        return;
    };
    let wake = Arc::clone(&lists.wake);
    handle.spawn(run(Arc::downgrade(host), wake, fetcher, handle.clone()));
}

async fn run<H: ListHost>(
    weak: Weak<H>,
    wake: Arc<Notify>,
    fetcher: Arc<dyn HttpFetcher>,
    handle: tokio::runtime::Handle,
) {
    loop {
        let (action, now) = {
            let Some(host) = weak.upgrade() else { return };
            let Some(lists) = host.status_lists() else {
                return;
            };
            let clock = host.clock();
            let now = clock.now();
            let mut state = lists.state();
            lists.report_uses(&mut state, now);
            let action = state.poll(now);
            lists.publish(&mut state, now, clock.unix_time(), host.metrics());
            (action, now)
        };
        match action {
            StatusAction::Fetch { uri, target } => {
                // Each list on its own task: one slow list server does not hold up the others.
                handle.spawn(fetch_once(weak.clone(), Arc::clone(&fetcher), uri, target));
            }
            StatusAction::WaitUntil(deadline) => {
                let sleep = tokio::time::sleep(deadline.saturating_duration_since(now));
                tokio::select! {
                    () = sleep => {}
                    () = wake.notified() => {}
                }
            }
        }
    }
}

async fn fetch_once<H: ListHost>(
    weak: Weak<H>,
    fetcher: Arc<dyn HttpFetcher>,
    uri: Box<str>,
    target: http::Uri,
) {
    let (timeout, request) = {
        let Some(host) = weak.upgrade() else { return };
        let Some(lists) = host.status_lists() else {
            return;
        };
        host.metrics()
            .status_list_fetches
            .fetch_add(1, Ordering::Relaxed);
        (
            lists.fetch_timeout,
            FetchRequest {
                uri: target,
                max_body_bytes: lists.max_response_bytes,
                accept: super::token::STATUS_LIST_MEDIA_TYPE,
            },
        )
    };
    let response = tokio::time::timeout(timeout, fetcher.get(request))
        .await
        .unwrap_or(Err(FetchError::Timeout));
    let Some(host) = weak.upgrade() else { return };
    let Some(lists) = host.status_lists() else {
        return;
    };
    let metrics = host.metrics();
    let now = host.clock().now();
    let now_unix = host.clock().unix_time();
    // The same keys tokens are verified with, unless past their maximum stale age.
    let keys = host.key_set(now_unix);
    // Publish under the state lock, before waiters are released.
    let update = {
        let mut state = lists.state();
        let update = state.on_response(now, now_unix, &uri, response, keys.as_deref());
        if let StatusUpdate::Loaded { .. } = update {
            lists.unknown_failing.store(false, Ordering::Relaxed);
        }
        lists.publish(&mut state, now, now_unix, metrics);
        // A failed refresh publishes nothing; let the next due verification nudge again.
        lists.nudged.store(false, Ordering::Relaxed);
        lists.rounds.send_modify(|r| *r += 1);
        update
    };
    let shown = url::redacted(&uri);
    match update {
        StatusUpdate::Loaded { changed: true } => {
            tracing::debug!(uri = %shown, "status list loaded");
        }
        StatusUpdate::Loaded { changed: false } => {
            tracing::trace!(uri = %shown, "status list refreshed, unchanged");
        }
        StatusUpdate::Failed(error) => {
            metrics
                .status_list_fetch_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(uri = %shown, %error, "status list fetch failed; keeping the last good list");
        }
        StatusUpdate::Ignored => {}
    }
    // The cache's schedule changed: let the driver poll again.
    lists.wake.notify_one();
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
