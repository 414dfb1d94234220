//! The refresh token grant: rotation, reuse detection revoking the family, binding to the
//! client, scope narrowing, resources, idle and absolute expiry, and durability across a
//! restart. Every test runs on SQLite and, with feature `postgres`, on PostgreSQL.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use oidc_core::provider::StaticClient;
use oidc_core::redirect::RedirectUri;
use oidc_core::types::ClientId;
use provider_common::*;

const DAY: u64 = 24 * 3600;

/// Instantiates each test on each backend: a fresh database per test.
macro_rules! on_every_backend {
    ($($name:ident,)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDatabase::sqlite()).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDatabase::postgres().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    refresh_token_rotates_on_every_use,
    attack_refresh_token_reuse_revokes_the_whole_family,
    attack_concurrent_refresh_has_one_winner,
    attack_refresh_token_of_another_client_is_refused,
    refresh_scope_may_only_narrow,
    refresh_resource_must_have_been_granted,
    refresh_token_expires_when_idle,
    refresh_token_expires_at_the_absolute_limit_despite_use,
    client_without_refresh_permission_gets_none,
    attack_refresh_after_the_clients_refresh_permission_was_withdrawn_is_unauthorized_client,
    unknown_refresh_token_is_invalid_grant,
    issued_refresh_token_survives_a_restart,
);

async fn refresh_token_rotates_on_every_use(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let tokens = p.tokens().await;
    let mut current = tokens.refresh_token.unwrap();
    let mut seen = vec![current.clone()];
    for _ in 0..3 {
        p.clock.advance(60);
        let response = p.refresh(&current, &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let next = tokens_of(&response);
        let rotated = next.refresh_token.unwrap();
        assert!(!seen.contains(&rotated), "a new refresh token every time");
        assert!(p.access_token_works(&next.access_token).await);
        let claims = jwt_part(&next.access_token, 1);
        assert_eq!(claims["sub"], SUBJECT);
        assert_eq!(claims["aud"], RESOURCE);
        let id = jwt_part(next.id_token.as_ref().unwrap(), 1);
        assert_eq!(id["auth_time"], T0, "auth_time is the original login");
        assert!(id.get("nonce").is_none());
        seen.push(rotated.clone());
        current = rotated;
    }
}

async fn attack_refresh_token_reuse_revokes_the_whole_family(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let tokens = p.tokens().await;
    let first = tokens.refresh_token.unwrap();
    let rotated = tokens_of(&p.refresh(&first, &[]).await);
    let second = rotated.refresh_token.clone().unwrap();

    // The stolen first token is presented again.
    let reuse = p.refresh(&first, &[]).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.error(), "invalid_grant");

    // Everything of the grant is dead: the successor and every access token.
    assert_eq!(p.refresh(&second, &[]).await.error(), "invalid_grant");
    assert!(!p.access_token_works(&rotated.access_token).await);
    assert!(!p.access_token_works(&tokens.access_token).await);

    // Other grants of the same user are untouched.
    let other = p.tokens().await;
    assert!(p.access_token_works(&other.access_token).await);
    assert_eq!(
        p.refresh(other.refresh_token.as_ref().unwrap(), &[])
            .await
            .status,
        StatusCode::OK
    );
}

async fn attack_concurrent_refresh_has_one_winner(db: TestDatabase) {
    let p = Arc::new(start_on(&db, VirtualClock::at(T0), |_| {}).await);
    let token = p.tokens().await.refresh_token.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&p);
            let token = token.clone();
            tokio::spawn(async move { p.refresh(&token, &[]).await.status })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

async fn attack_refresh_token_of_another_client_is_refused(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let token = p.tokens().await.refresh_token.unwrap();
    let response = p
        .token(
            Auth::Basic(CONF, CONFIDENTIAL_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_grant");
    // Refused without consuming: the rightful client still refreshes.
    assert_eq!(p.refresh(&token, &[]).await.status, StatusCode::OK);
}

async fn refresh_scope_may_only_narrow(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let token = p.tokens().await.refresh_token.unwrap();
    let wider = p
        .refresh(&token, &[("scope", "openid memories:write")])
        .await;
    assert_eq!(wider.error(), "invalid_scope");

    let narrower = p.refresh(&token, &[("scope", "memories:read")]).await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.text());
    let narrowed = tokens_of(&narrower);
    assert_eq!(narrowed.json["scope"], "memories:read");
    assert_eq!(
        jwt_part(&narrowed.access_token, 1)["scope"],
        "memories:read"
    );
    assert!(narrowed.id_token.is_none(), "no openid, no ID token");

    // The successor keeps the original scope (RFC 6749 §6).
    let back = p
        .refresh(narrowed.refresh_token.as_ref().unwrap(), &[])
        .await;
    assert_eq!(
        back.json()["scope"],
        "openid profile email offline_access memories:read"
    );
}

async fn refresh_resource_must_have_been_granted(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let token = p.tokens().await.refresh_token.unwrap();
    let response = p.refresh(&token, &[("resource", OTHER_RESOURCE)]).await;
    assert_eq!(response.error(), "invalid_target");
    let response = p.refresh(&token, &[("resource", RESOURCE)]).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        jwt_part(&tokens_of(&response).access_token, 1)["aud"],
        RESOURCE
    );
}

