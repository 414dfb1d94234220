//! Server-side sessions and sign-in transactions, and the cookies that name them.
//!
//! A cookie holds only a random 256-bit value; the server keeps its SHA-256, so a leaked
//! session table names no usable cookie. Both tables are bounded: the oldest entries go
//! first when one is full. Ages are measured on the service's [`Clock`].
//!
//! [`Sessions`] is the in-process table; `postgres` (feature `postgres`) keeps the same
//! records in PostgreSQL, their secrets sealed by `sealed`, so that every replica serves
//! them. `super::directory` chooses between the two.

#[cfg(feature = "postgres")]
pub(super) mod postgres;
#[cfg(feature = "postgres")]
pub(super) mod sealed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::COOKIE;
use jwks_verify::Clock;

use crate::store::Owner;

/// How long a sign-in may take, from the redirect to the provider to the callback.
pub(super) const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// Most sign-ins in flight at once.
pub(super) const MAX_LOGINS: usize = 10_000;

/// A random value for a cookie, `state`, nonce, PKCE verifier or CSRF token: 32 bytes,
/// base64url.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system generator does not fail on supported platforms; a zero token would be
    // refused later as a mismatch, never accepted.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn sha256(text: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Constant-time equality of two strings.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The value of cookie `name`, if the request sent exactly one.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name {
                if found.is_some() {
                    // Two cookies of one name (e.g. one planted for a parent domain).
                    return None;
                }
                found = Some(value);
            }
        }
    }
    found
}

/// The tokens of a session, renewed together under the session's lock.
#[derive(Clone)]
pub(super) struct Tokens {
    pub(super) access_token: String,
    pub(super) refresh_token: Option<String>,
    /// When the access token expires (its `exp`, Unix seconds).
    pub(super) access_expires_at: u64,
}

/// A signed-in person.
pub(super) struct Session {
    /// SHA-256 of the session cookie's value: the session's key in its table.
    pub(super) key: [u8; 32],
    pub(super) owner: Owner,
    /// A name to greet them with (ID token `name`, `email` or `preferred_username`).
    pub(super) display_name: String,
    pub(super) csrf: String,
    /// In process, one value shared by the session's requests: the lock serialises
    /// renewals, since two concurrent refreshes would present one refresh token twice,
    /// which the provider treats as theft and answers by revoking the grant. In
    /// PostgreSQL, this request's copy; renewals are serialised across replicas by the
    /// row's version (see `SessionDirectory::fresh_access_token`).
    pub(super) tokens: tokio::sync::Mutex<Tokens>,
    /// The version of the shared row the tokens were read at (0 in process).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) version: i64,
    /// What this process learnt about the person's apps.
    pub(super) apps: Arc<AppNames>,
    /// When it started (the clock's monotonic time; in process only).
    created: Instant,
}

impl Session {
    /// Whether names may be asked for again at `now` (at most once per `interval`);
    /// records the ask.
    pub(super) fn may_refresh_names(&self, interval: Duration, now: Instant) -> bool {
        self.apps.may_refresh(interval, now)
    }
}

/// Display names of apps (client ids), learnt from the provider's grant list. Kept in
/// process memory only, also when the session itself is shared: a cache, not a secret.
#[derive(Default)]
pub(super) struct AppNames {
    pub(super) names: Mutex<HashMap<String, String>>,
    /// When names were last asked for because an app was unknown.
    asked: Mutex<Option<Instant>>,
}

impl AppNames {
    /// Whether names may be asked for again at `now` (at most once per `interval`);
    /// records the ask.
    pub(super) fn may_refresh(&self, interval: Duration, now: Instant) -> bool {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        if asked.is_some_and(|at| now.saturating_duration_since(at) < interval) {
            return false;
        }
        *asked = Some(now);
        true
    }
}

/// A sign-in in flight, found by its `state`.
pub(super) struct Login {
    /// The login cookie's value: the callback must come from the browser that started.
    pub(super) binding: String,
    pub(super) verifier: String,
    pub(super) nonce: String,
    /// Where to go afterwards (a path under `/app/`).
    pub(super) next: String,
}

