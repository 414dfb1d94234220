//! Token Status Lists (draft-ietf-oauth-status-list): refuse tokens their issuer has
//! revoked or suspended, checked against a compressed bit list the issuer publishes.
//!
//! A token that opts in carries `"status": {"status_list": {"idx": 7, "uri": "https://…"}}`;
//! the verifier fetches the Status List Token at `uri` (a JWS with `typ` `statuslist+jwt`,
//! signed with the issuer's keys), keeps it in a [`StatusListCache`] refreshed in the
//! background, and looks up bit(s) `idx`. Enable it with
//! [`VerifierBuilder::status_lists`](crate::VerifierBuilder::status_lists); the crate docs
//! describe the trade-offs.
//!
//! The cache is a sans-IO state machine like [`JwksCache`](crate::jwks::JwksCache): it takes
//! `now`, says what to fetch and digests responses; a tokio task drives it.

mod cache;
#[cfg(feature = "runtime")]
pub(crate) mod driver;
mod list;
pub(crate) mod token;

use std::time::Duration;

use http::Uri;

pub use cache::{Held, StatusAction, StatusCheck, StatusDemand, StatusListCache, StatusUpdate};
pub use list::{StatusList, StatusListError};

use crate::error::BuildError;
use crate::url;

/// What happens to tokens whose status list cannot be had: never fetched successfully, or
/// older than `max_age + stale_if_error` because refreshes keep failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureMode {
    /// Refuse them with [`ErrorKind::StatusUnavailable`](crate::ErrorKind::StatusUnavailable)
    /// (the tower layer answers 503 with `Retry-After`). The default: a revoked token is
    /// never accepted because the list server is down.
    #[default]
    FailClosed,
    /// Accept them (if everything else checks out), count each in
    /// [`MetricsSnapshot::status_fail_open`](crate::MetricsSnapshot::status_fail_open) and
    /// log a warning once per list each time it becomes unavailable. Availability over
    /// revocation: an attacker who can block the list server can use revoked tokens.
    FailOpen,
}

/// Status list checking: when a token must carry a status, how fresh lists must be, what
/// to do when they cannot be fetched, and the limits. `Default` gives the documented
/// defaults.
///
/// ```
/// use std::time::Duration;
/// use jwks_verify::status_list::{FailureMode, StatusListConfig};
///
/// let config = StatusListConfig::new()
///     .require_status(true)
///     .max_age(Duration::from_secs(10))
///     .failure_mode(FailureMode::FailClosed)
///     .allow_uri_prefix("https://status.example.com/lists/");
/// assert_eq!(config.max_age_value(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct StatusListConfig {
    pub(crate) require_status: bool,
    pub(crate) max_age: Duration,
    pub(crate) min_refresh: Duration,
    pub(crate) stale_if_error: Duration,
    pub(crate) failure_mode: FailureMode,
    pub(crate) max_lists: usize,
    pub(crate) max_response_bytes: usize,
    pub(crate) max_list_bytes: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) allowed_prefixes: Vec<String>,
}

impl Default for StatusListConfig {
    fn default() -> Self {
        StatusListConfig {
            require_status: false,
            max_age: Duration::from_secs(30),
            min_refresh: Duration::from_secs(1),
            stale_if_error: Duration::from_secs(300),
            failure_mode: FailureMode::FailClosed,
            max_lists: 64,
            max_response_bytes: 1024 * 1024,
            max_list_bytes: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(5),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            allowed_prefixes: Vec::new(),
        }
    }
}

impl StatusListConfig {
    /// The defaults: status optional, lists at most 30 s old, 5 min stale-if-error, then
    /// [`FailureMode::FailClosed`]; 64 lists, 1 MiB responses, 16 MiB decompressed lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse tokens without a `status` claim (default `false`: they are accepted
    /// unchecked, so turn this on once the issuer puts a status into every token).
    pub fn require_status(mut self, require: bool) -> Self {
        self.require_status = require;
        self
    }

    /// Longest time a list is used before it is refreshed (30 s). The list token's `ttl` may
    /// ask for less, down to [`min_refresh`](Self::min_refresh). This bounds how long a
    /// revoked token stays accepted.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Floor of the refresh interval whatever `ttl` says (1 s), so an issuer's tiny `ttl`
    /// cannot make every verifier hammer the list server.
    pub fn min_refresh(mut self, floor: Duration) -> Self {
        self.min_refresh = floor;
        self
    }

    /// How long past its refresh time a list stays in use while refreshes fail (5 min);
    /// after that, the [`FailureMode`] applies.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.stale_if_error = grace;
        self
    }

    /// What happens to tokens whose list cannot be had ([`FailureMode::FailClosed`]).
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }

    /// Most lists held at once (64); the least recently used is dropped for a new one.
    pub fn max_lists(mut self, max: usize) -> Self {
        self.max_lists = max.max(1);
        self
    }

    /// Largest Status List Token response accepted (1 MiB).
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Largest decompressed list accepted (16 MiB), enforced while inflating.
    pub fn max_list_bytes(mut self, max: usize) -> Self {
        self.max_list_bytes = max;
        self
    }

    /// Lists no token referred to for this long are no longer refreshed and are dropped
    /// (10 min).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Per-fetch timeout, which is also the longest a first use of a list waits (5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Also fetch lists whose URI starts with `prefix` (an absolute `https` URL, or `http`
    /// to a loopback host). Without any, only URIs on an accepted issuer's origin (same
    /// scheme, host and port) are fetched. The match is on whole path segments: prefix
    /// `https://s.example/lists` allows `https://s.example/lists/1`, not
    /// `https://s.example/lists-evil`.
    pub fn allow_uri_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.allowed_prefixes.push(prefix.into());
        self
    }

    /// Whether tokens without a `status` claim are refused.
    pub fn require_status_value(&self) -> bool {
        self.require_status
    }

    /// The configured maximum list age.
    pub fn max_age_value(&self) -> Duration {
        self.max_age
    }

    /// The configured failure mode.
    pub fn failure_mode_value(&self) -> FailureMode {
        self.failure_mode
    }

    /// How long a list fetched with this `ttl` is used before a refresh:
    /// `max(min(ttl, max_age), min_refresh)`.
    pub(crate) fn refresh_interval(&self, ttl: Option<u64>) -> Duration {
        let ttl = ttl.map_or(self.max_age, Duration::from_secs);
        ttl.min(self.max_age).max(self.min_refresh)
    }
}

