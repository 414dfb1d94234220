//! The account API: a static client with account access (the memory page) lists which apps
//! hold a live grant for the user of its access token and revokes them; every other caller
//! is refused, and no caller ever sees or changes another user's grants.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::jwt::{AccessTokenClaims, encode_access_token};
use oidc_core::keys::{KeySize, SigningKey};
use oidc_core::provider::{RateLimit, StaticClient};
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::types::{ClientId, Subject};
use provider_common::*;
use serde_json::{Value, json};

/// The first-party client with account access.
const PAGE: &str = "memory-page";
const PAGE_SECRET: &str = "page-secret-0123456789";
const PAGE_REDIRECT: &str = "https://mcp.example.com/app/callback";
const OTHER_SUBJECT: &str = "user-2";

/// A provider with the base clients plus [`PAGE`].
async fn start_with_page() -> TestProvider {
    start_with(configure_page).await
}

fn configure_page(config: &mut oidc_core::provider::ProviderConfig) {
    config.static_clients.push(
        StaticClient::confidential(
            ClientId::parse(PAGE).unwrap(),
            "Memory page",
            vec![RedirectUri::parse(PAGE_REDIRECT).unwrap()],
            SecretHash::of(PAGE_SECRET),
        )
        .with_account_access(),
    );
}

fn user(subject: &str) -> TestUser {
    TestUser {
        subject: subject.to_owned(),
        ..TestUser::default()
    }
}

impl TestProvider {
    /// A whole code flow of `client` (a static client) for `subject`: its tokens.
    async fn tokens_of_client(&self, subject: &str, client: &str) -> Tokens {
        self.login.set_user(user(subject));
        let (redirect, auth) = match client {
            PAGE => (PAGE_REDIRECT, Auth::Basic(PAGE, PAGE_SECRET)),
            CONF => (
                CONFIDENTIAL_REDIRECT,
                Auth::Basic(CONF, CONFIDENTIAL_SECRET),
            ),
            PUBLIC => (PUBLIC_REDIRECT, Auth::Public(PUBLIC)),
            NO_REFRESH => (NO_REFRESH_REDIRECT, Auth::Public(NO_REFRESH)),
            other => panic!("no such test client {other}"),
        };
        let pkce = pkce();
        let params = TestProvider::authorize_params(client, redirect, &pkce);
        let code = self.authorize_and_approve(&params).await["code"].clone();
        let response = self
            .token(
                auth,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &pkce.verifier),
                ],
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        tokens_of(&response)
    }

    /// The memory page's access token for `subject`.
    async fn page_token(&self, subject: &str) -> String {
        self.tokens_of_client(subject, PAGE).await.access_token
    }

    /// `GET /account/grants` with `Authorization: Bearer {token}`.
    async fn account_grants(&self, token: &str) -> TestResponse {
        self.get_with(
            "/account/grants",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// `POST /account/grants/revoke` with `body` as JSON.
    async fn account_revoke(&self, token: &str, body: &str) -> TestResponse {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri("/account/grants/revoke")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
    }

    /// The `apps` of a successful listing.
    async fn apps(&self, token: &str) -> Vec<Value> {
        let response = self.account_grants(token).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.header("cache-control"), Some("no-store"));
        response.json()["apps"].as_array().unwrap().clone()
    }

    /// Whether the status list entry of `access_token`'s grant is set, read from the store.
    async fn status_bit(&self, access_token: &str) -> bool {
        let status = &jwt_part(access_token, 1)["status"]["status_list"];
        let idx = status["idx"].as_u64().unwrap();
        let list: u64 = status["uri"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let stored = self.store.status_list(list).await.unwrap().unwrap();
        stored.revoked.contains(&idx)
    }
}

fn client_ids(apps: &[Value]) -> Vec<&str> {
    apps.iter()
        .map(|app| app["client_id"].as_str().unwrap())
        .collect()
}

/// Asserts a 401 `invalid_token` with its challenge.
fn assert_invalid_token(response: &TestResponse) {
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text()
    );
    assert_eq!(response.error(), "invalid_token");
    let challenge = response.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"{ISSUER}\", error=\"invalid_token\""
        )),
        "{challenge}"
    );
}

