//! Federation against a real upstream OpenID provider running in the test (see
//! `login_common::TestIdp`): start → the IdP's authorization endpoint → our callback →
//! token exchange → ID token verification → admission rules.
#![cfg(feature = "hyper-client")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod login_common;

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use http::{Request, StatusCode};
use oidc_core::authn::{
    AuthenticatedUser, Authenticator, LoginMethod, LoginOutcome, LoginRequest, TransactionId,
    federated_subject,
};
use oidc_core::login::{
    ClientSecret, GOOGLE_LEGACY_ISSUER, Upstream, UpstreamConfig, UpstreamError, UpstreamFlavor,
};
use oidc_core::types::Issuer;
use serde_json::json;

use login_common::event_log::EventLog;
use login_common::{
    IdpBehaviour, IssParam, MemoryStateStore, TestIdp, b64url, loopback_client, query_map, unix_now,
};

const OUR_ISSUER: &str = "https://op.example";

fn config(idp: &TestIdp) -> UpstreamConfig {
    UpstreamConfig::new(
        Issuer::parse(&idp.issuer).unwrap(),
        idp.client_id.clone(),
        ClientSecret::new(idp.client_secret.clone()),
        &Issuer::parse(OUR_ISSUER).unwrap(),
    )
}

async fn upstream(_idp: &TestIdp, config: UpstreamConfig) -> (Upstream, Arc<MemoryStateStore>) {
    let store = MemoryStateStore::new();
    let upstream = Upstream::discover(config, loopback_client(), store.clone())
        .await
        .unwrap();
    (upstream, store)
}

/// A started login: the transaction and the callback request the IdP redirected to.
struct Started {
    transaction: TransactionId,
    authorize_url: url::Url,
    callback: Request<Bytes>,
}

async fn start(upstream: &Upstream, request: LoginRequest, now: u64) -> Started {
    let transaction = request.transaction.clone();
    let response = upstream.start(request, now).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["location"].is_sensitive(),
        "the location carries the upstream state"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let authorize_url = url::Url::parse(&location).unwrap();
    // Follow the redirect to the IdP like a browser; it answers with a redirect back.
    let at_idp = loopback_client().get(&location, "text/html").await.unwrap();
    assert_eq!(at_idp.status, StatusCode::FOUND, "{:?}", at_idp.body);
    let back = at_idp.headers["location"].to_str().unwrap();
    assert!(back.starts_with(&format!("{OUR_ISSUER}/login/")), "{back}");
    let back = url::Url::parse(back).unwrap();
    let path_and_query = format!("{}?{}", back.path(), back.query().unwrap_or_default());
    let callback = Request::get(path_and_query).body(Bytes::new()).unwrap();
    Started {
        transaction,
        authorize_url,
        callback,
    }
}

fn new_request() -> LoginRequest {
    LoginRequest::new(
        TransactionId::generate(&SystemRandom::new()).unwrap(),
        "Test client",
    )
}

async fn login(upstream: &Upstream) -> (Started, LoginOutcome) {
    let now = unix_now();
    let started = start(upstream, new_request(), now).await;
    let outcome = upstream.handle(clone_request(&started.callback), now).await;
    (started, outcome)
}

fn clone_request(request: &Request<Bytes>) -> Request<Bytes> {
    Request::get(request.uri().clone())
        .body(request.body().clone())
        .unwrap()
}

