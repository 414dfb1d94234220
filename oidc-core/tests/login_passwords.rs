//! The local password login, driven like a browser: render the form, post it back.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod login_common;
#[cfg(feature = "postgres")]
mod pg_common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use oidc_core::authn::{
    Authenticator, LoginMethod, LoginOutcome, LoginRequest, TransactionId, federated_subject,
};
use oidc_core::login::{
    ClientIp, LocalUser, LockoutPolicy, LockoutStore, PasswordError, PasswordHashString, Passwords,
    generate_password, hash_password,
};
use oidc_core::types::Issuer;
use url::form_urlencoded;

use login_common::MemoryStateStore;
use login_common::event_log::EventLog;

const NOW: u64 = 1_700_000_000;
const PASSWORD: &str = "correct horse battery staple";

/// An Argon2id hash with tiny parameters, so the tests do not spend seconds hashing in a
/// debug build. (`hash_password` itself is tested once, with the real parameters.)
fn cheap_hash(password: &str) -> PasswordHashString {
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(256, 1, 1, None).unwrap(),
    );
    let phc = argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string();
    PasswordHashString::parse(&phc).unwrap()
}

fn passwords() -> (Passwords, Arc<MemoryStateStore>) {
    let store = MemoryStateStore::new();
    let users = vec![
        LocalUser::new("alice", cheap_hash(PASSWORD))
            .with_email("alice@example.com", true)
            .with_name("Alice"),
        LocalUser::new("bob", cheap_hash("bobs password")).with_email("bob@example.com", false),
    ];
    let issuer = Issuer::parse("https://op.example").unwrap();
    let passwords = Passwords::new(users, &issuer, store.clone()).unwrap();
    (passwords, store)
}

/// Where the lockout counters live: the lockout tests run on each.
struct Backend {
    lockouts: Option<Arc<dyn LockoutStore>>,
    #[cfg(feature = "postgres")]
    _schema: Option<pg_common::TestSchema>,
}

impl Backend {
    /// The default: in memory.
    fn memory() -> Backend {
        Backend {
            lockouts: None,
            #[cfg(feature = "postgres")]
            _schema: None,
        }
    }

    /// `PostgresLimitStore` in a fresh schema.
    #[cfg(feature = "postgres")]
    async fn postgres() -> Backend {
        let schema = pg_common::TestSchema::create().await;
        let store = Arc::new(schema.replica().await);
        Backend {
            lockouts: Some(store),
            _schema: Some(schema),
        }
    }

    fn passwords(&self) -> (Passwords, Arc<MemoryStateStore>) {
        let (passwords, store) = passwords();
        match &self.lockouts {
            Some(lockouts) => (passwords.with_lockout_store(Arc::clone(lockouts)), store),
            None => (passwords, store),
        }
    }
}

/// Each lockout test, once per backend: `memory::…` and (feature `postgres`) `postgres::…`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::memory()).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::postgres().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    lockout_after_repeated_failures_with_an_audit_event,
    lockout_delays_grow,
    lockout_per_client_address_across_usernames,
    peer_socket_address_is_used_when_no_client_ip_is_given,
    attacker_at_one_address_cannot_lock_the_user_out_at_another,
    attacker_at_one_address_does_not_lock_out_other_users_below_the_spray_limit,
    distributed_guesser_is_still_slowed,
    distributed_guesser_waits_grow_per_address,
);

fn request(client_name: &str) -> LoginRequest {
    LoginRequest::new(
        TransactionId::generate(&SystemRandom::new()).unwrap(),
        client_name,
    )
}

fn body(response: &Response<Bytes>) -> String {
    String::from_utf8(response.body().to_vec()).unwrap()
}

/// The value of the hidden input `name` in a rendered form.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

struct Form {
    transaction: String,
    csrf: String,
}

fn form_of(response: &Response<Bytes>) -> Form {
    let page = body(response);
    Form {
        transaction: hidden(&page, "transaction"),
        csrf: hidden(&page, "csrf"),
    }
}

