//! Discovery, JWKS, key rotation on a virtual clock, CORS, and URL client ids (Client ID
//! Metadata Documents) through the resolver seam.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::authn::BoxFuture;
use oidc_core::client::{Client, ClientKind, MetadataDocumentError, MetadataDocumentResolver};
use oidc_core::keys::RotationPolicy;
use oidc_core::provider::{Provider, StaticClient};
use oidc_core::redirect::RedirectUri;
use oidc_core::store::SqliteStore;
use oidc_core::types::ClientId;
use provider_common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_is_identical_at_both_well_known_paths_with_every_required_field() {
    let p = start().await;
    let openid = p.get("/.well-known/openid-configuration").await;
    let oauth = p.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(openid.status, StatusCode::OK);
    assert_eq!(openid.body, oauth.body, "the same document at both paths");
    assert_eq!(openid.header("content-type"), Some("application/json"));
    assert!(
        openid
            .header("cache-control")
            .unwrap()
            .starts_with("public")
    );
    let doc = openid.json();
    assert_eq!(doc["issuer"], ISSUER, "issuer exactly as configured");
    for (field, value) in [
        (
            "authorization_endpoint",
            "https://auth.example.com/authorize",
        ),
        ("token_endpoint", "https://auth.example.com/token"),
        ("jwks_uri", "https://auth.example.com/jwks.json"),
        ("userinfo_endpoint", "https://auth.example.com/userinfo"),
        ("registration_endpoint", "https://auth.example.com/register"),
        ("revocation_endpoint", "https://auth.example.com/revoke"),
        (
            "introspection_endpoint",
            "https://auth.example.com/introspect",
        ),
    ] {
        assert_eq!(doc[field], value, "{field}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let auth_methods = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for method in ["none", "client_secret_basic", "client_secret_post"] {
        assert!(auth_methods.contains(&json!(method)), "{method}");
    }
    let scopes = doc["scopes_supported"].as_array().unwrap();
    for scope in [
        "openid",
        "profile",
        "email",
        "offline_access",
        "memories:read",
        "memories:write",
    ] {
        assert!(scopes.contains(&json!(scope)), "{scope}");
    }
    assert!(
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("sub"))
    );
    assert_eq!(
        doc["client_id_metadata_document_supported"], false,
        "no resolver, so not advertised"
    );
    // Every endpoint uses the issuer's scheme and host.
    for (_, value) in doc.as_object().unwrap() {
        if let Some(url) = value.as_str().filter(|v| v.starts_with("http")) {
            assert!(url.starts_with(ISSUER), "{url}");
        }
    }
}