impl Login {
    pub(super) fn new(binding: String, verifier: String, nonce: String, next: String) -> Login {
        Login {
            binding,
            verifier,
            nonce,
            next,
        }
    }
}

/// The session and login tables.
pub(super) struct Sessions {
    lifetime: Duration,
    max_sessions: usize,
    sessions: Mutex<HashMap<[u8; 32], Arc<Session>>>,
    /// Sign-ins in flight, with when each started.
    logins: Mutex<HashMap<[u8; 32], (Instant, Login)>>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    pub(super) fn new(lifetime: Duration, max_sessions: usize, clock: Arc<dyn Clock>) -> Sessions {
        Sessions {
            lifetime,
            max_sessions: max_sessions.max(1),
            sessions: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub(super) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session; returns the cookie value.
    pub(super) fn create(&self, owner: Owner, display_name: String, tokens: Tokens) -> String {
        let cookie = random_token();
        let now = self.clock.now();
        let key = sha256(&cookie);
        let session = Arc::new(Session {
            key,
            owner,
            display_name,
            csrf: random_token(),
            tokens: tokio::sync::Mutex::new(tokens),
            version: 0,
            apps: Arc::default(),
            created: now,
        });
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let lifetime = self.lifetime;
        sessions.retain(|_, session| now.saturating_duration_since(session.created) < lifetime);
        if sessions.len() >= self.max_sessions {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, session)| session.created)
                .map(|(key, _)| *key);
            if let Some(key) = oldest {
                sessions.remove(&key);
            }
        }
        sessions.insert(key, session);
        cookie
    }

    /// The live session named by a cookie value.
    pub(super) fn get(&self, cookie: &str) -> Option<Arc<Session>> {
        let key = sha256(cookie);
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let session = sessions.get(&key)?;
        if self.clock.elapsed(session.created) >= self.lifetime {
            sessions.remove(&key);
            return None;
        }
        Some(Arc::clone(session))
    }

    /// Ends the session named by a cookie value.
    #[cfg(test)]
    pub(super) fn end(&self, cookie: &str) {
        self.end_key(&sha256(cookie));
    }

    /// Ends the session whose cookie hashes to `key`.
    pub(super) fn end_key(&self, key: &[u8; 32]) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Records a sign-in in flight under its `state`.
    pub(super) fn start_login(&self, state: &str, login: Login) {
        let now = self.clock.now();
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        logins.retain(|_, (created, _)| now.saturating_duration_since(*created) < LOGIN_LIFETIME);
        if logins.len() >= MAX_LOGINS {
            let oldest = logins
                .iter()
                .min_by_key(|(_, (created, _))| *created)
                .map(|(key, _)| *key);
            if let Some(key) = oldest {
                logins.remove(&key);
            }
        }
        logins.insert(sha256(state), (now, login));
    }

    /// Takes the sign-in with this `state` (once), if it has not expired.
    pub(super) fn take_login(&self, state: &str) -> Option<Login> {
        let (created, login) = self
            .logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&sha256(state))?;
        (self.clock.elapsed(created) < LOGIN_LIFETIME).then_some(login)
    }
}

#[cfg(test)]
mod tests {
    use jwks_verify::ManualClock;

    use super::*;

    fn table(lifetime: Duration, max_sessions: usize) -> (Sessions, ManualClock) {
        let clock = ManualClock::at_unix(1_700_000_000);
        let sessions = Sessions::new(lifetime, max_sessions, Arc::new(clock.clone()));
        (sessions, clock)
    }

    fn tokens() -> Tokens {
        Tokens {
            access_token: "a".into(),
            refresh_token: None,
            access_expires_at: 0,
        }
    }

