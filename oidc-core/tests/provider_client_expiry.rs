//! Unused dynamically registered clients expire: maintenance deletes a client that has not
//! been issued a token for `RegistrationPolicy::unused_client_ttl`, unless it still holds
//! a live grant; operator-configured clients never expire.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::time::Duration;

use http::StatusCode;
use provider_common::*;
use serde_json::json;

const DAY: u64 = 24 * 3600;
const REDIRECT: &str = "https://app.example/registered";

/// Registers a public client (with the refresh grant when `refresh`); its id.
async fn register(p: &TestProvider, refresh: bool) -> String {
    let grant_types = if refresh {
        json!(["authorization_code", "refresh_token"])
    } else {
        json!(["authorization_code"])
    };
    let response = p
        .post_json(
            "/register",
            &json!({
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": grant_types,
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()["client_id"].as_str().unwrap().to_owned()
}

/// Whether `/authorize` still knows the client (it reaches the login, not an error page).
async fn is_registered(p: &TestProvider, client_id: &str) -> bool {
    let pkce = pkce();
    let response = p
        .authorize(&TestProvider::authorize_params(client_id, REDIRECT, &pkce))
        .await;
    match response.status {
        StatusCode::FOUND => true,
        StatusCode::BAD_REQUEST => {
            assert!(
                response.text().contains("not registered"),
                "{}",
                response.text()
            );
            false
        }
        other => panic!("unexpected {other}: {}", response.text()),
    }
}

/// Runs the flow for `client_id` and redeems the code: the token response.
async fn tokens_for(p: &TestProvider, client_id: &str) -> serde_json::Value {
    let pkce = pkce();
    let params = TestProvider::authorize_params(client_id, REDIRECT, &pkce);
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let response = p
        .token(
            Auth::Public(client_id),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

/// Advances the clock and runs maintenance; how many clients it deleted.
async fn after_days(p: &TestProvider, days: u64) -> u64 {
    p.clock.advance(days * DAY);
    p.provider.run_maintenance().await.unwrap().purged.clients
}

#[tokio::test]
async fn unused_dynamic_client_expires_after_the_ttl() {
    let p = start().await;
    let client_id = register(&p, false).await;
    assert_eq!(after_days(&p, 29).await, 0);
    assert!(is_registered(&p, &client_id).await, "29 days: kept");
    assert_eq!(after_days(&p, 2).await, 1);
    assert!(!is_registered(&p, &client_id).await, "31 days unused: gone");
    // Operator-configured clients never expire.
    let pkce = pkce();
    let response = p
        .authorize(&TestProvider::authorize_params(
            PUBLIC,
            PUBLIC_REDIRECT,
            &pkce,
        ))
        .await;
    assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
}

#[tokio::test]
async fn issuing_a_token_counts_as_use() {
    let p = start().await;
    let client_id = register(&p, false).await;
    assert_eq!(after_days(&p, 20).await, 0);
    tokens_for(&p, &client_id).await;
    // 35 days after registration but 15 after its last use: kept.
    assert_eq!(after_days(&p, 15).await, 0);
    assert!(is_registered(&p, &client_id).await);
    // 31 days after its last use, with its access token long expired: gone.
    assert_eq!(after_days(&p, 16).await, 1);
    assert!(!is_registered(&p, &client_id).await);
}

#[tokio::test]
async fn client_with_a_live_grant_is_kept() {
    let p = start_with(|c| c.registration.unused_client_ttl = Some(Duration::from_secs(DAY))).await;
    let client_id = register(&p, true).await;
    let tokens = tokens_for(&p, &client_id).await;
    assert!(tokens["refresh_token"].is_string());
    // Unused for 20 days, past its one-day TTL, but its refresh token is still usable.
    assert_eq!(after_days(&p, 20).await, 0);
    assert!(is_registered(&p, &client_id).await);
    // Its refresh token idles out after 30 days: nothing live is left.
    assert_eq!(after_days(&p, 11).await, 1);
    assert!(!is_registered(&p, &client_id).await);
}

#[tokio::test]
async fn client_whose_grant_was_revoked_is_not_kept_by_it() {
    let p = start_with(|c| c.registration.unused_client_ttl = Some(Duration::from_secs(DAY))).await;
    let client_id = register(&p, true).await;
    let tokens = tokens_for(&p, &client_id).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let revoked = p
        .post_form(
            "/revoke",
            &[("token", refresh), ("client_id", &client_id)],
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert_eq!(after_days(&p, 2).await, 1);
    assert!(!is_registered(&p, &client_id).await);
}

#[tokio::test]
async fn expiry_can_be_turned_off() {
    let p = start_with(|c| c.registration.unused_client_ttl = None).await;
    let client_id = register(&p, false).await;
    assert_eq!(after_days(&p, 400).await, 0);
    assert!(is_registered(&p, &client_id).await);
}

#[tokio::test]
async fn a_ttl_under_a_minute_is_a_configuration_error() {
    let mut config = base_config(ISSUER);
    config.registration.unused_client_ttl = Some(Duration::from_secs(5));
    assert!(config.validate().is_err());
}
