//! The upstream login's state machine without sockets: each step fed the answer an
//! attacker or a broken upstream would give.

use aws_lc_rs::rand::SystemRandom;
use http::header::AUTHORIZATION;

use super::*;
use crate::login::upstream::config::ClientSecret;
use crate::types::Issuer;

const T0: u64 = 1_700_000_000;
const IDP: &str = "https://idp.example";

fn config() -> UpstreamConfig {
    let ours = Issuer::parse("https://auth.example.com").unwrap();
    UpstreamConfig::new(
        Issuer::parse(IDP).unwrap(),
        "client-1",
        ClientSecret::new("s3cret:+/ é"),
        &ours,
    )
    .allow_any_user(true)
}

fn metadata(extra: &serde_json::Value) -> UpstreamMetadata {
    let mut doc = serde_json::json!({
        "issuer": IDP,
        "authorization_endpoint": "https://idp.example/authorize?tenant=7",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/jwks",
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    UpstreamMetadata::from_json(&Issuer::parse(IDP).unwrap(), doc.to_string().as_bytes()).unwrap()
}

fn flow() -> UpstreamFlow {
    UpstreamFlow::new(config(), metadata(&serde_json::json!({}))).unwrap()
}

fn login_request() -> LoginRequest {
    LoginRequest::new(
        TransactionId::generate(&SystemRandom::new()).unwrap(),
        "Example",
    )
}

/// A started login: the secrets, the entry stored and the redirect's query.
struct Begun {
    secrets: LoginSecrets,
    started: Started,
    query: Vec<(String, String)>,
}

fn begin(flow: &UpstreamFlow, request: &LoginRequest) -> Begun {
    let secrets = LoginSecrets::generate(&SystemRandom::new()).unwrap();
    let started = flow.start(request, &secrets, T0).unwrap();
    let location = started.redirect.headers()[LOCATION].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let query = url.query_pairs().into_owned().collect();
    Begun {
        secrets,
        started,
        query,
    }
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn callback(query: &str) -> Request<Bytes> {
    Request::get(format!(
        "https://auth.example.com/login/oidc/callback?{query}"
    ))
    .body(Bytes::new())
    .unwrap()
}

fn answer(status: StatusCode, body: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::copy_from_slice(body.as_bytes()));
    *response.status_mut() = status;
    response
}

#[test]
fn start_redirects_upstream_with_state_nonce_and_s256() {
    let flow = flow();
    let request = login_request();
    let Begun {
        secrets,
        started,
        query,
    } = begin(&flow, &request);
    assert_eq!(started.redirect.status(), StatusCode::SEE_OTHER);
    assert!(started.redirect.headers()[LOCATION].is_sensitive());
    assert_eq!(started.redirect.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(started.redirect.headers()[REFERRER_POLICY], "no-referrer");
    assert_eq!(
        param(&query, "tenant"),
        Some("7"),
        "the endpoint's query kept"
    );
    assert_eq!(param(&query, "response_type"), Some("code"));
    assert_eq!(param(&query, "client_id"), Some("client-1"));
    assert_eq!(
        param(&query, "redirect_uri"),
        Some("https://auth.example.com/login/oidc/callback")
    );
    assert_eq!(param(&query, "scope"), Some("openid email profile"));
    assert_eq!(param(&query, "state"), Some(secrets.state.expose_secret()));
    assert_eq!(param(&query, "nonce"), Some(secrets.nonce.expose_secret()));
    let challenge = secrets.verifier.challenge().as_base64url();
    assert_eq!(param(&query, "code_challenge"), Some(challenge.as_str()));
    assert_eq!(param(&query, "code_challenge_method"), Some("S256"));
    assert_eq!(param(&query, "prompt"), None);

    assert_eq!(started.expires_at, T0 + 600);
    assert_eq!(
        started.key,
        params::store_key("oidc", "state", secrets.state.expose_secret())
    );
    let pending: PendingLogin = params::decode(started.value).unwrap();
    assert_eq!(pending.transaction, request.transaction.as_str());
    assert_eq!(pending.nonce, secrets.nonce.expose_secret());
    assert_eq!(pending.verifier, secrets.verifier.secret());
    assert_eq!(pending.created, T0);
}

#[test]
fn google_start_adds_its_parameters() {
    let ours = Issuer::parse("https://auth.example.com").unwrap();
    let config = UpstreamConfig::google("client-1", ClientSecret::new("s"), &ours)
        .hosted_domains(["example.com"]);
    let metadata = UpstreamMetadata::from_json(
        config.issuer(),
        br#"{"issuer":"https://accounts.google.com",
            "authorization_endpoint":"https://accounts.google.com/o/oauth2/v2/auth",
            "token_endpoint":"https://oauth2.googleapis.com/token",
            "jwks_uri":"https://www.googleapis.com/oauth2/v3/certs"}"#,
    )
    .unwrap();
    let flow = UpstreamFlow::new(config, metadata).unwrap();
    let mut request = login_request();
    request.force_login = true;
    request.login_hint = Some("alice@example.com".into());
    let query = begin(&flow, &request).query;
    assert_eq!(param(&query, "access_type"), Some("online"));
    assert_eq!(param(&query, "prompt"), Some("select_account"));
    assert_eq!(param(&query, "max_age"), Some("0"));
    assert_eq!(param(&query, "hd"), Some("example.com"));
    assert_eq!(param(&query, "login_hint"), Some("alice@example.com"));
}

#[test]
fn only_a_get_at_the_callback_path_is_a_callback() {
    let flow = flow();
    assert!(flow.reject_route(&callback("state=x")).is_none());
    let elsewhere = Request::get("https://auth.example.com/login/oidc/other")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(
        flow.reject_route(&elsewhere).unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let post = Request::post("https://auth.example.com/login/oidc/callback")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(
        flow.reject_route(&post).unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn callback_resumes_the_started_login() {
    let flow = flow();
    let request = login_request();
    let begun = begin(&flow, &request);
    let state = begun.secrets.state.expose_secret();
    let (params, key) = flow
        .callback_params(&callback(&format!("state={state}&code=abc&iss={IDP}")))
        .unwrap();
    assert_eq!(key, begun.started.key);
    let resumed = flow
        .resume(&params, Some(begun.started.value), T0 + 5)
        .unwrap();
    assert_eq!(resumed.transaction, request.transaction);
    assert_eq!(resumed.code, "abc");
    assert_eq!(resumed.verifier.secret(), begun.secrets.verifier.secret());
    assert_eq!(resumed.pending.nonce, begun.secrets.nonce.expose_secret());
}

#[test]
fn attack_callback_without_state_or_with_a_repeated_state_is_refused() {
    let flow = flow();
    assert!(matches!(
        flow.callback_params(&callback("code=abc")),
        Err(Refusal::UnknownState)
    ));
    assert!(matches!(
        flow.callback_params(&callback("state=a&code=abc&state=b")),
        Err(Refusal::BadRequest)
    ));
}

#[test]
fn attack_replayed_or_unknown_state_is_refused() {
    let flow = flow();
    let (params, _) = flow
        .callback_params(&callback("state=guess&code=abc"))
        .unwrap();
    // The store had nothing under the state (never issued, expired, or taken already).
    assert!(matches!(
        flow.resume(&params, None, T0),
        Err(Refusal::UnknownState)
    ));
    assert!(matches!(
        flow.resume(&params, Some(b"garbage".to_vec()), T0),
        Err(Refusal::UnknownState)
    ));
}

#[test]
fn attack_state_kept_past_its_lifetime_is_refused() {
    let flow = flow();
    let begun = begin(&flow, &login_request());
    let state = begun.secrets.state.expose_secret();
    let (params, _) = flow
        .callback_params(&callback(&format!("state={state}&code=abc")))
        .unwrap();
    assert!(matches!(
        flow.resume(&params, Some(begun.started.value), T0 + 601),
        Err(Refusal::UnknownState)
    ));
}

#[test]
fn attack_mix_up_callback_from_another_issuer_is_refused() {
    let flow = flow();
    let begun = begin(&flow, &login_request());
    let state = begun.secrets.state.expose_secret();
    let (params, _) = flow
        .callback_params(&callback(&format!(
            "state={state}&code=abc&iss=https://evil.example"
        )))
        .unwrap();
    assert!(matches!(
        flow.resume(&params, Some(begun.started.value), T0),
        Err(Refusal::IssuerMismatch)
    ));
}

#[test]
fn attack_callback_without_iss_is_refused_when_the_upstream_sends_it() {
    let flow = UpstreamFlow::new(
        config(),
        metadata(&serde_json::json!({"authorization_response_iss_parameter_supported": true})),
    )
    .unwrap();
    let begun = begin(&flow, &login_request());
    let state = begun.secrets.state.expose_secret();
    let (params, _) = flow
        .callback_params(&callback(&format!("state={state}&code=abc")))
        .unwrap();
    assert!(matches!(
        flow.resume(&params, Some(begun.started.value), T0),
        Err(Refusal::IssuerMismatch)
    ));
}

#[test]
fn upstream_error_or_missing_code_is_refused() {
    let flow = flow();
    for (query, denied) in [("error=access_denied&code=abc", true), ("", false)] {
        let begun = begin(&flow, &login_request());
        let state = begun.secrets.state.expose_secret();
        let (params, _) = flow
            .callback_params(&callback(&format!("state={state}&{query}")))
            .unwrap();
        let refusal = flow
            .resume(&params, Some(begun.started.value), T0)
            .err()
            .unwrap();
        if denied {
            assert!(matches!(refusal, Refusal::UpstreamDenied));
        } else {
            assert!(matches!(refusal, Refusal::MissingCode));
        }
    }
}

#[test]
fn token_request_redeems_the_code_with_the_verifier_and_basic_auth() {
    let flow = flow();
    let verifier = CodeVerifier::generate(&SystemRandom::new()).unwrap();
    let request = flow.token_request("the code", &verifier).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://idp.example/token");
    assert_eq!(
        request.headers()[CONTENT_TYPE],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(request.headers()[ACCEPT], "application/json");
    let authorization = &request.headers()[AUTHORIZATION];
    assert!(authorization.is_sensitive());
    // RFC 6749 §2.3.1: form-urlencoded before base64.
    let expected = STANDARD.encode("client-1:s3cret%3A%2B%2F+%C3%A9");
    assert_eq!(authorization, format!("Basic {expected}").as_str());
    let form: Vec<(String, String)> = form_urlencoded::parse(request.body())
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), "the code".into()),
            (
                "redirect_uri".into(),
                "https://auth.example.com/login/oidc/callback".into()
            ),
            ("code_verifier".into(), verifier.secret().to_owned()),
        ]
    );
}

#[test]
fn token_request_puts_the_secret_in_the_form_for_client_secret_post() {
    let flow = UpstreamFlow::new(
        config(),
        metadata(
            &serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}),
        ),
    )
    .unwrap();
    let verifier = CodeVerifier::generate(&SystemRandom::new()).unwrap();
    let request = flow.token_request("c", &verifier).unwrap();
    assert!(request.headers().get(AUTHORIZATION).is_none());
    let form: Vec<(String, String)> = form_urlencoded::parse(request.body())
        .into_owned()
        .collect();
    assert!(form.contains(&("client_id".into(), "client-1".into())));
    assert!(form.contains(&("client_secret".into(), "s3cret:+/ é".into())));
}

