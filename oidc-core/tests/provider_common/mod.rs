//! Test support for the provider tests: a provider over a real store (`SqliteStore` in a
//! temporary directory, or `PostgresStore` in a fresh schema), on a virtual clock, with a test login method that completes at once, and
//! helpers that drive the authorization flow through `tower::ServiceExt::oneshot`.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use oidc_core::authn::{
    AuthenticatedUser, Authenticator, BoxFuture, LoginMethod, LoginOutcome, LoginRequest,
    TransactionId,
};
use oidc_core::jwt::{AccessTokenClaims, encode_access_token};
use oidc_core::keys::{KeyError, KeyGenerator, KeySize, SigningKey};
use oidc_core::pkce::CodeVerifier;
use oidc_core::provider::{Provider, ProviderConfig, RateLimits, ScopeDefinition, StaticClient};
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::store::{ProviderStore, SqliteStore};
use oidc_core::types::{ClientId, Issuer, ResourceIndicator, Subject};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt as _;
use url::form_urlencoded;

#[path = "../event_log/mod.rs"]
pub mod event_log;

#[cfg(feature = "postgres")]
pub mod postgres;

pub const ISSUER: &str = "https://auth.example.com";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
pub const OTHER_RESOURCE: &str = "https://api.example.com/other";
pub const T0: u64 = 1_700_000_000;

pub const PUBLIC: &str = "public-app";
pub const PUBLIC_REDIRECT: &str = "https://app.example/callback";
pub const PUBLIC_LOOPBACK: &str = "http://127.0.0.1/callback";
pub const CONF: &str = "conf-app";
pub const CONFIDENTIAL_SECRET: &str = "s3cr:et/+ %value";
pub const CONFIDENTIAL_REDIRECT: &str = "https://conf.example/cb";
pub const NO_REFRESH: &str = "no-refresh-app";
pub const NO_REFRESH_REDIRECT: &str = "https://norefresh.example/cb";
pub const SUBJECT: &str = "user-1";

// ---------------------------------------------------------------------------------------
// Clock and keys

/// A clock that only moves when told to: a `ManualClock` read in whole seconds.
#[derive(Clone)]
pub struct VirtualClock(jwks_verify::ManualClock);

impl VirtualClock {
    pub fn at(now: u64) -> Self {
        VirtualClock(jwks_verify::ManualClock::at_unix(now))
    }

    pub fn now(&self) -> u64 {
        jwks_verify::Clock::unix_time(&self.0)
    }

    pub fn advance(&self, seconds: u64) {
        self.0.advance(std::time::Duration::from_secs(seconds));
    }

    /// The clock itself, to give to a provider.
    pub fn manual(&self) -> jwks_verify::ManualClock {
        self.0.clone()
    }
}

/// RSA keys generated once per test binary (generation is the slow part).
fn key_pool() -> &'static Vec<Vec<u8>> {
    static POOL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..4)
            .map(|_| {
                SigningKey::generate(KeySize::Rsa2048)
                    .unwrap()
                    .to_pkcs8_der()
                    .unwrap()
                    .secret_der()
                    .to_vec()
            })
            .collect()
    })
}

/// Hands out the pooled keys in order.
pub struct PooledKeys(AtomicUsize);

impl PooledKeys {
    pub fn new() -> Self {
        PooledKeys(AtomicUsize::new(0))
    }
}

impl KeyGenerator for PooledKeys {
    fn generate_key(&self) -> Result<SigningKey, KeyError> {
        let pool = key_pool();
        let i = self.0.fetch_add(1, Ordering::SeqCst);
        SigningKey::from_pkcs8_der(&pool[i % pool.len()])
    }
}

// ---------------------------------------------------------------------------------------
// The test login method

/// Who the test login method says logged in.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

impl Default for TestUser {
    fn default() -> Self {
        TestUser {
            subject: SUBJECT.to_owned(),
            email: Some("alice@example.com".to_owned()),
            email_verified: true,
            name: Some("Alice Example".to_owned()),
        }
    }
}