#[tokio::test]
async fn issuer_with_a_path_serves_every_well_known_variant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("p.db")).unwrap());
    let issuer = "https://auth.example.com/tenant1";
    let provider = Provider::builder(base_config(issuer), store.clone())
        .authenticator(TestLogin::new("test", "/login/test"))
        .clock(jwks_verify::ManualClock::at_unix(T0))
        .build()
        .await
        .unwrap();
    let p = TestProvider {
        provider,
        clock: VirtualClock::at(T0),
        store,
        login: TestLogin::new("unused", "/unused"),
        dir: Arc::new(dir),
    };
    let mut bodies = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    ] {
        let response = p.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        bodies.push(response.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let doc: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(
        doc["token_endpoint"],
        "https://auth.example.com/tenant1/token"
    );
    assert_eq!(
        p.get("/.well-known/openid-configuration").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(p.get("/tenant1/jwks.json").await.status, StatusCode::OK);
    assert_eq!(p.get("/jwks.json").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn jwks_holds_public_keys_only_and_is_cacheable() {
    let p = start().await;
    let response = p.get("/jwks.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("cache-control"),
        Some("public, max-age=600")
    );
    let jwks = response.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for key in keys {
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string() && key["n"].is_string() && key["e"].is_string());
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(key.get(private).is_none(), "{private}");
        }
    }
}

/// Hour by hour through several rotations: every token verifies until it expires with the
/// JWKS served at that moment, and every signing key was published well before it signed.
#[tokio::test]
async fn key_rotation_on_a_virtual_clock_never_leaves_a_live_token_unverifiable() {
    const DAY: u64 = 24 * 3600;
    let p = start_with(|c| {
        c.rotation = RotationPolicy::default()
            .with_rotate_every(Duration::from_secs(2 * DAY))
            .with_publish_ahead(Duration::from_secs(DAY));
    })
    .await;
    let mut issued: Vec<(String, u64)> = Vec::new();
    let mut first_published: HashMap<String, u64> = HashMap::new();
    let mut signers = Vec::new();
    for _hour in 0..(7 * 24) {
        let now = p.clock.now();
        let jwks = p.jwks().await;
        let doc: Value = serde_json::from_str(&jwks).unwrap();
        for key in doc["keys"].as_array().unwrap() {
            first_published
                .entry(key["kid"].as_str().unwrap().to_owned())
                .or_insert(now);
        }
        // Every token issued earlier verifies until its expiry.
        let verifier = access_token_verifier(&jwks, RESOURCE, now);
        for (token, exp) in &issued {
            if *exp > now + 30 {
                verifier
                    .try_verify::<jwks_verify::StandardClaims>(token)
                    .unwrap_or_else(|e| panic!("a live token failed at {now}: {e}"));
            }
        }
        // A new token is signed by a key that was published at least max-age before.
        let tokens = p.tokens().await;
        let kid = jwt_part(&tokens.access_token, 0)["kid"]
            .as_str()
            .unwrap()
            .to_owned();
        let published_at = first_published[&kid];
        assert!(
            published_at == T0 || now - published_at >= 600,
            "key {kid} signs {}s after publication",
            now - published_at
        );
        if signers.last() != Some(&kid) {
            signers.push(kid);
        }
        issued.push((tokens.access_token, now + 3600));
        assert!(
            doc["keys"].as_array().unwrap().len() <= 3,
            "old keys are dropped"
        );

        p.clock.advance(3600);
        p.provider.run_maintenance().await.unwrap();
    }
    assert!(
        signers.len() >= 3,
        "several rotations happened: {signers:?}"
    );
}

#[tokio::test]
async fn keys_are_loaded_not_regenerated_and_rotation_is_shared_through_the_store() {
    const DAY: u64 = 24 * 3600;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = VirtualClock::at(T0);
    let policy = |c: &mut oidc_core::provider::ProviderConfig| {
        c.rotation = RotationPolicy::default()
            .with_rotate_every(Duration::from_secs(2 * DAY))
            .with_publish_ahead(Duration::from_secs(DAY));
    };
    // Two replicas over one database.
    let a = start_in(Arc::clone(&dir), clock.clone(), policy).await;
    let b = start_in(Arc::clone(&dir), clock.clone(), policy).await;
    assert_eq!(a.jwks().await, b.jwks().await);
    clock.advance(DAY + 60);
    a.provider.run_maintenance().await.unwrap();
    b.provider.run_maintenance().await.unwrap();
    let jwks = a.jwks().await;
    assert_eq!(
        jwks,
        b.jwks().await,
        "b picked up a's rotation instead of rotating too"
    );
    let doc: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(doc["keys"].as_array().unwrap().len(), 2);
}

/// Rotation falling due on two replicas of one PostgreSQL database at the same moment:
/// both run maintenance at once, one rotates (the compare-and-swap on the key set's
/// version), the other loads its key instead of making a second one, and both publish the
/// same key set. The new key is published a day before it signs.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_due_on_two_postgres_replicas_at_once_makes_one_key() {
    const DAY: u64 = 24 * 3600;
    let policy = |c: &mut oidc_core::provider::ProviderConfig| {
        c.rotation = RotationPolicy::default()
            .with_rotate_every(Duration::from_secs(2 * DAY))
            .with_publish_ahead(Duration::from_secs(DAY));
        // Real keys, as each replica makes them: the test pool would hand both the same one.
        c.key_generator = Arc::new(oidc_core::keys::KeySize::Rsa2048);
    };
    for round in 0..5 {
        let database = TestDatabase::postgres().await;
        let clock = VirtualClock::at(T0);
        let a = start_on(&database, clock.clone(), policy).await;
        let b = start_on(&database, clock.clone(), policy).await;
        let before = a.jwks().await;
        assert_eq!(before, b.jwks().await, "round {round}");
        clock.advance(DAY + 60);
        let (ran_a, ran_b) =
            tokio::join!(a.provider.run_maintenance(), b.provider.run_maintenance());
        ran_a.unwrap();
        ran_b.unwrap();
        let stored = database.open().await.load_keys().await.unwrap();
        assert_eq!(
            stored.records.len(),
            2,
            "round {round}: one new key, not two"
        );
        // The loser of the race loaded the winner's key set.
        let jwks = a.jwks().await;
        assert_eq!(jwks, b.jwks().await, "round {round}");
        let doc: Value = serde_json::from_str(&jwks).unwrap();
        assert_eq!(doc["keys"].as_array().unwrap().len(), 2, "round {round}");
        // Published, not yet signing: both still sign with the first key.
        let first: Value = serde_json::from_str(&before).unwrap();
        let first_kid = first["keys"][0]["kid"].as_str().unwrap();
        for replica in [&a, &b] {
            let tokens = replica.tokens().await;
            let kid = jwt_part(&tokens.access_token, 0)["kid"].clone();
            assert_eq!(kid, first_kid, "round {round}");
        }
    }
}

#[tokio::test]
async fn maintenance_purges_expired_rows() {
    let p = start().await;
    let _tokens = p.tokens().await;
    let _pending = p
        .authorize(&TestProvider::authorize_params(
            PUBLIC,
            PUBLIC_REDIRECT,
            &pkce(),
        ))
        .await;
    p.clock.advance(91 * 24 * 3600);
    let report = p.provider.run_maintenance().await.unwrap();
    assert!(report.purged.pending >= 2, "{report:?}");
    assert!(report.purged.grants >= 1, "{report:?}");
    assert!(report.signing_kid.is_some());
}

async fn with_origin(
    p: &TestProvider,
    request: http::request::Builder,
    body: &str,
) -> TestResponse {
    p.send(
        request
            .header("origin", "https://chatgpt.com")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn cors_is_on_discovery_jwks_token_userinfo_registration_and_revocation() {
    let p = start().await;
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            Request::builder().uri("/.well-known/openid-configuration"),
            "",
        ),
        (
            Request::builder().uri("/.well-known/oauth-authorization-server"),
            "",
        ),
        (Request::builder().uri("/jwks.json"), ""),
        (
            Request::builder()
                .method(Method::POST)
                .uri("/token")
                .header("content-type", form),
            "grant_type=authorization_code&client_id=public-app&code=x",
        ),
        (Request::builder().uri("/userinfo"), ""),
        (
            Request::builder()
                .method(Method::POST)
                .uri("/register")
                .header("content-type", "application/json"),
            r#"{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#,
        ),
        (
            Request::builder()
                .method(Method::POST)
                .uri("/revoke")
                .header("content-type", form),
            "token=x&client_id=public-app",
        ),
    ];
    for (request, body) in cases {
        let response = with_origin(&p, request, body).await;
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://chatgpt.com"),
            "{} {}",
            response.status,
            response.text()
        );
        assert!(
            response
                .header("access-control-allow-credentials")
                .is_none()
        );
        assert!(response.header("vary").unwrap().contains("Origin"));
    }
}

