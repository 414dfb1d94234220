//! The token endpoint with the `authorization_code` grant: PKCE, single use and replay
//! revocation, code expiry and binding, client authentication, response format, audience
//! and the claims of access and ID tokens.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use http::StatusCode;
use jwks_verify::{ErrorKind, TypPolicy};
use oidc_core::authn::{AuthenticatedUser, LoginMethod, TransactionId};
use oidc_core::client::ClientKind;
use oidc_core::pkce::CodeChallenge;
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::store::{AuthorizationCodeRecord, PendingAuthorization, PendingKey};
use oidc_core::types::{ClientId, ResourceIndicator, Scope, Subject};
use provider_common::*;
use serde_json::Value;

const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn code_request<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn rfc7636_appendix_b_vector_end_to_end() {
    let p = start().await;
    let pkce = Pkce {
        verifier: RFC7636_VERIFIER.to_owned(),
        challenge: RFC7636_CHALLENGE.to_owned(),
    };
    let code = p.code(&pkce, &[]).await;
    let response = p.redeem(&code, RFC7636_VERIFIER).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

#[tokio::test]
async fn pkce_missing_verifier_is_invalid_grant() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let response = p
        .token(
            Auth::Public(PUBLIC),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", PUBLIC_REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_grant");
    // The code was not consumed by the failed attempt.
    assert_eq!(p.redeem(&code, &pkce.verifier).await.status, StatusCode::OK);
}

#[tokio::test]
async fn attack_pkce_wrong_verifier_is_invalid_grant() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let other = provider_common::pkce();
    let response = p.redeem(&code, &other.verifier).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_grant");
    // The challenge itself is public and is not a verifier.
    let response = p.redeem(&code, &pkce.challenge).await;
    assert_eq!(response.error(), "invalid_grant");
}

#[tokio::test]
async fn attack_pkce_verifier_without_stored_challenge_is_invalid_grant() {
    let p = start().await;
    // A code stored without a challenge (this provider never issues one; the check must
    // still refuse the downgrade).
    let transaction = TransactionId::generate(&SystemRandom::new()).unwrap();
    let key = PendingKey::for_transaction(&transaction);
    let pending = PendingAuthorization::new(
        ClientId::parse(PUBLIC).unwrap(),
        "Public App".to_owned(),
        ClientKind::Static,
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        CodeChallenge::from_s256(RFC7636_CHALLENGE).unwrap(),
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        T0,
        T0 + 600,
    );
    p.store.insert_pending(key, pending).await.unwrap();
    let user = AuthenticatedUser::new(Subject::parse(SUBJECT).unwrap(), T0, LoginMethod::Password);
    p.store
        .complete_login(key, user, SecretHash::of("csrf"), T0)
        .await
        .unwrap()
        .unwrap();
    let code = "code-without-challenge-0123456789abcdefghijkl";
    let record = AuthorizationCodeRecord::new(
        ClientId::parse(PUBLIC).unwrap(),
        RedirectUri::parse(PUBLIC_REDIRECT).unwrap(),
        None,
        Scope::parse("openid").unwrap(),
        vec![ResourceIndicator::parse(RESOURCE).unwrap()],
        Subject::parse(SUBJECT).unwrap(),
        T0,
        T0,
        T0 + 60,
    );
    p.store
        .complete_consent(key, Some((SecretHash::of(code), record)), T0)
        .await
        .unwrap()
        .unwrap();
    let response = p.redeem(code, RFC7636_VERIFIER).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_grant");
    assert!(
        response.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("without code_challenge")
    );
}

async fn assert_replay_revokes(p: &TestProvider, delay: u64) {
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let first = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(first.status, StatusCode::OK);
    let tokens = tokens_of(&first);
    assert!(p.access_token_works(&tokens.access_token).await);

    p.clock.advance(delay);
    let replay = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error(), "invalid_grant");

    assert!(
        !p.access_token_works(&tokens.access_token).await,
        "the first redemption's access token is refused at userinfo and introspection"
    );
    let refresh = p.refresh(&tokens.refresh_token.unwrap(), &[]).await;
    assert_eq!(
        refresh.error(),
        "invalid_grant",
        "its refresh token is dead"
    );
}

#[tokio::test]
async fn attack_code_replay_at_once_is_invalid_grant_and_revokes_its_tokens() {
    let p = start().await;
    assert_replay_revokes(&p, 0).await;
}

