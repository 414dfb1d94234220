//! The memory page on several replicas through PostgreSQL (`app::SessionBackend::Postgres`):
//! each replica is its own `App` with its own pool, on one schema; they share one
//! `SqliteStore` (the memory store is not under test here) and one fake OpenID provider
//! (discovery, code exchange with PKCE S256, rotating refresh tokens that may be used
//! once, the account API), reached through the page's `HttpClient`.
//!
//! Needs a PostgreSQL server: `MCP_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable server fails the tests.
//! Every test works in a fresh schema (through `search_path`) that it drops at the end.
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "app"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod mcp_common;
#[path = "common/pg_schema.rs"]
mod pg_schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_api::SqliteStore;
use mcp_api::app::{
    App, AppConfig, AppError, HttpClient, HttpClientError, HttpFuture, PostgresPageSessions,
    SessionBackend,
};
use mcp_common::{BASE_URL, ISSUER, READ_WRITE, token};
use serde_json::{Value, json};

use self::pg_schema::Database;
use tokio::sync::Notify;

const CLIENT_ID: &str = "memory-page";
const CLIENT_SECRET: &str = "the page's client secret, shared by every replica";
const SESSION_COOKIE: &str = "__Host-memory_session";
const LOGIN_COOKIE: &str = "__Host-memory_login";

impl Database {
    /// The shared session backend of one replica (its own pool).
    async fn backend(&self) -> SessionBackend {
        SessionBackend::Postgres(PostgresPageSessions::start(self.pool()).await.unwrap())
    }

    /// A replica of the page, signing in at `provider` with `config`.
    async fn replica_with(
        &self,
        provider: &Arc<FakeProvider>,
        config: AppConfig,
    ) -> App<SqliteStore> {
        App::with_sessions(
            config,
            Arc::clone(&self.store),
            mcp_common::verifier(),
            Arc::clone(provider) as Arc<dyn HttpClient>,
            self.backend().await,
        )
        .unwrap()
    }

    /// A replica of the page with the shared client secret.
    async fn replica(&self, provider: &Arc<FakeProvider>) -> App<SqliteStore> {
        self.replica_with(provider, page_config()).await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.admin.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Every byte of every row of both tables, as a backup would hold them: each row as
    /// text and each sealed value raw.
    async fn dump(&self) -> Vec<u8> {
        let mut dump = Vec::new();
        for table in ["mcp_page_session", "mcp_page_login"] {
            for row in self
                .admin
                .query(
                    &format!("SELECT row_to_json(t)::text, t.sealed FROM {table} t"),
                    &[],
                )
                .await
                .unwrap()
            {
                dump.extend_from_slice(row.get::<_, &str>(0).as_bytes());
                dump.extend_from_slice(row.get::<_, &[u8]>(1));
            }
        }
        dump
    }

    async fn drop_schema(mut self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .unwrap_or_else(|error| panic!("dropping {} on {}: {error}", self.schema, self.url));
        self.dropped = true;
    }
}

fn page_config() -> AppConfig {
    AppConfig::new(BASE_URL, ISSUER, CLIENT_ID).with_client_secret(CLIENT_SECRET)
}

/// An authorization code waiting at the provider.
struct Pending {
    sub: String,
    nonce: String,
    challenge: String,
}

#[derive(Default)]
struct ProviderState {
    codes: HashMap<String, Pending>,
    /// Verifiers presented at the token endpoint.
    verifiers: Vec<String>,
    /// Each refresh token issued, with how often it was presented.
    refresh_uses: HashMap<String, u32>,
    /// Refresh tokens issued, in order.
    issued_refresh: Vec<String>,
    code_exchanges: u32,
    /// `expires_in` of the tokens a code exchange returns.
    first_expires_in: u64,
}

/// The OpenID provider, as the page sees it through its `HttpClient`.
struct FakeProvider {
    state: Mutex<ProviderState>,
    /// Released by the test to let the held refresh answer (see `hold_refresh`).
    refresh_gate: Notify,
    refresh_started: Notify,
    /// Hold the next refresh until `refresh_gate` is released.
    hold_refresh: std::sync::atomic::AtomicBool,
}

impl FakeProvider {
    fn new() -> Arc<Self> {
        Self::expiring_in(3600)
    }

