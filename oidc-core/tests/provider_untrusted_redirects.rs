//! No automatic redirect to untrusted URIs (RFC 9700 §4.11.2): anyone can register a client
//! (Dynamic Client Registration or a Client ID Metadata Document) with any https redirect
//! URI, so a parameter error at `/authorize` for such a client renders an error page with a
//! link, never a 302 that would make the provider an open redirector. Operator-configured
//! clients keep the standard error redirect, and the user's own "Deny" still redirects.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::sync::Arc;

use http::StatusCode;
use oidc_core::authn::BoxFuture;
use oidc_core::client::{ClientKind, MetadataDocumentError, MetadataDocumentResolver};
use oidc_core::provider::{Provider, StaticClient};
use oidc_core::redirect::RedirectUri;
use oidc_core::types::ClientId;
use provider_common::*;
use serde_json::json;

/// Where the attacker wants the victim's browser to land.
const EVIL_REDIRECT: &str = "https://evil.example/landing";
/// The attacker's Client ID Metadata Document.
const EVIL_DOCUMENT: &str = "https://evil.example/client.json";

/// Registers a public client with [`EVIL_REDIRECT`] at `/register`; its id.
async fn register_evil_client(p: &TestProvider) -> String {
    let registered = p
        .post_json(
            "/register",
            &json!({
                "redirect_uris": [EVIL_REDIRECT],
                "token_endpoint_auth_method": "none",
                "client_name": "Totally Official Bank",
            }),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    registered.json()["client_id"].as_str().unwrap().to_owned()
}

/// Resolves [`EVIL_DOCUMENT`] to a client redirecting to [`EVIL_REDIRECT`], as
/// `ClientMetadataDocuments` would after fetching the attacker's document.
struct EvilDocuments;

impl MetadataDocumentResolver for EvilDocuments {
    fn resolve<'a>(
        &'a self,
        client_id: &'a ClientId,
        _now: u64,
    ) -> BoxFuture<'a, Result<oidc_core::client::Client, MetadataDocumentError>> {
        Box::pin(async move {
            if client_id.as_str() != EVIL_DOCUMENT {
                return Err(MetadataDocumentError::Fetch("not found".into()));
            }
            let mut client = StaticClient::public(
                client_id.clone(),
                "evil.example",
                vec![RedirectUri::parse(EVIL_REDIRECT).unwrap()],
            )
            .client()
            .clone();
            client.kind = ClientKind::MetadataDocument;
            Ok(client)
        })
    }
}

/// A provider like [`start`] that also resolves [`EVIL_DOCUMENT`].
async fn start_with_documents() -> TestProvider {
    let p = start().await;
    let provider = Provider::builder(base_config(ISSUER), p.store.clone())
        .authenticator(p.login.clone())
        .metadata_resolver(Arc::new(EvilDocuments))
        .clock(p.clock.manual())
        .build()
        .await
        .unwrap();
    TestProvider { provider, ..p }
}

/// A request by `client_id` to [`EVIL_REDIRECT`] with `change` applied (a parameter set
/// to a value, or removed with `None`).
fn attack_params<'a>(
    client_id: &'a str,
    pkce: &'a Pkce,
    change: (&'a str, Option<&'a str>),
) -> Vec<(&'a str, &'a str)> {
    let mut params: Vec<_> = TestProvider::authorize_params(client_id, EVIL_REDIRECT, pkce)
        .into_iter()
        .filter(|(name, _)| *name != change.0)
        .collect();
    if let Some(value) = change.1 {
        params.push((change.0, value));
    }
    params
}

/// The answer is our error page: no `Location`, no login started, the error named, the
/// client's redirect host shown, and the error redirect offered only as a link.
async fn assert_error_page_not_redirect(
    p: &TestProvider,
    params: &[(&str, &str)],
    error: &str,
) -> String {
    let logins_before = p.login.requests.lock().unwrap().len();
    let response = p.authorize(params).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text()
    );
    assert!(response.is_error_page(), "{}", response.text());
    assert_eq!(
        p.login.requests.lock().unwrap().len(),
        logins_before,
        "no login may start"
    );
    let html = response.text();
    assert!(html.contains(&format!("<code>{error}</code>")), "{html}");
    assert!(html.contains("<strong>evil.example</strong>"), "{html}");
    let link = format!("<a href=\"{EVIL_REDIRECT}?error={error}&amp;");
    assert!(html.contains(&link), "the redirect is only a link: {html}");
    assert!(
        html.contains("iss=https%3A%2F%2Fauth.example.com"),
        "{html}"
    );
    html
}

/// Each error an `/authorize` request can have once client and redirect URI are known,
/// before the user has done anything: (parameter change, error code).
const PRE_INTERACTION_ERRORS: &[((&str, Option<&str>), &str)] = &[
    (("scope", Some("openid admin")), "invalid_scope"),
    (("code_challenge", None), "invalid_request"),
    (("code_challenge_method", Some("plain")), "invalid_request"),
    (
        ("response_type", Some("token")),
        "unsupported_response_type",
    ),
    (("response_type", None), "invalid_request"),
    (("response_mode", Some("fragment")), "invalid_request"),
    (
        ("resource", Some("https://elsewhere.example/")),
        "invalid_target",
    ),
    (("prompt", Some("none")), "login_required"),
    (
        ("request", Some("eyJhbGciOiJub25lIn0.e30.")),
        "request_not_supported",
    ),
    (
        ("request_uri", Some("https://evil.example/r")),
        "request_uri_not_supported",
    ),
    (("max_age", Some("-1")), "invalid_request"),
];

