//! The tower layer, first with `oneshot`, then behind a real hyper server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use jwks_verify::{
    BearerAuthLayer, Challenge, ErrorKind, ManualClock, Policy, StandardClaims, Verified, Verifier,
    insufficient_scope,
};
use tower::{ServiceBuilder, ServiceExt};

mod common;
use common::{AUDIENCE, ISSUER, JwksServer, Mode, TestKey, unix_now};

const NOW: u64 = 1_800_000_000;
const METADATA: &str = "https://mcp.example/.well-known/oauth-protected-resource/mcp";

fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("k1"))
}

fn verifier() -> Verifier {
    Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .static_jwks(common::jwks(&[key()]))
        .clock(ManualClock::at_unix(NOW))
        .build()
        .unwrap()
}

fn layer() -> BearerAuthLayer<StandardClaims> {
    BearerAuthLayer::new(verifier()).challenge(
        Challenge::new()
            .resource_metadata(METADATA)
            .scope("memories:read"),
    )
}

/// Echoes the verified subject, or 403 for a read-only token on POST.
async fn app(req: Request<Empty<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(verified) = req.extensions().get::<Verified<StandardClaims>>() else {
        return Ok(Response::builder()
            .status(500)
            .body(Full::from("no claims"))
            .unwrap());
    };
    if req.method() == Method::POST && !verified.has_scope("memories:write") {
        return Ok(insufficient_scope(
            &Challenge::new().resource_metadata(METADATA),
            "memories:write",
        ));
    }
    Ok(Response::new(Full::from(
        verified.sub.clone().unwrap_or_default(),
    )))
}

async fn call(req: Request<Empty<Bytes>>) -> Response<Full<Bytes>> {
    ServiceBuilder::new()
        .layer(layer())
        .service_fn(app)
        .oneshot(req)
        .await
        .unwrap()
}

fn get(auth: Option<&str>) -> Request<Empty<Bytes>> {
    let mut builder = Request::get("/mcp");
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    builder.body(Empty::new()).unwrap()
}

async fn body(response: Response<Full<Bytes>>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn valid_token_reaches_the_service_with_claims() {
    let response = call(get(Some(&format!("Bearer {}", key().token(NOW))))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "alice");
}

#[tokio::test]
async fn missing_token_gets_a_bare_challenge_with_resource_metadata() {
    let response = call(get(None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(r#"Bearer resource_metadata="{METADATA}", scope="memories:read""#)
    );
    assert_eq!(body(response).await, "");
}

#[tokio::test]
async fn other_schemes_count_as_missing() {
    let response = call(get(Some("Basic dXNlcjpwYXNz"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=")
    );
}

#[tokio::test]
async fn bad_token_gets_invalid_token_and_no_detail() {
    for token in [
        "garbage".to_owned(),
        key().token(NOW - 10_000),
        TestKey::generate("k1").token(NOW),
    ] {
        let response = call(get(Some(&format!("Bearer {token}")))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge,
            format!(
                r#"Bearer resource_metadata="{METADATA}", scope="memories:read", error="invalid_token""#
            )
        );
        assert!(!challenge.contains("expired") && !challenge.contains("description"));
        assert_eq!(body(response).await, "");
    }
}

#[tokio::test]
async fn several_authorization_headers_are_an_invalid_request() {
    let token = format!("Bearer {}", key().token(NOW));
    let req = Request::get("/mcp")
        .header("authorization", &token)
        .header("authorization", &token)
        .body(Empty::new())
        .unwrap();
    let response = call(req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_request""#
    );
}

#[tokio::test]
async fn token_in_query_string_is_never_used() {
    let req = Request::get(format!("/mcp?access_token={}", key().token(NOW)))
        .body(Empty::new())
        .unwrap();
    assert_eq!(call(req).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn read_only_token_cannot_write() {
    let req = Request::post("/mcp")
        .header("authorization", format!("Bearer {}", key().token(NOW)))
        .body(Empty::new())
        .unwrap();
    let response = call(req).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{METADATA}", scope="memories:write", error="insufficient_scope""#
        )
    );
}

#[tokio::test]
async fn preflight_passes_only_when_allowed() {
    let preflight = || {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/mcp")
            .header("origin", "https://chatgpt.com")
            .header("access-control-request-method", "POST")
            .body(Empty::new())
            .unwrap()
    };
    let echo = |_req: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("preflight")))
    };
    let closed = ServiceBuilder::new().layer(layer()).service_fn(echo);
    assert_eq!(
        closed.oneshot(preflight()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let open = ServiceBuilder::new()
        .layer(layer().allow_preflight(true))
        .service_fn(echo);
    let response = open.oneshot(preflight()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // An OPTIONS without the preflight header is an ordinary request and needs a token.
    let plain_options = Request::builder()
        .method(Method::OPTIONS)
        .uri("/mcp")
        .body(Empty::new())
        .unwrap();
    let open = ServiceBuilder::new()
        .layer(layer().allow_preflight(true))
        .service_fn(echo);
    assert_eq!(
        open.oneshot(plain_options).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn layer_counts_outcomes() {
    let v = verifier();
    let service = ServiceBuilder::new()
        .layer(BearerAuthLayer::<StandardClaims>::new(v.clone()))
        .service_fn(app);
    let good = format!("Bearer {}", key().token(NOW));
    for auth in [good.as_str(), good.as_str(), "Bearer x.y.z"] {
        let _ = service.clone().oneshot(get(Some(auth))).await.unwrap();
    }
    let m = v.metrics();
    assert_eq!(m.verified, 2);
    assert_eq!(m.token_cache_hits, 1);
    assert_eq!(m.rejected(ErrorKind::Malformed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_key_set_is_a_503_not_a_401() {
    let key = TestKey::generate("k1");
    let server = JwksServer::start(common::jwks(&[&key])).await;
    server.set_mode(Mode::Status(500));
    let v = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url(server.jwks_url())
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(BearerAuthLayer::<StandardClaims>::new(v))
        .service_fn(app);
    let response = service
        .oneshot(get(Some(&format!("Bearer {}", key.token(unix_now())))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
}

/// The layer behind a real hyper server, with keys from a real JWKS endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_behind_a_real_hyper_server() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;

    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(common::jwks(&[&key])).await;
    let verifier = Verifier::builder(Policy::new(ISSUER, AUDIENCE))
        .jwks_url(jwks.jwks_url())
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(BearerAuthLayer::<StandardClaims>::new(verifier))
        .service_fn(|req: Request<hyper::body::Incoming>| async move {
            let sub = req
                .extensions()
                .get::<Verified<StandardClaims>>()
                .and_then(|v| v.sub.clone())
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(sub)))
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let unauthenticated = client.get(uri.clone()).await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    let request = Request::get(uri)
        .header("authorization", format!("Bearer {}", key.token(unix_now())))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"alice");
}