#[tokio::test]
async fn attack_code_replay_after_30_seconds_is_invalid_grant_and_revokes_its_tokens() {
    let p = start().await;
    assert_replay_revokes(&p, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_concurrent_double_redemption_has_exactly_one_winner() {
    let p = Arc::new(start().await);
    for _round in 0..3 {
        let pkce = pkce();
        let code = p.code(&pkce, &[]).await;
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let p = Arc::clone(&p);
            let code = code.clone();
            let verifier = pkce.verifier.clone();
            tasks.push(tokio::spawn(
                async move { p.redeem(&code, &verifier).await },
            ));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            let response = task.await.unwrap();
            if response.status != StatusCode::OK {
                assert_eq!(response.error(), "invalid_grant");
            }
            statuses.push(response.status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn code_expires_after_60_seconds() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    p.clock.advance(60);
    let response = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(response.error(), "invalid_grant");

    let code = p.code(&pkce, &[]).await;
    p.clock.advance(59);
    assert_eq!(p.redeem(&code, &pkce.verifier).await.status, StatusCode::OK);
}

#[tokio::test]
async fn attack_code_redeemed_by_another_client_is_invalid_grant() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let response = p
        .token(
            Auth::Basic(CONF, CONFIDENTIAL_SECRET),
            &code_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.error(), "invalid_grant");
    let response = p
        .token(
            Auth::Public(NO_REFRESH),
            &code_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.error(), "invalid_grant");
}

#[tokio::test]
async fn attack_code_with_another_redirect_uri_is_invalid_grant() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    for other in [
        PUBLIC_LOOPBACK,
        "https://app.example/callback/",
        "https://evil.example/",
    ] {
        let response = p
            .token(
                Auth::Public(PUBLIC),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", other),
                    ("code_verifier", &pkce.verifier),
                ],
            )
            .await;
        assert_eq!(response.error(), "invalid_grant", "{other}");
    }
    let missing = p
        .token(
            Auth::Public(PUBLIC),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(missing.error(), "invalid_request");
    assert_eq!(p.redeem(&code, &pkce.verifier).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let p = start().await;
    let response = p.redeem("made-up-code", &pkce().verifier).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_grant");
}

/// A code for the confidential client.
async fn confidential_code(p: &TestProvider, pkce: &Pkce) -> String {
    let params = TestProvider::authorize_params(CONF, CONFIDENTIAL_REDIRECT, pkce);
    p.authorize_and_approve(&params).await["code"].clone()
}

fn confidential_request<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn client_secret_basic_with_url_encoded_credentials_is_accepted() {
    let p = start().await;
    let pkce = pkce();
    let code = confidential_code(&p, &pkce).await;
    // The secret holds ':', '/', '+', ' ' and '%': form-encoded before base64.
    let response = p
        .token(
            Auth::Basic(CONF, CONFIDENTIAL_SECRET),
            &confidential_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

#[tokio::test]
async fn client_secret_post_is_accepted() {
    let p = start().await;
    let pkce = pkce();
    let code = confidential_code(&p, &pkce).await;
    let response = p
        .token(
            Auth::Post(CONF, CONFIDENTIAL_SECRET),
            &confidential_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

#[tokio::test]
async fn public_client_with_none_is_accepted() {
    let p = start().await;
    let tokens = p.tokens().await;
    assert!(!tokens.access_token.is_empty());
}

#[tokio::test]
async fn attack_two_client_authentication_methods_are_refused() {
    let p = start().await;
    let pkce = pkce();
    let code = confidential_code(&p, &pkce).await;
    let mut pairs = confidential_request(&code, &pkce.verifier);
    pairs.push(("client_secret", CONFIDENTIAL_SECRET));
    let response = p
        .token(Auth::Basic(CONF, CONFIDENTIAL_SECRET), &pairs)
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn attack_wrong_secret_is_401_invalid_client_with_basic_challenge() {
    let p = start().await;
    let pkce = pkce();
    let code = confidential_code(&p, &pkce).await;
    for auth in [
        Auth::Basic(CONF, "wrong"),
        Auth::Post(CONF, "wrong"),
        Auth::Basic(CONF, "s3cr:et/+ %valuE"),
    ] {
        let response = p
            .token(auth, &confidential_request(&code, &pkce.verifier))
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.error(), "invalid_client");
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic")
        );
    }
}

#[tokio::test]
async fn attack_confidential_client_without_secret_is_invalid_client() {
    let p = start().await;
    let pkce = pkce();
    let code = confidential_code(&p, &pkce).await;
    let response = p
        .token(
            Auth::Public(CONF),
            &confidential_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.error(), "invalid_client");
}

#[tokio::test]
async fn attack_public_client_with_a_secret_is_invalid_client() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let response = p
        .token(
            Auth::Post(PUBLIC, "anything"),
            &code_request(&code, &pkce.verifier),
        )
        .await;
    assert_eq!(response.error(), "invalid_client");
}

#[tokio::test]
async fn unknown_client_and_missing_client_are_invalid_client() {
    let p = start().await;
    let response = p
        .token(
            Auth::Public("nobody"),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = p
        .post_form("/token", &[("grant_type", "authorization_code")], &[])
        .await;
    assert_eq!(response.error(), "invalid_client");
}

#[tokio::test]
async fn token_responses_are_never_cached() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[]).await;
    let ok = p.redeem(&code, &pkce.verifier).await;
    let error = p.redeem(&code, &pkce.verifier).await;
    for response in [&ok, &error] {
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert_eq!(response.header("pragma"), Some("no-cache"));
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    let json = ok.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 3600);
    assert_eq!(
        json["scope"],
        "openid profile email offline_access memories:read"
    );
}

#[tokio::test]
async fn unsupported_grant_types_are_refused() {
    let p = start().await;
    for grant in [
        "password",
        "client_credentials",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let response = p
            .token(
                Auth::Public(PUBLIC),
                &[("grant_type", grant), ("username", "a"), ("password", "b")],
            )
            .await;
        assert_eq!(response.error(), "unsupported_grant_type", "{grant}");
    }
    let missing = p.token(Auth::Public(PUBLIC), &[]).await;
    assert_eq!(missing.error(), "invalid_request");
}

#[tokio::test]
async fn token_request_must_be_a_form() {
    let p = start().await;
    let response = p
        .post_json(
            "/token",
            &serde_json::json!({"grant_type": "authorization_code"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn access_token_audience_is_the_requested_resource() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[("resource", OTHER_RESOURCE)]).await;
    let mut pairs = code_request(&code, &pkce.verifier);
    pairs.push(("resource", OTHER_RESOURCE));
    let response = p.token(Auth::Public(PUBLIC), &pairs).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let access = tokens_of(&response).access_token;
    assert_eq!(jwt_part(&access, 1)["aud"], OTHER_RESOURCE);
}

#[tokio::test]
async fn access_token_audience_defaults_to_the_configured_audience() {
    let p = start().await;
    let tokens = p.tokens().await;
    assert_eq!(jwt_part(&tokens.access_token, 1)["aud"], RESOURCE);
}

#[tokio::test]
async fn resource_at_token_must_have_been_granted() {
    let p = start().await;
    let pkce = pkce();
    let code = p.code(&pkce, &[("resource", RESOURCE)]).await;
    let mut pairs = code_request(&code, &pkce.verifier);
    pairs.push(("resource", OTHER_RESOURCE));
    let response = p.token(Auth::Public(PUBLIC), &pairs).await;
    assert_eq!(response.error(), "invalid_target");

    let mut pairs = code_request(&code, &pkce.verifier);
    pairs.push(("resource", RESOURCE));
    pairs.push(("resource", OTHER_RESOURCE));
    assert_eq!(
        p.token(Auth::Public(PUBLIC), &pairs).await.error(),
        "invalid_target"
    );
}

#[tokio::test]
async fn several_granted_resources_need_one_named_at_token() {
    let p = start().await;
    let pkce = pkce();
    let code = p
        .code(
            &pkce,
            &[("resource", RESOURCE), ("resource", OTHER_RESOURCE)],
        )
        .await;
    let response = p.redeem(&code, &pkce.verifier).await;
    assert_eq!(response.error(), "invalid_target");
    let mut pairs = code_request(&code, &pkce.verifier);
    pairs.push(("resource", OTHER_RESOURCE));
    let response = p.token(Auth::Public(PUBLIC), &pairs).await;
    assert_eq!(
        jwt_part(&tokens_of(&response).access_token, 1)["aud"],
        OTHER_RESOURCE
    );
}

#[tokio::test]
async fn access_token_has_the_rfc_9068_claims() {
    let p = start().await;
    let tokens = p.tokens().await;
    let header = jwt_part(&tokens.access_token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert!(p.jwks().await.contains(header["kid"].as_str().unwrap()));
    let claims = jwt_part(&tokens.access_token, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], SUBJECT);
    assert_eq!(claims["client_id"], PUBLIC);
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["exp"], T0 + 3600);
    assert_eq!(
        claims["scope"],
        "openid profile email offline_access memories:read"
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    assert!(
        claims.get("email").is_none(),
        "no personal data in access tokens"
    );
}

#[tokio::test]
async fn access_token_verifies_with_jwks_verify_and_id_token_does_not() {
    let p = start().await;
    let tokens = p.tokens().await;
    let jwks = p.jwks().await;
    let verifier = access_token_verifier(&jwks, RESOURCE, T0 + 1);
    let verified = verifier
        .try_verify::<jwks_verify::StandardClaims>(&tokens.access_token)
        .unwrap();
    assert_eq!(verified.sub.as_deref(), Some(SUBJECT));

    let id_token = tokens.id_token.unwrap();
    let error = verifier
        .try_verify::<jwks_verify::StandardClaims>(&id_token)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WrongType);

    // Nor does an ID token work at userinfo.
    assert_eq!(p.userinfo(&id_token).await.status, StatusCode::UNAUTHORIZED);

    // And the access token is not an ID token for the client.
    let id_verifier = jwks_verify::Verifier::builder(
        jwks_verify::Policy::new(ISSUER, PUBLIC).typ(TypPolicy::OneOf(vec!["JWT".to_owned()])),
    )
    .static_jwks(&jwks)
    .clock(jwks_verify::ManualClock::at_unix(T0 + 1))
    .build()
    .unwrap();
    assert!(
        id_verifier
            .try_verify::<jwks_verify::StandardClaims>(&tokens.access_token)
            .is_err()
    );
}

#[tokio::test]
async fn id_token_has_nonce_auth_time_and_the_client_as_audience() {
    let p = start().await;
    let tokens = p.tokens().await;
    let id_token = tokens.id_token.unwrap();
    let header = jwt_part(&id_token, 0);
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].is_string());
    let claims = jwt_part(&id_token, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], SUBJECT);
    assert_eq!(claims["aud"], PUBLIC);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["auth_time"], T0);
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["exp"], T0 + 3600);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Example");
}