    /// A provider whose first access tokens last `seconds` (short: renewed at once).
    fn expiring_in(seconds: u64) -> Arc<Self> {
        Arc::new(FakeProvider {
            state: Mutex::new(ProviderState {
                first_expires_in: seconds,
                ..ProviderState::default()
            }),
            refresh_gate: Notify::new(),
            refresh_started: Notify::new(),
            hold_refresh: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The person `sub` approves the sign-in at `authorization_url`: a code for it.
    fn approve(&self, authorization_url: &str, sub: &str) -> (String, String) {
        let query = authorization_url.split_once('?').unwrap().1;
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(params["code_challenge_method"], "S256");
        let code = format!("code-{}", uuid::Uuid::now_v7().simple());
        self.state.lock().unwrap().codes.insert(
            code.clone(),
            Pending {
                sub: sub.to_owned(),
                nonce: params["nonce"].clone(),
                challenge: params["code_challenge"].clone(),
            },
        );
        (params["state"].clone(), code)
    }

    fn tokens(&self, sub: &str, nonce: Option<&str>, expires_in: u64) -> Value {
        let refresh = format!("rt-{}", uuid::Uuid::now_v7().simple());
        let mut state = self.state.lock().unwrap();
        state.refresh_uses.insert(refresh.clone(), 0);
        state.issued_refresh.push(refresh.clone());
        let mut body = json!({
            "access_token": token(sub, READ_WRITE),
            "token_type": "Bearer",
            "refresh_token": refresh,
            "expires_in": expires_in,
        });
        if let Some(nonce) = nonce {
            let claims = json!({"iss": ISSUER, "sub": sub, "aud": CLIENT_ID, "nonce": nonce, "name": format!("Person {sub}")});
            body["id_token"] = format!(
                "e30.{}.sig",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
            )
            .into();
        }
        body
    }

    async fn token_endpoint(&self, body: &[u8]) -> Response<Bytes> {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        match form["grant_type"].as_str() {
            "authorization_code" => {
                let (pending, expires_in) = {
                    let mut state = self.state.lock().unwrap();
                    state.code_exchanges += 1;
                    state.verifiers.push(form["code_verifier"].clone());
                    (state.codes.remove(&form["code"]), state.first_expires_in)
                };
                let Some(pending) = pending else {
                    return json_response(400, &json!({"error": "invalid_grant"}));
                };
                let challenge = URL_SAFE_NO_PAD.encode(
                    aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        form["code_verifier"].as_bytes(),
                    )
                    .as_ref(),
                );
                if challenge != pending.challenge {
                    return json_response(400, &json!({"error": "invalid_grant"}));
                }
                json_response(
                    200,
                    &self.tokens(&pending.sub, Some(&pending.nonce), expires_in),
                )
            }
            "refresh_token" => {
                let presented = form["refresh_token"].clone();
                let first_use = {
                    let mut state = self.state.lock().unwrap();
                    let uses = state.refresh_uses.entry(presented).or_insert(0);
                    *uses += 1;
                    *uses == 1
                };
                // Only the first renewal is held: a second one (a bug) answers at once.
                if self
                    .hold_refresh
                    .swap(false, std::sync::atomic::Ordering::SeqCst)
                {
                    self.refresh_started.notify_one();
                    self.refresh_gate.notified().await;
                }
                if !first_use {
                    // A second use is theft: a real provider revokes the grant.
                    return json_response(400, &json!({"error": "invalid_grant"}));
                }
                json_response(200, &self.tokens("alice", None, 3600))
            }
            other => panic!("unexpected grant type {other}"),
        }
    }
}

impl HttpClient for FakeProvider {
    fn send(&self, request: Request<Bytes>) -> HttpFuture<'_> {
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            Ok::<_, HttpClientError>(match path.as_str() {
                "/.well-known/openid-configuration" => json_response(
                    200,
                    &json!({
                        "issuer": ISSUER,
                        "authorization_endpoint": format!("{ISSUER}/authorize"),
                        "token_endpoint": format!("{ISSUER}/token"),
                    }),
                ),
                "/token" => self.token_endpoint(request.body()).await,
                "/account/grants" => json_response(200, &json!({"apps": []})),
                "/account/grants/revoke" => json_response(200, &json!({"revoked": 1})),
                other => panic!("unexpected request to the provider: {other}"),
            })
        })
    }
}