#[tokio::test]
async fn listing_shows_the_token_subjects_live_grants_grouped_per_client() {
    let p = start_with_page().await;
    // Access token only: not live once it expires.
    p.tokens_of_client(SUBJECT, NO_REFRESH).await;
    p.clock.advance(10);
    p.tokens_of_client(SUBJECT, PUBLIC).await;
    p.clock.advance(10);
    p.tokens_of_client(SUBJECT, PUBLIC).await;
    p.clock.advance(10);
    p.tokens_of_client(SUBJECT, CONF).await;
    // A dynamically registered client, named by its registration.
    let registered = p
        .post_json(
            "/register",
            &json!({
                "redirect_uris": ["https://notes.example/cb"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": "Notes <app>",
            }),
        )
        .await
        .json();
    let dynamic = registered["client_id"].as_str().unwrap().to_owned();
    p.clock.advance(10);
    let pkce = pkce();
    let params = TestProvider::authorize_params(&dynamic, "https://notes.example/cb", &pkce);
    let code = p.authorize_and_approve(&params).await["code"].clone();
    let redeemed = p
        .token(
            Auth::Public(&dynamic),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://notes.example/cb"),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.text());
    // Another user's grants of the same clients.
    p.tokens_of_client(OTHER_SUBJECT, PUBLIC).await;
    p.tokens_of_client(OTHER_SUBJECT, CONF).await;

    p.clock.advance(3600);
    let token = p.page_token(SUBJECT).await;
    let apps = p.apps(&token).await;
    assert_eq!(
        client_ids(&apps),
        vec![PAGE, dynamic.as_str(), CONF, PUBLIC],
        "newest first; the expired no-refresh grant is gone"
    );
    let t = T0;
    assert_eq!(
        apps[0],
        json!({"client_id": PAGE, "name": "Memory page",
               "scope": "openid profile email offline_access memories:read",
               "first_granted_at": t + 3640, "last_granted_at": t + 3640, "grants": 1})
    );
    assert_eq!(apps[1]["name"], "Notes <app>");
    assert_eq!(apps[1]["grants"], 1);
    assert_eq!(apps[2]["name"], "Confidential App");
    assert_eq!(
        (
            &apps[2]["first_granted_at"],
            &apps[2]["last_granted_at"],
            &apps[2]["grants"]
        ),
        (&json!(t + 30), &json!(t + 30), &json!(1)),
        "only this user's grant is counted"
    );
    assert_eq!(
        apps[3],
        json!({"client_id": PUBLIC, "name": "Public <b>App</b>",
               "scope": "openid profile email offline_access memories:read",
               "first_granted_at": t + 10, "last_granted_at": t + 20, "grants": 2})
    );

    let theirs = p.apps(&p.page_token(OTHER_SUBJECT).await).await;
    assert_eq!(client_ids(&theirs), vec![PAGE, CONF, PUBLIC]);
    assert!(theirs.iter().all(|app| app["grants"] == 1), "{theirs:?}");
}

#[tokio::test]
async fn revoking_an_apps_grants_sets_their_status_bits_and_makes_refresh_fail() {
    let p = start_with_page().await;
    let first = p.tokens_of_client(SUBJECT, PUBLIC).await;
    let second = p.tokens_of_client(SUBJECT, PUBLIC).await;
    let conf = p.tokens_of_client(SUBJECT, CONF).await;
    p.clock.advance(1);
    let token = p.page_token(SUBJECT).await;
    assert!(!p.status_bit(&first.access_token).await);

    let response = p
        .account_revoke(&token, &json!({"client_id": PUBLIC}).to_string())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json(), json!({"revoked": 2}));

    for tokens in [&first, &second] {
        assert!(p.status_bit(&tokens.access_token).await);
        assert!(!p.access_token_works(&tokens.access_token).await);
        let refresh = p
            .refresh(tokens.refresh_token.as_deref().unwrap(), &[])
            .await;
        assert_eq!(
            refresh.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refresh.text()
        );
        assert_eq!(refresh.error(), "invalid_grant");
    }
    assert!(!p.status_bit(&conf.access_token).await, "other apps stay");
    assert_eq!(p.userinfo(&conf.access_token).await.status, StatusCode::OK);
    assert_eq!(client_ids(&p.apps(&token).await), vec![PAGE, CONF]);

    for client_id in [
        PUBLIC,
        "never-registered",
        "https://unknown.example/client.json",
    ] {
        let again = p
            .account_revoke(&token, &json!({"client_id": client_id}).to_string())
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
        assert_eq!(again.json(), json!({"revoked": 0}), "{client_id}");
    }
}

#[tokio::test]
async fn attack_token_of_a_client_without_account_access_is_refused() {
    let p = start_with_page().await;
    for client in [PUBLIC, CONF] {
        let tokens = p.tokens_of_client(SUBJECT, client).await;
        let listing = p.account_grants(&tokens.access_token).await;
        assert_eq!(listing.status, StatusCode::FORBIDDEN, "{}", listing.text());
        assert_eq!(listing.error(), "insufficient_scope");
        let challenge = listing.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(&format!(
                "Bearer realm=\"{ISSUER}\", error=\"insufficient_scope\""
            )),
            "{challenge}"
        );
        assert!(!listing.text().contains(client), "nothing is listed");

        let revoke = p
            .account_revoke(
                &tokens.access_token,
                &json!({"client_id": client}).to_string(),
            )
            .await;
        assert_eq!(revoke.status, StatusCode::FORBIDDEN, "{}", revoke.text());
        assert_eq!(
            p.userinfo(&tokens.access_token).await.status,
            StatusCode::OK,
            "the app's own grant stays"
        );
        assert!(!p.status_bit(&tokens.access_token).await);
    }
}

