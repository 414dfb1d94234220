//! The local password login: users from configuration, Argon2id hashes, a server-rendered
//! form, CSRF tokens in the state store, and lockout after repeated failures.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use super::lockout::{LockoutOp, LockoutPolicy, LockoutStore, MemoryLockoutStore};
use super::params::{self, Params};
use super::password::{PasswordError, PasswordHashString, hash_with_params};
use super::{ClientIp, LocalUser};
use crate::audit::{self, AuditEvent};
use crate::authn::{
    AuthenticatedUser, Authenticator, BoxFuture, LoginMethod, LoginOutcome, LoginRequest,
    LoginStateStore, TransactionId, federated_subject,
};
use crate::html;
use crate::secret::Secret;
use crate::store::GrantLogin;
use crate::types::{Issuer, Subject};

/// The issuer part of a local user's subject: `federated_subject(PASSWORD_ISSUER, username)`.
pub const PASSWORD_ISSUER: &str = "urn:local-password";
/// The machine name of the password login.
pub const PASSWORD_METHOD: &str = "password";
/// The path the form is served for and posted to.
pub const PASSWORD_PATH: &str = "/login/password";

/// Longest username accepted, in characters.
const MAX_USERNAME_CHARS: usize = 64;
/// How long a rendered form stays usable.
const DEFAULT_FORM_TTL: Duration = Duration::from_secs(15 * 60);
/// Default number of password checks running at once.
const DEFAULT_MAX_CONCURRENT: usize = 4;
/// How long a request waits for a verification slot before giving up.
const SLOT_WAIT: Duration = Duration::from_secs(5);

const INVALID_CREDENTIALS: &str = "Invalid username or password.";

/// Counters of the password login, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordStats {
    /// Argon2 verifications run (real and dummy).
    pub verifications: u64,
    /// Verifications run against the dummy hash because the username is unknown.
    pub dummy_verifications: u64,
    /// Times a username or an address became locked.
    pub lockouts: u64,
    /// Attempts refused because a lock was in force.
    pub locked_attempts: u64,
}

/// The local password login: an [`Authenticator`] named `"password"` at
/// `/login/password`.
///
/// - [`start`](Authenticator::start) renders a form (no JavaScript) with a fresh CSRF
///   token, stored (hashed) in the [`LoginStateStore`] with the transaction it belongs to.
/// - `POST /login/password` takes the token from the store (single use) and requires the
///   posted transaction to be the one it was issued for, then checks the password with
///   Argon2id on the blocking pool, at most a few at a time. An unknown username is
///   checked against a dummy hash with the same parameters, so the work (and the answer,
///   "Invalid username or password.") is the same whether or not the user exists.
/// - Failures are counted per (username, client address), per client address and per
///   username (the address is the [`ClientIp`] request extension, else a [`SocketAddr`]
///   one; IPv6 by /64), and lock the guesser out as [`LockoutPolicy`] says: a username is
///   locked only at the addresses that failed, never everywhere, so a guesser cannot lock
///   the real user out. The counters live in a [`LockoutStore`]: in memory by default
///   (they reset when the process restarts, and each replica counts on its own), or shared
///   by every replica with [`with_lockout_store`](Self::with_lockout_store). Each attempt
///   is counted before its password is checked and taken back if it was right, so
///   concurrent guesses cannot all pass the last allowed attempt; when the store fails, the
///   attempt is refused with 503 (fail closed).
/// - The subject is `federated_subject("urn:local-password", username)`.
pub struct Passwords {
    users: HashMap<String, LocalUser>,
    /// The subjects of `users`.
    subjects: HashSet<Subject>,
    dummy: PasswordHashString,
    store: Arc<dyn LoginStateStore>,
    form_action: String,
    label: String,
    form_ttl: Duration,
    policy: LockoutPolicy,
    lockouts: Arc<dyn LockoutStore>,
    /// Whether `lockouts` is the default memory store (rebuilt with a new policy).
    default_lockouts: bool,
    /// When forgotten counters were last purged (Unix seconds).
    last_purge: AtomicU64,
    slots: Arc<Semaphore>,
    counters: Arc<Counters>,
    rng: SystemRandom,
}