#[tokio::test]
async fn open_redirect_via_dcr_client_and_bad_scope_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("scope", Some("openid admin")));
    let html = assert_error_page_not_redirect(&p, &params, "invalid_scope").await;
    assert!(html.contains("registered itself"), "{html}");
    assert!(
        html.contains("state=st%26te%3D1+2"),
        "the link carries state: {html}"
    );
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_missing_pkce_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("code_challenge", None));
    assert_error_page_not_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_unsupported_response_type_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("response_type", Some("token")));
    assert_error_page_not_redirect(&p, &params, "unsupported_response_type").await;
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_bad_resource_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("resource", Some("https://x.example/")));
    assert_error_page_not_redirect(&p, &params, "invalid_target").await;
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_prompt_none_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("prompt", Some("none")));
    assert_error_page_not_redirect(&p, &params, "login_required").await;
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_oversized_state_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let state = "s".repeat(4096);
    let params = attack_params(&client_id, &pkce, ("state", Some(&state)));
    let html = assert_error_page_not_redirect(&p, &params, "invalid_request").await;
    assert!(!html.contains(&state), "an unusable state is not echoed");
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_post_request_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = attack_params(&client_id, &pkce, ("scope", Some("openid admin")));
    let response = p.post_form("/authorize", &params, &[]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(response.is_error_page(), "{}", response.text());
}

#[tokio::test]
async fn open_redirect_via_dcr_client_and_any_pre_interaction_error_renders_error_page() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    for (change, error) in PRE_INTERACTION_ERRORS {
        let params = attack_params(&client_id, &pkce, *change);
        assert_error_page_not_redirect(&p, &params, error).await;
    }
}

#[tokio::test]
async fn open_redirect_via_metadata_document_client_and_bad_scope_renders_error_page() {
    let p = start_with_documents().await;
    let pkce = pkce();
    let params = attack_params(EVIL_DOCUMENT, &pkce, ("scope", Some("openid admin")));
    assert_error_page_not_redirect(&p, &params, "invalid_scope").await;
}

#[tokio::test]
async fn open_redirect_via_metadata_document_client_and_missing_pkce_renders_error_page() {
    let p = start_with_documents().await;
    let pkce = pkce();
    let params = attack_params(EVIL_DOCUMENT, &pkce, ("code_challenge", None));
    assert_error_page_not_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn open_redirect_via_metadata_document_client_and_any_pre_interaction_error_renders_error_page()
 {
    let p = start_with_documents().await;
    let pkce = pkce();
    for (change, error) in PRE_INTERACTION_ERRORS {
        let params = attack_params(EVIL_DOCUMENT, &pkce, *change);
        assert_error_page_not_redirect(&p, &params, error).await;
    }
}

#[tokio::test]
async fn operator_configured_client_still_gets_the_error_redirect() {
    let p = start().await;
    let pkce = pkce();
    for (change, error) in PRE_INTERACTION_ERRORS {
        let mut params: Vec<_> = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce)
            .into_iter()
            .filter(|(name, _)| *name != change.0)
            .collect();
        if let Some(value) = change.1 {
            params.push((change.0, value));
        }
        let response = p.authorize(&params).await;
        assert_eq!(
            response.status,
            StatusCode::FOUND,
            "{error}: {}",
            response.text()
        );
        assert!(response.location().starts_with(PUBLIC_REDIRECT));
        let location = response.location_params();
        assert_eq!(location["error"], *error);
        assert_eq!(location["iss"], ISSUER);
    }
}

#[tokio::test]
async fn self_registered_client_with_valid_request_still_reaches_login() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = TestProvider::authorize_params(&client_id, EVIL_REDIRECT, &pkce);
    let response = p.authorize(&params).await;
    assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
    assert!(
        !response.location().starts_with(EVIL_REDIRECT),
        "the redirect goes to our login, not the client"
    );
}

#[tokio::test]
async fn deny_by_the_user_still_redirects_a_self_registered_client() {
    let p = start().await;
    let client_id = register_evil_client(&p).await;
    let pkce = pkce();
    let params = TestProvider::authorize_params(&client_id, EVIL_REDIRECT, &pkce);
    let consent = p.login(&p.authorize(&params).await).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let (tx, csrf) = consent_fields(&consent);
    let denied = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "deny")],
            &[],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.text());
    assert!(denied.location().starts_with(EVIL_REDIRECT));
    let location = denied.location_params();
    assert_eq!(location["error"], "access_denied");
    assert_eq!(location["iss"], ISSUER);
    assert_eq!(location["state"], "st&te=1 2");
}

#[tokio::test]
async fn deny_by_the_user_still_redirects_a_metadata_document_client() {
    let p = start_with_documents().await;
    let pkce = pkce();
    let params = TestProvider::authorize_params(EVIL_DOCUMENT, EVIL_REDIRECT, &pkce);
    let consent = p.login(&p.authorize(&params).await).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let (tx, csrf) = consent_fields(&consent);
    let denied = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "deny")],
            &[],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.text());
    assert_eq!(denied.location_params()["error"], "access_denied");
}
