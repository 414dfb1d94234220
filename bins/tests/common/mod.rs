//! Test fixtures for the binaries: a token issuer served over HTTP on loopback (discovery and
//! JWKS for an RSA key made here), tokens it signs, child processes and an HTTP client.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod oauth;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

/// An issuer on 127.0.0.1 serving discovery and a JWKS for its own key. Its discovery
/// document is complete enough for it to stand in as the oidc-server's upstream provider.
pub struct TestIssuer {
    pub url: String,
    key: Arc<KeyPair>,
}

impl TestIssuer {
    pub async fn start() -> TestIssuer {
        let key = Arc::new(KeyPair::generate(KeySize::Rsa2048).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let public = key.public_key();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "test", "alg": "RS256", "use": "sig",
            "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64.encode(public.exponent().big_endian_without_leading_zero())}]})
        .to_string();
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json"),
            "authorization_endpoint": format!("{url}/authorize"), "token_endpoint": format!("{url}/token"),
            "id_token_signing_alg_values_supported": ["RS256"]})
        .to_string();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (jwks, discovery) = (jwks.clone(), discovery.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let body = if req.uri().path() == "/jwks.json" {
                                jwks.clone()
                            } else {
                                discovery.clone()
                            };
                            async move {
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                    body,
                                ))))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestIssuer { url, key }
    }

    /// An RFC 9068 access token for `sub` and audience `aud`.
    pub fn token(&self, sub: &str, aud: &str, scope: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            B64.encode(json!({"alg": "RS256", "typ": "at+jwt", "kid": "test"}).to_string());
        let claims = json!({"iss": self.url, "aud": aud, "sub": sub, "scope": scope,
            "client_id": "test-client", "iat": now, "exp": now + 600, "jti": format!("{now}-{sub}")});
        let input = format!("{header}.{}", B64.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", B64.encode(sig))
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A server binary running as a child process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn spawn(binary: &str, args: &[&str], envs: &[(&str, &str)], addr: SocketAddr) -> Server {
        let child = Command::new(binary)
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Server { child, addr }
    }

    /// Waits until `/health` reports the server healthy (200: store open, keys at hand), at
    /// most 30 s.
    pub async fn wait_ready(&self) {
        for _ in 0..300 {
            if let Ok((status, _)) = get(&format!("http://{}/health", self.addr), None).await
                && status == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server on {} did not come up", self.addr);
    }

    /// Sends SIGTERM and waits for the exit status (at most 30 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not exit after SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), hyper_util::client::legacy::Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(json.to_string()))
        }
        None => Full::default(),
    };
    let response = client.request(builder.body(body).unwrap()).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

pub async fn get(
    url: &str,
    bearer: Option<&str>,
) -> Result<(u16, Value), hyper_util::client::legacy::Error> {
    request("GET", url, bearer, None).await
}
