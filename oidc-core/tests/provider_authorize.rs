//! The authorization endpoint: client and redirect URI checks (error page, never a
//! redirect), parameter validation with error redirects carrying `state` and `iss`, PKCE,
//! scopes, resources, prompt handling, CORS absence and rate limits.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use oidc_core::provider::RateLimit;
use provider_common::*;

fn params_with<'a>(pkce: &'a Pkce, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    TestProvider::authorize_params(PUBLIC, redirect_uri, pkce)
}

/// The request is answered with an error page: no `Location`, nothing sent to the
/// redirect URI, and no login started.
async fn assert_error_page_without_redirect(provider: &TestProvider, redirect_uri: &str) {
    let pkce = pkce();
    let logins_before = provider.login.requests.lock().unwrap().len();
    let response = provider.authorize(&params_with(&pkce, redirect_uri)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{redirect_uri}");
    assert!(
        response.is_error_page(),
        "{redirect_uri}: {}",
        response.text()
    );
    assert_eq!(
        provider.login.requests.lock().unwrap().len(),
        logins_before,
        "no login may start"
    );
}

#[tokio::test]
async fn attack_redirect_uri_with_trailing_slash_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://app.example/callback/").await;
}

#[tokio::test]
async fn attack_redirect_uri_with_changed_case_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://app.example/Callback").await;
    assert_error_page_without_redirect(&p, "https://APP.example/callback").await;
}

#[tokio::test]
async fn attack_redirect_uri_with_extra_query_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(
        &p,
        "https://app.example/callback?next=https://evil.example",
    )
    .await;
}

#[tokio::test]
async fn attack_redirect_uri_with_fragment_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://app.example/callback#https://evil.example")
        .await;
}

#[tokio::test]
async fn attack_redirect_uri_with_path_suffix_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://app.example/callback/../../evil").await;
    assert_error_page_without_redirect(&p, "https://app.example/callbackevil").await;
}

#[tokio::test]
async fn attack_redirect_uri_downgraded_to_http_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "http://app.example/callback").await;
}

#[tokio::test]
async fn attack_redirect_uri_userinfo_at_trick_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://app.example@evil.example/callback").await;
}

#[tokio::test]
async fn attack_unregistered_redirect_uri_gets_error_page_not_redirect() {
    let p = start().await;
    assert_error_page_without_redirect(&p, "https://evil.example/callback").await;
}

#[tokio::test]
async fn missing_redirect_uri_gets_error_page() {
    let p = start().await;
    let pkce = pkce();
    let params: Vec<_> = params_with(&pkce, PUBLIC_REDIRECT)
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    let response = p.authorize(&params).await;
    assert!(response.is_error_page());
}

#[tokio::test]
async fn attack_unknown_client_gets_error_page_not_redirect() {
    let p = start().await;
    let pkce = pkce();
    let response = p
        .authorize(&TestProvider::authorize_params(
            "unknown-client",
            PUBLIC_REDIRECT,
            &pkce,
        ))
        .await;
    assert!(response.is_error_page(), "{}", response.text());
    assert!(response.text().contains("not registered"));
}

#[tokio::test]
async fn missing_or_repeated_client_id_gets_error_page() {
    let p = start().await;
    let missing = p
        .authorize(&[("response_type", "code"), ("redirect_uri", PUBLIC_REDIRECT)])
        .await;
    assert!(missing.is_error_page());
    let repeated = p
        .get(&format!(
            "/authorize?client_id={PUBLIC}&client_id=conf-app&redirect_uri={}",
            form(&[("x", PUBLIC_REDIRECT)]).trim_start_matches("x=")
        ))
        .await;
    assert!(repeated.is_error_page());
}