/// A login method that completes at once: `start` redirects to its own path with the
/// transaction id, and `handle` reports the configured user for it.
pub struct TestLogin {
    name: &'static str,
    prefix: &'static str,
    pub user: Mutex<TestUser>,
    /// How the users it reports logged in (upstream by default).
    pub method: Mutex<LoginMethod>,
    pub requests: Mutex<Vec<LoginRequest>>,
}

impl TestLogin {
    pub fn new(name: &'static str, prefix: &'static str) -> Arc<Self> {
        Arc::new(TestLogin {
            name,
            prefix,
            user: Mutex::new(TestUser::default()),
            method: Mutex::new(LoginMethod::Upstream {
                issuer: "https://upstream.example".to_owned(),
            }),
            requests: Mutex::new(Vec::new()),
        })
    }

    pub fn set_user(&self, user: TestUser) {
        *self.user.lock().unwrap() = user;
    }

    pub fn set_method(&self, method: LoginMethod) {
        *self.method.lock().unwrap() = method;
    }

    pub fn last_request(&self) -> LoginRequest {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

impl Authenticator for TestLogin {
    fn name(&self) -> &str {
        self.name
    }

    fn label(&self) -> &str {
        "Sign in for tests"
    }

    fn path_prefix(&self) -> &str {
        self.prefix
    }

    fn start(&self, request: LoginRequest, _now: u64) -> BoxFuture<'_, Response<Bytes>> {
        let location = format!("{}/done?tx={}", self.prefix, request.transaction.as_str());
        self.requests.lock().unwrap().push(request);
        Box::pin(async move {
            Response::builder()
                .status(StatusCode::FOUND)
                .header(http::header::LOCATION, location)
                .body(Bytes::new())
                .unwrap()
        })
    }

    fn handle(&self, request: Request<Bytes>, now: u64) -> BoxFuture<'_, LoginOutcome> {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let template = self.user.lock().unwrap().clone();
        let method = self.method.lock().unwrap().clone();
        Box::pin(async move {
            let tx = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "tx")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let Some(transaction) = TransactionId::parse(&tx) else {
                return LoginOutcome::Respond(
                    Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(Bytes::from_static(b"bad tx"))
                        .unwrap(),
                );
            };
            let mut user =
                AuthenticatedUser::new(Subject::parse(&template.subject).unwrap(), now, method);
            user.email = template.email;
            user.email_verified = template.email_verified;
            user.name = template.name;
            LoginOutcome::Authenticated { transaction, user }
        })
    }
}

// ---------------------------------------------------------------------------------------
// The provider under test

pub fn base_config(issuer: &str) -> ProviderConfig {
    let mut config = ProviderConfig::new(
        Issuer::parse(issuer).unwrap(),
        ResourceIndicator::parse(RESOURCE).unwrap(),
    )
    .with_resource(ResourceIndicator::parse(OTHER_RESOURCE).unwrap())
    .with_scope(ScopeDefinition::new("memories:read", "Read your memories").unwrap())
    .with_scope(ScopeDefinition::new("memories:write", "Change your memories").unwrap())
    .with_static_client(StaticClient::public(
        ClientId::parse(PUBLIC).unwrap(),
        "Public <b>App</b>",
        vec![
            RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
            RedirectUri::parse(PUBLIC_LOOPBACK).unwrap(),
        ],
    ))
    .with_static_client(StaticClient::confidential(
        ClientId::parse(CONF).unwrap(),
        "Confidential App",
        vec![RedirectUri::parse(CONFIDENTIAL_REDIRECT).unwrap()],
        SecretHash::of(CONFIDENTIAL_SECRET),
    ))
    .with_static_client(
        StaticClient::public(
            ClientId::parse(NO_REFRESH).unwrap(),
            "No Refresh App",
            vec![RedirectUri::parse(NO_REFRESH_REDIRECT).unwrap()],
        )
        .with_refresh_tokens(false),
    );
    config.rate_limits = RateLimits::unlimited();
    config.maintenance.background = false;
    config.key_generator = Arc::new(PooledKeys::new());
    config
}

