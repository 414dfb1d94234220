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