#[tokio::test]
async fn error_page_escapes_and_locks_down() {
    let p = start().await;
    let response = p
        .authorize(&[("client_id", "<script>"), ("redirect_uri", PUBLIC_REDIRECT)])
        .await;
    assert!(response.is_error_page());
    assert!(!response.text().contains("<script>"));
    assert_eq!(response.header("x-frame-options"), Some("DENY"));
    assert!(
        response
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
}

#[tokio::test]
async fn loopback_redirect_uri_port_may_vary() {
    let p = start().await;
    let pkce = pkce();
    let params = params_with(&pkce, "http://127.0.0.1:49152/callback");
    let location = p.authorize_and_approve(&params).await;
    assert!(location.contains_key("code"));
    let approved_to = {
        let authorize = p.authorize(&params).await;
        let consent = p.login(&authorize).await;
        p.approve(&consent).await.location().to_owned()
    };
    assert!(approved_to.starts_with("http://127.0.0.1:49152/callback?"));
    // Another loopback host is another redirect URI.
    assert_error_page_without_redirect(&p, "http://localhost:49152/callback").await;
}

/// The error redirect carries `error`, `error_description`, the exact `state` and `iss`.
async fn assert_error_redirect(
    provider: &TestProvider,
    params: &[(&str, &str)],
    error: &str,
) -> std::collections::HashMap<String, String> {
    let response = provider.authorize(params).await;
    assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
    assert!(response.location().starts_with(PUBLIC_REDIRECT));
    let location = response.location_params();
    assert_eq!(location["error"], error);
    assert!(location.contains_key("error_description"));
    assert_eq!(location["iss"], ISSUER);
    assert!(!location.contains_key("code"));
    location
}

fn replace<'a>(
    params: &[(&'a str, &'a str)],
    name: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<_> = params.iter().copied().filter(|(k, _)| *k != name).collect();
    if let Some(value) = value {
        out.push((name, value));
    }
    out
}

#[tokio::test]
async fn error_redirects_carry_state_and_iss() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "response_type",
        Some("token"),
    );
    let location = assert_error_redirect(&p, &params, "unsupported_response_type").await;
    assert_eq!(location["state"], "st&te=1 2", "state is echoed unchanged");
}

#[tokio::test]
async fn error_redirect_without_state_has_no_state() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(&params_with(&pkce, PUBLIC_REDIRECT), "state", None);
    let params = replace(&params, "response_type", Some("token"));
    let location = assert_error_redirect(&p, &params, "unsupported_response_type").await;
    assert!(!location.contains_key("state"));
}

#[tokio::test]
async fn attack_implicit_and_hybrid_response_types_are_unsupported() {
    let p = start().await;
    let pkce = pkce();
    for response_type in ["token", "id_token", "code id_token", "code token", "none"] {
        let params = replace(
            &params_with(&pkce, PUBLIC_REDIRECT),
            "response_type",
            Some(response_type),
        );
        assert_error_redirect(&p, &params, "unsupported_response_type").await;
    }
}

#[tokio::test]
async fn missing_response_type_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(&params_with(&pkce, PUBLIC_REDIRECT), "response_type", None);
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn response_mode_other_than_query_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("response_mode", "form_post"));
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn pkce_missing_challenge_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(&params_with(&pkce, PUBLIC_REDIRECT), "code_challenge", None);
    let params = replace(&params, "code_challenge_method", None);
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn attack_pkce_plain_method_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "code_challenge_method",
        Some("plain"),
    );
    let location = assert_error_redirect(&p, &params, "invalid_request").await;
    assert!(location["error_description"].contains("plain"));
}

#[tokio::test]
async fn attack_pkce_missing_method_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "code_challenge_method",
        None,
    );
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn pkce_malformed_challenge_is_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "code_challenge",
        Some("too-short"),
    );
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn unknown_scope_is_invalid_scope() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "scope",
        Some("openid admin:everything"),
    );
    assert_error_redirect(&p, &params, "invalid_scope").await;
}

#[tokio::test]
async fn resource_not_in_allow_list_is_invalid_target() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("resource", "https://evil.example/mcp"));
    assert_error_redirect(&p, &params, "invalid_target").await;
}

#[tokio::test]
async fn resource_with_fragment_or_relative_is_invalid_target() {
    let p = start().await;
    let pkce = pkce();
    for resource in [
        "https://mcp.example.com/mcp#x",
        "/mcp",
        "https://mcp.example.com/mcp/",
    ] {
        let mut params = params_with(&pkce, PUBLIC_REDIRECT);
        params.push(("resource", resource));
        assert_error_redirect(&p, &params, "invalid_target").await;
    }
}

