// Hand-written, not `governor`: every check takes `now` from the provider's injected Unix clock and memory is capped at `MAX_BUCKETS` addresses (then one shared bucket); governor's keyed limiter reads a clock fixed at construction and keeps an unbounded key map (plus dashmap and quanta in the tree).
//! Token-bucket rate limits per client IP address, kept in a [`RateLimitStore`]: in
//! memory by default ([`MemoryRateLimitStore`], each replica counting on its own), or in a
//! store every replica shares (`store::PostgresLimitStore`, feature `postgres`), so that
//! a client alternating between replicas gets one allowance, not one per replica.
//!
//! The client address comes from the request extensions as a [`std::net::SocketAddr`],
//! put there by whatever accepted the connection; forwarded headers (`X-Forwarded-For`,
//! `Forwarded`) are never read, since any client can write them (RFC 9700 §4.13). A server
//! behind a reverse proxy must put the real peer address into the extensions itself.
//! Requests without an address share one global bucket per endpoint.
//!
//! When the store fails, requests are let through with a warning: see [`RateLimitStore`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::authn::BoxFuture;
use crate::store::StoreError;

/// A token bucket: up to `burst` requests at once, refilled at `per_minute`.
///
/// ```
/// use oidc_core::provider::RateLimit;
///
/// let limit = RateLimit::new(10, 60);
/// assert_eq!((limit.burst(), limit.per_minute()), (10, 60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    burst: u32,
    per_minute: u32,
}

impl RateLimit {
    /// `burst` requests at once (at least 1), refilled at `per_minute` per minute (at least 1).
    pub const fn new(burst: u32, per_minute: u32) -> RateLimit {
        RateLimit {
            burst: if burst == 0 { 1 } else { burst },
            per_minute: if per_minute == 0 { 1 } else { per_minute },
        }
    }

    /// The bucket size.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The refill rate.
    pub const fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// The bucket size in [`UNIT`]s.
    pub(crate) fn capacity(self) -> u64 {
        u64::from(self.burst) * UNIT
    }

    /// [`UNIT`]s refilled per second.
    pub(crate) fn rate(self) -> u64 {
        u64::from(self.per_minute) * (UNIT / 60)
    }

    /// Seconds after which a bucket is full again, however empty it was.
    pub(crate) fn refill_secs(self) -> u64 {
        self.capacity().div_ceil(self.rate())
    }
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LimitedEndpoint {
    /// `/authorize`.
    Authorize,
    /// `/token`, `/revoke`, `/introspect` and the account API.
    Token,
    /// `/register`.
    Register,
    /// The login chooser, consent and the login methods' paths.
    Login,
}

impl LimitedEndpoint {
    /// A stable lowercase name (`authorize`, `token`, `register`, `login`), for logs and
    /// storage.
    pub const fn name(self) -> &'static str {
        match self {
            LimitedEndpoint::Authorize => "authorize",
            LimitedEndpoint::Token => "token",
            LimitedEndpoint::Register => "register",
            LimitedEndpoint::Login => "login",
        }
    }
}

/// What a rate limit says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit; one request was taken from the bucket.
    Allowed,
    /// Over the limit: nothing was taken; a request is available again in `retry_after`
    /// seconds (for `Retry-After`).
    Limited {
        /// Seconds until the bucket holds a request again (at least 1).
        retry_after: u64,
    },
}

