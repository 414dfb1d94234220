//! Shared test fixtures: RSA keys that sign tokens, and a real JWKS server on loopback.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "https://api.example";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA-2048 key pair with a `kid`.
pub struct TestKey {
    pub kid: String,
    pair: KeyPair,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        TestKey {
            kid: kid.to_owned(),
            pair: KeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// Modulus bytes, as an attacker would find them in the JWKS.
    pub fn modulus(&self) -> Vec<u8> {
        self.pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// RS256-signs `header.payload` given as raw JSON text.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        self.sign_input(&input)
    }

    pub fn sign_input(&self, input: &str) -> String {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A good access token for ISSUER/AUDIENCE, valid for 10 minutes from `now`.
    pub fn token(&self, now: u64) -> String {
        self.sign(&self.header(), &claims(now))
    }

    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "at+jwt", "kid": self.kid})
    }
}

pub fn claims(now: u64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "scope": "memories:read",
    })
}

pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How the JWKS server answers.
#[derive(Clone)]
pub enum Mode {
    /// 200 with the current document.
    Serve,
    /// This status, empty body.
    Status(u16),
    /// 200 with an HTML page.
    Garbage,
    /// Accept the request and never answer (until the test ends).
    Hang,
    /// This redirect status with `Location:` [`JwksServer::redirect_target_url`], which
    /// serves the current document.
    Redirect(u16),
}

/// Where [`Mode::Redirect`] points.
pub const REDIRECT_TARGET_PATH: &str = "/moved/jwks";

struct ServerState {
    mode: Mode,
    jwks: String,
    cache_control: Option<String>,
}

/// A real HTTP server on 127.0.0.1 serving a JWKS (and discovery) document.
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
    jwks_hits: Arc<AtomicUsize>,
    other_hits: Arc<AtomicUsize>,
    redirect_target_hits: Arc<AtomicUsize>,
    pub hanging: Arc<Notify>,
}

impl JwksServer {
    pub async fn start(jwks: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = JwksServer {
            addr,
            state: Arc::new(Mutex::new(ServerState {
                mode: Mode::Serve,
                jwks,
                cache_control: None,
            })),
            jwks_hits: Arc::new(AtomicUsize::new(0)),
            other_hits: Arc::new(AtomicUsize::new(0)),
            redirect_target_hits: Arc::new(AtomicUsize::new(0)),
            hanging: Arc::new(Notify::new()),
        };
        let handler = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        if path == "/.well-known/openid-configuration" {
            self.other_hits.fetch_add(1, Ordering::SeqCst);
            let doc = json!({"issuer": self.issuer(), "jwks_uri": self.jwks_url()});
            return Response::new(Full::new(Bytes::from(doc.to_string())));
        }
        if path == REDIRECT_TARGET_PATH {
            self.redirect_target_hits.fetch_add(1, Ordering::SeqCst);
            let body = self.state.lock().unwrap().jwks.clone();
            return Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
        }
        if path != "/jwks" {
            self.other_hits.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(404)
                .body(Full::default())
                .unwrap();
        }
        self.jwks_hits.fetch_add(1, Ordering::SeqCst);
        let (mode, body, cache_control) = {
            let state = self.state.lock().unwrap();
            (
                state.mode.clone(),
                state.jwks.clone(),
                state.cache_control.clone(),
            )
        };
        match mode {
            Mode::Serve => {
                let mut builder = Response::builder().header("content-type", "application/json");
                if let Some(cc) = cache_control {
                    builder = builder.header("cache-control", cc);
                }
                builder.body(Full::new(Bytes::from(body))).unwrap()
            }
            Mode::Status(code) => Response::builder()
                .status(code)
                .body(Full::default())
                .unwrap(),
            Mode::Garbage => Response::builder()
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<html><body>Bad gateway</body></html>",
                )))
                .unwrap(),
            Mode::Hang => {
                self.hanging.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::new(Full::default())
            }
            Mode::Redirect(code) => Response::builder()
                .status(code)
                .header("location", self.redirect_target_url())
                .body(Full::default())
                .unwrap(),
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    pub fn redirect_target_url(&self) -> String {
        format!("http://{}{REDIRECT_TARGET_PATH}", self.addr)
    }

    pub fn set_jwks(&self, jwks: String) {
        self.state.lock().unwrap().jwks = jwks;
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn set_cache_control(&self, value: &str) {
        self.state.lock().unwrap().cache_control = Some(value.to_owned());
    }

    /// Requests that reached `/jwks`.
    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Requests to any other path (except the redirect target).
    pub fn other_hits(&self) -> usize {
        self.other_hits.load(Ordering::SeqCst)
    }

    /// Requests that reached [`REDIRECT_TARGET_PATH`].
    pub fn redirect_target_hits(&self) -> usize {
        self.redirect_target_hits.load(Ordering::SeqCst)
    }
}

/// Proptest settings: `cases` per property unless `PROPTEST_CASES` says otherwise; never
/// writes failure files.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}