#[tokio::test]
async fn prompt_none_is_login_required_without_sessions() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("prompt", "none"));
    let location = assert_error_redirect(&p, &params, "login_required").await;
    assert_eq!(location["state"], "st&te=1 2");
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_fresh_login() {
    let p = start().await;
    let pkce = pkce();
    let plain = p.authorize(&params_with(&pkce, PUBLIC_REDIRECT)).await;
    assert_eq!(plain.status, StatusCode::FOUND);
    assert!(!p.login.last_request().force_login);

    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("prompt", "login"));
    assert_eq!(p.authorize(&params).await.status, StatusCode::FOUND);
    assert!(p.login.last_request().force_login);

    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("max_age", "10000"));
    assert_eq!(p.authorize(&params).await.status, StatusCode::FOUND);
    assert!(p.login.last_request().force_login);

    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("max_age", "-1"));
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.extend([
        ("ui_locales", "de-CH fr"),
        ("claims_locales", "de"),
        ("display", "page"),
        ("acr_values", "urn:mace:incommon:iap:silver"),
        ("login_hint", "alice@example.com"),
        ("made_up_parameter", "x"),
    ]);
    let location = p.authorize_and_approve(&params).await;
    assert!(location.contains_key("code"));
    assert_eq!(
        p.login.last_request().login_hint.as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test]
async fn request_objects_are_not_supported() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    assert_error_redirect(&p, &params, "request_not_supported").await;
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("request_uri", "https://app.example/request.jwt"));
    assert_error_redirect(&p, &params, "request_uri_not_supported").await;
}

#[tokio::test]
async fn repeated_parameters_are_invalid_request() {
    let p = start().await;
    let pkce = pkce();
    let mut params = params_with(&pkce, PUBLIC_REDIRECT);
    params.push(("scope", "openid"));
    assert_error_redirect(&p, &params, "invalid_request").await;
}

#[tokio::test]
async fn post_authorization_request_succeeds() {
    let p = start().await;
    let pkce = pkce();
    let response = p
        .post_form("/authorize", &params_with(&pkce, PUBLIC_REDIRECT), &[])
        .await;
    assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
    let consent = p.login(&response).await;
    let approved = p.approve(&consent).await;
    assert!(approved.location_params().contains_key("code"));
}

#[tokio::test]
async fn request_without_nonce_succeeds() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(&params_with(&pkce, PUBLIC_REDIRECT), "nonce", None);
    let location = p.authorize_and_approve(&params).await;
    let tokens = p.redeem(&location["code"], &pkce.verifier).await;
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_owned();
    assert!(jwt_part(&id_token, 1).get("nonce").is_none());
}

#[tokio::test]
async fn successful_response_carries_code_state_and_iss() {
    let p = start().await;
    let pkce = pkce();
    let location = p
        .authorize_and_approve(&params_with(&pkce, PUBLIC_REDIRECT))
        .await;
    assert_eq!(location["state"], "st&te=1 2");
    assert_eq!(location["iss"], ISSUER);
    assert!(location["code"].len() >= 43, "a 256-bit code");
}