fn json_response(status: u16, body: &Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

/// A browser's answer: status, `Location`, cookies set, body.
struct Answer {
    status: StatusCode,
    location: String,
    cookies: HashMap<String, String>,
    body: String,
}

async fn send(app: &App<SqliteStore>, request: Request<Full<Bytes>>) -> Answer {
    let response = app.handle(request).await;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| {
            let (pair, _) = value.to_str().unwrap().split_once(';')?;
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookies,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get(path: &str, cookies: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::get(format!("{BASE_URL}{path}"));
    let cookie: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !cookie.is_empty() {
        request = request.header("cookie", cookie.join("; "));
    }
    request.body(Full::default()).unwrap()
}

fn post(path: &str, session: &str, form: &str) -> Request<Full<Bytes>> {
    Request::post(format!("{BASE_URL}{path}"))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .header("origin", BASE_URL)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap()
}

/// A sign-in started on `app`: the `state`, the code the provider gave `sub`, and the
/// browser's login cookie.
struct Started {
    state: String,
    code: String,
    login_cookie: String,
}

async fn start_sign_in(app: &App<SqliteStore>, provider: &FakeProvider, sub: &str) -> Started {
    let answer = send(app, get("/app/login", &[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(answer.location.starts_with(&format!("{ISSUER}/authorize?")));
    let (state, code) = provider.approve(&answer.location, sub);
    Started {
        state,
        code,
        login_cookie: answer.cookies[LOGIN_COOKIE].clone(),
    }
}

async fn finish_sign_in(app: &App<SqliteStore>, started: &Started) -> Answer {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", &started.state)
        .append_pair("code", &started.code)
        .finish();
    send(
        app,
        get(
            &format!("/app/callback?{query}"),
            &[(LOGIN_COOKIE, &started.login_cookie)],
        ),
    )
    .await
}

/// Signs `sub` in on `app`; the session cookie's value.
async fn sign_in(app: &App<SqliteStore>, provider: &FakeProvider, sub: &str) -> String {
    let started = start_sign_in(app, provider, sub).await;
    let answer = finish_sign_in(app, &started).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    answer.cookies[SESSION_COOKIE].clone()
}

/// `GET /app/` with `session`: the page (200) or a redirect to sign in (303).
async fn memories_page(app: &App<SqliteStore>, session: &str) -> Answer {
    send(app, get("/app/", &[(SESSION_COOKIE, session)])).await
}

fn signed_in_as(answer: &Answer, sub: &str) -> bool {
    answer.status == StatusCode::OK && answer.body.contains(&format!("Person {sub}"))
}

fn signed_out(answer: &Answer) -> bool {
    answer.status == StatusCode::SEE_OTHER && answer.location.starts_with("/app/login")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_session_started_on_one_replica_is_served_by_the_other() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;

    let session = sign_in(&a, &provider, "alice").await;
    let on_b = memories_page(&b, &session).await;
    assert!(
        signed_in_as(&on_b, "alice"),
        "{} {}",
        on_b.status,
        on_b.body
    );
    assert!(signed_in_as(&memories_page(&a, &session).await, "alice"));
    assert!(signed_out(&memories_page(&b, "forged").await));
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 1);
    db.drop_schema().await;
}

#[tokio::test]
async fn a_sign_in_started_on_one_replica_completes_on_the_other() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;

    let started = start_sign_in(&a, &provider, "alice").await;
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_login").await, 1);
    let answer = finish_sign_in(&b, &started).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location, "/app/");
    let session = answer.cookies[SESSION_COOKIE].clone();
    assert!(signed_in_as(&memories_page(&a, &session).await, "alice"));
    // The PKCE verifier travelled through the database: the provider checked it.
    assert_eq!(provider.state.lock().unwrap().code_exchanges, 1);
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_login").await, 0);
    // The same state again, on either replica, is refused.
    assert_eq!(
        finish_sign_in(&a, &started).await.status,
        StatusCode::BAD_REQUEST
    );
    db.drop_schema().await;
}

#[tokio::test]
async fn signing_out_on_one_replica_ends_the_session_on_the_other() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;

    let session = sign_in(&a, &provider, "alice").await;
    let page = memories_page(&b, &session).await;
    assert!(signed_in_as(&page, "alice"));
    let form = format!("csrf={}", csrf_of(&page.body));
    let out = send(&b, post("/app/logout", &session, &form)).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(out.location, "/app/login?signed_out=1");
    assert!(signed_out(&memories_page(&a, &session).await));
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 0);
    db.drop_schema().await;
}

#[tokio::test]
async fn revoking_the_pages_own_access_ends_the_session_everywhere() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;

    let session = sign_in(&a, &provider, "alice").await;
    let page = memories_page(&a, &session).await;
    let form = format!("csrf={}&client_id={CLIENT_ID}", csrf_of(&page.body));
    let revoked = send(&b, post("/app/apps/revoke", &session, &form)).await;
    assert_eq!(
        revoked.location, "/app/login?signed_out=1",
        "{}",
        revoked.body
    );
    assert!(signed_out(&memories_page(&a, &session).await));
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 0);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_state_is_taken_once_under_20_concurrent_takes() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;

    let started = Arc::new(start_sign_in(&a, &provider, "alice").await);
    let mut takes = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        let started = Arc::clone(&started);
        takes.push(tokio::spawn(
            async move { finish_sign_in(&app, &started).await },
        ));
    }
    let mut signed_in = 0;
    for take in takes {
        let answer = take.await.unwrap();
        if answer.status == StatusCode::SEE_OTHER {
            assert!(answer.cookies.contains_key(SESSION_COOKIE));
            signed_in += 1;
        } else {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        }
    }
    assert_eq!(signed_in, 1);
    assert_eq!(provider.state.lock().unwrap().code_exchanges, 1);
    db.drop_schema().await;
}

