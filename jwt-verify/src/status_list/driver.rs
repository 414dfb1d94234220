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
use crate::error::{Error, ErrorKind};
use crate::jwks::{FetchError, FetchRequest, HttpFetcher};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::status_claim::{StatusRef, uri_hash};
use crate::url;
use crate::verifier::{Refusal, Shared};

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

/// Starts the status list driver for `shared` on `handle`.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    fetcher: Arc<dyn HttpFetcher>,
    handle: &tokio::runtime::Handle,
) {
    let Some(lists) = &shared.status else { return };
    let wake = Arc::clone(&lists.wake);
    handle.spawn(run(Arc::downgrade(shared), wake, fetcher, handle.clone()));
}

async fn run(
    weak: Weak<Shared>,
    wake: Arc<Notify>,
    fetcher: Arc<dyn HttpFetcher>,
    handle: tokio::runtime::Handle,
) {
    loop {
        let (action, now) = {
            let Some(shared) = weak.upgrade() else { return };
            let Some(lists) = &shared.status else { return };
            let now = shared.clock.now();
            let mut state = lists.state();
            lists.report_uses(&mut state, now);
            let action = state.poll(now);
            lists.publish(&mut state, now, shared.clock.unix_time(), &shared.metrics);
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

async fn fetch_once(
    weak: Weak<Shared>,
    fetcher: Arc<dyn HttpFetcher>,
    uri: Box<str>,
    target: http::Uri,
) {
    let (timeout, request) = {
        let Some(shared) = weak.upgrade() else { return };
        let Some(lists) = &shared.status else { return };
        shared
            .metrics
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
    let Some(shared) = weak.upgrade() else { return };
    let Some(lists) = &shared.status else { return };
    let now = shared.clock.now();
    let now_unix = shared.clock.unix_time();
    // The same keys tokens are verified with, unless past their maximum stale age.
    let keys = shared
        .keys
        .load_full()
        .filter(|published| now_unix < published.usable_until);
    // Publish under the state lock, before waiters are released.
    let update = {
        let mut state = lists.state();
        let update = state.on_response(
            now,
            now_unix,
            &uri,
            response,
            keys.as_deref().map(|published| &*published.key_set),
        );
        if let StatusUpdate::Loaded { .. } = update {
            lists.unknown_failing.store(false, Ordering::Relaxed);
        }
        lists.publish(&mut state, now, now_unix, &shared.metrics);
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
            shared
                .metrics
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
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::jwks::BoxFuture;
    use crate::status_list::StatusListConfig;
    use crate::status_list::list::lst_of;
    use crate::{ErrorKind, Policy, Verifier, test_keys};

    const NOW: u64 = 1_700_000_000;
    const ISSUER: &str = "https://issuer.example";
    const LIST: &str = "https://issuer.example/statuslists/1";

    /// Serves a signed status list for any URI; counts calls; can be told to fail.
    #[derive(Clone)]
    struct FakeLists {
        clock: ManualClock,
        statuses: Arc<Mutex<Vec<u8>>>,
        failing: Arc<AtomicBool>,
        calls: Arc<AtomicUsize>,
        /// Released to let a fetch answer; `None` answers at once.
        gate: Option<Arc<Notify>>,
    }

    impl FakeLists {
        fn new(clock: &ManualClock) -> Self {
            FakeLists {
                clock: clock.clone(),
                statuses: Arc::new(Mutex::new(vec![0; 4])),
                failing: Arc::new(AtomicBool::new(false)),
                calls: Arc::new(AtomicUsize::new(0)),
                gate: None,
            }
        }

        fn revoke(&self, index: usize) {
            self.statuses.lock().unwrap()[index / 8] |= 1 << (index % 8);
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl HttpFetcher for FakeLists {
        fn get(
            &self,
            request: FetchRequest,
        ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                assert_eq!(request.accept, "application/statuslist+jwt");
                if let Some(gate) = &self.gate {
                    gate.notified().await;
                }
                if self.failing.load(Ordering::SeqCst) {
                    return Err(FetchError::Status(503));
                }
                let bytes = self.statuses.lock().unwrap().clone();
                let token = test_keys::sign(
                    &serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"}),
                    &serde_json::json!({
                        "iss": ISSUER, "sub": request.uri.to_string(),
                        "iat": self.clock.unix_time(), "ttl": 10,
                        "status_list": {"bits": 1, "lst": lst_of(&bytes)},
                    }),
                );
                Ok(http::Response::builder()
                    .header("content-type", "application/statuslist+jwt")
                    .body(token.into_bytes())
                    .unwrap())
            })
        }
    }

    fn verifier(fake: &FakeLists, config: StatusListConfig, cache_entries: usize) -> Verifier {
        Verifier::builder(Policy::new(ISSUER, "api"))
            .static_jwks(test_keys::jwks(&[test_keys::rsa_jwk("k1")]))
            .token_cache_entries(cache_entries)
            .clock(fake.clock.clone())
            .http_fetcher(fake.clone())
            .status_lists(config)
            .build()
            .unwrap()
    }

    fn token_with(status: Option<serde_json::Value>) -> String {
        let mut claims =
            serde_json::json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": NOW + 3600});
        if let Some(status) = status {
            claims["status"] = status;
        }
        test_keys::sign(&serde_json::json!({"alg": "RS256", "kid": "k1"}), &claims)
    }

    fn token(idx: u64, uri: &str) -> String {
        token_with(Some(
            serde_json::json!({"status_list": {"idx": idx, "uri": uri}}),
        ))
    }

    async fn kind(v: &Verifier, token: &str) -> Option<ErrorKind> {
        v.verify::<serde_json::Value>(token)
            .await
            .err()
            .map(|e| e.kind())
    }

    /// Lets background tasks run until `done` holds (bounded, so a bug fails instead of hanging).
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..2000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn revoked_token_is_refused_and_others_pass() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        fake.revoke(5);
        let v = verifier(&fake, StatusListConfig::new(), 0);
        assert_eq!(kind(&v, &token(4, LIST)).await, None);
        assert_eq!(kind(&v, &token(5, LIST)).await, Some(ErrorKind::Revoked));
        assert_eq!(kind(&v, &token(31, LIST)).await, None);
        assert_eq!(
            kind(&v, &token(32, LIST)).await,
            Some(ErrorKind::InvalidClaim),
            "out of range"
        );
        assert_eq!(
            kind(&v, &token_with(None)).await,
            None,
            "status optional by default"
        );
        assert_eq!(fake.calls(), 1);
        let m = v.metrics();
        assert_eq!(m.status_lookups, 4);
        assert_eq!(m.status_revoked, 1);
        assert_eq!(m.rejected(ErrorKind::Revoked), 1);
        assert_eq!(m.status_list_fetches, 1);
        assert_eq!(m.status_lists, 1);
    }

    #[tokio::test]
    async fn token_cache_hit_still_sees_a_later_revocation() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new(), 64);
        let t = token(2, LIST);
        assert_eq!(kind(&v, &t).await, None);
        assert_eq!(kind(&v, &t).await, None);
        // The first verification waited for the list, then answered from the cache.
        assert_eq!(v.metrics().token_cache_hits, 2);
        fake.revoke(2);
        // The list's ttl (10 s) passes: the next verification nudges a refresh.
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            kind(&v, &t).await,
            None,
            "the old list still holds until replaced"
        );
        until(|| v.metrics().status_list_fetches == 2 && fake.calls() == 2).await;
        until(|| v.try_verify::<serde_json::Value>(&t).is_err()).await;
        assert_eq!(kind(&v, &t).await, Some(ErrorKind::Revoked));
        assert!(
            v.metrics().token_cache_hits >= 3,
            "refused from the cache, not re-verified"
        );
    }

    #[tokio::test]
    async fn attack_ssrf_status_uri_outside_allowed_origin_is_refused_without_fetch() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new(), 64);
        for uri in [
            "https://evil.example/statuslists/1",
            "http://169.254.169.254/latest/meta-data/iam",
            "http://issuer.example/statuslists/1",
            "https://issuer.example:8443/statuslists/1",
            "https://issuer.example/statuslists/../admin",
        ] {
            assert_eq!(
                kind(&v, &token(0, uri)).await,
                Some(ErrorKind::InvalidClaim),
                "{uri}"
            );
            assert_eq!(
                v.try_verify::<serde_json::Value>(&token(0, uri))
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidClaim
            );
        }
        tokio::task::yield_now().await;
        assert_eq!(fake.calls(), 0, "the fetcher was never called");
        // An explicitly allowed prefix is fetched.
        let allowed = verifier(
            &fake,
            StatusListConfig::new().allow_uri_prefix("https://status.example/lists/"),
            0,
        );
        assert_eq!(
            kind(&allowed, &token(0, "https://status.example/lists/9")).await,
            None
        );
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test]
    async fn concurrent_first_uses_wait_for_one_fetch() {
        let clock = ManualClock::at_unix(NOW);
        let mut fake = FakeLists::new(&clock);
        let gate = Arc::new(Notify::new());
        fake.gate = Some(Arc::clone(&gate));
        let v = verifier(&fake, StatusListConfig::new(), 0);
        let waiters: Vec<_> = (0..8)
            .map(|i| {
                let v = v.clone();
                tokio::spawn(async move { kind(&v, &token(i, LIST)).await })
            })
            .collect();
        until(|| fake.calls() == 1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.notify_one();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), None);
        }
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test]
    async fn try_verify_never_waits_for_a_first_list() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new(), 0);
        let t = token(0, LIST);
        assert_eq!(
            v.try_verify::<serde_json::Value>(&t).unwrap_err().kind(),
            ErrorKind::StatusUnavailable
        );
        until(|| v.metrics().status_lists == 1).await;
        assert!(v.try_verify::<serde_json::Value>(&t).is_ok());
    }

    #[tokio::test]
    async fn stale_if_error_then_fail_closed() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new(), 64);
        let t = token(0, LIST);
        assert_eq!(kind(&v, &t).await, None);
        fake.failing.store(true, Ordering::SeqCst);
        // Refreshes fail; within ttl (10 s) + 5 min the old list is used.
        clock.advance(Duration::from_secs(300));
        assert_eq!(kind(&v, &t).await, None);
        until(|| v.metrics().status_list_fetch_failures >= 1).await;
        clock.advance(Duration::from_secs(10));
        assert_eq!(kind(&v, &t).await, Some(ErrorKind::StatusUnavailable));
        assert!(!ErrorKind::StatusUnavailable.is_token_error());
        // The list server recovers: the driver's retry brings the list back.
        fake.failing.store(false, Ordering::SeqCst);
        clock.advance(Duration::from_secs(60));
        let _ = v.try_verify::<serde_json::Value>(&t);
        until(|| v.try_verify::<serde_json::Value>(&t).is_ok()).await;
    }

    #[tokio::test]
    async fn stale_if_error_then_fail_open_counts() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        fake.revoke(1);
        let config = StatusListConfig::new()
            .failure_mode(FailureMode::FailOpen)
            .stale_if_error(Duration::from_secs(20));
        let v = verifier(&fake, config, 0);
        assert_eq!(kind(&v, &token(1, LIST)).await, Some(ErrorKind::Revoked));
        fake.failing.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(31));
        assert_eq!(kind(&v, &token(0, LIST)).await, None);
        assert_eq!(kind(&v, &token(1, LIST)).await, None, "fail-open accepts");
        assert_eq!(v.metrics().status_fail_open, 2);
        // A list never fetched is accepted too, after one failed wait.
        assert_eq!(
            kind(&v, &token(0, "https://issuer.example/statuslists/2")).await,
            None
        );
        assert_eq!(v.metrics().status_fail_open, 3);
    }

    #[tokio::test]
    async fn first_fetch_failure_under_fail_closed_is_unavailable() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        fake.failing.store(true, Ordering::SeqCst);
        let v = verifier(&fake, StatusListConfig::new(), 0);
        assert_eq!(
            kind(&v, &token(0, LIST)).await,
            Some(ErrorKind::StatusUnavailable)
        );
        assert_eq!(fake.calls(), 1);
        // Backing off: the next token is answered at once, without another fetch.
        assert_eq!(
            kind(&v, &token(0, LIST)).await,
            Some(ErrorKind::StatusUnavailable)
        );
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test]
    async fn required_and_malformed_status_claims() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new().require_status(true), 64);
        let without = token_with(None);
        assert_eq!(kind(&v, &without).await, Some(ErrorKind::MissingClaim));
        assert_eq!(
            kind(&v, &without).await,
            Some(ErrorKind::MissingClaim),
            "cache hit too"
        );
        for status in [
            serde_json::json!("https://issuer.example/statuslists/1"),
            serde_json::json!({}),
            serde_json::json!({"status_list": {"idx": -1, "uri": LIST}}),
            serde_json::json!({"status_list": {"idx": 1.5, "uri": LIST}}),
            serde_json::json!({"status_list": {"idx": 1, "uri": 7}}),
            serde_json::json!({"status_list": [1, LIST]}),
        ] {
            assert_eq!(
                kind(&v, &token_with(Some(status.clone()))).await,
                Some(ErrorKind::InvalidClaim),
                "{status}"
            );
        }
        assert_eq!(fake.calls(), 0);
    }

    #[test]
    fn slot_reads_what_the_list_reads_and_updates_in_place() {
        let bytes: Vec<u8> = (0u8..=40).map(|b| b.wrapping_mul(37)).collect();
        for bits in [1u8, 2, 4, 8] {
            let list = StatusList::from_bytes(bits, bytes.clone()).unwrap();
            let slot = ListSlot::new(LIST, &list, 1, 2);
            for index in 0..=list.len() + 70 {
                assert_eq!(
                    slot.status(index),
                    list.status(index),
                    "bits {bits} index {index}"
                );
            }
            assert_eq!(slot.status(u64::MAX), None);
            // A shorter list fits in place; a longer one or other bits do not.
            let shorter = StatusList::from_bytes(bits, vec![0xFF; 3]).unwrap();
            assert!(slot.fits(&shorter));
            slot.store(&shorter, 3, 4);
            for index in 0..=list.len() {
                assert_eq!(slot.status(index), shorter.status(index));
            }
            assert_eq!(slot.usable_until.load(Ordering::Relaxed), 4);
            assert!(!slot.fits(&StatusList::from_bytes(bits, vec![0; 49]).unwrap()));
            let other = if bits == 1 { 2 } else { 1 };
            assert!(!slot.fits(&StatusList::from_bytes(other, vec![0; 1]).unwrap()));
        }
    }

    #[tokio::test]
    async fn cached_token_follows_its_list_into_a_new_slot() {
        let clock = ManualClock::at_unix(NOW);
        let fake = FakeLists::new(&clock);
        let v = verifier(&fake, StatusListConfig::new(), 64);
        let t = token(3, LIST);
        assert_eq!(kind(&v, &t).await, None);
        // The list grows past its slot (4 bytes to 64) and index 3 is revoked.
        *fake.statuses.lock().unwrap() = vec![0; 64];
        fake.revoke(3);
        clock.advance(Duration::from_secs(10));
        let _ = v.try_verify::<serde_json::Value>(&t);
        until(|| v.try_verify::<serde_json::Value>(&t).is_err()).await;
        assert_eq!(kind(&v, &t).await, Some(ErrorKind::Revoked));
        assert_eq!(
            kind(&v, &token(500, LIST)).await,
            None,
            "the longer list is in use"
        );
    }
}
