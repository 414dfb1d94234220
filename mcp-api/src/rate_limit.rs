//! Per-user request rate limits: each token subject gets its own allowance, so one user
//! (or one leaked token) cannot take the service from the others.
//!
//! The limiter is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! instant per subject): a sustained rate plus a burst. A request over the limit gets
//! `429 Too Many Requests` with `Retry-After`; on the MCP routes the body is also a
//! JSON-RPC error, so MCP clients that read bodies see why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{Either, Ready, ready};
use http::header::RETRY_AFTER;
use http::{HeaderValue, Request, Response, StatusCode};
use jwks_verify::{Clock, Verified};
use serde_json::json;
use tower_service::Service;

use crate::auth::AccessClaims;
use crate::http::{ResponseBody, json_response};

/// Most subjects whose allowance is remembered; past it, subjects with a full allowance
/// (nothing to remember) are forgotten first.
const MAX_TRACKED_SUBJECTS: usize = 100_000;

/// A per-subject limit: `per_second` requests sustained, `burst` at once.
///
/// ```
/// use mcp_api::RateLimit;
///
/// let limit = RateLimit::new(20, 200);
/// assert_eq!(limit.burst(), 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
}

impl RateLimit {
    /// `per_second` requests per second sustained (at least 1), up to `burst` at once
    /// (at least 1).
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            burst: burst.max(1),
        }
    }

    /// Requests per second, sustained.
    #[must_use]
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Requests allowed at once.
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.per_second
    }
}

/// The allowances of all subjects.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    /// Per subject, the theoretical arrival time of its next request.
    next: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `subject`'s allowance at `now`, or says how long to wait.
    pub(crate) fn check(&self, subject: &str, now: Instant) -> Result<(), Duration> {
        let interval = self.limit.interval();
        let tolerance = interval * (self.limit.burst - 1);
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let arrival = next.get(subject).copied().unwrap_or(now).max(now);
        let ahead = arrival - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        if next.len() >= MAX_TRACKED_SUBJECTS && !next.contains_key(subject) {
            next.retain(|_, arrival| *arrival > now);
        }
        next.insert(subject.to_owned(), arrival + interval);
        Ok(())
    }
}

/// Wraps a service so that each verified subject is held to the limit set in `limiter`
/// (none set: no limit). Must run inside the bearer-auth layer, which puts the verified
/// claims into the request. Allowances are counted on `clock`'s monotonic time.
#[derive(Clone)]
pub(crate) struct SubjectRateLimit<S> {
    inner: S,
    limiter: Arc<OnceLock<RateLimiter>>,
    clock: Arc<dyn Clock>,
    json_rpc: bool,
}

impl<S> SubjectRateLimit<S> {
    /// `json_rpc`: answer with a JSON-RPC error body (the MCP routes).
    pub(crate) fn new(
        inner: S,
        limiter: Arc<OnceLock<RateLimiter>>,
        clock: Arc<dyn Clock>,
        json_rpc: bool,
    ) -> Self {
        Self {
            inner,
            limiter,
            clock,
            json_rpc,
        }
    }
}

impl<S, B> Service<Request<B>> for SubjectRateLimit<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<ResponseBody>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limited = self.limiter.get().and_then(|limiter| {
            let subject = &request
                .extensions()
                .get::<Verified<AccessClaims>>()?
                .claims()
                .sub;
            limiter.check(subject, self.clock.now()).err()
        });
        match limited {
            None => Either::Left(self.inner.call(request)),
            Some(wait) => Either::Right(ready(Ok(too_many_requests(wait, self.json_rpc)))),
        }
    }
}

/// `429` with `Retry-After` in whole seconds (at least 1).
fn too_many_requests(wait: Duration, json_rpc: bool) -> Response<ResponseBody> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let message = format!("too many requests for this user; retry in {seconds} s");
    let mut response = if json_rpc {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": {"code": -32000, "message": message, "data": {"retry_after": seconds}},
            }),
        )
    } else {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limited", "message": message}),
        )
    };
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limiter = RateLimiter::new(RateLimit::new(10, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("alice", t0), Ok(()));
        }
        let wait = limiter.check("alice", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(limiter.check("alice", t0 + wait), Ok(()));
        assert!(limiter.check("alice", t0 + wait).is_err());
    }

    #[test]
    fn one_subject_at_its_limit_does_not_slow_another() {
        let limiter = RateLimiter::new(RateLimit::new(1, 1));
        let t0 = Instant::now();
        assert_eq!(limiter.check("mallory", t0), Ok(()));
        assert!(limiter.check("mallory", t0).is_err());
        assert_eq!(limiter.check("alice", t0), Ok(()));
    }

    #[test]
    fn an_idle_subject_gets_its_whole_burst_back() {
        let limiter = RateLimiter::new(RateLimit::new(2, 4));
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.check("alice", t0).unwrap();
        }
        let later = t0 + Duration::from_secs(10);
        for _ in 0..4 {
            assert_eq!(limiter.check("alice", later), Ok(()));
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = too_many_requests(Duration::from_millis(1), false);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let response = too_many_requests(Duration::from_millis(2500), true);
        assert_eq!(response.headers()[RETRY_AFTER], "3");
    }
}