#[tokio::test]
async fn attack_a_database_backup_reveals_no_page_token() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;

    // A sign-in in flight: its row, as a backup taken now would hold it.
    let started = start_sign_in(&a, &provider, "alice").await;
    let login_backup = db.dump().await;
    let answer = finish_sign_in(&a, &started).await;
    let session = answer.cookies[SESSION_COOKIE].clone();
    let page = memories_page(&a, &session).await;
    assert!(signed_in_as(&page, "alice"));
    let backup = db.dump().await;
    assert!(!backup.is_empty() && !login_backup.is_empty());

    let (verifier, refresh_token) = {
        let state = provider.state.lock().unwrap();
        (state.verifiers[0].clone(), state.issued_refresh[0].clone())
    };
    let access_token = token("alice", READ_WRITE);
    for (name, secret) in [
        ("access token", access_token.as_str()),
        (
            "access token payload",
            access_token.split('.').nth(1).unwrap(),
        ),
        ("refresh token", refresh_token.as_str()),
        ("session cookie", session.as_str()),
        ("CSRF token", &csrf_of(&page.body)),
        ("display name", "Person alice"),
    ] {
        assert!(!contains(&backup, secret), "the {name} is in the backup");
    }
    for (name, secret) in [
        ("PKCE verifier", verifier.as_str()),
        ("login cookie", started.login_cookie.as_str()),
        ("state", started.state.as_str()),
    ] {
        assert!(
            !contains(&login_backup, secret),
            "the {name} is in the backup"
        );
    }
    // Only hashes name the rows.
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, session.as_bytes());
    let stored: Vec<u8> = db
        .admin
        .query_one("SELECT key_hash FROM mcp_page_session", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, hash.as_ref());
    db.drop_schema().await;
}