#[test]
fn an_upstream_without_client_secret_auth_is_refused() {
    let refused = UpstreamFlow::new(
        config(),
        metadata(
            &serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
        ),
    );
    assert!(matches!(refused, Err(UpstreamError::Discovery(_))));
}

#[test]
fn metadata_of_another_issuer_is_refused() {
    let other = Issuer::parse("https://other.example").unwrap();
    let metadata = UpstreamMetadata::from_json(
        &other,
        br#"{"issuer":"https://other.example","authorization_endpoint":"https://other.example/a",
            "token_endpoint":"https://other.example/t","jwks_uri":"https://other.example/j"}"#,
    )
    .unwrap();
    assert!(matches!(
        UpstreamFlow::new(config(), metadata),
        Err(UpstreamError::Config(_))
    ));
}

#[test]
fn token_response_yields_the_id_token() {
    let flow = flow();
    let id_token = flow
        .read_token_response(&answer(
            StatusCode::OK,
            r#"{"access_token":"at","token_type":"Bearer","id_token":"a.b.c"}"#,
        ))
        .unwrap();
    assert_eq!(id_token.as_str(), "a.b.c");
}

#[test]
fn attack_token_endpoint_error_is_refused() {
    let flow = flow();
    let refusal = flow
        .read_token_response(&answer(
            StatusCode::BAD_REQUEST,
            // An error answer carrying an ID token is still an error.
            r#"{"error":"invalid_grant","id_token":"a.b.c"}"#,
        ))
        .err()
        .unwrap();
    assert!(matches!(refusal, Refusal::TokenEndpoint));
    assert_eq!(refusal.reason(), "token_exchange_failed");
    assert_eq!(flow.refuse(&refusal).status(), StatusCode::BAD_GATEWAY);
}

#[test]
fn attack_token_response_without_an_id_token_is_refused() {
    let flow = flow();
    for body in [r#"{"access_token":"at"}"#, "not json", r#"{"id_token":7}"#] {
        assert!(
            matches!(
                flow.read_token_response(&answer(StatusCode::OK, body)),
                Err(Refusal::TokenEndpoint)
            ),
            "{body}"
        );
    }
}
