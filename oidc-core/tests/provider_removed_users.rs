//! A user the operator removed (from the users file, or from the upstream allow-list) loses
//! the grants they already hold when the provider restarts: their refresh tokens are
//! refused and their access tokens' status list entries are set, while other users'
//! grants stay.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use http::StatusCode;
use oidc_core::authn::{Authenticator, LoginMethod, federated_subject};
use oidc_core::login::{
    ClientSecret, LocalUser, PASSWORD_ISSUER, PasswordHashString, Passwords, Upstream,
    UpstreamConfig, UpstreamMetadata,
};
use oidc_core::outbound::{OutboundClient, OutboundConfig};
use oidc_core::provider::{Provider, StatusListPolicy};
use oidc_core::status_list::StatusList;
use oidc_core::store::{GrantLogin, ProviderStore};
use oidc_core::types::Issuer;
use provider_common::*;

const UPSTREAM: &str = "https://upstream.example";

/// An Argon2id hash with tiny parameters (debug builds hash slowly).
fn cheap_hash(password: &str) -> PasswordHashString {
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(256, 1, 1, None).unwrap(),
    );
    let phc = argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string();
    PasswordHashString::parse(&phc).unwrap()
}

/// The password login with exactly `usernames`.
fn passwords(store: &Arc<dyn ProviderStore>, usernames: &[&str]) -> Arc<dyn Authenticator> {
    let users = usernames
        .iter()
        .map(|name| LocalUser::new(*name, cheap_hash("pw")))
        .collect();
    Arc::new(Passwords::new(users, &Issuer::parse(ISSUER).unwrap(), store.clone()).unwrap())
}

/// The upstream login admitting exactly `emails` (no network: metadata at hand).
fn upstream(store: &Arc<dyn ProviderStore>, emails: &[&str]) -> Arc<dyn Authenticator> {
    let issuer = Issuer::parse(UPSTREAM).unwrap();
    let config = UpstreamConfig::new(
        issuer.clone(),
        "our-client",
        ClientSecret::new("upstream secret"),
        &Issuer::parse(ISSUER).unwrap(),
    )
    .allowed_emails(emails.iter().copied());
    let metadata = UpstreamMetadata::from_json(
        &issuer,
        br#"{"issuer":"https://upstream.example",
            "authorization_endpoint":"https://upstream.example/auth",
            "token_endpoint":"https://upstream.example/token",
            "jwks_uri":"https://upstream.example/jwks"}"#,
    )
    .unwrap();
    let outbound = OutboundClient::new(OutboundConfig::default());
    Arc::new(Upstream::new(config, metadata, outbound, store.clone()).unwrap())
}

/// Signs `username` in through the test login as a password user and returns its tokens.
async fn password_tokens(p: &TestProvider, username: &str) -> Tokens {
    p.login.set_method(LoginMethod::Password);
    p.login.set_user(TestUser {
        subject: federated_subject(PASSWORD_ISSUER, username)
            .as_str()
            .to_owned(),
        email: None,
        email_verified: false,
        name: None,
    });
    p.tokens().await
}

/// Signs a user with `email` in through the test login as an upstream user.
async fn upstream_tokens(p: &TestProvider, subject: &str, email: &str) -> Tokens {
    p.login.set_method(LoginMethod::Upstream {
        issuer: UPSTREAM.to_owned(),
    });
    p.login.set_user(TestUser {
        subject: subject.to_owned(),
        email: Some(email.to_owned()),
        email_verified: true,
        name: None,
    });
    // Without the `email` scope: the allow-list is checked against the admitted email.
    p.tokens().await
}