/// Longest status list URI considered.
const MAX_URI_BYTES: usize = 2048;

/// Which status list URIs may be fetched: a token is signed, but a URI it names is still
/// the issuer's word, and fetching arbitrary URIs would make every verifier an SSRF proxy.
#[derive(Debug, Clone)]
pub(crate) struct AllowRule {
    origins: Vec<Origin>,
    prefixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let port = uri.port_u16().or(match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })?;
        Some(Origin {
            host: uri.host()?.to_ascii_lowercase(),
            scheme,
            port,
        })
    }
}

impl AllowRule {
    /// Issuer origins plus the configured prefixes; a prefix that is not a safe key-source
    /// URL is refused.
    pub(crate) fn new(issuers: &[String], prefixes: &[String]) -> Result<Self, BuildError> {
        for prefix in prefixes {
            url::key_source_url(prefix)?;
        }
        Ok(AllowRule {
            origins: issuers
                .iter()
                .filter_map(|issuer| Origin::of(&issuer.parse().ok()?))
                .collect(),
            prefixes: prefixes.to_vec(),
        })
    }

    /// The URI to fetch, if `uri` may be fetched: `https` (or `http` to loopback), no
    /// userinfo, no dot segments, and on an issuer's origin or under an allowed prefix.
    pub(crate) fn check(&self, uri: &str) -> Option<Uri> {
        if uri.len() > MAX_URI_BYTES || uri.contains('#') {
            return None;
        }
        let parsed = url::key_source_url(uri).ok()?;
        let dot_segment = parsed.path().split('/').any(|segment| {
            segment == "." || segment == ".." || segment.to_ascii_lowercase().contains("%2e")
        });
        if dot_segment {
            return None;
        }
        let origin = Origin::of(&parsed)?;
        let under_prefix = self.prefixes.iter().any(|prefix| {
            uri.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?'])
            })
        });
        (under_prefix || self.origins.contains(&origin)).then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefixes: &[&str]) -> AllowRule {
        let prefixes: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
        AllowRule::new(
            &[
                "https://issuer.example".to_owned(),
                "http://127.0.0.1:9/tenant".to_owned(),
            ],
            &prefixes,
        )
        .unwrap()
    }

    #[test]
    fn issuer_origins_are_allowed() {
        let r = rule(&[]);
        for ok in [
            "https://issuer.example/statuslists/1",
            "https://ISSUER.example:443/x?y=1",
            "http://127.0.0.1:9/other/path",
        ] {
            assert!(r.check(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn attack_ssrf_status_uri_outside_allowed_origins_is_refused() {
        let r = rule(&["https://status.example/lists/"]);
        for bad in [
            "https://evil.example/statuslists/1",
            "https://issuer.example.evil.example/1",
            "https://issuer.example:8443/1",
            "http://issuer.example/1",
            "http://127.0.0.1:10/1",
            "http://169.254.169.254/latest/meta-data",
            "https://user:pass@issuer.example/1",
            "https://issuer.example/lists/../admin",
            "https://issuer.example/lists/%2e%2e/admin",
            "https://status.example/other",
            "https://status.example/lists/../admin",
            "file:///etc/passwd",
            "/statuslists/1",
            "",
        ] {
            assert!(r.check(bad).is_none(), "{bad}");
        }
        assert!(r.check("https://status.example/lists/7").is_some());
        let long = format!("https://issuer.example/{}", "a".repeat(MAX_URI_BYTES));
        assert!(r.check(&long).is_none());
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r = rule(&["https://status.example/lists"]);
        assert!(r.check("https://status.example/lists").is_some());
        assert!(r.check("https://status.example/lists/1").is_some());
        assert!(r.check("https://status.example/lists?id=1").is_some());
        assert!(r.check("https://status.example/lists-evil/1").is_none());
        assert!(r.check("https://status.example/listsx").is_none());
    }

    #[test]
    fn unsafe_prefixes_are_refused_at_build() {
        let issuers = ["https://issuer.example".to_owned()];
        assert!(AllowRule::new(&issuers, &["http://status.example/".to_owned()]).is_err());
        assert!(AllowRule::new(&issuers, &["https://u:p@status.example/".to_owned()]).is_err());
    }

    #[test]
    fn refresh_interval_is_clamped() {
        let c = StatusListConfig::default();
        assert_eq!(c.refresh_interval(None), Duration::from_secs(30));
        assert_eq!(c.refresh_interval(Some(10)), Duration::from_secs(10));
        assert_eq!(c.refresh_interval(Some(3600)), Duration::from_secs(30));
        assert_eq!(
            c.refresh_interval(Some(0)),
            Duration::from_secs(1),
            "ttl floor"
        );
    }
}