#[derive(Default)]
struct Counters {
    verifications: AtomicU64,
    dummy_verifications: AtomicU64,
    lockouts: AtomicU64,
    locked_attempts: AtomicU64,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("users", &self.users.len())
            .field("form_action", &self.form_action)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// The password login of the provider whose issuer is `our_issuer`, for `users`.
    ///
    /// Usernames must be 1 to 64 characters without control characters or surrounding
    /// spaces, and distinct without regard to ASCII case. Computes the dummy hash (one
    /// Argon2id hash with the costliest parameters among the users): call it at start-up.
    ///
    /// ```
    /// use std::sync::Arc;
    /// # use oidc_core::authn::{BoxFuture, LoginStateStore, StateStoreError};
    /// # struct Store;
    /// # impl LoginStateStore for Store {
    /// #     fn put(&self, _: &str, _: Vec<u8>, _: u64) -> BoxFuture<'_, Result<(), StateStoreError>> { Box::pin(async { Ok(()) }) }
    /// #     fn take(&self, _: &str, _: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> { Box::pin(async { Ok(None) }) }
    /// # }
    /// use oidc_core::authn::Authenticator;
    /// use oidc_core::login::{LocalUser, PasswordHashString, Passwords, hash_password};
    /// use oidc_core::types::Issuer;
    ///
    /// let alice = LocalUser::new("alice", PasswordHashString::parse(&hash_password("pw")?)?);
    /// let issuer = Issuer::parse("https://auth.example.com")?;
    /// let passwords = Passwords::new(vec![alice], &issuer, Arc::new(Store))?;
    /// assert_eq!(passwords.path_prefix(), "/login/password");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        users: Vec<LocalUser>,
        our_issuer: &Issuer,
        store: Arc<dyn LoginStateStore>,
    ) -> Result<Passwords, PasswordError> {
        let mut by_name = HashMap::with_capacity(users.len());
        for user in users {
            let name = &user.username;
            if name.is_empty()
                || name.chars().count() > MAX_USERNAME_CHARS
                || name.trim() != name
                || name.chars().any(char::is_control)
            {
                return Err(PasswordError::Config(
                    "usernames must be 1 to 64 characters without control characters or surrounding spaces".into(),
                ));
            }
            let key = name.to_ascii_lowercase();
            if by_name.contains_key(&key) {
                return Err(PasswordError::Config(
                    "two users have the same username (ignoring case)".into(),
                ));
            }
            by_name.insert(key, user);
        }
        let rng = SystemRandom::new();
        let params = by_name
            .values()
            .filter_map(|u| u.password_hash.params())
            .max_by_key(|p| u64::from(p.m_cost()) * u64::from(p.t_cost()) * u64::from(p.p_cost()))
            .map_or_else(super::password::default_params, Ok)?;
        let dummy_password = Secret::generate(&rng)?;
        let dummy = PasswordHashString::parse(&hash_with_params(
            dummy_password.expose_secret(),
            &rng,
            params,
        )?)?;
        let subjects = by_name
            .values()
            .map(|user| federated_subject(PASSWORD_ISSUER, &user.username))
            .collect();
        Ok(Passwords {
            users: by_name,
            subjects,
            dummy,
            store,
            form_action: our_issuer.join(PASSWORD_PATH),
            label: "Sign in with a password".to_owned(),
            form_ttl: DEFAULT_FORM_TTL,
            lockouts: Arc::new(MemoryLockoutStore::new(&LockoutPolicy::default())),
            policy: LockoutPolicy::default(),
            default_lockouts: true,
            last_purge: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_CONCURRENT)),
            counters: Arc::new(Counters::default()),
            rng,
        })
    }

    /// Replaces the lockout policy (default: [`LockoutPolicy::default`]). The default
    /// memory store starts over, bounded by the new policy; a store given with
    /// [`with_lockout_store`](Self::with_lockout_store) is kept.
    #[must_use]
    pub fn with_lockout_policy(mut self, policy: LockoutPolicy) -> Self {
        if self.default_lockouts {
            self.lockouts = Arc::new(MemoryLockoutStore::new(&policy));
        }
        self.policy = policy;
        self
    }

    /// Keeps the failed-login counters in `store` instead of this process's memory: give
    /// every replica of a provider the same shared store (such as `PostgresLimitStore`,
    /// feature `postgres`) and a guesser counts against the same limits whichever replica
    /// it reaches. Counters that have gone quiet are purged from it about once per
    /// [`window`](LockoutPolicy::window), in the background.
    ///
    /// ```
    /// use std::sync::Arc;
    /// # use oidc_core::authn::{BoxFuture, LoginStateStore, StateStoreError};
    /// # struct Store;
    /// # impl LoginStateStore for Store {
    /// #     fn put(&self, _: &str, _: Vec<u8>, _: u64) -> BoxFuture<'_, Result<(), StateStoreError>> { Box::pin(async { Ok(()) }) }
    /// #     fn take(&self, _: &str, _: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> { Box::pin(async { Ok(None) }) }
    /// # }
    /// use oidc_core::login::{LockoutPolicy, MemoryLockoutStore, Passwords};
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://auth.example.com")?;
    /// let shared = Arc::new(MemoryLockoutStore::new(&LockoutPolicy::default()));
    /// let passwords = Passwords::new(vec![], &issuer, Arc::new(Store))?.with_lockout_store(shared);
    /// # let _ = passwords;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_lockout_store(mut self, store: Arc<dyn LockoutStore>) -> Self {
        self.lockouts = store;
        self.default_lockouts = false;
        self
    }

    /// How many Argon2 checks may run at once (default 4; each holds 19 MiB). Requests
    /// beyond that wait up to 5 s, then get a "busy" page. Each attempt is counted when
    /// its locks are checked, before its password is, so no number of parallel guesses
    /// gets past a lock.
    #[must_use]
    pub fn with_max_concurrent_verifications(mut self, max: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(max.max(1)));
        self
    }

    /// The label of a login chooser button (default "Sign in with a password").
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// How long a rendered form stays usable (default 15 minutes).
    #[must_use]
    pub fn with_form_ttl(mut self, ttl: Duration) -> Self {
        self.form_ttl = ttl;
        self
    }

    /// A copy of the counters.
    pub fn stats(&self) -> PasswordStats {
        let c = &self.counters;
        PasswordStats {
            verifications: c.verifications.load(Ordering::Relaxed),
            dummy_verifications: c.dummy_verifications.load(Ordering::Relaxed),
            lockouts: c.lockouts.load(Ordering::Relaxed),
            locked_attempts: c.locked_attempts.load(Ordering::Relaxed),
        }
    }

    /// Stores a fresh CSRF token for `form` and renders the page.
    async fn render_form(
        &self,
        form: &FormState,
        error: Option<&str>,
        status: StatusCode,
        now: u64,
    ) -> Response<Bytes> {
        let Ok(csrf) = Secret::generate(&self.rng) else {
            return unavailable();
        };
        let Some(value) = params::encode(form) else {
            return unavailable();
        };
        let key = params::store_key(PASSWORD_METHOD, "csrf", csrf.expose_secret());
        let expires_at = now.saturating_add(self.form_ttl.as_secs());
        if self.store.put(&key, value, expires_at).await.is_err() {
            return unavailable();
        }
        let body = maud::html! {
            h1 { "Sign in" }
            p { "to continue to " strong { (form.client_name) } }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action=(self.form_action) {
                input type="hidden" name="transaction" value=(form.transaction);
                input type="hidden" name="csrf" value=(csrf.expose_secret());
                label for="username" { "Username" }
                input type="text" id="username" name="username"
                    value=(form.username.as_deref().unwrap_or_default())
                    maxlength=(MAX_USERNAME_CHARS) autocomplete="username"
                    autocapitalize="none" autocorrect="off" spellcheck="false" required autofocus;
                label for="password" { "Password" }
                input type="password" id="password" name="password"
                    autocomplete="current-password" required;
                button type="submit" class="primary" { "Sign in" }
            }
        };
        html::page(status, "Sign in", &body)
    }

    async fn post(&self, request: Request<Bytes>, now: u64) -> LoginOutcome {
        let path = request.uri().path();
        if !path.ends_with(PASSWORD_PATH) {
            return respond(html::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here.",
            ));
        }
        if request.method() != Method::POST {
            return respond(html::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "Go back to the application and start again.",
            ));
        }
        let is_form = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return respond(html::error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported form",
                "The sign-in form must be posted as a form.",
            ));
        }
        let client_key = client_ip(&request).map(address_key);
        let Some(fields) = Params::parse(request.body()) else {
            return self.expired("bad_request");
        };
        let Some(csrf) = fields.get("csrf") else {
            return self.expired("csrf_missing");
        };
        let key = params::store_key(PASSWORD_METHOD, "csrf", csrf);
        let stored = match self.store.take(&key, now).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return self.expired("csrf_invalid"),
            Err(_) => return respond(unavailable()),
        };
        let Some(mut form) = params::decode::<FormState>(stored) else {
            return self.expired("csrf_invalid");
        };
        let posted = fields.get("transaction").unwrap_or_default();
        let same_transaction: bool = posted.as_bytes().ct_eq(form.transaction.as_bytes()).into();
        let Some(transaction) =
            TransactionId::parse(&form.transaction).filter(|_| same_transaction)
        else {
            return self.expired("csrf_invalid");
        };

        let username = fields.get("username").map(str::trim).unwrap_or_default();
        let password = fields.get("password").unwrap_or_default();
        form.username = Some(username.chars().take(MAX_USERNAME_CHARS).collect());
        if username.is_empty() || password.is_empty() {
            let page = self
                .render_form(
                    &form,
                    Some("Enter your username and password."),
                    StatusCode::BAD_REQUEST,
                    now,
                )
                .await;
            return respond(page);
        }
        let username_key = username_key(username);
        let pair_key = pair_key(&username_key, client_key.as_deref());

        let Some(permit) = self.acquire_slot().await else {
            return respond(busy());
        };
        // One atomic step checks the locks and counts the attempt as a failure in
        // advance, so parallel guesses (on any replica sharing the store) cannot all pass
        // the last allowed attempt.
        let attempt = LockoutOp::attempt(
            &self.policy,
            &pair_key,
            &username_key,
            client_key.as_deref(),
            now,
        );
        let counted = match self.lockouts.apply(attempt.clone()).await {
            Ok(answer) => answer,
            Err(error) => {
                // Fail closed: a guess that cannot be counted is not checked.
                tracing::warn!(%error, "the lockout store failed; refusing the sign-in");
                audit::record(&AuditEvent::LoginRefused {
                    method: PASSWORD_METHOD,
                    reason: "lockout_unavailable",
                });
                return respond(unavailable());
            }
        };
        self.purge_when_due(now);
        if let Some(until) = counted.locked_until() {
            drop(permit);
            self.counters
                .locked_attempts
                .fetch_add(1, Ordering::Relaxed);
            audit::record(&AuditEvent::LoginRefused {
                method: PASSWORD_METHOD,
                reason: "locked_out",
            });
            let minutes = until.saturating_sub(now).div_ceil(60).max(1);
            let message = format!(
                "Too many failed attempts. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            let mut page = self
                .render_form(&form, Some(&message), StatusCode::TOO_MANY_REQUESTS, now)
                .await;
            if let Ok(value) = HeaderValue::from_str(&until.saturating_sub(now).to_string()) {
                page.headers_mut().insert(RETRY_AFTER, value);
            }
            return respond(page);
        }

        let user = self.users.get(&username.to_ascii_lowercase());
        // The slot stays taken until the outcome is settled.
        let (matched, permit) = self
            .check_password(permit, user.map(|u| &u.password_hash), password)
            .await;
        match user.filter(|_| matched) {
            Some(user) => {
                if let Some(success) = LockoutOp::success(&attempt, &counted, now)
                    && let Err(error) = self.lockouts.apply(success).await
                {
                    // The password was right: the sign-in stands, and the advance count
                    // stays (one failure too many on these counters).
                    tracing::warn!(%error, "the lockout store failed to take back a counted attempt");
                }
                drop(permit);
                let subject = federated_subject(PASSWORD_ISSUER, &user.username);
                audit::record(&AuditEvent::LoginSucceeded {
                    method: PASSWORD_METHOD,
                    subject: subject.as_str(),
                });
                let mut authenticated = AuthenticatedUser::new(subject, now, LoginMethod::Password);
                authenticated.email = user.email.clone().filter(|_| user.email_verified);
                authenticated.email_verified = user.email_verified && user.email.is_some();
                authenticated.name = user.name.clone();
                LoginOutcome::Authenticated {
                    transaction,
                    user: authenticated,
                }
            }
            None => {
                drop(permit);
                if counted.locks() {
                    self.counters.lockouts.fetch_add(1, Ordering::Relaxed);
                    audit::record(&AuditEvent::LoginLockedOut {
                        method: PASSWORD_METHOD,
                    });
                }
                audit::record(&AuditEvent::LoginRefused {
                    method: PASSWORD_METHOD,
                    reason: "bad_credentials",
                });
                let page = self
                    .render_form(
                        &form,
                        Some(INVALID_CREDENTIALS),
                        StatusCode::BAD_REQUEST,
                        now,
                    )
                    .await;
                respond(page)
            }
        }
    }

    /// A verification slot, or `None` if none freed up in time.
    async fn acquire_slot(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(SLOT_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Runs one Argon2id verification on the blocking pool: against `hash`, or against
    /// the dummy hash when there is no such user (then the answer is always `false`).
    ///
    /// The blocking task owns `permit` and hands it back, so the caller can keep it until
    /// the failure is counted; if the caller goes away meanwhile, the permit is still
    /// held until the verification ends, and the memory bound holds.
    async fn check_password(
        &self,
        permit: OwnedSemaphorePermit,
        hash: Option<&PasswordHashString>,
        password: &str,
    ) -> (bool, Option<OwnedSemaphorePermit>) {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).clone();
        let password = Zeroizing::new(password.to_owned());
        let counters = Arc::clone(&self.counters);
        let task = tokio::task::spawn_blocking(move || {
            counters.verifications.fetch_add(1, Ordering::Relaxed);
            if !known {
                counters.dummy_verifications.fetch_add(1, Ordering::Relaxed);
            }
            (hash.verify(&password), permit)
        });
        match task.await {
            Ok((verified, permit)) => (verified && known, Some(permit)),
            Err(_) => (false, None),
        }
    }

    /// Purges the counters that went quiet, in the background, about once per window.
    fn purge_when_due(&self, now: u64) {
        let window = self.policy.window.as_secs().max(1);
        let last = self.last_purge.load(Ordering::Relaxed);
        if now < last.saturating_add(window)
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = Arc::clone(&self.lockouts);
        tokio::spawn(async move {
            if let Err(error) = store.purge(now.saturating_sub(window)).await {
                tracing::warn!(%error, "could not purge forgotten lockout counters");
            }
        });
    }

    fn expired(&self, reason: &'static str) -> LoginOutcome {
        audit::record(&AuditEvent::LoginRefused {
            method: PASSWORD_METHOD,
            reason,
        });
        respond(html::error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in form expired",
            "This sign-in form has expired or was already used. Go back to the application and start again.",
        ))
    }
}