async fn refresh_token_expires_when_idle(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |c| {
        c.lifetimes.refresh_idle = Duration::from_secs(DAY);
        c.lifetimes.refresh_absolute = Duration::from_secs(10 * DAY);
    })
    .await;
    let token = p.tokens().await.refresh_token.unwrap();
    p.clock.advance(DAY - 1);
    let response = p.refresh(&token, &[]).await;
    assert_eq!(response.status, StatusCode::OK, "used within the idle time");
    let next = tokens_of(&response).refresh_token.unwrap();
    p.clock.advance(DAY);
    assert_eq!(p.refresh(&next, &[]).await.error(), "invalid_grant");
}

async fn refresh_token_expires_at_the_absolute_limit_despite_use(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |c| {
        c.lifetimes.refresh_idle = Duration::from_secs(DAY);
        c.lifetimes.refresh_absolute = Duration::from_secs(3 * DAY);
    })
    .await;
    let mut token = p.tokens().await.refresh_token.unwrap();
    for _ in 0..2 {
        p.clock.advance(DAY - 10);
        let response = p.refresh(&token, &[]).await;
        assert_eq!(response.status, StatusCode::OK);
        token = tokens_of(&response).refresh_token.unwrap();
    }
    p.clock.advance(DAY);
    assert_eq!(
        p.refresh(&token, &[]).await.error(),
        "invalid_grant",
        "past 3 days since the login"
    );
}

async fn client_without_refresh_permission_gets_none(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    let pkce = pkce();
    let params = TestProvider::authorize_params(NO_REFRESH, NO_REFRESH_REDIRECT, &pkce);
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let response = p
        .token(
            Auth::Public(NO_REFRESH),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", NO_REFRESH_REDIRECT),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert!(response.json().get("refresh_token").is_none());
}

async fn attack_refresh_after_the_clients_refresh_permission_was_withdrawn_is_unauthorized_client(
    db: TestDatabase,
) {
    let clock = VirtualClock::at(T0);
    let before = start_on(&db, clock.clone(), |_| {}).await;
    let refresh_token = before.tokens().await.refresh_token.unwrap();
    drop(before);

    // The operator withdraws PUBLIC's refresh permission; its refresh token is still stored.
    let after = start_on(&db, clock, |config| {
        config
            .static_clients
            .retain(|client| client.client_id().as_str() != PUBLIC);
        config.static_clients.push(
            StaticClient::public(
                ClientId::parse(PUBLIC).unwrap(),
                "Public App",
                vec![RedirectUri::parse(PUBLIC_REDIRECT).unwrap()],
            )
            .with_refresh_tokens(false),
        );
    })
    .await;
    let response = after.refresh(&refresh_token, &[]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "unauthorized_client");
    assert!(response.json().get("access_token").is_none());
}

async fn unknown_refresh_token_is_invalid_grant(db: TestDatabase) {
    let p = start_on(&db, VirtualClock::at(T0), |_| {}).await;
    assert_eq!(p.refresh("not-a-token", &[]).await.error(), "invalid_grant");
    let missing = p
        .token(Auth::Public(PUBLIC), &[("grant_type", "refresh_token")])
        .await;
    assert_eq!(missing.error(), "invalid_request");
}

async fn issued_refresh_token_survives_a_restart(db: TestDatabase) {
    let clock = VirtualClock::at(T0);
    let first = start_on(&db, clock.clone(), |_| {}).await;
    let tokens = first.tokens().await;
    let jwks_before = first.jwks().await;
    drop(first);

    clock.advance(3600);
    let second = start_on(&db, clock.clone(), |_| {}).await;
    assert_eq!(
        second.jwks().await,
        jwks_before,
        "the same keys after a restart"
    );
    let response = second
        .refresh(tokens.refresh_token.as_ref().unwrap(), &[])
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    // And the reuse detection state survived too.
    assert_eq!(
        second
            .refresh(tokens.refresh_token.as_ref().unwrap(), &[])
            .await
            .error(),
        "invalid_grant"
    );
}
