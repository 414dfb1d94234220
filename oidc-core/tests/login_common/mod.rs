//! Test support for the login and outbound tests: an in-memory `LoginStateStore`, the
//! `tracing` event recorder (`event_log`), a real (minimal) upstream OpenID provider over
//! hyper on 127.0.0.1, a plain HTTP server with recorded requests, and fixed DNS resolvers.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use oidc_core::authn::{BoxFuture, LoginStateStore, StateStoreError};
#[cfg(feature = "hyper-client")]
use oidc_core::outbound::{AddressPolicy, DnsResolver, OutboundClient, OutboundConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use url::form_urlencoded;

#[path = "../event_log/mod.rs"]
pub mod event_log;

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).unwrap();
    b64url(&bytes)
}

/// An outbound client for tests: plain http and loopback addresses allowed.
#[cfg(feature = "hyper-client")]
pub fn loopback_client() -> OutboundClient {
    OutboundClient::new(
        OutboundConfig::default()
            .insecure_allow_http_to_loopback()
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback()),
    )
}

pub fn query_map(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// State store

/// A `LoginStateStore` in memory: single-use values with expiry.
#[derive(Default)]
pub struct MemoryStateStore {
    values: Mutex<HashMap<String, (Vec<u8>, u64)>>,
    pub puts: AtomicUsize,
}

impl MemoryStateStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn len(&self) -> usize {
        self.values.lock().unwrap().len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.values.lock().unwrap().keys().cloned().collect()
    }

    pub fn raw_values(&self) -> Vec<Vec<u8>> {
        self.values
            .lock()
            .unwrap()
            .values()
            .map(|(v, _)| v.clone())
            .collect()
    }
}

impl LoginStateStore for MemoryStateStore {
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StateStoreError>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.values
            .lock()
            .unwrap()
            .insert(key.to_owned(), (value, expires_at));
        Box::pin(async { Ok(()) })
    }

    fn take(&self, key: &str, now: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> {
        let taken = self
            .values
            .lock()
            .unwrap()
            .remove(key)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(value, _)| value);
        Box::pin(async move { Ok(taken) })
    }
}

// ---------------------------------------------------------------------------------------
// DNS

/// Answers from a fixed map; unknown names fail. Counts lookups per name.
#[derive(Default)]
pub struct FixedResolver {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    pub lookups: Mutex<HashMap<String, usize>>,
}

impl FixedResolver {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `name` always resolves to `ips`.
    pub fn set(&self, name: &str, ips: &[&str]) {
        self.set_sequence(name, &[ips]);
    }

    /// `name` resolves to the n-th answer on the n-th lookup, then to the last one.
    pub fn set_sequence(&self, name: &str, answers: &[&[&str]]) {
        let answers = answers
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers
            .lock()
            .unwrap()
            .insert(name.to_owned(), answers);
    }

