//! Fixtures for the MCP tests: an RSA key that signs access tokens, the real
//! `BearerAuthLayer` in front of `McpService` over a `SqliteStore` in a temporary
//! directory, request and SSE helpers, and a minimal HTTP/1.1 server and client on
//! loopback sockets (hyper is not a dependency of this crate).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jwks_verify::{BearerAuth, BearerAuthLayer, Clock, ManualClock, Verifier};
use mcp_api::http::ResponseBody;
use mcp_api::mcp::{McpConfig, McpService};
use mcp_api::{AccessClaims, Limits, ProtectedResource, SqliteStore};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};

pub const ISSUER: &str = "https://auth.example";
pub const BASE_URL: &str = "https://mcp.example";
pub const READ_WRITE: &str = "memories:read memories:write";
pub const READ_ONLY: &str = "memories:read";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// How long a socket read may wait before the test fails (a hang guard, not a timing
/// assertion).
pub const IO_GUARD: Duration = Duration::from_secs(20);

pub fn resource() -> ProtectedResource {
    ProtectedResource::new(BASE_URL, ISSUER)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate(KeySize::Rsa2048).unwrap())
}

fn jwks() -> String {
    let public = key().public_key();
    json!({"keys": [{
        "kty": "RSA",
        "kid": "k1",
        "alg": "RS256",
        "use": "sig",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    }]})
    .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RFC 9068 access token for `sub` with `scope`, issued to client `chatgpt`.
pub fn token(sub: &str, scope: &str) -> String {
    token_at(sub, scope, unix_now())
}

/// The same, issued at `now` (Unix seconds) and valid for ten minutes.
pub fn token_at(sub: &str, scope: &str, now: u64) -> String {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"});
    let claims = json!({
        "iss": ISSUER,
        "aud": resource().resource(),
        "sub": sub,
        "scope": scope,
        "client_id": "chatgpt",
        "iat": now,
        "exp": now + 600,
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0u8; key().public_modulus_len()];
    key()
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
    format!("{input}.{}", b64(&signature))
}

/// A verifier for the test key with the production access-token policy.
pub fn verifier() -> Verifier {
    verifier_on(jwks_verify::SystemClock)
}

/// The same verifier on `clock`.
pub fn verifier_on(clock: impl Clock) -> Verifier {
    Verifier::builder(mcp_api::server::access_token_policy(&resource()))
        .static_jwks(jwks())
        .clock(clock)
        .build()
        .unwrap()
}

/// A virtual clock starting now (so that tokens from [`token`] are valid on it).
pub fn manual_clock() -> ManualClock {
    ManualClock::at_unix(unix_now())
}

pub type App = BearerAuth<McpService<SqliteStore>, AccessClaims>;

/// The service stack of one test.
pub struct Harness {
    _dir: Option<TempDir>,
    pub store: Arc<SqliteStore>,
    pub service: McpService<SqliteStore>,
    pub app: App,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(McpConfig::default())
    }

    pub fn with_config(config: McpConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default()).unwrap());
        let service = McpService::new(Arc::clone(&store), resource(), config);
        Self::around(Some(dir), store, service)
    }

    /// The service on `clock` (sessions age on it; tokens are still checked on the
    /// system clock).
    pub fn with_clock(config: McpConfig, clock: ManualClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default()).unwrap());
        let service = McpService::with_clock(Arc::clone(&store), resource(), config, clock);
        Self::around(Some(dir), store, service)
    }

    /// One replica of several: the service over a `store` the replicas share, with its
    /// sessions in `sessions`.
    pub fn replica(
        store: Arc<SqliteStore>,
        config: McpConfig,
        sessions: mcp_api::mcp::SessionBackend,
    ) -> Self {
        let service = McpService::with_sessions(
            store.clone(),
            resource(),
            config,
            jwks_verify::SystemClock,
            sessions,
        );
        Self::around(None, store, service)
    }

    fn around(
        dir: Option<TempDir>,
        store: Arc<SqliteStore>,
        service: McpService<SqliteStore>,
    ) -> Self {
        let app = BearerAuthLayer::<AccessClaims>::new(verifier())
            .challenge(resource().challenge())
            .layer(service.clone());
        Harness {
            _dir: dir,
            store,
            service,
            app,
        }
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// A Streamable HTTP client for `sub` with `scope`.
    pub fn client(&self, sub: &str, scope: &str) -> McpClient<'_> {
        McpClient {
            harness: self,
            token: token(sub, scope),
            session: None,
            version: None,
            accept: ACCEPT_BOTH,
            next_id: 1,
        }
    }
}