pub struct TestProvider {
    pub provider: Provider,
    pub clock: VirtualClock,
    pub store: Arc<dyn ProviderStore>,
    pub login: Arc<TestLogin>,
    /// The SQLite database's directory (an empty one for other backends).
    pub dir: Arc<TempDir>,
}

/// Where a test provider keeps its state; several providers on one database are replicas
/// (or one provider after a restart).
#[derive(Clone)]
pub enum TestDatabase {
    /// `provider.db` in this directory.
    Sqlite(Arc<TempDir>),
    /// A fresh PostgreSQL schema, dropped when the last clone goes.
    #[cfg(feature = "postgres")]
    Postgres(Arc<postgres::TestSchema>),
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        TestDatabase::Sqlite(Arc::new(tempfile::tempdir().unwrap()))
    }

    #[cfg(feature = "postgres")]
    pub async fn postgres() -> TestDatabase {
        TestDatabase::Postgres(Arc::new(postgres::TestSchema::create().await))
    }

    /// A store over this database (another connection to it, for a second replica).
    pub async fn open(&self) -> Arc<dyn ProviderStore> {
        match self {
            TestDatabase::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path().join("provider.db")).unwrap())
            }
            #[cfg(feature = "postgres")]
            TestDatabase::Postgres(schema) => Arc::new(schema.store().await),
        }
    }
}

pub async fn start() -> TestProvider {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut ProviderConfig)) -> TestProvider {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = VirtualClock::at(T0);
    start_in(dir, clock, configure).await
}

/// A provider over the database in `dir` (reopened if it exists).
pub async fn start_in(
    dir: Arc<TempDir>,
    clock: VirtualClock,
    configure: impl FnOnce(&mut ProviderConfig),
) -> TestProvider {
    start_on(&TestDatabase::Sqlite(dir), clock, configure).await
}

/// A provider over `database` (reopened if it holds state already).
pub async fn start_on(
    database: &TestDatabase,
    clock: VirtualClock,
    configure: impl FnOnce(&mut ProviderConfig),
) -> TestProvider {
    let dir = match database {
        TestDatabase::Sqlite(dir) => Arc::clone(dir),
        #[cfg(feature = "postgres")]
        TestDatabase::Postgres(_) => Arc::new(tempfile::tempdir().unwrap()),
    };
    let store = database.open().await;
    let mut config = base_config(ISSUER);
    configure(&mut config);
    let login = TestLogin::new("test", "/login/test");
    let provider = Provider::builder(config, store.clone())
        .authenticator(login.clone())
        .clock(clock.manual())
        .build()
        .await
        .unwrap();
    TestProvider {
        provider,
        clock,
        store,
        login,
        dir,
    }
}

// ---------------------------------------------------------------------------------------
// Requests and responses

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn location(&self) -> &str {
        self.header("location")
            .unwrap_or_else(|| panic!("no location; status {}: {}", self.status, self.text()))
    }

    /// The query parameters of the `Location` header.
    pub fn location_params(&self) -> HashMap<String, String> {
        query_params(self.location())
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }

    pub fn is_error_page(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
            && self.header("location").is_none()
            && self.status.is_client_error()
    }
}

pub fn query_params(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

/// How a client authenticates in a token request.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Public(&'a str),
    Post(&'a str, &'a str),
    Basic(&'a str, &'a str),
}

/// `Basic` credentials, form-encoded before base64 as RFC 6749 §2.3.1 requires.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A fresh PKCE pair.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = CodeVerifier::generate(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    Pkce {
        challenge: verifier.challenge().as_base64url(),
        verifier: verifier.secret().to_owned(),
    }
}