#[tokio::test]
async fn attack_revoking_another_users_grant_changes_nothing() {
    let p = start_with_page().await;
    let victim = p.tokens_of_client(OTHER_SUBJECT, PUBLIC).await;
    let attacker = p.page_token(SUBJECT).await;

    let response = p
        .account_revoke(&attacker, &json!({"client_id": PUBLIC}).to_string())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json(), json!({"revoked": 0}));
    // Fields naming another user are not read.
    let smuggled = p
        .account_revoke(
            &attacker,
            &json!({"client_id": PUBLIC, "sub": OTHER_SUBJECT, "subject": OTHER_SUBJECT})
                .to_string(),
        )
        .await;
    assert_eq!(smuggled.json(), json!({"revoked": 0}));

    assert!(p.access_token_works(&victim.access_token).await);
    assert!(!p.status_bit(&victim.access_token).await);
    let refresh = p
        .refresh(victim.refresh_token.as_deref().unwrap(), &[])
        .await;
    assert_eq!(refresh.status, StatusCode::OK, "{}", refresh.text());
}

#[tokio::test]
async fn attack_revoked_token_is_refused() {
    let p = start_with_page().await;
    let page = p.tokens_of_client(SUBJECT, PAGE).await;
    assert_eq!(
        p.account_grants(&page.access_token).await.status,
        StatusCode::OK
    );
    // The page revokes its own grant: its token is refused from then on.
    let revoked = p
        .account_revoke(&page.access_token, &json!({"client_id": PAGE}).to_string())
        .await;
    assert_eq!(revoked.json(), json!({"revoked": 1}));
    assert_invalid_token(&p.account_grants(&page.access_token).await);
    assert_invalid_token(
        &p.account_revoke(
            &page.access_token,
            &json!({"client_id": PUBLIC}).to_string(),
        )
        .await,
    );

    // Revoked at /revoke (RFC 7009) too.
    let other = p.tokens_of_client(SUBJECT, PAGE).await;
    let revoke = p
        .post_form(
            "/revoke",
            &[("token", other.refresh_token.as_deref().unwrap())],
            &[("authorization", &basic(PAGE, PAGE_SECRET))],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_invalid_token(&p.account_grants(&other.access_token).await);
}

#[tokio::test]
async fn attack_expired_token_is_refused() {
    let p = start_with_page().await;
    let token = p.page_token(SUBJECT).await;
    p.clock.advance(3599);
    assert_eq!(p.account_grants(&token).await.status, StatusCode::OK);
    p.clock.advance(1);
    assert_invalid_token(&p.account_grants(&token).await);
}

#[tokio::test]
async fn attack_id_token_as_bearer_is_refused() {
    let p = start_with_page().await;
    let tokens = p.tokens_of_client(SUBJECT, PAGE).await;
    let id_token = tokens.id_token.unwrap();
    assert_eq!(jwt_part(&id_token, 0)["typ"], "JWT");
    assert_invalid_token(&p.account_grants(&id_token).await);
    assert_invalid_token(
        &p.account_revoke(&id_token, &json!({"client_id": PUBLIC}).to_string())
            .await,
    );
}

#[tokio::test]
async fn attack_token_signed_by_a_foreign_key_is_refused() {
    let p = start_with_page().await;
    let genuine = p.page_token(SUBJECT).await;
    assert_eq!(p.account_grants(&genuine).await.status, StatusCode::OK);
    let foreign = SigningKey::generate(KeySize::Rsa2048).unwrap();

    // The genuine claims (a live jti of the page's grant) under the foreign key's own kid.
    let claims: AccessTokenClaims = serde_json::from_value(jwt_part(&genuine, 1)).unwrap();
    let own_kid = encode_access_token(&foreign, &claims).unwrap();
    assert_invalid_token(&p.account_grants(&own_kid).await);

    // The same, claiming the provider's kid.
    let header = jwt_part(&genuine, 0);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        genuine.split('.').nth(1).unwrap()
    );
    let signature = foreign.sign_rs256(signing_input.as_bytes()).unwrap();
    let borrowed_kid = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_invalid_token(&p.account_grants(&borrowed_kid).await);
    assert_invalid_token(
        &p.account_revoke(&borrowed_kid, &json!({"client_id": PAGE}).to_string())
            .await,
    );
    assert_eq!(
        p.account_grants(&genuine).await.status,
        StatusCode::OK,
        "nothing was revoked"
    );
}

