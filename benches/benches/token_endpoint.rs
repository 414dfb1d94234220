//! The token endpoint over loopback: the provider configured as `oidc-server` configures it
//! by default (its SQLite store, password login, the memory server's scopes; rate limits
//! off), built from `oidc-core` and served with hyper here, serving refresh-token grants
//! (each rotates the refresh token in one durable transaction and signs a new access token)
//! to 4 concurrent clients, against raw RSA signing in the same run.
//!
//! Run with: `cargo bench -p benches --bench token_endpoint`

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
use oidc_core::provider::{Provider, ProviderConfig, RateLimits, ResourceScopes, ScopeDefinition};
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
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = loopback().await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    serve(listener, provider(&base, dir.path()).await);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let client_id = register(&client, &base).await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..4 {
        refresh_tokens.push(login(&client, &base, &client_id).await);
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

    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = refresh_tokens
        .into_iter()
        .map(|mut refresh_token| {
            let (client, base, client_id) = (client.clone(), base.clone(), client_id.clone());
            tokio::spawn(async move {
                let mut grants = 0u64;
                while Instant::now() < deadline {
                    let body = form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &refresh_token),
                        ("client_id", &client_id),
                    ]);
                    let (status, json) = post_form(&client, &format!("{base}/token"), body).await;
                    assert_eq!(status, 200, "{json}");
                    refresh_token = json["refresh_token"]
                        .as_str()
                        .expect("rotated refresh token")
                        .to_owned();
                    grants += 1;
                }
                grants
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("\n== token endpoint over loopback (SQLite, synchronous=FULL; 4 clients, 2 cores) ==");
    println!("refresh_token grants (rotate + sign)   {rate:>8.0}/s");
    println!("raw RSA-2048 signatures, one thread    {sign_rate:>8.0}/s");
    println!(
        "grants / single-thread signatures      {:>8.2}x",
        rate / sign_rate
    );
}

/// The provider with `oidc-server`'s default settings and a SQLite store in `dir`, one
/// password user, and per-address rate limits off (the endpoint is measured, not the
/// limiter in front of it).
async fn provider(base: &str, dir: &Path) -> Provider {
    let issuer = Issuer::parse(base).expect("issuer");
    let audience = ResourceIndicator::parse(AUDIENCE).expect("audience");
    let mut config = ProviderConfig::new(issuer.clone(), audience.clone());
    for (name, description) in MEMORY_SCOPES {
        config = config.with_scope(ScopeDefinition::new(name, description).expect("scope"));
    }
    let memories = Scope::from_tokens(MEMORY_SCOPES.iter().map(|(name, _)| *name)).expect("scope");
    config = config.with_resource_scopes(ResourceScopes::new(audience, Some(memories)));
    config.rate_limits = RateLimits::unlimited();
    let store = Arc::new(SqliteStore::open(dir.join("oidc.db")).expect("store"));
    let hash = oidc_core::login::hash_password(PASSWORD).expect("hash");
    let user = LocalUser::new("bench", PasswordHashString::parse(&hash).expect("hash"));
    let login_store: Arc<dyn LoginStateStore> = store.clone();
    let passwords = Passwords::new(vec![user], &issuer, login_store).expect("passwords");
    Provider::builder(config, store as Arc<dyn ProviderStore>)
        .authenticator(Arc::new(passwords))
        .build()
        .await
        .expect("provider")
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
