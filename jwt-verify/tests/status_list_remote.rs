//! Token Status Lists end to end: a real hyper server on loopback serves the JWKS and a
//! status list; the issuer revokes a token by flipping its bit, and the verifier (built-in
//! hyper client, system clock) refuses it within `max_age`.
#![cfg(all(feature = "status-list", feature = "hyper-client"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jwks_verify::status_list::StatusListConfig;
use jwks_verify::{ErrorKind, Policy, StandardClaims, Verifier};
use serde_json::json;
use tokio::net::TcpListener;

mod common;
use common::{AUDIENCE, TestKey, b64, unix_now};

const LIST_PATH: &str = "/statuslists/1";

/// The issuer's side: JWKS at `/jwks`, a status list token at [`LIST_PATH`].
#[derive(Clone)]
struct Issuer {
    addr: SocketAddr,
    key: Arc<TestKey>,
    statuses: Arc<Mutex<Vec<u8>>>,
    list_hits: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = Issuer {
            addr: listener.local_addr().unwrap(),
            key: Arc::new(TestKey::generate("k1")),
            statuses: Arc::new(Mutex::new(vec![0; 16])),
            list_hits: Arc::new(AtomicUsize::new(0)),
        };
        let handler = issuer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler.handle(&req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        issuer
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn list_uri(&self) -> String {
        format!("{}{LIST_PATH}", self.url())
    }

    fn handle(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        match req.uri().path() {
            "/jwks" => Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(common::jwks(&[&self.key]))))
                .unwrap(),
            LIST_PATH => {
                self.list_hits.fetch_add(1, Ordering::SeqCst);
                assert_eq!(req.headers()["accept"], "application/statuslist+jwt");
                Response::builder()
                    .header("content-type", "application/statuslist+jwt")
                    .body(Full::new(Bytes::from(self.list_token())))
                    .unwrap()
            }
            _ => Response::builder()
                .status(404)
                .body(Full::default())
                .unwrap(),
        }
    }

    fn list_token(&self) -> String {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&self.statuses.lock().unwrap()).unwrap();
        let lst = b64(&encoder.finish().unwrap());
        let now = unix_now();
        self.key.sign(
            &json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"}),
            &json!({
                "iss": self.url(), "sub": self.list_uri(), "iat": now, "exp": now + 3600,
                "ttl": 300, "status_list": {"bits": 1, "lst": lst},
            }),
        )
    }

    fn revoke(&self, index: usize) {
        self.statuses.lock().unwrap()[index / 8] |= 1 << (index % 8);
    }

    fn access_token(&self, index: u64) -> String {
        let now = unix_now();
        self.key.sign(
            &self.key.header(),
            &json!({
                "iss": self.url(), "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600,
                "status": {"status_list": {"idx": index, "uri": self.list_uri()}},
            }),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_within_max_age() {
    let issuer = Issuer::start().await;
    let max_age = Duration::from_secs(1);
    let verifier = Verifier::builder(Policy::new(issuer.url(), AUDIENCE))
        .jwks_url(format!("{}/jwks", issuer.url()))
        .status_lists(
            StatusListConfig::new()
                .require_status(true)
                .max_age(max_age),
        )
        .build()
        .unwrap();
    let token = issuer.access_token(42);
    let other = issuer.access_token(43);
    // The list's ttl (300 s) is capped by max_age (1 s).
    verifier.verify::<StandardClaims>(&token).await.unwrap();
    verifier.verify::<StandardClaims>(&token).await.unwrap();
    assert_eq!(issuer.list_hits.load(Ordering::SeqCst), 1);

    issuer.revoke(42);
    let revoked_at = Instant::now();
    // Bounded by max_age plus a fetch and scheduling slack, not a timing assertion.
    let deadline = revoked_at + max_age + Duration::from_secs(3);
    let refused_at = loop {
        match verifier.verify::<StandardClaims>(&token).await {
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Revoked);
                break Instant::now();
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "revocation not seen in time");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(refused_at - revoked_at <= max_age + Duration::from_secs(3));
    verifier.verify::<StandardClaims>(&other).await.unwrap();
    let metrics = verifier.metrics();
    assert!(metrics.status_list_fetches >= 2);
    assert_eq!(metrics.status_list_fetch_failures, 0);
    assert!(metrics.status_revoked >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_layer_answers_revoked_tokens_with_invalid_token() {
    use tower::{Layer, ServiceExt};

    let issuer = Issuer::start().await;
    issuer.revoke(7);
    let verifier = Verifier::builder(Policy::new(issuer.url(), AUDIENCE))
        .jwks_url(format!("{}/jwks", issuer.url()))
        .status_lists(StatusListConfig::new())
        .build()
        .unwrap();
    let service = jwks_verify::BearerAuthLayer::<StandardClaims>::new(verifier).layer(
        tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        }),
    );
    let call = |token: String| {
        let service = service.clone();
        async move {
            let request = http::Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
            service.oneshot(request).await.unwrap()
        }
    };
    let revoked = call(issuer.access_token(7)).await;
    assert_eq!(revoked.status(), 401);
    assert_eq!(
        revoked.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="token revoked""#
    );
    assert_eq!(call(issuer.access_token(8)).await.status(), 200);
}