#[tokio::test]
async fn attack_listing_never_shows_another_users_grants() {
    let p = start_with_page().await;
    p.tokens_of_client(OTHER_SUBJECT, CONF).await;
    p.tokens_of_client(OTHER_SUBJECT, PUBLIC).await;
    let token = p.page_token(SUBJECT).await;

    assert_eq!(client_ids(&p.apps(&token).await), vec![PAGE]);
    // Asking for the other user in the query changes nothing.
    let asked = p
        .get_with(
            &format!("/account/grants?sub={OTHER_SUBJECT}&subject={OTHER_SUBJECT}"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert_eq!(
        client_ids(asked.json()["apps"].as_array().unwrap()),
        vec![PAGE]
    );
    // A token re-signed by the provider's own key with the other user as `sub` names a
    // grant of this user: refused.
    let forged = resign_access_token(&token, |claims| {
        claims.sub = Subject::parse(OTHER_SUBJECT).unwrap();
    });
    let response = p.account_grants(&forged).await;
    assert_invalid_token(&response);
    assert!(!response.text().contains(CONF));
}

#[tokio::test]
async fn missing_or_malformed_bearer_is_401_with_a_challenge() {
    let p = start_with_page().await;
    let token = p.page_token(SUBJECT).await;
    let realm_only = format!("Bearer realm=\"{ISSUER}\"");
    for headers in [
        vec![],
        vec![("authorization", "Basic bWVtb3J5LXBhZ2U6c2VjcmV0")],
        vec![("authorization", "Token abc")],
    ] {
        let response = p.get_with("/account/grants", &headers).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(realm_only.as_str())
        );
        assert!(response.body.is_empty());
    }
    let twice = format!("Bearer {token}");
    for headers in [
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer a b")],
        vec![("authorization", "Bearer not-a-jwt")],
        vec![
            ("authorization", twice.as_str()),
            ("authorization", twice.as_str()),
        ],
    ] {
        assert_invalid_token(&p.get_with("/account/grants", &headers).await);
    }
    // The revocation endpoint checks the token before reading the body.
    let response = p
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/account/grants/revoke")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    b"{\"client_id\": \"public-app\"}",
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.header("www-authenticate"),
        Some(realm_only.as_str())
    );
    let garbage = p.account_revoke("x.y.z", "not json").await;
    assert_invalid_token(&garbage);
}

#[tokio::test]
async fn malformed_json_is_400_invalid_request() {
    let p = start_with_page().await;
    let app = p.tokens_of_client(SUBJECT, PUBLIC).await;
    let token = p.page_token(SUBJECT).await;
    for body in [
        "not json",
        "",
        "{}",
        "[]",
        "{\"client_id\": 5}",
        "{\"client_id\": null}",
        "{\"client_id\": \"\"}",
        "{\"client_id\": \"public-app\"",
    ] {
        let response = p.account_revoke(&token, body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.error(), "invalid_request", "{body}");
    }
    let form = p
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/account/grants/revoke")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from_static(b"client_id=public-app")))
                .unwrap(),
        )
        .await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST);
    assert_eq!(form.error(), "invalid_request");
    assert!(
        p.access_token_works(&app.access_token).await,
        "nothing revoked"
    );
}

#[tokio::test]
async fn other_methods_oversized_bodies_and_floods_are_refused() {
    let p = start_with(|config| {
        configure_page(config);
        config.max_body_bytes = 1024;
        config.rate_limits.token = Some(RateLimit::new(60, 60));
    })
    .await;
    let token = p.page_token(SUBJECT).await;
    let bearer = format!("Bearer {token}");
    let request = |method: Method, path: &str, body: Bytes| {
        from_ip(
            Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", bearer.as_str())
                .header("content-type", "application/json")
                .body(Full::new(body))
                .unwrap(),
            "203.0.113.7",
        )
    };
    let post_list = p
        .send(request(Method::POST, "/account/grants", Bytes::new()))
        .await;
    assert_eq!(post_list.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post_list.header("allow"), Some("GET"));
    let get_revoke = p
        .send(request(Method::GET, "/account/grants/revoke", Bytes::new()))
        .await;
    assert_eq!(get_revoke.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_revoke.header("allow"), Some("POST"));
    let padding = " ".repeat(2048);
    let large = p
        .send(request(
            Method::POST,
            "/account/grants/revoke",
            Bytes::from(format!("{{\"client_id\": \"{PUBLIC}\"}}{padding}")),
        ))
        .await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);

    // The token bucket (60 at once) is shared with /token, /revoke and /introspect.
    let mut statuses = Vec::new();
    for _ in 0..61 {
        statuses.push(
            p.send(request(Method::GET, "/account/grants", Bytes::new()))
                .await
                .status,
        );
    }
    assert!(statuses.contains(&StatusCode::OK));
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
}
