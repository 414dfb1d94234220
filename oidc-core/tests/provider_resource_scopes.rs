//! Default scopes per resource (RFC 8707, Keycloak-style default client scopes): a client
//! asking for `openid email profile` for the MCP resource gets its memory scopes, shown on
//! the consent page, carried by the tokens, kept by refresh and reported by introspection;
//! a client naming one of the resource's scopes gets only what it named.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use http::StatusCode;
use oidc_core::provider::{ProviderError, ResourceScopes};
use provider_common::event_log::EventLog;
use provider_common::*;
use serde_json::Value;

/// The scopes of the seed's ChatGPT configuration.
const SEED_SCOPE: &str = "openid email profile";
const MEMORY_DEFAULTS: &str = "memories:read memories:write";
const SEED_GRANT: &str = "openid email profile memories:read memories:write";

/// The test provider with the MCP resource ([`RESOURCE`], the default audience) defaulting
/// to both memory scopes; [`OTHER_RESOURCE`] has no defaults.
async fn start_with_defaults() -> TestProvider {
    start_with(|config| {
        config
            .resource_scopes
            .push(ResourceScopes::parse(&format!("{RESOURCE}={MEMORY_DEFAULTS}")).unwrap());
    })
    .await
}

fn params<'a>(scope: &'a str, pkce: &'a Pkce) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", PUBLIC),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("scope", scope),
        ("state", "s"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// `/authorize` → login: the consent page.
async fn consent_page(p: &TestProvider, params: &[(&str, &str)]) -> TestResponse {
    let page = p.login(&p.authorize(params).await).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page
}

/// Approves `page` and redeems the code of a flow started with `pkce`.
async fn approve_and_redeem(p: &TestProvider, page: &TestResponse, pkce: &Pkce) -> Tokens {
    let approved = p.approve(page).await;
    assert_eq!(
        approved.status,
        StatusCode::SEE_OTHER,
        "{}",
        approved.text()
    );
    let code = approved.location_params()["code"].clone();
    let response = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    tokens_of(&response)
}

fn access_scope(tokens: &Tokens) -> Value {
    jwt_part(&tokens.access_token, 1)["scope"].clone()
}

async fn refreshed(p: &TestProvider, refresh_token: &str, extra: &[(&str, &str)]) -> Tokens {
    let response = p.refresh(refresh_token, extra).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    tokens_of(&response)
}

#[tokio::test]
async fn seed_scopes_gain_the_mcp_defaults_from_consent_to_refresh() {
    let (log, _guard) = EventLog::install();
    let p = start_with_defaults().await;
    let pkce = pkce();

    // The consent page lists the defaulted scopes in words.
    let page = consent_page(&p, &params(SEED_SCOPE, &pkce)).await;
    let html = page.text();
    assert!(html.contains("Read your memories"), "{html}");
    assert!(html.contains("Change your memories"), "{html}");
    assert!(html.contains("See your email address"), "{html}");
    assert!(html.contains(RESOURCE), "{html}");

    // The tokens carry them.
    let tokens = approve_and_redeem(&p, &page, &pkce).await;
    assert_eq!(tokens.json["scope"], SEED_GRANT);
    assert_eq!(access_scope(&tokens), SEED_GRANT);
    assert_eq!(jwt_part(&tokens.access_token, 1)["aud"], RESOURCE);
    assert_eq!(log.audit("code_issued")[0]["scope"], SEED_GRANT);

    // Introspection shows the granted scope, of the access and of the refresh token.
    let refresh_token = tokens.refresh_token.clone().unwrap();
    let introspected = p
        .introspect(Auth::Public(PUBLIC), &tokens.access_token)
        .await;
    assert_eq!(introspected.json()["scope"], SEED_GRANT);
    let introspected = p.introspect(Auth::Public(PUBLIC), &refresh_token).await;
    assert_eq!(introspected.json()["scope"], SEED_GRANT);

    // A refresh without scope keeps them.
    let plain = refreshed(&p, &refresh_token, &[]).await;
    assert_eq!(plain.json["scope"], SEED_GRANT);
    assert_eq!(access_scope(&plain), SEED_GRANT);

    // A client re-sending its original scope does not lose them.
    let resent = refreshed(
        &p,
        plain.refresh_token.as_ref().unwrap(),
        &[("scope", SEED_SCOPE)],
    )
    .await;
    assert_eq!(resent.json["scope"], SEED_GRANT);

    // Narrowing to one memory scope still works, and the successor keeps the whole grant.
    let narrowed = refreshed(
        &p,
        resent.refresh_token.as_ref().unwrap(),
        &[("scope", "openid memories:read")],
    )
    .await;
    assert_eq!(narrowed.json["scope"], "openid memories:read");
    assert_eq!(access_scope(&narrowed), "openid memories:read");
    let successor = narrowed.refresh_token.unwrap();
    let introspected = p.introspect(Auth::Public(PUBLIC), &successor).await;
    assert_eq!(introspected.json()["scope"], SEED_GRANT);
    let again = refreshed(&p, &successor, &[]).await;
    assert_eq!(again.json["scope"], SEED_GRANT);
}

#[tokio::test]
async fn an_explicit_resource_parameter_gets_its_defaults_too() {
    let p = start_with_defaults().await;
    let pkce = pkce();
    let mut params = params(SEED_SCOPE, &pkce);
    params.push(("resource", RESOURCE));
    let page = consent_page(&p, &params).await;
    let tokens = approve_and_redeem(&p, &page, &pkce).await;
    assert_eq!(tokens.json["scope"], SEED_GRANT);
}

#[tokio::test]
async fn scope_escalation_by_naming_one_resource_scope_is_refused() {
    let p = start_with_defaults().await;
    let pkce = pkce();
    let page = consent_page(&p, &params("openid memories:read", &pkce)).await;
    let html = page.text();
    assert!(html.contains("Read your memories"), "{html}");
    assert!(!html.contains("Change your memories"), "{html}");

    let tokens = approve_and_redeem(&p, &page, &pkce).await;
    assert_eq!(tokens.json["scope"], "openid memories:read");
    assert_eq!(access_scope(&tokens), "openid memories:read");

    // Refresh cannot reach memories:write either: not by naming it, not through the
    // defaults.
    let refresh_token = tokens.refresh_token.unwrap();
    let widened = p
        .refresh(&refresh_token, &[("scope", "openid memories:write")])
        .await;
    assert_eq!(widened.status, StatusCode::BAD_REQUEST);
    assert_eq!(widened.error(), "invalid_scope");
    let defaulted = refreshed(&p, &refresh_token, &[("scope", "openid")]).await;
    assert_eq!(defaulted.json["scope"], "openid memories:read");
}

#[tokio::test]
async fn a_resource_without_defaults_gains_nothing() {
    let p = start_with_defaults().await;
    let pkce = pkce();
    let mut params = params(SEED_SCOPE, &pkce);
    params.push(("resource", OTHER_RESOURCE));
    let page = consent_page(&p, &params).await;
    assert!(!page.text().contains("memories"), "{}", page.text());
    let tokens = approve_and_redeem(&p, &page, &pkce).await;
    assert_eq!(tokens.json["scope"], SEED_SCOPE);
    assert_eq!(jwt_part(&tokens.access_token, 1)["aud"], OTHER_RESOURCE);
}

#[tokio::test]
async fn without_resource_scopes_the_request_is_granted_as_asked() {
    let p = start().await;
    let pkce = pkce();
    let page = consent_page(&p, &params(SEED_SCOPE, &pkce)).await;
    let tokens = approve_and_redeem(&p, &page, &pkce).await;
    assert_eq!(tokens.json["scope"], SEED_SCOPE);
}

#[tokio::test]
async fn unsupported_scopes_are_still_refused() {
    let p = start_with_defaults().await;
    let pkce = pkce();
    let response = p.authorize(&params("openid memories:admin", &pkce)).await;
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(response.location_params()["error"], "invalid_scope");
}

#[tokio::test]
async fn discovery_advertises_each_default_scope() {
    let p = start_with_defaults().await;
    let discovery = p.get("/.well-known/openid-configuration").await.json();
    let supported: Vec<&str> = discovery["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for scope in MEMORY_DEFAULTS.split(' ') {
        assert!(supported.contains(&scope), "{supported:?}");
    }
}

#[tokio::test]
async fn default_scopes_of_an_unserved_resource_are_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        oidc_core::store::SqliteStore::open(dir.path().join("provider.db")).unwrap(),
    );
    let config = base_config(ISSUER).with_resource_scopes(
        ResourceScopes::parse("https://elsewhere.example/api=memories:read").unwrap(),
    );
    let error = oidc_core::provider::Provider::builder(config, store)
        .authenticator(TestLogin::new("test", "/login/test"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::InvalidConfig(reason) if reason.contains("does not serve")),
        "{error}"
    );
}
