//! Userinfo (RFC 6750 errors, claims per scope), introspection (RFC 7662) and revocation
//! (RFC 7009).

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::secret::SecretHash;
use oidc_core::types::{ClientId, Subject};
use provider_common::*;
use serde_json::json;

#[tokio::test]
async fn userinfo_answers_get_and_post_with_claims_per_scope() {
    let p = start().await;
    let tokens = p.tokens().await;
    let get = p.userinfo(&tokens.access_token).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.header("cache-control"), Some("no-store"));
    assert_eq!(
        get.json(),
        json!({
            "sub": SUBJECT,
            "email": "alice@example.com",
            "email_verified": true,
            "name": "Alice Example",
        })
    );
    let post = p
        .post_form(
            "/userinfo",
            &[],
            &[("authorization", &format!("Bearer {}", tokens.access_token))],
        )
        .await;
    assert_eq!(post.json(), get.json());
}

#[tokio::test]
async fn userinfo_without_a_token_is_401_with_a_bearer_challenge() {
    let p = start().await;
    let response = p.get("/userinfo").await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let challenge = response.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer"));
    assert!(
        !challenge.contains("error="),
        "no error code without a token"
    );
}

#[tokio::test]
async fn userinfo_with_a_bad_token_is_401_invalid_token() {
    let p = start().await;
    for token in ["garbage", "a.b.c"] {
        let response = p.userinfo(token).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
    }
}

#[tokio::test]
async fn attack_access_token_with_the_jti_of_another_clients_or_subjects_grant_is_refused_at_userinfo()
 {
    let p = start().await;
    let tokens = p.tokens().await;
    // The same claims signed again pass: only the changed claim below can be the reason.
    let unchanged = resign_access_token(&tokens.access_token, |_| {});
    assert_eq!(p.userinfo(&unchanged).await.status, StatusCode::OK);

    // Valid signatures, but the `jti` is recorded under PUBLIC's grant for SUBJECT.
    let other_client = resign_access_token(&tokens.access_token, |claims| {
        claims.client_id = ClientId::parse(CONF).unwrap();
    });
    let other_subject = resign_access_token(&tokens.access_token, |claims| {
        claims.sub = Subject::parse("user-2").unwrap();
    });
    for forged in [other_client, other_subject] {
        let response = p.userinfo(&forged).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        assert!(!response.text().contains(SUBJECT));
    }
}