#[tokio::test]
async fn offline_access_is_dropped_for_a_client_without_refresh_tokens() {
    let p = start().await;
    let pkce = pkce();
    let location = p
        .authorize_and_approve(&TestProvider::authorize_params(
            NO_REFRESH,
            NO_REFRESH_REDIRECT,
            &pkce,
        ))
        .await;
    let response = p
        .token(
            Auth::Public(NO_REFRESH),
            &[
                ("grant_type", "authorization_code"),
                ("code", &location["code"]),
                ("redirect_uri", NO_REFRESH_REDIRECT),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    let json = response.json();
    assert!(json.get("refresh_token").is_none());
    assert!(!json["scope"].as_str().unwrap().contains("offline_access"));
}

#[tokio::test]
async fn missing_scope_grants_the_default_scope() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(&params_with(&pkce, PUBLIC_REDIRECT), "scope", None);
    let location = p.authorize_and_approve(&params).await;
    let tokens = p.redeem(&location["code"], &pkce.verifier).await.json();
    assert_eq!(tokens["scope"], "openid memories:read memories:write");
}

#[tokio::test]
async fn cors_is_never_on_the_authorization_endpoint() {
    let p = start().await;
    let pkce = pkce();
    let response = p
        .get_with(
            &format!("/authorize?{}", form(&params_with(&pkce, PUBLIC_REDIRECT))),
            &[("origin", "https://chatgpt.com")],
        )
        .await;
    assert_eq!(response.status, StatusCode::FOUND);
    assert!(response.header("access-control-allow-origin").is_none());
    let preflight = p
        .send(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/authorize")
                .header("origin", "https://chatgpt.com")
                .header("access-control-request-method", "POST")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(preflight.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn authorize_is_rate_limited_per_client_ip() {
    let p = start_with(|c| c.rate_limits.authorize = Some(RateLimit::new(2, 60))).await;
    let pkce = pkce();
    let uri = format!("/authorize?{}", form(&params_with(&pkce, PUBLIC_REDIRECT)));
    let request = |ip: &str| {
        from_ip(
            Request::builder()
                .uri(&uri)
                .body(Full::new(Bytes::new()))
                .unwrap(),
            ip,
        )
    };
    assert_eq!(p.send(request("192.0.2.7")).await.status, StatusCode::FOUND);
    assert_eq!(p.send(request("192.0.2.7")).await.status, StatusCode::FOUND);
    let limited = p.send(request("192.0.2.7")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        p.send(request("192.0.2.8")).await.status,
        StatusCode::FOUND,
        "another client has its own bucket"
    );
    p.clock.advance(1);
    assert_eq!(p.send(request("192.0.2.7")).await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn several_login_methods_get_a_chooser() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let store =
        std::sync::Arc::new(oidc_core::store::SqliteStore::open(dir.path().join("p.db")).unwrap());
    let first = TestLogin::new("first", "/login/first");
    let second = TestLogin::new("second", "/login/second");
    let provider = oidc_core::provider::Provider::builder(base_config(ISSUER), store.clone())
        .authenticator(first.clone())
        .authenticator(second.clone())
        .clock(jwks_verify::ManualClock::at_unix(T0))
        .build()
        .await
        .unwrap();
    let p = TestProvider {
        provider,
        clock: VirtualClock::at(T0),
        store,
        login: first.clone(),
        dir,
    };
    let pkce = pkce();
    let chooser = p.authorize(&params_with(&pkce, PUBLIC_REDIRECT)).await;
    assert_eq!(chooser.status, StatusCode::OK);
    let html = chooser.text();
    let link_start = html.find("/authorize/select?").unwrap();
    let links: Vec<&str> = html[link_start..].split('"').collect();
    let second_link = links
        .iter()
        .find(|l| l.contains("method=second"))
        .unwrap()
        .replace("&amp;", "&");
    let started = p.get(&second_link).await;
    assert_eq!(started.status, StatusCode::FOUND);
    assert!(started.location().starts_with("/login/second/done?tx="));
    assert!(first.requests.lock().unwrap().is_empty());
    let consent = p.get(started.location()).await;
    let approved = p.approve(&consent).await;
    assert!(approved.location_params().contains_key("code"));

    let unknown = p.get("/authorize/select?tx=x&method=second").await;
    assert!(unknown.is_error_page());
}

#[tokio::test]
async fn clashing_login_paths_are_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        std::sync::Arc::new(oidc_core::store::SqliteStore::open(dir.path().join("p.db")).unwrap());
    for prefix in ["/token", "/login", "/authorize/select", "/"] {
        let clash = TestLogin::new("clash", Box::leak(prefix.to_owned().into_boxed_str()));
        let result = oidc_core::provider::Provider::builder(base_config(ISSUER), store.clone())
            .authenticator(TestLogin::new("test", "/login/test"))
            .authenticator(clash)
            .build()
            .await;
        assert!(result.is_err(), "{prefix}");
    }
    let none = oidc_core::provider::Provider::builder(base_config(ISSUER), store)
        .build()
        .await;
    assert!(none.is_err(), "a login method is required");
}

#[tokio::test]
async fn errors_after_a_post_redirect_with_303() {
    let p = start().await;
    let pkce = pkce();
    let params = replace(
        &params_with(&pkce, PUBLIC_REDIRECT),
        "response_type",
        Some("token"),
    );
    let response = p.post_form("/authorize", &params, &[]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(
        response.location_params()["error"],
        "unsupported_response_type"
    );
}

#[tokio::test]
async fn attack_forwarded_headers_do_not_escape_the_rate_limit() {
    let p = start_with(|c| c.rate_limits.authorize = Some(RateLimit::new(1, 1))).await;
    let pkce = pkce();
    let uri = format!("/authorize?{}", form(&params_with(&pkce, PUBLIC_REDIRECT)));
    for (i, forwarded) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let request = from_ip(
            Request::builder()
                .uri(&uri)
                .header("x-forwarded-for", *forwarded)
                .header("forwarded", format!("for={forwarded}"))
                .header("x-real-ip", *forwarded)
                .body(Full::new(Bytes::new()))
                .unwrap(),
            "192.0.2.9",
        );
        let expected = if i == 0 {
            StatusCode::FOUND
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(p.send(request).await.status, expected, "{forwarded}");
    }
}