fn post(fields: &[(&str, &str)], ip: Option<&str>) -> Request<Bytes> {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = Request::post("/login/password")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(encoded))
        .unwrap();
    if let Some(ip) = ip {
        request
            .extensions_mut()
            .insert(ClientIp(ip.parse::<IpAddr>().unwrap()));
    }
    request
}

fn submit(form: &Form, username: &str, password: &str) -> Request<Bytes> {
    post(
        &[
            ("transaction", &form.transaction),
            ("csrf", &form.csrf),
            ("username", username),
            ("password", password),
        ],
        Some("192.0.2.10"),
    )
}

fn page_of(outcome: LoginOutcome) -> Response<Bytes> {
    match outcome {
        LoginOutcome::Respond(response) => response,
        LoginOutcome::Authenticated { .. } => panic!("expected a page"),
    }
}

#[tokio::test]
async fn form_is_a_safe_page_showing_the_client() {
    let (passwords, store) = passwords();
    assert_eq!(passwords.name(), "password");
    assert_eq!(passwords.path_prefix(), "/login/password");
    let mut login = request("<script>alert(1)</script> App");
    login.login_hint = Some("al\"ice".into());
    let response = passwords.start(login, NOW).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = body(&response);
    assert!(!page.contains("<script"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; App"));
    assert!(page.contains("action=\"https://op.example/login/password\""));
    assert!(
        page.contains("value=\"al&quot;ice\""),
        "login hint pre-filled, escaped"
    );
    assert!(page.contains("autocomplete=\"current-password\""));
    assert!(page.contains("name=\"viewport\""), "usable on a phone");
    let form = form_of(&response);
    assert_eq!(form.csrf.len(), 43);
    // Only a hash of the CSRF token is stored, bound to the transaction.
    assert_eq!(store.len(), 1);
    assert!(!store.keys()[0].contains(&form.csrf));
}

#[tokio::test]
async fn good_login() {
    let (passwords, store) = passwords();
    let (log, _guard) = EventLog::install();
    let login = request("Test client");
    let transaction = login.transaction.clone();
    let form = form_of(&passwords.start(login, NOW).await);
    let outcome = passwords
        .handle(submit(&form, "alice", PASSWORD), NOW + 5)
        .await;
    let LoginOutcome::Authenticated {
        transaction: done,
        user,
    } = outcome
    else {
        panic!("expected Authenticated");
    };
    assert_eq!(done, transaction);
    assert_eq!(
        user.subject,
        federated_subject("urn:local-password", "alice")
    );
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Alice"));
    assert_eq!(user.auth_time, NOW + 5);
    assert_eq!(user.method, LoginMethod::Password);
    assert_eq!(store.len(), 0, "the csrf token was used up");
    assert_eq!(passwords.stats().verifications, 1);
    assert_eq!(passwords.stats().dummy_verifications, 0);
    assert_eq!(log.named("login_succeeded").len(), 1);
    assert!(!log.all_text().contains(PASSWORD));
    assert!(!log.all_text().contains("alice@example.com"));
}

#[tokio::test]
async fn username_is_matched_without_case_and_subject_is_the_configured_name() {
    let (passwords, _) = passwords();
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let outcome = passwords
        .handle(submit(&form, " Alice ", PASSWORD), NOW)
        .await;
    let LoginOutcome::Authenticated { user, .. } = outcome else {
        panic!("expected Authenticated");
    };
    assert_eq!(
        user.subject,
        federated_subject("urn:local-password", "alice")
    );
}

#[tokio::test]
async fn unverified_configured_email_is_not_passed_on() {
    let (passwords, _) = passwords();
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let outcome = passwords
        .handle(submit(&form, "bob", "bobs password"), NOW)
        .await;
    let LoginOutcome::Authenticated { user, .. } = outcome else {
        panic!("expected Authenticated");
    };
    assert_eq!(user.email, None);
    assert!(!user.email_verified);
}

#[tokio::test]
async fn wrong_password_gets_a_generic_error_and_a_fresh_form() {
    let (passwords, store) = passwords();
    let (log, _guard) = EventLog::install();
    let form = form_of(&passwords.start(request("Test client"), NOW).await);
    let response = page_of(passwords.handle(submit(&form, "alice", "wrong"), NOW).await);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = body(&response);
    assert!(page.contains("Invalid username or password."));
    assert!(!page.contains("wrong"), "the password is not echoed");
    assert!(page.contains("value=\"alice\""), "the username is kept");
    assert!(page.contains("Test client"));
    let again = form_of(&response);
    assert_ne!(again.csrf, form.csrf, "a fresh csrf token");
    assert_eq!(again.transaction, form.transaction);
    assert_eq!(store.len(), 1);
    assert_eq!(log.refusals(), ["bad_credentials"]);
    // The fresh form works.
    let outcome = passwords
        .handle(submit(&again, "alice", PASSWORD), NOW)
        .await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
}

#[tokio::test]
async fn unknown_user_gets_the_same_error_after_the_same_work() {
    let (passwords, _) = passwords();
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let wrong_password = page_of(passwords.handle(submit(&form, "alice", "nope"), NOW).await);
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let unknown_user = page_of(
        passwords
            .handle(submit(&form, "mallory", "nope"), NOW)
            .await,
    );
    assert_eq!(wrong_password.status(), unknown_user.status());
    let strip = |page: String, username: &str| {
        let csrf = hidden(&page, "csrf");
        let transaction = hidden(&page, "transaction");
        page.replace(&csrf, "")
            .replace(&transaction, "")
            .replace(username, "")
    };
    assert_eq!(
        strip(body(&wrong_password), "alice"),
        strip(body(&unknown_user), "mallory"),
        "the pages differ only in the tokens and the echoed username"
    );
    let stats = passwords.stats();
    assert_eq!(
        stats.verifications, 2,
        "an argon2 verification ran both times"
    );
    assert_eq!(
        stats.dummy_verifications, 1,
        "the unknown user went to the dummy hash"
    );
}

#[tokio::test]
async fn csrf_missing_wrong_or_reused_is_refused() {
    let (passwords, _) = passwords();
    let (log, _guard) = EventLog::install();
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let expired = |outcome: LoginOutcome| {
        let response = page_of(outcome);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(body(&response).contains("expired"));
        assert!(
            !body(&response).contains("name=\"password\""),
            "no form without a valid token"
        );
    };
    // Missing.
    expired(
        passwords
            .handle(
                post(
                    &[
                        ("transaction", &form.transaction),
                        ("username", "alice"),
                        ("password", PASSWORD),
                    ],
                    None,
                ),
                NOW,
            )
            .await,
    );
    // Wrong.
    let forged = Form {
        transaction: form.transaction.clone(),
        csrf: "A".repeat(43),
    };
    expired(
        passwords
            .handle(submit(&forged, "alice", PASSWORD), NOW)
            .await,
    );
    // Bound to another transaction.
    let other = Form {
        transaction: TransactionId::generate(&SystemRandom::new())
            .unwrap()
            .as_str()
            .to_owned(),
        csrf: form.csrf.clone(),
    };
    expired(
        passwords
            .handle(submit(&other, "alice", PASSWORD), NOW)
            .await,
    );
    // That attempt used the token up, so even the right pair is now a reuse.
    expired(
        passwords
            .handle(submit(&form, "alice", PASSWORD), NOW)
            .await,
    );
    // Reused after a success.
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let outcome = passwords
        .handle(submit(&form, "alice", PASSWORD), NOW)
        .await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
    expired(
        passwords
            .handle(submit(&form, "alice", PASSWORD), NOW)
            .await,
    );
    // Expired.
    let form = form_of(&passwords.start(request("c"), NOW).await);
    expired(
        passwords
            .handle(submit(&form, "alice", PASSWORD), NOW + 15 * 60)
            .await,
    );

    assert_eq!(
        log.refusals(),
        [
            "csrf_missing",
            "csrf_invalid",
            "csrf_invalid",
            "csrf_invalid",
            "csrf_invalid",
            "csrf_invalid"
        ]
    );
    assert_eq!(
        passwords.stats().verifications,
        1,
        "no password was checked without a token"
    );
}

async fn lockout_after_repeated_failures_with_an_audit_event(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let (log, _guard) = EventLog::install();
    let mut now = NOW;
    let mut form = form_of(&passwords.start(request("c"), now).await);
    for _ in 0..5 {
        let response = page_of(passwords.handle(submit(&form, "alice", "guess"), now).await);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        form = form_of(&response);
        now += 10;
    }
    assert_eq!(log.named("login_locked_out").len(), 1);
    assert_eq!(passwords.stats().lockouts, 1);

    // Locked: even the right password is refused, without a verification.
    let before = passwords.stats().verifications;
    let response = page_of(
        passwords
            .handle(submit(&form, "alice", PASSWORD), now)
            .await,
    );
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(body(&response).contains("Too many failed attempts"));
    assert_eq!(passwords.stats().verifications, before);
    assert_eq!(passwords.stats().locked_attempts, 1);
    form = form_of(&response);

    // After the first delay (1 min) the right password works, and the count is cleared.
    now += 61;
    let outcome = passwords
        .handle(submit(&form, "alice", PASSWORD), now)
        .await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
}

async fn lockout_delays_grow(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let passwords = passwords.with_lockout_policy(LockoutPolicy::default());
    let mut now = NOW;
    let mut form = form_of(&passwords.start(request("c"), now).await);
    for _ in 0..5 {
        form = form_of(&page_of(
            passwords.handle(submit(&form, "alice", "guess"), now).await,
        ));
    }
    // Wait out the 1-minute lock, fail once more: now locked for 2 minutes.
    now += 60;
    form = form_of(&page_of(
        passwords.handle(submit(&form, "alice", "guess"), now).await,
    ));
    now += 61;
    let response = page_of(
        passwords
            .handle(submit(&form, "alice", PASSWORD), now)
            .await,
    );
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    form = form_of(&response);
    now += 60;
    let outcome = passwords
        .handle(submit(&form, "alice", PASSWORD), now)
        .await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
    assert_eq!(passwords.stats().lockouts, 2);
}

async fn lockout_per_client_address_across_usernames(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let mut form = form_of(&passwords.start(request("c"), NOW).await);
    let attempt = |form: &Form, username: &str, password: &str, ip: &str| {
        post(
            &[
                ("transaction", &form.transaction),
                ("csrf", &form.csrf),
                ("username", username),
                ("password", password),
            ],
            Some(ip),
        )
    };
    // Twenty different (unknown) usernames from one address (password spraying).
    for i in 0..LockoutPolicy::default().max_failures_per_address {
        let response = page_of(
            passwords
                .handle(attempt(&form, &format!("user{i}"), "x", "2001:db8::1"), NOW)
                .await,
        );
        form = form_of(&response);
    }
    // The address (its /64) is locked, even for a real user with the right password…
    let response = page_of(
        passwords
            .handle(attempt(&form, "alice", PASSWORD, "2001:db8::2"), NOW)
            .await,
    );
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    form = form_of(&response);
    // …but not from elsewhere.
    let outcome = passwords
        .handle(attempt(&form, "alice", PASSWORD, "198.51.100.7"), NOW)
        .await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
}

async fn peer_socket_address_is_used_when_no_client_ip_is_given(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let mut form = form_of(&passwords.start(request("c"), NOW).await);
    let attempt = |form: &Form, username: &str, password: &str| {
        let mut request = post(
            &[
                ("transaction", &form.transaction),
                ("csrf", &form.csrf),
                ("username", username),
                ("password", password),
            ],
            None,
        );
        request
            .extensions_mut()
            .insert("203.0.113.5:4711".parse::<SocketAddr>().unwrap());
        request
    };
    for i in 0..LockoutPolicy::default().max_failures_per_address {
        form = form_of(&page_of(
            passwords
                .handle(attempt(&form, &format!("u{i}"), "x"), NOW)
                .await,
        ));
    }
    let response = page_of(
        passwords
            .handle(attempt(&form, "alice", PASSWORD), NOW)
            .await,
    );
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn malformed_posts_are_refused() {
    let (passwords, _) = passwords();
    let form = form_of(&passwords.start(request("c"), NOW).await);
    // Not a form.
    let json = Request::post("/login/password")
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    assert_eq!(
        page_of(passwords.handle(json, NOW).await).status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // GET.
    let get = Request::get("/login/password").body(Bytes::new()).unwrap();
    assert_eq!(
        page_of(passwords.handle(get, NOW).await).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    // A repeated field.
    let doubled = post(
        &[
            ("transaction", &form.transaction),
            ("csrf", &form.csrf),
            ("username", "alice"),
            ("username", "bob"),
            ("password", PASSWORD),
        ],
        None,
    );
    assert_eq!(
        page_of(passwords.handle(doubled, NOW).await).status(),
        StatusCode::BAD_REQUEST
    );
    // Missing password: the form comes back, nothing is counted.
    let form = form_of(&passwords.start(request("c"), NOW).await);
    let response = page_of(passwords.handle(submit(&form, "alice", ""), NOW).await);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(&response).contains("Enter your username and password."));
    assert_eq!(passwords.stats().verifications, 0);
}

#[test]
fn configuration_is_checked() {
    let issuer = Issuer::parse("https://op.example").unwrap();
    let store = MemoryStateStore::new();
    let dup = vec![
        LocalUser::new("alice", cheap_hash("a")),
        LocalUser::new("ALICE", cheap_hash("b")),
    ];
    assert!(matches!(
        Passwords::new(dup, &issuer, store.clone()),
        Err(PasswordError::Config(_))
    ));
    for bad in ["", " alice", "a\nb", &"x".repeat(65)] {
        let users = vec![LocalUser::new(bad, cheap_hash("a"))];
        assert!(
            Passwords::new(users, &issuer, store.clone()).is_err(),
            "{bad:?}"
        );
    }
    let debug = format!("{:?}", LocalUser::new("alice", cheap_hash("a")));
    assert!(debug.contains("argon2id m=256 t=1 p=1"));
    assert!(!debug.contains("$argon2id$"));
}

#[test]
fn hash_password_output_verifies_and_is_argon2id() {
    let phc = hash_password(PASSWORD).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let stored = PasswordHashString::parse(&phc).unwrap();
    assert!(stored.verify(PASSWORD));
    assert!(!stored.verify("correct horse battery stapler"));
    assert!(PasswordHashString::parse(&phc.replace("argon2id", "argon2i")).is_err());
}

#[test]
fn generated_first_user_password_can_be_hashed_and_verified() {
    let password = generate_password(&SystemRandom::new()).unwrap();
    let other = generate_password(&SystemRandom::new()).unwrap();
    assert_ne!(*password, *other);
    let stored = PasswordHashString::parse(&hash_password(&password).unwrap()).unwrap();
    assert!(stored.verify(&password));
}

/// One attempt with a fresh form, from `ip`.
async fn attempt_from(
    passwords: &Passwords,
    username: &str,
    password: &str,
    ip: &str,
    now: u64,
) -> LoginOutcome {
    let form = form_of(&passwords.start(request("c"), now).await);
    let fields = [
        ("transaction", form.transaction.as_str()),
        ("csrf", form.csrf.as_str()),
        ("username", username),
        ("password", password),
    ];
    passwords.handle(post(&fields, Some(ip)), now).await
}

fn status_of(outcome: LoginOutcome) -> StatusCode {
    match outcome {
        LoginOutcome::Respond(response) => response.status(),
        LoginOutcome::Authenticated { .. } => StatusCode::OK,
    }
}

async fn attacker_at_one_address_cannot_lock_the_user_out_at_another(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let (log, _guard) = EventLog::install();
    let attacker = "203.0.113.66";
    let mut now = NOW;
    // The attacker fails five times and then keeps the lock alive with one attempt per
    // lock period, for two hours.
    for _ in 0..5 {
        assert_eq!(
            status_of(attempt_from(&passwords, "alice", "guess", attacker, now).await),
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        log.named("login_locked_out").len(),
        1,
        "audit event unchanged"
    );
    let end = now + 2 * 3600;
    while now < end {
        let status = status_of(attempt_from(&passwords, "alice", "guess", attacker, now).await);
        assert!(
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::BAD_REQUEST,
            "{status}"
        );
        // Meanwhile the real user, elsewhere, signs in at once.
        let outcome = attempt_from(&passwords, "Alice", PASSWORD, "192.0.2.10", now).await;
        assert!(
            matches!(outcome, LoginOutcome::Authenticated { .. }),
            "the user is not locked out at another address"
        );
        now += 60;
    }
    // Still locked at the attacker's address after yet another miss, even with the right
    // password.
    while status_of(attempt_from(&passwords, "alice", "guess", attacker, now).await)
        != StatusCode::BAD_REQUEST
    {
        now += 60;
    }
    let refused = attempt_from(&passwords, "alice", PASSWORD, attacker, now + 1).await;
    assert_eq!(status_of(refused), StatusCode::TOO_MANY_REQUESTS);
    assert!(!log.named("login_refused").is_empty());
}

async fn attacker_at_one_address_does_not_lock_out_other_users_below_the_spray_limit(
    backend: Backend,
) {
    let (passwords, _) = backend.passwords();
    let attacker = "203.0.113.66";
    for _ in 0..5 {
        attempt_from(&passwords, "alice", "guess", attacker, NOW).await;
    }
    // The lock is on alice at that address only: bob signs in from the same address.
    let outcome = attempt_from(&passwords, "bob", "bobs password", attacker, NOW).await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
}

async fn distributed_guesser_is_still_slowed(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let policy = LockoutPolicy::default();
    let now = NOW;
    let address = |i: u32| format!("198.51.{}.{}", i / 200, i % 200 + 1);
    // Each address may guess `max_failures` times until the user's failures from all
    // addresses reach the ceiling…
    let mut i = 0;
    let mut failures = 0;
    while failures < policy.user_ceiling {
        for _ in 0..policy.max_failures {
            let status =
                status_of(attempt_from(&passwords, "alice", "guess", &address(i), now).await);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            failures += 1;
        }
        i += 1;
    }
    // …then every further address gets one guess before its lock: the second attempt is
    // refused without a password check.
    let verifications_before = passwords.stats().verifications;
    let fresh = 50;
    for k in 0..fresh {
        let ip = address(i + k);
        assert_eq!(
            status_of(attempt_from(&passwords, "alice", "guess", &ip, now).await),
            StatusCode::BAD_REQUEST
        );
        for _ in 0..3 {
            assert_eq!(
                status_of(attempt_from(&passwords, "alice", "guess", &ip, now).await),
                StatusCode::TOO_MANY_REQUESTS,
                "locked after one failure under a distributed attack"
            );
        }
    }
    assert_eq!(
        passwords.stats().verifications - verifications_before,
        u64::from(fresh),
        "one password check per address, not {}",
        policy.max_failures
    );
    // The real user, at an address that has not failed, still signs in.
    let outcome = attempt_from(&passwords, "alice", PASSWORD, "192.0.2.10", now).await;
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
    // Once the attack goes quiet the allowance per address is back.
    let later = now + 16 * 60;
    let ip = address(i + fresh + 1);
    for _ in 0..policy.max_failures - 1 {
        assert_eq!(
            status_of(attempt_from(&passwords, "alice", "guess", &ip, later).await),
            StatusCode::BAD_REQUEST
        );
    }
}

async fn distributed_guesser_waits_grow_per_address(backend: Backend) {
    let (passwords, _) = backend.passwords();
    let policy = LockoutPolicy::default();
    let mut now = NOW;
    let address = |i: u32| format!("198.51.100.{}", i + 1);
    for i in 0..policy.user_ceiling.div_ceil(policy.max_failures) {
        for _ in 0..policy.max_failures {
            attempt_from(&passwords, "alice", "guess", &address(i), now).await;
        }
    }
    // A new address under attack: 1 min after its first failure, then 2 min, then 4 min.
    let ip = "198.51.100.200";
    for wait in [60, 120, 240] {
        assert_eq!(
            status_of(attempt_from(&passwords, "alice", "guess", ip, now).await),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(attempt_from(&passwords, "alice", "guess", ip, now + wait - 1).await),
            StatusCode::TOO_MANY_REQUESTS
        );
        now += wait;
    }
}
