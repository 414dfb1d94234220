//! Client ID Metadata Documents fetched from a real local HTTP server (reachable only
//! through the test policy), caching per `Cache-Control`, and SSRF refusals through the
//! default policy.
#![cfg(feature = "hyper-client")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod login_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use oidc_core::client::{
    ClientAuthMethod, ClientKind, MetadataDocumentError, MetadataDocumentResolver,
};
use oidc_core::outbound::{
    AddressPolicy, ClientMetadataDocuments, MetadataDocumentConfig, OutboundClient, OutboundConfig,
};
use oidc_core::types::ClientId;
use serde_json::{Value, json};

use login_common::event_log::EventLog;
use login_common::{FixedResolver, TestServer};

const NOW: u64 = 1_700_000_000;

/// What the document server answers: (status, cache-control, body).
type Answer = (u16, Option<String>, Vec<u8>);

/// A server whose answer the test sets.
struct DocumentServer {
    server: TestServer,
    answer: Arc<Mutex<Answer>>,
}

impl DocumentServer {
    async fn start() -> DocumentServer {
        let answer = Arc::new(Mutex::new((200, None, Vec::new())));
        let shared = Arc::clone(&answer);
        let server = TestServer::start(move |req| {
            let (status, cache_control, body) = shared.lock().unwrap().clone();
            let mut builder = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            if status == 302 {
                builder = builder.header("location", "/elsewhere.json");
            }
            if let Some(cc) = cache_control {
                builder = builder.header("cache-control", cc);
            }
            let _ = req;
            builder.body(Full::new(Bytes::from(body))).unwrap()
        })
        .await;
        DocumentServer { server, answer }
    }

    fn client_id(&self) -> ClientId {
        ClientId::parse(&self.server.url("/oauth/client.json")).unwrap()
    }

    fn serve(&self, status: u16, cache_control: Option<&str>, body: &Value) {
        *self.answer.lock().unwrap() = (
            status,
            cache_control.map(str::to_owned),
            body.to_string().into_bytes(),
        );
    }

    fn serve_bytes(&self, body: Vec<u8>) {
        *self.answer.lock().unwrap() = (200, None, body);
    }