impl Authenticator for Passwords {
    fn name(&self) -> &str {
        PASSWORD_METHOD
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn path_prefix(&self) -> &str {
        PASSWORD_PATH
    }

    fn start(&self, request: LoginRequest, now: u64) -> BoxFuture<'_, Response<Bytes>> {
        Box::pin(async move {
            let form = FormState {
                transaction: request.transaction.as_str().to_owned(),
                client_name: request.client_name,
                username: request
                    .login_hint
                    .map(|h| h.chars().take(MAX_USERNAME_CHARS).collect()),
            };
            self.render_form(&form, None, StatusCode::OK, now).await
        })
    }

    fn handle(&self, request: Request<Bytes>, now: u64) -> BoxFuture<'_, LoginOutcome> {
        Box::pin(self.post(request, now))
    }

    /// A password grant's user is admitted while the users file still has them.
    fn still_admits(&self, subject: &Subject, login: &GrantLogin) -> Option<bool> {
        match login {
            GrantLogin::Password => Some(self.subjects.contains(subject)),
            _ => None,
        }
    }
}

/// What a CSRF token is bound to in the state store.
#[derive(Serialize, Deserialize)]
struct FormState {
    #[serde(rename = "t")]
    transaction: String,
    #[serde(rename = "c")]
    client_name: String,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

fn respond(response: Response<Bytes>) -> LoginOutcome {
    LoginOutcome::Respond(response)
}

fn unavailable() -> Response<Bytes> {
    html::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Sign-in is temporarily unavailable. Try again in a moment.",
    )
}