/// Where the token buckets live.
///
/// Every implementation must decide exactly as [`MemoryRateLimitStore`] does for the
/// same sequence of calls: a bucket of (`endpoint`, `client`) starts full
/// ([`RateLimit::burst`] requests), refills [`RateLimit::per_minute`] requests per minute
/// in whole seconds of `now` (1/60 000 of a request per unit, integers only, capped at
/// the burst; a `now` before the bucket's last update adds nothing), and each call takes
/// one request if the bucket holds one. A take must be atomic, across processes when the
/// store is shared: concurrent callers cannot take the same last request.
///
/// Methods return boxed futures so the trait can be used as `Arc<dyn RateLimitStore>`.
/// The store never reads a clock.
///
/// **When the store fails, the provider lets requests through** (fails open) with a
/// warning in the log. Rate limits protect capacity, not accounts: the password lockout, which does
/// protect accounts, fails closed on its own, and every endpoint behind a limit still
/// authenticates its caller. Refusing every authorize, token and login request while the
/// shared database hiccups would turn a database outage into a provider outage (and
/// make the limit store a single point of failure for token refreshes that need no
/// database otherwise), which is the denial of service the limits exist to prevent.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Takes one request from the bucket of (`endpoint`, `client`) at `now`. `client` is
    /// already grouped (IPv4 as is, IPv6 by its /64); `None` is the bucket shared by
    /// requests without an address.
    fn take(
        &self,
        endpoint: LimitedEndpoint,
        client: Option<IpAddr>,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<RateDecision, StoreError>>;

    /// Deletes the buckets of `endpoint` that are full again at `now` under `limit`: they
    /// hold no information, so deleting them changes no decision. Provider maintenance
    /// calls it for each limited endpoint. Returns how many were deleted.
    fn purge(
        &self,
        endpoint: LimitedEndpoint,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// Most buckets kept at once; beyond that, new addresses share a global bucket.
const MAX_BUCKETS: usize = 20_000;

/// One request, in the units a bucket counts: a rate of `n` per minute refills `n * 1000`
/// units per second, exactly, with no floating point.
pub(crate) const UNIT: u64 = 60_000;

/// A bucket as a store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// In [`UNIT`]s.
    pub(crate) tokens: u64,
    pub(crate) updated_at: u64,
}

/// The policy of one take, over the bucket as stored (`None`: never used or purged).
/// Returns the bucket to store and the decision.
pub(crate) fn take(limit: RateLimit, bucket: Option<Bucket>, now: u64) -> (Bucket, RateDecision) {
    let capacity = limit.capacity();
    let rate = limit.rate();
    let mut bucket = bucket.unwrap_or(Bucket {
        tokens: capacity,
        updated_at: now,
    });
    let elapsed = now.saturating_sub(bucket.updated_at);
    bucket.tokens = bucket
        .tokens
        .saturating_add(elapsed.saturating_mul(rate))
        .min(capacity);
    bucket.updated_at = bucket.updated_at.max(now);
    if bucket.tokens >= UNIT {
        bucket.tokens -= UNIT;
        (bucket, RateDecision::Allowed)
    } else {
        let retry_after = retry_after(limit, bucket.tokens);
        (bucket, RateDecision::Limited { retry_after })
    }
}

/// Seconds until a bucket holding `tokens` units holds a request.
pub(crate) fn retry_after(limit: RateLimit, tokens: u64) -> u64 {
    UNIT.saturating_sub(tokens).div_ceil(limit.rate()).max(1)
}

/// Whether a bucket is full again at `now` (so it can be forgotten).
fn is_full(limit: RateLimit, bucket: &Bucket, now: u64) -> bool {
    let elapsed = now
        .saturating_sub(bucket.updated_at)
        .min(limit.refill_secs());
    bucket.tokens.saturating_add(elapsed * limit.rate()) >= limit.capacity()
}

/// The buckets in process memory: one replica's own. At most 20 000 buckets; beyond
/// that, full buckets are forgotten, and new addresses share the endpoint's global bucket
/// while none is.
///
/// ```
/// use oidc_core::provider::MemoryRateLimitStore;
///
/// let store = MemoryRateLimitStore::new();
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct MemoryRateLimitStore {
    buckets: Mutex<HashMap<(LimitedEndpoint, Option<IpAddr>), Bucket>>,
}

impl MemoryRateLimitStore {
    /// An empty store.
    pub fn new() -> MemoryRateLimitStore {
        MemoryRateLimitStore::default()
    }

    fn take_now(
        &self,
        endpoint: LimitedEndpoint,
        client: Option<IpAddr>,
        limit: RateLimit,
        now: u64,
    ) -> RateDecision {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = (endpoint, client);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_BUCKETS {
            // Forget buckets that have refilled completely: they hold no information.
            buckets.retain(|_, b| !is_full(limit, b, now));
            if buckets.len() >= MAX_BUCKETS {
                key = (endpoint, None);
            }
        }
        let (bucket, decision) = take(limit, buckets.get(&key).copied(), now);
        buckets.insert(key, bucket);
        decision
    }
}

impl RateLimitStore for MemoryRateLimitStore {
    fn take(
        &self,
        endpoint: LimitedEndpoint,
        client: Option<IpAddr>,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<RateDecision, StoreError>> {
        let decision = self.take_now(endpoint, client, limit, now);
        Box::pin(async move { Ok(decision) })
    }

    fn purge(
        &self,
        endpoint: LimitedEndpoint,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let before = buckets.len();
        buckets.retain(|(e, _), b| *e != endpoint || !is_full(limit, b, now));
        let purged = u64::try_from(before - buckets.len()).unwrap_or(u64::MAX);
        Box::pin(async move { Ok(purged) })
    }
}

/// IPv6 clients usually control a whole /64, so they share one bucket; IPv4-mapped
/// addresses count as IPv4.
pub(crate) fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut segments = v6.segments();
            for segment in &mut segments[4..] {
                *segment = 0;
            }
            IpAddr::V6(segments.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    /// The limiter as the router used it before stores: groups the address, answers
    /// `Err(retry_after)`. The tests below keep their assertions.
    struct RateLimiter(MemoryRateLimitStore);

    impl RateLimiter {
        fn new() -> RateLimiter {
            RateLimiter(MemoryRateLimitStore::new())
        }

        fn check(
            &self,
            endpoint: LimitedEndpoint,
            limit: RateLimit,
            client: Option<IpAddr>,
            now: u64,
        ) -> Result<(), u64> {
            match self.0.take_now(endpoint, client.map(group), limit, now) {
                RateDecision::Allowed => Ok(()),
                RateDecision::Limited { retry_after } => Err(retry_after),
            }
        }
    }

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = RateLimiter::new();
        let limit = RateLimit::new(2, 60);
        let ip = Some("192.0.2.1".parse().unwrap());
        assert!(limiter.check(LimitedEndpoint::Token, limit, ip, T0).is_ok());
        assert!(limiter.check(LimitedEndpoint::Token, limit, ip, T0).is_ok());
        assert_eq!(limiter.check(LimitedEndpoint::Token, limit, ip, T0), Err(1));
        assert!(
            limiter
                .check(LimitedEndpoint::Token, limit, ip, T0 + 1)
                .is_ok()
        );
        let other = Some("192.0.2.2".parse().unwrap());
        assert!(
            limiter
                .check(LimitedEndpoint::Token, limit, other, T0)
                .is_ok()
        );
        assert!(
            limiter
                .check(LimitedEndpoint::Authorize, limit, ip, T0)
                .is_ok()
        );
    }

    #[test]
    fn retry_after_reflects_the_refill_rate() {
        let limiter = RateLimiter::new();
        let limit = RateLimit::new(1, 1);
        assert!(
            limiter
                .check(LimitedEndpoint::Register, limit, None, T0)
                .is_ok()
        );
        assert_eq!(
            limiter.check(LimitedEndpoint::Register, limit, None, T0),
            Err(60)
        );
    }

    #[test]
    fn ipv6_groups_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(group(a), group(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(group(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn purge_forgets_only_full_buckets_of_its_endpoint() {
        let store = MemoryRateLimitStore::new();
        let limit = RateLimit::new(2, 60);
        let ip = Some("192.0.2.1".parse().unwrap());
        store.take_now(LimitedEndpoint::Token, ip, limit, T0);
        store.take_now(LimitedEndpoint::Login, ip, limit, T0);
        assert_eq!(block_on(store.purge(LimitedEndpoint::Token, limit, T0)), 0);
        assert_eq!(limit.refill_secs(), 2);
        assert_eq!(
            block_on(store.purge(LimitedEndpoint::Token, limit, T0 + 1)),
            1
        );
        assert_eq!(
            store.buckets.lock().unwrap().len(),
            1,
            "login's bucket stays"
        );
    }

    #[test]
    fn a_clock_going_back_adds_nothing() {
        let limit = RateLimit::new(1, 60);
        let (bucket, decision) = take(limit, None, T0);
        assert_eq!(decision, RateDecision::Allowed);
        let (bucket, decision) = take(limit, Some(bucket), T0 - 100);
        assert_eq!(decision, RateDecision::Limited { retry_after: 1 });
        assert_eq!(bucket.updated_at, T0);
    }

    /// Polls a future that is ready at once (the memory store's).
    fn block_on<T>(mut future: BoxFuture<'_, Result<T, StoreError>>) -> T {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(value)) => value,
            _ => panic!("the memory store answers at once"),
        }
    }
}
