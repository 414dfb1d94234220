//! Connection limits of both servers over real sockets: slow and idle clients are cut off in
//! bounded time while normal clients keep being served, and one subject cannot take the
//! descriptors everyone else needs.
//!
//! The bounds are generous cut-offs (several times the configured timeouts), not
//! performance assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

mod common;
use common::{Server, TestIssuer, free_port, get, request};

/// The configured timeouts of the slow-client tests, in seconds.
const TIMEOUT_SECS: &str = "2";
/// How long a slow client may stay connected before the test fails: the timeouts above,
/// twice over, plus plenty of slack for a loaded machine.
const CUT_OFF: Duration = Duration::from_secs(20);

fn mcp_env(
    issuer: &TestIssuer,
    data_dir: &std::path::Path,
    addr: SocketAddr,
) -> Vec<(String, String)> {
    [
        ("MCP_LISTEN", addr.to_string()),
        ("MCP_BASE_URL", format!("http://{addr}")),
        ("OIDC_ISSUER", issuer.url.clone()),
        ("MCP_DATA_DIR", data_dir.to_str().unwrap().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn spawn(binary: &str, args: &[&str], envs: &[(String, String)], addr: SocketAddr) -> Server {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::spawn(binary, args, &envs, addr)
}

/// mcp-server with `ulimit -n` set to `descriptors` (soft and hard) before it starts.
fn spawn_with_descriptor_limit(
    descriptors: u32,
    envs: &[(String, String)],
    addr: SocketAddr,
) -> Server {
    let script = format!("ulimit -n {descriptors} && exec \"$0\"");
    spawn(
        "sh",
        &["-c", &script, env!("CARGO_BIN_EXE_mcp-server")],
        envs,
        addr,
    )
}

/// Sends `head` and reads until the response head is complete: the status and the head's
/// text (lowercased). `None` if the connection ends first.
async fn exchange(stream: &mut TcpStream, head: &str) -> Option<(u16, String)> {
    stream.write_all(head.as_bytes()).await.ok()?;
    read_head(stream).await
}

async fn read_head(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("a response head within 30 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

/// Reads (and discards) until the peer closes the connection or resets it; how long that
/// took, or `None` if it was still open after [`CUT_OFF`].
async fn time_until_closed(stream: &mut TcpStream) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        match timeout(
            CUT_OFF.saturating_sub(start.elapsed()),
            stream.read(&mut chunk),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn sse_request(addr: SocketAddr, token: &str) -> String {
    format!(
        "GET /mcp/sse HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
}

/// `GET /health` on a fresh connection answers 200.
async fn health_answers(addr: SocketAddr) -> bool {
    matches!(
        get(&format!("http://{addr}/health"), None).await,
        Ok((200, _))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_while_normal_clients_are_served() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut envs = mcp_env(&issuer, dir.path(), addr);
    for name in ["MCP_HEADER_TIMEOUT", "MCP_BODY_TIMEOUT", "MCP_IDLE_TIMEOUT"] {
        envs.push((name.to_owned(), TIMEOUT_SECS.to_owned()));
    }
    let server = spawn(env!("CARGO_BIN_EXE_mcp-server"), &[], &envs, addr);
    server.wait_ready().await;
    let token = issuer.token(
        "alice",
        &format!("http://{addr}/mcp"),
        "memories:read memories:write",
    );

    // Slow headers: one header line every half second, never the blank line.
    let slow_headers = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .await
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < CUT_OFF {
            if stream.write_all(b"X-Slow: yes\r\n").await.is_err() {
                return Some(start.elapsed());
            }
            let mut byte = [0u8; 1];
            let read = timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                return Some(start.elapsed());
            }
        }
        None
    });

    // A stalled body: headers and a part of the body, then nothing.
    let stalled_body = {
        let token = token.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nAccept: application/json\r\n\
                 Content-Length: 200\r\n\r\n{{\"jsonrpc\": \"2.0\","
            );
            let answer = exchange(&mut stream, &head).await;
            (answer, time_until_closed(&mut stream).await)
        })
    };

    // A trickled body: a byte every half second of a body that would take minutes.
    let trickled_body = {
        let token = token.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /api/v1/memories/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let start = Instant::now();
            let mut chunk = [0u8; 4096];
            while start.elapsed() < CUT_OFF {
                if stream.write_all(b" ").await.is_err() {
                    return Some(start.elapsed());
                }
                match timeout(Duration::from_millis(500), stream.read(&mut chunk)).await {
                    Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
                    // The 408 arrived; the close follows.
                    Ok(Ok(_)) => {
                        return time_until_closed(&mut stream)
                            .await
                            .map(|t| t + start.elapsed());
                    }
                    Err(_) => {}
                }
            }
            None
        })
    };

    // Idle keep-alive: one request answered, then silence.
    let idle_keep_alive = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let answer = exchange(
            &mut stream,
            &format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        )
        .await;
        (
            answer.map(|(status, _)| status),
            time_until_closed(&mut stream).await,
        )
    });

    // Silent: connects and never sends a byte.
    let silent = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        time_until_closed(&mut stream).await
    });

    // Meanwhile normal clients keep being served.
    let normal_start = Instant::now();
    let mut served = 0;
    while normal_start.elapsed() < Duration::from_secs(4) {
        assert!(health_answers(addr).await, "/health is answered");
        let (status, body) = request(
            "POST",
            &format!("http://{addr}/api/v1/memories/"),
            Some(&token),
            Some(json!({"text": format!("note {served} about connection limits")})),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{body}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served > 0);

    assert!(
        slow_headers.await.unwrap().is_some(),
        "a client sending headers slowly is cut off"
    );
    let (answer, closed) = stalled_body.await.unwrap();
    let (status, head) = answer.expect("a stalled body is answered before the close");
    assert_eq!(status, 408, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        closed.is_some(),
        "the connection of a stalled body is closed"
    );
    assert!(
        trickled_body.await.unwrap().is_some(),
        "a client trickling its body is cut off"
    );
    let (status, closed) = idle_keep_alive.await.unwrap();
    assert_eq!(status, Some(200));
    assert!(closed.is_some(), "an idle keep-alive connection is closed");
    assert!(
        silent.await.unwrap().is_some(),
        "a silent connection is closed"
    );
    assert!(health_answers(addr).await, "/health is still answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_server_cuts_off_slow_and_idle_clients_too() {
    let upstream = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let envs: Vec<(String, String)> = [
        ("OIDC_BASE_URL", format!("http://{addr}")),
        ("OIDC_LISTEN", addr.to_string()),
        ("OIDC_DATA_DIR", dir.path().to_str().unwrap().to_owned()),
        ("OIDC_UPSTREAM_ISSUER", upstream.url.clone()),
        ("GOOGLE_CLIENT_ID", "memory-stack-test".to_owned()),
        ("GOOGLE_CLIENT_SECRET", "not-a-real-secret".to_owned()),
        ("OIDC_ALLOW_ANY_USER", "true".to_owned()),
        ("OIDC_HEADER_TIMEOUT", TIMEOUT_SECS.to_owned()),
        ("OIDC_BODY_TIMEOUT", TIMEOUT_SECS.to_owned()),
        ("OIDC_IDLE_TIMEOUT", TIMEOUT_SECS.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = spawn(env!("CARGO_BIN_EXE_oidc-server"), &[], &envs, addr);
    server.wait_ready().await;

    let stalled_body = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /token HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="
        );
        let answer = exchange(&mut stream, &head).await;
        (answer, time_until_closed(&mut stream).await)
    });
    let idle_keep_alive = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let answer = exchange(
            &mut stream,
            &format!("GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        )
        .await;
        (
            answer.map(|(status, _)| status),
            time_until_closed(&mut stream).await,
        )
    });
    let silent = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        time_until_closed(&mut stream).await
    });

    for _ in 0..8 {
        let (status, _) = get(
            &format!("http://{addr}/.well-known/openid-configuration"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (answer, closed) = stalled_body.await.unwrap();
    let (status, head) = answer.expect("a stalled body is answered before the close");
    assert_eq!(status, 408, "{head}");
    assert!(
        closed.is_some(),
        "the connection of a stalled body is closed"
    );
    let (status, closed) = idle_keep_alive.await.unwrap();
    assert_eq!(status, Some(200));
    assert!(closed.is_some(), "an idle keep-alive connection is closed");
    assert!(
        silent.await.unwrap().is_some(),
        "a silent connection is closed"
    );
}

/// The descriptor limit the next two tests give mcp-server: `auto` makes that 192
/// connections (256 less 64 kept free) and 96 SSE streams (half the connections).
const DESCRIPTORS: u32 = 256;
const AUTO_CONNECTIONS: usize = 192;
const AUTO_STREAMS: usize = 96;
/// More streams than the descriptor limit allows.
const ATTEMPTS: usize = 300;

/// Opens up to [`ATTEMPTS`] SSE streams for `token`, each on its own connection; returns the
/// open streams and the head of the first refusal (whose connection is closed, as are the
/// later refused ones).
async fn open_streams_until_refused(
    addr: SocketAddr,
    token: &str,
) -> (Vec<TcpStream>, Option<(u16, String)>, usize) {
    let mut open = Vec::new();
    let mut first_refusal = None;
    let mut refused = 0;
    for _ in 0..ATTEMPTS {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (status, head) = exchange(&mut stream, &sse_request(addr, token))
            .await
            .expect("every stream request is answered");
        if status == 200 {
            assert!(head.contains("text/event-stream"), "{head}");
            open.push(stream);
        } else {
            refused += 1;
            first_refusal.get_or_insert((status, head));
        }
    }
    (open, first_refusal, refused)
}

/// Another subject's REST request (write, then read) and `/health` are answered.
async fn others_are_served(issuer: &TestIssuer, addr: SocketAddr) {
    assert!(health_answers(addr).await, "/health is answered");
    let bob = issuer.token(
        "bob",
        &format!("http://{addr}/mcp"),
        "memories:read memories:write",
    );
    let (status, created) = request(
        "POST",
        &format!("http://{addr}/api/v1/memories/"),
        Some(&bob),
        Some(json!({"text": "bob can still write"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, _) = get(&format!("http://{addr}/api/v1/memories/{id}"), Some(&bob))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subject_opening_more_streams_than_descriptors_is_refused_at_its_cap() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut envs = mcp_env(&issuer, dir.path(), addr);
    envs.push(("MCP_MAX_SSE_STREAMS_PER_USER".to_owned(), "20".to_owned()));
    let server = spawn_with_descriptor_limit(DESCRIPTORS, &envs, addr);
    server.wait_ready().await;
    let alice = issuer.token("alice", &format!("http://{addr}/mcp"), "memories:read");

    let (open, refusal, refused) = open_streams_until_refused(addr, &alice).await;
    assert_eq!(open.len(), 20, "the per-subject cap");
    assert_eq!(refused, ATTEMPTS - 20);
    let (status, head) = refusal.unwrap();
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after: "), "{head}");

    others_are_served(&issuer, addr).await;
    // Another subject may open streams of its own.
    let bob = issuer.token("bob", &format!("http://{addr}/mcp"), "memories:read");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (status, _) = exchange(&mut stream, &sse_request(addr, &bob))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Alice's streams are all still open and alive: the refusals closed none of them.
    for mut stream in open {
        let mut chunk = [0u8; 256];
        let n = timeout(Duration::from_millis(200), stream.read(&mut chunk)).await;
        assert!(
            !matches!(n, Ok(Ok(0) | Err(_))),
            "a stream of alice's was closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_connections_never_take_every_descriptor() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut envs = mcp_env(&issuer, dir.path(), addr);
    // A per-subject cap above the descriptor limit: only the server-wide limits hold.
    envs.push(("MCP_MAX_SSE_STREAMS_PER_USER".to_owned(), "1000".to_owned()));
    // Idle connections stay open for the whole test (the header timeout also bounds an
    // HTTP/1 connection waiting for its next request).
    envs.push(("MCP_IDLE_TIMEOUT".to_owned(), "600".to_owned()));
    envs.push(("MCP_HEADER_TIMEOUT".to_owned(), "600".to_owned()));
    let server = spawn_with_descriptor_limit(DESCRIPTORS, &envs, addr);
    server.wait_ready().await;
    let alice = issuer.token("alice", &format!("http://{addr}/mcp"), "memories:read");

    let (streams, refusal, refused) = open_streams_until_refused(addr, &alice).await;
    assert_eq!(
        streams.len(),
        AUTO_STREAMS,
        "half the connections may be streams"
    );
    assert_eq!(refused, ATTEMPTS - AUTO_STREAMS);
    let (status, head) = refusal.unwrap();
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after: "), "{head}");
    others_are_served(&issuer, addr).await;

    // A keep-alive connection opened now is kept being served once the cap is reached.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    let health = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, _) = exchange(&mut kept, &health).await.unwrap();
    assert_eq!(status, 200);
    // Fill every remaining connection slot with idle connections; the next one is told to
    // come back later.
    let mut idle = Vec::new();
    let busy = loop {
        assert!(
            idle.len() <= AUTO_CONNECTIONS,
            "the connection cap never came"
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        match exchange(&mut stream, &health).await {
            Some((200, _)) => idle.push(stream),
            Some((status, head)) => break (status, head),
            None => panic!("a connection over the cap was closed without an answer"),
        }
    };
    assert_eq!(busy.0, 503, "{}", busy.1);
    assert!(busy.1.contains("retry-after: "), "{}", busy.1);
    // The cap is the descriptor limit less the headroom (a few refused connections may
    // still be closing on the server's side).
    let held = streams.len() + idle.len() + 1;
    assert!(
        (AUTO_CONNECTIONS - 8..=AUTO_CONNECTIONS).contains(&held),
        "{held} connections held at the cap"
    );
    // Connections already open keep being served at the cap.
    let (status, _) = exchange(&mut kept, &health).await.unwrap();
    assert_eq!(status, 200);
    // When connections go, new ones are served again.
    drop(idle);
    let start = Instant::now();
    while !health_answers(addr).await {
        assert!(
            start.elapsed() < CUT_OFF,
            "/health answered again after connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    others_are_served(&issuer, addr).await;
    drop(streams);
}

#[test]
fn every_limit_is_in_help_and_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for (binary, variables) in [
        (
            env!("CARGO_BIN_EXE_oidc-server"),
            &[
                "OIDC_MAX_CONNECTIONS",
                "OIDC_HEADER_TIMEOUT",
                "OIDC_BODY_TIMEOUT",
                "OIDC_IDLE_TIMEOUT",
                "OIDC_HTTP2_MAX_STREAMS",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_mcp-server"),
            &[
                "MCP_MAX_CONNECTIONS",
                "MCP_HEADER_TIMEOUT",
                "MCP_BODY_TIMEOUT",
                "MCP_IDLE_TIMEOUT",
                "MCP_HTTP2_MAX_STREAMS",
                "MCP_MAX_SSE_STREAMS",
                "MCP_MAX_SSE_STREAMS_PER_USER",
                "MCP_MAX_SESSIONS",
                "MCP_MAX_SESSIONS_PER_USER",
            ][..],
        ),
    ] {
        let output = std::process::Command::new(binary)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for variable in variables {
            assert!(
                help.contains(&format!("env: {variable}=")),
                "{binary} --help lacks {variable}"
            );
            assert!(
                readme.contains(&format!("| `{variable}`"))
                    || readme.contains(&format!(", `{variable}`")),
                "the README's configuration tables lack {variable}"
            );
        }
    }
}
