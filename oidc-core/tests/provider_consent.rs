//! The consent page and form: what it shows, CSRF and cross-origin protection, approve and
//! deny, single use, expiry.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use http::StatusCode;
use provider_common::*;
use serde_json::json;

async fn consent_page(p: &TestProvider) -> TestResponse {
    let pkce = pkce();
    let mut params = TestProvider::authorize_params(PUBLIC, PUBLIC_REDIRECT, &pkce);
    params.push(("resource", OTHER_RESOURCE));
    let authorize = p.authorize(&params).await;
    p.login(&authorize).await
}

#[tokio::test]
async fn consent_page_shows_client_redirect_host_scopes_and_resources() {
    let p = start().await;
    let page = consent_page(&p).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains("Public &lt;b&gt;App&lt;/b&gt;"),
        "client name, escaped"
    );
    assert!(!html.contains("<b>App</b>"));
    assert!(
        html.contains("<strong>app.example</strong>"),
        "redirect host"
    );
    assert!(
        html.contains("Read your memories"),
        "configured scope in words"
    );
    assert!(html.contains("See your email address"));
    assert!(html.contains("Keep access while you are not using it"));
    assert!(html.contains(OTHER_RESOURCE), "the resource");
    assert!(!html.contains("<script"), "no javascript");
    assert!(html.contains("method=\"post\" action=\"/consent\""));
}

#[tokio::test]
async fn consent_page_is_locked_down_but_lets_the_form_reach_the_client() {
    let p = start().await;
    let page = consent_page(&p).await;
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
}

#[tokio::test]
async fn approve_redirects_with_303_code_state_and_iss() {
    let p = start().await;
    let page = consent_page(&p).await;
    let approved = p.approve(&page).await;
    assert_eq!(
        approved.status,
        StatusCode::SEE_OTHER,
        "303, not 307, after a POST"
    );
    let location = approved.location_params();
    assert!(
        approved
            .location()
            .starts_with("https://app.example/callback?code=")
    );
    assert_eq!(location["state"], "st&te=1 2");
    assert_eq!(location["iss"], ISSUER);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_state_and_iss() {
    let p = start().await;
    let page = consent_page(&p).await;
    let (tx, csrf) = consent_fields(&page);
    let denied = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "deny")],
            &[],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let location = denied.location_params();
    assert_eq!(location["error"], "access_denied");
    assert_eq!(location["state"], "st&te=1 2");
    assert_eq!(location["iss"], ISSUER);
    assert!(!location.contains_key("code"));
    // The transaction is finished.
    let again = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "approve")],
            &[],
        )
        .await;
    assert!(again.is_error_page());
}

#[tokio::test]
async fn attack_consent_post_without_csrf_token_is_refused() {
    let p = start().await;
    let page = consent_page(&p).await;
    let (tx, _csrf) = consent_fields(&page);
    let response = p
        .post_form("/consent", &[("tx", &tx), ("decision", "approve")], &[])
        .await;
    assert!(response.is_error_page());
    assert!(response.header("location").is_none());
}