/// A JSON-RPC request body.
pub fn rpc(id: u64, method: &str, params: Value) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    message["params"] = params;
    message
}

/// A POST to `path` with the token, JSON content type and both accept types.
pub fn post(path: &str, token: &str) -> http::request::Builder {
    Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
}

pub fn body_of(value: &Value) -> Full<Bytes> {
    Full::new(Bytes::from(value.to_string()))
}

pub async fn body_bytes(response: Response<ResponseBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

pub async fn json_body(response: Response<ResponseBody>) -> Value {
    let bytes = body_bytes(response).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}

/// One SSE record: an event, or a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    Event {
        event: Option<String>,
        id: Option<String>,
        data: String,
    },
    Comment(String),
}

impl SseItem {
    pub fn data_json(&self) -> Value {
        match self {
            SseItem::Event { data, .. } => serde_json::from_str(data).unwrap(),
            SseItem::Comment(text) => panic!("a comment, not an event: {text}"),
        }
    }
}

/// Parses complete SSE records (each ends with a blank line).
pub fn parse_sse(text: &str) -> Vec<SseItem> {
    text.split("\n\n")
        .filter(|record| !record.is_empty())
        .map(parse_record)
        .collect()
}

fn parse_record(record: &str) -> SseItem {
    if let Some(comment) = record.strip_prefix(':') {
        return SseItem::Comment(comment.trim().to_owned());
    }
    let mut event = None;
    let mut id = None;
    let mut data = Vec::new();
    for line in record.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            other => panic!("unexpected SSE field {other:?}"),
        }
    }
    SseItem::Event {
        event,
        id,
        data: data.join("\n"),
    }
}

/// A Streamable HTTP client (legacy era) over `oneshot`.
pub struct McpClient<'a> {
    harness: &'a Harness,
    pub token: String,
    pub session: Option<String>,
    pub version: Option<&'static str>,
    pub accept: &'static str,
    next_id: u64,
}

/// One answer: the HTTP status, the content type, the JSON-RPC message and any SSE
/// records before it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub session: Option<String>,
    pub message: Value,
    pub sse: Vec<SseItem>,
}

impl McpClient<'_> {
    /// `initialize` at `version`; keeps the session and version for later requests.
    pub async fn initialize(&mut self, version: &'static str) -> Answer {
        let params = json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "test-client", "version": "1.0.0"},
        });
        let answer = self.request("initialize", params).await;
        assert_eq!(answer.status, 200, "{:?}", answer.message);
        self.session.clone_from(&answer.session);
        self.version = Some(version);
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.harness.send(self.build(&initialized)).await;
        assert_eq!(response.status(), 202);
        answer
    }

    pub fn build(&self, body: &Value) -> Request<Full<Bytes>> {
        let mut builder = post("/mcp", &self.token);
        if let Some(session) = &self.session {
            builder = builder.header("mcp-session-id", session);
        }
        if let Some(version) = self.version {
            builder = builder.header("mcp-protocol-version", version);
        }
        let mut request = builder.body(body_of(body)).unwrap();
        // `header` appends; keep exactly one Accept.
        let accept = http::HeaderValue::from_static(self.accept);
        request.headers_mut().insert("accept", accept);
        request
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Answer {
        let id = self.next_id;
        self.next_id += 1;
        let request = self.build(&rpc(id, method, params));
        let answer = read_answer(self.harness.send(request).await).await;
        if answer.status == 200 {
            assert_eq!(answer.message["id"], id, "{:?}", answer.message);
        }
        answer
    }

    /// `tools/call`, returning the `CallToolResult`.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        let answer = self
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.message);
        answer.message["result"].clone()
    }

    /// `tools/call` that must succeed, returning `structuredContent`.
    pub async fn call_ok(&mut self, name: &str, arguments: Value) -> Value {
        let result = self.call_tool(name, arguments).await;
        assert_eq!(result["isError"], false, "{result}");
        result["structuredContent"].clone()
    }
}