fn authenticated(outcome: LoginOutcome) -> (TransactionId, AuthenticatedUser) {
    match outcome {
        LoginOutcome::Authenticated { transaction, user } => (transaction, user),
        LoginOutcome::Respond(response) => panic!(
            "expected Authenticated, got {} {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        ),
    }
}

/// The outcome is an error page (never a redirect), with this status.
fn refused(outcome: &LoginOutcome, status: StatusCode) {
    match outcome {
        LoginOutcome::Respond(response) => {
            assert_eq!(response.status(), status);
            assert!(
                response.headers().get("location").is_none(),
                "never a redirect"
            );
            assert_eq!(
                response.headers()["content-type"],
                "text/html; charset=utf-8"
            );
        }
        LoginOutcome::Authenticated { .. } => panic!("expected a refusal"),
    }
}

#[tokio::test]
async fn full_login_authenticates() {
    let idp = TestIdp::start().await;
    let (upstream, store) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    assert_eq!(upstream.name(), "oidc");
    assert_eq!(upstream.path_prefix(), "/login/oidc");
    assert_eq!(
        upstream.callback_url(),
        "https://op.example/login/oidc/callback"
    );
    let (log, _guard) = EventLog::install();

    let (started, outcome) = login(&upstream).await;
    let (transaction, user) = authenticated(outcome);
    assert_eq!(transaction, started.transaction);
    assert_eq!(user.subject, federated_subject(&idp.issuer, "248289761001"));
    assert_eq!(user.email.as_deref(), Some("jane@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Jane Doe"));
    assert_eq!(
        user.method,
        LoginMethod::Upstream {
            issuer: idp.issuer.clone()
        }
    );
    assert!(user.auth_time.abs_diff(unix_now()) < 60);
    assert_eq!(store.len(), 0, "the state was taken");
    let succeeded = log.named("login_succeeded");
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["method"], "oidc");
    assert_eq!(succeeded[0]["subject"], user.subject.as_str());
}

#[tokio::test]
async fn authorization_request_carries_state_nonce_pkce_and_the_callback() {
    let idp = TestIdp::start().await;
    let (upstream, store) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let mut request = new_request();
    request.login_hint = Some("jane@example.com".into());
    let started = start(&upstream, request, unix_now()).await;
    let params = query_map(started.authorize_url.query().unwrap());
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], idp.client_id);
    assert_eq!(
        params["redirect_uri"],
        "https://op.example/login/oidc/callback"
    );
    assert_eq!(params["scope"], "openid email profile");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["login_hint"], "jane@example.com");
    assert_eq!(params["state"].len(), 43);
    assert_eq!(params["nonce"].len(), 43);
    assert_ne!(params["state"], params["nonce"]);
    assert!(!params.contains_key("access_type"), "google-only parameter");
    assert!(!params.contains_key("prompt"));
    // The store holds neither the state (only its hash) nor anything keyed by it in clear.
    assert_eq!(store.len(), 1);
    assert!(!store.keys()[0].contains(&params["state"]));
}

#[tokio::test]
async fn pkce_s256_sent_and_verifier_delivered_to_the_token_endpoint() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (started, outcome) = login(&upstream).await;
    authenticated(outcome);
    let params = query_map(started.authorize_url.query().unwrap());
    assert_eq!(params["code_challenge_method"], "S256");
    let token_requests = idp.token_requests();
    assert_eq!(token_requests.len(), 1);
    let seen = &token_requests[0];
    let verifier = &seen.form["code_verifier"];
    assert_eq!(verifier.len(), 43);
    assert_eq!(
        b64url(digest(&SHA256, verifier.as_bytes()).as_ref()),
        params["code_challenge"],
        "the verifier hashes to the challenge sent upstream"
    );
    assert!(seen.pkce_ok);
    assert_eq!(
        seen.form["redirect_uri"],
        "https://op.example/login/oidc/callback"
    );
    // Both methods advertised: HTTP Basic is used, and the secret is not in the form.
    assert_eq!(
        seen.basic,
        Some((idp.client_id.clone(), idp.client_secret.clone()))
    );
    assert!(!seen.form.contains_key("client_secret"));
}

#[tokio::test]
async fn client_secret_post_when_basic_is_not_advertised() {
    let idp = TestIdp::start_with(IdpBehaviour {
        auth_methods: vec!["client_secret_post".into()],
        ..IdpBehaviour::default()
    })
    .await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (_, outcome) = login(&upstream).await;
    authenticated(outcome);
    let seen = &idp.token_requests()[0];
    assert!(seen.basic.is_none());
    assert_eq!(seen.form["client_secret"], idp.client_secret);
}

#[tokio::test]
async fn state_replay_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    let (started, outcome) = login(&upstream).await;
    authenticated(outcome);
    let replay = upstream
        .handle(clone_request(&started.callback), unix_now())
        .await;
    refused(&replay, StatusCode::BAD_REQUEST);
    assert_eq!(log.refusals(), ["unknown_state"]);
    assert_eq!(
        idp.token_requests().len(),
        1,
        "the replay never reached upstream"
    );
}

