//! Audit events: every security event of the provider is recorded under the `audit`
//! target, and no log line carries a token, code, secret or email address.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::time::Duration;

use http::StatusCode;
use oidc_core::keys::RotationPolicy;
use oidc_core::provider::RateLimit;
use provider_common::event_log::EventLog;
use provider_common::*;
use serde_json::json;

#[tokio::test]
async fn security_events_are_audited_without_secrets() {
    const DAY: u64 = 24 * 3600;
    let (log, _guard) = EventLog::install();
    let p = start_with(|c| {
        c.rate_limits.register = Some(RateLimit::new(1, 1));
        c.rotation = RotationPolicy::default()
            .with_rotate_every(Duration::from_secs(2 * DAY))
            .with_publish_ahead(Duration::from_secs(DAY));
    })
    .await;
    let first: Vec<String> = log
        .audit("key_rotated")
        .into_iter()
        .map(|e| e["state"].clone())
        .collect();
    assert_eq!(first, ["generated", "activated"], "the first key");

    // Code issued, redeemed, replayed.
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let tokens = tokens_of(&p.redeem(&code, &pkce.verifier).await);
    assert_eq!(
        p.redeem(&code, &pkce.verifier).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(log.audit("code_issued")[0]["client_id"], PUBLIC);
    assert_eq!(log.audit("code_issued")[0]["subject"], SUBJECT);
    assert_eq!(log.audit("code_redeemed").len(), 1);
    assert_eq!(log.audit("code_replayed").len(), 1);

    // Refresh rotated, then reused.
    let second = p.tokens().await;
    let first_refresh = second.refresh_token.clone().unwrap();
    let rotated = tokens_of(&p.refresh(&first_refresh, &[]).await);
    assert_eq!(
        p.refresh(&first_refresh, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(log.audit("refresh_rotated").len(), 1);
    assert_eq!(log.audit("refresh_reused").len(), 1);

    // Revocation.
    let third = p.tokens().await;
    p.revoke(PUBLIC, third.refresh_token.as_ref().unwrap())
        .await;
    assert_eq!(log.audit("token_revoked").len(), 1);

    // Registration, then its rate limit.
    let registered = p
        .post_json(
            "/register",
            &json!({"redirect_uris": ["https://app.example/cb"]}),
        )
        .await
        .json();
    let client_secret = registered["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(log.audit("client_registered")[0]["how"], "dcr");
    let limited = p
        .post_json(
            "/register",
            &json!({"redirect_uris": ["https://app.example/cb"]}),
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(log.audit("rate_limited")[0]["endpoint"], "register");

    // Key rotation.
    p.clock.advance(DAY + 60);
    p.provider.run_maintenance().await.unwrap();
    p.clock.advance(DAY);
    p.provider.run_maintenance().await.unwrap();
    let states: Vec<String> = log
        .audit("key_rotated")
        .into_iter()
        .map(|e| e["state"].clone())
        .collect();
    assert_eq!(
        states,
        [
            "generated",
            "activated",
            "generated",
            "retired",
            "activated"
        ]
    );

    // Nothing secret was logged, at any level.
    let text = log.all_text();
    for secret in [
        code.as_str(),
        pkce.verifier.as_str(),
        tokens.access_token.as_str(),
        tokens.refresh_token.as_deref().unwrap(),
        rotated.refresh_token.as_deref().unwrap(),
        rotated.access_token.as_str(),
        client_secret.as_str(),
        "alice@example.com",
    ] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn login_paths_and_consent_are_rate_limited() {
    let p = start_with(|c| c.rate_limits.login = Some(RateLimit::new(2, 60))).await;
    assert_ne!(
        p.get("/login/test/done?tx=x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_ne!(
        p.post_form("/consent", &[("tx", "x")], &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let limited = p.get("/login/test/done?tx=x").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("1"));
}