/// What a finished authorization flow produced.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub json: Value,
}

impl TestProvider {
    pub async fn send(&self, request: Request<Full<Bytes>>) -> TestResponse {
        let response = self.provider.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn get(&self, path_and_query: &str) -> TestResponse {
        self.get_with(path_and_query, &[]).await
    }

    pub async fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut builder = Request::builder().method(Method::GET).uri(path_and_query);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::new(Bytes::new())).unwrap())
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::new(Bytes::from(form(pairs)))).unwrap())
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
    }

    /// `GET /authorize` with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> TestResponse {
        self.get(&format!("/authorize?{}", form(params))).await
    }

    /// The standard parameters of a valid request by `client_id`.
    pub fn authorize_params<'a>(
        client_id: &'a str,
        redirect_uri: &'a str,
        pkce: &'a Pkce,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile email offline_access memories:read"),
            ("state", "st&te=1 2"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]
    }

    /// Follows the login redirect of an `/authorize` response: the consent page.
    pub async fn login(&self, authorize: &TestResponse) -> TestResponse {
        assert_eq!(
            authorize.status,
            StatusCode::FOUND,
            "authorize failed: {}",
            authorize.text()
        );
        self.get(authorize.location()).await
    }

    /// Approves on a consent page; the 303 response.
    pub async fn approve(&self, consent: &TestResponse) -> TestResponse {
        let (tx, csrf) = consent_fields(consent);
        self.post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "approve")],
            &[],
        )
        .await
    }

    /// Runs `/authorize` → login → consent and returns the redirect's parameters.
    pub async fn authorize_and_approve(&self, params: &[(&str, &str)]) -> HashMap<String, String> {
        let authorize = self.authorize(params).await;
        let consent = self.login(&authorize).await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
        let approved = self.approve(&consent).await;
        assert_eq!(
            approved.status,
            StatusCode::SEE_OTHER,
            "{}",
            approved.text()
        );
        approved.location_params()
    }

    /// A code for the public client with the standard parameters plus `extra`.
    pub async fn code(&self, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut params = Self::authorize_params(PUBLIC, PUBLIC_REDIRECT, pkce);
        params.extend_from_slice(extra);
        self.authorize_and_approve(&params).await["code"].clone()
    }

    /// `POST /token` with `pairs` and the client authentication.
    pub async fn token(&self, auth: Auth<'_>, pairs: &[(&str, &str)]) -> TestResponse {
        let mut pairs = pairs.to_vec();
        let mut headers = Vec::new();
        let basic_header;
        match auth {
            Auth::Public(id) => pairs.push(("client_id", id)),
            Auth::Post(id, secret) => {
                pairs.push(("client_id", id));
                pairs.push(("client_secret", secret));
            }
            Auth::Basic(id, secret) => {
                basic_header = basic(id, secret);
                headers.push(("authorization", basic_header.as_str()));
            }
        }
        self.post_form("/token", &pairs, &headers).await
    }

    /// Redeems a code of the public client.
    pub async fn redeem(&self, code: &str, verifier: &str) -> TestResponse {
        self.token(
            Auth::Public(PUBLIC),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", PUBLIC_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// A whole flow for the public client: tokens.
    pub async fn tokens(&self) -> Tokens {
        self.tokens_with(&[]).await
    }

    pub async fn tokens_with(&self, extra: &[(&str, &str)]) -> Tokens {
        let pkce = pkce();
        let code = self.code(&pkce, extra).await;
        let response = self.redeem(&code, &pkce.verifier).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        tokens_of(&response)
    }

    /// `POST /token` with the refresh token grant for the public client.
    pub async fn refresh(&self, refresh_token: &str, extra: &[(&str, &str)]) -> TestResponse {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        pairs.extend_from_slice(extra);
        self.token(Auth::Public(PUBLIC), &pairs).await
    }

    pub async fn userinfo(&self, access_token: &str) -> TestResponse {
        self.get_with(
            "/userinfo",
            &[("authorization", &format!("Bearer {access_token}"))],
        )
        .await
    }

    pub async fn introspect(&self, auth: Auth<'_>, token: &str) -> TestResponse {
        let mut pairs = vec![("token", token)];
        let mut headers = Vec::new();
        let header;
        match auth {
            Auth::Public(id) => pairs.push(("client_id", id)),
            Auth::Post(id, secret) => {
                pairs.push(("client_id", id));
                pairs.push(("client_secret", secret));
            }
            Auth::Basic(id, secret) => {
                header = basic(id, secret);
                headers.push(("authorization", header.as_str()));
            }
        }
        self.post_form("/introspect", &pairs, &headers).await
    }

    pub async fn revoke(&self, client_id: &str, token: &str) -> TestResponse {
        self.post_form(
            "/revoke",
            &[("token", token), ("client_id", client_id)],
            &[],
        )
        .await
    }

    /// Whether an access token is still accepted at userinfo and introspection.
    pub async fn access_token_works(&self, access_token: &str) -> bool {
        let userinfo = self.userinfo(access_token).await.status == StatusCode::OK;
        let introspection = self
            .introspect(Auth::Public(PUBLIC), access_token)
            .await
            .json()["active"]
            == Value::Bool(true);
        assert_eq!(
            userinfo, introspection,
            "userinfo and introspection disagree"
        );
        userinfo
    }

    pub async fn jwks(&self) -> String {
        self.get("/jwks.json").await.text()
    }
}

/// The tokens of a successful token response.
pub fn tokens_of(response: &TestResponse) -> Tokens {
    let json = response.json();
    Tokens {
        access_token: json["access_token"].as_str().unwrap().to_owned(),
        refresh_token: json["refresh_token"].as_str().map(str::to_owned),
        id_token: json["id_token"].as_str().map(str::to_owned),
        json,
    }
}

/// The hidden `tx` and `csrf` fields of a consent page.
pub fn consent_fields(page: &TestResponse) -> (String, String) {
    let html = page.text();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {html}"))
            + marker.len();
        let end = start + html[start..].find('"').unwrap();
        html[start..end].to_owned()
    };
    (field("tx"), field("csrf"))
}