fn busy() -> Response<Bytes> {
    let mut page = html::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "Too many sign-ins at once. Go back and try again in a moment.",
    );
    page.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    page
}

/// The client address from the request's extensions: [`ClientIp`] (set in front of the
/// provider, after proxy headers were sanitised), else the [`SocketAddr`] the server set.
fn client_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<ClientIp>()
        .map(|ip| ip.0)
        .or_else(|| extensions.get::<SocketAddr>().map(SocketAddr::ip))
}

/// Lockout key of an address: IPv4 as is, IPv6 by its /64 (one host usually has a whole
/// /64 to rotate through).
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Lockout key of a username at an address (`-` when the request carries none).
fn pair_key(username_key: &str, address_key: Option<&str>) -> String {
    format!("{username_key}|{}", address_key.unwrap_or("-"))
}

/// Lockout key of a username: case-folded and bounded, whether or not the user exists.
fn username_key(username: &str) -> String {
    let folded: String = username
        .chars()
        .take(MAX_USERNAME_CHARS)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("user:{folded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys_group_ipv6_by_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn username_keys_fold_case_and_are_bounded() {
        assert_eq!(username_key("Alice"), username_key("alice"));
        assert_eq!(
            username_key(&"x".repeat(1000)).len(),
            "user:".len() + MAX_USERNAME_CHARS
        );
    }
}
