//! Dynamic Client Registration (RFC 7591): validation, response, secrets, rate limits.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::provider::RateLimit;
use provider_common::*;
use serde_json::{Value, json};

async fn register(p: &TestProvider, body: Value) -> TestResponse {
    p.post_json("/register", &body).await
}

#[tokio::test]
async fn public_client_registers_and_completes_a_flow() {
    let p = start().await;
    let response = register(
        &p,
        json!({
            "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "ChatGPT",
            "application_type": "web",
            "scope": "openid",
            "logo_uri": "https://chatgpt.com/logo.png",
        }),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let json = response.json();
    let client_id = json["client_id"].as_str().unwrap().to_owned();
    assert_eq!(json["client_id_issued_at"], T0);
    assert!(
        json.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(json["token_endpoint_auth_method"], "none");
    assert_eq!(
        json["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        json["redirect_uris"],
        json!(["https://chatgpt.com/connector/oauth/abc123"])
    );
    assert_eq!(json["client_name"], "ChatGPT");
    assert!(
        json.get("logo_uri").is_none(),
        "unknown metadata is not echoed"
    );

    let pkce = pkce();
    let redirect = "https://chatgpt.com/connector/oauth/abc123";
    let params = TestProvider::authorize_params(&client_id, redirect, &pkce);
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let tokens = p
        .token(
            Auth::Public(&client_id),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &pkce.verifier),
                ("resource", RESOURCE),
            ],
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    assert!(tokens.json()["refresh_token"].is_string());
}

#[tokio::test]
async fn confidential_client_gets_its_secret_once_and_it_works() {
    let p = start().await;
    let response = register(
        &p,
        json!({"redirect_uris": ["https://app.example/dcr-cb"], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let json = response.json();
    let client_id = json["client_id"].as_str().unwrap().to_owned();
    let secret = json["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(json["client_secret_expires_at"], 0);
    assert_eq!(json["grant_types"], json!(["authorization_code"]));

    let pkce = pkce();
    let params = TestProvider::authorize_params(&client_id, "https://app.example/dcr-cb", &pkce);
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.example/dcr-cb"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let wrong = p.token(Auth::Post(&client_id, "wrong"), &pairs).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = p.token(Auth::Post(&client_id, &secret), &pairs).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert!(
        ok.json().get("refresh_token").is_none(),
        "refresh_token was not registered in grant_types"
    );
}

#[tokio::test]
async fn default_auth_method_is_client_secret_basic() {
    let p = start().await;
    let json = register(&p, json!({"redirect_uris": ["https://app.example/cb"]}))
        .await
        .json();
    assert_eq!(json["token_endpoint_auth_method"], "client_secret_basic");
    assert!(json["client_secret"].is_string());
}

async fn assert_refused(p: &TestProvider, body: Value, error: &str) {
    let response = register(p, body.clone()).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(response.error(), error, "{body}");
}

#[tokio::test]
async fn attack_http_redirect_uri_to_a_non_loopback_host_is_refused() {
    let p = start().await;
    assert_refused(
        &p,
        json!({"redirect_uris": ["http://app.example/cb"]}),
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn attack_redirect_uri_with_fragment_is_refused() {
    let p = start().await;
    assert_refused(
        &p,
        json!({"redirect_uris": ["https://app.example/cb#x"]}),
        "invalid_redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn attack_wildcard_redirect_uri_is_refused() {
    let p = start().await;
    for uri in ["https://*.app.example/cb", "https://app.example/*"] {
        assert_refused(&p, json!({"redirect_uris": [uri]}), "invalid_redirect_uri").await;
    }
}

#[tokio::test]
async fn other_bad_redirect_uris_are_refused() {
    let p = start().await;
    for body in [
        json!({}),
        json!({"redirect_uris": []}),
        json!({"redirect_uris": ["javascript:alert(1)"]}),
        json!({"redirect_uris": ["com.example.app:/cb"]}),
        json!({"redirect_uris": ["/relative"]}),
        json!({"redirect_uris": ["https://user@app.example/cb"]}),
        json!({"redirect_uris": vec!["https://app.example/cb"; 11]}),
    ] {
        assert_refused(&p, body, "invalid_redirect_uri").await;
    }
    assert_eq!(
        register(&p, json!({"redirect_uris": ["http://127.0.0.1:8080/cb"]}))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn invalid_client_metadata_is_refused() {
    let p = start().await;
    let uris = json!(["https://app.example/cb"]);
    for body in [
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": uris, "grant_types": ["password"]}),
        json!({"redirect_uris": uris, "grant_types": ["implicit"]}),
        json!({"redirect_uris": uris, "grant_types": ["client_credentials"]}),
        json!({"redirect_uris": uris, "response_types": ["token"]}),
        json!({"redirect_uris": uris, "client_name": "x".repeat(101)}),
        json!({"redirect_uris": uris, "application_type": "desktop"}),
        json!({"redirect_uris": "https://app.example/cb"}),
    ] {
        assert_refused(&p, body, "invalid_client_metadata").await;
    }
    let not_json = p
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/register")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(b"{not json")))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.error(), "invalid_client_metadata");
    let form = p
        .post_form(
            "/register",
            &[("redirect_uris", "https://app.example/cb")],
            &[],
        )
        .await;
    assert_eq!(form.error(), "invalid_client_metadata");
}

#[tokio::test]
async fn registration_is_rate_limited() {
    let p = start_with(|c| c.rate_limits.register = Some(RateLimit::new(2, 1))).await;
    let request = || {
        from_ip(
            Request::builder()
                .method(Method::POST)
                .uri("/register")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    json!({"redirect_uris": ["https://app.example/cb"]}).to_string(),
                )))
                .unwrap(),
            "2001:db8::1",
        )
    };
    assert_eq!(p.send(request()).await.status, StatusCode::CREATED);
    assert_eq!(p.send(request()).await.status, StatusCode::CREATED);
    let limited = p.send(request()).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("60"));
    p.clock.advance(60);
    assert_eq!(p.send(request()).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn registration_can_be_turned_off() {
    let p = start_with(|c| c.registration.enabled = false).await;
    let response = register(&p, json!({"redirect_uris": ["https://app.example/cb"]})).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let discovery = p.get("/.well-known/openid-configuration").await.json();
    assert!(discovery.get("registration_endpoint").is_none());
}