/// Restarts the provider over the same database with `methods` (and the test login).
async fn restart(p: TestProvider, methods: Vec<Arc<dyn Authenticator>>) -> TestProvider {
    let TestProvider {
        store,
        login,
        dir,
        clock,
        provider,
    } = p;
    drop(provider);
    let mut builder = Provider::builder(base_config(ISSUER), store.clone());
    for method in methods {
        builder = builder.authenticator(method);
    }
    let provider = builder
        .authenticator(login.clone())
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

/// The bit of `access_token` in its freshly fetched status list (`true`: revoked).
async fn revoked_bit(p: &TestProvider, access_token: &str) -> bool {
    let claims = jwt_part(access_token, 1);
    let reference = &claims["status"]["status_list"];
    let uri = reference["uri"].as_str().unwrap();
    let idx = reference["idx"].as_u64().unwrap();
    let response = p.get(uri.strip_prefix(ISSUER).unwrap()).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let list = jwt_part(&response.text(), 1);
    StatusList::decode(
        list["status_list"]["lst"].as_str().unwrap(),
        StatusListPolicy::DEFAULT_LIST_SIZE,
    )
    .unwrap()
    .get(idx)
}

async fn refresh_status(p: &TestProvider, tokens: &Tokens) -> (StatusCode, String) {
    let response = p.refresh(tokens.refresh_token.as_ref().unwrap(), &[]).await;
    let error = if response.status == StatusCode::OK {
        String::new()
    } else {
        response.error()
    };
    (response.status, error)
}

#[tokio::test]
async fn grants_record_how_the_user_signed_in() {
    let p = start().await;
    let alice = password_tokens(&p, "alice").await;
    let bob = upstream_tokens(&p, "bob-sub", "bob@example.com").await;
    let logins = p.store.live_grant_logins(p.clock.now()).await.unwrap();
    let alice_subject = federated_subject(PASSWORD_ISSUER, "alice");
    let kinds: Vec<_> = logins
        .iter()
        .map(|g| (g.subject.clone(), g.login.clone()))
        .collect();
    assert!(kinds.contains(&(alice_subject, GrantLogin::Password)));
    assert!(kinds.iter().any(|(s, l)| s.as_str() == "bob-sub"
        && *l
            == GrantLogin::Upstream {
                email: Some("bob@example.com".to_owned())
            }));
    assert_eq!(kinds.len(), 2);
    assert!(p.access_token_works(&alice.access_token).await);
    assert!(p.access_token_works(&bob.access_token).await);
}

#[tokio::test]
async fn attack_removed_local_user_keeps_refreshing_is_refused() {
    let p = start().await;
    let alice = password_tokens(&p, "alice").await;
    let bob = password_tokens(&p, "bob").await;
    let store = p.store.clone();

    // The operator removes alice from the users file and restarts.
    let p = restart(p, vec![passwords(&store, &["bob"])]).await;

    assert_eq!(
        refresh_status(&p, &alice).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".to_owned())
    );
    assert!(revoked_bit(&p, &alice.access_token).await);
    assert!(!p.access_token_works(&alice.access_token).await);
    assert!(!revoked_bit(&p, &bob.access_token).await);
    assert_eq!(refresh_status(&p, &bob).await.0, StatusCode::OK);
}

#[tokio::test]
async fn attack_local_user_keeps_refreshing_after_password_login_is_turned_off_is_refused() {
    let p = start().await;
    let alice = password_tokens(&p, "alice").await;
    let carol = upstream_tokens(&p, "carol-sub", "carol@example.com").await;

    // No password login any more; the upstream (test) login stays.
    let p = restart(p, Vec::new()).await;

    assert_eq!(refresh_status(&p, &alice).await.1, "invalid_grant");
    assert!(revoked_bit(&p, &alice.access_token).await);
    assert!(!revoked_bit(&p, &carol.access_token).await);
    assert_eq!(refresh_status(&p, &carol).await.0, StatusCode::OK);
}

#[tokio::test]
async fn attack_upstream_user_dropped_from_the_allow_list_keeps_refreshing_is_refused() {
    let p = start().await;
    let alice = upstream_tokens(&p, "alice-sub", "Alice@Example.com").await;
    let bob = upstream_tokens(&p, "bob-sub", "bob@example.com").await;
    let store = p.store.clone();

    let p = restart(p, vec![upstream(&store, &["bob@example.com"])]).await;

    assert_eq!(refresh_status(&p, &alice).await.1, "invalid_grant");
    assert!(revoked_bit(&p, &alice.access_token).await);
    assert!(!revoked_bit(&p, &bob.access_token).await);
    assert_eq!(refresh_status(&p, &bob).await.0, StatusCode::OK);
}

#[tokio::test]
async fn users_still_admitted_keep_their_grants_across_a_restart() {
    let p = start().await;
    let alice = password_tokens(&p, "alice").await;
    let carol = upstream_tokens(&p, "carol-sub", "carol@example.com").await;
    let store = p.store.clone();

    let p = restart(
        p,
        vec![
            passwords(&store, &["alice"]),
            upstream(&store, &["carol@example.com"]),
        ],
    )
    .await;

    assert!(!revoked_bit(&p, &alice.access_token).await);
    assert!(!revoked_bit(&p, &carol.access_token).await);
    assert_eq!(refresh_status(&p, &alice).await.0, StatusCode::OK);
    assert_eq!(refresh_status(&p, &carol).await.0, StatusCode::OK);
}

#[tokio::test]
async fn grants_from_before_logins_were_recorded_are_left_alone() {
    let p = start().await;
    let alice = password_tokens(&p, "alice").await;
    // As a grant created before schema version 4: no login.
    let connection = rusqlite::Connection::open(p.dir.path().join("provider.db")).unwrap();
    connection
        .execute("UPDATE grants SET login = NULL, login_email = NULL", [])
        .unwrap();
    drop(connection);
    let store = p.store.clone();

    let p = restart(p, vec![passwords(&store, &["bob"])]).await;

    assert!(!revoked_bit(&p, &alice.access_token).await);
    assert_eq!(refresh_status(&p, &alice).await.0, StatusCode::OK);
}