#[tokio::test]
async fn unknown_state_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    let now = unix_now();
    for uri in [
        "/login/oidc/callback?code=abc&state=never-issued",
        "/login/oidc/callback?code=abc",
        "/login/oidc/callback",
    ] {
        let outcome = upstream
            .handle(Request::get(uri).body(Bytes::new()).unwrap(), now)
            .await;
        refused(&outcome, StatusCode::BAD_REQUEST);
    }
    assert_eq!(log.refusals(), ["unknown_state"; 3]);
    assert!(idp.token_requests().is_empty());
}

#[tokio::test]
async fn expired_state_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let now = unix_now();
    let started = start(&upstream, new_request(), now).await;
    let outcome = upstream.handle(started.callback, now + 601).await;
    refused(&outcome, StatusCode::BAD_REQUEST);
    assert!(idp.token_requests().is_empty());
}

#[tokio::test]
async fn duplicated_callback_parameters_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let now = unix_now();
    let started = start(&upstream, new_request(), now).await;
    let uri = format!("{}&code=attacker-code", started.callback.uri());
    let outcome = upstream
        .handle(Request::get(uri).body(Bytes::new()).unwrap(), now)
        .await;
    refused(&outcome, StatusCode::BAD_REQUEST);
    assert!(idp.token_requests().is_empty());
}

#[tokio::test]
async fn wrong_nonce_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    idp.behave(|b| {
        b.claim_overrides
            .insert("nonce".into(), json!("some-other-nonce"));
    });
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_REQUEST);
    idp.behave(|b| {
        b.claim_overrides.insert("nonce".into(), json!(null));
    });
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_REQUEST);
    assert_eq!(log.refusals(), ["nonce_mismatch", "nonce_mismatch"]);
}

#[tokio::test]
async fn id_token_from_another_audience_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    for aud in [json!("another-client"), json!(["another-client"])] {
        idp.behave(|b| {
            b.claim_overrides.insert("aud".into(), aud.clone());
        });
        let (_, outcome) = login(&upstream).await;
        refused(&outcome, StatusCode::BAD_GATEWAY);
    }
    // Our client among others is not enough: the other audience is not trusted.
    idp.behave(|b| {
        b.claim_overrides.insert(
            "aud".into(),
            json!(["our-client.apps.test", "another-client"]),
        );
        b.claim_overrides
            .insert("azp".into(), json!("our-client.apps.test"));
    });
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_GATEWAY);
    assert_eq!(log.refusals(), ["invalid_id_token"; 3]);
}

#[tokio::test]
async fn attack_oversized_upstream_sub_is_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    // 255 bytes is the longest `sub` accepted (OpenID Connect Core §2 caps it there too).
    let longest = "1".repeat(255);
    idp.behave(|b| b.sub = longest.clone());
    let (_, user) = authenticated(login(&upstream).await.1);
    assert_eq!(user.subject, federated_subject(&idp.issuer, &longest));

    idp.behave(|b| b.sub = "1".repeat(256));
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_GATEWAY);
    assert_eq!(log.refusals(), ["invalid_id_token"]);
    assert!(
        log.events()
            .iter()
            .any(|e| e.get("detail").map(String::as_str) == Some("sub")),
        "refused for its sub: {}",
        log.all_text()
    );
}

#[tokio::test]
async fn id_tokens_over_8_kib_are_accepted_up_to_16_kib() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    // About 13 KiB once encoded: over jwks-verify's 8 KiB default, under our 16 KiB.
    idp.behave(|b| {
        b.claim_overrides
            .insert("padding".into(), json!("x".repeat(9_000)));
    });
    authenticated(login(&upstream).await.1);

    // About 18 KiB: refused before it is decoded.
    idp.behave(|b| {
        b.claim_overrides
            .insert("padding".into(), json!("x".repeat(13_000)));
    });
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_GATEWAY);
    assert_eq!(log.refusals(), ["invalid_id_token"]);
    assert!(
        log.events()
            .iter()
            .any(|e| e.get("detail").map(String::as_str) == Some("too_large")),
        "{}",
        log.all_text()
    );
}

#[tokio::test]
async fn azp_of_another_client_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    idp.behave(|b| {
        b.claim_overrides
            .insert("azp".into(), json!("another-client"));
    });
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::BAD_GATEWAY);
    idp.behave(|b| {
        b.claim_overrides
            .insert("azp".into(), json!("our-client.apps.test"));
    });
    let (_, outcome) = login(&upstream).await;
    authenticated(outcome);
}