    #[test]
    fn a_cookie_names_its_session_only() {
        let (sessions, _) = table(Duration::from_secs(60), 10);
        let alice = sessions.create(Owner::new("alice").unwrap(), "Alice".into(), tokens());
        let bob = sessions.create(Owner::new("bob").unwrap(), "Bob".into(), tokens());
        assert_eq!(sessions.get(&alice).unwrap().owner.as_str(), "alice");
        assert_eq!(sessions.get(&bob).unwrap().owner.as_str(), "bob");
        assert!(sessions.get("forged").is_none());
        sessions.end(&alice);
        assert!(sessions.get(&alice).is_none());
        assert!(sessions.get(&bob).is_some());
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_oldest() {
        let (sessions, clock) = table(Duration::from_secs(60), 2);
        let first = sessions.create(Owner::new("a").unwrap(), String::new(), tokens());
        clock.advance(Duration::from_millis(1));
        let second = sessions.create(Owner::new("b").unwrap(), String::new(), tokens());
        clock.advance(Duration::from_millis(1));
        let third = sessions.create(Owner::new("c").unwrap(), String::new(), tokens());
        assert!(sessions.get(&first).is_none());
        assert!(sessions.get(&second).is_some() && sessions.get(&third).is_some());
    }

    #[test]
    fn expired_sessions_are_gone() {
        let (sessions, _) = table(Duration::ZERO, 2);
        let cookie = sessions.create(Owner::new("a").unwrap(), String::new(), tokens());
        assert!(sessions.get(&cookie).is_none());
    }

    #[test]
    fn a_session_expires_after_its_lifetime_on_the_clock() {
        let (sessions, clock) = table(Duration::from_secs(12 * 3600), 2);
        let cookie = sessions.create(Owner::new("a").unwrap(), String::new(), tokens());
        clock.advance(Duration::from_secs(12 * 3600 - 1));
        assert!(sessions.get(&cookie).is_some(), "one second before the end");
        clock.advance(Duration::from_secs(1));
        assert!(
            sessions.get(&cookie).is_none(),
            "at the end of its lifetime"
        );
    }

    #[test]
    fn a_login_expires_after_its_lifetime_on_the_clock() {
        let (sessions, clock) = table(Duration::from_secs(60), 2);
        let login = || Login::new("b".into(), "v".into(), "n".into(), "/app/".into());
        sessions.start_login("early", login());
        sessions.start_login("late", login());
        clock.advance(LOGIN_LIFETIME - Duration::from_secs(1));
        assert!(sessions.take_login("early").is_some());
        clock.advance(Duration::from_secs(1));
        assert!(sessions.take_login("late").is_none());
    }

    #[test]
    fn app_names_wait_for_the_interval_on_the_clock() {
        let (sessions, clock) = table(Duration::from_secs(3600), 2);
        let cookie = sessions.create(Owner::new("a").unwrap(), String::new(), tokens());
        let session = sessions.get(&cookie).unwrap();
        let interval = Duration::from_secs(30);
        assert!(session.may_refresh_names(interval, clock.now()));
        clock.advance(Duration::from_secs(29));
        assert!(!session.may_refresh_names(interval, clock.now()));
        clock.advance(Duration::from_secs(1));
        assert!(session.may_refresh_names(interval, clock.now()));
    }

    #[test]
    fn a_login_state_is_taken_once() {
        let (sessions, _) = table(Duration::from_secs(60), 2);
        sessions.start_login(
            "state",
            Login::new("b".into(), "v".into(), "n".into(), "/app/".into()),
        );
        assert!(sessions.take_login("other").is_none());
        assert_eq!(sessions.take_login("state").unwrap().verifier, "v");
        assert!(sessions.take_login("state").is_none());
    }

    #[test]
    fn app_names_are_asked_for_at_most_once_per_interval() {
        let (sessions, _) = table(Duration::from_secs(60), 2);
        let cookie = sessions.create(Owner::new("a").unwrap(), String::new(), tokens());
        let session = sessions.get(&cookie).unwrap();
        let now = Instant::now();
        assert!(session.may_refresh_names(Duration::from_secs(30), now));
        assert!(!session.may_refresh_names(Duration::from_secs(30), now));
        assert!(session.may_refresh_names(Duration::ZERO, now));
    }

    #[test]
    fn duplicate_cookies_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; s=mine".parse().unwrap());
        assert_eq!(cookie(&headers, "s"), Some("mine"));
        headers.append(COOKIE, "s=planted".parse().unwrap());
        assert_eq!(cookie(&headers, "s"), None);
        assert_eq!(cookie(&headers, "a"), Some("1"));
    }
}