    fn document(&self) -> Value {
        json!({
            "client_id": self.client_id().as_str(),
            "client_name": "Local Test App",
            "redirect_uris": ["https://app.example/callback", "http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
    }
}

fn test_resolver() -> ClientMetadataDocuments {
    let client = OutboundClient::new(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    );
    let config = MetadataDocumentConfig::default().insecure_allow_http_loopback();
    ClientMetadataDocuments::new(client, config)
}

fn invalid(result: Result<impl std::fmt::Debug, MetadataDocumentError>) -> String {
    match result {
        Err(MetadataDocumentError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_document_becomes_a_public_client() {
    let docs = DocumentServer::start().await;
    docs.serve(200, None, &docs.document());
    let (log, _guard) = EventLog::install();
    let resolver = test_resolver();
    let client = resolver.resolve(&docs.client_id(), NOW).await.unwrap();
    assert_eq!(client.client_id, docs.client_id());
    assert_eq!(client.name, "Local Test App");
    assert_eq!(client.kind, ClientKind::MetadataDocument);
    assert_eq!(client.auth_method, ClientAuthMethod::None);
    assert!(client.secret_hash.is_none());
    assert!(client.refresh_tokens);
    assert_eq!(client.redirect_uris.len(), 2);
    assert_eq!(client.created_at, NOW);
    let request = docs.server.last().unwrap();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/oauth/client.json");
    assert_eq!(request.headers["accept"], "application/json");
    let registered = log.named("client_registered");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["how"], "metadata_document");
}

#[tokio::test]
async fn documents_are_cached_per_max_age_clamped() {
    let docs = DocumentServer::start().await;
    let resolver = test_resolver();
    let id = docs.client_id();

    // max-age=600: one fetch serves ten minutes.
    docs.serve(200, Some("public, max-age=600"), &docs.document());
    resolver.resolve(&id, NOW).await.unwrap();
    resolver.resolve(&id, NOW + 599).await.unwrap();
    assert_eq!(docs.server.hits(), 1);
    resolver.resolve(&id, NOW + 600).await.unwrap();
    assert_eq!(docs.server.hits(), 2);

    // max-age=5 is raised to the one-minute floor.
    docs.serve(200, Some("max-age=5"), &docs.document());
    let t = NOW + 10_000;
    resolver.resolve(&id, t).await.unwrap();
    resolver.resolve(&id, t + 30).await.unwrap();
    assert_eq!(docs.server.hits(), 3);
    resolver.resolve(&id, t + 60).await.unwrap();
    assert_eq!(docs.server.hits(), 4);

    // A year is cut to a day.
    docs.serve(200, Some("max-age=31536000"), &docs.document());
    let t = NOW + 20_000;
    resolver.resolve(&id, t).await.unwrap();
    resolver.resolve(&id, t + 86_399).await.unwrap();
    assert_eq!(docs.server.hits(), 5);
    resolver.resolve(&id, t + 86_400).await.unwrap();
    assert_eq!(docs.server.hits(), 6);

    // No header: five minutes.
    docs.serve(200, None, &docs.document());
    let t = NOW + 200_000;
    resolver.resolve(&id, t).await.unwrap();
    resolver.resolve(&id, t + 299).await.unwrap();
    assert_eq!(docs.server.hits(), 7);
    resolver.resolve(&id, t + 300).await.unwrap();
    assert_eq!(docs.server.hits(), 8);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let docs = DocumentServer::start().await;
    let resolver = test_resolver();
    docs.serve(500, None, &json!({}));
    assert!(matches!(
        resolver.resolve(&docs.client_id(), NOW).await,
        Err(MetadataDocumentError::Fetch(_))
    ));
    docs.serve(200, None, &docs.document());
    assert!(resolver.resolve(&docs.client_id(), NOW + 1).await.is_ok());
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let docs = DocumentServer::start().await;
    let client = OutboundClient::new(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    );
    let resolver = ClientMetadataDocuments::new(
        client,
        MetadataDocumentConfig::default()
            .insecure_allow_http_loopback()
            .max_cached(3),
    );
    for i in 0..10 {
        let id = ClientId::parse(&docs.server.url(&format!("/c{i}.json"))).unwrap();
        docs.serve(
            200,
            None,
            &json!({"client_id": id.as_str(), "redirect_uris": ["https://app.example/cb"]}),
        );
        resolver.resolve(&id, NOW + i).await.unwrap();
        assert!(resolver.cached() <= 3);
    }
}

#[tokio::test]
async fn client_id_must_equal_the_url() {
    let docs = DocumentServer::start().await;
    let mut doc = docs.document();
    doc["client_id"] = json!("https://victim.example/client.json");
    docs.serve(200, None, &doc);
    let message = invalid(test_resolver().resolve(&docs.client_id(), NOW).await);
    assert!(message.contains("client_id"), "{message}");
}

#[tokio::test]
async fn private_key_jwt_and_secrets_are_refused_clearly() {
    let docs = DocumentServer::start().await;
    let resolver = test_resolver();
    let mut doc = docs.document();
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks_uri"] = json!("https://app.example/jwks");
    docs.serve(200, None, &doc);
    let message = invalid(resolver.resolve(&docs.client_id(), NOW).await);
    assert!(message.contains("private_key_jwt"), "{message}");
    doc["token_endpoint_auth_method"] = json!("client_secret_basic");
    docs.serve(200, None, &doc);
    let message = invalid(resolver.resolve(&docs.client_id(), NOW).await);
    assert!(message.contains("shared-secret"), "{message}");
}

#[tokio::test]
async fn redirect_uris_are_validated() {
    let docs = DocumentServer::start().await;
    let resolver = test_resolver();
    for bad in [
        json!([]),
        json!(["https://app.example/cb#fragment"]),
        json!(["https://*.app.example/cb"]),
        json!(["http://app.example/cb"]),
    ] {
        let mut doc = docs.document();
        doc["redirect_uris"] = bad.clone();
        docs.serve(200, None, &doc);
        let message = invalid(resolver.resolve(&docs.client_id(), NOW).await);
        assert!(message.contains("redirect_uris"), "{bad}: {message}");
    }
    let mut doc = docs.document();
    doc.as_object_mut().unwrap().remove("redirect_uris");
    docs.serve(200, None, &doc);
    invalid(resolver.resolve(&docs.client_id(), NOW).await);
}

#[tokio::test]
async fn unusable_client_names_fall_back_to_the_host() {
    let docs = DocumentServer::start().await;
    let mut doc = docs.document();
    doc["client_name"] = json!("x".repeat(500));
    docs.serve(200, None, &doc);
    let client = test_resolver()
        .resolve(&docs.client_id(), NOW)
        .await
        .unwrap();
    assert_eq!(client.name, "127.0.0.1");
}

#[tokio::test]
async fn grant_types_beyond_code_and_refresh_are_refused() {
    let docs = DocumentServer::start().await;
    let mut doc = docs.document();
    doc["grant_types"] = json!(["authorization_code", "client_credentials"]);
    docs.serve(200, None, &doc);
    let message = invalid(test_resolver().resolve(&docs.client_id(), NOW).await);
    assert!(message.contains("grant_types"));
}

#[tokio::test]
async fn fetch_failures() {
    let docs = DocumentServer::start().await;
    let resolver = test_resolver();
    let fetch_error = |result: Result<_, MetadataDocumentError>| match result {
        Err(MetadataDocumentError::Fetch(message)) => message,
        other => panic!("expected Fetch, got {other:?}"),
    };
    docs.serve(404, None, &json!({}));
    assert!(fetch_error(resolver.resolve(&docs.client_id(), NOW).await).contains("404"));
    // A redirect is not followed.
    docs.serve(302, None, &json!({}));
    assert!(fetch_error(resolver.resolve(&docs.client_id(), NOW).await).contains("redirect"));
    assert_eq!(docs.server.hits_on("/elsewhere.json"), 0);
    // Too large.
    docs.serve_bytes(vec![b' '; 65 * 1024]);
    fetch_error(resolver.resolve(&docs.client_id(), NOW).await);
    // Not JSON.
    docs.serve_bytes(b"<html>hello</html>".to_vec());
    invalid(resolver.resolve(&docs.client_id(), NOW).await);
}

#[tokio::test]
async fn slow_servers_time_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = OutboundClient::new(
        OutboundConfig::default()
            .timeout(Duration::from_millis(300))
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    );
    let resolver = ClientMetadataDocuments::new(
        client,
        MetadataDocumentConfig::default().insecure_allow_http_loopback(),
    );
    let id = ClientId::parse(&format!("http://{addr}/client.json")).unwrap();
    assert!(matches!(
        resolver.resolve(&id, NOW).await,
        Err(MetadataDocumentError::Fetch(_))
    ));
}

fn forbidden(result: &Result<impl std::fmt::Debug, MetadataDocumentError>) {
    assert!(
        matches!(result, Err(MetadataDocumentError::Forbidden(_))),
        "expected Forbidden, got {result:?}"
    );
}

#[tokio::test]
async fn ssrf_refusals_through_the_default_policy() {
    // A real server is listening on loopback, and the default policy must never reach it.
    let docs = DocumentServer::start().await;
    docs.serve(200, None, &docs.document());
    let resolver = FixedResolver::new();
    resolver.set("metadata.attacker.example", &["169.254.169.254"]);
    resolver.set("intranet.attacker.example", &["10.1.2.3"]);
    resolver.set("loopback.attacker.example", &["127.0.0.1"]);
    resolver.set("mixed.attacker.example", &["93.184.215.14", "192.168.1.1"]);
    resolver.set("mapped.attacker.example", &["::ffff:127.0.0.1"]);
    let documents = ClientMetadataDocuments::new(
        OutboundClient::with_resolver(OutboundConfig::default(), resolver),
        MetadataDocumentConfig::default(),
    );
    let port = docs.server.addr.port();
    for url in [
        format!("https://127.0.0.1:{port}/oauth/client.json"),
        format!("https://[::1]:{port}/oauth/client.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/oauth/client.json"),
        "https://169.254.169.254/latest/meta-data/client.json".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
        "https://192.168.1.1/client.json".to_owned(),
        "https://100.64.0.1/client.json".to_owned(),
        "https://[fd00::1]/client.json".to_owned(),
        "https://[fe80::1]/client.json".to_owned(),
        "https://0.0.0.0/client.json".to_owned(),
        "https://metadata.attacker.example/client.json".to_owned(),
        "https://intranet.attacker.example/client.json".to_owned(),
        format!("https://loopback.attacker.example:{port}/oauth/client.json"),
        "https://mixed.attacker.example/client.json".to_owned(),
        "https://mapped.attacker.example/client.json".to_owned(),
        // Not metadata document URLs at all.
        docs.server.url("/oauth/client.json"),
        "https://app.example/".to_owned(),
        "s6BhdRkqt3".to_owned(),
    ] {
        let id = ClientId::parse(&url).unwrap();
        forbidden(&documents.resolve(&id, NOW).await);
    }
    assert_eq!(
        docs.server.hits(),
        0,
        "the loopback server was never reached"
    );
}

#[tokio::test]
async fn insecure_http_loopback_ids_need_the_insecure_setting() {
    let docs = DocumentServer::start().await;
    docs.serve(200, None, &docs.document());
    let client = OutboundClient::new(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    );
    let documents = ClientMetadataDocuments::new(client, MetadataDocumentConfig::default());
    forbidden(&documents.resolve(&docs.client_id(), NOW).await);
    assert_eq!(docs.server.hits(), 0);
}