#[tokio::test]
async fn email_is_released_only_when_verified_and_scoped() {
    let p = start().await;

    p.login.set_user(TestUser {
        email_verified: false,
        ..TestUser::default()
    });
    let unverified = p.tokens().await;
    let claims = jwt_part(unverified.id_token.as_ref().unwrap(), 1);
    assert!(claims.get("email").is_none());
    assert!(claims.get("email_verified").is_none());
    let userinfo = p.userinfo(&unverified.access_token).await.json();
    assert!(userinfo.get("email").is_none());

    p.login.set_user(TestUser::default());
    let verified = p.tokens().await;
    assert_eq!(
        jwt_part(verified.id_token.as_ref().unwrap(), 1)["email"],
        "alice@example.com"
    );

    let pkce = pkce();
    let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", "openid memories:read"));
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let tokens = tokens_of(&p.redeem(&code, &pkce.verifier).await);
    let claims = jwt_part(tokens.id_token.as_ref().unwrap(), 1);
    assert!(claims.get("email").is_none(), "email needs the email scope");
    assert!(claims.get("name").is_none(), "name needs the profile scope");
    let userinfo = p.userinfo(&tokens.access_token).await.json();
    assert_eq!(userinfo, serde_json::json!({"sub": SUBJECT}));
}

#[tokio::test]
async fn no_id_token_without_openid() {
    let p = start().await;
    let pkce = pkce();
    let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", "memories:read"));
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let json = p.redeem(&code, &pkce.verifier).await.json();
    assert!(json.get("id_token").is_none());
    assert_eq!(json["scope"], "memories:read");
    assert!(
        json["refresh_token"].is_string(),
        "refresh without offline_access"
    );
}

#[tokio::test]
async fn token_endpoint_is_rate_limited() {
    let p = start_with(|c| {
        c.rate_limits.token = Some(oidc_core::provider::RateLimit::new(1, 60));
    })
    .await;
    let first = p.redeem("x", &pkce().verifier).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    let second = p.redeem("x", &pkce().verifier).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(second.header("retry-after").is_some());
    let _: Value = second.json();
}
