//! The `mcp-server` binary as a process: configuration, durability across `kill -9`, and
//! graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use serde_json::json;

mod common;
use common::{Server, TestIssuer, free_port, get, request};

fn spawn(issuer: &TestIssuer, data_dir: &std::path::Path, port: u16) -> Server {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = format!("http://{addr}");
    Server::spawn(
        env!("CARGO_BIN_EXE_mcp-server"),
        &[],
        &[
            ("MCP_LISTEN", &addr.to_string()),
            ("MCP_BASE_URL", &base),
            ("OIDC_ISSUER", &issuer.url),
            ("MCP_DATA_DIR", data_dir.to_str().unwrap()),
        ],
        addr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_write_survives_kill_9() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = issuer.token(
        "alice",
        &format!("{base}/mcp"),
        "memories:read memories:write",
    );

    let mut server = spawn(&issuer, dir.path(), port);
    server.wait_ready().await;
    let (status, created) = request(
        "POST",
        &format!("{base}/api/v1/memories/"),
        Some(&token),
        Some(json!({"text": "the wifi password is taped under the router"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // SIGKILL: no chance to flush anything the store had not already made durable.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = spawn(&issuer, dir.path(), port);
    server.wait_ready().await;
    let (status, memory) = get(&format!("{base}/api/v1/memories/{id}"), Some(&token))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        memory["content"],
        "the wifi password is taped under the router"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn(&issuer, dir.path(), port);
    server.wait_ready().await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_sse_streams_and_exits_cleanly() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = issuer.token(
        "alice",
        &format!("http://127.0.0.1:{port}/mcp"),
        "memories:read",
    );
    let mut server = spawn(&issuer, dir.path(), port);
    server.wait_ready().await;

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET /mcp/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("event: endpoint") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buffer))
            .await
            .expect("the endpoint event arrives")
            .unwrap();
        assert!(
            n > 0,
            "stream closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
    let head = String::from_utf8_lossy(&received).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-accel-buffering: no"),
        "{head}"
    );

    // Shutdown ends the stream (the chunked body is terminated) and the process exits 0.
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (server, status)
    });
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buffer))
            .await
            .expect("the stream ends after SIGTERM")
            .unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    assert!(
        String::from_utf8_lossy(&received).ends_with("0\r\n\r\n"),
        "stream ended without its last chunk"
    );
    let (_server, status) = status.await.unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_public_base_url_is_refused() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-server"))
        .env("MCP_BASE_URL", "http://mcp.example.com")
        .env("OIDC_ISSUER", &issuer.url)
        .env("MCP_DATA_DIR", dir.path())
        .env("MCP_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be https"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_status_settings_are_refused_at_start() {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for (variable, value, expected) in [
        ("MCP_STATUS_MAX_AGE", "0", "MCP_STATUS_MAX_AGE"),
        ("MCP_STATUS_MAX_AGE", "2h", "MCP_STATUS_MAX_AGE"),
        ("MCP_STATUS_MAX_AGE", "soon", "MCP_STATUS_MAX_AGE"),
        ("MCP_TOKEN_STATUS", "maybe", "maybe"),
        ("MCP_STATUS_FAILURE", "ajar", "ajar"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .env("OIDC_ISSUER", &issuer.url)
            .env("MCP_DATA_DIR", dir.path())
            .env("MCP_LISTEN", "127.0.0.1:0")
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{variable}={value}: {stderr}");
    }
}