#[tokio::test]
async fn attack_consent_post_with_wrong_csrf_token_is_refused() {
    let p = start().await;
    let page = consent_page(&p).await;
    let (tx, csrf) = consent_fields(&page);
    let last = if csrf.ends_with('A') { 'B' } else { 'A' };
    let wrong = format!("{}{last}", &csrf[..csrf.len() - 1]);
    let response = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &wrong), ("decision", "approve")],
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // The token of another transaction does not work either.
    let other = consent_page(&p).await;
    let (_, other_csrf) = consent_fields(&other);
    let response = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &other_csrf), ("decision", "approve")],
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // The right token still works afterwards.
    assert_eq!(p.approve(&page).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn attack_cross_origin_consent_post_is_refused() {
    let p = start().await;
    let page = consent_page(&p).await;
    let (tx, csrf) = consent_fields(&page);
    for origin in [
        "https://evil.example",
        "null",
        "https://auth.example.com.evil.example",
    ] {
        let response = p
            .post_form(
                "/consent",
                &[("tx", &tx), ("csrf", &csrf), ("decision", "approve")],
                &[("origin", origin)],
            )
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{origin}");
        assert!(response.header("location").is_none());
    }
    let same_origin = p
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "approve")],
            &[("origin", ISSUER)],
        )
        .await;
    assert_eq!(same_origin.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn consent_post_without_origin_is_accepted() {
    let p = start().await;
    let page = consent_page(&p).await;
    assert_eq!(p.approve(&page).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn consent_can_be_given_once() {
    let p = start().await;
    let page = consent_page(&p).await;
    assert_eq!(p.approve(&page).await.status, StatusCode::SEE_OTHER);
    let again = p.approve(&page).await;
    assert!(again.is_error_page(), "a second approval issues nothing");
}

#[tokio::test]
async fn login_cannot_complete_twice_or_after_expiry() {
    let p = start().await;
    let pkce = pkce();
    let authorize = p
        .authorize(&TestProvider::authorize_params(
            PUBLIC,
            PUBLIC_REDIRECT,
            &pkce,
        ))
        .await;
    let first = p.login(&authorize).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = p.login(&authorize).await;
    assert!(
        second.is_error_page(),
        "the login of a transaction completes once"
    );

    let late = p
        .authorize(&TestProvider::authorize_params(
            PUBLIC,
            PUBLIC_REDIRECT,
            &pkce,
        ))
        .await;
    p.clock.advance(600);
    assert!(
        p.login(&late).await.is_error_page(),
        "pending authorizations expire"
    );
}

#[tokio::test]
async fn consent_for_a_self_registered_client_warns() {
    let p = start().await;
    let registered = p
        .post_json(
            "/register",
            &json!({
                "redirect_uris": ["http://localhost:8765/callback"],
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
    let client_id = registered.json()["client_id"].as_str().unwrap().to_owned();
    let pkce = pkce();
    let params =
        TestProvider::authorize_params(&client_id, "http://localhost:8765/callback", &pkce);
    let page = p.login(&p.authorize(&params).await).await;
    let html = page.text();
    assert!(html.contains("registered itself"));
    assert!(html.contains("<strong>localhost:8765</strong>"));
    assert!(html.contains("a program on this computer"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("form-action 'self' http://localhost:8765;")
    );
}

#[tokio::test]
async fn consent_form_must_be_a_form() {
    let p = start().await;
    let response = p
        .post_json("/consent", &json!({"tx": "x", "decision": "approve"}))
        .await;
    assert!(response.is_error_page());
    let get = p.get("/consent").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Markup in a client's name, a login method's label, the login hint and the user's email
/// shows as text on the chooser, the password login form and the consent page.
#[tokio::test]
async fn attack_html_injection_in_client_name_is_escaped() {
    const EVIL: &str = "<script>alert(1)</script>";
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let store =
        std::sync::Arc::new(oidc_core::store::SqliteStore::open(dir.path().join("p.db")).unwrap());
    let mut config = base_config(ISSUER);
    config
        .static_clients
        .push(oidc_core::provider::StaticClient::public(
            oidc_core::types::ClientId::parse("evil-app").unwrap(),
            EVIL,
            vec![oidc_core::redirect::RedirectUri::parse(PUBLIC_REDIRECT).unwrap()],
        ));
    let issuer = oidc_core::types::Issuer::parse(ISSUER).unwrap();
    let passwords = oidc_core::login::Passwords::new(vec![], &issuer, store.clone())
        .unwrap()
        .with_label(EVIL);
    let test_login = TestLogin::new("test", "/login/test");
    test_login.set_user(TestUser {
        email: Some(format!("{EVIL}@example.com")),
        ..TestUser::default()
    });
    let provider = oidc_core::provider::Provider::builder(config, store.clone())
        .authenticator(test_login.clone())
        .authenticator(std::sync::Arc::new(passwords))
        .clock(jwks_verify::ManualClock::at_unix(T0))
        .build()
        .await
        .unwrap();
    let p = TestProvider {
        provider,
        clock: VirtualClock::at(T0),
        store,
        login: test_login,
        dir,
    };
    let pkce = pkce();
    let mut params = TestProvider::authorize_params("evil-app", PUBLIC_REDIRECT, &pkce);
    params.push(("login_hint", EVIL));
    let chooser = p.authorize(&params).await;
    assert_eq!(chooser.status, StatusCode::OK, "{}", chooser.text());
    let html = chooser.text();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains(ESCAPED),
        "the method's label, escaped: {html}"
    );
    let link = |method: &str| {
        html.split('"')
            .find(|part| part.contains("/authorize/select?") && part.contains(method))
            .unwrap()
            .replace("&amp;", "&")
    };

    let login_form = p.get(&link("method=password")).await;
    assert_eq!(login_form.status, StatusCode::OK, "{}", login_form.text());
    let form = login_form.text();
    assert!(!form.contains("<script"), "{form}");
    assert!(
        form.contains(&format!("<strong>{ESCAPED}</strong>")),
        "the client name, escaped: {form}"
    );
    assert!(
        form.contains(&format!("value=\"{ESCAPED}\"")),
        "the login hint, escaped: {form}"
    );

    let started = p.get(&link("method=test")).await;
    let consent = p.get(started.location()).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let page = consent.text();
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains(&format!("<h1>Allow {ESCAPED} to use your account?</h1>")),
        "{page}"
    );
    assert!(page.contains(&format!("<p>{ESCAPED} will be able to:</p>")));
    assert!(page.contains(&format!("Signed in as {ESCAPED}@example.com")));
    let approved = p.approve(&consent).await;
    assert!(approved.location_params().contains_key("code"));
}
