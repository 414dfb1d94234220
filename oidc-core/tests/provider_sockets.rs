//! The whole flow over real sockets with hyper, as an MCP client would run it: dynamic
//! registration → discovery → authorize → login → consent → code → token → userinfo →
//! refresh rotation → reuse detection → revocation, with the access token verified by
//! `jwks_verify` against the JWKS fetched over HTTP.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jwks_verify::{ErrorKind, Policy, TypPolicy, Verifier};
use oidc_core::provider::{Provider, RateLimits};
use oidc_core::store::SqliteStore;
use provider_common::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn location(&self) -> String {
        self.headers["location"].to_str().unwrap().to_owned()
    }
}

impl Http {
    /// An absolute URL for `target` (absolute already, or a path on the server).
    fn url(&self, target: &str) -> String {
        if target.starts_with("http") {
            target.to_owned()
        } else {
            format!("{}{target}", self.base)
        }
    }

    async fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(self.url(target));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn get(&self, target: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, target, headers, String::new()).await
    }

    async fn post_form(
        &self,
        target: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send(Method::POST, target, &all, form(pairs)).await
    }
}

/// Serves `provider` on `listener`, putting each connection's peer address into the
/// request extensions as a real server binary does.
fn serve(listener: TcpListener, provider: Provider) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let provider = provider.clone();
            tokio::spawn(async move {
                let service = service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert::<SocketAddr>(peer);
                    let provider = provider.clone();
                    async move { Ok::<_, Infallible>(provider.oneshot(request).await.unwrap()) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

struct Discovered {
    issuer: String,
    authorization: String,
    token: String,
    userinfo: String,
    revocation: String,
    registration: String,
    jwks: String,
}

/// Authorize → login → consent → code → token, checking the front-channel answers.
async fn authorize_and_redeem(
    http: &Http,
    d: &Discovered,
    client_id: &str,
    redirect: &str,
) -> Value {
    let pkce = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", "openid email profile memories:read"),
        ("state", "xyz"),
        ("nonce", "nonce-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("ui_locales", "en"),
    ];
    let authorize = http
        .get(&format!("{}?{}", d.authorization, form(&params)), &[])
        .await;
    assert_eq!(authorize.status, StatusCode::FOUND);
    let consent = http.get(&authorize.location(), &[]).await;
    assert_eq!(consent.status, StatusCode::OK);
    let page = TestResponse {
        status: consent.status,
        headers: consent.headers.clone(),
        body: consent.body.clone(),
    };
    let (tx, csrf) = consent_fields(&page);
    let approved = http
        .post_form(
            "/consent",
            &[("tx", &tx), ("csrf", &csrf), ("decision", "approve")],
            &[("origin", &d.issuer)],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    let location = approved.location();
    assert!(location.starts_with(redirect));
    let callback = query_params(&location);
    assert_eq!(callback["iss"], d.issuer, "RFC 9207: the client checks iss");
    assert_eq!(callback["state"], "xyz");

    let token = http
        .post_form(
            &d.token,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &callback["code"]),
                ("redirect_uri", redirect),
                ("code_verifier", &pkce.verifier),
                ("resource", RESOURCE),
            ],
            &[],
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    assert_eq!(token.headers["cache-control"], "no-store");
    token.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_over_real_sockets() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("provider.db")).unwrap());
    let mut config = base_config(&issuer);
    config.rate_limits = RateLimits::default();
    let provider = Provider::builder(config, store)
        .authenticator(TestLogin::new("test", "/login/test"))
        .build()
        .await
        .unwrap();
    serve(listener, provider);
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: issuer.clone(),
    };

    // Discovery, as an MCP client tries it first.
    let metadata = http
        .get("/.well-known/oauth-authorization-server", &[])
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    let doc = metadata.json();
    assert_eq!(
        doc["issuer"],
        issuer.as_str(),
        "issuer equals the URL it came from"
    );
    let s = |field: &str| doc[field].as_str().unwrap().to_owned();
    let d = Discovered {
        issuer: s("issuer"),
        authorization: s("authorization_endpoint"),
        token: s("token_endpoint"),
        userinfo: s("userinfo_endpoint"),
        revocation: s("revocation_endpoint"),
        registration: s("registration_endpoint"),
        jwks: s("jwks_uri"),
    };

    // Dynamic registration of a public client.
    let redirect = "http://127.0.0.1:9/callback";
    let registration = http
        .send(
            Method::POST,
            &d.registration,
            &[("content-type", "application/json")],
            json!({
                "redirect_uris": [redirect],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "Socket client",
                "application_type": "native",
            })
            .to_string(),
        )
        .await;
    assert_eq!(registration.status, StatusCode::CREATED);
    let client_id = registration.json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let tokens = authorize_and_redeem(&http, &d, &client_id, redirect).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    // The access token verifies with jwks_verify against the JWKS fetched over HTTP; the
    // ID token does not pass as an access token.
    let jwks = http.get(&d.jwks, &[]).await;
    assert!(
        jwks.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let verifier = Verifier::builder(Policy::new(&issuer, RESOURCE).typ(TypPolicy::AccessToken))
        .static_jwks(&jwks.body)
        .build()
        .unwrap();
    let verified = verifier
        .verify::<jwks_verify::StandardClaims>(access)
        .await
        .unwrap();
    assert_eq!(verified.sub.as_deref(), Some(SUBJECT));
    assert_eq!(verified.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(
        verifier
            .verify::<jwks_verify::StandardClaims>(id_token)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::WrongType
    );
    assert_eq!(jwt_part(id_token, 1)["nonce"], "nonce-1");

    // Userinfo.
    let bearer = format!("Bearer {access}");
    let userinfo = http.get(&d.userinfo, &[("authorization", &bearer)]).await;
    assert_eq!(userinfo.status, StatusCode::OK);
    assert_eq!(userinfo.json()["sub"], SUBJECT);
    assert_eq!(userinfo.json()["email"], "alice@example.com");

    // Refresh rotation.
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let http = &http;
        let d = &d;
        let client_id = client_id.clone();
        async move {
            http.post_form(
                &d.token,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                    ("resource", RESOURCE),
                ],
                &[],
            )
            .await
        }
    };
    let rotated = refresh(first_refresh.clone()).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let rotated = rotated.json();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let second_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert!(
        verifier
            .verify::<jwks_verify::StandardClaims>(&second_access)
            .await
            .is_ok()
    );

    // Reuse detection: the old refresh token revokes the family.
    let reuse = refresh(first_refresh).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        refresh(second_refresh).await.json()["error"],
        "invalid_grant"
    );
    let userinfo = http
        .get(
            &d.userinfo,
            &[("authorization", &format!("Bearer {second_access}"))],
        )
        .await;
    assert_eq!(userinfo.status, StatusCode::UNAUTHORIZED);

    // Revocation of a fresh grant's refresh token.
    let tokens = authorize_and_redeem(&http, &d, &client_id, redirect).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let revoked = http
        .post_form(
            &d.revocation,
            &[("token", &refresh_token), ("client_id", &client_id)],
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        refresh(refresh_token).await.json()["error"],
        "invalid_grant"
    );
    let userinfo = http
        .get(
            &d.userinfo,
            &[(
                "authorization",
                &format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
            )],
        )
        .await;
    assert_eq!(userinfo.status, StatusCode::UNAUTHORIZED);
}