/// A JWT's header (0) or payload (1) as JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `access_token` (one of ours) signed again by the same provider key after `change`: a
/// token the provider's own key vouches for, with claims the provider never issued.
pub fn resign_access_token(
    access_token: &str,
    change: impl FnOnce(&mut AccessTokenClaims),
) -> String {
    let kid = jwt_part(access_token, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = key_pool()
        .iter()
        .map(|der| SigningKey::from_pkcs8_der(der).unwrap())
        .find(|key| key.kid() == kid)
        .expect("the provider signs with a pooled key");
    let mut claims: AccessTokenClaims = serde_json::from_value(jwt_part(access_token, 1)).unwrap();
    change(&mut claims);
    encode_access_token(&key, &claims).unwrap()
}

/// A request extension with a client address, for rate-limit tests.
pub fn from_ip(mut request: Request<Full<Bytes>>, ip: &str) -> Request<Full<Bytes>> {
    let addr = SocketAddr::new(ip.parse().unwrap(), 40000);
    request.extensions_mut().insert(addr);
    request
}

/// A jwks-verify verifier for our access tokens over `jwks`, at `now`.
pub fn access_token_verifier(jwks: &str, audience: &str, now: u64) -> jwks_verify::Verifier {
    jwks_verify::Verifier::builder(
        jwks_verify::Policy::new(ISSUER, audience).typ(jwks_verify::TypPolicy::AccessToken),
    )
    .static_jwks(jwks)
    .clock(jwks_verify::ManualClock::at_unix(now))
    .build()
    .unwrap()
}