#[tokio::test]
async fn attack_a_ciphertext_moved_to_another_session_is_refused() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;

    let alice = sign_in(&a, &provider, "alice").await;
    let mallory = sign_in(&a, &provider, "mallory").await;
    let hash = |cookie: &str| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cookie.as_bytes())
            .as_ref()
            .to_vec()
    };
    // Mallory, with write access to the database, copies Alice's sealed tokens into her
    // own row; then her subject as well.
    db.admin
        .execute(
            "UPDATE mcp_page_session SET sealed =
                 (SELECT sealed FROM mcp_page_session WHERE key_hash = $1)
              WHERE key_hash = $2",
            &[&hash(&alice), &hash(&mallory)],
        )
        .await
        .unwrap();
    let answer = memories_page(&a, &mallory).await;
    assert!(signed_out(&answer), "{} {}", answer.status, answer.body);
    db.admin
        .execute(
            "UPDATE mcp_page_session SET subject = 'alice' WHERE key_hash = $1",
            &[&hash(&mallory)],
        )
        .await
        .unwrap();
    let answer = memories_page(&a, &mallory).await;
    assert!(signed_out(&answer), "{} {}", answer.status, answer.body);
    assert!(!answer.body.contains("Person alice"));
    // Changing the clear subject of Alice's own row breaks it too.
    db.admin
        .execute(
            "UPDATE mcp_page_session SET subject = 'mallory' WHERE key_hash = $1",
            &[&hash(&alice)],
        )
        .await
        .unwrap();
    assert!(signed_out(&memories_page(&a, &alice).await));
    db.drop_schema().await;
}

#[tokio::test]
async fn a_replica_with_another_key_treats_the_session_as_unknown() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let a = db.replica(&provider).await;
    let other = db
        .replica_with(
            &provider,
            AppConfig::new(BASE_URL, ISSUER, CLIENT_ID)
                .with_client_secret("another client secret, also long enough"),
        )
        .await;

    let session = sign_in(&a, &provider, "alice").await;
    let answer = memories_page(&other, &session).await;
    assert!(signed_out(&answer), "{} {}", answer.status, answer.body);
    // It neither ended the session nor broke it for the replicas with the right key.
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 1);
    assert!(signed_in_as(&memories_page(&a, &session).await, "alice"));
    // A sign-in it cannot open fails as an expired one.
    let started = start_sign_in(&a, &provider, "alice").await;
    let answer = finish_sign_in(&other, &started).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(provider.state.lock().unwrap().code_exchanges, 1);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_renewals_on_two_replicas_use_the_refresh_token_once() {
    let db = Database::new("mcp_page").await;
    // The first access token lasts one second: the next page request renews it.
    let provider = FakeProvider::expiring_in(1);
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;
    let session = sign_in(&a, &provider, "alice").await;
    let first_refresh = provider.state.lock().unwrap().issued_refresh[0].clone();

    // Replica A's renewal is held at the provider until B asks for the same session.
    provider
        .hold_refresh
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let on_a = {
        let (a, session) = (a.clone(), session.clone());
        tokio::spawn(async move { memories_page(&a, &session).await })
    };
    provider.refresh_started.notified().await;
    let on_b = {
        let (b, session) = (b.clone(), session.clone());
        tokio::spawn(async move { memories_page(&b, &session).await })
    };
    // B's request finds the renewal taken and waits for it; it cannot finish before A's.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!on_b.is_finished(), "B did not wait for A's renewal");
    provider.refresh_gate.notify_one();
    let (on_a, on_b) = (on_a.await.unwrap(), on_b.await.unwrap());
    assert!(
        signed_in_as(&on_a, "alice"),
        "{} {}",
        on_a.status,
        on_a.body
    );
    assert!(
        signed_in_as(&on_b, "alice"),
        "{} {}",
        on_b.status,
        on_b.body
    );

    {
        let state = provider.state.lock().unwrap();
        assert_eq!(
            state.refresh_uses[&first_refresh], 1,
            "refresh token reused"
        );
        assert_eq!(
            state
                .refresh_uses
                .values()
                .filter(|uses| **uses > 0)
                .count(),
            1,
            "one renewal for both replicas"
        );
        assert!(state.refresh_uses.values().all(|uses| *uses <= 1));
    }
    // Both replicas now serve the renewed tokens without renewing again.
    assert!(signed_in_as(&memories_page(&b, &session).await, "alice"));
    assert!(signed_in_as(&memories_page(&a, &session).await, "alice"));
    let renewals: u32 = provider.state.lock().unwrap().refresh_uses.values().sum();
    assert_eq!(renewals, 1);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_renewals_of_many_sessions_each_use_their_refresh_token_once() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::expiring_in(1);
    let a = db.replica(&provider).await;
    let b = db.replica(&provider).await;
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(sign_in(&a, &provider, "alice").await);
    }
    let mut requests = Vec::new();
    for session in &sessions {
        for app in [&a, &b, &a, &b] {
            let (app, session) = (app.clone(), session.clone());
            requests.push(tokio::spawn(
                async move { memories_page(&app, &session).await },
            ));
        }
    }
    for request in requests {
        let answer = request.await.unwrap();
        assert!(
            signed_in_as(&answer, "alice"),
            "{} {}",
            answer.status,
            answer.body
        );
    }
    {
        let state = provider.state.lock().unwrap();
        assert!(state.refresh_uses.values().all(|uses| *uses <= 1));
        assert_eq!(state.refresh_uses.values().sum::<u32>(), 5);
    }
    db.drop_schema().await;
}