/// Reads a JSON or SSE answer.
pub async fn read_answer(response: Response<ResponseBody>) -> Answer {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let bytes = body_bytes(response).await;
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    if content_type == "text/event-stream" {
        let sse = parse_sse(&text);
        let message = sse.last().expect("an SSE answer has events").data_json();
        return Answer {
            status,
            content_type,
            session,
            message,
            sse,
        };
    }
    let message = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Answer {
        status,
        content_type,
        session,
        message,
        sse: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 server and client over loopback sockets.
// ---------------------------------------------------------------------------------------

/// Serves `app` on 127.0.0.1 (one request per connection, close-delimited responses).
pub async fn serve_on_loopback(app: App) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_connection(stream, app.clone()));
        }
    });
    addr
}

async fn serve_connection(stream: TcpStream, app: App) {
    let Ok(Some(request)) = read_request(&stream).await else {
        return;
    };
    let Ok(response) = app.oneshot(request).await;
    let (parts, mut body) = response.into_parts();
    let mut head = format!("HTTP/1.1 {}\r\n", parts.status);
    for (name, value) in &parts.headers {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("connection: close\r\n\r\n");
    if write_all(&stream, head.as_bytes()).await.is_err() {
        return;
    }
    // Dropping `body` when a write fails (the client left) ends the stream server-side.
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data()
            && write_all(&stream, &data).await.is_err()
        {
            return;
        }
    }
}

async fn read_request(stream: &TcpStream) -> io::Result<Option<Request<Full<Bytes>>>> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if read_some(stream, &mut buffer).await? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let mut builder = Request::builder().method(method.as_str()).uri(target);
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        }
        builder = builder.header(name.trim(), value);
    }
    let body_start = head_end + 4;
    while buffer.len() < body_start + content_length {
        if read_some(stream, &mut buffer).await? == 0 {
            return Ok(None);
        }
    }
    let body = Bytes::copy_from_slice(&buffer[body_start..body_start + content_length]);
    Ok(builder.body(Full::new(body)).ok())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

async fn read_some(stream: &TcpStream, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(read) => {
                buffer.extend_from_slice(&chunk[..read]);
                return Ok(read);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(written) => data = &data[written..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A raw HTTP exchange over a fresh connection: the status and the whole body.
pub async fn http_exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: {ACCEPT_BOTH}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    write_all(&stream, request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    tokio::time::timeout(IO_GUARD, async {
        while read_some(&stream, &mut buffer).await.unwrap_or(0) > 0 {}
    })
    .await
    .expect("the server answers and closes");
    let text = String::from_utf8(buffer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// An open SSE stream over a socket.
pub struct SseConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
    pub head: String,
}

impl SseConnection {
    /// `GET path` with `Accept: text/event-stream`; reads the response head.
    pub async fn open(addr: SocketAddr, path: &str, token: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
             accept: text/event-stream\r\n\r\n"
        );
        write_all(&stream, request.as_bytes()).await.unwrap();
        let mut connection = SseConnection {
            stream,
            buffer: Vec::new(),
            head: String::new(),
        };
        let end = connection.read_until(b"\r\n\r\n").await;
        let head: Vec<u8> = connection.buffer.drain(..end + 4).collect();
        connection.head = String::from_utf8(head).unwrap();
        connection
    }

    pub fn status(&self) -> u16 {
        self.head.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// The next complete SSE record.
    pub async fn next_item(&mut self) -> SseItem {
        let end = self.read_until(b"\n\n").await;
        let record: Vec<u8> = self.buffer.drain(..end + 2).collect();
        let record = String::from_utf8(record).unwrap();
        parse_record(record.trim_end_matches('\n'))
    }

    /// The next event, skipping keep-alive comments.
    pub async fn next_event(&mut self) -> SseItem {
        loop {
            let item = self.next_item().await;
            if matches!(item, SseItem::Event { .. }) {
                return item;
            }
        }
    }

    /// Whether the server ends the stream (EOF) once the buffered records are read.
    pub async fn reaches_end(&mut self) -> bool {
        tokio::time::timeout(IO_GUARD, async {
            loop {
                match read_some(&self.stream, &mut self.buffer).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    async fn read_until(&mut self, pattern: &[u8]) -> usize {
        tokio::time::timeout(IO_GUARD, async {
            loop {
                if let Some(end) = find(&self.buffer, pattern) {
                    return end;
                }
                let read = read_some(&self.stream, &mut self.buffer).await.unwrap();
                assert!(read > 0, "the stream ended early");
            }
        })
        .await
        .expect("the expected SSE data arrives")
    }
}