#[tokio::test]
async fn cors_allows_only_configured_and_loopback_origins() {
    let p = start().await;
    for (origin, allowed) in [
        ("https://chat.openai.com", true),
        ("http://localhost:6274", true),
        ("http://127.0.0.1:3000", true),
        ("https://evil.example", false),
        ("https://chatgpt.com.evil.example", false),
        ("null", false),
    ] {
        let response = p.get_with("/jwks.json", &[("origin", origin)]).await;
        assert_eq!(
            response.header("access-control-allow-origin").is_some(),
            allowed,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn cors_preflight_is_answered_without_authentication() {
    let p = start().await;
    for path in ["/token", "/userinfo", "/register", "/revoke", "/jwks.json"] {
        let response = p
            .send(
                Request::builder()
                    .method(Method::OPTIONS)
                    .uri(path)
                    .header("origin", "https://chatgpt.com")
                    .header("access-control-request-method", "POST")
                    .header(
                        "access-control-request-headers",
                        "authorization, content-type",
                    )
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://chatgpt.com")
        );
        let headers = response.header("access-control-allow-headers").unwrap();
        assert!(headers.contains("Authorization") && headers.contains("Content-Type"));
        assert!(
            response
                .header("access-control-allow-credentials")
                .is_none()
        );
    }
    // Not a CORS endpoint: no preflight answer.
    let introspect = p
        .send(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/introspect")
                .header("origin", "https://chatgpt.com")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert!(introspect.header("access-control-allow-origin").is_none());
}

/// Resolves one metadata-document client id.
struct StubResolver {
    client: Client,
}

impl MetadataDocumentResolver for StubResolver {
    fn resolve<'a>(
        &'a self,
        client_id: &'a ClientId,
        _now: u64,
    ) -> BoxFuture<'a, Result<Client, MetadataDocumentError>> {
        let found = (*client_id == self.client.client_id).then(|| self.client.clone());
        Box::pin(async move {
            found.ok_or_else(|| MetadataDocumentError::Fetch("not found".to_owned()))
        })
    }
}

const CIMD_CLIENT: &str = "https://app.example/oauth/client.json";

async fn start_with_resolver() -> TestProvider {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Arc::new(SqliteStore::open(dir.path().join("p.db")).unwrap());
    let mut client = StaticClient::public(
        ClientId::parse(CIMD_CLIENT).unwrap(),
        "Metadata App",
        vec![RedirectUri::parse("https://app.example/cimd-cb").unwrap()],
    )
    .client()
    .clone();
    client.kind = ClientKind::MetadataDocument;
    let login = TestLogin::new("test", "/login/test");
    let clock = VirtualClock::at(T0);
    let provider = Provider::builder(base_config(ISSUER), store.clone())
        .authenticator(login.clone())
        .metadata_resolver(Arc::new(StubResolver { client }))
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

#[tokio::test]
async fn url_client_ids_are_resolved_through_the_metadata_document_resolver() {
    let p = start_with_resolver().await;
    let doc = p
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(doc["client_id_metadata_document_supported"], true);

    let pkce = pkce();
    let params = TestProvider::authorize_params(CIMD_CLIENT, "https://app.example/cimd-cb", &pkce);
    let authorize = p.authorize(&params).await;
    let consent = p.login(&authorize).await;
    assert!(
        consent.text().contains(CIMD_CLIENT),
        "the page names the document url"
    );
    let code = p.approve(&consent).await.location_params()["code"].clone();
    let response = p
        .token(
            Auth::Public(CIMD_CLIENT),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example/cimd-cb"),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());

    let unknown = p
        .authorize(&TestProvider::authorize_params(
            "https://evil.example/client.json",
            "https://evil.example/cb",
            &pkce,
        ))
        .await;
    assert!(
        unknown.is_error_page(),
        "a failed document is an error page, never a redirect"
    );
}

/// The background task rotates keys on its own. The test waits (polling, with a generous
/// limit) for it to run; it asserts nothing about how long that takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_maintenance_rotates_keys_without_being_called() {
    const DAY: u64 = 24 * 3600;
    let p = start_with(|c| {
        c.maintenance.background = true;
        c.maintenance.interval = Duration::from_secs(1);
        c.rotation = RotationPolicy::default()
            .with_rotate_every(Duration::from_secs(2 * DAY))
            .with_publish_ahead(Duration::from_secs(DAY));
    })
    .await;
    let before = p.jwks().await;
    p.clock.advance(DAY + 60);
    let mut rotated = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if p.jwks().await != before {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the background task published the next key");
    let doc: Value = serde_json::from_str(&p.jwks().await).unwrap();
    assert_eq!(doc["keys"].as_array().unwrap().len(), 2);
}