#[tokio::test]
async fn the_shared_tables_are_bounded_for_all_replicas_and_expired_rows_go() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let mut config = page_config();
    config.max_sessions = 2;
    let a = db.replica_with(&provider, config.clone()).await;
    let b = db.replica_with(&provider, config).await;

    let first = sign_in(&a, &provider, "alice").await;
    let second = sign_in(&b, &provider, "bob").await;
    let third = sign_in(&a, &provider, "carol").await;
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 2);
    assert!(signed_out(&memories_page(&b, &first).await));
    assert!(signed_in_as(&memories_page(&b, &second).await, "bob"));
    assert!(signed_in_as(&memories_page(&b, &third).await, "carol"));

    // An expired session is never served, and the purge deletes it.
    db.admin
        .execute(
            "UPDATE mcp_page_session SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert!(signed_out(&memories_page(&a, &third).await));
    PostgresPageSessions::start(db.pool())
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    assert_eq!(db.count("SELECT count(*) FROM mcp_page_session").await, 0);
    db.drop_schema().await;
}

#[tokio::test]
async fn the_shared_backend_needs_a_key() {
    let db = Database::new("mcp_page").await;
    let provider = FakeProvider::new();
    let build = |config: AppConfig, backend: SessionBackend| {
        App::with_sessions(
            config,
            Arc::clone(&db.store),
            mcp_common::verifier(),
            Arc::clone(&provider) as Arc<dyn HttpClient>,
            backend,
        )
        .map(|_| ())
    };
    let public = AppConfig::new(BASE_URL, ISSUER, CLIENT_ID);
    let error = build(public.clone(), db.backend().await).unwrap_err();
    assert_eq!(error, AppError::MissingSessionKey);
    assert!(error.to_string().contains("with_session_key"), "{error}");
    assert_eq!(
        build(
            public.clone().with_client_secret("short"),
            db.backend().await
        ),
        Err(AppError::ShortClientSecret)
    );
    assert_eq!(
        build(
            public.clone().with_session_key([1u8; 31]),
            db.backend().await
        ),
        Err(AppError::ShortSessionKey)
    );
    assert_eq!(
        build(
            public.clone().with_session_key([1u8; 32]),
            db.backend().await
        ),
        Ok(())
    );
    // In process, a public client needs no key.
    assert_eq!(build(public, SessionBackend::InProcess), Ok(()));

    // A public client with a session key signs in across replicas.
    let keyed = || AppConfig::new(BASE_URL, ISSUER, CLIENT_ID).with_session_key([9u8; 32]);
    let a = db.replica_with(&provider, keyed()).await;
    let b = db.replica_with(&provider, keyed()).await;
    let session = sign_in(&a, &provider, "alice").await;
    assert!(signed_in_as(&memories_page(&b, &session).await, "alice"));
    db.drop_schema().await;
}
