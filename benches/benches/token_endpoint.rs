//! The token endpoint over loopback: the provider configured as `oidc-server` configures it
//! by default (password login, the memory server's scopes; rate limits off), built from
//! `oidc-core` and served with hyper here, serving refresh-token grants (each rotates the
//! refresh token in one durable transaction and signs a new access token) to 4 concurrent
//! clients, against raw RSA signing in the same run.
//!
//! Three deployments are measured side by side in the same run: its SQLite store on one node
//! (`oidc-server`'s default), and with `--features postgres` one replica on `PostgresStore`
//! and two replicas, each with its own pool on the same schema and its own loopback port,
//! each client's grants alternating between them (so every refresh token rotated on one
//! replica is next presented to the other). Each deployment runs in two half windows, the
//! second round in reverse order, so drift hits all alike. PostgreSQL is found at
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`);
//! each deployment gets a fresh schema, dropped afterwards.
//!
//! Run with: `cargo bench -p benches --bench token_endpoint [--features postgres]`

// A benchmark harness: any failure should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use oidc_core::authn::LoginStateStore;
use oidc_core::login::{LocalUser, PasswordHashString, Passwords};
use oidc_core::provider::{
    Provider, ProviderBuilder, ProviderConfig, RateLimits, ResourceScopes, ScopeDefinition,
};
use oidc_core::store::{ProviderStore, SqliteStore};
use oidc_core::types::{Issuer, ResourceIndicator, Scope};
use serde_json::Value;

use benches::server::{loopback, serve};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const PASSWORD: &str = "bench-password-1";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// `oidc-server`'s default `OIDC_DEFAULT_AUDIENCE`.
const AUDIENCE: &str = "http://127.0.0.1:8765/mcp";
/// The memory server's scopes, as `oidc-server` configures them.
const MEMORY_SCOPES: [(&str, &str); 2] = [
    ("memories:read", "Read your memories"),
    ("memories:write", "Add, change and delete your memories"),
];
/// Concurrent clients, each with its own refresh token.
const CLIENTS: usize = 4;

fn main() {
    let quick = !benches::report::measuring();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(8)
    }));
}

async fn run(window: Duration) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let dir = tempfile::tempdir().expect("tempdir");
    // Without the `postgres` feature the vector never grows.
    #[cfg_attr(not(feature = "postgres"), allow(clippy::useless_vec))]
    let mut deployments = vec![Deployment::sqlite(&client, dir.path()).await];
    #[cfg(feature = "postgres")]
    let mut schemas = Vec::new();
    #[cfg(feature = "postgres")]
    for replicas in [1, 2] {
        let schema = benches::postgres::Schema::fresh(&format!("bench_token_{replicas}r")).await;
        deployments.push(Deployment::postgres(&client, schema.name(), replicas).await);
        schemas.push(schema);
    }

    // Baseline: one raw RSA-2048 signature with a pre-parsed key (the floor of every grant).
    let key =
        oidc_core::keys::SigningKey::generate(oidc_core::keys::KeySize::Rsa2048).expect("key");
    let started = Instant::now();
    let mut signatures = 0u64;
    while started.elapsed() < window {
        std::hint::black_box(key.sign_rs256(b"header.payload").expect("sign"));
        signatures += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let sign_rate = signatures as f64 / started.elapsed().as_secs_f64();

    // Two rounds of half windows, the second in reverse order.
    let mut rates = vec![0.0; deployments.len()];
    for round in 0..2 {
        let order: Vec<usize> = if round == 0 {
            (0..deployments.len()).collect()
        } else {
            (0..deployments.len()).rev().collect()
        };
        for index in order {
            rates[index] += deployments[index].grants(&client, window / 2).await / 2.0;
        }
    }

    println!(
        "\n== token endpoint over loopback: refresh_token grants (rotate + sign), \
         {CLIENTS} clients, 2 cores =="
    );
    println!(
        "{:<58} {:>9} {:>10} {:>12}",
        "deployment", "grants/s", "vs SQLite", "vs signing"
    );
    for (deployment, rate) in deployments.iter().zip(&rates) {
        println!(
            "{:<58} {rate:>9.0} {:>9.2}x {:>11.2}x",
            deployment.label,
            rate / rates[0],
            rate / sign_rate
        );
    }
    println!(
        "{:<58} {sign_rate:>9.0}",
        "raw RSA-2048 signatures, one thread (baseline)"
    );
    #[cfg(feature = "postgres")]
    for schema in schemas {
        schema.finish().await;
    }
}

/// Providers serving one issuer, a registered client and a refresh token per client.
struct Deployment {
    label: &'static str,
    /// Each replica's base URL; the first is the issuer.
    bases: Vec<String>,
    client_id: String,
    refresh_tokens: Vec<String>,
}

impl Deployment {
    /// One provider on its SQLite store in `dir`, as `oidc-server` runs by default.
    async fn sqlite(client: &HttpClient, dir: &Path) -> Deployment {
        let listener = loopback().await;
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let store = Arc::new(SqliteStore::open(dir.join("oidc.db")).expect("store"));
        let login_store: Arc<dyn LoginStateStore> = store.clone();
        let (builder, passwords) = builder(&base, store, login_store);
        let provider = builder
            .authenticator(Arc::new(passwords))
            .build()
            .await
            .expect("provider");
        serve(listener, provider);
        Deployment::start(client, "SQLite, one node (synchronous=FULL)", vec![base]).await
    }

    /// `replicas` providers, each on its own `PostgresStore` pool (8 connections, as
    /// `oidc-server`'s default `OIDC_DATABASE_POOL`) on `schema`, with the lockout and
    /// rate-limit tables shared as `oidc-server` shares them, each on its own port.
    #[cfg(feature = "postgres")]
    async fn postgres(client: &HttpClient, schema: &str, replicas: usize) -> Deployment {
        use oidc_core::login::LockoutStore;
        use oidc_core::provider::RateLimitStore;
        use oidc_core::store::{PostgresOptions, PostgresStore};

        let listeners = [loopback().await, loopback().await];
        let bases: Vec<String> = listeners
            .iter()
            .take(replicas)
            .map(|l| format!("http://{}", l.local_addr().expect("addr")))
            .collect();
        for listener in listeners.into_iter().take(replicas) {
            let options = PostgresOptions::new()
                .with_max_connections(8)
                .with_schema(schema);
            let store = PostgresStore::connect(&benches::postgres::url(), options)
                .await
                .expect("PostgreSQL at BENCH_DATABASE_URL");
            let limits = Arc::new(store.limit_store().await.expect("limit tables"));
            let store = Arc::new(store);
            let login_store: Arc<dyn LoginStateStore> = store.clone();
            // Every replica has the first one's issuer, as behind a load balancer.
            let (builder, passwords) = builder(&bases[0], store, login_store);
            let passwords =
                passwords.with_lockout_store(Arc::clone(&limits) as Arc<dyn LockoutStore>);
            let provider = builder
                .rate_limit_store(limits as Arc<dyn RateLimitStore>)
                .authenticator(Arc::new(passwords))
                .build()
                .await
                .expect("provider");
            serve(listener, provider);
        }
        let label = if replicas == 1 {
            "PostgreSQL, one replica (pool 8)"
        } else {
            "PostgreSQL, two replicas (pool 8 each, grants alternate)"
        };
        Deployment::start(client, label, bases).await
    }

    /// Registers a client and signs in once per concurrent client, on the first replica.
    async fn start(client: &HttpClient, label: &'static str, bases: Vec<String>) -> Deployment {
        let client_id = register(client, &bases[0]).await;
        let mut refresh_tokens = Vec::new();
        for _ in 0..CLIENTS {
            refresh_tokens.push(login(client, &bases[0], &client_id).await);
        }
        Deployment {
            label,
            bases,
            client_id,
            refresh_tokens,
        }
    }

    /// Refresh-token grants per second for `window`, one task per refresh token, each
    /// client's grants going to the replicas in turn; keeps the rotated tokens.
    async fn grants(&mut self, client: &HttpClient, window: Duration) -> f64 {
        let started = Instant::now();
        let deadline = started + window;
        let tasks: Vec<_> = std::mem::take(&mut self.refresh_tokens)
            .into_iter()
            .enumerate()
            .map(|(index, mut refresh_token)| {
                let (client, bases) = (client.clone(), self.bases.clone());
                let client_id = self.client_id.clone();
                tokio::spawn(async move {
                    let mut grants = 0usize;
                    while Instant::now() < deadline {
                        let body = form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", &refresh_token),
                            ("client_id", &client_id),
                        ]);
                        let base = &bases[(index + grants) % bases.len()];
                        let (status, json) =
                            post_form(&client, &format!("{base}/token"), body).await;
                        assert_eq!(status, 200, "{json}");
                        refresh_token = json["refresh_token"]
                            .as_str()
                            .expect("rotated refresh token")
                            .to_owned();
                        grants += 1;
                    }
                    (grants, refresh_token)
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            let (grants, refresh_token) = task.await.expect("task");
            total += grants;
            self.refresh_tokens.push(refresh_token);
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / started.elapsed().as_secs_f64();
        rate
    }
}

/// The provider with `oidc-server`'s default settings at `base` on `store`, one password
/// user, and per-address rate limits off (the endpoint is measured, not the limiter in front
/// of it); the password login still to be added, for the caller to give it a lockout store.
fn builder<S: ProviderStore + 'static>(
    base: &str,
    store: Arc<S>,
    login_store: Arc<dyn LoginStateStore>,
) -> (ProviderBuilder, Passwords) {
    let issuer = Issuer::parse(base).expect("issuer");
    let audience = ResourceIndicator::parse(AUDIENCE).expect("audience");
    let mut config = ProviderConfig::new(issuer.clone(), audience.clone());
    for (name, description) in MEMORY_SCOPES {
        config = config.with_scope(ScopeDefinition::new(name, description).expect("scope"));
    }
    let memories = Scope::from_tokens(MEMORY_SCOPES.iter().map(|(name, _)| *name)).expect("scope");
    config = config.with_resource_scopes(ResourceScopes::new(audience, Some(memories)));
    config.rate_limits = RateLimits::unlimited();
    let hash = oidc_core::login::hash_password(PASSWORD).expect("hash");
    let user = LocalUser::new("bench", PasswordHashString::parse(&hash).expect("hash"));
    let passwords = Passwords::new(vec![user], &issuer, login_store).expect("passwords");
    (
        Provider::builder(config, store as Arc<dyn ProviderStore>),
        passwords,
    )
}

async fn register(client: &HttpClient, base: &str) -> String {
    let body = serde_json::json!({
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "bench",
    });
    let request = Request::post(format!("{base}/register"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let json: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    json["client_id"].as_str().unwrap().to_owned()
}

/// Signs in with the password form and approves the consent page; returns a refresh token.
async fn login(client: &HttpClient, base: &str, client_id: &str) -> String {
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20memories:read%20memories:write\
         &state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        encode(REDIRECT_URI)
    );
    let (mut url, mut page) = follow(client, &authorize).await;
    let mut fields = hidden_fields(&page);
    fields.insert("username".into(), "bench".into());
    fields.insert("password".into(), PASSWORD.into());
    (url, page) = submit(client, base, &action(&page, &url), &fields).await;
    let mut fields = hidden_fields(&page);
    fields.insert("decision".into(), "approve".into());
    let (callback, _) = submit(client, base, &action(&page, &url), &fields).await;
    let code = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("code in the redirect")
        .to_owned();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
    ]);
    let (status, json) = post_form(client, &format!("{base}/token"), body).await;
    assert_eq!(status, 200, "{json}");
    json["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

/// GETs `url`, following redirects within the provider; returns the final URL and page.
async fn follow(client: &HttpClient, url: &str) -> (String, String) {
    let mut url = url.to_owned();
    loop {
        let response = client
            .request(Request::get(&url).body(Full::default()).unwrap())
            .await
            .unwrap();
        if let Some(location) = response.headers().get("location") {
            url = location.to_str().unwrap().to_owned();
            continue;
        }
        let page = String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        return (url, page);
    }
}

/// POSTs a form; follows a redirect back into the provider, returns other redirects as the URL.
async fn submit(
    client: &HttpClient,
    base: &str,
    action: &str,
    fields: &HashMap<String, String>,
) -> (String, String) {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let request = Request::post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", base)
        .body(Full::new(Bytes::from(form(&pairs))))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    match location {
        Some(location) if location.starts_with(base) => follow(client, &location).await,
        Some(location) => (location, String::new()),
        None => (
            action.to_owned(),
            String::from_utf8(
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            )
            .unwrap(),
        ),
    }
}

async fn post_form(client: &HttpClient, url: &str, body: String) -> (u16, Value) {
    let request = Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn action(page: &str, current: &str) -> String {
    let start = page.find("action=\"").map(|i| i + 8);
    let action = start.and_then(|s| {
        page[s..]
            .find('"')
            .map(|e| page[s..s + e].replace("&amp;", "&"))
    });
    match action {
        Some(a) if a.starts_with("http") => a,
        Some(a) => {
            let origin: String = current.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{a}")
        }
        None => current.to_owned(),
    }
}

fn hidden_fields(page: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for tag in page.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attribute = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).and_then(|i| {
                let rest = &tag[i + key.len()..];
                rest.find('"').map(|e| rest[..e].replace("&amp;", "&"))
            })
        };
        if let (Some(name), Some(value)) = (attribute("name"), attribute("value")) {
            fields.insert(name, value);
        }
    }
    fields
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
