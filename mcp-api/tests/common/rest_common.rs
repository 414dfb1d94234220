//! The REST fixture: a real `SqliteStore` in a temporary directory on a clock the test
//! moves, `RestApi` behind the real `BearerAuthLayer<AccessClaims>`, and RS256 access tokens
//! signed with an RSA key generated for the test run.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use jwks_verify::{BearerAuth, BearerAuthLayer, Clock, ManualClock, Policy, TypPolicy, Verifier};
use mcp_api::rest::RestApi;
use mcp_api::store::{ListQuery, Memory, MemoryState, SortColumn, SortDirection, SqliteOptions};
use mcp_api::{AccessClaims, Owner, ProtectedResource, SqliteStore};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::{Layer, ServiceExt};

pub const BASE_URL: &str = "https://mcp.example";
pub const ISSUER: &str = "https://auth.example";
/// The Unix second the store and verifier clocks start at.
pub const T0: i64 = 1_700_000_000;

pub const ALICE: &str = "auth0|alice";
pub const BOB: &str = "auth0|bob";
pub const APP_A: &str = "client-a";
pub const APP_B: &str = "client-b";

pub const READ: &str = "memories:read";
pub const WRITE: &str = "memories:write";

pub type Service = BearerAuth<RestApi<SqliteStore>, AccessClaims>;

pub fn resource() -> ProtectedResource {
    ProtectedResource::new(BASE_URL, ISSUER)
}

/// The RSA key of this test run (generated once: RSA key generation is slow).
struct SigningKey {
    pair: KeyPair,
}

fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey {
        pair: KeyPair::generate(KeySize::Rsa2048).unwrap(),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    fn jwks(&self) -> String {
        let public = self.pair.public_key();
        json!({"keys": [{
            "kty": "RSA",
            "kid": "test-key",
            "alg": "RS256",
            "use": "sig",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        }]})
        .to_string()
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "test-key"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", b64(&signature))
    }
}

/// An access token for `sub` with `scope`, issued to `client_id`.
pub fn token(sub: &str, scope: &str, client_id: &str) -> String {
    signing_key().sign(&json!({
        "iss": ISSUER,
        "aud": resource().resource(),
        "sub": sub,
        "client_id": client_id,
        "scope": scope,
        "iat": T0,
        "exp": T0 + 3600,
    }))
}

/// Alice's read-write token from app A.
pub fn alice() -> String {
    token(ALICE, &format!("openid {WRITE}"), APP_A)
}

/// Bob's read-write token from app B.
pub fn bob() -> String {
    token(BOB, &format!("openid {WRITE}"), APP_B)
}

/// An answer: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The error code of an error answer.
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }

    /// Asserts an error answer with `status` and `code`.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{:#}", self.json);
        assert_eq!(self.error(), code, "{:#}", self.json);
        assert!(self.json["message"].is_string(), "{:#}", self.json);
        assert_eq!(self.headers[CONTENT_TYPE], "application/json");
    }

    /// Asserts a 422 naming `field`.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        self.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(self.json["field"], field, "{:#}", self.json);
    }
}

/// A request builder with a bearer token and an optional JSON body.
pub fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let bytes = match body {
        Some(body) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(bytes)).unwrap()
}

/// The service under test over a fresh store.
pub struct Api {
    _dir: TempDir,
    pub store: Arc<SqliteStore>,
    clock: ManualClock,
    pub service: Service,
}

impl Api {
    pub fn new() -> Self {
        Self::with(|api| api)
    }

    /// A fixture whose `RestApi` is adjusted by `configure` (e.g. a body limit).
    pub fn with(configure: impl FnOnce(RestApi<SqliteStore>) -> RestApi<SqliteStore>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at_unix(T0.try_into().unwrap());
        let options = SqliteOptions::new()
            .with_clock(clock.clone())
            .with_read_connections(2);
        let store = Arc::new(
            SqliteStore::open_with_options(dir.path().join("memories.db"), options).unwrap(),
        );
        let api = configure(RestApi::new(Arc::clone(&store), resource()));
        Self {
            _dir: dir,
            store,
            clock,
            service: auth_layer().layer(api),
        }
    }

    /// Moves the store clock forward.
    pub fn advance_seconds(&self, seconds: i64) {
        self.clock
            .advance(Duration::from_secs(seconds.try_into().unwrap()));
    }

    /// The current store time in Unix seconds.
    pub fn now(&self) -> i64 {
        i64::try_from(self.clock.unix_time()).unwrap()
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let response = self.service.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(request(Method::GET, path, Some(token), None))
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(request(Method::POST, path, Some(token), Some(body)))
            .await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(request(Method::PUT, path, Some(token), Some(body)))
            .await
    }

    pub async fn delete(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(request(Method::DELETE, path, Some(token), Some(body)))
            .await
    }

    /// Creates a memory through the API, then moves the clock one second on.
    pub async fn create(&self, token: &str, text: &str, categories: &[&str]) -> Value {
        let reply = self
            .post(
                token,
                "/api/v1/memories/",
                &json!({"text": text, "categories": categories}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.json);
        self.advance_seconds(1);
        reply.json
    }

    /// Every non-deleted memory of `subject`, read from the store without touching the
    /// access log, oldest first.
    pub async fn memories_of(&self, subject: &str) -> Vec<Memory> {
        use mcp_api::MemoryStore as _;
        let query = ListQuery::new()
            .with_states([
                MemoryState::Active,
                MemoryState::Paused,
                MemoryState::Archived,
            ])
            .with_sort(SortColumn::CreatedAt, SortDirection::Ascending)
            .with_page(1, 100);
        self.store
            .list(&Owner::new(subject).unwrap(), &query)
            .await
            .unwrap()
            .items
    }

    /// How many access-log entries one of `subject`'s memories has.
    pub async fn access_count(&self, subject: &str, id: &str) -> u64 {
        use mcp_api::MemoryStore as _;
        self.store
            .access_log(&Owner::new(subject).unwrap(), id.parse().unwrap(), 1, 100)
            .await
            .unwrap()
            .map_or(0, |page| page.total)
    }
}

fn auth_layer() -> BearerAuthLayer<AccessClaims> {
    let policy = Policy::new(ISSUER, resource().resource()).typ(TypPolicy::AccessToken);
    let verifier = Verifier::builder(policy)
        .static_jwks(signing_key().jwks())
        .clock(ManualClock::at_unix(u64::try_from(T0).unwrap() + 60))
        .build()
        .unwrap();
    BearerAuthLayer::new(verifier).challenge(resource().challenge())
}