    pub fn lookups_of(&self, name: &str) -> usize {
        self.lookups.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[cfg(feature = "hyper-client")]
impl DnsResolver for FixedResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        let n = {
            let mut lookups = self.lookups.lock().unwrap();
            let n = lookups.entry(host.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        let answer = self.answers.lock().unwrap().get(host).map(|answers| {
            answers
                .get(n - 1)
                .or_else(|| answers.last())
                .cloned()
                .unwrap_or_default()
        });
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

// ---------------------------------------------------------------------------------------
// A plain HTTP server with recorded requests

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

type Handler = dyn Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync;

/// An HTTP/1 server on 127.0.0.1 answering with a closure, recording every request.
#[derive(Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    pub async fn start(
        handler: impl Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> TestServer {
        Self::start_on("127.0.0.1:0", handler).await
    }

    pub async fn start_on(
        bind: &str,
        handler: impl Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind(bind).await.unwrap();
        let server = TestServer {
            addr: listener.local_addr().unwrap(),
            requests: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(AtomicUsize::new(0)),
        };
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::clone(&server.requests);
        let connections = Arc::clone(&server.connections);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let handler = Arc::clone(&handler);
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let requests = Arc::clone(&requests);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(http_body_util::Collected::to_bytes)
                                .unwrap_or_default();
                            let recorded = Recorded {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                query: parts.uri.query().unwrap_or_default().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            requests.lock().unwrap().push(recorded.clone());
                            Ok::<_, Infallible>(handler(&recorded))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn hits_on(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    pub fn last(&self) -> Option<Recorded> {
        self.requests.lock().unwrap().last().cloned()
    }
}

pub fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The test upstream OpenID provider

/// How the test IdP's authorization response carries `iss` (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssParam {
    Correct,
    Absent,
    Value(String),
}

/// What the test IdP does; change it between logins.
#[derive(Debug, Clone)]
pub struct IdpBehaviour {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Value,
    pub hd: Option<String>,
    pub name: Option<String>,
    /// Merged over the ID token claims; `null` removes a claim.
    pub claim_overrides: serde_json::Map<String, Value>,
    pub iss_param: IssParam,
    pub advertise_iss_param: bool,
    pub auth_methods: Vec<String>,
    /// Answer the authorization request with this `error`.
    pub authorize_error: Option<String>,
}

impl Default for IdpBehaviour {
    fn default() -> Self {
        IdpBehaviour {
            sub: "248289761001".into(),
            email: Some("jane@example.com".into()),
            email_verified: Value::Bool(true),
            hd: None,
            name: Some("Jane Doe".into()),
            claim_overrides: serde_json::Map::new(),
            iss_param: IssParam::Correct,
            advertise_iss_param: true,
            auth_methods: vec!["client_secret_basic".into(), "client_secret_post".into()],
            authorize_error: None,
        }
    }
}

struct CodeGrant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
}

/// One token request as the IdP saw it.
#[derive(Debug, Clone)]
pub struct TokenRequestSeen {
    pub form: HashMap<String, String>,
    /// `(client_id, client_secret)` from HTTP Basic, decoded.
    pub basic: Option<(String, String)>,
    /// Whether `code_verifier` hashed (S256) to the stored challenge.
    pub pkce_ok: bool,
    /// The access token handed out (never to be seen again by anyone).
    pub access_token: Option<String>,
}

struct IdpState {
    behaviour: IdpBehaviour,
    codes: HashMap<String, CodeGrant>,
    authorize_requests: Vec<HashMap<String, String>>,
    token_requests: Vec<TokenRequestSeen>,
}

/// A minimal but real OpenID provider: discovery, JWKS (RSA-2048 from aws-lc-rs), an
/// authorization endpoint that approves at once, and a token endpoint that checks client
/// authentication, the code, the redirect URI and PKCE S256 before signing an RS256 ID
/// token with the nonce it was given.
#[derive(Clone)]
pub struct TestIdp {
    pub addr: SocketAddr,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    key: Arc<KeyPair>,
    kid: String,
    state: Arc<Mutex<IdpState>>,
}

impl TestIdp {
    pub async fn start() -> TestIdp {
        Self::start_with(IdpBehaviour::default()).await
    }

    pub async fn start_with(behaviour: IdpBehaviour) -> TestIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idp = TestIdp {
            addr,
            issuer: format!("http://{addr}"),
            client_id: "our-client.apps.test".into(),
            client_secret: "upstream-secret-value".into(),
            key: Arc::new(KeyPair::generate(KeySize::Rsa2048).unwrap()),
            kid: "test-key-1".into(),
            state: Arc::new(Mutex::new(IdpState {
                behaviour,
                codes: HashMap::new(),
                authorize_requests: Vec::new(),
                token_requests: Vec::new(),
            })),
        };
        let handler = idp.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler.serve(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        idp
    }

    pub fn behave(&self, change: impl FnOnce(&mut IdpBehaviour)) {
        change(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().authorize_requests.clone()
    }

    pub fn token_requests(&self) -> Vec<TokenRequestSeen> {
        self.state.lock().unwrap().token_requests.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    async fn serve(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        match (parts.method.as_str(), parts.uri.path()) {
            ("GET", "/.well-known/openid-configuration") => self.discovery(),
            ("GET", "/jwks") => json_response(200, &json!({"keys": [self.jwk()]})),
            ("GET", "/authorize") => self.authorize(parts.uri.query().unwrap_or_default()),
            ("POST", "/token") => self.token(&parts.headers, &body),
            _ => json_response(404, &json!({"error": "not_found"})),
        }
    }

    fn discovery(&self) -> Response<Full<Bytes>> {
        let state = self.state.lock().unwrap();
        json_response(
            200,
            &json!({
                "issuer": self.issuer,
                "authorization_endpoint": self.url("/authorize"),
                "token_endpoint": self.url("/token"),
                "jwks_uri": self.url("/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": state.behaviour.auth_methods,
                "code_challenge_methods_supported": ["plain", "S256"],
                "authorization_response_iss_parameter_supported": state.behaviour.advertise_iss_param,
            }),
        )
    }

    fn jwk(&self) -> Value {
        let public = self.key.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        })
    }

    fn authorize(&self, query: &str) -> Response<Full<Bytes>> {
        let params = query_map(query);
        let mut state = self.state.lock().unwrap();
        state.authorize_requests.push(params.clone());
        let bad = |error: &str| json_response(400, &json!({"error": error}));
        if params.get("client_id") != Some(&self.client_id) {
            return bad("invalid_client");
        }
        let Some(redirect_uri) = params.get("redirect_uri").cloned() else {
            return bad("invalid_request");
        };
        if params.get("response_type").map(String::as_str) != Some("code")
            || params.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            return bad("invalid_request");
        }
        let Some(challenge) = params.get("code_challenge").cloned() else {
            return bad("invalid_request");
        };
        let mut location = url::Url::parse(&redirect_uri).unwrap();
        {
            let mut q = location.query_pairs_mut();
            if let Some(error) = &state.behaviour.authorize_error {
                q.append_pair("error", error);
            } else {
                let code = random_token();
                state.codes.insert(
                    code.clone(),
                    CodeGrant {
                        nonce: params.get("nonce").cloned(),
                        challenge,
                        redirect_uri: redirect_uri.clone(),
                    },
                );
                q.append_pair("code", &code);
            }
            if let Some(s) = params.get("state") {
                q.append_pair("state", s);
            }
            match &state.behaviour.iss_param {
                IssParam::Correct => {
                    q.append_pair("iss", &self.issuer);
                }
                IssParam::Absent => {}
                IssParam::Value(v) => {
                    q.append_pair("iss", v);
                }
            }
        }
        Response::builder()
            .status(302)
            .header("location", location.as_str())
            .body(Full::default())
            .unwrap()
    }

    fn token(&self, headers: &http::HeaderMap, body: &[u8]) -> Response<Full<Bytes>> {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| {
                let (id, secret) = v.split_once(':')?;
                let decode = |s: &str| {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                };
                Some((decode(id)?, decode(secret)?))
            });
        let mut state = self.state.lock().unwrap();
        let mut seen = TokenRequestSeen {
            form: form.clone(),
            basic: basic.clone(),
            pkce_ok: false,
            access_token: None,
        };
        let error = |state: &mut IdpState, seen: TokenRequestSeen, status: u16, error: &str| {
            state.token_requests.push(seen);
            json_response(
                status,
                &json!({"error": error, "error_description": "refused by the test idp"}),
            )
        };
        let (client_id, secret) = match (&basic, form.get("client_id"), form.get("client_secret")) {
            (Some((id, secret)), None, None) => (id.clone(), secret.clone()),
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return error(&mut state, seen, 401, "invalid_client"),
        };
        if client_id != self.client_id || secret != self.client_secret {
            return error(&mut state, seen, 401, "invalid_client");
        }
        if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return error(&mut state, seen, 400, "unsupported_grant_type");
        }
        let Some(grant) = form.get("code").and_then(|c| state.codes.remove(c)) else {
            return error(&mut state, seen, 400, "invalid_grant");
        };
        if form.get("redirect_uri") != Some(&grant.redirect_uri) {
            return error(&mut state, seen, 400, "invalid_grant");
        }
        let computed = form
            .get("code_verifier")
            .map(|v| b64url(digest(&SHA256, v.as_bytes()).as_ref()));
        seen.pkce_ok = computed.as_deref() == Some(grant.challenge.as_str());
        if !seen.pkce_ok {
            return error(&mut state, seen, 400, "invalid_grant");
        }
        let behaviour = &state.behaviour;
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": behaviour.sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            "email_verified": behaviour.email_verified,
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = nonce.clone().into();
        }
        if let Some(email) = &behaviour.email {
            claims["email"] = email.clone().into();
        }
        if let Some(hd) = &behaviour.hd {
            claims["hd"] = hd.clone().into();
        }
        if let Some(name) = &behaviour.name {
            claims["name"] = name.clone().into();
        }
        let map = claims.as_object_mut().unwrap();
        for (k, v) in &behaviour.claim_overrides {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
        let id_token = self.sign(&claims);
        let access_token = format!("upstream-access-token-{}", random_token());
        seen.access_token = Some(access_token.clone());
        state.token_requests.push(seen);
        json_response(
            200,
            &json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid email profile",
                "id_token": id_token,
            }),
        )
    }

    /// An RS256 JWT signed with the IdP's key.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64url(&sig))
    }
}
