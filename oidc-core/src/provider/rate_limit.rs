// Hand-written, not `governor`: every check takes `now` from the provider's injected Unix clock and memory is capped at `MAX_BUCKETS` addresses (then one shared bucket); governor's keyed limiter reads a clock fixed at construction and keeps an unbounded key map (plus dashmap and quanta in the tree).
//! Token-bucket rate limits per client IP address, in memory (per replica).
//!
//! The client address comes from the request extensions as a [`std::net::SocketAddr`],
//! put there by whatever accepted the connection; forwarded headers (`X-Forwarded-For`,
//! `Forwarded`) are never read, since any client can write them (RFC 9700 §4.13). A server
//! behind a reverse proxy must put the real peer address into the extensions itself.
//! Requests without an address share one global bucket per endpoint.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

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
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LimitedEndpoint {
    Authorize,
    Token,
    Register,
    Login,
}

impl LimitedEndpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            LimitedEndpoint::Authorize => "authorize",
            LimitedEndpoint::Token => "token",
            LimitedEndpoint::Register => "register",
            LimitedEndpoint::Login => "login",
        }
    }
}

/// Most buckets kept at once; beyond that, new addresses share a global bucket.
const MAX_BUCKETS: usize = 20_000;

/// One request, in the units a bucket counts: a rate of `n` per minute refills `n * 1000`
/// units per second, exactly, with no floating point.
const UNIT: u64 = 60_000;

struct Bucket {
    /// In [`UNIT`]s.
    tokens: u64,
    updated_at: u64,
}

/// The buckets of every endpoint and address.
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<(LimitedEndpoint, Option<IpAddr>), Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new() -> RateLimiter {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the bucket of (`endpoint`, `client`) at `now`; when it is
    /// empty, returns the seconds until one is available (for `Retry-After`).
    pub(crate) fn check(
        &self,
        endpoint: LimitedEndpoint,
        limit: RateLimit,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<(), u64> {
        let capacity = u64::from(limit.burst) * UNIT;
        // Units refilled per second.
        let rate = u64::from(limit.per_minute) * (UNIT / 60);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);

        let mut key = (endpoint, client.map(group));
        if !buckets.contains_key(&key) && buckets.len() >= MAX_BUCKETS {
            // Forget buckets that have refilled completely: they hold no information.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_sub(b.updated_at).saturating_mul(rate) < capacity
            });
            if buckets.len() >= MAX_BUCKETS {
                key = (endpoint, None);
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
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
            Ok(())
        } else {
            Err((UNIT - bucket.tokens).div_ceil(rate).max(1))
        }
    }
}

/// IPv6 clients usually control a whole /64, so they share one bucket; IPv4-mapped
/// addresses count as IPv4.
fn group(ip: IpAddr) -> IpAddr {
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
}