#[tokio::test]
async fn userinfo_takes_the_token_only_from_the_authorization_header() {
    let p = start().await;
    let tokens = p.tokens().await;
    let in_body = p
        .post_form("/userinfo", &[("access_token", &tokens.access_token)], &[])
        .await;
    assert_eq!(in_body.status, StatusCode::UNAUTHORIZED);
    let in_query = p
        .get(&format!("/userinfo?access_token={}", tokens.access_token))
        .await;
    assert_eq!(in_query.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_needs_the_openid_scope() {
    let p = start().await;
    let pkce = pkce();
    let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", "memories:read"));
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let tokens = tokens_of(&p.redeem(&code, &pkce.verifier).await);
    let response = p.userinfo(&tokens.access_token).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(
        response
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn userinfo_refuses_an_expired_access_token() {
    let p = start().await;
    let tokens = p.tokens().await;
    p.clock.advance(3600 + 31);
    assert_eq!(
        p.userinfo(&tokens.access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn introspection_reports_active_access_and_refresh_tokens() {
    let p = start().await;
    let tokens = p.tokens().await;
    let access = p
        .introspect(Auth::Public(PUBLIC), &tokens.access_token)
        .await;
    assert_eq!(access.header("cache-control"), Some("no-store"));
    let json = access.json();
    assert_eq!(json["active"], true);
    assert_eq!(json["client_id"], PUBLIC);
    assert_eq!(json["sub"], SUBJECT);
    assert_eq!(json["aud"], RESOURCE);
    assert_eq!(json["iss"], ISSUER);
    assert_eq!(json["exp"], T0 + 3600);
    assert_eq!(json["token_type"], "Bearer");

    let refresh = p
        .introspect(Auth::Public(PUBLIC), tokens.refresh_token.as_ref().unwrap())
        .await
        .json();
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["sub"], SUBJECT);

    let unknown = p.introspect(Auth::Public(PUBLIC), "nothing").await.json();
    assert_eq!(unknown, json!({"active": false}));
}

#[tokio::test]
async fn introspection_of_another_clients_token_is_inactive() {
    let p = start().await;
    let tokens = p.tokens().await;
    let response = p
        .introspect(Auth::Basic(CONF, CONFIDENTIAL_SECRET), &tokens.access_token)
        .await;
    assert_eq!(response.json(), json!({"active": false}));
    let response = p
        .introspect(
            Auth::Basic(CONF, CONFIDENTIAL_SECRET),
            tokens.refresh_token.as_ref().unwrap(),
        )
        .await;
    assert_eq!(response.json(), json!({"active": false}));
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let p = start().await;
    let tokens = p.tokens().await;
    let response = p
        .post_form("/introspect", &[("token", &tokens.access_token)], &[])
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = p
        .introspect(Auth::Basic(CONF, "wrong"), &tokens.access_token)
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_access_tokens() {
    let p = start().await;
    let tokens = p.tokens().await;
    let refresh = tokens.refresh_token.unwrap();
    let revoked = p.revoke(PUBLIC, &refresh).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body.is_empty());
    assert_eq!(p.refresh(&refresh, &[]).await.error(), "invalid_grant");
    assert!(!p.access_token_works(&tokens.access_token).await);
}

#[tokio::test]
async fn revoking_an_access_token_revokes_its_grant() {
    let p = start().await;
    let tokens = p.tokens().await;
    assert_eq!(
        p.revoke(PUBLIC, &tokens.access_token).await.status,
        StatusCode::OK
    );
    assert!(!p.access_token_works(&tokens.access_token).await);
    assert_eq!(
        p.refresh(tokens.refresh_token.as_ref().unwrap(), &[])
            .await
            .error(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn revoking_an_unknown_token_is_200() {
    let p = start().await;
    assert_eq!(
        p.revoke(PUBLIC, "nothing-at-all").await.status,
        StatusCode::OK
    );
    assert_eq!(p.revoke(PUBLIC, "a.b.c").await.status, StatusCode::OK);
}

#[tokio::test]
async fn attack_revoking_another_clients_token_has_no_effect() {
    let p = start().await;
    let tokens = p.tokens().await;
    let response = p
        .post_form(
            "/revoke",
            &[("token", tokens.refresh_token.as_ref().unwrap())],
            &[("authorization", &basic(CONF, CONFIDENTIAL_SECRET))],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(p.access_token_works(&tokens.access_token).await);
    assert_eq!(
        p.refresh(tokens.refresh_token.as_ref().unwrap(), &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let p = start().await;
    let response = p.post_form("/revoke", &[("token", "x")], &[]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = p.post_form("/revoke", &[("client_id", PUBLIC)], &[]).await;
    assert_eq!(response.error(), "invalid_request");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let p = start().await;
    let body = "a=".to_owned() + &"x".repeat(70 * 1024);
    let response = p
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let p = start().await;
    for path in [
        "/",
        "/tokens",
        "/token/",
        "/.well-known/jwks.json",
        "/login",
    ] {
        assert_eq!(p.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

const HEALTH_TOKEN: &str = "operator-token-0123456789abcdefghijklmnop";

#[tokio::test]
async fn health_reports_store_and_keys_to_the_operator() {
    let p = start_with(|c| c.health_token = Some(SecretHash::of(HEALTH_TOKEN))).await;
    let bearer = format!("Bearer {HEALTH_TOKEN}");
    let response = p.get_with("/health", &[("authorization", &bearer)]).await;
    assert_eq!(response.status, StatusCode::OK);
    let json = response.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["store"], "ok");
    assert!(json["keys"]["signing_kid"].is_string());
    assert_eq!(json["keys"]["published"], 1);
}

#[tokio::test]
async fn attack_public_health_reveals_only_the_status() {
    for p in [
        start().await,
        start_with(|c| c.health_token = Some(SecretHash::of(HEALTH_TOKEN))).await,
    ] {
        let response = p.get("/health").await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn attack_health_with_a_wrong_operator_token_is_refused() {
    let p = start_with(|c| c.health_token = Some(SecretHash::of(HEALTH_TOKEN))).await;
    for header in [
        "Bearer operator-token-0123456789abcdefghijklmnoX".to_owned(),
        format!("Basic {HEALTH_TOKEN}"),
        "Bearer ".to_owned(),
        format!("Bearer {}", &HEALTH_TOKEN[..HEALTH_TOKEN.len() - 1]),
    ] {
        let response = p.get_with("/health", &[("authorization", &header)]).await;
        let json = response.json();
        assert!(json.get("keys").is_none(), "{header}: {json}");
        if header.starts_with("Bearer ") && header.len() > "Bearer ".len() {
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{header}");
            assert_eq!(json["error"], "invalid_token");
            assert!(
                response
                    .header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer"))
            );
        }
    }
}

#[tokio::test]
async fn attack_health_token_guess_without_a_configured_token_shows_nothing() {
    let p = start().await;
    let response = p
        .get_with("/health", &[("authorization", "Bearer anything")])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

/// Odd inputs on every route get an answer, never a panic.
#[tokio::test]
async fn arbitrary_inputs_never_panic() {
    let p = start().await;
    let paths = [
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/authorize",
        "/authorize?client_id=public-app&redirect_uri=%FF%FE&response_type=code",
        "/authorize?%zz=%%&client_id",
        "/authorize/select?tx=%00&method=%FF",
        "/consent",
        "/token",
        "/userinfo",
        "/revoke",
        "/introspect",
        "/register",
        "/health",
        "/login/test",
        "/login/test/done?tx=..",
        "/%2e%2e/token",
    ];
    let bodies: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"grant_type=authorization_code&code=%FF&code_verifier=\xff",
        b"{\"redirect_uris\": [1, null, {}]}",
        b"tx=&csrf=&decision=&tx=",
        b"client_id=public-app&client_id=public-app",
    ];
    let content_types = [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
    ];
    for path in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::OPTIONS,
            Method::DELETE,
        ] {
            for body in bodies {
                for content_type in content_types {
                    let request = Request::builder()
                        .method(method.clone())
                        .uri(path)
                        .header("content-type", content_type)
                        .header(
                            "authorization",
                            http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
                        )
                        .header("origin", "null")
                        .body(Full::new(Bytes::copy_from_slice(body)))
                        .unwrap();
                    let response = p.send(request).await;
                    assert!(
                        !response.status.is_server_error(),
                        "{method} {path}: {}",
                        response.status
                    );
                }
            }
        }
    }
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded");
    for value in [&b"Basic \xff\xfe"[..], b"Basic Og==", b"Basic", b"basic  "] {
        request = request.header(
            "authorization",
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let response = p
        .send(
            request
                .body(Full::new(Bytes::from_static(b"grant_type=x")))
                .unwrap(),
        )
        .await;
    assert!(response.status.is_client_error());
}