#[tokio::test]
async fn wrong_issuer_refused() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    for iss in [
        json!("https://evil.example"),
        json!(format!("{}/", idp.issuer)),
        json!(GOOGLE_LEGACY_ISSUER),
    ] {
        idp.behave(|b| {
            b.claim_overrides.insert("iss".into(), iss.clone());
        });
        let (_, outcome) = login(&upstream).await;
        refused(&outcome, StatusCode::BAD_GATEWAY);
    }
    assert_eq!(log.refusals(), ["invalid_id_token"; 3]);
}

#[tokio::test]
async fn google_legacy_issuer_spelling_accepted_only_for_google() {
    let idp = TestIdp::start().await;
    idp.behave(|b| {
        b.claim_overrides
            .insert("iss".into(), json!(GOOGLE_LEGACY_ISSUER));
    });

    // A Google-flavoured upstream accepts `accounts.google.com` and normalises it, so the
    // subject is the same whichever spelling the token used.
    let google = config(&idp)
        .flavor(UpstreamFlavor::Google)
        .allow_any_user(true);
    let (google, _) = upstream(&idp, google).await;
    assert_eq!(google.name(), "google");
    let (_, outcome) = login(&google).await;
    let (_, legacy_user) = authenticated(outcome);
    idp.behave(|b| b.claim_overrides.clear());
    let (_, outcome) = login(&google).await;
    let (_, modern_user) = authenticated(outcome);
    assert_eq!(legacy_user.subject, modern_user.subject);
    assert_eq!(
        legacy_user.subject,
        federated_subject(&idp.issuer, "248289761001")
    );

    // Any other upstream refuses it.
    idp.behave(|b| {
        b.claim_overrides
            .insert("iss".into(), json!(GOOGLE_LEGACY_ISSUER));
    });
    let (generic, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (_, outcome) = login(&generic).await;
    refused(&outcome, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn google_flavour_sends_online_access_select_account_and_the_hd_hint() {
    let idp = TestIdp::start().await;
    let config = config(&idp)
        .flavor(UpstreamFlavor::Google)
        .hosted_domains(["example.com"]);
    let (upstream, _) = upstream(&idp, config).await;
    let started = start(&upstream, new_request(), unix_now()).await;
    let params = query_map(started.authorize_url.query().unwrap());
    assert_eq!(params["access_type"], "online");
    assert_eq!(params["prompt"], "select_account");
    assert_eq!(params["hd"], "example.com");
    assert_eq!(params["code_challenge_method"], "S256");

    let mut forced = new_request();
    forced.force_login = true;
    let started = start(&upstream, forced, unix_now()).await;
    let params = query_map(started.authorize_url.query().unwrap());
    assert_eq!(params["max_age"], "0");
}

#[tokio::test]
async fn generic_flavour_forces_login_with_prompt_login() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let mut forced = new_request();
    forced.force_login = true;
    let started = start(&upstream, forced, unix_now()).await;
    let params = query_map(started.authorize_url.query().unwrap());
    assert_eq!(params["prompt"], "login");
}

#[tokio::test]
async fn email_verified_false_gives_no_email() {
    let idp = TestIdp::start_with(IdpBehaviour {
        email_verified: json!(false),
        ..IdpBehaviour::default()
    })
    .await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (_, outcome) = login(&upstream).await;
    let (_, user) = authenticated(outcome);
    assert_eq!(user.email, None);
    assert!(!user.email_verified);

    idp.behave(|b| b.email_verified = json!(null));
    let (_, outcome) = login(&upstream).await;
    let (_, user) = authenticated(outcome);
    assert_eq!(user.email, None, "a missing email_verified is not true");

    idp.behave(|b| b.email_verified = json!("true"));
    let (_, outcome) = login(&upstream).await;
    let (_, user) = authenticated(outcome);
    assert_eq!(user.email.as_deref(), Some("jane@example.com"));
}

#[tokio::test]
async fn email_verified_false_refused_with_allow_list() {
    let idp = TestIdp::start_with(IdpBehaviour {
        email_verified: json!(false),
        ..IdpBehaviour::default()
    })
    .await;
    let (log, _guard) = EventLog::install();
    let (by_email, _) = upstream(&idp, config(&idp).allowed_emails(["jane@example.com"])).await;
    let (_, outcome) = login(&by_email).await;
    refused(&outcome, StatusCode::FORBIDDEN);
    let (by_domain, _) = upstream(&idp, config(&idp).allowed_email_domains(["example.com"])).await;
    let (_, outcome) = login(&by_domain).await;
    refused(&outcome, StatusCode::FORBIDDEN);
    assert_eq!(log.refusals(), ["email_not_verified"; 2]);
}

#[tokio::test]
async fn email_not_in_allow_list_refused() {
    let idp = TestIdp::start_with(IdpBehaviour {
        email: Some("Mallory@Evil.example".into()),
        ..IdpBehaviour::default()
    })
    .await;
    let (log, _guard) = EventLog::install();
    let config = config(&idp)
        .allowed_emails(["jane@example.com"])
        .allowed_email_domains(["example.com"]);
    let (upstream, _) = upstream(&idp, config).await;
    let (_, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::FORBIDDEN);
    assert_eq!(log.refusals(), ["email_not_allowed"]);

    // A listed address, compared without regard to case, and a listed domain both pass.
    idp.behave(|b| b.email = Some("JANE@example.com".into()));
    authenticated(login(&upstream).await.1);
    idp.behave(|b| b.email = Some("bob@example.com".into()));
    authenticated(login(&upstream).await.1);
    // A look-alike domain does not.
    idp.behave(|b| b.email = Some("bob@notexample.com".into()));
    refused(&login(&upstream).await.1, StatusCode::FORBIDDEN);
    idp.behave(|b| b.email = Some("bob@example.com.evil.example".into()));
    refused(&login(&upstream).await.1, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn hd_mismatch_refused_even_when_the_request_hint_matched() {
    let idp = TestIdp::start_with(IdpBehaviour {
        hd: Some("evil.example".into()),
        email: Some("jane@example.com".into()),
        ..IdpBehaviour::default()
    })
    .await;
    let (log, _guard) = EventLog::install();
    let config = config(&idp)
        .flavor(UpstreamFlavor::Google)
        .hosted_domains(["example.com"]);
    let (upstream, _) = upstream(&idp, config).await;
    let (started, outcome) = login(&upstream).await;
    // We asked for example.com, and the email even claims it, but the signed hd differs.
    assert_eq!(
        query_map(started.authorize_url.query().unwrap())["hd"],
        "example.com"
    );
    refused(&outcome, StatusCode::FORBIDDEN);
    // A consumer account (no hd at all) is refused too.
    idp.behave(|b| b.hd = None);
    refused(&login(&upstream).await.1, StatusCode::FORBIDDEN);
    assert_eq!(log.refusals(), ["hosted_domain_mismatch"; 2]);
    // The right hd passes.
    idp.behave(|b| b.hd = Some("example.com".into()));
    authenticated(login(&upstream).await.1);
}

#[tokio::test]
async fn mixup_iss_parameter_mismatch_refused() {
    let idp = TestIdp::start_with(IdpBehaviour {
        iss_param: IssParam::Value("https://attacker.example".into()),
        ..IdpBehaviour::default()
    })
    .await;
    let (log, _guard) = EventLog::install();
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    refused(&login(&upstream).await.1, StatusCode::BAD_REQUEST);
    // Advertised support makes a missing `iss` a refusal too.
    idp.behave(|b| b.iss_param = IssParam::Absent);
    refused(&login(&upstream).await.1, StatusCode::BAD_REQUEST);
    assert_eq!(log.refusals(), ["issuer_mismatch"; 2]);
    assert!(
        idp.token_requests().is_empty(),
        "the code was never sent to any token endpoint"
    );
}

#[tokio::test]
async fn missing_iss_parameter_accepted_when_not_advertised() {
    let idp = TestIdp::start_with(IdpBehaviour {
        iss_param: IssParam::Absent,
        advertise_iss_param: false,
        ..IdpBehaviour::default()
    })
    .await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    authenticated(login(&upstream).await.1);
    // Present but wrong is refused even without the advertisement.
    idp.behave(|b| b.iss_param = IssParam::Value("https://attacker.example".into()));
    refused(&login(&upstream).await.1, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn upstream_error_response_refused() {
    let idp = TestIdp::start_with(IdpBehaviour {
        authorize_error: Some("access_denied".into()),
        ..IdpBehaviour::default()
    })
    .await;
    let (log, _guard) = EventLog::install();
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    refused(&login(&upstream).await.1, StatusCode::FORBIDDEN);
    assert_eq!(log.refusals(), ["upstream_error"]);
}

#[tokio::test]
async fn subject_derived_from_iss_and_sub_stable_across_logins_not_from_email() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (_, first) = authenticated(login(&upstream).await.1);
    // Same upstream account, new email: same subject.
    idp.behave(|b| b.email = Some("jane.doe@example.org".into()));
    let (_, second) = authenticated(login(&upstream).await.1);
    assert_eq!(first.subject, second.subject);
    // Another account that takes over the first email: another subject.
    idp.behave(|b| {
        b.sub = "999999".into();
        b.email = Some("jane@example.com".into());
    });
    let (_, third) = authenticated(login(&upstream).await.1);
    assert_ne!(first.subject, third.subject);
    assert_eq!(third.subject, federated_subject(&idp.issuer, "999999"));
    assert_ne!(
        first.subject,
        federated_subject(&idp.issuer, "jane@example.com")
    );
    assert!(!first.subject.as_str().contains("248289761001"));
}

#[tokio::test]
async fn upstream_access_token_never_appears_in_the_outcome() {
    let idp = TestIdp::start().await;
    let (upstream, store) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let (log, _guard) = EventLog::install();
    let (started, outcome) = login(&upstream).await;
    let seen = idp.token_requests();
    let access_token = seen[0].access_token.clone().unwrap();
    let code = query_map(started.callback.uri().query().unwrap())["code"].clone();
    let debug = format!("{outcome:?}");
    assert!(matches!(outcome, LoginOutcome::Authenticated { .. }));
    assert!(!debug.contains(&access_token));
    assert!(!debug.contains("upstream-access-token"));
    // Nothing logged carries the access token, the code, the secret or the email.
    let logged = log.all_text();
    for secret in [
        access_token.as_str(),
        code.as_str(),
        idp.client_secret.as_str(),
        "jane@example.com",
    ] {
        assert!(!logged.contains(secret), "logged: {secret}");
    }
    assert_eq!(store.len(), 0);
}

#[tokio::test]
async fn nothing_secret_is_logged_on_refusal() {
    let idp = TestIdp::start_with(IdpBehaviour {
        email: Some("mallory@evil.example".into()),
        ..IdpBehaviour::default()
    })
    .await;
    let (upstream, _) = upstream(&idp, config(&idp).allowed_emails(["jane@example.com"])).await;
    let (log, _guard) = EventLog::install();
    let (started, outcome) = login(&upstream).await;
    refused(&outcome, StatusCode::FORBIDDEN);
    let code = query_map(started.callback.uri().query().unwrap())["code"].clone();
    let logged = log.all_text();
    assert!(!logged.contains("mallory@evil.example"));
    assert!(!logged.contains(&code));
    assert!(!logged.contains(idp.token_requests()[0].access_token.as_deref().unwrap()));
}

#[tokio::test]
async fn unrestricted_configuration_is_refused() {
    let idp = TestIdp::start().await;
    let result = Upstream::discover(config(&idp), loopback_client(), MemoryStateStore::new()).await;
    assert!(
        matches!(result, Err(UpstreamError::Config(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn discovery_is_refused_through_the_default_address_policy() {
    let idp = TestIdp::start().await;
    let client = oidc_core::outbound::OutboundClient::new(
        oidc_core::outbound::OutboundConfig::default().insecure_allow_http_to_loopback(),
    );
    let result = Upstream::discover(
        config(&idp).allow_any_user(true),
        client,
        MemoryStateStore::new(),
    )
    .await;
    assert!(
        matches!(result, Err(UpstreamError::Discovery(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn callback_paths_and_methods() {
    let idp = TestIdp::start().await;
    let (upstream, _) = upstream(&idp, config(&idp).allow_any_user(true)).await;
    let now = unix_now();
    let other = upstream
        .handle(
            Request::get("/login/oidc/elsewhere")
                .body(Bytes::new())
                .unwrap(),
            now,
        )
        .await;
    refused(&other, StatusCode::NOT_FOUND);
    let post = upstream
        .handle(
            Request::post("/login/oidc/callback")
                .body(Bytes::new())
                .unwrap(),
            now,
        )
        .await;
    refused(&post, StatusCode::METHOD_NOT_ALLOWED);
}
